from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class AuditEvent(Base):
    """One entry of the tamper-evident audit trail, partitioned by month on `at`.

    `seq` orders the hash chain; `hash` covers the canonical serialisation of the event and
    `prev_hash`, so altering, removing or reordering an entry breaks every hash after it.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        # no index on resource_ids: lookups by resource id go through audit_resource_index,
        # which a background indexer fills (audit.indexer), so no appender maintains a GIN
        # index while it holds the chain head
        Index("ix_audit_events_action_seq", "action", "seq"),
        # a time range becomes a range of seq (`audit.queries`): its two ends are found here
        Index("ix_audit_events_at_seq", "at", "seq"),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.now()
    )
    actor: Mapped[str] = mapped_column(String(300))
    actor_kind: Mapped[str] = mapped_column(String(20))
    token_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(40))
    resource_type: Mapped[str | None] = mapped_column(String(60))
    resource_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    operation: Mapped[str | None] = mapped_column(String(200))
    query_hash: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last link of the audit chain: one row, locked by every append until its commit.

    Locking this row with `SELECT … FOR UPDATE` serialises appenders exactly like a
    transaction-level advisory lock, but the lock and the read of the previous hash are one
    round trip, and READ COMMITTED hands the waiter the row as committed by its predecessor.
    A rolled-back append rolls the head back too, so sequence numbers stay gapless.
    """

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditResourceIndex(Base):
    """Which events name a resource: one row per (resource id, type, indexer batch, month).

    Derived data, rebuilt from `audit_events` at will: `audit.indexer` groups the unnested
    `resource_ids` of each batch of events above `AuditIndexState.indexed_seq` by id, type and
    month, stores each group's `seqs` as one array and moves the watermark in the same
    transaction. Reads repeat the same records, so an id read by 25 events of a batch costs one
    row and 25 array elements (8 bytes each) rather than 25 rows of ~120 bytes.

    A row lies wholly on one side of every watermark (a batch is indexed whole), and the
    `first_seq`..`last_seq` ranges of one (id, type) never overlap (batches are disjoint
    stretches of the chain). Partitioned by month on `at` (the `at` of `first_seq`) like the
    events: a row's events all lie in that month, between `at` and `last_at`, so archiving
    drops a month's rows with its events and the join back to the events prunes partitions.
    `resource_type` is '' for events without one (a primary key column cannot be NULL).
    """

    __tablename__ = "audit_resource_index"
    __table_args__ = ({"postgresql_partition_by": "RANGE (at)"},)

    resource_id: Mapped[str] = mapped_column(Text, primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(60), primary_key=True, server_default="")
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # every seq of the batch's events (in that month) that name the resource, each once
    seqs: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


class AuditIndexState(Base):
    """The resource index's watermark: every event with `seq <= indexed_seq` is indexed.

    `indexed_at` is the `at` of the event at the watermark (no later event is older). One row,
    moved only in the transaction that inserts the index rows up to it, so a reader that takes
    the watermark and then uses the index for `seq <= indexed_seq` and scans the events above
    it sees every event exactly once.
    """

    __tablename__ = "audit_index_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    indexed_seq: Mapped[int] = mapped_column(BigInteger)
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditAnchor(Base):
    """Where the live chain starts after `dossier audit archive` removed older months.

    `seq`/`hash` are those of the last archived event: the first live event must link to them.
    """

    __tablename__ = "audit_anchors"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_count: Mapped[int] = mapped_column(BigInteger)
    archive_file: Mapped[str] = mapped_column(Text)
    archive_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditDigest(Base):
    """A signed statement of the chain head: "at `signed_at` the chain ended at seq/hash".

    Signed with an Ed25519 key kept outside the database (`audit.digests` documents the signed
    bytes), so someone who can rewrite every event and the head row still cannot make an old
    digest agree with the rewritten chain. Digests chain among themselves through
    `prev_digest_hash`; the unique constraint on it makes a fork impossible.
    """

    __tablename__ = "audit_digests"
    __table_args__ = (
        UniqueConstraint("prev_digest_hash", name="uq_audit_digests_prev_digest_hash"),
        UniqueConstraint("digest_hash", name="uq_audit_digests_digest_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    head_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    prev_digest_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(88))  # base64 of the 64-byte signature
    digest_hash: Mapped[str] = mapped_column(String(64))


# every column in table order: what an append writes and an export reads, defined once
EVENT_COLUMNS: tuple[str, ...] = tuple(column.name for column in AuditEvent.__table__.columns)
