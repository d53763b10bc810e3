from __future__ import annotations

from sqlalchemy import BigInteger, Identity, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class PolicyRule(Base):
    """One Casbin line: a `p` rule or a `g` role assignment, in Casbin's own column layout.

    Unlike the published adapters' table this one is unique per line, so a rule cannot be
    stored twice and removal of one rule can never match another.
    """

    __tablename__ = "policy_rules"
    __table_args__ = (
        UniqueConstraint("ptype", "v0", "v1", "v2", "v3", "v4", "v5", name="uq_policy_rules_line"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ptype: Mapped[str] = mapped_column(String(10))
    v0: Mapped[str] = mapped_column(String(300), server_default="")
    v1: Mapped[str] = mapped_column(String(300), server_default="")
    v2: Mapped[str] = mapped_column(String(300), server_default="")
    v3: Mapped[str] = mapped_column(String(300), server_default="")
    v4: Mapped[str] = mapped_column(String(300), server_default="")
    v5: Mapped[str] = mapped_column(String(300), server_default="")
