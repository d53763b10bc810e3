"""The pieces the HTTP tests rely on: READ ∧ EXPORT decisions, cells, encodings, headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk.cells import FORMULA_TRIGGERS, csv_cell, import_cell, neutralise, restore
from bulk.columns import map_columns
from bulk.exports import ExportDecisions
from bulk.sources import FileRejectedError, Problem, read_table
from policy.decisions import AccessDecisions
from policy.predicates import NEVER, InDepartments
from policy.principal import Principal, PrincipalKind
from policy.store import DepartmentTree, PolicySnapshot, new_enforcer
from policy.vocabulary import Resource


def _decisions(rules: list[tuple[str, ...]]) -> ExportDecisions:
    lines = [("g", "u", "r", "2", "", "", ""), *rules]
    snapshot = PolicySnapshot(
        version=1,
        enforcer=new_enforcer(lines),
        departments=DepartmentTree(parents={1: None, 2: 1, 4: 2}, names={}),
        lines=tuple(lines),
    )
    principal = Principal(kind=PrincipalKind.USER, name="u", user_id=10, department_id=2)
    return ExportDecisions(AccessDecisions(principal, snapshot))


def test_export_needs_read_and_export_on_rows_and_on_each_field():
    decisions = _decisions([
        ("p", "r", "*", "customer", "READ", "ALL", "allow"),
        ("p", "r", "*", "customer", "EXPORT", "SUBTREE", "allow"),
        ("p", "r", "*", "customer.{phone,email}", "READ", "ALL", "allow"),
        ("p", "r", "*", "customer.phone", "EXPORT", "DEPARTMENT", "allow"),
        ("p", "r", "*", "customer.address", "EXPORT", "ALL", "deny"),
    ])  # fmt: skip
    customer = Resource.CUSTOMER
    assert decisions.rows(customer) == InDepartments(frozenset({2, 4}))
    assert decisions.field(customer, "name").is_always
    # readable everywhere but exportable only in the own department: a per-row mask
    assert decisions.field(customer, "phone") == InDepartments(frozenset({2}))
    assert decisions.field(customer, "email") == NEVER  # readable, never exportable
    assert decisions.field(customer, "address") == NEVER  # export denied


def test_export_without_read_exports_no_rows():
    decisions = _decisions([("p", "r", "*", "customer", "EXPORT", "ALL", "allow")])
    assert decisions.rows(Resource.CUSTOMER) == NEVER


@pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
def test_every_formula_trigger_is_neutralised_and_restored(trigger: str):
    text = f"{trigger}1+1"
    assert neutralise(text) == "'" + text
    assert restore(neutralise(text)) == text
    assert import_cell(csv_cell(text)) == text


def test_plain_text_and_apostrophes_stay_as_they_are():
    assert neutralise("北京") == "北京"
    assert restore("'quoted") == "'quoted"
    assert import_cell(13800138000) == "13800138000"
    assert import_cell(2.0) == "2"


def test_short_gbk_file_is_read_as_gb18030(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_bytes("名称,地区\n王,北京\n".encode("gbk"))
    table = read_table(path, "a.csv")
    assert table.encoding == "gb18030"
    assert list(table.rows()) == [(2, ["王", "北京"])]


def test_headers_in_chinese_and_english_with_mapping_and_conflicts():
    columns = map_columns(["客户名称", "Phone", "E-Mail", "统一社会信用代码", "备注"])
    assert columns.field_names == ("name", "phone", "email", "creditCode")
    assert columns.ignored == ("备注",)
    with pytest.raises(FileRejectedError) as twice:
        map_columns(["名称", "客户名称"])
    assert twice.value.problem is Problem.MISSING_COLUMNS
    with pytest.raises(FileRejectedError):
        map_columns(["全称"], {"全称": "nickname"})
