"""Login throttling: failed attempts drain token buckets, and a success opens the owner's way.

Three buckets (`LoginThrottleSettings`): per (username, client address), so a stranger who
guesses wrong locks out only themselves; per username, a higher ceiling across all addresses,
which is not applied to a network the account logged in from lately (`remember`), so the owner
keeps logging in while someone guesses from elsewhere; per client address, against spraying.

`LoginThrottle` is the interface the routes use; `TokenBucketThrottle` keeps buckets in this
process (the embedded default). With `DOSSIER_REDIS_URL` every process shares them
(`api.hardening.shared_limits.SharedLoginThrottle`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from api.auth_settings import LoginThrottleSettings


class ThrottleKind(StrEnum):
    USERNAME = "username"  # one username from one address: `<username> <address>`
    ACCOUNT = "account"  # one username from anywhere
    ADDRESS = "address"
    KNOWN_NETWORK = "known"  # not a bucket: a network the username logged in from


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    kind: ThrottleKind
    value: str


def buckets_of(settings: LoginThrottleSettings) -> dict[ThrottleKind, tuple[int, float]]:
    """(burst, refill seconds) of each kind of bucket."""
    return {
        ThrottleKind.USERNAME: (settings.username_burst, settings.username_refill_seconds),
        ThrottleKind.ACCOUNT: (settings.account_burst, settings.account_refill_seconds),
        ThrottleKind.ADDRESS: (settings.address_burst, settings.address_refill_seconds),
    }


def network_of(address: str) -> str:
    """The client's network: its /24 (IPv4) or /64 (IPv6), or the address when it is neither."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True, slots=True)
class LoginKeys:
    """The keys one password login is counted under."""

    pair: ThrottleKey
    account: ThrottleKey
    address: ThrottleKey
    known_network: ThrottleKey

    @classmethod
    def of(cls, username: str, address: str) -> LoginKeys:
        return cls(
            pair=ThrottleKey(ThrottleKind.USERNAME, f"{username} {address}"),
            account=ThrottleKey(ThrottleKind.ACCOUNT, username),
            address=ThrottleKey(ThrottleKind.ADDRESS, address),
            known_network=ThrottleKey(
                ThrottleKind.KNOWN_NETWORK, f"{username} {network_of(address)}"
            ),
        )

    def checked(self, *, from_known_network: bool) -> list[ThrottleKey]:
        """The buckets that may refuse this attempt."""
        if from_known_network:
            return [self.pair, self.address]
        return [self.pair, self.account, self.address]

    @property
    def spent(self) -> list[ThrottleKey]:
        """The buckets a failure spends from (every one, from wherever it came)."""
        return [self.pair, self.account, self.address]


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

    async def remember(self, key: ThrottleKey, seconds: float) -> None:
        """Remember `key` (a known network) for `seconds`."""
        ...

    async def remembers(self, key: ThrottleKey) -> bool:
        """Whether `key` was remembered and has not expired."""
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
        self._limits = buckets_of(settings)
        self._max_keys = settings.max_tracked_keys
        self._clock = clock
        self._buckets: OrderedDict[ThrottleKey, _Bucket] = OrderedDict()
        self._remembered: OrderedDict[ThrottleKey, float] = OrderedDict()

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

    async def remember(self, key: ThrottleKey, seconds: float) -> None:
        self._remembered[key] = self._clock() + seconds
        self._remembered.move_to_end(key)
        while len(self._remembered) > self._max_keys:
            self._remembered.popitem(last=False)

    async def remembers(self, key: ThrottleKey) -> bool:
        until = self._remembered.get(key)
        return until is not None and until > self._clock()
