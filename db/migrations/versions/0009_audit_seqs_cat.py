"""an aggregate that concatenates arrays of audit seqs, for the resource indexer

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 17:30:00

The indexer (`audit.indexer`) now groups a batch's events by the exact ids they name first —
the same view read again names the same ids — and unnests each distinct list once; an id
named by several such lists gets their seqs joined with `audit_seqs_cat`. PostgreSQL has no
built-in aggregate that concatenates one-dimensional arrays of different lengths (`array_agg`
of arrays wants equal lengths).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE AGGREGATE audit_seqs_cat(bigint[]) "
        "(SFUNC = array_cat, STYPE = bigint[], INITCOND = '{}')"
    )


def downgrade() -> None:
    op.execute("DROP AGGREGATE audit_seqs_cat(bigint[])")
