"""Routes coders use: next task, submit a label, skip, their own status and history."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.http import AUTHORIZER, api, current_coder, json_body, services

bp = Blueprint(__name__)


@bp.route("/tasks/next", methods=["GET"], authorizer=AUTHORIZER)
@api
def next_task():
    params = bp.current_request.query_params or {}
    with services() as (store, labeling, _):
        coder = current_coder(bp.current_request, store)
        return labeling.next_task(coder, params.get("family"), params.get("mode", "work"))


@bp.route("/labels", methods=["POST"], authorizer=AUTHORIZER)
@api
def submit_label():
    body = json_body(bp.current_request)
    with services() as (store, labeling, _):
        coder = current_coder(bp.current_request, store)
        return labeling.submit(coder, body)


@bp.route("/tasks/{post_id}/skip", methods=["POST"], authorizer=AUTHORIZER)
@api
def skip_task(post_id):
    body = json_body(bp.current_request)
    with services() as (store, labeling, _):
        coder = current_coder(bp.current_request, store)
        return labeling.skip(coder, post_id, body)


@bp.route("/me", methods=["GET"], authorizer=AUTHORIZER)
@api
def me():
    with services() as (store, labeling, _):
        return labeling.me(current_coder(bp.current_request, store))


@bp.route("/me/history", methods=["GET"], authorizer=AUTHORIZER)
@api
def my_history():
    params = bp.current_request.query_params or {}
    with services() as (store, labeling, _):
        coder = current_coder(bp.current_request, store)
        return labeling.history(coder, params.get("limit", 50), params.get("before"))
