"""Company-name comparison for duplicate detection ("a very similar name in the same region").

`normalise_company_name` reduces a name to its distinctive part: width and case folded, legal
form (有限公司, Co., Ltd., Inc. …), a leading or bracketed place name (北京…, …（深圳）…) and
punctuation removed. "北京字节跳动科技有限公司" and "字节跳动科技（北京）有限公司" both become
"字节跳动科技". The place is dropped because duplicates are only looked for within one region.
`name_similarity` compares the reduced forms, 0.0 (unrelated) to 1.0 (the same).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from rapidfuzz import fuzz

from validation.vocabulary import VocabularyName, default_vocabularies

# above this the resolvers treat two names in one region as a likely duplicate
DUPLICATE_NAME_THRESHOLD = 0.85

# longest first, so 股份有限公司 is removed whole rather than leaving 股份
_LEGAL_FORMS_ZH = (
    "集团股份有限公司",
    "集团有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "控股集团",
    "集团公司",
    "集团",
    "控股",
    "总公司",
    "公司",
)
_LEGAL_FORMS_EN = re.compile(
    r"\b(co|company|corp|corporation|inc|incorporated|ltd|limited|llc|plc|gmbh|ag|sa|bv|"
    r"group|holdings?)\b",
)
_BRACKETED = re.compile(r"[(\[{（【][^)\]}）】]*[)\]}）】]")
_NOT_WORD = re.compile(r"[\W_]+")
_PLACE_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")


# cities that often lead a company name (provincial capitals, 计划单列市, large prefectures);
# only used to strip a prefix for comparison, never to infer the region
_CITIES = (
    "石家庄", "太原", "呼和浩特", "沈阳", "大连", "长春", "哈尔滨", "南京", "苏州", "无锡",
    "常州", "杭州", "宁波", "温州", "合肥", "芜湖", "福州", "厦门", "南昌", "济南", "青岛",
    "烟台", "郑州", "武汉", "长沙", "广州", "深圳", "东莞", "佛山", "珠海", "南宁", "海口",
    "成都", "贵阳", "昆明", "拉萨", "西安", "兰州", "西宁", "银川", "乌鲁木齐", "唐山", "保定",
)  # fmt: skip


@cache
def _place_names() -> tuple[str, ...]:
    """Province-level and big-city names that companies prefix, longest first."""
    names: set[str] = set(_CITIES)
    for term in default_vocabularies()[VocabularyName.REGION].terms:
        for spelling in term.spellings():
            if len(spelling) >= 2 and not spelling.isascii():
                names.add(spelling)
    return tuple(sorted(names, key=len, reverse=True))


def normalise_company_name(name: str) -> str:
    """The distinctive part of a company name, for comparison only (never stored or shown)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    # 分公司 (a branch) is another legal entity: keep it apart from its head office
    branch = "分公司" in text
    text = _BRACKETED.sub(" ", text)
    stripped = True
    while stripped:
        stripped = False
        compact = text.rstrip(" .,")
        for form in _LEGAL_FORMS_ZH:
            if compact.endswith(form) and len(compact) > len(form):
                text, stripped = compact[: -len(form)], True
                break
    text = _LEGAL_FORMS_EN.sub(" ", text)
    for place in _place_names():
        if text.startswith(place) and len(text) > len(place) + 1:
            text = text[len(place) :]
            for suffix in _PLACE_SUFFIXES:
                if text.startswith(suffix):
                    text = text[len(suffix) :]
            break
    text = _NOT_WORD.sub("", text)
    return text + "分公司" if branch and not text.endswith("分") else text


def name_similarity(a: str, b: str) -> float:
    """Similarity of two company names in [0, 1] after `normalise_company_name`."""
    left, right = normalise_company_name(a), normalise_company_name(b)
    if not left or not right:
        return 1.0 if left == right and a.strip() and b.strip() else 0.0
    if left == right:
        return 1.0
    return fuzz.ratio(left, right) / 100.0


def is_similar_name(a: str, b: str, threshold: float = DUPLICATE_NAME_THRESHOLD) -> bool:
    return name_similarity(a, b) >= threshold
