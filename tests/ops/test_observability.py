"""Request ids, structured logs, traces, forwarded addresses, the guarded /metrics and
readiness with the policy listener — on the real app, each test with settings of its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.app import create_app
from api.logs import RequestIdMiddleware, configure_logging, current_request_id
from api.ops_settings import OpsSettings
from api.secrets import ConfigurationError
from api.settings import Settings
from api.tracing import tracing_middleware
from db.models import AuditEvent

OFFERED = "client-chosen-id-0001"


@contextlib.asynccontextmanager
async def served(
    settings: Settings, client: str = "127.0.0.1", **changes: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(dataclasses.replace(settings, **changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client, 50123))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


@pytest.fixture
def log_stream() -> io.StringIO:
    return io.StringIO()


def _probe_app(*middleware: Middleware) -> Starlette:
    async def probe(request: Request) -> JSONResponse:
        logging.getLogger("dossier.test").warning("from the standard library")
        return JSONResponse(
            {"seen": request.headers.get("x-request-id"), "current": current_request_id()}
        )

    async def broken(request: Request) -> JSONResponse:
        raise RuntimeError("boom")

    routes = [Route("/probe", probe), Route("/broken", broken)]
    return Starlette(routes=routes, middleware=list(middleware))


async def test_one_request_id_on_the_response_the_handler_and_every_log_line(
    log_stream: io.StringIO,
) -> None:
    configure_logging("INFO", json=True, stream=log_stream)
    app = _probe_app(Middleware(RequestIdMiddleware))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        offered = await http.get("/probe", headers={"X-Request-ID": OFFERED})
        bad = await http.get("/probe", headers={"X-Request-ID": "bad id with spaces"})
        fresh = await http.get("/probe")
        broken = await http.get("/broken")
    assert offered.headers["x-request-id"] == OFFERED
    assert offered.json() == {"seen": OFFERED, "current": OFFERED}
    for response in (bad, fresh):
        rid = response.headers["x-request-id"]
        assert rid != "bad id with spaces" and len(rid) == 32
        assert response.json() == {"seen": rid, "current": rid}
    assert broken.status_code == 500
    assert broken.json()["errors"][0]["extensions"]["requestId"] == broken.headers["x-request-id"]

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == OFFERED]
    assert {line["event"] for line in mine} == {"from the standard library", "request"}
    access = next(line for line in mine if line["event"] == "request")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/probe", 200)
    assert all("timestamp" in line and "level" in line for line in lines)
    failure = next(line for line in lines if line["event"] == "unhandled error")
    assert failure["request_id"] == broken.headers["x-request-id"]
    assert "RuntimeError: boom" in failure["exception"]


async def test_console_logs_in_dev_and_the_level_is_honoured(log_stream: io.StringIO) -> None:
    configure_logging("WARNING", json=False, stream=log_stream)
    logging.getLogger("dossier.test").info("hidden below the level")
    logging.getLogger("dossier.test").error("shown", extra={"request_id": "r-12345678"})
    text = log_stream.getvalue()
    assert "hidden below the level" not in text
    assert "shown" in text and "request_id=r-12345678" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_a_bad_log_level_names_the_variable(tmp_path: Path) -> None:
    base = {"DOSSIER_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigurationError, match="DOSSIER_LOG_LEVEL"):
        Settings.from_env({**base, "DOSSIER_LOG_LEVEL": "LOUD"})
    assert Settings.from_env({**base, "DOSSIER_LOG_LEVEL": "debug"}).log_level == "DEBUG"


async def test_login_routes_carry_the_request_id_into_response_and_audit(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with served(settings) as (_, http):
        response = await http.post(
            "/auth/token",
            data={"username": "nobody-at-all-7", "password": "whatever it is"},
            headers={"X-Request-ID": OFFERED},
        )
    assert response.status_code == 401
    assert response.headers["x-request-id"] == OFFERED
    async with engine.connect() as connection:
        ids = (
            await connection.scalars(
                select(AuditEvent.request_id).where(AuditEvent.actor == "nobody-at-all-7")
            )
        ).all()
    assert ids == [OFFERED]


async def test_forwarded_address_only_from_a_trusted_proxy(
    settings: Settings, engine: AsyncEngine
) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    trusted = OpsSettings(trusted_proxies=("10.0.0.0/8",))
    async with served(settings, client="10.9.8.7", ops=trusted) as (_, http):
        form = {"username": "forwarded-user-1", "password": "whatever it is"}
        await http.post("/auth/token", data=form, headers=forwarded)
    async with served(settings, client="192.0.2.50", ops=trusted) as (_, http):
        form = {"username": "forwarded-user-2", "password": "whatever it is"}
        await http.post("/auth/token", data=form, headers=forwarded)
    async with served(settings, client="10.9.8.7") as (_, http):  # no proxies trusted
        form = {"username": "forwarded-user-3", "password": "whatever it is"}
        await http.post("/auth/token", data=form, headers=forwarded)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(AuditEvent.actor, AuditEvent.ip).where(AuditEvent.actor.like("forwarded-user-%"))
        )
        ips = {actor: str(ip) for actor, ip in rows}
    assert ips == {
        "forwarded-user-1": "203.0.113.7",
        "forwarded-user-2": "192.0.2.50",  # not a proxy of ours: its header is ignored
        "forwarded-user-3": "10.9.8.7",
    }


def test_trusted_proxies_are_checked(tmp_path: Path) -> None:
    base = {"DOSSIER_DATA_DIR": str(tmp_path)}
    parsed = Settings.from_env({**base, "DOSSIER_TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12"})
    assert parsed.ops.trusted_proxies == ("10.0.0.1", "172.16.0.0/12")
    with pytest.raises(ConfigurationError, match="DOSSIER_TRUSTED_PROXIES.*proxy.example"):
        Settings.from_env({**base, "DOSSIER_TRUSTED_PROXIES": "10.0.0.1,proxy.example"})


async def test_metrics_need_the_token_and_never_query_the_database(
    settings: Settings, engine: AsyncEngine
) -> None:
    guarded = OpsSettings(metrics_token="m" * 40)
    async with served(settings, ops=guarded) as (app, http):
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer " + "n" * 40})
        assert wrong.status_code == 401
        statements: list[str] = []
        sync_engine = app.state.dossier.engine.sync_engine

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            scraped = await http.get("/metrics", headers={"Authorization": "Bearer " + "m" * 40})
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
        assert scraped.status_code == 200
        assert "dossier_audit_chain_length" in scraped.text
        assert statements == []
    async with served(settings, env="prod") as (_, http):
        refused = await http.get("/metrics")
        assert refused.status_code == 403 and "DOSSIER_METRICS_TOKEN" in refused.text


async def test_database_gauges_are_refreshed_in_the_background(
    settings: Settings, engine: AsyncEngine
) -> None:
    from api.metrics import CHAIN_LENGTH
    from audit.chain import append_events
    from audit.events import ActorKind, AuditAction, AuditRecord

    async with served(settings, ops=OpsSettings(metrics_refresh_seconds=0.1)) as (app, _):
        state = app.state.dossier
        async with state.sessions() as session, session.begin():
            record = AuditRecord(actor="gauge-probe", actor_kind=ActorKind.SYSTEM,
                                 action=AuditAction.READ, resource_type="probe")  # fmt: skip
            await append_events(session, [record])
        async with engine.connect() as connection:
            head = await connection.scalar(text("SELECT seq FROM audit_chain_head WHERE id = 1"))
        for _ in range(50):
            if CHAIN_LENGTH._value.get() >= head:
                break
            await asyncio.sleep(0.05)
        assert CHAIN_LENGTH._value.get() >= head


async def test_readiness_fails_while_the_policy_listener_is_down(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with served(settings) as (app, http):
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "policy_listener": "ok"}
        store = app.state.dossier.extras["policy_store"]
        await store._drop_listener()  # what a lost connection leaves until it reconnects
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["policy_listener"] == "unavailable"


async def test_traces_only_when_configured() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert tracing_middleware({}) is None
    exporter = InMemorySpanExporter()
    layer = tracing_middleware({"OTEL_SERVICE_NAME": "dossier-test"}, exporter=exporter)
    assert layer is not None
    app = _probe_app()
    app.user_middleware.insert(0, layer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/probe")).status_code == 200
    spans = exporter.get_finished_spans()
    assert spans and any(span.name.startswith("GET") for span in spans)
    assert spans[0].resource.attributes["service.name"] == "dossier-test"
