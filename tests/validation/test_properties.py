"""Property tests: no input crashes a validator, normalising is idempotent, built codes verify."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validation.amounts import MAX_AMOUNT, normalise_amount
from validation.credit_code import (
    AUTHORITY_CATEGORIES,
    CHARSET,
    PROVINCE_PREFIXES,
    check_character,
    normalise_credit_code,
    organisation_check_character,
)
from validation.customer import validate_customer_input
from validation.dates import normalise_date, normalise_datetime
from validation.email import normalise_email
from validation.errors import FieldError, ValidationFailed
from validation.identity_number import ADDRESS_PREFIXES, id_check_character, normalise_id_number
from validation.phone import normalise_phone
from validation.similarity import name_similarity, normalise_company_name
from validation.text import normalise_line
from validation.vocabulary import VocabularyName, default_vocabularies

VOCABULARIES = default_vocabularies()

# text that looks like what people type: digits, separators, CJK, Latin, full width, junk
typed_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789+-() ext.#", max_size=25),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXYIOSVZx ", max_size=22),
    st.text(alphabet="abc@.-_北京市ＡＢ１２＠．", max_size=30),
    st.text(alphabet="0123456789,.-eE¥ NaInf", max_size=20),
)
any_value = st.one_of(
    typed_text,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.lists(st.text(max_size=5), max_size=3),
    st.dates(),
    st.datetimes(),
)

NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "credit_code": normalise_credit_code,
    "id_number": normalise_id_number,
    "phone": normalise_phone,
    "email": normalise_email,
    "amount": normalise_amount,
    "date": lambda value: normalise_date(value, field="date"),
    "datetime": lambda value: normalise_datetime(value, field="at"),
    "line": lambda value: normalise_line(value, "name", max_length=300),
    **{f"vocabulary_{name.value}": VOCABULARIES[name].canonical for name in VocabularyName},
}


@pytest.mark.parametrize("name", sorted(NORMALISERS))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=any_value)
def test_random_input_normalises_or_is_refused_and_normalising_is_idempotent(
    name: str, value: Any
) -> None:
    normalise = NORMALISERS[name]
    try:
        once = normalise(value)
    except FieldError:
        return
    assert normalise(once) == once


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(
        st.sampled_from(
            ["name", "kind", "industry", "region", "level", "source", "tags", "creditCode",
             "phone", "email", "idNumber", "address", "totalSpend", "unknown"]
        ),
        any_value,
    ),
    partial=st.booleans(),
)  # fmt: skip
def test_random_customer_input_never_crashes_and_revalidates_to_itself(
    data: dict[str, Any], partial: bool
) -> None:
    try:
        customer = validate_customer_input(data, vocabularies=VOCABULARIES, partial=partial)
    except ValidationFailed as failed:
        assert failed.errors
        assert all(isinstance(error, FieldError) for error in failed.errors)
        return
    again = validate_customer_input(customer.changes(), vocabularies=VOCABULARIES, partial=partial)
    assert again == customer


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    authority = draw(st.sampled_from(sorted(AUTHORITY_CATEGORIES)))
    category = draw(st.sampled_from(sorted(AUTHORITY_CATEGORIES[authority][1])))
    prefix = draw(st.sampled_from(sorted(PROVINCE_PREFIXES)))
    division = prefix + draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    body = draw(st.text(alphabet=CHARSET, min_size=8, max_size=8))
    first17 = authority + category + division + body + organisation_check_character(body)
    return first17 + check_character(first17)


@given(code=credit_codes())
def test_a_computed_credit_code_always_verifies(code: str) -> None:
    assert normalise_credit_code(code.lower()) == code


@given(code=credit_codes(), position=st.integers(0, 17), char=st.sampled_from(CHARSET))
def test_changing_one_character_of_a_credit_code_is_caught(
    code: str, position: int, char: str
) -> None:
    mutated = code[:position] + char + code[position + 1 :]
    if mutated == code:
        return
    with pytest.raises(FieldError):
        normalise_credit_code(mutated)


@given(
    prefix=st.sampled_from(sorted(ADDRESS_PREFIXES)),
    rest=st.text(alphabet="0123456789", min_size=4, max_size=4),
    born=st.dates(min_value=__import__("datetime").date(1900, 1, 1),
                  max_value=__import__("datetime").date(2020, 12, 31)),
    sequence=st.text(alphabet="0123456789", min_size=3, max_size=3),
)  # fmt: skip
def test_a_computed_id_number_always_verifies(
    prefix: str, rest: str, born: Any, sequence: str
) -> None:
    first17 = prefix + rest + born.strftime("%Y%m%d") + sequence
    number = first17 + id_check_character(first17)
    assert normalise_id_number(number) == number


@given(amount=st.decimals(min_value=0, max_value=MAX_AMOUNT, places=2))
def test_every_amount_in_range_with_cents_is_kept(amount: Decimal) -> None:
    assert normalise_amount(amount) == amount
    assert normalise_amount(str(amount)) == amount


@given(a=typed_text, b=typed_text)
def test_name_similarity_is_bounded_symmetric_and_reflexive(a: str, b: str) -> None:
    score = name_similarity(a, b)
    assert 0.0 <= score <= 1.0
    assert score == name_similarity(b, a)
    if normalise_company_name(a):
        assert name_similarity(a, a) == 1.0


# the random inputs above are nearly all refused; these start from valid values and vary the
# way people type them, so idempotence is exercised on values that do normalise


def _typed_like_a_person(draw: st.DrawFn, text: str) -> str:
    """`text` with random case, full-width letters/digits and stray spaces."""
    chars = []
    for char in text:
        style = draw(st.integers(0, 3))
        if style == 1 and char.isascii() and char.isalnum():
            char = chr(ord(char) + 0xFEE0)  # the full-width form
        elif style == 2:
            char = char.swapcase()
        chars.append(char)
        if draw(st.integers(0, 9)) == 0:
            chars.append(" ")
    return " " + "".join(chars) + " "


@st.composite
def spellings(draw: st.DrawFn) -> tuple[VocabularyName, str, str]:
    name = draw(st.sampled_from(list(VocabularyName)))
    term = draw(st.sampled_from(VOCABULARIES[name].terms))
    spelling = draw(st.sampled_from(list(term.spellings())))
    return name, term.canonical, _typed_like_a_person(draw, spelling)


@given(case=spellings())
def test_any_typed_spelling_finds_its_canonical_value_idempotently(
    case: tuple[VocabularyName, str, str],
) -> None:
    name, canonical, typed = case
    vocabulary = VOCABULARIES[name]
    assert vocabulary.canonical(typed) == canonical
    assert vocabulary.canonical(canonical) == canonical


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    import phonenumbers

    region = draw(st.sampled_from(["CN", "CN", "CN", "HK", "TW", "US", "GB", "DE", "JP", "SG"]))
    kind = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
        )
    )
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    style = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
            + ([phonenumbers.PhoneNumberFormat.NATIONAL] if region == "CN" else [])
        )
    )
    return _typed_like_a_person(draw, phonenumbers.format_number(number, style))


@given(typed=phone_numbers())
def test_valid_phone_numbers_normalise_to_e164_idempotently(typed: str) -> None:
    stored = normalise_phone(typed)
    assert stored.startswith("+") and stored[1:].isdigit()
    assert normalise_phone(stored) == stored


@given(address=st.emails())
def test_generated_email_addresses_normalise_idempotently(address: str) -> None:
    try:
        stored = normalise_email(address)
    except FieldError:
        return  # hypothesis' RFC 5322 addresses include forms email-validator refuses (quoted)
    assert normalise_email(stored) == stored
    assert stored.split("@")[1] == stored.split("@")[1].lower()
