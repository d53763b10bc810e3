"""audit_events (at, seq): time-range pages of auditEvents start where the range ends (issue 22)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 04:30:00

A partitioned index: every month partition gets its own, and partitions made later
(`audit_ensure_partition`) inherit it. Only an index: the append-only rights of
`db/app_role_grants.sql` are untouched.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_at_seq", "audit_events", ["at", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_at_seq", table_name="audit_events")
