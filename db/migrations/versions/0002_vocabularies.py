"""admin-extensible controlled vocabularies

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("vocabulary_terms_revision_seq")))
    op.create_table(
        "vocabulary_terms",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("vocabulary", sa.String(length=20), nullable=False),
        sa.Column("canonical", sa.String(length=100), nullable=False),
        sa.Column("aliases", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "revision",
            sa.BigInteger(),
            server_default=sa.text("nextval('vocabulary_terms_revision_seq')"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=300), nullable=True),
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
        sa.CheckConstraint(
            "vocabulary in ('region', 'industry', 'source', 'tag')",
            name=op.f("ck_vocabulary_terms_vocabulary"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vocabulary_terms")),
        sa.UniqueConstraint(
            "vocabulary", "canonical", name="uq_vocabulary_terms_vocabulary_canonical"
        ),
    )
    op.create_index(
        op.f("ix_vocabulary_terms_revision"), "vocabulary_terms", ["revision"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vocabulary_terms_revision"), table_name="vocabulary_terms")
    op.drop_table("vocabulary_terms")
    op.execute(sa.schema.DropSequence(sa.Sequence("vocabulary_terms_revision_seq")))
