"""A to-do of a user (待办), typed in by hand or created by a reminder."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, String
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, Timestamped

KINDS = ("FOLLOW_UP", "CONTRACT_RENEWAL", "PAYMENT_DUE", "CUSTOM")
STATUSES = ("OPEN", "DONE", "CANCELLED")


class Task(Timestamped, Base):
    """`source_id` names the record a reminder task stands for (an interaction, a contract, a
    payment, by `kind`); the partial unique index on (kind, source_id) makes a reminder exist
    at most once however many schedulers race to create it."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(f"kind in {KINDS!r}", name="kind"),
        CheckConstraint(f"status in {STATUSES!r}", name="status"),
        Index("ix_tasks_customer_id_id", "customer_id", "id"),
        Index("ix_tasks_assignee_id_status", "assignee_id", "status"),
        Index(
            "ux_tasks_reminder_source",
            "kind",
            "source_id",
            unique=True,
            postgresql_where=sql_text("source_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20), server_default="CUSTOM")
    status: Mapped[str] = mapped_column(String(12), server_default="OPEN")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT")
    )
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
