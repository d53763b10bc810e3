"""The policy state of one process: Casbin enforcer, department tree, and a version to cache on.

Rules live in PostgreSQL (`policy_rules`). Every change is written there and announced with
`NOTIFY dossier_policy` in the same transaction; each process listens and reloads, so a change
reaches every process on its next request without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import casbin
from casbin.model import Model
from casbin.persist.adapter import Adapter
from casbin.util.builtin_operators import glob_match
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Department, PolicyRule
from policy.custom_fields import FieldCatalog, built_in_catalog, read_catalog

MODEL_PATH = Path(__file__).with_name("model.conf")
NOTIFY_CHANNEL = "dossier_policy"
WILDCARDS = ("*", "?", "[")

log = logging.getLogger(__name__)


def object_match(request_obj: str, policy_obj: str, by_name: str) -> bool:
    """Casbin matcher function: glob match, but a wildcard cannot grant a field named-only."""
    if by_name == "1" and any(w in policy_obj for w in WILDCARDS):
        return False
    return bool(glob_match(request_obj, policy_obj))


class LinesAdapter(Adapter):  # type: ignore[misc]  # casbin ships no type hints
    """Feeds rows of `policy_rules` to Casbin as token lists.

    Loading by lines of text would split a brace pattern such as `customer.{phone,email}` on its
    comma; handing Casbin the columns keeps each value whole.
    """

    def __init__(self, lines: Iterable[Sequence[str]]) -> None:
        self._lines = [tuple(line) for line in lines]

    def load_policy(self, model: Model) -> None:
        for ptype, *values in self._lines:
            if ptype not in ("p", "g"):  # consent requirements: `policy.consent`, not Casbin
                continue
            width = len(model.model["p" if ptype.startswith("p") else "g"][ptype].tokens)
            model.add_policy(ptype[0], ptype, list(values[:width]))


def new_enforcer(lines: Iterable[Sequence[str]]) -> casbin.Enforcer:
    enforcer = casbin.Enforcer(str(MODEL_PATH), LinesAdapter(lines))
    enforcer.add_function("objectMatch", object_match)
    return enforcer


@dataclass(frozen=True)
class DepartmentTree:
    parents: dict[int, int | None]
    names: dict[int, str]

    def subtree(self, department_id: int) -> frozenset[int]:
        """The department and all its descendants."""
        children: dict[int | None, list[int]] = {}
        for child, parent in self.parents.items():
            children.setdefault(parent, []).append(child)
        found, stack = {department_id}, [department_id]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return frozenset(found)

    def path(self, department_id: int) -> list[int]:
        """From the root down to the department."""
        chain: list[int] = []
        current: int | None = department_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parents.get(current)
        return list(reversed(chain))


@dataclass(frozen=True)
class PolicySnapshot:
    """An immutable view of every rule at one version; decisions are cached against it."""

    version: int
    enforcer: casbin.Enforcer
    departments: DepartmentTree
    lines: tuple[tuple[str, ...], ...]
    # custom field definitions and the sensitive-field set, versioned with the rules
    catalog: FieldCatalog = field(default_factory=built_in_catalog)

    def assignments_of(self, subject: str) -> list[tuple[str, str]]:
        """(role, department) pairs held by a subject."""
        return [(line[2], line[3]) for line in self.lines if line[0] == "g" and line[1] == subject]

    def rules_for(self, subject: str) -> list[tuple[str, tuple[str, ...]]]:
        """(assignment department, p rule) pairs that can apply to the subject.

        Roles come from Casbin's role manager (so role inheritance with domains is honoured);
        a rule applies if written for that department or for `*`.
        """
        found: list[tuple[str, tuple[str, ...]]] = []
        for _, domain in self.assignments_of(subject):
            roles = set(self.enforcer.get_implicit_roles_for_user(subject, domain))
            for line in self.lines:
                if line[0] == "p" and line[1] in roles and line[2] in ("*", domain):
                    found.append((domain, line))
        return found


async def read_snapshot(session: AsyncSession, version: int) -> PolicySnapshot:
    rows = (await session.execute(select(PolicyRule).order_by(PolicyRule.id))).scalars().all()
    lines = tuple((r.ptype, r.v0, r.v1, r.v2, r.v3, r.v4, r.v5) for r in rows)
    departments = (
        await session.execute(select(Department.id, Department.parent_id, Department.name))
    ).all()
    tree = DepartmentTree(
        parents={d.id: d.parent_id for d in departments},
        names={d.id: d.name for d in departments},
    )
    catalog = await read_catalog(session)
    enforcer = await asyncio.to_thread(new_enforcer, lines)
    return PolicySnapshot(
        version=version, enforcer=enforcer, departments=tree, lines=lines, catalog=catalog
    )


async def announce_change(session: AsyncSession) -> None:
    """Tell every process to reload; delivered when the caller's transaction commits."""
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


class PolicyStore:
    """Holds the current snapshot and keeps it current through LISTEN/NOTIFY.

    A listener that is lost (server restart, failover, a proxy's idle cut, a terminated
    backend) would leave this process deaf to every later change, serving rules an admin
    already withdrew: so the loss is noticed (asyncpg's termination callback, and a probe every
    `LISTENER_PROBE_SECONDS` for a connection that died silently), the listener reconnects with
    backoff, and the snapshot is reloaded once it listens again, since whatever was announced
    meanwhile was heard by nobody.
    """

    LISTENER_PROBE_SECONDS = 10.0
    PROBE_TIMEOUT_SECONDS = 5.0
    MAX_BACKOFF_SECONDS = 10.0

    def __init__(self, sessions: Any, listen_dsn: str | None) -> None:
        self._sessions = sessions
        self._listen_dsn = listen_dsn
        self._listener: asyncpg.Connection | None = None
        self._version = 0
        self._reload_lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.snapshot: PolicySnapshot | None = None

    async def start(self) -> None:
        if self._listen_dsn is not None:
            await self._listen()
            self._spawn(self._probe_listener())
        await self.reload()

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._pending):
            task.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def current(self) -> PolicySnapshot:
        assert self.snapshot is not None, "PolicyStore.start() was not awaited"
        return self.snapshot

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def reload(self) -> PolicySnapshot:
        async with self._reload_lock:
            self._version += 1
            async with self._sessions() as session:
                snapshot = await read_snapshot(session, self._version)
            self.snapshot = snapshot
            log.info("policy reloaded", extra={"version": snapshot.version})
            return snapshot

    async def _listen(self) -> None:
        assert self._listen_dsn is not None
        listener = await asyncpg.connect(self._listen_dsn)
        await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        listener.add_termination_listener(self._on_lost)
        self._listener = listener

    def _on_notify(self, *_: object) -> None:
        self._spawn(self.reload())

    def _on_lost(self, lost: object) -> None:
        if self._stopping or lost is not self._listener:
            return
        log.warning("policy listener lost; reconnecting")
        self._listener = None
        self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                await self._listen()
                await self.reload()  # changes announced while nobody listened
            except (TimeoutError, OSError, asyncpg.PostgresError, SQLAlchemyError) as error:
                log.warning("policy listener cannot reconnect yet: %s", error)
                # listening without the reload would leave the missed changes missed for good
                await self._drop_listener()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.MAX_BACKOFF_SECONDS)
                continue
            log.info("policy listener reconnected")
            return

    async def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()

    async def _probe_listener(self) -> None:
        """Close a listener that no longer answers, so that `_on_lost` replaces it."""
        while not self._stopping:
            await asyncio.sleep(self.LISTENER_PROBE_SECONDS)
            listener = self._listener
            if listener is None or listener.is_closed():
                continue
            try:
                await asyncio.wait_for(listener.fetchval("SELECT 1"), self.PROBE_TIMEOUT_SECONDS)
            except Exception:  # timed out, reset, protocol error: in every case, start over
                log.warning("policy listener does not answer; replacing it")
                listener.terminate()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
