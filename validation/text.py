"""Text clean-up shared by every rule: Unicode width, whitespace, control characters, length."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from validation.errors import FieldError, Rule

_WHITESPACE = re.compile(r"\s+")
# separators people put inside codes and keys: spaces, hyphens, dots, underscores, middle dots
_KEY_NOISE = re.compile(r"[\s\-_.·・]+")


def fold(value: str) -> str:
    """Comparison key: NFKC (full width → ASCII), case-folded, without spaces and separators.

    "ＢＪ", " bj ", "Bei-jing" and "BEIJING" fold alike; used for vocabulary look-ups, never stored.
    """
    return _KEY_NOISE.sub("", unicodedata.normalize("NFKC", value).casefold())


def require_text(value: Any, field: str) -> str:
    """The value as a `str`, or a TYPE error: imports hand us numbers and dates too."""
    if isinstance(value, str):
        return value
    raise FieldError(field, Rule.TYPE, f"expected text, got {type(value).__name__}")


def has_control_characters(value: str, *, allow_newlines: bool = False) -> bool:
    for char in value:
        if allow_newlines and char in "\n\t":
            continue
        if unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            return True
    return False


def normalise_line(value: Any, field: str, *, max_length: int, min_length: int = 1) -> str:
    """A one-line text (a name, a title): NFC, trimmed, inner whitespace runs become one space.

    Width is kept as typed (NFC, not NFKC): company names legally use full-width brackets.
    """
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", require_text(value, field))).strip()
    if has_control_characters(text):
        raise FieldError(field, Rule.FORMAT, "contains control or unassigned characters")
    if len(text) < min_length:
        raise FieldError(field, Rule.REQUIRED, "must not be blank")
    if len(text) > max_length:
        raise FieldError(
            field, Rule.LENGTH, f"is {len(text)} characters long, at most {max_length}"
        )
    return text


def normalise_paragraph(value: Any, field: str, *, max_length: int) -> str:
    """A free text (an address, a summary): NFC, trimmed, line breaks kept, no control chars."""
    text = unicodedata.normalize("NFC", require_text(value, field)).replace("\r\n", "\n").strip()
    if has_control_characters(text, allow_newlines=True):
        raise FieldError(field, Rule.FORMAT, "contains control or unassigned characters")
    if not text:
        raise FieldError(field, Rule.REQUIRED, "must not be blank")
    if len(text) > max_length:
        raise FieldError(
            field, Rule.LENGTH, f"is {len(text)} characters long, at most {max_length}"
        )
    return text


def compact_code(value: Any, field: str) -> str:
    """A code as typed by people: NFKC, upper case, with spaces and hyphens removed."""
    text = unicodedata.normalize("NFKC", require_text(value, field))
    return re.sub(r"[\s\-]+", "", text).upper()


def is_blank(value: Any) -> bool:
    """None or a string of whitespace: the way forms and spreadsheets say "no value"."""
    return value is None or (isinstance(value, str) and not value.strip())
