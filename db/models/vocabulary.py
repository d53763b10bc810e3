from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base

VOCABULARIES = ("region", "industry", "source", "tag")

# every insert or alias change draws a new number, so `max(revision)` tells a process whether
# its cached vocabularies are current with one index look-up instead of reloading every term
REVISION = Sequence("vocabulary_terms_revision_seq", metadata=Base.metadata)


class VocabularyTerm(Base):
    """A term an administrator added to a controlled vocabulary (region, industry, source, tag).

    The built-in terms live in code (validation/vocabularies.json); a row here either adds a new
    canonical value or adds aliases to an existing one (same `canonical`).
    """

    __tablename__ = "vocabulary_terms"
    __table_args__ = (
        CheckConstraint(f"vocabulary in {VOCABULARIES!r}", name="vocabulary"),
        UniqueConstraint(
            "vocabulary", "canonical", name="uq_vocabulary_terms_vocabulary_canonical"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    vocabulary: Mapped[str] = mapped_column(String(20))
    canonical: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    revision: Mapped[int] = mapped_column(
        BigInteger, REVISION, server_default=REVISION.next_value(), index=True
    )
    created_by: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
