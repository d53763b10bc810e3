"""events out: the transactional outbox, webhooks and their deliveries

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-04 01:30:00

`outbox_events` gets one row per changed record in the transaction of the change (`events.outbox`);
the same statement fans it out to `webhook_deliveries` for every active webhook subscribed to its
event, so a delivery exists exactly when its change committed. Delivery workers claim deliveries
with `FOR UPDATE SKIP LOCKED` (`events.delivery`).
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE outbox_events (
            id bigserial PRIMARY KEY,
            event text NOT NULL,
            resource_type text NOT NULL,
            resource_id text NOT NULL,
            changed_fields text[] NOT NULL DEFAULT '{}',
            actor text,
            at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE webhooks (
            id bigserial PRIMARY KEY,
            url text NOT NULL,
            events text[] NOT NULL,
            role text,
            department_id bigint REFERENCES departments(id),
            partner_token_id uuid REFERENCES partner_tokens(id),
            secret_enc text NOT NULL,
            active boolean NOT NULL DEFAULT true,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz,
            CHECK ((role IS NULL) <> (partner_token_id IS NULL))
        )
        """
    )
    op.execute(
        """
        CREATE TABLE webhook_deliveries (
            id bigserial PRIMARY KEY,
            webhook_id bigint NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            outbox_id bigint NOT NULL REFERENCES outbox_events(id) ON DELETE CASCADE,
            event text NOT NULL,
            status text NOT NULL DEFAULT 'PENDING',
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text,
            response_status integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            UNIQUE (webhook_id, outbox_id)
        )
        """
    )
    # the claim scans only what is still to send, per endpoint in order
    op.execute(
        "CREATE INDEX webhook_deliveries_open ON webhook_deliveries (webhook_id, id) "
        "WHERE status IN ('PENDING', 'RETRYING')"
    )
    op.execute("CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id)")


def downgrade() -> None:
    op.execute("DROP TABLE webhook_deliveries")
    op.execute("DROP TABLE webhooks")
    op.execute("DROP TABLE outbox_events")
