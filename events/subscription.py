"""`Subscription.recordChanged` over graphql-transport-ws on `/graphql`.

The connection authenticates once, from `connection_init`'s payload (`Authorization: Bearer …`
or `token`), with the same checks as HTTP (signature and claims, then the user's row or the
partner token's). Every message is read for the subscriber through the same reader and
decisions as a query, so what `node` carries is the query's mask; a change outside the
subscriber's scope sends nothing at all. The subscriber's validity is checked again before every
message and every `RECHECK_SECONDS`: a revoked token, a deactivated user or a changed token
version ends the subscription (`complete`). Opening a subscription writes an audit event, and the
records each message returned are audited like any read.

A connection carries one operation at a time (`max_subscriptions_per_connection=1`): the
operation's context holds its own database session per message, which concurrent operations
on one socket would share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import strawberry
from graphql import FieldNode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.chain import append_events
from audit.events import AuditAction, AuditRecord
from events.hub import LOST, EventHub
from policy.decisions import AccessDecisions
from policy.principal import Principal
from policy.vocabulary import Action
from resolvers.context import RequestContext, RequestDatabase
from resolvers.records import SPECS
from resolvers.selection import Requested, _fields_of, object_fields
from schema.node import Node

log = logging.getLogger("dossier.subscriptions")

RECHECK_SECONDS = 5.0
TYPE_OF_RESOURCE = {spec.resource.value: spec.type_name for spec in SPECS.values()}

_OUTBOX_ROW = text(
    "SELECT id, event, resource_type, resource_id, changed_fields, at "
    "FROM outbox_events WHERE id = :id"
)


class SubscriptionHost(Protocol):
    """What the serving application lends a subscription (`api.subscriptions` implements it
    on the app's state): this room sits below the API and never imports it."""

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def hub(self) -> EventHub: ...

    async def principal_of(self, token: str) -> Principal | None:
        """The same validation as an HTTP request's; None when the token no longer passes."""
        ...

    def decisions_for(self, principal: Principal) -> AccessDecisions: ...

    def read_records(self, context: RequestContext) -> list[AuditRecord]:
        """The HTTP endpoint's own read events of what `context` read so far."""
        ...


@dataclass
class SubscriptionContext(RequestContext):
    """A request context that lives as long as the socket; its `db` is renewed per message."""

    state: SubscriptionHost | None = None
    token: str | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)


@strawberry.type
class RecordChange:
    event: str | None
    node: Node | None
    changed_fields: list[str] | None
    at: datetime | None


def _wanted_types(types: list[str] | None) -> set[str] | None:
    if types is None:
        return None
    wanted = set()
    for name in types:
        wanted.add(TYPE_OF_RESOURCE.get(name, name))
    return wanted


def _node_selection(info: strawberry.Info, type_name: str) -> Requested:
    raw = info._raw_info
    top = _fields_of([n.selection_set for n in raw.field_nodes], raw.fragments, "RecordChange")
    nodes: list[FieldNode] = top.get("node", [])
    return object_fields(nodes, raw.fragments, type_name)


def _visible_changes(
    context: RequestContext, type_name: str, node: Any, fields: list[str]
) -> list[str]:
    """Changed fields the subscriber may read on this record; nothing else is named."""
    resource = SPECS[type_name].resource
    shown = []
    for name in fields:
        if name not in SPECS[type_name].fields:
            continue
        allowed = context.decisions.field(resource, name, Action.READ)
        if allowed.is_always or (
            not allowed.is_never and name not in node.withheld and name in node.__dict__
        ):
            shown.append(name)
    return shown


async def _audit(state: SubscriptionHost, records: list[AuditRecord]) -> None:
    if not records:
        return
    async with state.sessions() as session, session.begin():
        await append_events(session, records)


def _read_records(context: SubscriptionContext) -> list[AuditRecord]:
    assert context.state is not None
    records = context.state.read_records(context)
    context.reset_reads()
    return records


async def _still_valid(context: SubscriptionContext) -> bool:
    state, token = context.state, context.token
    assert state is not None and token is not None
    return await state.principal_of(token) == context.principal


async def _change(
    info: strawberry.Info, context: SubscriptionContext, outbox_id: int, wanted: set[str] | None
) -> RecordChange | None:
    state = context.state
    assert state is not None
    await context.db.close()
    context.db = RequestDatabase(state.sessions)
    context.forget_reads()
    row = (await context.db.execute(_OUTBOX_ROW, {"id": outbox_id})).first()
    if row is None:
        return None
    type_name = TYPE_OF_RESOURCE.get(row.resource_type)
    if type_name is None or (wanted is not None and type_name not in wanted):
        return None
    context.decisions = state.decisions_for(context.principal)
    node = await context.reader.one_with(
        _node_selection(info, type_name), type_name, int(row.resource_id)
    )
    if node is None:
        return None  # outside the subscriber's scope, or gone: nothing is said
    return RecordChange(
        event=row.event,
        node=node,
        changed_fields=_visible_changes(context, type_name, node, list(row.changed_fields)),
        at=row.at,
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Changes as they commit, masked for the subscriber.")
    async def record_changed(
        self, info: strawberry.Info, types: list[str] | None = None
    ) -> AsyncGenerator[RecordChange | None, None]:
        context: SubscriptionContext = info.context
        state = context.state
        assert state is not None
        wanted = _wanted_types(types)
        await _audit(
            state,
            [
                AuditRecord(
                    actor=context.principal.name,
                    actor_kind=context.principal.kind.value,
                    action=AuditAction.READ,
                    resource_type="subscription",
                    operation="recordChanged",
                    changes={"types": sorted(wanted) if wanted is not None else None},
                    token_id=context.principal.token_id,
                    ip=context.meta.ip,
                )
            ],
        )
        hub = state.hub
        loop = asyncio.get_running_loop()
        checked_at = loop.time()
        async with hub.subscribe() as queue:
            try:
                while True:
                    try:
                        outbox_id = await asyncio.wait_for(queue.get(), RECHECK_SECONDS)
                    except TimeoutError:
                        outbox_id = None
                    await _audit(state, _read_records(context))
                    if outbox_id is not None or loop.time() - checked_at >= RECHECK_SECONDS:
                        if not await _still_valid(context):
                            log.info(
                                "subscription of %s ends: no longer valid", context.principal.name
                            )
                            return
                        checked_at = loop.time()
                    if outbox_id is None:
                        continue
                    if outbox_id == LOST:
                        return  # the stream has a gap: the client re-subscribes and re-reads
                    change = await _change(info, context, outbox_id, wanted)
                    if change is not None:
                        yield change
            finally:
                await context.db.close()
                with contextlib.suppress(Exception):
                    await _audit(state, _read_records(context))
