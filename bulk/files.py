"""Streamed spreadsheet writers and the one-time tokens that download what they wrote.

Both writers take rows in chunks and keep nothing of them: the CSV writer writes through a
buffered file, XlsxWriter in `constant_memory` mode writes each row into its sheet XML (a
temporary file) as soon as the next one starts, with inline strings (no shared-string table
growing with the file), so memory stays flat however many rows an export has.

XlsxWriter, not openpyxl's write-only workbook: openpyxl builds an element tree per cell
before serialising it, which made a 100 000-customer XLSX export take 60 s of its 70 s of
CPU; XlsxWriter (maintained, made for writing large files) formats the cell XML directly, in
about a third of that (`bench/export_bench.py`). It also writes the sheet's dimension, which
readers such as openpyxl's read-only mode rely on.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import xlsxwriter  # type: ignore[import-untyped]  # XlsxWriter ships no hints

from bulk.cells import csv_cell, xlsx_cell

HASH_CHUNK = 1024 * 1024
XLSX_MAX_ROWS = 1_048_576  # the header included


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


# every text is written as text: no formulas, numbers or hyperlinks guessed from strings
_XLSX_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}


class XlsxTableWriter:
    """One sheet, `export`: typed numbers and booleans, neutralised text (`xlsx_cell`)."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._book = xlsxwriter.Workbook(str(path), _XLSX_OPTIONS)
        self._sheet = self._book.add_worksheet("export")
        self._row = 0
        self.write_rows([header])

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        sheet, number = self._sheet, self._row
        text, boolean, figure = sheet.write_string, sheet.write_boolean, sheet.write_number
        for row in rows:
            if number >= XLSX_MAX_ROWS:  # XlsxWriter would drop the rest without a word
                raise ValueError(f"an XLSX sheet holds at most {XLSX_MAX_ROWS:,} rows; use CSV")
            for column, raw in enumerate(row):
                value = xlsx_cell(raw)
                if value is None:
                    continue  # an empty cell is no cell
                if isinstance(value, str):
                    text(number, column, value)
                elif value is True or value is False:
                    boolean(number, column, value)
                else:
                    figure(number, column, value)
            number += 1
        self._row = number

    def close(self) -> None:
        self._book.close()


def open_writer(format: ExportFormat, path: Path, header: Sequence[str]) -> TableWriter:
    if format is ExportFormat.CSV:
        return CsvWriter(path, header)
    return XlsxTableWriter(path, header)


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
