from __future__ import annotations

from decimal import Decimal

import pytest

from validation.amounts import MAX_AMOUNT, normalise_amount
from validation.email import normalise_email
from validation.errors import FieldError, Rule
from validation.phone import normalise_phone


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),  # full-width digits from an IME
        ("010-12345678", "+861012345678"),  # Beijing landline
        ("(021) 6888 8888", "+862168888888"),  # Shanghai landline
        ("400-810-8888", "+864008108888"),  # national service number
        ("+1 650-253-0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_stored_in_e164(typed: str, stored: str) -> None:
    assert normalise_phone(typed) == stored


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("1380013800", "a mobile number has 11 digits"),
        ("1380013800012345", "too long"),
        ("12345", "local number"),
        ("+999 1234567", "country calling code"),
        ("call me", "not a phone number"),
        ("0755-888888", "not a valid number for region CN"),
        ("021 6888 8888 ext 12", "extension"),
        ("1" * 80, "longer than"),
    ],
)
def test_refused_phone_numbers_say_why(typed: str, reason: str) -> None:
    with pytest.raises(FieldError) as caught:
        normalise_phone(typed)
    assert caught.value.field == "phone"
    assert reason in caught.value.message


def test_phone_error_uses_the_field_name_given() -> None:
    with pytest.raises(FieldError) as caught:
        normalise_phone("abc", field="contacts.phone")
    assert caught.value.field == "contacts.phone"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Zhang.San@Example.COM", "Zhang.San@example.com"),
        ("  li@qq.com ", "li@qq.com"),
        ("ｗａｎｇ＠１６３．ｃｏｍ", "wang@163.com"),  # full-width from an IME
        ("用户@例子.公司", "用户@例子.公司"),  # internationalised address
    ],
)
def test_email_is_normalised_without_network(typed: str, stored: str) -> None:
    assert normalise_email(typed) == stored


@pytest.mark.parametrize(
    "typed", ["plainaddress", "a@", "@b.com", "a@b", "a b@c.com", "a@b..com", "a@localhost"]
)
def test_invalid_email_is_a_format_error(typed: str) -> None:
    with pytest.raises(FieldError) as caught:
        normalise_email(typed)
    assert (caught.value.field, caught.value.rule) == ("email", Rule.FORMAT)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (Decimal("12.5"), Decimal("12.50")),
        (0, Decimal("0.00")),
        ("1,234.56", Decimal("1234.56")),
        ("¥ 99", Decimal("99.00")),
        ("￥1,000", Decimal("1000.00")),
        ("1.500", Decimal("1.50")),  # trailing zeros are no extra precision
        (0.1, Decimal("0.10")),  # spreadsheet float read through its repr
        ("-0", Decimal("0.00")),
        (MAX_AMOUNT, MAX_AMOUNT),
    ],
)
def test_amounts_are_decimals_with_two_places(typed: object, stored: Decimal) -> None:
    amount = normalise_amount(typed)
    assert amount == stored
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        (Decimal("-0.01"), Rule.RANGE),
        ("-5", Rule.RANGE),
        ("1.005", Rule.PRECISION),
        (MAX_AMOUNT + 1, Rule.RANGE),
        ("1e30", Rule.RANGE),
        ("NaN", Rule.FORMAT),
        (float("inf"), Rule.FORMAT),
        ("twelve", Rule.FORMAT),
        (True, Rule.TYPE),
        ([1], Rule.TYPE),
    ],
)
def test_bad_amounts_name_the_rule(typed: object, rule: Rule) -> None:
    with pytest.raises(FieldError) as caught:
        normalise_amount(typed, field="totalSpend")
    assert (caught.value.field, caught.value.rule) == ("totalSpend", rule)
