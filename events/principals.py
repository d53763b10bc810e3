"""Who a webhook reads as: its partner token, or its role in its department.

A partner-token webhook reads exactly as the token does over HTTP (the same Principal the
authentication backend builds: scopes and shared customers narrow its policies); a revoked or
expired token reads nothing. A role webhook reads as a holder of that role in the webhook's
department with no user of its own: DEPARTMENT, SUBTREE and ALL rules apply relative to that
department, OWN rules reach nothing (no row is owned by a webhook).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import PartnerToken
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.store import PolicySnapshot


class RoleDecisions(AccessDecisions):
    """Decisions of a role held in one department, for a principal that is no user."""

    def __init__(self, principal: Principal, snapshot: PolicySnapshot, role: str, domain: str):
        self._role, self._domain = role, domain
        super().__init__(principal, snapshot)

    def __post_init__(self) -> None:
        snapshot, domain = self.snapshot, self._domain
        roles = {self._role, *snapshot.enforcer.get_implicit_roles_for_user(self._role, domain)}
        self._rules = [
            (domain, line)
            for line in snapshot.lines
            if line[0] == "p" and line[1] in roles and line[2] in ("*", domain)
        ]


@dataclass(frozen=True)
class WebhookReader:
    """The principal a webhook reads as, or why it reads nothing."""

    principal: Principal | None
    role: str | None = None
    domain: str | None = None
    refusal: str | None = None

    def decisions(self, snapshot: PolicySnapshot) -> AccessDecisions:
        assert self.principal is not None
        if self.role is not None:
            return RoleDecisions(self.principal, snapshot, self.role, self.domain or "*")
        return AccessDecisions(self.principal, snapshot)


async def webhook_reader(session: AsyncSession | None, webhook: Any) -> WebhookReader:
    """`webhook`: a row with webhook_id (or id), role, department_id and partner_token_id;
    `session` is needed (and used) only for a partner token's webhook."""
    if webhook.partner_token_id is not None:
        assert session is not None
        token = await session.scalar(
            select(PartnerToken).where(PartnerToken.id == webhook.partner_token_id)
        )
        if token is None or token.revoked_at is not None:
            return WebhookReader(None, refusal="partner token revoked")
        if token.expires_at <= datetime.now(UTC):
            return WebhookReader(None, refusal="partner token expired")
        return WebhookReader(
            Principal(
                kind=PrincipalKind.PARTNER,
                name=token.partner_name,
                token_id=token.id,
                scopes=frozenset(token.scopes),
                shared_customer_ids=None
                if token.customer_ids is None
                else frozenset(token.customer_ids),
            )
        )
    domain = str(webhook.department_id) if webhook.department_id is not None else "*"
    principal = Principal(
        kind=PrincipalKind.SYSTEM,
        name=f"webhook:{getattr(webhook, 'webhook_id', None) or webhook.id}",
        department_id=webhook.department_id,
    )
    return WebhookReader(principal, role=webhook.role, domain=domain)
