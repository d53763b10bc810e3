"""Files every server process can serve: export downloads, import uploads and reports.

A file written on one host must be downloadable from any other, so files live in PostgreSQL
(`stored_file_chunks`, 1 MiB bytea rows under a key) unless an S3-compatible store is
configured. Storing happens in the caller's transaction: a download registered with its audit
event has its bytes committed with it, and a rolled-back export leaves nothing behind.

Rows written before this store existed name a local path (`storage = 'file'`); they are still
served from that host's disk until they expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from pathlib import Path

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulk.objects import ObjectStore
from db.models import StoredFileChunk

CHUNK_BYTES = 1024 * 1024


class Storage(StrEnum):
    FILE = "file"  # a path on the disk of the host that wrote it (before 0010)
    DATABASE = "pg"
    OBJECTS = "s3"  # an S3-compatible store (`bulk.objects`)


class ObjectStoreMissingError(RuntimeError):
    """A file is in the object store, but this process was started without one."""


def _needs(objects: ObjectStore | None) -> ObjectStore:
    if objects is None:
        raise ObjectStoreMissingError("a file is in S3 but DOSSIER_EXPORT_S3_BUCKET is not set")
    return objects


async def store_file(session: AsyncSession, key: str, path: Path) -> int:
    """Copy a local file into the database under `key`, in the caller's transaction."""
    await session.execute(delete(StoredFileChunk).where(StoredFileChunk.key == key))
    size = 0
    seq = 0
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            await session.execute(insert(StoredFileChunk).values(key=key, seq=seq, data=chunk))
            size += len(chunk)
            seq += 1
    if seq == 0:  # an empty file still exists
        await session.execute(insert(StoredFileChunk).values(key=key, seq=0, data=b""))
    return size


async def fetch_file(session: AsyncSession, key: str, path: Path) -> bool:
    """Write the stored file to a local path (a worker reading an upload); False if absent."""
    result = await session.stream(
        select(StoredFileChunk.data)
        .where(StoredFileChunk.key == key)
        .order_by(StoredFileChunk.seq)
        .execution_options(yield_per=4)
    )
    found = False
    with path.open("wb") as file:
        async for data in result.scalars():
            found = True
            await asyncio.to_thread(file.write, data)
    return found


async def copy_file(session: AsyncSession, source: str, target: str) -> bool:
    """Store the file `source` again as `target`, inside the database; False if absent."""
    copied = await session.execute(
        text(
            "INSERT INTO stored_file_chunks (key, seq, data) "
            "SELECT :target, seq, data FROM stored_file_chunks WHERE key = :source"
        ),
        {"source": source, "target": target},
    )
    return bool(copied.rowcount)  # type: ignore[attr-defined]  # CursorResult at run time


async def file_exists(
    session: AsyncSession, storage: Storage, key: str, objects: ObjectStore | None = None
) -> bool:
    if storage is Storage.OBJECTS:
        return await _needs(objects).exists(key)
    if storage is Storage.FILE:
        return await asyncio.to_thread(Path(key).is_file)
    found = await session.scalar(
        select(StoredFileChunk.seq).where(StoredFileChunk.key == key, StoredFileChunk.seq == 0)
    )
    return found is not None


async def stream_file(
    sessions: async_sessionmaker[AsyncSession],
    storage: Storage,
    key: str,
    objects: ObjectStore | None = None,
) -> AsyncIterator[bytes]:
    """The file's bytes, one chunk per short transaction: no connection held while a slow
    client reads."""
    if storage is Storage.OBJECTS:
        async for chunk in _needs(objects).chunks(key):
            yield chunk
        return
    if storage is Storage.FILE:
        file = await asyncio.to_thread(Path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(file.read, 256 * 1024):
                yield chunk
        finally:
            file.close()
        return
    seq = 0
    while True:
        async with sessions() as session:
            data = await session.scalar(
                select(StoredFileChunk.data).where(
                    StoredFileChunk.key == key, StoredFileChunk.seq == seq
                )
            )
        if data is None:
            return
        if data:
            yield data
        seq += 1


async def delete_files(
    session: AsyncSession,
    files: Sequence[tuple[Storage, str]],
    objects: ObjectStore | None = None,
) -> None:
    """Forget stored files, in the caller's transaction; local and S3 ones are deleted."""
    in_objects = [key for storage, key in files if storage is Storage.OBJECTS]
    if in_objects:
        await _needs(objects).delete(in_objects)
    keys = [key for storage, key in files if storage is Storage.DATABASE]
    if keys:
        await session.execute(delete(StoredFileChunk).where(StoredFileChunk.key.in_(keys)))
    local = [Path(key) for storage, key in files if storage is Storage.FILE]
    if local:
        await asyncio.to_thread(_unlink_all, local)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
