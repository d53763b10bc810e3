"""tasks, contracts and payments: the sales workflow (issue 18)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 01:45:00

A reminder task names its source record (`source_id`, an interaction, contract or payment by
`kind`); the partial unique index on (kind, source_id) is what makes the scheduler idempotent:
it inserts with ON CONFLICT DO NOTHING, so a rerun or a second process adds nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0013"  # after custom fields: it seeds their sensitive set
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    ]  # fmt: skip


FINANCE_FIELDS = (("contract", "amount"), ("payment", "amount"))


def upgrade() -> None:
    # finance fields, denied until a rule names them: sensitivity is policy data (0013)
    sensitive = sa.table("sensitive_fields", sa.column("resource"), sa.column("field"))
    op.bulk_insert(sensitive, [{"resource": r, "field": f} for r, f in FINANCE_FIELDS])
    op.create_table(
        "contracts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(12), server_default="ACTIVE", nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "status in ('DRAFT', 'ACTIVE', 'EXPIRED', 'TERMINATED')",
            name=op.f("ck_contracts_status"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_contracts_amount_non_negative")),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_contracts_period")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE",
                                name=op.f("fk_contracts_customer_id_customers")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_contracts_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
    )  # fmt: skip
    op.create_index("ix_contracts_customer_id_id", "contracts", ["customer_id", "id"])
    op.create_index("ix_contracts_ends_on", "contracts", ["ends_on"])
    op.create_index(op.f("ix_contracts_owner_id"), "contracts", ["owner_id"])

    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("contract_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(10), server_default="PLANNED", nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status in ('PLANNED', 'PAID', 'OVERDUE')",
                           name=op.f("ck_payments_status")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(["contract_id"], ["contracts.id"], ondelete="CASCADE",
                                name=op.f("fk_payments_contract_id_contracts")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE",
                                name=op.f("fk_payments_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )  # fmt: skip
    op.create_index("ix_payments_contract_id_id", "payments", ["contract_id", "id"])
    op.create_index("ix_payments_customer_id_id", "payments", ["customer_id", "id"])
    op.create_index(
        "ix_payments_due_on_unpaid", "payments", ["due_on"], postgresql_where="paid_on IS NULL"
    )

    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), server_default="CUSTOM", nullable=False),
        sa.Column("status", sa.String(12), server_default="OPEN", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "kind in ('FOLLOW_UP', 'CONTRACT_RENEWAL', 'PAYMENT_DUE', 'CUSTOM')",
            name=op.f("ck_tasks_kind"),
        ),
        sa.CheckConstraint("status in ('OPEN', 'DONE', 'CANCELLED')",
                           name=op.f("ck_tasks_status")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_tasks_assignee_id_users")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE",
                                name=op.f("fk_tasks_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )  # fmt: skip
    op.create_index("ix_tasks_customer_id_id", "tasks", ["customer_id", "id"])
    op.create_index("ix_tasks_assignee_id_status", "tasks", ["assignee_id", "status"])
    op.create_index(
        "ux_tasks_reminder_source",
        "tasks",
        ["kind", "source_id"],
        unique=True,
        postgresql_where="source_id IS NOT NULL",
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM sensitive_fields WHERE (resource, field) IN"
        " (('contract', 'amount'), ('payment', 'amount'))"
    )
    op.drop_table("tasks")
    op.drop_table("payments")
    op.drop_table("contracts")
