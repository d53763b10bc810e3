"""Whom a failed login slows: the guessing address, not the owner elsewhere; the account only
from networks it never logged in from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette

from api.auth.throttle import LoginKeys, TokenBucketThrottle, network_of
from api.auth_settings import LoginThrottleSettings
from api.state import AppState
from tests.auth.conftest import PASSWORD, MakeUser, fresh_address, login


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_stranger_guessing_does_not_lock_the_owner_out(
    app: Starlette, make_user: MakeUser
) -> None:
    user = await make_user()
    async with client_at(app, fresh_address()) as stranger:
        statuses = [
            (await login(stranger, user.username, f"guess {n}")).status_code for n in range(6)
        ]
        assert statuses == [401] * 5 + [429]
    async with client_at(app, "192.0.2.10") as owner:
        assert (await login(owner, user.username, PASSWORD)).status_code == 200


async def test_the_account_ceiling_slows_many_addresses_but_not_the_owners_network(
    app: Starlette, state: AppState, make_user: MakeUser
) -> None:
    settings = state.settings.auth.login_throttle
    user = await make_user()
    async with client_at(app, "198.51.100.7") as owner:  # the owner logged in from here before
        assert (await login(owner, user.username, PASSWORD)).status_code == 200
    # guesses from as many addresses as the ceiling, each under its own per-address budget
    for n in range(settings.account_burst):
        async with client_at(app, f"203.0.{113 + n // 200}.{n % 200 + 1}") as guesser:
            assert (await login(guesser, user.username, f"guess {n}")).status_code == 401
    async with client_at(app, "203.0.200.1") as next_guesser:
        refused = await login(next_guesser, user.username, PASSWORD)  # even the right password
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
    # the owner, from another address of the network the account logged in from, gets in
    async with client_at(app, "198.51.100.99") as owner_laptop:
        assert (await login(owner_laptop, user.username, PASSWORD)).status_code == 200


def test_networks_are_the_slash_24_and_the_slash_64() -> None:
    assert network_of("198.51.100.99") == "198.51.100.0/24"
    assert network_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert network_of("unknown") == "unknown"


async def test_in_process_throttle_keeps_the_pair_apart_from_the_account() -> None:
    throttle = TokenBucketThrottle(LoginThrottleSettings(username_burst=1, account_burst=3))
    here, there = LoginKeys.of("erin", "10.9.0.1"), LoginKeys.of("erin", "10.9.1.1")
    await throttle.record_failure(here.spent)
    assert await throttle.retry_after(here.checked(from_known_network=False)) is not None
    assert await throttle.retry_after(there.checked(from_known_network=False)) is None
    await throttle.record_failure(there.spent)
    await throttle.record_failure(LoginKeys.of("erin", "10.9.2.1").spent)
    elsewhere = LoginKeys.of("erin", "10.9.3.1")
    assert await throttle.retry_after(elsewhere.checked(from_known_network=False)) is not None
    assert await throttle.retry_after(elsewhere.checked(from_known_network=True)) is None
