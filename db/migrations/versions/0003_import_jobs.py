"""bulk import jobs, their progress and outcome

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal", sa.String(length=300), nullable=False),
        sa.Column("resource", sa.String(length=40), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="RUNNING", nullable=False),
        sa.Column("total_rows", sa.BigInteger(), nullable=True),
        sa.Column("processed_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("accepted_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rejected_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("duplicate_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("written_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "issues", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column(
            "ignored_columns",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("report_path", sa.String(length=1000), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('RUNNING','DONE','FAILED')", name=op.f("ck_import_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index(op.f("ix_import_jobs_principal"), "import_jobs", ["principal"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_import_jobs_principal"), table_name="import_jobs")
    op.drop_table("import_jobs")
