"""What bulk work needs beyond one request: where files go, sessions of its own, its tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulk.objects import ObjectStore
from bulk.settings import BulkSettings
from db.crypto import FieldCipher


@dataclass
class BulkRuntime:
    """One per process, built by the app; an import outlives its request and uses this."""

    settings: BulkSettings
    directory: Path
    sessions: async_sessionmaker[AsyncSession]
    cipher: FieldCipher
    # running imports: asyncio keeps only weak references to tasks
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    objects: ObjectStore | None = field(default=None, init=False)  # S3, when configured

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.settings.object_store is not None:
            self.objects = ObjectStore(self.settings.object_store)

    def new_path(self, name: str) -> Path:
        return self.directory / name

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for running imports (shutdown, tests)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
