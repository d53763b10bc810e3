"""Types of bulk exports and imports: the download of an export, an import job and its issues."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry


@strawberry.enum(description="File format of an export.")
class ExportFormat(Enum):
    CSV = "CSV"  # UTF-8 with a byte-order mark, so Excel shows Chinese text correctly
    XLSX = "XLSX"


@strawberry.enum(description="Where an export stands.")
class ExportStatus(Enum):
    RUNNING = "RUNNING"  # written by a worker; ask `export(id)` for progress
    DONE = "DONE"
    FAILED = "FAILED"


@strawberry.type(
    description="An export. `url` downloads the file once, for the caller only, until "
    "`expiresAt`; `omittedFields` were asked for but may not be exported. A large export "
    "answers RUNNING with no `url`: `export(id)` reports its `progress` and, once DONE, the url."
)
class Export:
    id: strawberry.ID
    row_count: int | None = None
    url: str | None = None
    status: ExportStatus | None = ExportStatus.DONE
    progress: float | None = strawberry.field(
        default=1.0, description="Share of the rows written, from 0 to 1."
    )
    error: str | None = None
    omitted_fields: list[str] = strawberry.field(default_factory=list)
    fields: list[str] = strawberry.field(default_factory=list)
    format: str = strawberry.field(default="CSV", description="CSV, XLSX or (audit exports) JSONL.")
    sha256: str | None = None
    expires_at: datetime | None = None


@strawberry.enum
class ImportJobStatus(Enum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@strawberry.type(description="One rejected or duplicate row of an import.")
class ImportIssue:
    row: int
    status: str  # "rejected" | "duplicate"
    message: str
    field: str | None = None
    rule: str | None = None
    duplicate_of: str | None = strawberry.field(
        default=None, description="`row N` of the file, or the id of an existing customer."
    )


@strawberry.type(description="An import and its progress; ask `importJob(id)` from any server.")
class ImportJob:
    id: strawberry.ID
    status: ImportJobStatus
    dry_run: bool
    file_name: str
    total_rows: int | None
    processed_rows: int
    accepted_rows: int
    rejected_rows: int
    duplicate_rows: int
    written_rows: int
    rows_per_second: float | None = None
    eta_seconds: float | None = None
    ignored_columns: list[str] = strawberry.field(default_factory=list)
    issues: list[ImportIssue] = strawberry.field(
        default_factory=list, description="The first issues; `importReport` has all of them."
    )
    error: str | None = None
    progress: float | None = strawberry.field(
        default=None, description="Share of the rows processed, from 0 to 1."
    )
