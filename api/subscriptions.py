"""The WebSocket transport of `Subscription.recordChanged` (graphql-transport-ws on `/graphql`).

The subscription itself (what a message carries, its masks, its audit) is
`events.subscription`; this module is the API's part: the ASGI app that serves only
subscriptions, the connection's authentication from `connection_init`'s payload
(`Authorization: Bearer …` or `token`, the same checks as HTTP) and the host object through
which the events room reaches the app's sessions, decisions and read audit records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
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
from api.request_audit import audit_records
from api.state import AppState
from audit.events import AuditRecord
from events.hub import EventHub
from events.subscription import SubscriptionContext
from identity.opaque_tokens import PARTNER_TOKEN_PREFIX
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from resolvers.context import RequestContext, RequestDatabase, RequestMeta


async def _principal_of(state: AppState, token: str) -> Principal:
    """The same validation as an HTTP request's (`api.auth.backend.authenticate`)."""
    if token.startswith(PARTNER_TOKEN_PREFIX):
        return await _partner_principal(state, token)
    return await _checked_user(state, verify_access_token(state.settings.auth, token))


@dataclass(frozen=True)
class AppSubscriptionHost:
    """`events.subscription.SubscriptionHost` on the app's state: token checks, decisions and
    read audit records are the API's, lent to the events room that may not import them."""

    state: AppState

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.state.sessions

    @property
    def hub(self) -> EventHub:
        return self.state.extras["events"].hub  # type: ignore[no-any-return]

    async def principal_of(self, token: str) -> Principal | None:
        try:
            return await _principal_of(self.state, token)
        except AuthenticationError:
            return None

    def decisions_for(self, principal: Principal) -> AccessDecisions:
        store = self.state.extras["policy_store"]
        return self.state.extras["decision_cache"].for_principal(principal, store.current())  # type: ignore[no-any-return]

    def read_records(self, context: RequestContext) -> list[AuditRecord]:
        return audit_records(context, context.principal, context.meta, context.denials)


def _token_of(params: dict[str, Any]) -> str:
    header = params.get("Authorization") or params.get("authorization")
    if header is None and isinstance(params.get("token"), str):
        header = f"Bearer {params['token']}"
    return bearer_token(header if isinstance(header, str) else None)


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
            state=AppSubscriptionHost(state),
        )

    async def on_ws_connect(self, context: SubscriptionContext) -> None:  # type: ignore[override]
        host = context.state
        assert isinstance(host, AppSubscriptionHost)
        state = host.state
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
