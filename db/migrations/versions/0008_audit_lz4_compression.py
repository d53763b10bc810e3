"""audit arrays compressed with lz4 instead of pglz

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 15:00:00

A read event's `resource_ids` (hundreds of ids) is TOASTed and compressed inside the append,
while the append holds the chain head. With lz4 instead of pglz, PostgreSQL's backend spent
0.103 ms instead of 0.137 ms of CPU per nested read (4 events, 550 ids, 8 reads per
transaction as group commit makes them; 0.30 instead of 0.34 ms at one read per
transaction; bench/audit_bench.py --cpu-only, means of 3 runs), for ~10 % more bytes (5,700
instead of 5,240 per read). A partitioned table's SET COMPRESSION applies to partitions
created after it (`audit_ensure_partition` creates them with PARTITION OF, which copies the
parent's method) but not to existing ones, so every partition is altered too. Values already
stored keep pglz and read as before. A server built without lz4 keeps pglz: the upgrade then
changes nothing rather than failing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = {"audit_events": ("resource_ids", "fields")}


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    for table, columns in COLUMNS.items():
        # the parent first (the template of partitions to come), then every existing partition
        partitions = bind.execute(
            sa.text("SELECT relid::regclass::text FROM pg_partition_tree(:table) ORDER BY level"),
            {"table": table},
        ).scalars()
        for partition in list(partitions):
            alters = ", ".join(
                f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in columns
            )
            op.execute(f"ALTER TABLE {partition} {alters}")


def upgrade() -> None:
    lz4 = op.get_bind().scalar(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    )
    if lz4:
        _set_compression("lz4")


def downgrade() -> None:
    _set_compression("default")
