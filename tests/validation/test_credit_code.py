from __future__ import annotations

import pytest

from validation.credit_code import (
    check_character,
    normalise_credit_code,
    organisation_check_character,
    parse_credit_code,
)
from validation.errors import FieldError, Rule

# published codes: the GB 32100-2015 example, 北京百度网讯科技有限公司, 深圳市腾讯计算机系统有限公司
PUBLISHED = ["91350100M000100Y43", "91110000802100433B", "91440300708461136T"]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_verify(code: str) -> None:
    assert normalise_credit_code(code) == code


def test_code_is_upper_cased_and_spaces_removed() -> None:
    assert normalise_credit_code(" 9135 0100 m000 100y43 ") == "91350100M000100Y43"
    assert normalise_credit_code("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


def test_parts_are_named_after_the_standard() -> None:
    code = parse_credit_code("91350100M000100Y43")
    assert (code.authority, code.category, code.division) == ("9", "1", "350100")
    assert code.organisation_code == "M000100Y4"
    assert (code.authority_name, code.category_name) == ("工商", "企业")


def test_check_character_matches_the_standard_example() -> None:
    assert check_character("91350100M000100Y4") == "3"
    assert organisation_check_character("M000100Y") == "4"


def test_code_that_circulates_but_fails_its_check_is_refused() -> None:
    # 911100001000013926 is quoted online as an example; its check character should be H
    with pytest.raises(FieldError) as caught:
        normalise_credit_code("911100001000013926")
    assert caught.value.rule in {Rule.CHECKSUM, Rule.STRUCTURE}


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("91350100M000100Y4", Rule.LENGTH),
        ("91350100M000100Y433", Rule.LENGTH),
        ("91350100M000100Y4I", Rule.FORMAT),  # I is not in the charset
        ("91350100M000100O43", Rule.FORMAT),
        ("B1350100M000100Y43", Rule.STRUCTURE),  # no authority B
        ("94350100M000100Y43", Rule.STRUCTURE),  # 工商 has no category 4
        ("91990100M000100Y43", Rule.STRUCTURE),  # 99 is no province
        ("9135010AM000100Y43", Rule.STRUCTURE),  # division must be digits
        ("91350100M000100Y53", Rule.CHECKSUM),  # organisation code check broken
        ("91350100M000100Y44", Rule.CHECKSUM),  # final check broken
        ("", Rule.LENGTH),
    ],
)
def test_broken_codes_name_the_rule(value: str, rule: Rule) -> None:
    with pytest.raises(FieldError) as caught:
        normalise_credit_code(value)
    assert caught.value.field == "creditCode"
    assert caught.value.rule == rule


def test_non_text_is_a_type_error() -> None:
    with pytest.raises(FieldError) as caught:
        normalise_credit_code(913501)
    assert caught.value.rule == Rule.TYPE


def test_a_single_changed_character_is_always_caught() -> None:
    code = "91440300708461136T"
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for position in range(17):
        for char in alphabet:
            if char == code[position]:
                continue
            mutated = code[:position] + char + code[position + 1 :]
            with pytest.raises(FieldError):
                normalise_credit_code(mutated)
