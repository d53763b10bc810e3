from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, Timestamped
from db.models.custom_field import HasCustomFields


class Contact(HasCustomFields, Timestamped, Base):
    """A person at a customer. `phone` and `email` are encrypted at rest like the customer's."""

    __tablename__ = "contacts"
    __table_args__ = (
        # nested `customer.contacts` pages are read per customer in id order
        Index("ix_contacts_customer_id_id", "customer_id", "id"),
        Index("ix_contacts_phone_bidx", "phone_bidx"),
        Index("ix_contacts_email_bidx", "email_bidx"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    email: Mapped[str | None] = mapped_column(String(320))  # values from before 0015 only
    email_enc: Mapped[str | None] = mapped_column(Text)
    email_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    # the record's data key, wrapped under a field key (db.crypto): personal values are sealed
    # with it; erasure sets it NULL, which shreds every copy of them
    data_key: Mapped[str | None] = mapped_column(Text)
    is_decision_maker: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
