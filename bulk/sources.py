"""Reading an uploaded table — CSV in whatever encoding a spreadsheet saved it, or XLSX.

Every way a file can be unreadable is a `FileRejectedError` with a message a person can act
on, raised before any row is looked at, so a bad file never leaves half an import behind:
    UNSUPPORTED   not .csv or .xlsx (old .xls included: "save as .xlsx")
    BINARY        a .csv that is no text at all (NUL bytes, a ZIP or PDF signature)
    ENCODING      text in no encoding we can tell, or a line that breaks the detected one
    NOT_XLSX      an .xlsx that openpyxl cannot open
    EMPTY         no header row
A CSV is decoded completely once up front (cheap next to validation), which both proves the
encoding for every line and counts the rows for progress and ETA.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

SAMPLE_BYTES = 256 * 1024
READ_CHUNK = 1024 * 1024
# encodings spreadsheets in China and elsewhere actually save CSV in; narrowing the detector
# keeps it from calling a short GBK file UTF-16
CANDIDATE_ENCODINGS = ["utf_8", "gb18030", "big5", "utf_16", "cp1252", "shift_jis", "euc_kr"]
# on a short file the detector cannot tell these apart; Dossier's users write Chinese, so a
# file that also decodes as GB18030 is read as GB18030 (test: "名称\n王" in GBK looks EUC-KR)
EAST_ASIAN_ENCODINGS = {
    "gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950", "cp936",
    "euc_kr", "cp949", "shift_jis", "cp932", "euc_jp",
}  # fmt: skip
BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx file? name it .xlsx)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls or Office file (save it as .xlsx or CSV)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
}


class Problem(StrEnum):
    UNSUPPORTED = "UNSUPPORTED"
    BINARY = "BINARY"
    ENCODING = "ENCODING"
    NOT_XLSX = "NOT_XLSX"
    EMPTY = "EMPTY"
    MISSING_COLUMNS = "MISSING_COLUMNS"
    TOO_LARGE = "TOO_LARGE"


class FileRejectedError(ValueError):
    """The file as a whole cannot be imported; nothing was read into the database."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True)
class Table:
    """A readable table: header, row count, and rows that can be read again from the start."""

    path: Path
    kind: str  # "csv" | "xlsx"
    header: tuple[str, ...]
    total_rows: int
    encoding: str | None = None
    delimiter: str = ","

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(spreadsheet row number, cells) for each non-empty data row; the header is row 1."""
        if self.kind == "csv":
            yield from self._csv_rows()
        else:
            yield from self._xlsx_rows()

    def _csv_rows(self) -> Iterator[tuple[int, list[Any]]]:
        with _text(self.path, self.encoding or "utf_8_sig") as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            next(reader, None)
            for number, cells in enumerate(reader, start=2):
                if any(cell.strip() for cell in cells):
                    yield number, list(cells)

    def _xlsx_rows(self) -> Iterator[tuple[int, list[Any]]]:
        from openpyxl import load_workbook  # type: ignore[import-untyped]  # no hints

        book = load_workbook(self.path, read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            for number, cells in enumerate(sheet.iter_rows(min_row=2, values_only=True), 2):
                if any(cell is not None and str(cell).strip() for cell in cells):
                    yield number, list(cells)
        finally:
            book.close()


def _text(path: Path, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(path.open("rb"), encoding=encoding, errors="strict", newline="")


def read_table(path: Path, file_name: str) -> Table:
    """Open `path` (uploaded as `file_name`) as a table, or raise `FileRejectedError`."""
    suffix = Path(file_name).suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".xls":
        raise FileRejectedError(
            Problem.UNSUPPORTED, "old .xls workbooks cannot be read; save the file as .xlsx"
        )
    raise FileRejectedError(
        Problem.UNSUPPORTED, f"{file_name!r}: only .csv and .xlsx files can be imported"
    )


# -- CSV --------------------------------------------------------------------------------------


def _read_csv(path: Path) -> Table:
    with path.open("rb") as file:
        sample = file.read(SAMPLE_BYTES)
    if not sample.strip():
        raise FileRejectedError(Problem.EMPTY, "the file is empty")
    for signature, what in BINARY_SIGNATURES.items():
        if sample.startswith(signature):
            raise FileRejectedError(Problem.BINARY, f"this .csv file is {what}, not text")
    has_bom = sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in sample and not has_bom:
        raise FileRejectedError(Problem.BINARY, "this .csv file holds binary data, not text")
    encoding = detect_encoding(path, sample)
    delimiter = _delimiter(sample, encoding)
    header, total = _scan_csv(path, encoding, delimiter)
    return Table(path, "csv", header, total, encoding, delimiter)


def detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 if the whole file is UTF-8, else charset-normalizer's guess (GBK read as GB18030)."""
    if _decodes(path, "utf_8_sig"):
        return "utf_8_sig"
    best = from_bytes(sample, cp_isolation=CANDIDATE_ENCODINGS).best()
    if best is None:
        raise FileRejectedError(
            Problem.ENCODING,
            "cannot tell the file's text encoding; save it as CSV UTF-8 and try again",
        )
    encoding = best.encoding
    # GB18030 is a superset of GBK and GB2312
    if encoding in EAST_ASIAN_ENCODINGS and _decodes_bytes(sample, "gb18030"):
        encoding = "gb18030"
    return encoding


def _decodes_bytes(data: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(data, final=False)  # the sample may end inside a character
    except UnicodeDecodeError:
        return False
    return True


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as file:
            while chunk := file.read(READ_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _delimiter(sample: bytes, encoding: str) -> str:
    text = sample.decode(encoding, errors="ignore")
    first = text.splitlines()[0] if text else ""
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _scan_csv(path: Path, encoding: str, delimiter: str) -> tuple[tuple[str, ...], int]:
    """Decode every line (proving the encoding) and count the data rows."""
    header: list[str] | None = None
    total = 0
    line = 1
    try:
        with _text(path, encoding) as text:
            reader = csv.reader(text, delimiter=delimiter)
            for cells in reader:
                line = reader.line_num
                if header is None:
                    header = cells
                elif any(cell.strip() for cell in cells):
                    total += 1
    except UnicodeDecodeError:
        raise FileRejectedError(
            Problem.ENCODING,
            f"line {line + 1} cannot be read as {encoding}; save the file as CSV UTF-8",
        ) from None
    except csv.Error as error:
        raise FileRejectedError(Problem.BINARY, f"line {line + 1} is not CSV: {error}") from None
    if not header or not any(cell.strip() for cell in header):
        raise FileRejectedError(Problem.EMPTY, "the file has no header row")
    return tuple(cell.strip().lstrip("\ufeff") for cell in header), total


# -- XLSX -------------------------------------------------------------------------------------


def _read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # no hints

    if not zipfile.is_zipfile(path):
        raise FileRejectedError(Problem.NOT_XLSX, "this .xlsx file is not an Excel workbook")
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises KeyError, InvalidFileException, BadZipFile …
        raise FileRejectedError(
            Problem.NOT_XLSX, f"this .xlsx file cannot be opened ({type(error).__name__})"
        ) from None
    try:
        if not book.worksheets:
            raise FileRejectedError(Problem.EMPTY, "the workbook has no sheet")
        sheet = book.worksheets[0]
        first = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), None)
        total = max((sheet.max_row or 1) - 1, 0)
    finally:
        book.close()
    if first is None or not any(cell is not None and str(cell).strip() for cell in first):
        raise FileRejectedError(Problem.EMPTY, "the first sheet has no header row")
    header = tuple("" if cell is None else str(cell).strip() for cell in first)
    return Table(path, "xlsx", header, total)
