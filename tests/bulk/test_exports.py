"""Exports through GraphQL and GET /exports/{token}: policy, audit, one-time URLs, formats."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bulk.conftest import (
    EXPORT_CUSTOMERS,
    GraphQLClient,
    csv_bytes,
    csv_rows,
    download,
    export,
    upload,
)
from tests.graphql.conftest import error_codes, forbidden_fields

CUSTOMERS_AS_SEEN = """
query { customers(first: 500) { totalCount nodes { id name phone email department { id name } } } }
"""


async def _seen(gql: GraphQLClient, username: str) -> dict[str, dict[str, Any]]:
    body = await gql.query(username, CUSTOMERS_AS_SEEN)
    return {node["id"]: node for node in body["data"]["customers"]["nodes"]}


async def test_manager_export_has_the_rows_and_row_dependent_masks_of_a_read(gql):
    seen = await _seen(gql, "bob")
    result = await export(gql, "bob", EXPORT_CUSTOMERS, {}, "exportCustomers")
    rows = csv_rows((await download(gql, "bob", result["url"])).content)

    assert result["rowCount"] == len(rows) == len(seen)
    assert {row["id"] for row in rows} == set(seen)
    for row in rows:
        read = seen[row["id"]]
        # phone and email only on the manager's own department, exactly as a read shows them
        assert (row["phone"].lstrip("'") or None) == read["phone"]
        assert (row["email"] or None) == read["email"]
    assert any(row["phone"] for row in rows) and any(not row["phone"] for row in rows)


async def test_fields_the_caller_may_not_export_are_left_out_and_named(gql):
    fields = ["name", "totalSpend", "idNumber", "creditCode", "region"]
    result = await export(gql, "bob", EXPORT_CUSTOMERS, {"fields": fields}, "exportCustomers")
    rows = csv_rows((await download(gql, "bob", result["url"])).content)

    assert sorted(result["omittedFields"]) == ["creditCode", "idNumber", "totalSpend"]
    assert result["fields"] == ["name", "region"]
    assert list(rows[0]) == ["name", "region"]


async def test_roles_without_export_are_refused(gql):
    for username in ("alice", "carol", "dave", "erin"):
        body = await gql.query(username, EXPORT_CUSTOMERS, {})
        assert body["data"]["exportCustomers"] is None
        assert error_codes(body) == ["FORBIDDEN"], username
        assert forbidden_fields(body) == {"Mutation.exportCustomers"}


async def test_filter_on_a_field_not_readable_everywhere_is_refused(gql):
    body = await gql.query("bob", EXPORT_CUSTOMERS, {"filter": {"email": "a@b.cn"}})
    assert error_codes(body) == ["FORBIDDEN"]
    assert forbidden_fields(body) == {"Customer.email"}


async def test_unknown_or_connection_fields_are_bad_input(gql):
    for fields in (["name", "nope"], ["contacts"], []):
        body = await gql.query("bob", EXPORT_CUSTOMERS, {"fields": fields})
        assert error_codes(body) == ["BAD_USER_INPUT"], fields


async def test_export_writes_one_audit_event_with_filter_fields_count_and_hash(
    gql, demo_engine: AsyncEngine
):
    variables = {"filter": {"region": "北京"}, "fields": ["name", "region", "phone"]}
    result = await export(gql, "bob", EXPORT_CUSTOMERS, variables, "exportCustomers")
    content = (await download(gql, "bob", result["url"])).content
    async with demo_engine.connect() as connection:
        events = (
            await connection.execute(
                text(
                    "SELECT actor, resource_type, fields, changes FROM audit_events "
                    "WHERE action = 'EXPORT' AND changes->>'exportId' = :id"
                ),
                {"id": result["id"]},
            )
        ).all()
    assert len(events) == 1
    actor, resource, fields, changes = events[0]
    assert (actor, resource, sorted(fields)) == ("bob", "customer", ["name", "phone", "region"])
    assert changes["filter"] == {"region": "北京"}
    assert changes["rowCount"] == result["rowCount"]
    assert changes["sha256"] == result["sha256"] == hashlib.sha256(content).hexdigest()


async def test_download_url_works_once_and_only_for_its_principal(gql):
    result = await export(gql, "bob", EXPORT_CUSTOMERS, {"fields": ["name"]}, "exportCustomers")
    url = result["url"]

    assert (await download(gql, None, url)).status_code == 401
    assert (await download(gql, "carol", url)).status_code == 404
    first = await download(gql, "bob", url)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/csv")
    assert (await download(gql, "bob", url)).status_code == 404
    assert (await download(gql, "bob", url[:-4] + "abcd")).status_code == 404


async def test_expired_download_url_is_gone(gql, demo_engine: AsyncEngine):
    result = await export(gql, "bob", EXPORT_CUSTOMERS, {"fields": ["name"]}, "exportCustomers")
    async with demo_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE export_files SET expires_at = now() - interval '1 second' "
                "WHERE id = CAST(:id AS uuid)"
            ),
            {"id": result["id"]},
        )
    assert (await download(gql, "bob", result["url"])).status_code == 404


async def test_expiry_is_minutes_away(gql):
    import datetime as dt

    result = await export(gql, "bob", EXPORT_CUSTOMERS, {"fields": ["name"]}, "exportCustomers")
    expires = dt.datetime.fromisoformat(result["expiresAt"])
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(0) < left <= dt.timedelta(minutes=10)


async def test_formula_cells_are_neutralised_in_csv_and_xlsx(gql):
    hostile = ['=HYPERLINK("http://x")测试', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]
    names = [f"{prefix}公式客户" for prefix in hostile]
    rows = [["名称", "类型", "电话", "地址"]]
    rows += [[name, "个人", f"1380013{8100 + i}", "=1+1"] for i, name in enumerate(names)]
    job = (await upload(gql, "alice", csv_bytes(rows), "formulas.csv", dry_run=False)).json()
    assert job["data"]["importCustomers"]["writtenRows"] == 4, job

    fields = ["name", "address"]
    for prefix, name in zip(hostile, names, strict=True):
        variables = {"filter": {"namePrefix": prefix}, "fields": fields}
        csv_result = await export(gql, "bob", EXPORT_CUSTOMERS, variables, "exportCustomers")
        exported = csv_rows((await download(gql, "bob", csv_result["url"])).content)
        assert [row["name"] for row in exported] == ["'" + name]
        assert exported[0]["address"] == "'=1+1"

        variables["format"] = "XLSX"
        xlsx_result = await export(gql, "bob", EXPORT_CUSTOMERS, variables, "exportCustomers")
        content = (await download(gql, "bob", xlsx_result["url"])).content
        sheet = load_workbook(io.BytesIO(content)).worksheets[0]
        cells = list(sheet.iter_rows(min_row=2))
        assert [(c.value, c.data_type) for c in cells[0]] == [
            ("'" + name, "s"),
            ("'=1+1", "s"),
        ]


async def test_xlsx_export_holds_the_same_rows_as_csv(gql):
    fields = ["id", "name", "tags", "phone", "createdAt"]
    as_csv = await export(gql, "bob", EXPORT_CUSTOMERS, {"fields": fields}, "exportCustomers")
    csv_content = csv_rows((await download(gql, "bob", as_csv["url"])).content)
    variables = {"fields": fields, "format": "XLSX"}
    as_xlsx = await export(gql, "bob", EXPORT_CUSTOMERS, variables, "exportCustomers")
    response = await download(gql, "bob", as_xlsx["url"])
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert list(table[0]) == fields
    assert [[v or "" for v in row] for row in table[1:]] == [
        [row[f] for f in fields] for row in csv_content
    ]


async def test_contacts_opportunities_and_tickets_export_with_the_same_rules(gql):
    cases = {
        "exportContacts": ("ContactFilter", ["customer", "name", "title", "phone"]),
        "exportOpportunities": ("OpportunityFilter", ["customer", "name", "stage", "amount"]),
        "exportTickets": ("TicketFilter", ["customer", "title", "status", "priority"]),
    }
    connection = {"exportContacts": "contacts", "exportOpportunities": "opportunities",
                  "exportTickets": "tickets"}  # fmt: skip
    for name, (filter_type, fields) in cases.items():
        mutation = (
            f"mutation($f: [String!]) {{ {name}(fields: $f) "
            "{ id rowCount url omittedFields fields } }"
        )
        result = await export(gql, "bob", mutation, {"f": fields}, name)
        rows = csv_rows((await download(gql, "bob", result["url"])).content)
        total = await gql.query("bob", f"{{ {connection[name]} {{ totalCount }} }}")
        assert result["rowCount"] == len(rows) == total["data"][connection[name]]["totalCount"]
        assert all(row["customer"] for row in rows)
        body = await gql.query("alice", mutation, {"f": fields})
        assert error_codes(body) == ["FORBIDDEN"], (name, filter_type)


async def test_exported_segment_and_version_are_those_of_a_read(gql):
    """`segment` is computed set-based for an export (the won deals grouped once and joined):
    each customer's value is the one the correlated read gives; numbers stay numbers in XLSX."""
    body = await gql.query("bob", "{ customers(first: 500) { nodes { id segment version } } }")
    seen = {node["id"]: node for node in body["data"]["customers"]["nodes"]}
    fields = ["id", "segment", "version"]
    as_csv = await export(gql, "bob", EXPORT_CUSTOMERS, {"fields": fields}, "exportCustomers")
    rows = csv_rows((await download(gql, "bob", as_csv["url"])).content)
    assert len(rows) == len(seen)
    assert {row["id"]: row["segment"] for row in rows} == {k: v["segment"] for k, v in seen.items()}
    assert len({row["segment"] for row in rows}) > 1  # more than NO_PURCHASE alone

    variables = {"fields": fields, "format": "XLSX"}
    as_xlsx = await export(gql, "bob", EXPORT_CUSTOMERS, variables, "exportCustomers")
    content = (await download(gql, "bob", as_xlsx["url"])).content
    table = list(load_workbook(io.BytesIO(content), read_only=True).worksheets[0].values)
    assert {row[0]: row[2] for row in table[1:]} == {k: v["version"] for k, v in seen.items()}
    assert all(type(row[2]) is int for row in table[1:])
