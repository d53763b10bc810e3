"""The application factory: one Starlette app, its routes, and the lifespan that owns resources."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from sqlalchemy import event, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.http.ides import get_graphql_ide_html

from api.auth.routes import routes as auth_routes
from api.exports import routes as export_routes
from api.graphql import graphql_endpoint
from api.hardening import layers as hardening
from api.metrics import metrics_endpoint, timed, watch_pool
from api.settings import Settings
from api.state import AppState
from api.worker import InProcessWorker
from audit.indexer import ResourceIndexer
from audit.partitions import ensure_partitions
from db.engine import create_engine, create_sessionmaker, plain_url
from db.statements import count_statement
from policy.decisions import DecisionCache
from policy.store import PolicyStore
from resolvers.schema import build_schema


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
    database_url = settings.database_url

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(database_url, settings.pool)
        event.listen(engine.sync_engine, "before_cursor_execute", count_statement)
        watch_pool(engine)  # the pool gauges of /metrics
        state = AppState(settings=settings, engine=engine, sessions=create_sessionmaker(engine))
        async with engine.begin() as connection:
            await ensure_partitions(connection)  # this and next month's audit partitions
        listen_url = plain_url(settings.listen_database_url or database_url)
        store = PolicyStore(state.sessions, listen_dsn=listen_url)
        await store.start()
        state.extras.update(
            policy_store=store,
            decision_cache=DecisionCache(),
            schema=build_schema(
                extensions=hardening.schema_extensions(settings),
                validation_rules=hardening.validation_rules(settings),
            ),
            rate_limiter=hardening.rate_limiter(settings),
            graphiql_html=get_graphql_ide_html("graphiql") if settings.is_dev else "",
        )
        worker = None
        if settings.worker.inprocess:
            # insight refreshes, digests and expiry are periodic jobs (jobs/): one worker here
            worker = InProcessWorker(settings)
            await worker.start()
        indexer = None
        if settings.audit_index_seconds > 0:
            indexer = ResourceIndexer(engine, settings.audit_index_seconds)
            await indexer.start()
        app.state.dossier = state
        # everything built so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise walk the whole schema and metadata on
        # every gen-2 collection (measured: ~8% of a nested view's CPU went to such pauses)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            if indexer is not None:
                await indexer.stop()
            await store.stop()
            await engine.dispose()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", timed(graphql_endpoint), methods=["GET", "POST"]),
        Route("/metrics", metrics_endpoint),
        *auth_routes,
        *export_routes,
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, middleware=hardening.http_middleware(settings)
    )
