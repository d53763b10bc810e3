from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class Consent(Base):
    """One grant of consent by a customer for a purpose (个人信息保护法 art. 13–14).

    A grant is never edited: withdrawing stamps `withdrawn_at`, and a new grant is a new row, so
    the history of a person's consents stays readable. At most one grant per customer and
    purpose is active (not withdrawn) at a time.
    """

    __tablename__ = "consents"
    __table_args__ = (
        Index(
            "uq_consents_active",
            "customer_id",
            "purpose",
            unique=True,
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(60))
    granted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evidence: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(300))
