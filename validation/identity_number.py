"""居民身份证号码: the 18-character PRC resident identity number (GB 11643-1999).

    1-6    address code (GB/T 2260 division of first registration)
    7-14   date of birth, YYYYMMDD
    15-17  sequence number (odd for men, even for women)
    18     check character, ISO 7064 MOD 11-2 over positions 1-17 (0-9 or X)

The retired 15-digit form has no check character and is refused: it cannot be verified.
The check character is python-stdnum's (`stdnum.cn.ric`); the messages, which name the rule
and the positions that failed, are ours.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from stdnum.cn import ric

from validation.errors import FieldError, Rule
from validation.text import compact_code

# first two digits of the address code: provinces, plus 81/82/83 (Hong Kong, Macao, Taiwan
# residents' residence permits use the same format)
ADDRESS_PREFIXES = frozenset(
    f"{prefix}"
    for prefix in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43)
    + (44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83)
)
FIELD = "idNumber"


def id_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("17 digits are needed")
    return str(ric.calc_check_digit(first17 + "0"))  # stdnum expects a check position


def normalise_id_number(value: Any, *, field: str = FIELD, today: date | None = None) -> str:
    """The number in stored form (upper-case X, no spaces) after format, date and check tests."""
    number = compact_code(value, field)
    if len(number) == 15 and number.isdigit():
        raise FieldError(
            field, Rule.FORMAT, "15-digit numbers are retired and cannot be verified; use 18 digits"
        )
    if len(number) != 18:
        raise FieldError(field, Rule.LENGTH, f"must be 18 characters, got {len(number)}")
    if not number[:17].isascii() or not number[:17].isdigit() or number[17] not in "0123456789X":
        raise FieldError(field, Rule.FORMAT, "must be 17 digits followed by a digit or X")
    if number[:2] not in ADDRESS_PREFIXES:
        raise FieldError(field, Rule.STRUCTURE, "positions 1-6 are not a known address code")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise FieldError(field, Rule.STRUCTURE, "positions 7-14 are not a date of birth") from None
    if born.year < 1900 or born > (today or date.today()):
        raise FieldError(field, Rule.STRUCTURE, "the date of birth is out of range")
    if number[17] != id_check_character(number[:17]):
        raise FieldError(field, Rule.CHECKSUM, "check character (position 18) does not match")
    return number
