"""The shared store: two processes' limiters over one Redis spend one budget; with Redis down
each falls back to its own in-process limits, says so, and returns to Redis once it answers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from api.auth.shared_throttle import SharedLoginThrottle
from api.auth.throttle import LoginKeys
from api.auth_settings import LoginThrottleSettings
from api.hardening.settings import HardeningSettings, RateBudget
from api.hardening.shared_limits import SharedRateLimiter, SharedStore
from policy.principal import Principal, PrincipalKind
from tests.ops.conftest import free_port

REDIS = "redis://127.0.0.1:6379/0"
SETTINGS = HardeningSettings(user_rate=RateBudget(burst=4, per_second=0.001))
USER = Principal(kind=PrincipalKind.USER, name="u", user_id=41)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores() -> Iterator[list[SharedStore]]:
    prefix = f"dossier-test-{uuid.uuid4().hex}"
    made = [SharedStore(REDIS, prefix=prefix) for _ in range(2)]
    yield made
    for store in made:
        store.close()


async def test_two_processes_spend_one_budget(stores: list[SharedStore]) -> None:
    limiters = [SharedRateLimiter(store, SETTINGS) for store in stores]
    waits = [await limiters[n % 2].spend(USER) for n in range(6)]
    assert waits[:4] == [None] * 4
    assert all(w is not None and w >= 1 for w in waits[4:])


async def test_failed_logins_are_counted_once_across_processes(stores: list[SharedStore]) -> None:
    settings = LoginThrottleSettings(username_burst=2, username_refill_seconds=600)
    throttles = [SharedLoginThrottle(store, settings) for store in stores]
    keys = LoginKeys.of("ann", "10.1.1.1")
    await throttles[0].record_failure(keys.spent)
    assert await throttles[1].retry_after(keys.checked(from_known_network=False)) is None
    await throttles[1].record_failure(keys.spent)
    assert await throttles[0].retry_after(keys.checked(from_known_network=False)) is not None
    await throttles[0].reset(keys.pair)
    assert await throttles[1].retry_after(keys.checked(from_known_network=True)) is None
    assert not await throttles[1].remembers(keys.known_network)
    await throttles[0].remember(keys.known_network, 60)
    assert await throttles[1].remembers(keys.known_network)


async def test_with_redis_down_limits_stay_in_process_and_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = SharedStore(f"redis://127.0.0.1:{free_port()}/0", retry_seconds=5, clock=clock)
    limiter = SharedRateLimiter(store, SETTINGS)
    with caplog.at_level(logging.WARNING, logger="dossier.shared_limits"):
        waits = [await limiter.spend(USER) for _ in range(5)]
    assert waits[:4] == [None] * 4 and waits[4] is not None  # still limited, in this process
    assert store.is_down
    assert sum("Redis unavailable" in r.getMessage() for r in caplog.records) == 1
    clock.now += 6
    assert not store.is_down  # tried again after retry_seconds (and found down again)
    await limiter.spend(USER)
    assert store.is_down
    store.close()
