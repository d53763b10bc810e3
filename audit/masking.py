"""Masking of sensitive values before they enter `changes`: the trail must never hold them clear.

The shapes follow what Chinese CRM users expect to see: a mobile number keeps its carrier prefix
and last four digits (`138****5678`), an e-mail keeps its first letter and domain
(`a***@example.com`), an identity-card number keeps the first three and last four characters.
"""

from __future__ import annotations

import re

MASK = "****"
_EMAIL = re.compile(r"^(?P<local>[^@\s]+)@(?P<domain>[^@\s]+)$")
_DIGITS = re.compile(r"\d")


def mask_value(value: str | None) -> str | None:
    """Return `value` with its identifying middle replaced; None stays None.

    Short values (four characters or fewer) are masked entirely: keeping both ends of them
    would reveal the value.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return text
    email = _EMAIL.match(text)
    if email:
        return f"{email['local'][:1]}***@{email['domain']}"
    compact = re.sub(r"[\s\-()]", "", text)
    has_country = compact.startswith("+")
    if has_country:
        compact = compact[1:]
    if compact.isdigit() and len(compact) == 13 and compact.startswith("86"):
        compact = compact[2:]  # +86 13812345678 → mask the national number
    if compact.isdigit() and len(compact) == 11:
        return f"{compact[:3]}{MASK}{compact[-4:]}"
    if len(compact) >= 15 and _DIGITS.search(compact):
        return f"{compact[:3]}{'*' * (len(compact) - 7)}{compact[-4:]}"
    if len(compact) <= 4:
        return "*" * len(compact)
    if len(compact) <= 8:
        return f"{compact[:1]}{MASK}{compact[-1:]}"
    return f"{compact[:3]}{MASK}{compact[-4:]}"
