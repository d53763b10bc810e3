"""The async engine and session factory; one per process, built by the application's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


@dataclass(frozen=True, kw_only=True)
class PoolOptions:
    """Connection limits per process; with N processes the server sees N × (size + overflow)."""

    size: int = 10
    max_overflow: int = 5
    statement_timeout_ms: int = 15_000
    idle_in_transaction_timeout_ms: int = 30_000
    # PgBouncer in transaction mode cannot keep server-side prepared statements
    prepared_statement_cache_size: int = 256


def async_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` URLs as well as the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://…)")


def create_engine(
    url: str, options: PoolOptions | None = None, *, application_name: str = "dossier"
) -> AsyncEngine:
    options = options or PoolOptions()
    server_settings = {
        "statement_timeout": str(options.statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(options.idle_in_transaction_timeout_ms),
        "application_name": application_name,
    }
    return create_async_engine(
        async_url(url),
        pool_size=options.size,
        max_overflow=options.max_overflow,
        pool_pre_ping=False,
        connect_args={
            "server_settings": server_settings,
            "prepared_statement_cache_size": options.prepared_statement_cache_size,
            "statement_cache_size": options.prepared_statement_cache_size,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects returned by a mutation stay readable after commit
    return async_sessionmaker(engine, expire_on_commit=False)


def plain_url(url: str) -> str:
    """The libpq form of a URL, for asyncpg connections made outside SQLAlchemy."""
    return "postgresql://" + async_url(url).removeprefix("postgresql+asyncpg://")
