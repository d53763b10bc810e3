"""Per-principal token buckets: 429 with Retry-After just over the budget, one bucket each."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from api.hardening.rate_limit import InProcessRateLimiter
from api.hardening.settings import HardeningSettings, RateBudget
from api.settings import Settings
from policy.principal import Principal, PrincipalKind
from tests.security.conftest import partner_token, post_as_token, running, settings_with

ME = "{ me { user { username } } }"
SLOW = 0.001  # one request per 1000 s: nothing refills during a test


async def test_a_user_gets_exactly_the_burst_then_429_with_retry_after(
    seeded_settings: Settings,
) -> None:
    settings = settings_with(seeded_settings, user_rate=RateBudget(burst=3, per_second=SLOW))
    async with running(settings) as client:
        for _ in range(3):
            assert (await client.post("frank", ME)).status_code == 200
        refused = await client.post("frank", ME)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 900
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert refused.headers["cache-control"] == "no-store"
        # another user's budget is untouched
        assert (await client.post("bob", ME)).status_code == 200


async def test_a_partner_token_has_its_own_smaller_budget(
    seeded_settings: Settings, demo_engine: AsyncEngine
) -> None:
    settings = settings_with(
        seeded_settings,
        user_rate=RateBudget(burst=5, per_second=SLOW),
        partner_rate=RateBudget(burst=2, per_second=SLOW),
    )
    first = await partner_token(demo_engine, None, ["customers:read"])
    second = await partner_token(demo_engine, None, ["customers:read"])
    query = "{ customers(first: 1) { totalCount } }"
    async with running(settings) as client:
        for _ in range(2):
            assert (await post_as_token(client, first, query)).status_code == 200
        assert (await post_as_token(client, first, query)).status_code == 429
        # budgets are per token, and users keep theirs
        assert (await post_as_token(client, second, query)).status_code == 200
        for _ in range(5):
            assert (await client.post("dave", ME)).status_code == 200
        assert (await client.post("dave", ME)).status_code == 429


async def test_an_unauthenticated_request_spends_no_budget(seeded_settings: Settings) -> None:
    settings = settings_with(seeded_settings, user_rate=RateBudget(burst=1, per_second=SLOW))
    async with running(settings) as client:
        for _ in range(5):
            response = await client.http.post("/graphql", json={"query": ME})
            assert response.status_code == 401
        assert (await client.post("carol", ME)).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_bucket_refills_at_its_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    settings = HardeningSettings(user_rate=RateBudget(burst=2, per_second=0.5))
    limiter = InProcessRateLimiter(settings, clock=clock)
    user = Principal(kind=PrincipalKind.USER, name="u", user_id=1)
    assert await limiter.spend(user) is None
    assert await limiter.spend(user) is None
    assert await limiter.spend(user) == 2.0  # one token takes 2 s at 0.5/s
    clock.now += 1.0
    assert await limiter.spend(user) == 1.0
    clock.now += 1.0
    assert await limiter.spend(user) is None
    clock.now += 3600
    assert [await limiter.spend(user) for _ in range(3)][:2] == [None, None]


async def test_tracked_principals_are_bounded() -> None:
    clock = Clock()
    settings = HardeningSettings(user_rate=RateBudget(burst=1, per_second=SLOW), rate_max_tracked=2)
    limiter = InProcessRateLimiter(settings, clock=clock)
    users = [Principal(kind=PrincipalKind.USER, name=f"u{i}", user_id=i) for i in range(3)]
    for user in users:
        assert await limiter.spend(user) is None
    assert await limiter.spend(users[2]) is not None  # still tracked: empty
    assert await limiter.spend(users[0]) is None  # evicted first: a full bucket again
