"""Job tests: the demo database, an app whose exports go to a worker, and that worker."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.seed.demo import DemoSummary
from api.settings import Settings
from tests.graphql.conftest import (  # noqa: F401  # fixtures, registered by being imported
    GraphQLClient,
    demo,
    demo_app,
    demo_database_url,
    demo_engine,
    demo_settings,
    gql,
)

BACKGROUND_ROWS = 5  # exports of more rows than this go to the worker in these tests


def background_settings(settings: Settings, **worker: Any) -> Settings:
    """The demo settings, with small inline exports and an in-process worker (no digests:
    the demo database is shared with other tests)."""
    return dataclasses.replace(
        settings,
        bulk=dataclasses.replace(settings.bulk, inline_rows=BACKGROUND_ROWS),
        worker=dataclasses.replace(
            settings.worker,
            inprocess=True,
            digest_cron="",
            heartbeat_seconds=1.0,
            stalled_seconds=3.0,
            **worker,
        ),
    )


@pytest.fixture(scope="package")
async def worker_app(
    demo_settings: Settings,  # noqa: F811  # the fixture
    demo: DemoSummary,  # noqa: F811  # the fixture
) -> AsyncIterator[Starlette]:
    application = create_app(background_settings(demo_settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def worker_gql(worker_app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=worker_app, client=("127.0.0.1", 50021))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, {})


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, within: float = 30.0, every: float = 0.05
) -> Any:
    """The first truthy answer of `probe` within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if answer := await probe():
            return answer
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within} s")
