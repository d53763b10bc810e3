"""custom fields on customers, contacts, opportunities and tickets; sensitive fields as data

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-04 01:30:00

Each of the four record tables gains `custom_fields JSONB NOT NULL DEFAULT '{}'` with a GIN
index (`jsonb_path_ops`: containment `@>` is what `customField: {eq, in}` filters compile to).
Definitions live in `custom_field_definitions`; which fields are sensitive (hidden until a rule
names them, masked in the trail) is the `sensitive_fields` table, seeded with the built-in set
that used to be a constant in `policy/vocabulary.py`, so behaviour is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = ("customers", "contacts", "opportunities", "tickets")
BUILT_IN_SENSITIVE = (
    ("customer", "phone"),
    ("customer", "email"),
    ("customer", "idNumber"),
    ("customer", "totalSpend"),
    ("customer", "creditCode"),
    ("contact", "phone"),
    ("contact", "email"),
)


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column(
                "custom_fields", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
            ),
        )
        op.create_index(
            f"ix_{table}_custom_fields",
            table,
            ["custom_fields"],
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
        )
    op.create_table(
        "custom_field_definitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("options", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("required", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sensitive", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_unique", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=300), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),  # fmt: skip
        sa.CheckConstraint(
            "resource in ('customer', 'contact', 'opportunity', 'ticket')",
            name=op.f("ck_custom_field_definitions_resource"),
        ),
        sa.CheckConstraint(
            "type in ('TEXT', 'NUMBER', 'DATE', 'BOOLEAN', 'CHOICE', 'MULTI_CHOICE')",
            name=op.f("ck_custom_field_definitions_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_field_definitions")),
        sa.UniqueConstraint("resource", "key", name="uq_custom_field_definitions_resource_key"),
    )
    sensitive = op.create_table(
        "sensitive_fields",
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("resource", "field", name=op.f("pk_sensitive_fields")),
    )
    op.bulk_insert(sensitive, [{"resource": r, "field": f} for r, f in BUILT_IN_SENSITIVE])


def downgrade() -> None:
    op.drop_table("sensitive_fields")
    op.drop_table("custom_field_definitions")
    for table in TABLES:
        op.drop_index(f"ix_{table}_custom_fields", table_name=table)
        op.drop_column(table, "custom_fields")
