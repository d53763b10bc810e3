from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Identity, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, Timestamped


class User(Timestamped, Base):
    """A person who logs in. Roles are held per department in the policy rules table."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(400))
    department_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # bumped on deactivation, password change or role removal: tokens carry the version
    # they were issued under, so old tokens stop working without a revocation list
    token_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
