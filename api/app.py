"""The application factory: one Starlette app, its routes, and the lifespan that owns resources."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from api import hardening_layers as hardening
from api.auth.routes import routes as auth_routes
from api.console import console_routes
from api.exports import routes as export_routes
from api.graphiql import graphiql_html, static_mount
from api.graphql import graphql_endpoint
from api.hardening.shared_limits import replica_router, shared_store_of
from api.logs import configure_logging
from api.metrics import timed, watch_pool
from api.operation import OperationFactsCache
from api.ops_routes import GaugeRefresher, metrics_endpoint, outer_middleware, readyz
from api.root_schema import build_schema
from api.settings import Settings
from api.state import AppState
from api.subscriptions import subscriptions_endpoint
from api.worker import InProcessWorker
from audit.indexer import ResourceIndexer
from audit.partitions import ensure_partitions
from db.engine import create_engine, create_sessionmaker, plain_url
from db.statements import count_statement
from events.runtime import start_events
from policy.decisions import DecisionCache
from policy.store import PolicyStore
from resolvers.reminders import ReminderScheduler

log = logging.getLogger("dossier.app")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if settings.database_url is None:
        raise RuntimeError("create_app needs DATABASE_URL; `dossier serve` starts one if absent")
    database_url = settings.database_url
    configure_logging(settings.log_level, json=settings.is_production)

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
        shared = shared_store_of(settings.redis_url, settings.redis_prefix)
        replicas = replica_router(settings.replicas, settings.pool, shared)
        budget = hardening.cost_budget(settings, shared)
        state.extras.update(
            cost_budget=budget,  # None: no budget (DOSSIER_COST_BUDGET=0)
            shared_store=shared,  # None: limits stay in this process
            replicas=replicas,  # None: every read on the primary
            policy_store=store,
            decision_cache=DecisionCache(),
            schema=build_schema(
                extensions=hardening.schema_extensions(settings, budget),
                validation_rules=hardening.validation_rules(settings),
            ),
            rate_limiter=hardening.rate_limiter(settings, shared),
            operation_facts=OperationFactsCache(max_tokens=settings.hardening.max_tokens),
            graphiql_html=graphiql_html() if settings.is_dev else "",
        )
        worker = None
        if settings.worker.inprocess:
            # insight refreshes, digests and expiry are periodic jobs (jobs/): one worker here
            worker = InProcessWorker(settings)
            await worker.start()
        gauges = GaugeRefresher(engine, settings.ops.metrics_refresh_seconds)
        await gauges.start()
        indexer = None
        if settings.audit_index_seconds > 0:
            indexer = ResourceIndexer(engine, settings.audit_index_seconds)
            await indexer.start()
        # events out (issue 20): this process's LISTEN hub, and a delivery worker
        events = await start_events(
            webhooks=settings.webhooks, cipher=settings.field_cipher,
            sessions=state.sessions, listen_dsn=listen_url,
            schema=state.extras["schema"], store=store,
            deliver=settings.webhooks.deliver_in_serve,
        )  # fmt: skip
        state.extras["events"] = events
        reminder_scheduler = None
        if settings.reminder_seconds > 0:
            reminder_scheduler = ReminderScheduler(engine, settings.reminder_seconds)
            await reminder_scheduler.start()
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
            await gauges.stop()
            await events.stop()
            if reminder_scheduler is not None:
                await reminder_scheduler.stop()
            await store.stop()
            if replicas is not None:
                await replicas.dispose()
            if shared is not None:
                shared.close()
            await engine.dispose()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", timed(graphql_endpoint), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", subscriptions_endpoint),  # graphql-transport-ws
        Route("/metrics", metrics_endpoint),
        *auth_routes,
        *export_routes,
        *console_routes(settings),
    ]
    if settings.is_dev:
        routes.append(static_mount())  # GraphiQL's own files: /graphiql/static/…
    middleware = [*outer_middleware(settings, os.environ), *hardening.http_middleware(settings)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
