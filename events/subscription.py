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
from datetime import datetime, timedelta
from typing import Any

import strawberry
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from sqlalchemy import text
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)

from api.auth.access_tokens import verify_access_token
from api.auth.backend import _checked_user, _partner_principal, bearer_token
from api.auth.errors import AuthenticationError
from api.state import AppState
from audit.chain import append_events
from audit.events import AuditAction, AuditRecord
from events.hub import LOST
from identity.opaque_tokens import PARTNER_TOKEN_PREFIX
from policy.principal import Principal, PrincipalKind
from policy.vocabulary import Action
from resolvers.context import RequestContext, RequestDatabase, RequestMeta
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


@dataclass
class SubscriptionContext(RequestContext):
    """A request context that lives as long as the socket; its `db` is renewed per message."""

    state: AppState | None = None
    token: str | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)


@strawberry.type
class RecordChange:
    event: str | None
    node: Node | None
    changed_fields: list[str] | None
    at: datetime | None


async def _principal_of(state: AppState, token: str) -> Principal:
    """The same validation as an HTTP request's (`api.auth.backend.authenticate`)."""
    if token.startswith(PARTNER_TOKEN_PREFIX):
        return await _partner_principal(state, token)
    return await _checked_user(state, verify_access_token(state.settings.auth, token))


def _token_of(params: dict[str, Any]) -> str:
    header = params.get("Authorization") or params.get("authorization")
    if header is None and isinstance(params.get("token"), str):
        header = f"Bearer {params['token']}"
    return bearer_token(header if isinstance(header, str) else None)


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


async def _audit(state: AppState, records: list[AuditRecord]) -> None:
    if not records:
        return
    async with state.sessions() as session, session.begin():
        await append_events(session, records)


def _read_records(context: SubscriptionContext) -> list[AuditRecord]:
    from api.graphql import audit_records  # the HTTP endpoint's own read events

    records = audit_records(context, context.principal, context.meta, context.denials)
    context.reset_reads()
    return records


async def _still_valid(context: SubscriptionContext) -> bool:
    state, token = context.state, context.token
    assert state is not None and token is not None
    try:
        principal = await _principal_of(state, token)
    except AuthenticationError:
        return False
    return principal == context.principal


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
    store = state.extras["policy_store"]
    context.decisions = state.extras["decision_cache"].for_principal(
        context.principal, store.current()
    )
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
        hub = state.extras["events"].hub
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


def _only_subscriptions(query: Any, operation_name: Any) -> bool:
    """Queries and mutations go through the HTTP endpoint (its audit, its commit), never here."""
    try:
        document = parse(query) if isinstance(query, str) else None
    except GraphQLError:
        return True  # the handler answers the syntax error itself
    if document is None:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [
            o for o in operations if o.name is not None and o.name.value == operation_name
        ]
    return bool(operations) and all(o.operation is OperationType.SUBSCRIPTION for o in operations)


class SubscriptionsOnlyHandler(BaseGraphQLTransportWSHandler):  # type: ignore[type-arg]
    async def handle_subscribe(self, message: Any) -> None:
        payload = message.get("payload") or {}
        if self.connection_acknowledged and not _only_subscriptions(
            payload.get("query"), payload.get("operationName")
        ):
            error = GraphQLError("Only subscriptions are served over WebSocket; use POST /graphql")
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)


class SubscriptionsApp(GraphQL):  # type: ignore[misc]
    """Strawberry's ASGI app, for WebSockets only; HTTP stays with `api.graphql`."""

    graphql_transport_ws_handler_class = SubscriptionsOnlyHandler

    def __init__(self, schema: Any) -> None:
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            graphql_ide=None,
            max_subscriptions_per_connection=1,
        )

    async def get_context(  # type: ignore[override]  # the socket's own context type
        self, request: Any, response: Any = None
    ) -> SubscriptionContext:
        state: AppState = request.app.state.dossier
        client = request.client
        return SubscriptionContext(
            principal=Principal(kind=PrincipalKind.SYSTEM, name="anonymous"),
            decisions=None,  # type: ignore[arg-type]  # set once the connection is authenticated
            db=RequestDatabase(state.sessions),
            cipher=state.settings.field_cipher,
            policy_store=state.extras["policy_store"],
            meta=RequestMeta(ip=client.host if client else None, operation="recordChanged"),
            state=state,
        )

    async def on_ws_connect(self, context: SubscriptionContext) -> None:  # type: ignore[override]
        state = context.state
        assert state is not None
        try:
            token = _token_of(context.connection_params or {})
            principal = await _principal_of(state, token)
        except AuthenticationError:
            raise ConnectionRejectionError() from None
        context.principal = principal
        context.token = token
        context.decisions = state.extras["decision_cache"].for_principal(
            principal, state.extras["policy_store"].current()
        )


async def subscriptions_endpoint(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.dossier
    handler = state.extras.get("subscriptions_app")
    if handler is None:
        handler = state.extras["subscriptions_app"] = SubscriptionsApp(state.extras["schema"])
    await handler(websocket.scope, websocket.receive, websocket.send)
