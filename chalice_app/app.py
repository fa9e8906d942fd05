"""The trainset HTTP API: registers the blueprints; every route lives in chalicelib."""

import os

from chalice import Chalice, CORSConfig

from chalicelib import routes_images, routes_labeling, routes_manager, routes_meta

app = Chalice(app_name="trainset")
app.api.cors = CORSConfig(
    allow_origin=os.environ.get("TRAINSET_ALLOWED_ORIGIN", "*"),
    allow_headers=["Authorization", "Content-Type"],
    max_age=600,
)
for blueprint in (routes_meta.bp, routes_labeling.bp, routes_manager.bp, routes_images.bp):
    app.register_blueprint(blueprint)
