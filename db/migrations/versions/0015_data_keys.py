"""per-customer data keys for envelope encryption; e-mail and address encrypted (issue 23)

`customers.data_key` holds the customer's wrapped data key, `contacts.data_key` a copy of its
customer's (so a contact moved by a merge keeps reading). Values written before stay in the
field-key form and stay readable. E-mail and address gain encrypted columns and blind indexes;
the clear `email`/`address` columns stay for values written before, are read as a fallback,
and are emptied by `dossier keys rotate`, which seals them (keys never reach a migration).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("data_key", sa.Text(), nullable=True))
    op.add_column("contacts", sa.Column("data_key", sa.Text(), nullable=True))
    for table in ("customers", "contacts"):
        op.add_column(table, sa.Column("email_enc", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("email_bidx", sa.LargeBinary(), nullable=True))
        op.create_index(f"ix_{table}_email_bidx", table, ["email_bidx"])
    op.add_column("customers", sa.Column("address_enc", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("address_bidx", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "address_bidx")
    op.drop_column("customers", "address_enc")
    for table in ("contacts", "customers"):
        op.drop_index(f"ix_{table}_email_bidx", table_name=table)
        op.drop_column(table, "email_bidx")
        op.drop_column(table, "email_enc")
    op.drop_column("contacts", "data_key")
    op.drop_column("customers", "data_key")
