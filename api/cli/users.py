"""`dossier user create|deactivate|set-password`: account administration for operators.

Each command runs in one transaction with its USER_CHANGE audit event; the actor is the
operator's OS login (`cli:<name>`, kind SYSTEM), since the CLI has no Dossier identity.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli.runtime import database_url, resolve_settings, run
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.engine import create_engine, create_sessionmaker
from db.models import Department, User
from identity.errors import IdentityError, IdentityInputError
from identity.users import create_user, deactivate_user, normalize_username, set_password

T = TypeVar("T")


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


async def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on the configured database."""
    settings = resolve_settings()
    engine = create_engine(database_url(settings))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def run_identity(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`in_transaction`, with identity errors turned into clean CLI errors."""
    try:
        return run(in_transaction(work))
    except IdentityInputError as error:
        raise click.BadParameter(error.reason, param_hint=error.field) from error
    except IdentityError as error:
        raise click.ClickException(str(error)) from error


def user_change(user: User, changes: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        actor=cli_actor(),
        actor_kind=ActorKind.SYSTEM,
        action=AuditAction.USER_CHANGE,
        resource_type="user",
        resource_ids=[str(user.id)],
        changes=changes,
    )


async def user_by_name(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == normalize_username(username)))
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


async def department_by_ref(session: AsyncSession, ref: str) -> Department:
    """A department by id (digits) or by exact name."""
    condition = Department.id == int(ref) if ref.isdigit() else Department.name == ref
    department = await session.scalar(select(Department).where(condition))
    if department is None:
        raise click.ClickException(f"no department {ref!r}")
    return department


@click.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--department", "department_ref", required=True, help="Department id or name.")
@click.option("--display-name", default=None, help="Name shown to other users.")
@click.password_option(help="Prompted (hidden, twice) when not given.")
def create(username: str, department_ref: str, display_name: str | None, password: str) -> None:
    """Create an active user in a department (roles are assigned with `dossier policy`)."""

    async def work(session: AsyncSession) -> User:
        department = await department_by_ref(session, department_ref)
        created = await create_user(
            session,
            username=username,
            password=password,
            display_name=display_name,
            department_id=department.id,
        )
        changes = {
            "username": {"old": None, "new": created.username},
            "departmentId": {"old": None, "new": department.id},
        }
        await append_events(session, [user_change(created, changes)])
        return created

    created = run_identity(work)
    click.echo(f"created user {created.username} (id {created.id})")


@user.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Deactivate a user: every token of theirs stops working at once."""

    async def work(session: AsyncSession) -> User:
        found = await user_by_name(session, username)
        was_active = found.is_active
        await deactivate_user(session, found.id)
        changes = {"active": {"old": was_active, "new": False}}
        await append_events(session, [user_change(found, changes)])
        return found

    done = run_identity(work)
    click.echo(f"deactivated {done.username}; their tokens are revoked")


@user.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted (hidden, twice) when not given.")
def set_password_command(username: str, password: str) -> None:
    """Set a new password; the user's existing tokens are revoked."""

    async def work(session: AsyncSession) -> User:
        found = await user_by_name(session, username)
        await set_password(session, found.id, password)
        changes = {"password": {"old": "****", "new": "****"}}
        await append_events(session, [user_change(found, changes)])
        return found

    done = run_identity(work)
    click.echo(f"password of {done.username} changed; their tokens are revoked")
