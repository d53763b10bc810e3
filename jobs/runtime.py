"""What a task needs beyond its arguments, built once per worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bulk.runtime import BulkRuntime
from db.crypto import FieldCipher

if TYPE_CHECKING:
    from jobs.settings import JobSettings


@dataclass
class JobRuntime:
    settings: JobSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cipher: FieldCipher
    bulk: BulkRuntime
    digest_key: Ed25519PrivateKey | None  # None: digests are not signed by this worker


def runtime_of(context: JobContext) -> JobRuntime:
    runtime = (context.additional_context or {}).get("runtime")
    if not isinstance(runtime, JobRuntime):
        raise RuntimeError("the worker was started without a JobRuntime")
    return runtime
