from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from validation.customer import (
    CustomerKind,
    CustomerLevel,
    merge_customer_values,
    validate_customer_input,
    validate_customer_patch,
)
from validation.errors import FieldError, Rule, ValidationFailed
from validation.vocabulary import default_vocabularies

VOCABULARIES = default_vocabularies()
COMPANY = {"name": "北京字节跳动科技有限公司", "industry": "IT", "region": "Beijing"}
PERSON = {"name": "张三", "kind": "PERSON", "phone": "13800138000"}


def errors_of(data: dict[str, Any], **options: Any) -> set[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_customer_input(data, vocabularies=VOCABULARIES, **options)
    return {(error.field, error.rule) for error in caught.value.errors}


def test_company_is_normalised_with_defaults() -> None:
    customer = validate_customer_input(
        {
            **COMPANY,
            "creditCode": "91110000802100433b",
            "phone": "010 1234 5678",
            "email": "Sales.Team@Example.COM",
            "tags": "VIP、国企",
            "source": "wechat",
            "totalSpend": "1,200.5",
        },
        vocabularies=VOCABULARIES,
    )
    assert customer.kind is CustomerKind.COMPANY and customer.level is CustomerLevel.C
    assert (customer.industry, customer.region, customer.source) == ("信息技术", "北京", "社交媒体")
    assert customer.credit_code == "91110000802100433B"
    assert customer.phone == "+861012345678"
    assert customer.email == "Sales.Team@example.com"
    assert customer.tags == ("重点客户", "国有企业")
    assert customer.total_spend == Decimal("1200.50")
    assert customer.changes()["tags"] == ["重点客户", "国有企业"]


def test_snake_case_keys_are_accepted_like_api_names() -> None:
    customer = validate_customer_input(
        {**COMPANY, "credit_code": "91440300708461136T"}, vocabularies=VOCABULARIES
    )
    assert customer.credit_code == "91440300708461136T"


def test_company_without_industry_and_region_fails_on_both() -> None:
    assert errors_of({"name": "某公司"}) == {
        ("industry", Rule.REQUIRED),
        ("region", Rule.REQUIRED),
    }


def test_every_bad_field_is_reported_together() -> None:
    found = errors_of(
        {
            "name": "  ",
            "industry": "cars",
            "region": "Atlantis",
            "phone": "12",
            "email": "nope",
            "creditCode": "91350100M000100Y44",
            "level": "D",
            "totalSpend": "-1",
        }
    )
    assert found == {
        ("name", Rule.REQUIRED),
        ("industry", Rule.VOCABULARY),
        ("region", Rule.VOCABULARY),
        ("phone", Rule.FORMAT),
        ("email", Rule.FORMAT),
        ("creditCode", Rule.CHECKSUM),
        ("level", Rule.ENUM),
        ("totalSpend", Rule.RANGE),
    }


def test_person_needs_a_phone_or_an_email() -> None:
    assert errors_of({"name": "李四", "kind": "PERSON"}) == {("phone", Rule.REQUIRED_ONE_OF)}
    person = validate_customer_input(
        {"name": "李四", "kind": "个人", "email": "li@qq.com"}, vocabularies=VOCABULARIES
    )
    assert person.kind is CustomerKind.PERSON and person.industry is None


def test_person_with_a_bad_phone_is_told_about_the_phone_once() -> None:
    assert errors_of({"name": "李四", "kind": "PERSON", "phone": "12"}) == {("phone", Rule.FORMAT)}


def test_credit_code_only_for_companies_and_id_number_only_for_persons() -> None:
    assert errors_of({**PERSON, "creditCode": "91350100M000100Y43"}) == {
        ("creditCode", Rule.NOT_ALLOWED)
    }
    assert errors_of({**COMPANY, "idNumber": "11010519491231002X"}) == {
        ("idNumber", Rule.NOT_ALLOWED)
    }
    person = validate_customer_input(
        {**PERSON, "idNumber": "11010519491231002x"}, vocabularies=VOCABULARIES
    )
    assert person.id_number == "11010519491231002X"


def test_unknown_and_misspelt_keys_are_errors_with_suggestions() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_customer_input({**COMPANY, "regoin": "北京"}, vocabularies=VOCABULARIES)
    (error,) = caught.value.errors
    assert (error.field, error.rule, error.suggestions) == (
        "regoin",
        Rule.UNKNOWN_FIELD,
        ("region",),
    )


def test_ignored_keys_are_left_to_the_caller() -> None:
    customer = validate_customer_input(
        {**COMPANY, "force": True, "ownerId": "VXNlcjox"},
        vocabularies=VOCABULARIES,
        ignore={"force", "ownerId"},
    )
    assert "force" not in customer.changes()


def test_tags_are_deduplicated_and_each_unknown_one_reported() -> None:
    customer = validate_customer_input(
        {**COMPANY, "tags": ["VIP", "重点客户", "KA"]}, vocabularies=VOCABULARIES
    )
    assert customer.tags == ("重点客户",)
    with pytest.raises(ValidationFailed) as caught:
        validate_customer_input(
            {**COMPANY, "tags": ["VIP", "foo", "bar"]}, vocabularies=VOCABULARIES
        )
    assert [(e.field, e.rule) for e in caught.value.errors] == [("tags", Rule.VOCABULARY)] * 2


def test_tags_must_be_texts() -> None:
    assert errors_of({**COMPANY, "tags": [1, 2]}) == {("tags", Rule.TYPE)}


def test_partial_input_checks_only_present_keys() -> None:
    patch = validate_customer_input(
        {"phone": "13800138000"}, vocabularies=VOCABULARIES, partial=True
    )
    assert patch.present == {"phone"} and patch.changes() == {"phone": "+8613800138000"}


def test_patch_may_not_leave_a_company_without_region() -> None:
    existing = {"kind": "COMPANY", "name": "某公司", "industry": "制造业", "region": "上海"}
    with pytest.raises(ValidationFailed) as caught:
        validate_customer_patch(existing, {"region": None}, vocabularies=VOCABULARIES)
    assert [(e.field, e.rule) for e in caught.value.errors] == [("region", Rule.REQUIRED)]


def test_patch_clearing_an_optional_field_is_allowed() -> None:
    existing = {"kind": "COMPANY", "name": "某公司", "industry": "制造业", "region": "上海"}
    patch = validate_customer_patch(existing, {"email": ""}, vocabularies=VOCABULARIES)
    assert patch.changes() == {"email": None}


def test_patch_turning_a_company_into_a_person_must_satisfy_person_rules() -> None:
    existing = {
        "kind": "COMPANY",
        "name": "某公司",
        "industry": "制造业",
        "region": "上海",
        "credit_code": "91350100M000100Y43",
    }
    with pytest.raises(ValidationFailed) as caught:
        validate_customer_patch(existing, {"kind": "PERSON"}, vocabularies=VOCABULARIES)
    assert {(e.field, e.rule) for e in caught.value.errors} == {
        ("phone", Rule.REQUIRED_ONE_OF),
        ("creditCode", Rule.NOT_ALLOWED),
    }
    patch = validate_customer_patch(
        existing,
        {"kind": "PERSON", "creditCode": None, "email": "a@b.cn"},
        vocabularies=VOCABULARIES,
    )
    assert patch.changes() == {"kind": CustomerKind.PERSON, "credit_code": None, "email": "a@b.cn"}


def test_patch_of_a_person_may_drop_the_phone_when_an_email_remains() -> None:
    existing = {"kind": "PERSON", "name": "王五", "phone": "<encrypted>", "email": "w@x.cn"}
    patch = validate_customer_patch(existing, {"phone": None}, vocabularies=VOCABULARIES)
    assert patch.changes() == {"phone": None}
    with pytest.raises(ValidationFailed):
        validate_customer_patch(existing, {"phone": None, "email": None}, vocabularies=VOCABULARIES)


def test_patch_may_not_blank_the_name() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_customer_patch(
            {"kind": "PERSON", "email": "a@b.cn"}, {"name": " "}, vocabularies=VOCABULARIES
        )
    assert [(e.field, e.rule) for e in caught.value.errors] == [("name", Rule.REQUIRED)]


def test_merge_fills_empty_fields_and_unites_tags() -> None:
    keep = {
        "kind": "COMPANY",
        "name": "A",
        "email": None,
        "phone": "+8613800138000",
        "tags": ["重点客户"],
        "total_spend": Decimal(5),
    }
    merge = {
        "kind": "PERSON",
        "name": "B",
        "email": "b@x.cn",
        "phone": "+8613900139000",
        "tags": ["新客户", "重点客户"],
        "id_number": "11010519491231002X",
        "total_spend": Decimal(7),
    }
    assert merge_customer_values(keep, merge) == {
        "email": "b@x.cn",
        "tags": ["重点客户", "新客户"],
    }


def test_field_error_maps_to_bad_user_input_extensions() -> None:
    error = FieldError("region", Rule.VOCABULARY, "unknown", ["北京"])
    assert error.as_extensions() == {
        "code": "BAD_USER_INPUT",
        "field": "region",
        "rule": "vocabulary",
        "suggestions": ["北京"],
    }
