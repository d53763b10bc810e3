"""Contracts signed with a customer (合同) and the payments due under them (回款)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, Timestamped

CONTRACT_STATUSES = ("DRAFT", "ACTIVE", "EXPIRED", "TERMINATED")
PAYMENT_STATUSES = ("PLANNED", "PAID", "OVERDUE")


class Contract(Timestamped, Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint(f"status in {CONTRACT_STATUSES!r}", name="status"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("ends_on >= starts_on", name="period"),
        Index("ix_contracts_customer_id_id", "customer_id", "id"),
        Index("ix_contracts_ends_on", "ends_on"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(300))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), server_default="ACTIVE")
    owner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )


class Payment(Timestamped, Base):
    """`customer_id` repeats the contract's so the row scope (the customer's) is one join."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status in {PAYMENT_STATUSES!r}", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payments_contract_id_id", "contract_id", "id"),
        Index("ix_payments_customer_id_id", "customer_id", "id"),
        Index("ix_payments_due_on_unpaid", "due_on", postgresql_where="paid_on IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contracts.id", ondelete="CASCADE")
    )
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    due_on: Mapped[date] = mapped_column(Date)
    paid_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), server_default="PLANNED")
