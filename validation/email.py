"""E-mail addresses: syntax only (`email-validator`, no DNS), stored in normalised form."""

from __future__ import annotations

import unicodedata
from typing import Any

from email_validator import EmailNotValidError, validate_email

from validation.errors import FieldError, Rule
from validation.text import require_text

MAX_LENGTH = 320  # the customers.email / contacts.email column width


def normalise_email(value: Any, *, field: str = "email") -> str:
    """The address as stored: trimmed, domain lower-cased and IDNA-normalised, local part kept.

    Full-width characters typed with a Chinese input method ("ａ＠ｂ．ｃｏｍ") are folded first.
    Deliverability is not checked: validation must not depend on the network.
    """
    text = unicodedata.normalize("NFKC", require_text(value, field)).strip()
    if not text:
        raise FieldError(field, Rule.REQUIRED, "must not be blank")
    if len(text) > MAX_LENGTH:
        raise FieldError(field, Rule.LENGTH, f"is longer than {MAX_LENGTH} characters")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise FieldError(field, Rule.FORMAT, str(error)) from None
    normalised = result.normalized
    if len(normalised) > MAX_LENGTH:
        raise FieldError(field, Rule.LENGTH, f"is longer than {MAX_LENGTH} characters")
    return normalised


def is_valid_email(value: Any) -> bool:
    try:
        normalise_email(value)
    except FieldError:
        return False
    return True


def email_lookup_form(value: str) -> str:
    """The form an address is blind-indexed and compared in: e-mail matches ignore case
    (as `lower(email)` did before the column was encrypted)."""
    return unicodedata.normalize("NFKC", value).strip().lower()
