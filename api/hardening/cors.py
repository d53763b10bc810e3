"""CORS from an allow-list: browsers on the listed origins may call the API, no others.

Tokens travel in the `Authorization` header, never in cookies, so credentials stay off: a page
on an allowed origin must hold a token to do anything, and no origin can ride on a session.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from api.hardening.settings import HardeningSettings

ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "X-Dossier-Upload")
EXPOSED_HEADERS = ("X-Request-ID", "Retry-After")


def cors_middleware(settings: HardeningSettings) -> Middleware | None:
    """The CORS middleware for the allow-list, or None when no origin is allowed."""
    if not settings.cors_origins:
        return None
    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )
