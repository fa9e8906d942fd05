"""Signed bearer tokens for local mode (HS256 JWTs via PyJWT, a small, widely used library).

In AWS, Cognito issues tokens and API Gateway checks them; locally, a manager mints tokens with
``python -m trainset coders add``. A token names a coder id; roles and status are read from the
database on every request, so certifying or revoking takes effect at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from trainset.errors import Unauthorized

ISSUER = "trainset-local"
DEFAULT_TTL_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class TokenClaims:
    coder_id: int
    name: str


def mint(coder_id: int, name: str, secret: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    now = int(time.time())
    payload = {"sub": str(coder_id), "name": name, "iss": ISSUER, "iat": now,
               "exp": now + ttl_seconds}
    return jwt.encode(payload, secret, algorithm="HS256")


_VERIFIED_MAX = 4096
_verified: OrderedDict[tuple[str, bytes], tuple[TokenClaims, float]] = OrderedDict()
_verified_lock = threading.Lock()


def verify(token: str, secret: str) -> TokenClaims:
    """The token's claims; Unauthorized with the reason when it is expired, forged or malformed.

    A coder sends the same token with every request: a token whose signature checked out is
    remembered (per secret, until it expires) so each later request costs a dictionary
    lookup instead of a signature check, which was most of the local server's CPU time."""
    key = (token, hashlib.sha256(secret.encode()).digest())
    with _verified_lock:
        hit = _verified.get(key)
    if hit is not None and time.time() < hit[1]:
        return hit[0]
    claims, expires = _check(token, secret)
    with _verified_lock:
        _verified[key] = (claims, expires)
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return claims


def _check(token: str, secret: str) -> tuple[TokenClaims, float]:
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                             options={"require": ["sub", "exp", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired; ask a manager for a new one") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"token rejected: {exc}") from None
    try:
        return (TokenClaims(coder_id=int(payload["sub"]), name=str(payload.get("name", ""))),
                float(payload["exp"]))
    except (TypeError, ValueError):
        raise Unauthorized("token rejected: subject is not a coder id") from None
