"""Login throttling: failed attempts drain a token bucket per username and per client address.

`LoginThrottle` is the interface the routes use; `TokenBucketThrottle` keeps buckets in this
process, which is right for one server process. With several processes each keeps its own
buckets (an attacker gets N × the budget), so a store shared by every process (PostgreSQL,
Redis) should implement the same three methods; they are async for that reason.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from api.auth.settings import LoginThrottleSettings


class ThrottleKind(StrEnum):
    USERNAME = "username"
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    kind: ThrottleKind
    value: str


class LoginThrottle(Protocol):
    async def retry_after(self, keys: Sequence[ThrottleKey]) -> int | None:
        """Seconds to wait before any of `keys` may try again, or None when all may."""
        ...

    async def record_failure(self, keys: Sequence[ThrottleKey]) -> None:
        """Spend one attempt from every key's budget."""
        ...

    async def reset(self, key: ThrottleKey) -> None:
        """Forget the failures of `key` (a username after a successful login)."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucketThrottle:
    """In-process buckets: `burst` failures at once, then one more per `refill_seconds`.

    The number of tracked keys is bounded (least recently touched dropped first), so a flood
    of made-up usernames costs memory only up to `max_tracked_keys`.
    """

    def __init__(
        self, settings: LoginThrottleSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = {
            ThrottleKind.USERNAME: (settings.username_burst, settings.username_refill_seconds),
            ThrottleKind.ADDRESS: (settings.address_burst, settings.address_refill_seconds),
        }
        self._max_keys = settings.max_tracked_keys
        self._clock = clock
        self._buckets: OrderedDict[ThrottleKey, _Bucket] = OrderedDict()

    def _level(self, key: ThrottleKey, now: float) -> float:
        bucket = self._buckets.get(key)
        burst, refill = self._limits[key.kind]
        if bucket is None:
            return float(burst)
        return min(float(burst), bucket.tokens + (now - bucket.updated) / refill)

    async def retry_after(self, keys: Sequence[ThrottleKey]) -> int | None:
        now = self._clock()
        waits = []
        for key in keys:
            level = self._level(key, now)
            if level < 1:
                waits.append(math.ceil((1 - level) * self._limits[key.kind][1]))
        return max(waits) if waits else None

    async def record_failure(self, keys: Sequence[ThrottleKey]) -> None:
        now = self._clock()
        for key in keys:
            level = max(0.0, self._level(key, now) - 1)
            self._buckets[key] = _Bucket(tokens=level, updated=now)
            self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    async def reset(self, key: ThrottleKey) -> None:
        self._buckets.pop(key, None)
