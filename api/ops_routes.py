"""The operations routes and layers: `/readyz`, a guarded `/metrics` whose database gauges are
refreshed in the background, and the outer ASGI middleware (forwarded addresses, tracing,
request id and logging), outermost first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.hardening.failures import RETRY_AFTER_SECONDS
from api.logs import RequestIdMiddleware
from api.metrics import count_policy_loads, exposition, sample_chain_length
from api.metrics_guard import metrics_allowed
from api.settings import Settings
from api.state import AppState
from api.tracing import tracing_middleware

log = logging.getLogger(__name__)


def outer_middleware(settings: Settings, environ: Mapping[str, str]) -> list[Middleware]:
    layers: list[Middleware] = []
    if settings.ops.trusted_proxies:
        layers.append(
            Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.ops.trusted_proxies))
        )
    tracing = tracing_middleware(environ)
    if tracing is not None:
        layers.append(tracing)
    layers.append(Middleware(RequestIdMiddleware))
    return layers


async def readyz(request: Request) -> Response:
    """Ready when the database answers and, where one is configured, the policy listener is
    connected (a process that cannot hear policy changes would serve stale decisions)."""
    state: AppState = request.app.state.dossier
    checks: dict[str, str] = {}
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("select 1"))
        checks["database"] = "ok"
    except Exception:  # any database failure means not ready
        log.warning("readiness: database unavailable", exc_info=True)
        checks["database"] = "unavailable"
    store = state.extras.get("policy_store")
    if store is not None and getattr(store, "_listen_dsn", None) is not None:
        checks["policy_listener"] = "ok" if store.listening else "unavailable"
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(name for name, value in checks.items() if value != "ok")
    error = {
        "message": f"Not ready: {failing} unavailable",
        "extensions": {
            "code": "UNAVAILABLE",
            "requestId": getattr(request.state, "request_id", ""),
        },
    }
    return JSONResponse(
        {"status": "unavailable", "checks": checks, "errors": [error]},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


class GaugeRefresher:
    """Refreshes the database-derived gauges every `seconds` in the background."""

    def __init__(self, engine: AsyncEngine, seconds: float) -> None:
        self._engine, self._seconds = engine, seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await sample_chain_length(self._engine)
        self._task = asyncio.create_task(self._run(), name="dossier-metrics-gauges")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._seconds)
            await sample_chain_length(self._engine)  # logs and carries on when it fails

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def metrics_endpoint(request: Request) -> Response:
    """The scrape; it queries nothing: database gauges are refreshed in the background, and
    the route is guarded by `DOSSIER_METRICS_TOKEN` (`api.metrics_guard`)."""
    state = request.app.state.dossier
    refused = metrics_allowed(request, state.settings)
    if refused is not None:
        return refused
    store = state.extras.get("policy_store")
    if store is not None:
        count_policy_loads(store)
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
