"""Partner tokens: issued once, stored hashed, scoped, expiring, revocable, audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from api.state import AppState
from db.models import AuditEvent, Customer, PartnerToken
from identity.errors import IdentityInputError, InvalidExpiryError, UnknownScopeError
from identity.opaque_tokens import secret_digest
from identity.partner_tokens import (
    DEFAULT_EXPIRY_DAYS,
    PartnerScope,
    issue_partner_token,
    list_partner_tokens,
    revoke_partner_token,
)
from tests.auth.conftest import MakeUser, Probe


async def _issue(state: AppState, **overrides: object) -> tuple[str, uuid.UUID]:
    arguments: dict[str, object] = {
        "partner_name": f"partner-{uuid.uuid4().hex[:8]}",
        "scopes": ["customers:read", "contacts:read"],
        "customer_ids": None,
        "expires_in_days": 30,
        "issued_by": "admin",
    }
    arguments.update(overrides)
    async with state.sessions() as session, session.begin():
        issued = await issue_partner_token(session, **arguments)  # type: ignore[arg-type]
    return issued.token, issued.id


async def _whoami(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})


async def test_partner_token_authenticates_as_the_partner_with_its_scopes(
    probe_client: httpx.AsyncClient, state: AppState
) -> None:
    token, token_id = await _issue(state, partner_name="acme-test")
    response = await _whoami(probe_client, token)
    assert response.status_code == 200
    assert response.json() == {
        "kind": "PARTNER",
        "name": "acme-test",
        "user_id": None,
        "department_id": None,
        "token_id": str(token_id),
        "scopes": ["contacts:read", "customers:read"],
        "shared_customer_ids": None,
    }


async def test_shared_customers_travel_on_the_principal(
    probe_client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    owner = await make_user()
    async with state.sessions() as session, session.begin():
        customers = [
            Customer(name=f"shared {n}", owner_id=owner.id, department_id=owner.department_id)
            for n in range(2)
        ]
        session.add_all(customers)
    ids = [customer.id for customer in customers]
    token, _ = await _issue(state, customer_ids=[*ids, ids[0]])
    assert (await _whoami(probe_client, token)).json()["shared_customer_ids"] == sorted(ids)


async def test_secret_is_stored_only_as_its_digest(state: AppState) -> None:
    token, token_id = await _issue(state)
    async with state.sessions() as session:
        row = await session.get(PartnerToken, token_id)
        listed = await list_partner_tokens(session)
    assert row is not None
    assert row.token_hash == secret_digest(token)
    assert token.encode() not in row.token_hash
    assert token_id in {listed_row.id for listed_row in listed}
    assert not any(hasattr(listed_row, "token") for listed_row in listed)


async def test_revoked_partner_token_is_refused_and_revocation_is_audited(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState
) -> None:
    token, token_id = await _issue(state)
    async with state.sessions() as session, session.begin():
        assert await revoke_partner_token(session, token_id, revoked_by="admin")
    async with state.sessions() as session, session.begin():
        assert not await revoke_partner_token(session, token_id)  # already revoked
    response = await _whoami(probe_client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "revoked"
    assert probe.reached == 0
    async with state.sessions() as session:
        events = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resource_type == "partner_token")
            .order_by(AuditEvent.seq)
        )
        actions = [event.action for event in events if event.resource_ids == [str(token_id)]]
    assert actions == ["TOKEN_ISSUED", "TOKEN_REVOKED"]


async def test_expired_and_unknown_partner_tokens_are_refused(
    probe_client: httpx.AsyncClient, probe: Probe, state: AppState
) -> None:
    token, token_id = await _issue(state)
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(PartnerToken)
            .where(PartnerToken.id == token_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await _whoami(probe_client, token)).json()["code"] == "expired"
    assert (await _whoami(probe_client, "dpt_" + "B" * 43)).json()["code"] == "unknown_token"
    assert probe.reached == 0


async def test_unknown_scope_is_an_error_and_nothing_is_written(state: AppState) -> None:
    name = f"partner-{uuid.uuid4().hex[:8]}"
    with pytest.raises(UnknownScopeError) as raised:
        await _issue(state, partner_name=name, scopes=["customers:read", "customers:write"])
    assert raised.value.field == "scopes"
    assert raised.value.scopes == ["customers:write"]
    async with state.sessions() as session:
        written = await session.scalar(
            select(PartnerToken.id).where(PartnerToken.partner_name == name)
        )
    assert written is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"expires_in_days": 0}, "expiresInDays"),
        ({"expires_in_days": 10_000}, "expiresInDays"),
        ({"partner_name": "  "}, "partnerName"),
        ({"customer_ids": [987_654_321]}, "customerIds"),
    ],
)
async def test_bad_partner_token_input_names_the_field(
    state: AppState, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(IdentityInputError) as raised:
        await _issue(state, **overrides)
    assert raised.value.field == field
    if field == "expiresInDays":
        assert isinstance(raised.value, InvalidExpiryError)


async def test_every_partner_token_expires(state: AppState) -> None:
    _, token_id = await _issue(state, expires_in_days=None)
    async with state.sessions() as session:
        row = await session.get(PartnerToken, token_id)
    assert row is not None
    remaining = row.expires_at - datetime.now(UTC)
    assert (
        timedelta(days=DEFAULT_EXPIRY_DAYS - 1) < remaining <= timedelta(days=DEFAULT_EXPIRY_DAYS)
    )


def test_scope_vocabulary_is_closed() -> None:
    assert {scope.value for scope in PartnerScope} == {
        "customers:read",
        "contacts:read",
        "opportunities:read",
        "tickets:read",
        "lead:create",  # captureLead (issue 20)
    }
