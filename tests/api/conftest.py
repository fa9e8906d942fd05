"""The Chalice app under ``chalice.test.Client``, wired to the session's real database."""

from __future__ import annotations

import pytest
from chalice.test import Client

from chalicelib import runtime
from tests.factories import make_coder
from trainset import tokens
from trainset.local.secrets import local_token_secret


@pytest.fixture()
def client(db_pool):
    from app import app

    runtime.configure(database_pool=db_pool, gold_rate=0.0, lease_seconds=600,
                      image_url=lambda key: f"http://images.test/{key}")
    with Client(app) as test_client:
        yield test_client


def auth(coder) -> dict[str, str]:
    return {"Authorization": "Bearer " + tokens.mint(coder.id, coder.name, local_token_secret()),
            "Content-Type": "application/json"}


@pytest.fixture()
def manager(db):
    return make_coder(db, "boss", role="manager")
