"""Why a bearer token was refused, as a short reason code the client may see.

The codes say what is wrong with the token, never anything about other accounts: an unknown
user and a wrong password are one answer at /auth/token, but a token we signed ourselves may
say that it expired or was revoked.
"""

from __future__ import annotations

from enum import StrEnum

from starlette.responses import JSONResponse


class AuthFailure(StrEnum):
    MISSING_TOKEN = "missing_token"  # noqa: S105  # a reason code, not a secret
    MALFORMED_TOKEN = "malformed_token"  # noqa: S105  # a reason code, not a secret
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    MISSING_CLAIM = "missing_claim"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    UNKNOWN_USER = "unknown_user"
    INACTIVE_USER = "inactive_user"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105  # a reason code, not a secret
    REVOKED = "revoked"


class AuthenticationError(Exception):
    """The request carries no valid credentials; `code` is an AuthFailure value."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_MESSAGES: dict[str, str] = {
    AuthFailure.MISSING_TOKEN: "Authentication required: send Authorization: Bearer <token>",
    AuthFailure.EXPIRED: "The access token has expired",
    AuthFailure.REVOKED: "The token was revoked",
}


def unauthorized_body(code: str) -> dict[str, object]:
    """A GraphQL-shaped 401 body (the GraphQL-over-HTTP convention, Apollo's `UNAUTHENTICATED`),
    with the reason code in `extensions.reason`.

    The top-level `error` and `code` keys are the body of the first release, kept beside
    `errors` for clients that read them; new clients read `errors[0].extensions`.
    """
    message = _MESSAGES.get(code, "The bearer token was refused")
    return {
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED", "reason": code}}],
        "error": "unauthorized",
        "code": code,
    }


def unauthorized_response(error: AuthenticationError) -> JSONResponse:
    """The 401 for a refused bearer token (RFC 6750 §3), with the reason code in the body."""
    if error.code == AuthFailure.MISSING_TOKEN:
        challenge = 'Bearer realm="dossier"'
    else:
        challenge = (
            f'Bearer realm="dossier", error="invalid_token", error_description="{error.code}"'
        )
    return JSONResponse(
        unauthorized_body(error.code),
        status_code=401,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )
