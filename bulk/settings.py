"""Limits and places of bulk exports and imports, read once from `DOSSIER_BULK_*`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bulk.objects import ObjectStoreSettings

MIB = 1024 * 1024
MAX_TTL_SECONDS = 7 * 24 * 3600  # a background export may wait for its requester a while


@dataclass(frozen=True, kw_only=True)
class BulkSettings:
    """How exports and imports behave; one instance lives on `Settings.bulk`.

    `directory` holds export files and import reports; None means `<data dir>/bulk`. A download
    URL works once and for `download_ttl_seconds` (after the file is written: an expired file
    is deleted by the periodic `jobs.expiry`); an export of more than `inline_rows` rows is
    written by a worker; an upload larger than `max_upload_bytes` is
    refused before it is parsed. Imports write `batch_size` rows per transaction; exports fetch
    `chunk_rows` rows per round trip from a server-side cursor.
    """

    directory: Path | None = None
    download_ttl_seconds: int = 300
    max_upload_bytes: int = 64 * MIB
    batch_size: int = 1000
    chunk_rows: int = 2000
    inline_wait_seconds: float = 5.0  # an import finished by then answers with its report
    inline_rows: int = 10_000  # a larger export is written by a worker (`jobs.exports`)
    object_store: ObjectStoreSettings | None = None  # S3 for downloads; None: PostgreSQL
    max_job_issues: int = 1000  # issues kept in the job row; the CSV report has them all

    def __post_init__(self) -> None:
        if self.download_ttl_seconds <= 0 or self.download_ttl_seconds > MAX_TTL_SECONDS:
            raise ValueError(
                f"DOSSIER_EXPORT_TTL_SECONDS must be between 1 and {MAX_TTL_SECONDS} seconds"
            )
        if self.inline_rows < 0:
            raise ValueError("DOSSIER_EXPORT_INLINE_ROWS must not be negative")
        if self.max_upload_bytes <= 0 or self.batch_size <= 0 or self.chunk_rows <= 0:
            raise ValueError("bulk limits must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BulkSettings:
        directory = environ.get("DOSSIER_BULK_DIR")
        return cls(
            directory=Path(directory) if directory else None,
            # DOSSIER_BULK_DOWNLOAD_TTL is the older name, still read
            download_ttl_seconds=int(
                environ.get("DOSSIER_EXPORT_TTL_SECONDS")
                or environ.get("DOSSIER_BULK_DOWNLOAD_TTL", "300")
            ),
            inline_rows=int(environ.get("DOSSIER_EXPORT_INLINE_ROWS", "10000")),
            inline_wait_seconds=float(environ.get("DOSSIER_IMPORT_INLINE_WAIT_SECONDS", "5")),
            object_store=ObjectStoreSettings.from_env(environ),
            max_upload_bytes=int(environ.get("DOSSIER_BULK_MAX_UPLOAD_MB", "64")) * MIB,
            batch_size=int(environ.get("DOSSIER_BULK_BATCH_SIZE", "1000")),
        )

    def directory_under(self, data_dir: Path) -> Path:
        return self.directory or data_dir / "bulk"
