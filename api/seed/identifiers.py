"""Chinese identifiers with valid check characters, so generated data passes real validation.

- 统一社会信用代码 (GB 32100-2015): 18 characters; the 9-character organisation code inside
  carries its own GB 11714 check character, and the last character checks the first 17.
- 居民身份证号码 (GB 11643-1999): 17 digits and an ISO 7064 MOD 11-2 check character.
- Mobile numbers: 11 digits behind `+86`, with prefixes the carriers actually assign.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ID_NUMBER_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_NUMBER_CHECK = "10X98765432"

# 号段 of China Mobile, Unicom, Telecom and Broadnet (data-only and IoT ranges left out)
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "197", "198", "199",
)  # fmt: skip


def _char_value(char: str) -> int:
    return CREDIT_CODE_CHARSET.index(char)


def org_code_check(body: str) -> str:
    """GB 11714 check character of an 8-character organisation code body."""
    total = sum(w * _char_value(c) for w, c in zip(ORG_CODE_WEIGHTS, body, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def credit_code_check(first17: str) -> str:
    """GB 32100-2015 check character of the first 17 characters of a credit code."""
    total = sum(w * _char_value(c) for w, c in zip(CREDIT_CODE_WEIGHTS, first17, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    """True when `code` has the GB 32100-2015 shape and its check character matches."""
    if len(code) != 18 or any(c not in CREDIT_CODE_CHARSET for c in code):
        return False
    return credit_code_check(code[:17]) == code[17]


def credit_code(rng: random.Random, division: str) -> str:
    """A company's code: registered with 市场监管 (9), an enterprise (1), in `division`."""
    body = "".join(rng.choices("0123456789", k=8))
    organisation = body + org_code_check(body)
    first17 = f"91{division}{organisation}"
    return first17 + credit_code_check(first17)


def id_number(rng: random.Random, division: str) -> str:
    """A resident identity number for someone born 1960–2002 and registered in `division`."""
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(43 * 365))
    first17 = f"{division}{born:%Y%m%d}{rng.randrange(1000):03d}"
    total = sum(w * int(c) for w, c in zip(ID_NUMBER_WEIGHTS, first17, strict=True))
    return first17 + ID_NUMBER_CHECK[total % 11]


def is_valid_id_number(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(w * int(c) for w, c in zip(ID_NUMBER_WEIGHTS, number[:17], strict=True))
    return ID_NUMBER_CHECK[total % 11] == number[17].upper()


def mobile_e164(rng: random.Random) -> str:
    """A mainland China mobile number in E.164 form, e.g. `+8613812345678`."""
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(100_000_000):08d}"
