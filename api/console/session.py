"""The console's session: one encrypted, HttpOnly, SameSite=Strict cookie, and its CSRF token.

The cookie holds the signed-in user's OAuth2 access and refresh tokens and a random CSRF token,
sealed with Fernet (AES-CBC + HMAC, from `cryptography`, already a dependency) under a key
derived from the JWT signing secret. Why a sealed cookie rather than server-side rows: every
process of a deployment can read it without shared state, a refresh token never reaches
JavaScript (HttpOnly), and nobody holding the cookie store can read the tokens out of it. The
CSRF token is a synchronizer token: it lives inside the sealed cookie and every form repeats
it in a hidden field; a POST whose field does not match is refused, whatever its origin.
Before sign-in the cookie holds only the CSRF token, so the sign-in form is protected as well.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "dossier_console"
CSRF_FIELD = "csrf_token"
MAX_AGE_SECONDS = 12 * 3600


def cookie_key(secret: str) -> Fernet:
    """A Fernet key of its own for the console, derived from the JWT secret (HKDF-SHA256)."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"dossier console cookie"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


@dataclass
class ConsoleSession:
    """What the cookie carries; `changed` makes the response set it again."""

    csrf: str
    username: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    changed: bool = field(default=False, compare=False)

    @property
    def is_signed_in(self) -> bool:
        return self.access_token is not None

    def sign_in(self, username: str, access_token: str, refresh_token: str | None) -> None:
        self.username, self.access_token, self.refresh_token = (
            username,
            access_token,
            refresh_token,
        )
        self.csrf = secrets.token_urlsafe(32)  # a new session gets a new token (no fixation)
        self.changed = True

    def sign_out(self) -> None:
        self.username = self.access_token = self.refresh_token = None
        self.csrf = secrets.token_urlsafe(32)
        self.changed = True

    def accepts(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self.csrf.encode())

    def _document(self) -> dict[str, Any]:
        return {
            "csrf": self.csrf,
            "username": self.username,
            "access": self.access_token,
            "refresh": self.refresh_token,
        }


class SessionCookie:
    """Opens and seals `ConsoleSession`s; one per app."""

    def __init__(self, fernet: Fernet, *, secure: bool) -> None:
        self._fernet = fernet
        self._secure = secure

    def open(self, request: Request) -> ConsoleSession:
        sealed = request.cookies.get(COOKIE)
        if sealed:
            try:
                document = orjson.loads(self._fernet.decrypt(sealed, ttl=MAX_AGE_SECONDS))
                return ConsoleSession(
                    csrf=document["csrf"],
                    username=document.get("username"),
                    access_token=document.get("access"),
                    refresh_token=document.get("refresh"),
                )
            except (InvalidToken, orjson.JSONDecodeError, KeyError, TypeError):
                pass  # expired, forged or from another key: start over
        return ConsoleSession(csrf=secrets.token_urlsafe(32), changed=True)

    def seal(self, session: ConsoleSession, response: Response) -> Response:
        if session.changed:
            response.set_cookie(
                COOKIE,
                self._fernet.encrypt(orjson.dumps(session._document())).decode(),
                max_age=MAX_AGE_SECONDS,
                path="/console",
                httponly=True,
                samesite="strict",
                secure=self._secure,
            )
        return response
