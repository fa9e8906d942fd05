"""Public, read-only routes: the codebook, the OpenAPI document and a health check; and the
middleware giving every API answer (Chalice's own errors too) the API's headers."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib.http import Inputs, api_middleware, endpoint
from chalicelib.openapi import document
from trainset import codebook
from trainset.api_schema import BY_NAME

bp = Blueprint(__name__)
bp.middleware("http")(api_middleware)


@endpoint(bp, BY_NAME["get_codebook"])
def get_codebook(request: Request, inputs: Inputs) -> Any:
    return codebook.as_document()


@endpoint(bp, BY_NAME["openapi"])
def openapi(request: Request, inputs: Inputs) -> Any:
    return document()


@endpoint(bp, BY_NAME["health"])
def health(request: Request, inputs: Inputs) -> Any:
    return {"status": "ok"}
