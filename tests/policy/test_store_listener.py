"""A process whose policy listener is lost hears again, and catches up on what it missed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.settings import Settings
from db.engine import create_sessionmaker, plain_url
from policy.store import PolicyStore, announce_change

# reconnecting starts after 0.1 s and backs off; a loopback reconnect takes milliseconds
BOUND_SECONDS = 5.0


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(int(BOUND_SECONDS / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {BOUND_SECONDS} s")


@pytest.fixture
async def store(engine: AsyncEngine, settings: Settings) -> AsyncIterator[PolicyStore]:
    started = PolicyStore(create_sessionmaker(engine), plain_url(settings.database_url or ""))
    await started.start()
    yield started
    await started.stop()


async def _announce(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await announce_change(session)


async def test_a_terminated_listener_reconnects_and_reloads_what_it_missed(
    store: PolicyStore, engine: AsyncEngine
) -> None:
    assert store.listening
    listener = store._listener
    assert listener is not None
    before = store.current().version
    async with engine.connect() as connection:
        await connection.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.get_server_pid()}
        )
    # the reload after reconnecting covers whatever was announced while nobody listened
    await _until(lambda: store.listening and store._listener is not listener)
    await _until(lambda: store.current().version > before)
    await _heard_by_the_same_listener(store, engine)


async def _heard_by_the_same_listener(store: PolicyStore, engine: AsyncEngine) -> None:
    """An announcement reloads the snapshot through NOTIFY, not through another reconnect."""
    listener, heard = store._listener, store.current().version
    await _announce(engine)
    await _until(lambda: store.current().version > heard)
    assert store._listener is listener


async def test_a_listener_that_stops_answering_is_replaced(
    store: PolicyStore, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = store._listener
    assert listener is not None

    # no answer within the probe's timeout: here a timeout of zero, which nothing meets
    monkeypatch.setattr(store, "PROBE_TIMEOUT_SECONDS", 0)
    monkeypatch.setattr(store, "LISTENER_PROBE_SECONDS", 0.05)
    store._spawn(store._probe_listener())  # the started one sleeps the default 10 s first
    await _until(lambda: store.listening and store._listener is not listener)
    monkeypatch.setattr(store, "PROBE_TIMEOUT_SECONDS", 5.0)  # the new one answers in time
    await asyncio.sleep(0.3)  # a replacement under way settles
    await _heard_by_the_same_listener(store, engine)


async def test_stopping_does_not_reconnect(store: PolicyStore) -> None:
    await store.stop()
    await asyncio.sleep(0.3)
    assert not store.listening
