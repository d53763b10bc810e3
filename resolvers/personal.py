"""Personal values of customers and contacts as the write paths see them: sealed, indexed.

They are encrypted under the record's data key (`db.crypto`); e-mail and address were clear
columns before migration 0015, so a row may still hold its value there until
`dossier keys rotate` seals it — reads fall back to it, writes empty it.
"""

from __future__ import annotations

from typing import Any

from db.crypto import FieldCipher
from validation.email import email_lookup_form

# attributes whose clear column still holds values written before they were encrypted
LEGACY_CLEAR = frozenset({"email", "address"})


def blind_form(attribute: str, value: str | None) -> str | None:
    """The form a value is blind-indexed in: e-mail case-insensitively, the rest as stored."""
    if value is None or attribute != "email":
        return value
    return email_lookup_form(value)


def stored_personal(
    cipher: FieldCipher, row: Any, attribute: str, label: str, clear: str | None = None
) -> str | None:
    """One encrypted attribute of a customer or contact row in clear; falls back to the clear
    column `clear` for values written before it was encrypted."""
    sealed = getattr(row, f"{attribute}_enc")
    if sealed is None and clear is not None:
        return getattr(row, clear)  # type: ignore[no-any-return]
    return cipher.decrypt(label, sealed, row.data_key)


def index_of(cipher: FieldCipher, label: str, attribute: str, value: str | None) -> bytes | None:
    """The blind index of one personal value (`blind_form` first)."""
    return cipher.blind_index(label, blind_form(attribute, value))
