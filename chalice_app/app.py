"""The trainset HTTP API: registers the blueprints; every route lives in chalicelib."""

import os
import threading
from typing import Any

from chalice import Chalice, CORSConfig

from chalicelib import (
    routes_campaigns,
    routes_gold,
    routes_images,
    routes_imports,
    routes_labeling,
    routes_manager,
    routes_meta,
    routes_review,
)


class RequestLocalChalice(Chalice):
    """Chalice keeps the request being served on the app object itself; in Lambda one
    container serves one request at a time, but a local server runs requests on threads
    and they would read each other's request (and caller). Here each thread sees its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._per_thread = threading.local()
        super().__init__(*args, **kwargs)

    @property
    def current_request(self) -> Any:
        return getattr(self._per_thread, "request", None)

    @current_request.setter
    def current_request(self, request: Any) -> None:
        self._per_thread.request = request

    @property
    def lambda_context(self) -> Any:
        return getattr(self._per_thread, "context", None)

    @lambda_context.setter
    def lambda_context(self, context: Any) -> None:
        self._per_thread.context = context


app = RequestLocalChalice(app_name="trainset")
app.api.cors = CORSConfig(
    allow_origin=os.environ.get("TRAINSET_ALLOWED_ORIGIN", "*"),
    allow_headers=["Authorization", "Content-Type"],
    max_age=600,
)
for blueprint in (routes_meta.bp, routes_labeling.bp, routes_manager.bp, routes_images.bp,
                  routes_gold.bp, routes_campaigns.bp, routes_review.bp, routes_imports.bp):
    app.register_blueprint(blueprint)
