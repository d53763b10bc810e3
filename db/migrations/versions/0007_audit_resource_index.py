"""audit resource-id lookups through a background-filled index table, not a GIN index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:00:00

The GIN index on `audit_events.resource_ids` was maintained by every append while it held the
chain head: ~2.7 ms of a 550-id read event's insert (pgbench), serialising every request. It
goes; `audit_resource_index` is filled after the commit by `audit.indexer`, up to the watermark
in `audit_index_state`: one row per resource id, type and batch of events (split by month, and
partitioned by month like the events), holding the batch's seqs that name the id as an array.
Queries by resource id use the index up to the watermark and scan the few events above it, so
nothing is ever missing. The upgrade backfills the index from the existing events in batches
of 500 seqs and sets the watermark in the same statement; the downgrade puts the GIN index
back.
"""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

EVENT_PARTITION = re.compile(r"^audit_events_y(\d{4})m(\d{2})$")

ENSURE_PARTITION = r"""
-- Creates the partitions of the month containing `month` (UTC) of audit_events and of
-- audit_resource_index unless they exist. Returns the events partition's name, or NULL with a
-- warning when the default partition already holds rows of that month (those stay in the
-- default partition; appends must not fail over housekeeping).
CREATE OR REPLACE FUNCTION audit_ensure_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    name text := 'audit_events_' || to_char(first_day, '"y"YYYY"m"MM');
    index_name text := 'audit_resource_index_' || to_char(first_day, '"y"YYYY"m"MM');
    low text := first_day::text || ' 00:00:00+00';
    high text := (first_day + interval '1 month')::date::text || ' 00:00:00+00';
BEGIN
    IF to_regclass(index_name) IS NULL THEN
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF audit_resource_index FOR VALUES FROM (%L) TO (%L)',
                index_name, low, high);
        EXCEPTION
            WHEN duplicate_table OR unique_violation THEN
                NULL;  -- a concurrent creator won
            WHEN check_violation THEN
                RAISE WARNING 'audit partition % not created: default partition holds rows of it',
                    index_name;
        END;
    END IF;
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', name, low, high);
    -- row triggers are cloned onto partitions, statement-level TRUNCATE triggers are not
    EXECUTE format(
        'CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
        'FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()', name);
    RETURN name;
EXCEPTION
    WHEN duplicate_table OR unique_violation THEN
        RETURN name;  -- a concurrent creator won
    WHEN check_violation THEN
        RAISE WARNING 'audit partition % not created: default partition holds rows of it', name;
        RETURN NULL;
END
$$;
"""

# the function as 0001 made it, for the downgrade
ENSURE_PARTITION_0001 = r"""
CREATE OR REPLACE FUNCTION audit_ensure_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    name text := 'audit_events_' || to_char(first_day, '"y"YYYY"m"MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
        name, first_day::text || ' 00:00:00+00',
        (first_day + interval '1 month')::date::text || ' 00:00:00+00');
    -- row triggers are cloned onto partitions, statement-level TRUNCATE triggers are not
    EXECUTE format(
        'CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
        'FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()', name);
    RETURN name;
EXCEPTION
    WHEN duplicate_table OR unique_violation THEN
        RETURN name;  -- a concurrent creator won
    WHEN check_violation THEN
        RAISE WARNING 'audit partition % not created: default partition holds rows of it', name;
        RETURN NULL;
END
$$;
"""

# one statement, one snapshot: the watermark is the last event the backfill saw; a row per
# (id, type, 500 seqs, month), as the indexer's batches make them
BACKFILL = """
WITH events AS (
    SELECT seq, at, coalesce(resource_type, '') AS resource_type, resource_ids,
        (seq - 1) / 500 AS batch, date_trunc('month', at, 'UTC') AS month
    FROM audit_events
), indexed AS (
    INSERT INTO audit_resource_index
        (resource_id, resource_type, first_seq, at, last_seq, last_at, seqs)
    SELECT id, e.resource_type, min(e.seq), min(e.at), max(e.seq), max(e.at),
        array_agg(e.seq ORDER BY e.seq)
    FROM events e CROSS JOIN LATERAL (SELECT DISTINCT id FROM unnest(e.resource_ids) AS id) ids
    GROUP BY id, e.resource_type, e.batch, e.month
)
UPDATE audit_index_state
SET indexed_seq = coalesce((SELECT max(seq) FROM events), 0),
    indexed_at = (SELECT max(at) FROM events)
WHERE id = 1
"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE audit_resource_index ("
        " resource_id text NOT NULL,"
        " resource_type varchar(60) NOT NULL DEFAULT '',"
        " first_seq bigint NOT NULL,"
        " at timestamptz NOT NULL,"
        " last_seq bigint NOT NULL,"
        " last_at timestamptz NOT NULL,"
        " seqs bigint[] NOT NULL,"
        " CONSTRAINT pk_audit_resource_index"
        " PRIMARY KEY (resource_id, resource_type, first_seq, at)"
        ") PARTITION BY RANGE (at)"
    )
    op.execute(
        "CREATE TABLE audit_resource_index_default PARTITION OF audit_resource_index DEFAULT"
    )
    op.create_table(
        "audit_index_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("indexed_seq", sa.BigInteger(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_index_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_index_state")),
    )
    op.execute("INSERT INTO audit_index_state (id, indexed_seq) VALUES (1, 0)")
    op.execute(ENSURE_PARTITION)
    # a month partition of the index for every month partition of the events
    months = op.get_bind().execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_events'::regclass"
        )
    )
    for (name,) in list(months):
        match = EVENT_PARTITION.match(name)
        if match:
            month = dt.date(int(match[1]), int(match[2]), 1)
            op.get_bind().execute(sa.text("SELECT audit_ensure_partition(:m)"), {"m": month})
    op.execute(BACKFILL)
    op.execute("ANALYZE audit_resource_index")
    op.drop_index("ix_audit_events_resource_ids", table_name="audit_events", postgresql_using="gin")


def downgrade() -> None:
    op.create_index(
        "ix_audit_events_resource_ids",
        "audit_events",
        ["resource_ids"],
        unique=False,
        postgresql_using="gin",
        postgresql_with={"fastupdate": "off"},
    )
    op.execute(ENSURE_PARTITION_0001)
    op.drop_table("audit_index_state")
    op.execute("DROP TABLE audit_resource_index")  # its partitions go with it
