"""Phone numbers: Chinese mobiles and landlines and international numbers, stored in E.164.

Parsing and the per-country numbering plans come from `phonenumbers` (libphonenumber's data);
numbers without a country code are read as Chinese (`DEFAULT_REGION`), so "010-12345678" and
"138 0013 8000" work as typed. Errors say why a number was refused.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from validation.errors import FieldError, Rule
from validation.text import require_text

DEFAULT_REGION = "CN"
MAX_INPUT_LENGTH = 64  # longer is no phone number; bounds parsing work on hostile input

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "the country calling code is unknown",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}
_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "the country calling code is unknown",
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has a length no number of that country has",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: (
        "is a local number only; add the area code (e.g. 010 for Beijing)"
    ),
}


def normalise_phone(value: Any, *, field: str = "phone", region: str = DEFAULT_REGION) -> str:
    """The number in E.164 ("+8613800138000"), or a `FieldError` saying why it is refused."""
    text = unicodedata.normalize("NFKC", require_text(value, field)).strip()
    if not text:
        raise FieldError(field, Rule.REQUIRED, "must not be blank")
    if len(text) > MAX_INPUT_LENGTH:
        raise FieldError(field, Rule.LENGTH, f"is longer than {MAX_INPUT_LENGTH} characters")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        reason = _PARSE_REASONS.get(error.error_type, "is not a phone number")
        raise FieldError(field, Rule.FORMAT, reason) from None
    if number.extension:
        # E.164 has no extensions: storing the number would silently drop it
        raise FieldError(
            field, Rule.FORMAT, "has an extension, which cannot be stored; give the main number"
        )
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise FieldError(field, Rule.FORMAT, _POSSIBLE_REASONS.get(possible, "is not possible"))
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        national = str(number.national_number)
        hint = ""
        if number.country_code == 86 and national.startswith("1") and len(national) != 11:
            # 1xx… that is no Beijing landline (010) is a mobile typed with a digit too few/many
            hint = f": a mobile number has 11 digits, this one {len(national)}"
        raise FieldError(field, Rule.FORMAT, f"is not a valid number for region {where}{hint}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_valid_phone(value: Any) -> bool:
    try:
        normalise_phone(value)
    except FieldError:
        return False
    return True
