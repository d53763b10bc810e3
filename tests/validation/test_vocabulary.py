from __future__ import annotations

import json
from importlib import resources

import pytest

from db.models.vocabulary import VOCABULARIES
from validation.errors import FieldError, Rule
from validation.vocabulary import (
    Term,
    Vocabulary,
    VocabularyConflictError,
    VocabularyName,
    default_vocabularies,
)


@pytest.mark.parametrize(
    "typed",
    ["北京", "北京市", "BJ", "bj", "Beijing", "beijing", " BEI JING ", "ＢＪ", "CN-BJ", "京"],
)
def test_every_spelling_of_beijing_is_one_canonical_value(typed: str) -> None:
    assert default_vocabularies().region.canonical(typed) == "北京"


@pytest.mark.parametrize(
    ("vocabulary", "typed", "canonical"),
    [
        ("region", "Inner Mongolia", "内蒙古"),
        ("region", "广西壮族自治区", "广西"),
        ("region", "Shaanxi", "陕西"),
        ("region", "Shanxi", "山西"),
        ("region", "HK", "香港"),
        ("region", "East China", "华东"),
        ("industry", "IT", "信息技术"),
        ("industry", "互联网", "信息技术"),
        ("industry", "Manufacturing", "制造业"),
        ("industry", "信息传输、软件和信息技术服务业", "信息技术"),
        ("source", "WeChat", "社交媒体"),
        ("source", "trade show", "展会"),
        ("source", "Referral", "转介绍"),
        ("source", "cold call", "电话营销"),
        ("tag", "vip", "重点客户"),
        ("tag", "国企", "国有企业"),
    ],
)
def test_aliases_map_to_canonical_values(vocabulary: str, typed: str, canonical: str) -> None:
    assert default_vocabularies()[vocabulary].canonical(typed) == canonical


def test_unknown_value_lists_the_closest_allowed_values() -> None:
    with pytest.raises(FieldError) as caught:
        default_vocabularies().region.canonical("Bejing")
    error = caught.value
    assert (error.field, error.rule) == ("region", Rule.VOCABULARY)
    assert error.suggestions[0] == "北京"
    assert "北京" in error.message


def test_unknown_source_suggests_the_channel_meant() -> None:
    with pytest.raises(FieldError) as caught:
        default_vocabularies().source.canonical("trade shows")
    assert caught.value.suggestions[0] == "展会"


def test_suggestions_are_never_empty_for_a_non_empty_vocabulary() -> None:
    with pytest.raises(FieldError) as caught:
        default_vocabularies().industry.canonical("zzzzqqq")
    assert caught.value.suggestions


def test_tag_errors_are_reported_on_the_tags_field() -> None:
    with pytest.raises(FieldError) as caught:
        default_vocabularies().tag.canonical("nonsense tag")
    assert caught.value.field == "tags"


def test_two_terms_claiming_one_spelling_are_refused() -> None:
    with pytest.raises(VocabularyConflictError):
        Vocabulary.of(VocabularyName.REGION, [Term("北京", ("BJ",)), Term("上海", ("bj",))])


def test_vocabulary_names_match_the_database_constraint() -> None:
    assert tuple(name.value for name in VocabularyName) == VOCABULARIES


def test_built_in_file_has_every_vocabulary_and_34_provinces() -> None:
    raw = json.loads(resources.files("validation").joinpath("vocabularies.json").read_text())
    assert {name.value for name in VocabularyName} <= raw.keys()
    provinces = [item for item in raw["region"] if "division" in item]
    assert len(provinces) == 34
    assert len(default_vocabularies().industry.terms) == 20  # GB/T 4754-2017 sections A-T


def test_additions_merge_aliases_into_an_existing_term() -> None:
    merged = default_vocabularies().with_additions(
        {VocabularyName.REGION: [Term("广东", ("深圳", "Shenzhen"))]}, (1, 1)
    )
    assert merged.region.canonical("shenzhen") == "广东"
    assert merged.region.canonical("粤") == "广东"
    assert merged.version == (1, 1)
    assert len(merged.region.terms) == len(default_vocabularies().region.terms)
