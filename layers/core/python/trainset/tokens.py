"""Signed bearer tokens for local mode (HS256 JWTs via PyJWT, a small, widely used library).

In AWS, Cognito issues tokens and API Gateway checks them; locally, a manager mints tokens with
``python -m trainset coders add``. A token names a coder id; roles and status are read from the
database on every request, so certifying or revoking takes effect at once.
"""

from __future__ import annotations

import time
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


def verify(token: str, secret: str) -> TokenClaims:
    """The token's claims; Unauthorized with the reason when it is expired, forged or malformed."""
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                             options={"require": ["sub", "exp", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired; ask a manager for a new one") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"token rejected: {exc}") from None
    try:
        return TokenClaims(coder_id=int(payload["sub"]), name=str(payload.get("name", "")))
    except (TypeError, ValueError):
        raise Unauthorized("token rejected: subject is not a coder id") from None
