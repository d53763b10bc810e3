"""Reads authenticated from a remembered user row: the row is confirmed before the answer.

Each test first reads once, so this process remembers the user's row and the next read runs
without the up-front query (`authenticate_read`); then it changes the user behind the app's
back and checks that the next answer, and the audit trail, follow the change at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.backend import known_users
from api.auth.known_users import KnownUsers, UserFacts
from api.operation import OperationFactsCache
from api.state import AppState
from db.models import AuditEvent, User
from identity.users import deactivate_user, revoke_user_tokens
from tests.auth.conftest import MakeUser, access_token_for

# users made here hold no role: the read is refused, and the refusal is an audited DENIED event
READ = "{ auditEvents(first: 1) { totalCount } }"
WRITE = 'mutation { createCustomer(input: {name: "Nope Ltd"}) { id } }'


async def _post(client: httpx.AsyncClient, token: str, query: str) -> tuple[httpx.Response, str]:
    request_id = uuid.uuid4().hex
    response = await client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    return response, request_id


async def _actors_of(state: AppState, request_id: str) -> list[str]:
    async with state.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.actor).where(AuditEvent.request_id == request_id)
        )
        return list(rows.scalars())


async def _remembered(client: httpx.AsyncClient, state: AppState, user: User) -> str:
    """A token of `user` whose row this process now remembers."""
    token = await access_token_for(client, user)
    response, request_id = await _post(client, token, READ)
    assert response.status_code == 200, response.text
    assert await _actors_of(state, request_id) == [user.username]
    assert known_users(state).get(user.id) is not None
    return token


async def _after(
    client: httpx.AsyncClient,
    state: AppState,
    user: User,
    change: Callable[[AsyncSession, int], Awaitable[Any]],
    query: str,
) -> tuple[httpx.Response, str]:
    """`query` with a remembered token of `user`, after `change` was made to the user."""
    token = await _remembered(client, state, user)
    async with state.sessions() as session, session.begin():
        await change(session, user.id)
    return await _post(client, token, query)


@pytest.mark.parametrize(
    ("change", "code"),
    [(deactivate_user, "inactive_user"), (revoke_user_tokens, "revoked")],
)
async def test_a_read_after_deactivation_or_revocation_is_refused_and_leaves_no_read_event(
    client: httpx.AsyncClient,
    state: AppState,
    make_user: MakeUser,
    change: Callable[[AsyncSession, int], Awaitable[Any]],
    code: str,
) -> None:
    user = await make_user()
    response, request_id = await _after(client, state, user, change, READ)
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert "data" not in response.json()
    assert await _actors_of(state, request_id) == []
    assert known_users(state).get(user.id) is None  # refused rows are forgotten


async def test_a_user_renamed_meanwhile_is_answered_and_audited_under_the_new_name(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    token = await _remembered(client, state, user)
    renamed = f"{user.username}-renamed"
    async with state.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == user.id).values(username=renamed))
    response, request_id = await _post(client, token, READ)
    assert response.status_code == 200, response.text
    # the run under the old name wrote nothing; the run again under the new one was audited
    assert await _actors_of(state, request_id) == [renamed]
    facts = known_users(state).get(user.id)
    assert facts is not None and facts.username == renamed


async def test_a_write_is_checked_before_it_runs(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    user = await make_user()
    response, request_id = await _after(client, state, user, deactivate_user, WRITE)
    assert response.status_code == 401
    assert await _actors_of(state, request_id) == []
    async with state.sessions() as session:
        found = await session.execute(
            text("SELECT count(*) FROM customers WHERE name = :n"), {"n": "Nope Ltd"}
        )
        assert found.scalar() == 0


async def test_in_one_batch_only_the_deactivated_users_reads_are_refused(
    client: httpx.AsyncClient, state: AppState, make_user: MakeUser
) -> None:
    users = [await make_user() for _ in range(3)]
    tokens = [await _remembered(client, state, user) for user in users]
    async with state.sessions() as session, session.begin():
        await deactivate_user(session, users[1].id)
    # concurrent reads are confirmed together, in the transaction of their shared append
    outcomes = await asyncio.gather(*(_post(client, t, READ) for t in tokens * 4))
    statuses = [response.status_code for response, _ in outcomes]
    assert statuses == [200, 401, 200] * 4
    for (response, request_id), user in zip(outcomes, users * 4, strict=True):
        actors = await _actors_of(state, request_id)
        assert actors == ([] if response.status_code == 401 else [user.username])


def test_only_documents_that_cannot_write_are_authenticated_after_the_read() -> None:
    facts = OperationFactsCache(max_tokens=1000)

    def can_write(query: str, name: str | None = None) -> bool:
        return facts.facts(query, query, name).can_write

    assert not can_write("{ customers { totalCount } }")
    assert not can_write("query Q { customers { totalCount } }")
    # decided by the operation that runs, however the document is spelled
    assert can_write(",mutation { a }")
    assert can_write("\ufeffmutation { a }")
    assert can_write("query A { a } mutation B { b }", "B")
    assert not can_write("query A { a } mutation B { b }", "A")
    assert not can_write("# mutation\n{ a }")
    assert can_write("subscription { a }")


def test_known_users_forgets_the_least_recently_used_beyond_capacity() -> None:
    known = KnownUsers(capacity=2)
    for user_id in (1, 2):
        known.remember(UserFacts(user_id, f"u{user_id}", None, 1))
    assert known.get(1) is not None  # 2 is now the least recently used
    known.remember(UserFacts(3, "u3", None, 1))
    assert known.get(2) is None
    assert known.get(1) is not None and known.get(3) is not None
