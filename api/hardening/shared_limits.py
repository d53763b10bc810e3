"""Limits every process and host shares, kept in Redis through the `limits` library.

With `DOSSIER_REDIS_URL` set, the per-principal request budget, the login throttle and the
replicas' read-your-writes log live in Redis, so N processes give a caller one budget, not N.
Each budget is a moving window (`limits`' `MovingWindowRateLimiter`, one Lua script per hit):
a token bucket of `burst` refilled one per `refill` seconds becomes `burst` per
`burst × refill` seconds — the same burst and the same long-run rate, counted exactly.

**When Redis is down** (refused, reset, or slower than `timeout` seconds), each process falls
back to an in-process store, logs a warning (at most every 30 s) and counts it on
`dossier_shared_store_fallbacks_total`, and tries Redis again after `retry_seconds`. Logins and
reads go on being served and stay limited — per process, as without Redis, so a caller gets
at most N × the budget while it lasts — rather than failing closed, which would turn a Redis
outage into a login outage for everyone, when Redis holds no data that must stay consistent:
only counters that expire within minutes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from api.hardening.rate_limit import RateKey
from api.hardening.settings import HardeningSettings, RateBudget
from api.metrics import count_shared_store_fallback
from db.engine import PoolOptions
from db.replicas import InProcessWriteLog, ReplicaRouter, ReplicaSettings, WriteLog
from policy.principal import Principal

log = logging.getLogger("dossier.shared_limits")
T = TypeVar("T")

WARN_EVERY_SECONDS = 30.0
_STORE_FAILURES = (StorageError, OSError, TimeoutError)


def window_of(burst: int, refill_seconds: float) -> RateLimitItem:
    """A moving window with the burst and long-run rate of a token bucket."""
    return RateLimitItemPerSecond(burst, max(1, math.ceil(burst * refill_seconds)))


def budget_window(budget: RateBudget) -> RateLimitItem:
    return window_of(budget.burst, 1.0 / budget.per_second)


class SharedStore:
    """Redis through `limits`, with an in-process store to fall back on while it is down."""

    def __init__(
        self,
        url: str | None,
        *,
        prefix: str = "dossier",
        timeout: float = 0.5,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis: Storage | None = None  # None: this process only (no DOSSIER_REDIS_URL)
        if url is not None:
            self.redis = RedisStorage(
                url if url.startswith("async+") else f"async+{url}",
                wrap_exceptions=True,
                key_prefix=prefix,
                connect_timeout=timeout,
                stream_timeout=timeout,
            )
        self.memory: Storage = MemoryStorage()
        self._windows = {id(s): MovingWindowRateLimiter(s) for s in (self.redis, self.memory) if s}
        self._counters = {
            id(s): SlidingWindowCounterRateLimiter(s) for s in (self.redis, self.memory) if s
        }
        self._timeout = timeout
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until = -math.inf
        self._warned = -math.inf

    def close(self) -> None:
        """Close the connections to Redis (at shutdown)."""
        client = getattr(getattr(self.redis, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    @property
    def is_down(self) -> bool:
        return self._clock() < self._down_until

    async def run(self, operation: Callable[[Storage, MovingWindowRateLimiter], Awaitable[T]]) -> T:
        """`operation` on Redis, or on the in-process store while Redis is unavailable."""
        if self.redis is not None and not self.is_down:
            try:
                async with asyncio.timeout(self._timeout * 2):
                    return await operation(self.redis, self._windows[id(self.redis)])
            except _STORE_FAILURES as exc:
                self._fall_back(exc)
        return await operation(self.memory, self._windows[id(self.memory)])

    async def spend(self, item: RateLimitItem, cost: int, *identifiers: str) -> float | None:
        """Spend `cost` from a sliding window counter (cheap for large amounts, unlike a moving
        window, which stores one entry per unit): None if it fit, else seconds to wait."""

        async def spend(storage: Storage, window: MovingWindowRateLimiter) -> float | None:
            counter = self._counters[id(storage)]
            if await counter.hit(item, *identifiers, cost=cost):
                return None
            stats = await counter.get_window_stats(item, *identifiers)
            return max(1.0, stats.reset_time - time.time())

        return await self.run(spend)

    def _fall_back(self, exc: BaseException) -> None:
        now = self._clock()
        self._down_until = now + self._retry_seconds
        count_shared_store_fallback()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            log.warning(
                "Redis unavailable (%r): limits are kept in this process for %.0f s; "
                "each process enforces them on its own meanwhile",
                exc,
                self._retry_seconds,
            )

    async def hit(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Spend one from the window: None if there was room, else seconds to wait."""

        async def spend(storage: Storage, window: MovingWindowRateLimiter) -> float | None:
            if await window.hit(item, *identifiers):
                return None
            return await _wait(window, item, identifiers)

        return await self.run(spend)

    async def wait(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Seconds until the window has room again, or None when it has room now."""

        async def probe(storage: Storage, window: MovingWindowRateLimiter) -> float | None:
            if await window.test(item, *identifiers):
                return None
            return await _wait(window, item, identifiers)

        return await self.run(probe)

    async def record(self, item: RateLimitItem, *identifiers: str) -> None:
        """Spend one from the window whether or not it is full."""

        async def spend(storage: Storage, window: MovingWindowRateLimiter) -> None:
            await window.hit(item, *identifiers)

        await self.run(spend)

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        async def clear(storage: Storage, window: MovingWindowRateLimiter) -> None:
            await window.clear(item, *identifiers)

        await self.run(clear)

    async def mark(self, key: str, seconds: float) -> None:
        """Set `key` for `seconds` (from now, also when it was set before)."""

        async def mark(storage: Storage, window: MovingWindowRateLimiter) -> None:
            await storage.clear(key)
            await storage.incr(key, max(1, math.ceil(seconds)))

        await self.run(mark)

    async def is_marked(self, key: str) -> bool:
        async def read(storage: Storage, window: MovingWindowRateLimiter) -> bool:
            return await storage.get(key) > 0

        return await self.run(read)


async def _wait(
    window: MovingWindowRateLimiter, item: RateLimitItem, identifiers: Sequence[str]
) -> float:
    stats = await window.get_window_stats(item, *identifiers)
    return max(1.0, stats.reset_time - time.time())


class SharedRateLimiter:
    """`RateLimiter` over a `SharedStore`: one budget per principal across every process."""

    def __init__(self, store: SharedStore, settings: HardeningSettings) -> None:
        self._store = store
        self._user = budget_window(settings.user_rate)
        self._partner = budget_window(settings.partner_rate)

    async def spend(self, principal: Principal) -> float | None:
        item = self._partner if principal.is_partner else self._user
        return await self._store.hit(item, "rate", RateKey.of(principal).value)


class SharedWriteLog:
    """`db.replicas.WriteLog` over a `SharedStore`: read-your-writes across every host."""

    def __init__(self, store: SharedStore) -> None:
        self._store = store

    async def note_write(self, writer: str, seconds: float) -> None:
        await self._store.mark(f"wrote/{writer}", seconds)

    async def wrote_lately(self, writer: str) -> bool:
        return await self._store.is_marked(f"wrote/{writer}")


def shared_store_of(url: str | None, prefix: str) -> SharedStore | None:
    """The store every process shares, or None without DOSSIER_REDIS_URL."""
    return SharedStore(url, prefix=prefix) if url else None


def replica_router(
    replicas: ReplicaSettings, pool: PoolOptions, shared: SharedStore | None
) -> ReplicaRouter | None:
    """The app's replicas, with read-your-writes kept where the limits are; None without any."""
    if not replicas.urls:
        return None
    writes: WriteLog = SharedWriteLog(shared) if shared is not None else InProcessWriteLog()
    return ReplicaRouter(replicas, pool, writes)
