from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base

CUSTOM_FIELD_RESOURCES = ("customer", "contact", "opportunity", "ticket")
CUSTOM_FIELD_TYPES = ("TEXT", "NUMBER", "DATE", "BOOLEAN", "CHOICE", "MULTI_CHOICE")


class CustomFieldDefinition(Base):
    """A field an administrator added to a record type; values live in `custom_fields` JSONB.

    A retired definition stays (its values stay readable to nobody and writable by nobody),
    so that defining the key again restores what was there rather than colliding with it.
    """

    __tablename__ = "custom_field_definitions"
    __table_args__ = (
        CheckConstraint(f"resource in {CUSTOM_FIELD_RESOURCES!r}", name="resource"),
        CheckConstraint(f"type in {CUSTOM_FIELD_TYPES!r}", name="type"),
        UniqueConstraint("resource", "key", name="uq_custom_field_definitions_resource_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    resource: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    required: Mapped[bool] = mapped_column(Boolean, server_default=false())
    sensitive: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_unique: Mapped[bool] = mapped_column(Boolean, server_default=false())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SensitiveField(Base):
    """A field hidden until a rule names it and masked in the trail (`resource`, API name)."""

    __tablename__ = "sensitive_fields"

    resource: Mapped[str] = mapped_column(String(20), primary_key=True)
    field: Mapped[str] = mapped_column(String(60), primary_key=True)


class HasCustomFields:
    """The `custom_fields` JSONB column of a record type (GIN-indexed by migration 0013).

    Values are keyed by definition key; a sensitive value is stored encrypted (`db.crypto`,
    labelled `<resource>.cf.<key>`), an unset one is absent (never JSON null).
    """

    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"), default=dict, nullable=False
    )
