"""Streamed spreadsheet writers and the one-time tokens that download what they wrote.

Both writers take rows in chunks and keep nothing of them: the CSV writer writes through a
buffered file, openpyxl's write-only workbook streams each row into its sheet XML as inline
strings (no shared-string table growing with the file), so memory stays flat however many
rows an export has.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from openpyxl import Workbook  # type: ignore[import-untyped]  # openpyxl ships no hints

from resolvers.bulk.cells import csv_cell, xlsx_cell

HASH_CHUNK = 1024 * 1024


class ExportFormat(StrEnum):
    CSV = "CSV"
    XLSX = "XLSX"

    @property
    def content_type(self) -> str:
        if self is ExportFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    @property
    def suffix(self) -> str:
        return ".csv" if self is ExportFormat.CSV else ".xlsx"


class TableWriter(Protocol):
    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    """UTF-8 with a byte-order mark: without it Excel reads Chinese text as mojibake."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._file = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow([csv_cell(name) for name in header])

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows([csv_cell(value) for value in row] for row in rows)

    def close(self) -> None:
        self._file.close()


class XlsxWriter:
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._path = path
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("export")
        self._sheet.append([xlsx_cell(name) for name in header])

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self._sheet.append([xlsx_cell(value) for value in row])

    def close(self) -> None:
        self._book.save(self._path)


def open_writer(format: ExportFormat, path: Path, header: Sequence[str]) -> TableWriter:
    if format is ExportFormat.CSV:
        return CsvWriter(path, header)
    return XlsxWriter(path, header)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def new_download_token() -> tuple[str, bytes]:
    """A URL-safe secret and the digest stored in its place: the table never holds the secret."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
