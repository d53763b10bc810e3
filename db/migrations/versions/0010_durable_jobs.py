"""durable jobs: procrastinate's queue, export jobs, files in the database, resumable imports

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 01:40:00

`0010_procrastinate_schema.sql` is procrastinate 3.10's `schema.sql`, copied: a migration must
not change when the library does. A later procrastinate release that changes its schema ships
the change in `procrastinate/sql/migrations/`; apply it in a new revision of ours.

`stored_file_chunks` holds files that every server process must be able to serve (export
downloads, import uploads and reports) as 1 MiB bytea rows, when no S3 store is configured.
`export_jobs` is an export too large to answer in its request: the request, its progress and,
once done, the encrypted one-time token of its download. `import_job_issues` keeps every
rejected or duplicate row of an import as it commits, so an import resumed by another worker
reports exactly what one uninterrupted run would.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.util import await_only

revision = "0010"
down_revision = "0011"  # after the sales workflow (merge order)
branch_labels = None
depends_on = None

PROCRASTINATE_SCHEMA = Path(__file__).with_name("0010_procrastinate_schema.sql")


def _run_script(sql: str) -> None:
    """Several statements with dollar-quoted bodies: asyncpg's simple protocol runs them."""
    raw = op.get_bind().connection.driver_connection
    assert raw is not None  # an open asyncpg connection under alembic's sync facade
    await_only(raw.execute(sql))


def upgrade() -> None:
    _run_script(PROCRASTINATE_SCHEMA.read_text(encoding="utf-8"))
    op.create_table(
        "stored_file_chunks",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", "seq", name=op.f("pk_stored_file_chunks")),
    )
    # bytea chunks are already compressed spreadsheets or small: no TOAST compression pass
    op.execute("ALTER TABLE stored_file_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    op.add_column(
        "export_files",
        sa.Column("storage", sa.String(length=10), server_default="file", nullable=False),
    )
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal", sa.String(length=300), nullable=False),
        sa.Column("resource", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="RUNNING", nullable=False),
        sa.Column("total_rows", sa.BigInteger(), nullable=True),
        sa.Column("written_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=True),
        sa.Column("token_enc", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
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
            "status in ('RUNNING','DONE','FAILED')", name=op.f("ck_export_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_jobs")),
    )
    op.create_index(op.f("ix_export_jobs_principal"), "export_jobs", ["principal"], unique=False)
    op.add_column("import_jobs", sa.Column("upload_key", sa.String(length=200), nullable=True))
    op.add_column(
        "import_jobs", sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_table(
        "import_job_issues",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("issue", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_jobs.id"],
            ondelete="CASCADE",
            name=op.f("fk_import_job_issues_job_id_import_jobs"),
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_job_issues")),
    )
    op.create_index(
        op.f("ix_import_job_issues_job_id"), "import_job_issues", ["job_id", "row"], unique=False
    )


def downgrade() -> None:
    op.drop_table("import_job_issues")
    op.drop_column("import_jobs", "request")
    op.drop_column("import_jobs", "upload_key")
    op.drop_index(op.f("ix_export_jobs_principal"), table_name="export_jobs")
    op.drop_table("export_jobs")
    op.drop_column("export_files", "storage")
    op.drop_table("stored_file_chunks")
    for table in ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs",
                  "procrastinate_workers"):  # fmt: skip
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute(
        "DO $$ DECLARE f record; BEGIN FOR f IN SELECT oid::regprocedure AS sig FROM pg_proc "
        "WHERE proname LIKE 'procrastinate%' LOOP EXECUTE 'DROP FUNCTION ' || f.sig || "
        "' CASCADE'; END LOOP; END $$"
    )
    for type_name in ("procrastinate_job_to_defer_v1", "procrastinate_job_event_type",
                      "procrastinate_job_status"):  # fmt: skip
        op.execute(f"DROP TYPE IF EXISTS {type_name} CASCADE")
