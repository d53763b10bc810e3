"""Opaque bearer secrets: high-entropy random strings, stored only as their SHA-256 digest.

A 256-bit random secret cannot be guessed, so a fast hash is enough to keep a database leak from
handing out working tokens (a slow password hash would only slow every request down). The prefix
tells a partner token from a refresh token from a JWT (`eyJ…`) at a glance, in logs and in
secret scanners.
"""

from __future__ import annotations

import hashlib
import secrets

REFRESH_TOKEN_PREFIX = "drt_"  # noqa: S105  # a public prefix, not a secret
PARTNER_TOKEN_PREFIX = "dpt_"  # noqa: S105  # a public prefix, not a secret
_SECRET_BYTES = 32


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(_SECRET_BYTES)


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()
