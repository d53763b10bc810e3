"""`dossier token issue|revoke|list`: partner tokens for operators.

The secret is printed once by `issue` and never again; `list` shows everything but secrets.
"""

from __future__ import annotations

import json
import uuid

import click
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli.users import cli_actor, run_identity
from audit.events import ActorKind
from db.models import PartnerToken
from identity.partner_tokens import (
    DEFAULT_EXPIRY_DAYS,
    IssuedPartnerToken,
    PartnerScope,
    issue_partner_token,
    list_partner_tokens,
    revoke_partner_token,
)


@click.group()
def token() -> None:
    """Issue, list and revoke partner tokens."""


@token.command("issue")
@click.option("--partner", "partner_name", required=True, help="Partner name, e.g. acme-partner.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([scope.value for scope in PartnerScope]),
    help="Repeat for several scopes.",
)
@click.option("--customer", "customer_ids", multiple=True, type=int, help="Shared customer id.")
@click.option(
    "--expires-in-days",
    type=int,
    default=DEFAULT_EXPIRY_DAYS,
    show_default=True,
    help="Days until the token stops working.",
)
def issue(
    partner_name: str, scopes: tuple[str, ...], customer_ids: tuple[int, ...], expires_in_days: int
) -> None:
    """Issue a partner token and print its secret (shown only this once)."""

    async def work(session: AsyncSession) -> IssuedPartnerToken:
        return await issue_partner_token(
            session,
            partner_name=partner_name,
            scopes=list(scopes),
            customer_ids=list(customer_ids) if customer_ids else None,
            expires_in_days=expires_in_days,
            issued_by=cli_actor(),
            actor_kind=ActorKind.SYSTEM,
        )

    issued = run_identity(work)
    click.echo(f"id:         {issued.id}")
    click.echo(f"expires at: {issued.expires_at.isoformat()}")
    click.echo(f"token:      {issued.token}")
    click.echo("Store the token now: it cannot be shown again.", err=True)


@token.command("revoke")
@click.argument("token_id", type=click.UUID)
def revoke(token_id: uuid.UUID) -> None:
    """Revoke a partner token by id; it stops working at once."""

    async def work(session: AsyncSession) -> bool:
        return await revoke_partner_token(
            session, token_id, revoked_by=cli_actor(), actor_kind=ActorKind.SYSTEM
        )

    if not run_identity(work):
        raise click.ClickException(f"no live partner token {token_id}")
    click.echo(f"revoked {token_id}")


def _describe(row: PartnerToken) -> dict[str, object]:
    return {
        "id": str(row.id),
        "partner": row.partner_name,
        "scopes": row.scopes,
        "customer_ids": row.customer_ids,
        "issued_by": row.issued_by,
        "issued_at": row.issued_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_(as_json: bool) -> None:
    """List partner tokens (never their secrets)."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        return [_describe(row) for row in await list_partner_tokens(session)]

    for item in run_identity(work):
        if as_json:
            click.echo(json.dumps(item, ensure_ascii=False))
        else:
            state = "revoked" if item["revoked_at"] else f"expires {item['expires_at']}"
            scopes = ",".join(item["scopes"])  # type: ignore[arg-type]  # a list of str
            click.echo(f"{item['id']}  {item['partner']}  {scopes}  {state}")
