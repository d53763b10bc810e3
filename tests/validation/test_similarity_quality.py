from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from validation.quality import quality
from validation.similarity import (
    DUPLICATE_NAME_THRESHOLD,
    is_similar_name,
    name_similarity,
    normalise_company_name,
)


@pytest.mark.parametrize(
    ("name", "reduced"),
    [
        ("北京字节跳动科技有限公司", "字节跳动科技"),
        ("字节跳动科技（北京）有限公司", "字节跳动科技"),
        ("上海浦东发展银行股份有限公司", "浦东发展银行"),
        ("阿里巴巴集团控股有限公司", "阿里巴巴"),
        ("Acme Co., Ltd.", "acme"),
        ("ＡＣＭＥ　Ｉｎｃ．", "acme"),
        ("Northwind Holdings Ltd.", "northwind"),
    ],
)
def test_names_are_reduced_to_their_distinctive_part(name: str, reduced: str) -> None:
    assert normalise_company_name(name) == reduced


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("北京字节跳动科技有限公司", "字节跳动科技（北京）有限公司"),
        ("Acme Co., Ltd.", "ACME Inc"),
        ("深圳市腾讯计算机系统有限公司", "腾讯计算机系统有限责任公司"),
        ("杭州海康威视数字技术股份有限公司", "海康威视数字技术有限公司"),
    ],
)
def test_duplicates_score_above_the_threshold(a: str, b: str) -> None:
    assert name_similarity(a, b) >= DUPLICATE_NAME_THRESHOLD
    assert is_similar_name(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("华为技术有限公司", "中兴通讯股份有限公司"),
        ("北京某某科技有限公司", "北京某某科技有限公司上海分公司"),  # a branch is its own entity
        ("Apex Ltd.", "Vertex Ltd."),
        ("有限公司", "华为技术有限公司"),
    ],
)
def test_different_companies_score_below_the_threshold(a: str, b: str) -> None:
    assert name_similarity(a, b) < DUPLICATE_NAME_THRESHOLD


def test_similarity_is_symmetric_and_bounded() -> None:
    a, b = "腾讯科技(深圳)有限公司", "腾迅科技有限公司"
    assert name_similarity(a, b) == name_similarity(b, a)
    assert 0.0 <= name_similarity(a, b) <= 1.0


NOW = datetime(2026, 11, 23, tzinfo=UTC)
COMPLETE_COMPANY = {
    "kind": "COMPANY",
    "name": "某公司",
    "industry": "制造业",
    "region": "上海",
    "creditCode": "91350100M000100Y43",
    "phone": "+862168888888",
    "email": "info@x.cn",
    "address": "上海市浦东新区世纪大道 1 号",
    "source": "展会",
    "tags": ["重点客户"],
    "level": "B",
    "updatedAt": NOW - timedelta(days=10),
}


def test_complete_current_accurate_company_scores_100() -> None:
    assert quality(COMPLETE_COMPANY, NOW) == quality(
        {k if k != "creditCode" else "credit_code": v for k, v in COMPLETE_COMPANY.items()}, NOW
    )
    result = quality(COMPLETE_COMPANY, NOW)
    assert (result.score, result.missing, result.stale, result.invalid) == (100, [], False, [])


def test_missing_fields_are_listed_required_first() -> None:
    result = quality({**COMPLETE_COMPANY, "industry": None, "address": ""}, NOW)
    assert result.missing == ["industry", "address"]
    assert result.score == 100 - 10 - 4


def test_level_a_goes_stale_after_30_days_others_after_90() -> None:
    forty_days = NOW - timedelta(days=40)
    assert quality({**COMPLETE_COMPANY, "updatedAt": forty_days, "level": "A"}, NOW).stale
    assert not quality({**COMPLETE_COMPANY, "updatedAt": forty_days, "level": "B"}, NOW).stale
    old = quality({**COMPLETE_COMPANY, "updatedAt": NOW - timedelta(days=91)}, NOW)
    assert old.stale and old.score == 75


def test_invalid_stored_values_lower_accuracy() -> None:
    result = quality({**COMPLETE_COMPANY, "phone": "12345", "region": "Shanghai"}, NOW)
    assert result.invalid == ["phone", "region"]
    assert result.score == 100 - round(25 * 2 / 7)


def test_person_needs_phone_or_email() -> None:
    person = {"kind": "PERSON", "name": "张三", "updatedAt": NOW}
    result = quality(person, NOW)
    assert result.missing[:2] == ["phone", "email"]
    assert result.score == 50 - 15 - 20 + 25 + 25 + 0
