"""The check-character arithmetic of the generator agrees with published codes and validation."""

from __future__ import annotations

import random

import pytest

from api.seed import identifiers
from validation.credit_code import is_valid_credit_code
from validation.identity_number import normalise_id_number
from validation.phone import normalise_phone

# codes printed on public business licences
PUBLISHED_CREDIT_CODES = ("91350100M000100Y43", "91110108551385082Q", "91440300708461136T")


@pytest.mark.parametrize("code", PUBLISHED_CREDIT_CODES)
def test_published_credit_codes_verify(code: str) -> None:
    assert identifiers.is_valid_credit_code(code)
    assert identifiers.org_code_check(code[8:16]) == code[16]


def test_a_changed_character_breaks_the_check() -> None:
    code = PUBLISHED_CREDIT_CODES[0]
    altered = code[:5] + ("1" if code[5] != "1" else "2") + code[6:]
    assert not identifiers.is_valid_credit_code(altered)
    assert not is_valid_credit_code(altered)


def test_generated_identifiers_pass_validation() -> None:
    rng = random.Random(3)
    for _ in range(2_000):
        code = identifiers.credit_code(rng, "310115")
        assert is_valid_credit_code(code), code
        number = identifiers.id_number(rng, "110105")
        assert normalise_id_number(number) == number
        phone = identifiers.mobile_e164(rng)
        assert normalise_phone(phone) == phone


@pytest.mark.parametrize("prefix", identifiers.MOBILE_PREFIXES)
def test_every_mobile_prefix_is_a_valid_mainland_mobile(prefix: str) -> None:
    assert normalise_phone(f"+86{prefix}12345678") == f"+86{prefix}12345678"
