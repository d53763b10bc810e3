"""createWebhook, deleteWebhook, webhooks, webhookDeliveries (policy resource `webhook`).

A webhook reads as exactly one principal: a partner token (`partnerTokenId`) or a role
(`role`), held in the creating user's department. Its secret (Standard Webhooks `whsec_…`) is
generated here, answered once by `createWebhook`, and stored encrypted with the field cipher
(`db.crypto`), never in clear. Every change writes its audit event in its own savepoint.
"""

from __future__ import annotations

import base64
import os
import uuid
from datetime import datetime

import strawberry
from sqlalchemy import text

from events.delivery import SECRET_LABEL
from events.outbox import RECORD_TYPES
from events.runtime import webhook_settings
from events.safety import check_url
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, NotFoundError
from resolvers.filters import pk_of
from resolvers.pagination import checked_first, decode_cursor, encode_cursor
from resolvers.writes import record, require, write
from schema.node import Connection, Edge, Node, PageInfo, to_global_id

WEBHOOK = Resource.WEBHOOK
VERBS = ("created", "updated", "archived", "deleted")
KNOWN_EVENTS = frozenset(
    {f"{kind}.{verb}" for kind in RECORD_TYPES for verb in VERBS}
    | {f"{kind}.*" for kind in RECORD_TYPES}
    | {"customer.merged", "opportunity.stage_changed", "*"}
)
MAX_EVENTS = 50


@strawberry.type
class Webhook(Node):
    id: strawberry.ID
    url: str | None
    events: list[str] | None
    active: bool | None
    secret: str | None = strawberry.field(
        default=None, description="Shown once, in the answer of createWebhook; null afterwards."
    )


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    event: str | None
    status: str | None
    attempts: int | None
    last_error: str | None
    at: datetime | None


@strawberry.input
class WebhookInput:
    url: str
    events: list[str]
    role: str | None = None
    partner_token_id: strawberry.ID | None = None


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def _webhook(row: object, secret: str | None = None) -> Webhook:
    return Webhook(
        id=strawberry.ID(to_global_id("Webhook", row.id)),  # type: ignore[attr-defined]
        url=row.url,  # type: ignore[attr-defined]
        events=list(row.events),  # type: ignore[attr-defined]
        active=row.active,  # type: ignore[attr-defined]
        secret=secret,
    )


def _events(events: list[str]) -> list[str]:
    wanted = sorted({e.strip() for e in events})
    unknown = [e for e in wanted if e not in KNOWN_EVENTS]
    if not wanted or len(wanted) > MAX_EVENTS or unknown:
        raise BadUserInputError(
            "Invalid input: events: " + (f"unknown {', '.join(unknown)}" if unknown else
                                         f"1-{MAX_EVENTS} event names are required"),
            field="events",
        )  # fmt: skip
    return wanted


async def _principal_of_input(
    context: RequestContext, session: object, input: WebhookInput
) -> tuple[str | None, uuid.UUID | None]:
    if (input.role is None) == (input.partner_token_id is None):
        raise BadUserInputError(
            "Invalid input: give exactly one of role and partnerTokenId", field="role"
        )
    if input.role is not None:
        lines = context.decisions.snapshot.lines
        roles = {line[1] for line in lines if line[0] == "p"}
        if input.role not in roles:
            raise BadUserInputError("Invalid input: role: no such role", field="role")
        # a partner's role read as a role would lose what narrows it for partners (named
        # fields only, scopes, shared customers): partners' webhooks go by their token
        partner_roles = {
            line[2] for line in lines if line[0] == "g" and line[1].startswith("partner:")
        }
        if input.role in partner_roles:
            raise BadUserInputError(
                "Invalid input: role: a partner's role; give its partnerTokenId instead",
                field="role",
            )
        return input.role, None
    try:
        token_id = uuid.UUID(str(input.partner_token_id))
    except ValueError:
        raise BadUserInputError("not a token id", argument="input.partnerTokenId") from None
    found = await session.execute(  # type: ignore[attr-defined]
        text("SELECT 1 FROM partner_tokens WHERE id = :id AND revoked_at IS NULL"),
        {"id": token_id},
    )
    if found.first() is None:
        raise BadUserInputError(
            "Invalid input: partnerTokenId: no such live token", field="partnerTokenId"
        )
    return None, token_id


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Webhooks that are not deleted, without their secrets.")
    async def webhooks(self, info: strawberry.Info) -> list[Webhook]:
        context: RequestContext = info.context
        require(context, WEBHOOK, Action.READ, "webhooks")
        rows = (
            await context.db.execute(
                text(
                    "SELECT id, url, events, active FROM webhooks "
                    "WHERE deleted_at IS NULL ORDER BY id"
                )
            )
        ).all()
        context.reads.note(WEBHOOK.value, (r.id for r in rows), ["url", "events", "active"])
        return [_webhook(r) for r in rows]

    @strawberry.field(description="A webhook's deliveries, oldest first.")
    async def webhook_deliveries(
        self,
        info: strawberry.Info,
        webhook_id: strawberry.ID,
        first: int | None = 50,
        after: str | None = None,
    ) -> Connection[WebhookDelivery]:
        context: RequestContext = info.context
        require(context, WEBHOOK, Action.READ, "webhookDeliveries")
        pk = pk_of(webhook_id, "Webhook", "webhookId")
        limit = checked_first(first)
        after_pk = decode_cursor(after, expect=int)[1] if after is not None else 0
        rows = (
            await context.db.execute(
                text(
                    "SELECT id, event, status, attempts, last_error, "
                    "coalesce(delivered_at, created_at) AS at FROM webhook_deliveries "
                    "WHERE webhook_id = :webhook AND id > :after ORDER BY id LIMIT :limit"
                ),
                {"webhook": pk, "after": after_pk, "limit": limit + 1},
            )
        ).all()
        total = (
            await context.db.execute(
                text("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :webhook"),
                {"webhook": pk},
            )
        ).scalar_one()
        page = rows[:limit]
        context.reads.note(WEBHOOK.value, [pk], ["deliveries"])
        nodes = [
            WebhookDelivery(
                id=strawberry.ID(to_global_id("WebhookDelivery", r.id)),
                event=r.event,
                status=r.status,
                attempts=r.attempts,
                last_error=r.last_error,
                at=r.at,
            )
            for r in page
        ]
        cursors = [encode_cursor(r.id, r.id) for r in page]
        return Connection(
            edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=len(rows) > limit, end_cursor=cursors[-1] if cursors else None
            ),
            total_count=total,
        )


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="The secret is in this answer only; store it safely.")
    async def create_webhook(self, info: strawberry.Info, input: WebhookInput) -> Webhook | None:
        context: RequestContext = info.context
        require(context, WEBHOOK, Action.CREATE, "createWebhook")
        events = _events(input.events)
        await check_url(input.url, allow_private=webhook_settings(context).allow_private)
        secret = new_secret()
        async with write(context) as session:
            role, token_id = await _principal_of_input(context, session, input)
            row = (
                await session.execute(
                    text(
                        "INSERT INTO webhooks (url, events, role, department_id, "
                        "partner_token_id, secret_enc, created_by) VALUES (:url, :events, "
                        ":role, :department, :token, :secret, :by) "
                        "RETURNING id, url, events, active"
                    ),
                    {
                        "url": input.url.strip(),
                        "events": events,
                        "role": role,
                        "department": context.principal.department_id if role else None,
                        "token": token_id,
                        "secret": context.cipher.encrypt(SECRET_LABEL, secret),
                        "by": context.principal.name,
                    },
                )
            ).one()
            changes = {
                "url": {"old": None, "new": row.url},
                "events": {"old": None, "new": events},
                "role": {"old": None, "new": role},
                "partnerTokenId": {"old": None, "new": str(token_id) if token_id else None},
            }
            await record(context, session, "CREATE", WEBHOOK.value, [row.id],
                         changes=changes, fields=changes)  # fmt: skip
        return _webhook(row, secret)

    @strawberry.mutation(description="Stops deliveries at once; pending ones are cancelled.")
    async def delete_webhook(self, info: strawberry.Info, id: strawberry.ID) -> bool | None:
        context: RequestContext = info.context
        require(context, WEBHOOK, Action.DELETE, "deleteWebhook")
        pk = pk_of(id, "Webhook", "id")
        async with write(context) as session:
            found = (
                await session.execute(
                    text(
                        "UPDATE webhooks SET active = false, deleted_at = now() "
                        "WHERE id = :id AND deleted_at IS NULL RETURNING id"
                    ),
                    {"id": pk},
                )
            ).first()
            if found is None:
                raise NotFoundError("webhook")
            await session.execute(
                text(
                    "UPDATE webhook_deliveries SET status = 'CANCELLED' "
                    "WHERE webhook_id = :id AND status IN ('PENDING', 'RETRYING')"
                ),
                {"id": pk},
            )
            await record(context, session, "DELETE", WEBHOOK.value, [pk],
                         changes={"active": {"old": True, "new": False}})  # fmt: skip
        return True
