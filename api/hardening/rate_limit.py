"""Per-principal request budgets: a token bucket per user and per partner token.

`RateLimiter` is the interface the GraphQL endpoint uses; `InProcessRateLimiter` keeps buckets
in this process, which is right for one server process. With N processes each keeps its own
buckets (a caller gets N × the budget), so a store shared by every process (PostgreSQL, Redis)
should implement the same one async method. Partners get their own, smaller budget, keyed by
token rather than by partner name, so revoking and reissuing a token does not share a bucket.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.responses import JSONResponse, Response

from api.hardening.settings import HardeningSettings, RateBudget
from policy.principal import Principal


@dataclass(frozen=True, slots=True)
class RateKey:
    """Whose budget a request spends: `user:<id>` or `partner:<token id>`."""

    value: str

    @classmethod
    def of(cls, principal: Principal) -> RateKey:
        if principal.is_partner:
            return cls(f"partner:{principal.token_id}")
        if principal.user_id is not None:
            return cls(f"user:{principal.user_id}")
        return cls(f"{principal.kind.value.lower()}:{principal.name}")


class RateLimiter(Protocol):
    async def spend(self, principal: Principal) -> float | None:
        """Take one request from the principal's budget: None if allowed, else seconds to wait."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class InProcessRateLimiter:
    """Token buckets in this process: `burst` requests at once, refilled at `per_second`.

    The number of tracked principals is bounded (least recently seen dropped first); a dropped
    bucket comes back full, which errs on the side of serving.
    """

    def __init__(
        self, settings: HardeningSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._user = settings.user_rate
        self._partner = settings.partner_rate
        self._max_tracked = settings.rate_max_tracked
        self._clock = clock
        self._buckets: OrderedDict[RateKey, _Bucket] = OrderedDict()

    def budget_of(self, principal: Principal) -> RateBudget:
        return self._partner if principal.is_partner else self._user

    async def spend(self, principal: Principal) -> float | None:
        budget = self.budget_of(principal)
        key = RateKey.of(principal)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            level = float(budget.burst)
        else:
            level = min(
                float(budget.burst), bucket.tokens + (now - bucket.updated) * budget.per_second
            )
        if level < 1:
            self._buckets[key] = _Bucket(tokens=level, updated=now)
            return (1 - level) / budget.per_second
        self._buckets[key] = _Bucket(tokens=level - 1, updated=now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_tracked:
            self._buckets.popitem(last=False)
        return None


def too_many_requests(wait_seconds: float, request_id: str) -> Response:
    """HTTP 429 with `Retry-After` in whole seconds (RFC 9110 §10.2.3), never less than 1."""
    retry_after = max(1, math.ceil(wait_seconds))
    body = {
        "errors": [
            {
                "message": "Too many requests",
                "extensions": {
                    "code": "RATE_LIMITED",
                    "retryAfter": retry_after,
                    "requestId": request_id,
                },
            }
        ]
    }
    return JSONResponse(
        body,
        status_code=429,
        headers={
            "Retry-After": str(retry_after),
            "Cache-Control": "no-store",
            "X-Request-ID": request_id,
        },
    )
