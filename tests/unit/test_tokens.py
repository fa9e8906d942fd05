"""Local bearer tokens: signed, expiring, and checked once per process for speed without
letting a forged, foreign or expired token through."""

import time

import jwt
import pytest

from trainset import tokens
from trainset.errors import Unauthorized

SECRET = "s" * 40


def test_a_good_token_verifies_and_is_remembered():
    token = tokens.mint(7, "ana", SECRET)
    assert tokens.verify(token, SECRET) == tokens.TokenClaims(7, "ana")
    assert tokens.verify(token, SECRET) == tokens.TokenClaims(7, "ana")  # from memory


def test_a_remembered_token_is_still_refused_under_another_secret():
    token = tokens.mint(7, "ana", SECRET)
    tokens.verify(token, SECRET)
    with pytest.raises(Unauthorized, match="rejected"):
        tokens.verify(token, "another secret " * 3)


def test_forged_and_malformed_tokens_are_refused():
    forged = jwt.encode({"sub": "1", "iss": tokens.ISSUER, "exp": time.time() + 60},
                        "not the secret" * 3, algorithm="HS256")
    for token in (forged, "abc", forged[:-2]):
        with pytest.raises(Unauthorized):
            tokens.verify(token, SECRET)


def test_a_remembered_token_stops_working_when_it_expires():
    token = tokens.mint(8, "ben", SECRET, ttl_seconds=1)
    tokens.verify(token, SECRET)
    time.sleep(1.1)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token, SECRET)
