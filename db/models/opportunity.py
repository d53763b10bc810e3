from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, Timestamped
from db.models.custom_field import HasCustomFields

STAGES = ("LEAD", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON", "LOST")


class Opportunity(HasCustomFields, Timestamped, Base):
    """A possible sale to a customer, moving through the stages of the funnel."""

    __tablename__ = "opportunities"
    __table_args__ = (
        CheckConstraint(f"stage in {STAGES!r}", name="stage"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        Index("ix_opportunities_customer_id_id", "customer_id", "id"),
        Index("ix_opportunities_stage", "stage"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(300))
    stage: Mapped[str] = mapped_column(String(20), server_default="LEAD")
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class OpportunityStageChange(Base):
    """One move of an opportunity between stages: conversion and cycle times are read here."""

    __tablename__ = "opportunity_stage_changes"
    __table_args__ = (Index("ix_opportunity_stage_changes_opp_at", "opportunity_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("opportunities.id", ondelete="CASCADE")
    )
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str | None] = mapped_column(String(200))
