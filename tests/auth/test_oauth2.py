"""The OAuth2 conventions clients expect: RFC 6749 §5.2 error bodies, the refresh_token grant
on `/auth/token`, RFC 7009 revocation, logout, and the GraphQL-shaped 401 of protected routes."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from api.state import AppState
from db.models import AuditEvent, RefreshToken
from tests.auth.conftest import PASSWORD, MakeUser, login


async def _actions(state: AppState, actor: str) -> list[str]:
    async with state.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == actor).order_by(AuditEvent.seq)
        )
        return list(rows)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_refresh_grant_on_the_token_endpoint_rotates_like_auth_refresh(
    client: httpx.AsyncClient, probe_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    first = (await login(client, user.username, PASSWORD)).json()
    grant = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    response = await client.post("/auth/token", data=grant)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    pair = response.json()
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["refresh_token"] != first["refresh_token"]
    who = await probe_client.get("/whoami", headers=_bearer(pair["access_token"]))
    assert who.json()["name"] == user.username
    # single use on either endpoint: the spent token is now a replay, and revokes the family
    replay = await client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 400
    assert replay.json() == {"error": "invalid_grant", "error_description": "reused"}
    after = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    )
    assert after.json() == {"error": "invalid_grant", "error_description": "revoked"}


async def test_error_bodies_and_statuses_follow_rfc_6749(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    cases = [
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "drt_" + "x" * 43}, 400, "invalid_grant"),
        ({"grant_type": "password", "username": user.username}, 400, "invalid_request"),
        # the contract keeps wrong credentials at 401 (docs/api.md); the body is the RFC's
        ({"username": user.username, "password": "not it at all"}, 401, "invalid_grant"),
    ]
    for form, status, error in cases:
        response = await client.post("/auth/token", data=form)
        assert (response.status_code, response.json()["error"]) == (status, error), form
        assert set(response.json()) == {"error", "error_description"}
        assert response.headers["Cache-Control"] == "no-store"


async def test_revoking_a_refresh_token_ends_its_family_and_is_audited(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    first = (await login(client, user.username, PASSWORD)).json()
    second = await client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    newest = second.json()["refresh_token"]
    other_login = (await login(client, user.username, PASSWORD)).json()["refresh_token"]

    response = await client.post(
        "/auth/revoke", data={"token": first["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert response.status_code == 200 and response.json() == {}
    refused = await client.post("/auth/refresh", data={"refresh_token": newest})
    assert refused.json()["error_description"] == "revoked"
    # another login is another family: untouched
    assert (await client.post("/auth/refresh", data={"refresh_token": other_login})).is_success
    assert (await _actions(state, user.username)).count("TOKEN_REVOKED") == 1


async def test_revoking_an_access_token_ends_it_but_not_the_refresh_tokens(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    state: AppState,
    make_user: MakeUser,
) -> None:
    user = await make_user()
    pair = (await login(client, user.username, PASSWORD)).json()
    assert (await probe_client.get("/whoami", headers=_bearer(pair["access_token"]))).is_success
    assert (await client.post("/auth/revoke", data={"token": pair["access_token"]})).json() == {}
    gone = await probe_client.get("/whoami", headers=_bearer(pair["access_token"]))
    assert gone.status_code == 401 and gone.json()["code"] == "revoked"
    # revoking it again changes nothing and writes no second event
    assert (await client.post("/auth/revoke", data={"token": pair["access_token"]})).is_success
    renewed = await client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]})
    assert renewed.status_code == 200
    fresh = renewed.json()["access_token"]
    assert (await probe_client.get("/whoami", headers=_bearer(fresh))).is_success
    assert (await _actions(state, user.username)).count("TOKEN_REVOKED") == 1


async def test_revoke_answers_200_for_anything_unknown_and_400_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    for token in ("drt_" + "Q" * 43, "eyJnot.a.jwt", "whatever"):
        response = await client.post("/auth/revoke", data={"token": token})
        assert response.status_code == 200, token
    missing = await client.post("/auth/revoke", data={"token_type_hint": "access_token"})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    partner = await client.post("/auth/revoke", data={"token": "dpt_" + "P" * 43})
    assert partner.status_code == 400 and partner.json()["error"] == "unsupported_token_type"


async def test_logout_ends_the_session_and_only_its_own_refresh_family(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    state: AppState,
    make_user: MakeUser,
) -> None:
    user, stranger = await make_user(), await make_user()
    pair = (await login(client, user.username, PASSWORD)).json()
    theirs = (await login(client, stranger.username, PASSWORD)).json()
    response = await client.post(
        "/auth/logout",
        data={"refresh_token": pair["refresh_token"]},
        headers=_bearer(pair["access_token"]),
    )
    assert response.status_code == 200
    assert (
        await probe_client.get("/whoami", headers=_bearer(pair["access_token"]))
    ).status_code == 401
    spent = await client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]})
    assert spent.json()["error_description"] == "revoked"
    assert "LOGOUT" in await _actions(state, user.username)

    # a logout cannot revoke someone else's refresh token by naming it
    again = (await login(client, user.username, PASSWORD)).json()
    await client.post(
        "/auth/logout",
        data={"refresh_token": theirs["refresh_token"]},
        headers=_bearer(again["access_token"]),
    )
    async with state.sessions() as session:
        alive = await session.scalar(
            select(RefreshToken.revoked_at).where(RefreshToken.user_id == stranger.id)
        )
    assert alive is None
    assert (
        await client.post("/auth/refresh", data={"refresh_token": theirs["refresh_token"]})
    ).is_success


async def test_logout_without_a_token_is_a_graphql_shaped_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/logout")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "missing_token"}
    assert (body["error"], body["code"]) == ("unauthorized", "missing_token")  # first release


async def test_graphql_401_is_a_graphql_error_with_unauthenticated(
    client: httpx.AsyncClient,
) -> None:
    for headers in ({}, _bearer("eyJhbGciOiJIUzI1NiJ9.e30.bad")):
        response = await client.post(
            "/graphql", json={"query": "{ me { user { id } } }"}, headers=headers
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="dossier"')
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["message"]
        assert response.json()["code"] == error["extensions"]["reason"]
