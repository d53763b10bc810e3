"""Which column of an uploaded table fills which customer field.

Headers are matched after `validation.text.fold` (width, case, spaces and separators ignored),
in Chinese or English, so "客户名称", "名称", "Name" and "ＮＡＭＥ" all fill `name`. A caller's
explicit mapping wins over the built-in names; a column mapped to nothing is ignored and the
report says so, because silently dropping a column someone filled in would lose data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bulk.sources import FileRejectedError, Problem
from validation.text import fold

REQUIRED_COLUMNS = ("name",)

CUSTOMER_HEADERS: Mapping[str, tuple[str, ...]] = {
    "name": ("名称", "客户名称", "客户", "公司名称", "企业名称", "单位名称", "姓名", "customer",
             "customer name", "company"),
    "kind": ("类型", "客户类型", "type", "customer type"),
    "industry": ("行业", "所属行业", "行业类别"),
    "region": ("地区", "区域", "省份", "所在地区", "所在地", "province"),
    "level": ("等级", "客户等级", "级别", "grade"),
    "source": ("来源", "客户来源", "渠道", "获客渠道", "channel"),
    "tags": ("标签", "tag"),
    "creditCode": ("统一社会信用代码", "社会信用代码", "信用代码", "credit code", "uscc"),
    "phone": ("电话", "手机", "手机号", "手机号码", "联系电话", "电话号码", "mobile", "tel",
              "telephone"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "邮件", "e-mail", "mail"),
    "idNumber": ("身份证号", "身份证", "身份证号码", "证件号码", "id number"),
    "address": ("地址", "详细地址", "联系地址", "通讯地址"),
    "totalSpend": ("消费总额", "累计消费", "total spend"),
}  # fmt: skip

# columns of our own exports that an import cannot set: ids and times are the database's
EXPORT_ONLY = ("id", "owner", "department", "createdAt", "updatedAt", "lastInteractionAt")


CUSTOM_COLUMN = "cf."


def is_custom(name: str) -> bool:
    """A custom field's column, `cf.<key>`; whether the key exists the import's check says."""
    return name.startswith(CUSTOM_COLUMN) and len(name) > len(CUSTOM_COLUMN)


def _index(headers: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    index: dict[str, str] = {}
    for field, aliases in headers.items():
        for spelling in (field, *aliases):
            index[fold(spelling)] = field
    return index


_CUSTOMER_INDEX = _index(CUSTOMER_HEADERS)


@dataclass(frozen=True)
class ColumnMap:
    """Column position → field, and the headers that fill nothing."""

    fields: tuple[tuple[int, str], ...]
    ignored: tuple[str, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field for _, field in self.fields)

    def record(self, cells: Sequence[object]) -> dict[str, object]:
        """One row as field → raw cell (missing trailing cells are empty)."""
        return {field: cells[i] if i < len(cells) else None for i, field in self.fields}


def map_columns(
    header: Sequence[str], mapping: Mapping[str, str | None] | None = None
) -> ColumnMap:
    """Match a header row to customer fields, or raise `FileRejectedError` saying what is wrong."""
    explicit = {fold(key): value for key, value in (mapping or {}).items()}
    for target in explicit.values():
        if target is not None and target not in CUSTOMER_HEADERS and not is_custom(target):
            raise FileRejectedError(
                Problem.MISSING_COLUMNS,
                f"mapping names {target!r}, which is not an importable field "
                f"({', '.join(CUSTOMER_HEADERS)})",
            )
    fields: list[tuple[int, str]] = []
    ignored: list[str] = []
    taken: dict[str, str] = {}
    for position, title in enumerate(header):
        key = fold(title)
        if not key:
            continue
        field = explicit[key] if key in explicit else _CUSTOMER_INDEX.get(key)
        if field is None and is_custom(title.strip()):
            field = title.strip()  # `cf.<key>` as our exports write it; keys are case-sensitive
        if field is None:
            ignored.append(title)
            continue
        if field in taken:
            raise FileRejectedError(
                Problem.MISSING_COLUMNS,
                f"columns {taken[field]!r} and {title!r} both fill {field}; map one of them",
            )
        taken[field] = title
        fields.append((position, field))
    missing = [field for field in REQUIRED_COLUMNS if field not in taken]
    if missing:
        names = "; ".join(f"{f} ({', '.join(CUSTOMER_HEADERS[f][:3])})" for f in missing)
        raise FileRejectedError(Problem.MISSING_COLUMNS, f"required columns missing: {names}")
    return ColumnMap(tuple(fields), tuple(ignored))
