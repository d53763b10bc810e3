"""Long-lived parts of a running server, built once by the lifespan and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import Settings


@dataclass(kw_only=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # filled by the parts that own them (policy store, audit writer, graphql schema, …)
    extras: dict[str, Any] = field(default_factory=dict)
