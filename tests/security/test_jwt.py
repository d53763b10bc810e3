"""Forged, stale and misdirected bearer tokens against /graphql itself: 401, never a result.

tests/auth covers every case through a probe behind `authenticate`; here the same attacks go
to the real endpoint, to prove it runs nothing for them and says nothing about the schema.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from api.settings import Settings
from identity.partner_tokens import revoke_partner_token
from tests.graphql import oracle
from tests.security.conftest import GraphQLClient, assert_clean, partner_token

QUERY = "{ customers(first: 500) { nodes { id name phone } } }"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(settings: Settings, user_id: int, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": settings.auth.issuer,
        "aud": settings.auth.audience,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "ver": 1,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def signed(settings: Settings, payload: dict[str, Any], **header: Any) -> str:
    kid, secret = settings.auth.active_key
    return jwt.encode(payload, secret, algorithm="HS256", headers={"kid": kid, **header})


def hs512(settings: Settings, payload: dict[str, Any]) -> str:
    """Signed with the real secret, but under an algorithm outside the allow-list."""
    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT", "kid": "k1"}).encode())
    body = _b64(json.dumps(payload).encode())
    secret = settings.auth.active_key[1].encode()
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha512).digest()
    return f"{header}.{body}.{_b64(mac)}"


def forgeries(settings: Settings, user_id: int, genuine: str) -> dict[str, str]:
    now = int(time.time())
    head, body, signature = genuine.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered["sub"] = str(user_id + 1)
    unsigned = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "alg_none": f"{unsigned}.{_b64(json.dumps(claims(settings, user_id)).encode())}.",
        "tampered": f"{head}.{_b64(json.dumps(tampered).encode())}.{signature}",
        "expired": signed(settings, claims(settings, user_id, iat=now - 900, exp=now - 600)),
        "not_yet_valid": signed(settings, claims(settings, user_id, nbf=now + 600)),
        "wrong_audience": signed(settings, claims(settings, user_id, aud="someone-else")),
        "wrong_issuer": signed(settings, claims(settings, user_id, iss="evil")),
        "unknown_kid": signed(settings, claims(settings, user_id), kid="k999"),
        "missing_jti": signed(settings, claims(settings, user_id, jti=None)),
        "missing_exp": signed(settings, claims(settings, user_id, exp=None)),
        "other_secret": jwt.encode(
            claims(settings, user_id), "x" * 64, algorithm="HS256", headers={"kid": "k1"}
        ),
        "hs512": hs512(settings, claims(settings, user_id)),
        "stale_version": signed(settings, claims(settings, user_id, ver=0)),
        "garbage": "not.a.jwt",
        "partner_lookalike": "dpt_" + "A" * 43,
    }  # fmt: skip


async def test_every_forged_token_gets_401_and_no_data(
    sec: GraphQLClient, seeded_settings: Settings, demo_engine: AsyncEngine
) -> None:
    alice = await oracle.user_id(demo_engine, "alice")
    genuine = await sec.token("alice")
    for name, token in forgeries(seeded_settings, alice, genuine).items():
        response = await sec.http.post(
            "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, (name, response.text)
        body = response.json()
        assert set(body) == {"errors", "error", "code"}, name  # no `data`: nothing ran
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", name
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert_clean(response)


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic YWxpY2U6ZG9zc2llci1kZW1v", "bearer x y",
               "Bearer " + "a" * 5000, "Bearer " + "\u00e9" * 2],
)  # fmt: skip
async def test_malformed_authorization_headers_get_401(sec: GraphQLClient, header: str) -> None:
    headers = {"Authorization": header.encode()} if header else {}
    response = await sec.http.post("/graphql", json={"query": QUERY}, headers=headers)
    assert response.status_code == 401
    assert_clean(response)


async def test_a_revoked_partner_token_gets_401(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    token = await partner_token(demo_engine, None, ["customers:read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        await sec.http.post("/graphql", json={"query": QUERY}, headers=headers)
    ).status_code == 200
    async with async_sessionmaker(demo_engine)() as session:
        rows = await oracle.rows(
            demo_engine, "SELECT id FROM partner_tokens ORDER BY issued_at DESC LIMIT 1"
        )
        await revoke_partner_token(session, rows[0].id, revoked_by="security-tests")
        await session.commit()
    response = await sec.http.post("/graphql", json={"query": QUERY}, headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "revoked"
