"""indexes for the insight queries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00

Partial indexes keep to the few rows the insights look for: moves to WON (churn, RFM recency,
leaderboard), unresolved urgent tickets (attention); plain ones serve the period bounds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_opportunity_stage_changes_won_at",
        "opportunity_stage_changes",
        ["at", "opportunity_id"],
        postgresql_where=sa.text("to_stage = 'WON'"),
    )
    op.create_index(
        "ix_tickets_open_urgent_customer_id",
        "tickets",
        ["customer_id"],
        postgresql_where=sa.text("priority = 'URGENT' AND status IN ('OPEN', 'IN_PROGRESS')"),
    )
    op.create_index("ix_interactions_occurred_at", "interactions", ["occurred_at"])
    op.create_index("ix_customers_created_at", "customers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_customers_created_at", table_name="customers")
    op.drop_index("ix_interactions_occurred_at", table_name="interactions")
    op.drop_index("ix_tickets_open_urgent_customer_id", table_name="tickets")
    op.drop_index("ix_opportunity_stage_changes_won_at", table_name="opportunity_stage_changes")
