"""统一社会信用代码 (unified social credit code) per GB 32100-2015.

Layout of the 18 characters, from the standard:

    1      登记管理部门代码  registration authority (9 = 工商 market regulation, 5 = 民政 …)
    2      机构类别代码      organisation category within that authority (91 = enterprise …)
    3-8    登记管理机关行政区划码  GB/T 2260 division code of the registering office
    9-17   主体标识码        the organisation code (GB 11714-1997), with its own check character
    18     校验码            check character over positions 1-17, modulo 31

Authorities other than 1, 5, 9 and Y and their categories were assigned after 2015 by the
national standards body; they are listed in `AUTHORITY_CATEGORIES`.

The check character (position 18) is python-stdnum's (`stdnum.cn.uscc`); the structure checks
and the messages, which say which rule failed and where, are ours: stdnum answers only
"invalid format" or "invalid checksum".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stdnum.cn import uscc

from validation.errors import FieldError, Rule
from validation.text import compact_code

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z: they read like 1, 0, 5, U, 2
_VALUE = {char: index for index, char in enumerate(CHARSET)}
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997

# position 1 → allowed position 2, with what they mean (for messages)
AUTHORITY_CATEGORIES: dict[str, tuple[str, dict[str, str]]] = {
    "1": ("机构编制", {"1": "机关", "2": "事业单位", "3": "中央编办直管群众团体", "9": "其他"}),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {
            "1": "律师执业机构",
            "2": "公证处",
            "3": "基层法律服务所",
            "4": "司法鉴定机构",
            "5": "仲裁委员会",
            "9": "其他",
        },
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {"1": "外国旅游部门常驻代表机构", "2": "港澳台旅游部门常驻内地代表机构", "9": "其他"},
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": (
        "农业",
        {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    ),
    "Y": ("其他", {"1": "其他"}),
}

# first two digits of a GB/T 2260 division code; 10 is used by national-level registrations
PROVINCE_PREFIXES = frozenset(
    f"{prefix}"
    for prefix in (10, 11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42)
    + (43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82)
)

FIELD = "creditCode"


@dataclass(frozen=True)
class CreditCode:
    """A verified code, split into the parts the standard names."""

    code: str
    authority: str
    category: str
    division: str
    organisation_code: str

    @property
    def authority_name(self) -> str:
        return AUTHORITY_CATEGORIES[self.authority][0]

    @property
    def category_name(self) -> str:
        return AUTHORITY_CATEGORIES[self.authority][1][self.category]


def check_character(first17: str) -> str:
    """The 18th character for 17 leading characters (all from `CHARSET`)."""
    if len(first17) != 17 or any(char not in _VALUE for char in first17):
        raise ValueError("17 characters of the GB 32100 character set are needed")
    return str(uscc.calc_check_digit(first17))


def organisation_check_character(first8: str) -> str:
    """GB 11714 check character of an organisation code body: a digit or X."""
    total = sum(
        (int(char) if char.isdigit() else ord(char) - ord("A") + 10) * weight
        for char, weight in zip(first8, ORG_CODE_WEIGHTS, strict=True)
    )
    remainder = 11 - total % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def parse_credit_code(value: Any, *, field: str = FIELD) -> CreditCode:
    """Verify a code and return its parts; raises `FieldError` naming the first broken rule."""
    code = compact_code(value, field)
    if len(code) != 18:
        raise FieldError(field, Rule.LENGTH, f"must be 18 characters, got {len(code)}")
    bad = sorted({char for char in code if char not in _VALUE})
    if bad:
        raise FieldError(
            field,
            Rule.FORMAT,
            f"contains characters not allowed by GB 32100 ({''.join(bad)}); "
            "allowed are digits and letters except I, O, S, V, Z",
        )
    authority, category, division, organisation = code[0], code[1], code[2:8], code[8:17]
    if authority not in AUTHORITY_CATEGORIES:
        raise FieldError(
            field,
            Rule.STRUCTURE,
            f"registration authority code {authority!r} (position 1) is not assigned",
        )
    authority_name, categories = AUTHORITY_CATEGORIES[authority]
    if category not in categories:
        raise FieldError(
            field,
            Rule.STRUCTURE,
            f"organisation category {category!r} (position 2) does not exist for authority "
            f"{authority} ({authority_name}); allowed: {', '.join(sorted(categories))}",
        )
    if not division.isdigit() or division[:2] not in PROVINCE_PREFIXES:
        raise FieldError(
            field,
            Rule.STRUCTURE,
            f"positions 3-8 ({division}) must be a GB/T 2260 administrative division code",
        )
    if organisation[8] != organisation_check_character(organisation[:8]):
        raise FieldError(
            field,
            Rule.CHECKSUM,
            f"the organisation code {organisation} (positions 9-17) fails its GB 11714 check",
        )
    if code[17] != check_character(code[:17]):
        raise FieldError(field, Rule.CHECKSUM, "check character (position 18) does not match")
    return CreditCode(code, authority, category, division, organisation)


def normalise_credit_code(value: Any, *, field: str = FIELD) -> str:
    """The code in stored form (upper case, no spaces) after every check of GB 32100."""
    return parse_credit_code(value, field=field).code


def is_valid_credit_code(value: Any) -> bool:
    try:
        parse_credit_code(value)
    except FieldError:
        return False
    return True
