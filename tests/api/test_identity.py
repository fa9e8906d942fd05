"""Who the caller is, in both auth modes: a caller can only ever act as their own coder row."""

from types import SimpleNamespace

import pytest

from chalicelib import http, runtime
from tests.factories import make_coder
from trainset import tokens
from trainset.errors import Forbidden, Unauthorized
from trainset.local.secrets import local_token_secret
from trainset.store.labeling import LabelingStore


def request(claims=None, authorization=None):
    context = {"authorizer": {"claims": claims}} if claims is not None else {}
    headers = {"authorization": authorization} if authorization else {}
    return SimpleNamespace(context=context, headers=headers)


def test_cognito_claims_map_to_the_coder_row(db, monkeypatch):
    monkeypatch.setattr(runtime, "AUTH_MODE", "cognito")
    boss = make_coder(db, "boss", role="manager")
    store = LabelingStore(db)
    me = http.current_coder(request({"cognito:username": "boss",
                                     "cognito:groups": "managers,coders"}), store)
    assert me.id == boss.id and me.is_manager
    # A manager row without the managers group in the token acts as a plain coder.
    demoted = http.current_coder(request({"cognito:username": "boss",
                                          "cognito:groups": "coders"}), store)
    assert not demoted.is_manager
    with pytest.raises(Forbidden, match="not registered"):
        http.current_coder(request({"cognito:username": "stranger"}), store)
    with pytest.raises(Unauthorized):
        http.current_coder(request({}), store)
    # In Cognito mode a local bearer token is ignored, never trusted.
    token = tokens.mint(boss.id, "boss", local_token_secret())
    with pytest.raises(Unauthorized):
        http.current_coder(request(None, "Bearer " + token), store)


def test_local_token_names_the_coder(db):
    ana = make_coder(db, "ana")
    store = LabelingStore(db)
    token = tokens.mint(ana.id, "ana", local_token_secret())
    assert http.current_coder(request(None, "Bearer " + token), store).id == ana.id
    with pytest.raises(Unauthorized, match="Bearer"):
        http.current_coder(request(None, "Basic abc"), store)
    ghost = tokens.mint(999, "ghost", local_token_secret())
    with pytest.raises(Unauthorized, match="no longer exists"):
        http.current_coder(request(None, "Bearer " + ghost), store)
