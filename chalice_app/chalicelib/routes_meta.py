"""Public, read-only routes: the codebook, the OpenAPI document and a health check."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.http import api
from chalicelib.openapi import document
from trainset import codebook

bp = Blueprint(__name__)


@bp.route("/codebook", methods=["GET"])
@api
def get_codebook():
    return codebook.as_document()


@bp.route("/openapi.json", methods=["GET"])
@api
def openapi():
    return document()


@bp.route("/health", methods=["GET"])
@api
def health():
    return {"status": "ok"}
