"""Demo-login tokens: JWT HS256 with ``sub`` and ``exp`` (SPEC.md §3), portable between implementations."""

from __future__ import annotations

import time

import jwt

from chatcore.protocol import valid_user
from chatcore.settings import Settings

ALGORITHM = "HS256"
# SPEC.md §3 checks the signature, sub and exp, nothing else: a token from any issuer with the secret works.
CHECKS: jwt.types.Options = {
    "require": ["sub", "exp"],
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_jti": False,
}


def issue_token(user: str, settings: Settings) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + settings.token_ttl}, settings.secret, ALGORITHM)


def verify_token(token: str, settings: Settings) -> str | None:
    """The user name the token was issued to, or ``None`` if it is invalid, expired or names no valid user."""
    try:
        claims = jwt.decode(token, settings.secret, algorithms=[ALGORITHM], options=CHECKS)
    except jwt.PyJWTError:
        return None
    user = claims["sub"]
    return user if isinstance(user, str) and valid_user(user) else None
