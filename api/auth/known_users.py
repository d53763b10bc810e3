"""Authenticating a read from the user row an earlier request read, confirmed before answering.

Why: checking the user's row before every request was one of the nested view's three
statements, its own pooled connection and round trip (~0.24 ms of server CPU per request at
concurrency 8, and 10 % of its throughput, measured with `bench/run.py`'s fixed-principal
variant). A read shows nothing until it is answered, and every answered read waits for its audit
events to commit anyway. So a read may run with the row this process last read for that user,
and the row is confirmed by the statement that commits the read's events (`audit.batch`,
through `audit.chain.Guard`): no statement of its own, after the read rather than before it. A
read is never answered to a token revoked, or a user deactivated or moved, before its events
committed — a later check than the up-front one, so a stricter promise, not a weaker one.

A write must not run at all for such a token, so writes (and uploads) are authenticated up
front as before (`api.auth.backend.authenticate`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger

from api.auth.errors import AuthenticationError, AuthFailure
from audit.chain import Guard
from db.models import User

MAX_KNOWN_USERS = 10_000  # bounds memory; an evicted user costs one up-front query


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What a request relied on about its user: confirmation checks exactly these."""

    user_id: int
    username: str
    department_id: int | None
    token_version: int  # the token's, which must still be the row's


class StalePrincipal(Exception):  # a condition to retry on, not a failure
    """The user is still active with this token, but the name or department the request ran
    under changed meanwhile: its decisions may be wrong, so it is run again, authenticated up
    front."""


class KnownUsers:
    """The user rows this process read last, least recently used first out."""

    def __init__(self, capacity: int = MAX_KNOWN_USERS) -> None:
        self._capacity = capacity
        self._rows: OrderedDict[int, UserFacts] = OrderedDict()

    def get(self, user_id: int) -> UserFacts | None:
        facts = self._rows.get(user_id)
        if facts is not None:
            self._rows.move_to_end(user_id)
        return facts

    def remember(self, facts: UserFacts) -> None:
        self._rows[facts.user_id] = facts
        self._rows.move_to_end(facts.user_id)
        while len(self._rows) > self._capacity:
            self._rows.popitem(last=False)

    def forget(self, user_id: int) -> None:
        self._rows.pop(user_id, None)


_ROWS_BY_ID = select(
    User.id, User.username, User.department_id, User.is_active, User.token_version
).where(User.id == bindparam("ids", type_=ARRAY(BigInteger)).any_())


# The numbers of the claims whose user still holds, inside the read-audit append: the test
# `_verdict` makes in Python (row found, active, same token version, same name and
# department), in SQL. When it refuses a claim, `confirm_users` says why.
_HOLDING_CLAIMS = """SELECT k.n FROM jsonb_to_recordset({claims}) AS k(
        n bigint, user_id bigint, token_version integer, username text, department_id bigint)
    JOIN users u ON u.id = k.user_id AND u.is_active AND u.token_version = k.token_version
        AND u.username = k.username AND u.department_id IS NOT DISTINCT FROM k.department_id"""


def claims_guard(claims: Sequence[UserFacts], owners: Sequence[int | None]) -> Guard:
    """The guard that confirms `claims` in the append of the events `owners` assigns them."""
    rows = [
        {
            "n": number,
            "user_id": facts.user_id,
            "token_version": facts.token_version,
            "username": facts.username,
            "department_id": facts.department_id,
        }
        for number, facts in enumerate(claims, start=1)
    ]
    return Guard(_HOLDING_CLAIMS, rows, owners)


async def confirm_users(
    connection: AsyncConnection, claims: Sequence[UserFacts], known: KnownUsers
) -> list[Exception | None]:
    """Per entry of `claims`, None when its user still holds, else why not — in one statement.

    It sees every change committed before it began (READ COMMITTED), which is what lets the
    caller append the read's events and answer right after.
    """
    ids = sorted({facts.user_id for facts in claims})
    rows: dict[int, Any] = {  # Row[int, str, …]: not a Row[Any] to mypy
        row.id: row for row in await connection.execute(_ROWS_BY_ID, {"ids": ids})
    }
    verdicts: list[Exception | None] = []
    for facts in claims:
        verdict = _verdict(facts, rows.get(facts.user_id))
        if verdict is not None:
            known.forget(facts.user_id)
        verdicts.append(verdict)
    return verdicts


def refusal(row: Row[Any] | None, token_version: int) -> AuthenticationError | None:
    """Why a user row refuses a token of `token_version`, or None when it accepts it."""
    if row is None:
        return AuthenticationError(AuthFailure.UNKNOWN_USER)
    if not row.is_active:
        return AuthenticationError(AuthFailure.INACTIVE_USER)
    if row.token_version != token_version:
        return AuthenticationError(AuthFailure.REVOKED)
    return None


def _verdict(facts: UserFacts, row: Row[Any] | None) -> Exception | None:
    refused = refusal(row, facts.token_version)
    if refused is not None:
        return refused
    assert row is not None  # refusal() refuses a missing row
    if (row.username, row.department_id) != (facts.username, facts.department_id):
        return StalePrincipal()
    return None
