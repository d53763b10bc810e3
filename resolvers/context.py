"""Everything one GraphQL request carries: who asks, what they may do, one database session.

graphql-core resolves sibling fields concurrently, but a request holds a single session (one
connection, one transaction, one consistent snapshot for the root page and its nested levels),
so statements are serialised through a lock instead of racing on the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, Result
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.crypto import FieldCipher
from policy.decisions import AccessDecisions
from policy.principal import Principal
from policy.store import PolicyStore
from resolvers.read_log import ReadLog

if TYPE_CHECKING:
    from db.replicas import ReplicaRouter
    from resolvers.mutations.quality import QualityLoader
    from resolvers.reader import RecordReader
    from resolvers.workflow.history import HistoryLoader

log = logging.getLogger("dossier.db")

# The per-request loaders live above this module (they read through it), so it cannot import
# them: the schema's root (`api.root_schema.build_schema`, through `resolvers.loaders.install`)
# hands their factories down once, before any request runs.
Loader = Callable[["RequestContext"], Any]
_LOADERS: dict[str, Loader] = {}


def install_loaders(**factories: Loader) -> None:
    """Register the factory of each named per-request loader (`reader`, `quality`, ...)."""
    _LOADERS.update(factories)


def _loader(name: str) -> Loader:
    try:
        return _LOADERS[name]
    except KeyError:
        raise RuntimeError(
            f"no `{name}` loader installed: build the schema (api.root_schema) first"
        ) from None


class RequestDatabase:
    """One lazily opened session per request, used by one statement at a time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        replicas: ReplicaRouter | None = None,
        writer: str | None = None,
    ) -> None:
        """`replicas` and `writer` (whose writes these are: `RateKey.of(principal).value`) let
        `use_replica` send a read-only request to a replica, and `commit` remember the write
        so that the writer's next reads stay on the primary."""
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._replicas = replicas
        self._writer = writer
        self.on_replica = False
        self.lock = asyncio.Lock()

    async def use_replica(self) -> bool:
        """Read this request from a replica, if one is fresh enough and the writer has not
        written lately; call it before the first statement, only for an operation that cannot
        write. True when a replica was chosen; otherwise everything stays on the primary."""
        if self._replicas is None or self._session is not None:
            return False
        sessions = await self._replicas.sessions_for(self._writer)
        if sessions is None:
            return False
        self._sessions, self.on_replica = sessions, True
        return True

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessions()
        return self._session

    async def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        async with self.lock:
            return await self.session.execute(statement, params)

    @property
    def is_open(self) -> bool:
        return self._session is not None

    async def recover(self) -> bool:
        """Roll back a transaction left unusable, e.g. by a field task graphql-core cancelled
        mid-statement when a sibling failed; True when there was one to roll back."""
        session = self._session
        if session is None or not session.in_transaction():
            return False
        try:
            if not (await session.connection()).invalidated:
                return False
        except PendingRollbackError:
            pass
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        try:
            await session.rollback()
        except DBAPIError as error:
            # the connection died under the transaction: nothing is left to roll back, and
            # the session must let go of it without raising again
            if not error.connection_invalidated:
                raise
            await self._discard(session)
        return True

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.commit()
            if self._replicas is not None and self._writer is not None:
                await self._replicas.note_write(self._writer)

    async def close(self) -> None:
        """Give the connection back; on a connection that died the rollback that closing
        does cannot run, and the connection is dropped instead of raising."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.close()
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            await self._discard(session)

    @staticmethod
    async def _discard(session: AsyncSession) -> None:
        log.warning("database connection lost; its session is discarded")
        with contextlib.suppress(Exception):  # the connection is gone: nothing to report
            await session.invalidate()


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    operation: str | None = None
    query_hash: str | None = None


@dataclass
class RequestContext:
    principal: Principal
    decisions: AccessDecisions
    db: RequestDatabase
    cipher: FieldCipher
    policy_store: PolicyStore
    meta: RequestMeta
    reads: ReadLog = field(default_factory=ReadLog)
    denials: set[str] = field(default_factory=set)
    pending_events: list[Any] = field(default_factory=list)  # audit records of writes
    extras: dict[str, Any] = field(default_factory=dict)
    _reader: RecordReader | None = field(default=None, init=False)
    _quality: QualityLoader | None = field(default=None, init=False)
    _workflow: HistoryLoader | None = field(default=None, init=False)

    @property
    def reader(self) -> RecordReader:
        if self._reader is None:
            self._reader = _loader("reader")(self)
        return self._reader

    @property
    def quality(self) -> QualityLoader:
        """`Customer.quality`, batched per request (issue 6)."""
        if self._quality is None:
            self._quality = _loader("quality")(self)
        return self._quality

    @property
    def workflow(self) -> HistoryLoader:
        """`Opportunity.stageHistory` and `Customer.timeline`, batched per request (issue 18)."""
        if self._workflow is None:
            self._workflow = _loader("workflow")(self)
        return self._workflow

    def consents_of(self, customer_id: int) -> Awaitable[Any]:
        """`Customer.consents` (`resolvers.consents.consents_of`)."""
        return _loader("consents")(self)(customer_id)  # type: ignore[no-any-return]

    def reset_reads(self) -> None:
        """Forget everything read so far: its records, denials and cached loaders."""
        self.reads = ReadLog()
        self.denials = set()
        self._reader = None
        self._workflow = None

    def forget_reads(self) -> None:
        """Drop loaders' cached records, so what a write returns is read after the write."""
        self._reader = None
        self._workflow = None

    def deny(self, type_field: str) -> None:
        """Note a withheld field; the endpoint reports each once per response."""
        self.denials.add(type_field)
