"""Every forged, stale or misdirected bearer token is refused with 401 and a reason code,
and none of them reaches the protected handler."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth.access_tokens import issue_access_token, verify_access_token
from api.auth.errors import AuthenticationError
from api.auth_settings import AuthSettings
from api.state import AppState
from identity.users import deactivate_user, revoke_user_tokens, set_password
from tests.auth.conftest import MakeUser, Probe, access_token_for, fresh_address, make_probe


def _claims(settings: AuthSettings, user_id: int, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "ver": 1,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(settings: AuthSettings, claims: dict[str, Any], kid: str | None = None) -> str:
    active_kid, secret = settings.active_key
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid or active_kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _refused(client: httpx.AsyncClient, probe: Probe, token: str | None, code: str) -> None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert probe.reached == 0


async def test_a_fresh_access_token_identifies_the_user(
    client: httpx.AsyncClient, probe_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    token = await access_token_for(client, user)
    response = await probe_client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "kind": "USER",
        "name": user.username,
        "user_id": user.id,
        "department_id": user.department_id,
        "token_id": None,
        "scopes": None,
        "shared_customer_ids": None,
    }
    assert jwt.get_unverified_header(token)["kid"] == "k1"


async def test_missing_token_is_refused(probe_client: httpx.AsyncClient, probe: Probe) -> None:
    await _refused(probe_client, probe, None, "missing_token")


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not a token", "Bearer abc.def", b"Bearer \xff\xff"],
)
async def test_malformed_authorization_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, authorization: str | bytes
) -> None:
    response = await probe_client.get("/whoami", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["code"] == "malformed_token"
    assert probe.reached == 0


async def test_expired_token_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    issued = issue_access_token(
        state.settings.auth, user_id=user.id, token_version=1, now=int(time.time()) - 3600
    )
    await _refused(probe_client, probe, issued.token, "expired")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_token_not_yet_valid_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser, claim: str
) -> None:
    user = await make_user()
    settings = state.settings.auth
    future = int(time.time()) + 600
    token = _sign(settings, _claims(settings, user.id, **{claim: future}))
    await _refused(probe_client, probe, token, "not_yet_valid")


async def test_wrong_audience_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    settings = state.settings.auth
    token = _sign(settings, _claims(settings, user.id, aud="some-other-api"))
    await _refused(probe_client, probe, token, "wrong_audience")


async def test_wrong_issuer_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    settings = state.settings.auth
    token = _sign(settings, _claims(settings, user.id, iss="https://evil.example"))
    await _refused(probe_client, probe, token, "wrong_issuer")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud", "iss", "jti"])
async def test_token_without_a_required_claim_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser, claim: str
) -> None:
    user = await make_user()
    settings = state.settings.auth
    token = _sign(settings, _claims(settings, user.id, **{claim: None}))
    await _refused(probe_client, probe, token, "missing_claim")


async def test_tampered_payload_is_refused(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    probe: Probe,
    make_user: MakeUser,
) -> None:
    victim = await make_user()
    attacker = await make_user()
    token = await access_token_for(client, attacker)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(victim.id)
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    await _refused(probe_client, probe, forged, "bad_signature")


async def test_token_signed_with_another_secret_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    settings = state.settings.auth
    token = jwt.encode(
        _claims(settings, user.id), "x" * 48, algorithm="HS256", headers={"kid": "k1"}
    )
    await _refused(probe_client, probe, token, "bad_signature")


async def test_alg_none_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    settings = state.settings.auth
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
    payload = _b64(json.dumps(_claims(settings, user.id)).encode())
    await _refused(probe_client, probe, f"{header}.{payload}.", "unsupported_algorithm")


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def test_hs256_signed_with_a_public_key_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    # the algorithm-confusion attack: a server that verified RS256 with a public key and also
    # allowed HS256 would accept an HMAC made with that (public) key as the secret
    user = await make_user()
    settings = state.settings.auth
    public_pem = (
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = _b64(json.dumps(_claims(settings, user.id)).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    await _refused(probe_client, probe, f"{header}.{payload}.{_b64(mac)}", "bad_signature")


async def test_rs256_token_is_refused_whatever_its_signature(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    settings = state.settings.auth
    token = jwt.encode(
        _claims(settings, user.id), _rsa_key(), algorithm="RS256", headers={"kid": "k1"}
    )
    await _refused(probe_client, probe, token, "unsupported_algorithm")


@pytest.mark.parametrize("kid", ["k-unknown", None])
async def test_unknown_or_missing_kid_is_refused(
    probe_client: httpx.AsyncClient,
    probe: Probe,
    state: AppState,
    make_user: MakeUser,
    kid: str | None,
) -> None:
    user = await make_user()
    settings = state.settings.auth
    claims = _claims(settings, user.id)
    headers = {"kid": kid} if kid else None
    token = jwt.encode(claims, settings.active_key[1], algorithm="HS256", headers=headers)
    if kid is None:
        assert "kid" not in jwt.get_unverified_header(token)
    await _refused(probe_client, probe, token, "unknown_kid")


@pytest.mark.parametrize("subject", ["0", "-1", "99999999999999999999", "alice", "²"])
async def test_subject_that_is_not_a_user_id_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState, subject: str
) -> None:
    settings = state.settings.auth
    claims = _claims(settings, 1)
    claims["sub"] = subject
    await _refused(probe_client, probe, _sign(settings, claims), "malformed_token")


async def test_token_of_a_user_that_no_longer_exists_is_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState
) -> None:
    settings = state.settings.auth
    token = _sign(settings, _claims(settings, 987_654_321))
    await _refused(probe_client, probe, token, "unknown_user")


async def test_deactivated_user_token_stops_working_at_once(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    probe: Probe,
    state: AppState,
    make_user: MakeUser,
) -> None:
    user = await make_user()
    token = await access_token_for(client, user)
    async with state.sessions() as session, session.begin():
        await deactivate_user(session, user.id)
    await _refused(probe_client, probe, token, "inactive_user")


async def test_password_change_revokes_existing_tokens(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    probe: Probe,
    state: AppState,
    make_user: MakeUser,
) -> None:
    user = await make_user()
    token = await access_token_for(client, user)
    async with state.sessions() as session, session.begin():
        await set_password(session, user.id, "a brand new passphrase")
    await _refused(probe_client, probe, token, "revoked")


async def test_role_removal_revokes_existing_tokens_and_new_login_works(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    probe: Probe,
    state: AppState,
    make_user: MakeUser,
) -> None:
    user = await make_user()
    old = await access_token_for(client, user)
    # what the policy admin calls when it removes a role assignment
    async with state.sessions() as session, session.begin():
        await revoke_user_tokens(session, user.id)
    await _refused(probe_client, probe, old, "revoked")
    new = await access_token_for(client, user)
    response = await probe_client.get("/whoami", headers={"Authorization": f"Bearer {new}"})
    assert response.status_code == 200
    assert probe.reached == 1


@pytest.fixture
async def rotated(state: AppState) -> AsyncIterator[tuple[AppState, Probe, httpx.AsyncClient]]:
    """A probe whose settings hold a key ring: k2 active, k1 (the app's key) still accepted."""
    auth = state.settings.auth
    ring = {"k1": auth.active_key[1], "k2": "r" * 40}
    rotated_auth = dataclasses.replace(auth, jwt_keys=ring, jwt_key_id="k2")
    rotated_state = dataclasses.replace(
        state, settings=dataclasses.replace(state.settings, auth=rotated_auth)
    )
    probe = make_probe(rotated_state)
    transport = httpx.ASGITransport(app=probe.app, client=(fresh_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as http:
        yield rotated_state, probe, http


async def test_key_rotation_keeps_tokens_of_the_previous_key_valid(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    rotated: tuple[AppState, Probe, httpx.AsyncClient],
) -> None:
    rotated_state, probe, probe_client = rotated
    user = await make_user()
    old_key_token = await access_token_for(client, user)  # signed by the app with k1
    new_key_token = issue_access_token(
        rotated_state.settings.auth, user_id=user.id, token_version=1
    ).token
    assert jwt.get_unverified_header(new_key_token)["kid"] == "k2"
    for token in (old_key_token, new_key_token):
        response = await probe_client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
    assert probe.reached == 2


def test_a_remembered_token_still_expires(state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = state.settings.auth
    issued = issue_access_token(settings, user_id=7, token_version=3)
    assert verify_access_token(settings, issued.token).user_id == 7
    assert verify_access_token(settings, issued.token).user_id == 7  # from memory now
    later = time.time() + issued.expires_in + settings.leeway_seconds + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(AuthenticationError) as refused:
        verify_access_token(settings, issued.token)
    assert refused.value.code == "expired"


def test_a_token_remembered_under_other_settings_is_verified_again(state: AppState) -> None:
    settings = state.settings.auth
    token = issue_access_token(settings, user_id=7, token_version=3).token
    verify_access_token(settings, token)
    # the same token where its key is no longer in the ring: refused, not remembered
    without_its_key = dataclasses.replace(settings, jwt_keys={"k9": "n" * 40}, jwt_key_id="k9")
    with pytest.raises(AuthenticationError) as refused:
        verify_access_token(without_its_key, token)
    assert refused.value.code == "unknown_kid"
    # and a tampered copy is never the remembered one
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(AuthenticationError) as forged_refused:
        verify_access_token(settings, forged)
    assert forged_refused.value.code in {"bad_signature", "malformed_token"}
