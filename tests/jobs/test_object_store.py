"""Export files in an S3-compatible store (moto's server on a loopback port), when configured."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]  # boto3 ships no hints
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.seed.demo import DemoSummary
from api.settings import Settings
from bulk.objects import ObjectStoreSettings
from tests.bulk.conftest import EXPORT_CUSTOMERS, csv_rows, download
from tests.graphql.conftest import GraphQLClient
from tests.jobs.conftest import eventually
from tests.jobs.test_background_exports import FIELDS
from tests.ops.conftest import free_port

BUCKET = "dossier-test-exports"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    port = free_port()
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(url, timeout=1)
                break
            assert time.monotonic() < deadline and server.poll() is None, "moto did not start"
            time.sleep(0.1)
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
async def s3_app(
    demo_settings: Settings, demo: DemoSummary, s3_url: str
) -> AsyncIterator[Starlette]:
    # written in the request: the demo database's other apps run workers without the store,
    # and any worker may take a job (every worker of one deployment has the same settings)
    store = ObjectStoreSettings(bucket=BUCKET, endpoint_url=s3_url, region="us-east-1")
    settings = dataclasses.replace(
        demo_settings, bulk=dataclasses.replace(demo_settings.bulk, object_store=store)
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def stored_keys(s3_url: str) -> list[str]:
    found = boto3.client("s3", endpoint_url=s3_url).list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in found.get("Contents", [])]


async def test_exports_go_to_the_object_store_and_are_deleted_once_downloaded(
    gql: GraphQLClient, s3_app: Starlette, s3_url: str, demo_engine: AsyncEngine
) -> None:
    reference = (await gql.query("bob", EXPORT_CUSTOMERS, {"fields": FIELDS}))["data"]
    expected = csv_rows((await download(gql, "bob", reference["exportCustomers"]["url"])).content)
    transport = httpx.ASGITransport(app=s3_app, client=("127.0.0.1", 50031))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        client = GraphQLClient(http, {})
        started = await client.query("bob", EXPORT_CUSTOMERS, {"fields": FIELDS})
        state = started["data"]["exportCustomers"]
        export_id = state["id"]
        async with demo_engine.connect() as connection:
            storage, key = (
                await connection.execute(
                    text("SELECT storage, path FROM export_files WHERE id = :id"),
                    {"id": export_id},
                )
            ).one()
        assert storage == "s3"
        assert f"dossier/exports/{key}" in stored_keys(s3_url)
        fetched = await download(client, "bob", state["url"])
        assert fetched.status_code == 200
        assert csv_rows(fetched.content) == expected  # the same rows and masks
        assert (await download(client, "bob", state["url"])).status_code == 404
    # deleted once sent (after the response: give the background task a moment)
    await eventually(_gone(s3_url, f"dossier/exports/{key}"), within=10)


def _gone(s3_url: str, name: str) -> Any:
    async def probe() -> bool:
        return name not in stored_keys(s3_url)

    return probe
