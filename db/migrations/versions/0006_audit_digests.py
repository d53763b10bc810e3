"""signed digests of the audit chain head

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:00:00

`dossier audit digest` signs (Ed25519, key outside the database) the chain head's seq, hash and
time together with the previous digest's hash; `dossier audit verify --public-key` checks every
signature and that each digested head is still in the chain with the same hash. Digests are
append-only like the events (same trigger function), and `prev_digest_hash` is unique so two
signers cannot fork the digest chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_digests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("head_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prev_digest_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("digest_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_digests")),
        sa.UniqueConstraint("prev_digest_hash", name="uq_audit_digests_prev_digest_hash"),
        sa.UniqueConstraint("digest_hash", name="uq_audit_digests_digest_hash"),
    )
    # audit_events_refuse_change() comes from 0001: digests are as append-only as the events
    op.execute(
        "CREATE TRIGGER audit_digests_append_only BEFORE UPDATE OR DELETE ON audit_digests "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_digests_no_truncate BEFORE TRUNCATE ON audit_digests "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()"
    )


def downgrade() -> None:
    op.drop_table("audit_digests")  # its triggers go with it
