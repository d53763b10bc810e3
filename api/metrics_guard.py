"""Who may scrape `/metrics`: anyone in dev and test without a token; with
`DOSSIER_METRICS_TOKEN`, only `Authorization: Bearer <token>`; in production, nobody until it
is set (the series name operations, users' activity and the audit chain's length)."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.settings import Settings


def metrics_allowed(request: Request, settings: Settings) -> Response | None:
    """None when the scrape may go on, else the refusal."""
    token = settings.ops.metrics_token
    if token is None:
        if settings.is_production:
            return JSONResponse(
                {"error": "forbidden", "error_description": "set DOSSIER_METRICS_TOKEN"},
                status_code=403,
            )
        return None
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        return None
    return JSONResponse(
        {"error": "unauthorized"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )
