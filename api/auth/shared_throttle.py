"""The login throttle every process shares: failures counted in the `SharedStore` (Redis).

It belongs to the login (`api.auth.routes` picks it when `DOSSIER_REDIS_URL` is set); the
store and its fallback when Redis is down are `api.hardening.shared_limits`'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from api.auth.throttle import ThrottleKey, buckets_of
from api.auth_settings import LoginThrottleSettings
from api.hardening.shared_limits import SharedStore, window_of


class SharedLoginThrottle:
    """`LoginThrottle` over a `SharedStore`: failures counted across every process."""

    def __init__(self, store: SharedStore, settings: LoginThrottleSettings) -> None:
        self._store = store
        self._windows = {
            kind: window_of(burst, refill) for kind, (burst, refill) in buckets_of(settings).items()
        }

    async def retry_after(self, keys: Sequence[ThrottleKey]) -> int | None:
        waits = [
            wait
            for key in keys
            if key.kind in self._windows
            and (
                wait := await self._store.wait(
                    self._windows[key.kind], "login", key.kind, key.value
                )
            )
            is not None
        ]
        return math.ceil(max(waits)) if waits else None

    async def record_failure(self, keys: Sequence[ThrottleKey]) -> None:
        for key in keys:
            if key.kind in self._windows:
                await self._store.record(self._windows[key.kind], "login", key.kind, key.value)

    async def reset(self, key: ThrottleKey) -> None:
        if key.kind in self._windows:
            await self._store.clear(self._windows[key.kind], "login", key.kind, key.value)

    async def remember(self, key: ThrottleKey, seconds: float) -> None:
        await self._store.mark(f"login/{key.kind}/{key.value}", seconds)

    async def remembers(self, key: ThrottleKey) -> bool:
        return await self._store.is_marked(f"login/{key.kind}/{key.value}")
