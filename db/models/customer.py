from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, Timestamped
from db.models.custom_field import HasCustomFields


class Customer(HasCustomFields, Timestamped, Base):
    """A company or person we sell to; the root of the 360° view and of every row scope.

    `phone`, `email`, `id_number` and `address` are stored encrypted (`*_enc`, see db.crypto)
    under the customer's data key, beside a keyed blind index (`*_bidx`) that allows
    exact-match search and duplicate detection without clear text.
    """

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("kind in ('COMPANY','PERSON')", name="kind"),
        CheckConstraint("level in ('A','B','C')", name="level"),
        CheckConstraint("total_spend >= 0", name="total_spend_non_negative"),
        # the default list order and keyset pagination walk (id) within visible rows
        Index("ix_customers_department_id_id", "department_id", "id"),
        Index("ix_customers_owner_id_id", "owner_id", "id"),
        Index("ix_customers_name_prefix", "name", postgresql_ops={"name": "text_pattern_ops"}),
        Index("ix_customers_updated_at", "updated_at"),
        Index("ix_customers_phone_bidx", "phone_bidx"),
        Index("ix_customers_id_number_bidx", "id_number_bidx"),
        Index("ix_customers_credit_code", "credit_code"),
        Index("ix_customers_email_lower", text("lower(email)")),
        Index("ix_customers_email_bidx", "email_bidx"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(10), server_default="COMPANY")
    industry: Mapped[str | None] = mapped_column(String(100), index=True)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    level: Mapped[str] = mapped_column(String(1), server_default="C", index=True)
    source: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    credit_code: Mapped[str | None] = mapped_column(String(18))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    email: Mapped[str | None] = mapped_column(String(320))
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_number_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    address: Mapped[str | None] = mapped_column(Text)
    # e-mail and address encrypted like the phone; the clear columns above only hold values
    # written before migration 0015, until `dossier keys rotate` seals them
    email_enc: Mapped[str | None] = mapped_column(Text)
    email_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[str | None] = mapped_column(Text)
    address_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    # the record's data key, wrapped under a field key (db.crypto): personal values are sealed
    # with it; erasure sets it NULL, which shreds every copy of them
    data_key: Mapped[str | None] = mapped_column(Text)
    total_spend: Mapped[Decimal] = mapped_column(Numeric(14, 2), server_default="0")
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"))
    department_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("departments.id", ondelete="RESTRICT")
    )
    last_interaction_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    merged_into_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL")
    )
    # set by `eraseCustomer`: personal fields are gone, the row stays for the records' keys
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # optimistic concurrency: a write names the version it read
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
