"""Routes coders use: next task, submit a label, skip, their own status and history."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib.http import Inputs, answer_problems, current_coder, endpoint, invalid, services
from trainset.api_schema import BY_NAME

bp = Blueprint(__name__)


@endpoint(bp, BY_NAME["next_task"])
def next_task(request: Request, inputs: Inputs) -> Any:
    with services() as (store, labeling, _):
        coder = current_coder(request, store)
        return labeling.next_task(coder, inputs.query["family"],
                                  inputs.query.get("mode", "work"))


@endpoint(bp, BY_NAME["submit_label"])
def submit_label(request: Request, inputs: Inputs) -> Any:
    problems = answer_problems(inputs.body)
    if problems:
        raise invalid(problems, "the label")
    with services() as (store, labeling, _):
        coder = current_coder(request, store)
        return labeling.submit(coder, inputs.body)


@endpoint(bp, BY_NAME["skip_task"])
def skip_task(request: Request, inputs: Inputs) -> Any:
    with services() as (store, labeling, _):
        coder = current_coder(request, store)
        return labeling.skip(coder, inputs.path["post_id"], inputs.body)


@endpoint(bp, BY_NAME["me"])
def me(request: Request, inputs: Inputs) -> Any:
    with services() as (store, labeling, _):
        return labeling.me(current_coder(request, store))


@endpoint(bp, BY_NAME["my_history"])
def my_history(request: Request, inputs: Inputs) -> Any:
    with services() as (store, labeling, _):
        coder = current_coder(request, store)
        return labeling.history(coder, inputs.query.get("limit", 50), inputs.query.get("before"))
