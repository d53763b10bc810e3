from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base

CHANNELS = ("CALL", "VISIT", "EMAIL", "WECHAT", "MEETING")


class Interaction(Base):
    """A follow-up (跟进记录) with a customer; drives `last_interaction_at` and alerts."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(f"channel in {CHANNELS!r}", name="channel"),
        Index("ix_interactions_customer_id_at", "customer_id", "occurred_at"),
        Index("ix_interactions_next_follow_up_on", "next_follow_up_on"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    author_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT")
    )
    next_follow_up_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
