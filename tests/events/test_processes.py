"""Delivery across processes: `dossier deliver` killed mid-send, and two of them at once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import from_global_id
from tests.events.conftest import Receiver
from tests.events.helpers import (
    create_customer,
    create_webhook,
    deactivate_webhooks,
    rows,
    update_customer,
)
from tests.graphql.conftest import GraphQLClient


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


@contextlib.asynccontextmanager
async def deliver_process(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from api.cli import main; main()", "deliver",
        env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def statuses(engine: AsyncEngine, webhook: str) -> list[str]:
    found = await rows(
        engine,
        "SELECT status FROM webhook_deliveries WHERE webhook_id = :w ORDER BY id",
        w=pk(webhook),
    )
    return [r.status for r in found]


async def until(condition: object, limit: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await condition():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_delivery_survives_a_killed_worker(
    gql: GraphQLClient, events_engine: AsyncEngine, events_env: dict[str, str], receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    hook = await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
    customer = await create_customer(gql, "alice")
    assert "errors" not in await update_customer(gql, "alice", customer["id"], industry="金融")
    receiver.delay = 30  # the worker is mid-send, holding its claim, when it is killed
    async with deliver_process(events_env) as first:
        await until(lambda: _received(receiver, 1))
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert await statuses(events_engine, hook["id"]) == ["PENDING"]  # nothing recorded, not lost
    receiver.delay = 0
    receiver.release.set()  # the killed worker's request is answered into the void
    async with deliver_process(events_env):
        await until(lambda: _delivered(events_engine, hook["id"], 1))
    assert len(set(receiver.ids())) == 1 and len(receiver.received) == 2  # at least once


async def test_two_workers_never_send_one_delivery_twice(
    gql: GraphQLClient, events_engine: AsyncEngine, events_env: dict[str, str], receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    hooks = [
        await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
        for _ in range(3)
    ]
    customers = [await create_customer(gql, "alice") for _ in range(3)]
    for round_ in ("金融", "零售"):
        for customer in customers:
            body = await update_customer(gql, "alice", customer["id"], industry=round_)
            assert "errors" not in body, body
    expected = len(hooks) * len(customers) * 2
    async with deliver_process(events_env), deliver_process(events_env):
        await asyncio.gather(*(_wait_all(events_engine, h["id"], 6) for h in hooks))
    counts = collections.Counter(receiver.ids())
    assert len(counts) == expected and set(counts.values()) == {1}
    # per endpoint, in outbox order
    for hook in hooks:
        sent = [r["headers"]["webhook-id"] for r in receiver.received
                if r["headers"]["webhook-id"] in await _ids(events_engine, hook["id"])]  # fmt: skip
        assert sent == sorted(sent, key=lambda i: int(i.removeprefix("msg_")))


async def _received(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def _delivered(engine: AsyncEngine, hook: str, n: int) -> bool:
    return (await statuses(engine, hook)).count("DELIVERED") >= n


async def _wait_all(engine: AsyncEngine, hook: str, n: int) -> None:
    await until(lambda: _delivered(engine, hook, n), limit=60)


async def _ids(engine: AsyncEngine, hook: str) -> set[str]:
    found = await rows(engine, "SELECT id FROM webhook_deliveries WHERE webhook_id = :w",
                       w=pk(hook))  # fmt: skip
    return {f"msg_{r.id}" for r in found}
