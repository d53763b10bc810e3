"""Bench-only app factories: Dossier with one guard switched off, to price what each guard costs.

Each wraps `api.app.create_app` unchanged and, once its lifespan has built the state, swaps one
part in this process only:
- `create_policy_off_app`: the decision cache hands out decisions that allow every row and every
  field, so the same code paths run with trivial predicates (no SQL `WHERE`, no masks);
- `create_audit_off_app`: the endpoint's audit append is a no-op (the read log is still kept);
- `create_auth_off_app`: token verification and the user lookup are replaced by a fixed
  principal (`bob`, read once at startup), which is what authentication costs per request.

Production code is never changed for this; these factories exist only under `bench/`.

    uvicorn --factory bench.variants:create_policy_off_app
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request

import api.graphql
from api.app import create_app
from api.state import AppState
from audit.chain import Guard
from audit.events import AuditRecord
from db.models import User
from policy.decisions import AccessDecisions, DecisionCache
from policy.predicates import ALWAYS, Predicate
from policy.principal import Principal, PrincipalKind
from policy.store import PolicySnapshot
from policy.vocabulary import Action, Resource

FIXED_USER = "bob"


class AllowEverything(AccessDecisions):
    """Decisions that allow every row and every field: enforcement switched off."""

    def rows(self, resource: Resource, action: Action) -> Predicate:
        return ALWAYS

    def field(self, resource: Resource, name: str, action: Action = Action.READ) -> Predicate:
        return ALWAYS


class AllowEverythingCache(DecisionCache):
    """Kept per (principal, policy version) like the real cache, so no request rebuilds it."""

    def __init__(self) -> None:
        super().__init__()
        self._allowing: dict[tuple[Principal, int], AccessDecisions] = {}

    def for_principal(self, principal: Principal, snapshot: PolicySnapshot) -> AccessDecisions:
        key = (principal, snapshot.version)
        decisions = self._allowing.get(key)
        if decisions is None:
            decisions = self._allowing[key] = AllowEverything(principal, snapshot)
        return decisions


async def no_audit(
    session: Any, records: Sequence[AuditRecord], *, guard: Guard | None = None
) -> frozenset[int]:
    """Writes nothing; a read's user confirmation, which rides on its append, holds."""
    return frozenset(range(1, len(guard.claims) + 1)) if guard is not None else frozenset()


def _replace_in_endpoint(name: str, stand_in: object) -> None:
    """Swap a name the endpoint looks up at call time; refuse when the endpoint no longer has it.

    Without the check, a renamed function would leave the variant measuring the unchanged app.
    """
    if not callable(getattr(api.graphql, name, None)):
        raise RuntimeError(f"api.graphql.{name} is gone: update bench/variants.py")
    setattr(api.graphql, name, stand_in)


def _after_startup(app: Starlette, change: Callable[[AppState], Any]) -> Starlette:
    """Run `change` on the app state once the original lifespan has built it."""
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[None]:
        async with original(application):
            result = change(application.state.dossier)
            if inspect.isawaitable(result):
                await result
            yield

    app.router.lifespan_context = lifespan
    return app


def create_policy_off_app() -> Starlette:
    def switch_off(state: AppState) -> None:
        state.extras["decision_cache"] = AllowEverythingCache()

    return _after_startup(create_app(), switch_off)


def create_audit_off_app() -> Starlette:
    def switch_off(state: AppState) -> None:
        _replace_in_endpoint("append_events", no_audit)

    return _after_startup(create_app(), switch_off)


def create_auth_off_app() -> Starlette:
    async def switch_off(state: AppState) -> None:
        async with state.sessions() as session:
            row = (
                await session.execute(
                    select(User.id, User.department_id).where(User.username == FIXED_USER)
                )
            ).one()
        principal = Principal(
            kind=PrincipalKind.USER,
            name=FIXED_USER,
            user_id=row.id,
            department_id=row.department_id,
        )

        async def fixed_principal(request: Request) -> Principal:
            return principal

        async def fixed_principal_read(request: Request) -> tuple[Principal, None]:
            return principal, None  # nothing to confirm after the read either

        _replace_in_endpoint("authenticate", fixed_principal)
        _replace_in_endpoint("authenticate_read", fixed_principal_read)

    return _after_startup(create_app(), switch_off)
