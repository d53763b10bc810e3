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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import casbin
from casbin.model import Model
from casbin.persist.adapter import Adapter
from casbin.util.builtin_operators import glob_match
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Department, PolicyRule

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
    enforcer = await asyncio.to_thread(new_enforcer, lines)
    return PolicySnapshot(version=version, enforcer=enforcer, departments=tree, lines=lines)


async def announce_change(session: AsyncSession) -> None:
    """Tell every process to reload; delivered when the caller's transaction commits."""
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


class PolicyStore:
    """Holds the current snapshot and keeps it current through LISTEN/NOTIFY."""

    def __init__(self, sessions: Any, listen_dsn: str | None) -> None:
        self._sessions = sessions
        self._listen_dsn = listen_dsn
        self._listener: asyncpg.Connection | None = None
        self._version = 0
        self._reload_lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self.snapshot: PolicySnapshot | None = None

    async def start(self) -> None:
        if self._listen_dsn is not None:
            self._listener = await asyncpg.connect(self._listen_dsn)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        await self.reload()

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def current(self) -> PolicySnapshot:
        assert self.snapshot is not None, "PolicyStore.start() was not awaited"
        return self.snapshot

    async def reload(self) -> PolicySnapshot:
        async with self._reload_lock:
            self._version += 1
            async with self._sessions() as session:
                snapshot = await read_snapshot(session, self._version)
            self.snapshot = snapshot
            log.info("policy reloaded", extra={"version": snapshot.version})
            return snapshot

    def _on_notify(self, *_: object) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
