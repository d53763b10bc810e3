from __future__ import annotations

from datetime import date

import pytest

from validation.errors import FieldError, Rule
from validation.identity_number import id_check_character, normalise_id_number

# the worked example of GB 11643-1999, and two numbers whose check characters were computed
# by hand from the MOD 11-2 weights (7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2)
VALID = ["11010519491231002X", "44030419900307123X", "310115198511200047"]


@pytest.mark.parametrize("number", VALID)
def test_valid_numbers_pass(number: str) -> None:
    assert normalise_id_number(number) == number


def test_lower_case_x_and_spaces_are_normalised() -> None:
    assert normalise_id_number(" 110105 19491231 002x") == "11010519491231002X"


def test_check_character_follows_iso_7064_mod_11_2() -> None:
    assert id_check_character("11010519491231002") == "X"
    assert id_check_character("31011519851120004") == "7"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("110105194912310021", Rule.CHECKSUM),
        ("11010519491231002", Rule.LENGTH),
        ("110105491231002", Rule.FORMAT),  # retired 15-digit form
        ("1101051949123100AX", Rule.FORMAT),
        ("99010519491231002X", Rule.STRUCTURE),  # no province 99
        ("110105194902300021", Rule.STRUCTURE),  # 30 February
        ("440524188001010014", Rule.STRUCTURE),  # born 1880: a common sample, not a person
    ],
)
def test_invalid_numbers_name_the_rule(value: str, rule: Rule) -> None:
    with pytest.raises(FieldError) as caught:
        normalise_id_number(value)
    assert caught.value.field == "idNumber"
    assert caught.value.rule == rule


def test_birth_date_in_the_future_is_refused() -> None:
    first17 = "11010520300101001"
    number = first17 + id_check_character(first17)
    with pytest.raises(FieldError) as caught:
        normalise_id_number(number, today=date(2026, 1, 1))
    assert caught.value.rule == Rule.STRUCTURE
