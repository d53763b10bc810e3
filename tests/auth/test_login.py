"""`POST /auth/token` and `POST /auth/refresh` over HTTP on the real app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from passlib.hash import argon2
from sqlalchemy import select, update

from api.state import AppState
from db.models import AuditEvent, RefreshToken, User
from identity.users import deactivate_user
from tests.auth.conftest import PASSWORD, MakeUser, login

INVALID = {"error": "invalid_grant", "error_description": "invalid username or password"}


async def _events(state: AppState, actor: str) -> list[AuditEvent]:
    async with state.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.actor == actor).order_by(AuditEvent.seq)
        )
        return list(rows)


async def test_login_returns_a_bearer_pair_that_is_never_cached(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await login(client, user.username, PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"].startswith("drt_")
    assert response.headers["Cache-Control"] == "no-store"


async def test_username_is_matched_case_insensitively(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await login(client, f"  {user.username.upper()} ", PASSWORD)
    assert response.status_code == 200


async def test_unknown_user_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    wrong_password = await login(client, user.username, "not the password at all")
    unknown_user = await login(client, "nobody-by-this-name", PASSWORD)
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        assert response.json() == INVALID
        assert response.headers["Cache-Control"] == "no-store"
    assert wrong_password.content == unknown_user.content


async def test_deactivated_user_cannot_log_in_and_gets_the_same_answer(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    async with state.sessions() as session, session.begin():
        await deactivate_user(session, user.id)
    response = await login(client, user.username, PASSWORD)
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_login_and_failed_login_are_audited(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    await login(client, user.username, "not the password at all")
    await login(client, user.username, PASSWORD)
    events = await _events(state, user.username)
    assert [event.action for event in events] == ["LOGIN_FAILED", "LOGIN"]
    assert events[0].changes == {"reason": "bad_password"}
    assert events[1].resource_ids == [str(user.id)]
    assert events[1].ip is not None and events[1].ip.startswith("10.")


async def test_hash_with_old_parameters_is_upgraded_at_login(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    weak = argon2.using(type="ID", memory_cost=8192, time_cost=1, parallelism=1).hash(PASSWORD)
    async with state.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == user.id).values(password_hash=weak))
    assert (await login(client, user.username, PASSWORD)).status_code == 200
    async with state.sessions() as session:
        stored = await session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await login(client, user.username, PASSWORD)).status_code == 200


async def test_other_grant_types_and_json_bodies_are_refused(client: httpx.AsyncClient) -> None:
    grant = await client.post(
        "/auth/token", data={"grant_type": "client_credentials", "username": "a", "password": "b"}
    )
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    as_json = await client.post("/auth/token", json={"username": "a", "password": "b"})
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"
    empty = await client.post("/auth/token", data={"username": "a"})
    assert empty.status_code == 400


async def test_repeated_failures_for_one_username_are_refused_with_retry_after(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    statuses = [
        (await login(client, user.username, f"guess number {n}")).status_code for n in range(5)
    ]
    assert statuses == [401] * 5
    refused = await login(client, user.username, PASSWORD)  # even the right password, for now
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"] == "too_many_attempts"


async def test_one_address_spraying_many_usernames_is_refused(client: httpx.AsyncClient) -> None:
    statuses = [
        (await login(client, f"sprayed-{n}", "Summer2024!Summer")).status_code for n in range(21)
    ]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429


async def test_success_clears_the_username_failures(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    for _ in range(4):
        await login(client, user.username, "typo in the passphrase")
    assert (await login(client, user.username, PASSWORD)).status_code == 200
    for _ in range(4):
        assert (await login(client, user.username, "typo again here")).status_code == 401


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", data={"refresh_token": token})


async def test_refresh_token_works_once_and_returns_a_new_pair(
    client: httpx.AsyncClient, probe_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    first = (await login(client, user.username, PASSWORD)).json()
    response = await _refresh(client, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    whoami = await probe_client.get(
        "/whoami", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert whoami.json()["name"] == user.username


async def test_reused_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    stolen = (await login(client, user.username, PASSWORD)).json()["refresh_token"]
    legitimate_next = (await _refresh(client, stolen)).json()["refresh_token"]
    replay = await _refresh(client, stolen)
    assert replay.status_code == 400  # RFC 6749 §5.2
    assert replay.json() == {"error": "invalid_grant", "error_description": "reused"}
    # the thief's replay also locks out whoever holds the newer token: both must log in again
    after = await _refresh(client, legitimate_next)
    assert after.status_code == 400
    assert after.json()["error_description"] == "revoked"
    actions = [event.action for event in await _events(state, user.username)]
    assert actions == ["LOGIN", "TOKEN_REFRESH_REUSED"]


async def test_refresh_refused_after_deactivation_or_with_junk(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    token = (await login(client, user.username, PASSWORD)).json()["refresh_token"]
    async with state.sessions() as session, session.begin():
        await deactivate_user(session, user.id)
    assert (await _refresh(client, token)).json()["error_description"] == "revoked"
    junk = await _refresh(client, "drt_" + "A" * 43)
    assert junk.status_code == 400
    assert junk.json()["error_description"] == "unknown"


async def test_refresh_after_expiry_is_refused(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    token = (await login(client, user.username, PASSWORD)).json()["refresh_token"]
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await _refresh(client, token)).json()["error_description"] == "expired"


async def test_a_family_revoked_for_reuse_ends_its_access_tokens_at_once(
    client: httpx.AsyncClient, probe_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """The thief who replayed a refresh token may hold the access token of the pair it got;
    it must stop working now, not when it expires (900 s later)."""
    user = await make_user()
    stolen = (await login(client, user.username, PASSWORD)).json()["refresh_token"]
    pair = (await _refresh(client, stolen)).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await probe_client.get("/whoami", headers=headers)).status_code == 200
    assert (
        await _refresh(client, stolen)
    ).status_code == 400  # the replay (RFC 6749 §5.2: invalid_grant)
    refused = await probe_client.get("/whoami", headers=headers)
    assert refused.status_code == 401
    # a fresh login works again
    again = (await login(client, user.username, PASSWORD)).json()
    fresh = {"Authorization": f"Bearer {again['access_token']}"}
    assert (await probe_client.get("/whoami", headers=fresh)).status_code == 200
