"""The application factory: one Starlette app, its routes, and the lifespan that owns resources."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth.routes import routes as auth_routes
from api.settings import Settings
from api.state import AppState
from db.engine import create_engine, create_sessionmaker


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.dossier
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("select 1"))
    except Exception:  # any database failure means not ready; the reason goes to the log
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if settings.database_url is None:
        raise RuntimeError("create_app needs DATABASE_URL; `dossier serve` starts one if absent")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url or "", settings.pool)
        state = AppState(settings=settings, engine=engine, sessions=create_sessionmaker(engine))
        app.state.dossier = state
        try:
            yield
        finally:
            await engine.dispose()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *auth_routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)
