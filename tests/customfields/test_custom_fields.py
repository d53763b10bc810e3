"""Custom fields end to end: an admin defines them, a rep writes them, policy guards each key."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.settings import Settings
from schema.node import from_global_id
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

DEFINE = """mutation($input: CustomFieldInput!) { defineCustomField(input: $input) {
  resource key label type options required sensitive unique } }"""
ADD_POLICY = """mutation($rule: PolicyRuleInput!) { addPolicy(rule: $rule) { resource } }"""
CREATE = """mutation($input: CustomerInput!) { createCustomer(input: $input) {
  id name customFields } }"""
UPDATE = """mutation($id: ID!, $input: CustomerPatch!) { updateCustomer(id: $id, input: $input) {
  id customFields } }"""


def customer(name: str, **custom: Any) -> dict[str, Any]:
    return {"name": name, "kind": "COMPANY", "region": "上海", "industry": "制造业",
            "customFields": custom}  # fmt: skip


async def define(cf: GraphQLClient, **input: Any) -> dict[str, Any]:
    body = await cf.query("admin", DEFINE, {"input": input})
    assert "errors" not in body, body
    return body["data"]["defineCustomField"]  # type: ignore[no-any-return]


async def allow(cf: GraphQLClient, role: str, resource: str, action: str, scope: str) -> None:
    rule = {"role": role, "department": "*", "resource": resource, "action": action,
            "scope": scope}  # fmt: skip
    body = await cf.query("admin", ADD_POLICY, {"rule": rule})
    assert "errors" not in body, body


@pytest.fixture(scope="module")
async def fields(cf_app: Any) -> None:
    """contractTier (sensitive CHOICE, named for reps only), wechat (TEXT, unique), seats."""
    import httpx

    from tests.customfields.conftest import _TOKENS

    transport = httpx.ASGITransport(app=cf_app, client=("127.0.0.1", 50003))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        cf = GraphQLClient(http, _TOKENS)
        await define(cf, resource="customer", key="contractTier", type="CHOICE",
                     options=["gold", "silver"], sensitive=True, label="合同等级")  # fmt: skip
        await define(cf, resource="customer", key="wechat", type="TEXT", unique=True)
        await define(cf, resource="customer", key="seats", type="NUMBER")
        for action in ("READ", "CREATE", "UPDATE"):
            await allow(cf, "sales_rep", "customer.cf.contractTier", action, "OWN")


async def test_admin_defines_a_field_and_it_is_listed(cf: GraphQLClient, fields: None) -> None:
    body = await cf.query("admin", "{ customFieldDefinitions(resource: \"customer\") { key type "
                                   "options sensitive unique label } }")  # fmt: skip
    found = {d["key"]: d for d in body["data"]["customFieldDefinitions"]}
    assert found["contractTier"] == {"key": "contractTier", "type": "CHOICE",
                                     "options": ["gold", "silver"], "sensitive": True,
                                     "unique": False, "label": "合同等级"}  # fmt: skip
    assert found["seats"]["options"] is None
    denied = await cf.query("alice", "{ customFieldDefinitions { key } }")
    assert error_codes(denied) == ["FORBIDDEN"]


async def test_rep_writes_a_sensitive_field_encrypted_at_rest_and_masked_in_audit(
    cf: GraphQLClient, fields: None, cf_engine: AsyncEngine, cf_settings: Settings
) -> None:
    body = await cf.query(
        "alice",
        CREATE,
        {"input": customer("合同测试一", contractTier="gold", wechat="wx-one", seats=12)},
    )
    assert "errors" not in body, body
    created = body["data"]["createCustomer"]
    assert created["customFields"] == {"contractTier": "gold", "wechat": "wx-one", "seats": 12}
    pk = int(from_global_id(created["id"])[1])
    async with cf_engine.connect() as connection:
        raw, data_key = (
            await connection.execute(
                text("SELECT custom_fields, data_key FROM customers WHERE id = :i"), {"i": pk}
            )  # fmt: skip
        ).one()
        assert raw["wechat"] == "wx-one" and raw["seats"] == 12
        assert raw["contractTier"] != "gold" and "gold" not in str(raw)
        cipher = cf_settings.field_cipher
        assert raw["contractTier"].startswith("@")  # under the customer's data key
        assert cipher.decrypt("customer.cf.contractTier", raw["contractTier"], data_key) == "gold"
        changes = (
            await connection.execute(
                text("SELECT changes FROM audit_events WHERE action = 'CREATE' "
                     "AND resource_type = 'customer' AND :i = ANY(resource_ids)"),
                {"i": str(pk)},
            )
        ).scalar_one()  # fmt: skip
    assert changes["cf.wechat"]["new"] == "wx-one"
    assert changes["cf.contractTier"]["new"] != "gold" and "gold" not in str(changes)


async def test_manager_with_no_rule_on_the_field_sees_it_forbidden_on_every_path(
    cf: GraphQLClient, fields: None
) -> None:
    query = "{ customers(first: 500) { nodes { id name customFields } } }"
    for executor in ("sql", "direct"):
        body = await cf.query("bob", query + ("" if executor == "sql" else " "))
        nodes = body["data"]["customers"]["nodes"]
        assert nodes
        assert all("contractTier" not in (n["customFields"] or {}) for n in nodes)
        assert any(n["customFields"].get("wechat") == "wx-one" for n in nodes)
        assert forbidden_fields(body) == {"Customer.cf.contractTier"}
        assert error_codes(body).count("FORBIDDEN") == 1
    for filter in ({"customField": {"key": "contractTier", "eq": "gold"}},):
        body = await cf.query("bob", "query($f: CustomerFilter) { customers(filter: $f) "
                                     "{ nodes { id } } }", {"f": filter})  # fmt: skip
        assert body["data"] is None or not body["data"]["customers"]["nodes"]
        assert forbidden_fields(body) == {"Customer.cf.contractTier"}
    body = await cf.query("bob", "{ customers(orderBy: {customField: \"contractTier\"}) "
                                 "{ nodes { id } } }")  # fmt: skip
    assert forbidden_fields(body) == {"Customer.cf.contractTier"}


async def test_validation_names_the_key(cf: GraphQLClient, fields: None) -> None:
    for custom, key in (
        ({"contractTier": "platinum"}, "customFields.contractTier"),
        ({"seats": "many"}, "customFields.seats"),
        ({"nope": 1}, "customFields.nope"),
    ):
        body = await cf.query("alice", CREATE, {"input": customer("坏输入", **custom)})
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == key


async def test_rep_filters_and_orders_by_a_field_she_may_read(
    cf: GraphQLClient, fields: None
) -> None:
    for name, seats in (("座位甲", 3), ("座位乙", 30), ("座位丙", 300)):
        body = await cf.query("alice", CREATE, {"input": customer(name, seats=seats)})
        assert "errors" not in body, body
    query = """query($f: CustomerFilter, $o: CustomerOrder) { customers(filter: $f, orderBy: $o)
      { nodes { name customFields } } }"""
    between = {"customField": {"key": "seats", "gte": 10, "lte": 100}}
    body = await cf.query("alice", query, {"f": between})
    assert [n["name"] for n in body["data"]["customers"]["nodes"]] == ["合同测试一", "座位乙"]
    among = {"customField": {"key": "seats", "in": [3, 300]}}
    body = await cf.query("alice", query, {"f": among})
    assert {n["name"] for n in body["data"]["customers"]["nodes"]} == {"座位甲", "座位丙"}
    gold = {"customField": {"key": "wechat", "eq": "wx-one"}}
    body = await cf.query("alice", query, {"f": gold})
    assert [n["name"] for n in body["data"]["customers"]["nodes"]] == ["合同测试一"]
    ordered = await cf.query("alice", query, {"o": {"customField": "seats", "direction": "DESC"},
                                               "f": {"namePrefix": "座位"}})  # fmt: skip
    assert [n["name"] for n in ordered["data"]["customers"]["nodes"]] == ["座位丙", "座位乙",
                                                                         "座位甲"]  # fmt: skip
    sensitive = {"customField": {"key": "contractTier", "eq": "gold"}}
    body = await cf.query("alice", query, {"f": sensitive})
    assert error_codes(body) == ["BAD_USER_INPUT"]  # readable, but encrypted: not comparable


async def test_permissions_and_explanations_list_custom_fields(
    cf: GraphQLClient, fields: None
) -> None:
    query = "{ me { permissions { type field read write } } }"
    alice = {(p["type"], p["field"]): p for p in
             (await cf.query("alice", query))["data"]["me"]["permissions"]}  # fmt: skip
    bob = {(p["type"], p["field"]): p for p in
           (await cf.query("bob", query))["data"]["me"]["permissions"]}  # fmt: skip
    assert alice[("Customer", "cf.contractTier")] == {
        "type": "Customer", "field": "cf.contractTier", "read": True, "write": True}  # fmt: skip
    assert bob[("Customer", "cf.contractTier")]["read"] is False
    assert bob[("Customer", "cf.seats")]["read"] is True
    explain = """query($f: String) { explainAccess(username: "bob", resource: "customer",
      action: READ, field: $f) { allowed reach } }"""
    body = await cf.query("admin", explain, {"f": "cf.contractTier"})
    assert body["data"]["explainAccess"] == {"allowed": False, "reach": "NONE"}


async def test_export_carries_custom_fields_as_columns_and_omits_denied_ones(
    cf: GraphQLClient, fields: None
) -> None:
    from tests.bulk.conftest import EXPORT_CUSTOMERS, csv_rows, download

    variables = {"fields": ["id", "name", "cf.contractTier", "cf.wechat", "cf.seats"]}
    body = await cf.query("bob", EXPORT_CUSTOMERS, variables)
    assert "errors" not in body, body
    result = body["data"]["exportCustomers"]
    assert result["omittedFields"] == ["cf.contractTier"]
    assert result["fields"] == ["id", "name", "cf.wechat", "cf.seats"]
    rows = csv_rows((await download(cf, "bob", result["url"])).content)
    by_name = {row["name"]: row for row in rows}
    assert by_name["合同测试一"]["cf.wechat"] == "wx-one"
    assert by_name["合同测试一"]["cf.seats"] == "12"
    assert all("cf.contractTier" not in row for row in rows)
    unknown = await cf.query("bob", EXPORT_CUSTOMERS, {"fields": ["cf.nope"]})
    assert error_codes(unknown) == ["BAD_USER_INPUT"]


@pytest.fixture(scope="module")
async def regional(cf_app: Any, fields: None) -> None:
    """bob reads `seats` only on customers of his own department: a row-dependent mask."""
    import httpx

    from tests.customfields.conftest import _TOKENS

    transport = httpx.ASGITransport(app=cf_app, client=("127.0.0.1", 50004))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        cf = GraphQLClient(http, _TOKENS)
        await allow(cf, "sales_manager", "customer.cf.seats", "READ", "DEPARTMENT")
        await define(cf, resource="contact", key="badge", type="TEXT")


async def _seats_everywhere(cf_engine: AsyncEngine) -> dict[int, int]:
    """Give every customer a `seats` value; customer id → its department."""
    async with cf_engine.begin() as connection:
        await connection.execute(
            text("UPDATE customers SET custom_fields = custom_fields || "
                 "jsonb_build_object('seats', id)")
        )  # fmt: skip
        await connection.execute(
            text("UPDATE contacts SET custom_fields = jsonb_build_object('badge', 'b' || id)")
        )
        rows = await connection.execute(text("SELECT id, department_id FROM customers"))
        return {r.id: r.department_id for r in rows}


async def test_row_dependent_mask_on_a_custom_field_on_every_executor(
    cf: GraphQLClient, regional: None, cf_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    departments = await _seats_everywhere(cf_engine)
    async with cf_engine.connect() as connection:
        sales = (
            await connection.execute(text("SELECT id FROM departments WHERE name = '销售部'"))
        ).scalar_one()
    page = """{ customers(first: 500) { nodes { id customFields again: customFields
      contacts(first: 5) { nodes { customFields } } } } }"""
    general = page.replace("{ customers", "{ me { user { id } } customers", 1)
    seen: dict[str, dict[str, Any]] = {}
    for name, query in (("sql", page), ("general", general), ("direct", page)):
        if name == "direct":
            from tests.graphql.conftest import switch_off_sql

            switch_off_sql(monkeypatch)
        response = await cf.post("bob", query)
        body = response.json()
        nodes = body["data"]["customers"]["nodes"]
        if name != "general":
            assert response.headers["x-executor"] == name
        assert nodes
        for node in nodes:
            pk = int(from_global_id(node["id"])[1])
            values = node["customFields"]
            assert values == node["again"]
            if departments[pk] == sales:
                assert values["seats"] == pk
            else:
                assert "seats" not in values, f"leak of seats on {pk}"
            assert "contractTier" not in values
            assert all(c["customFields"]["badge"].startswith("b")
                       for c in node["contacts"]["nodes"])  # fmt: skip
        assert forbidden_fields(body) == {"Customer.cf.contractTier", "Customer.cf.seats"}
        assert error_codes(body).count("FORBIDDEN") == 2
        seen[name] = {n["id"]: n["customFields"] for n in nodes}
    assert seen["sql"] == seen["general"] == seen["direct"]
    # filtering and ordering on a row-dependent key need it readable on every row
    body = await cf.query("bob", "{ customers(orderBy: {customField: \"seats\"}) "
                                 "{ nodes { id } } }")  # fmt: skip
    assert forbidden_fields(body) == {"Customer.cf.seats"}


async def test_node_and_nested_paths_mask_custom_fields(cf: GraphQLClient, regional: None) -> None:
    body = await cf.query("bob", "{ customers(first: 1) { nodes { id } } }")
    first = body["data"]["customers"]["nodes"][0]["id"]
    node = await cf.query("bob", "query($id: ID!) { node(id: $id) { ... on Customer { "
                                 "customFields } } }", {"id": first})  # fmt: skip
    assert "contractTier" not in node["data"]["node"]["customFields"]
    assert "Customer.cf.contractTier" in forbidden_fields(node)
    nested = await cf.query("bob", "{ tickets(first: 5) { nodes { customer { customFields } } } }")
    for ticket in nested["data"]["tickets"]["nodes"]:
        assert "contractTier" not in (ticket["customer"] or {}).get("customFields", {})
    assert "Customer.cf.contractTier" in forbidden_fields(nested)


async def test_import_carries_cf_columns_validated_and_encrypted(
    cf: GraphQLClient, fields: None, cf_engine: AsyncEngine, cf_settings: Settings
) -> None:
    from tests.bulk.conftest import csv_bytes, upload

    content = csv_bytes([
        ["名称", "类型", "行业", "地区", "cf.contractTier", "cf.seats", "cf.wechat"],
        ["导入甲", "COMPANY", "制造业", "上海", "silver", "7", "wx-import"],
        ["导入乙", "COMPANY", "制造业", "上海", "platinum", "8", ""],
        ["导入丙", "COMPANY", "制造业", "上海", "", "many", ""],
    ])  # fmt: skip
    job = (await upload(cf, "alice", content, "cf.csv", dry_run=False)).json()
    job = job["data"]["importCustomers"]
    assert (job["writtenRows"], job["rejectedRows"]) == (1, 2), job
    assert {(i["row"], i["field"]) for i in job["issues"]} == {
        (3, "customFields.contractTier"), (4, "customFields.seats")}  # fmt: skip
    async with cf_engine.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT custom_fields FROM customers WHERE name = '导入甲'")
            )
        ).scalar_one()
    assert stored["seats"] == 7 and stored["wechat"] == "wx-import"
    cipher = cf_settings.field_cipher
    assert cipher.decrypt("customer.cf.contractTier", stored["contractTier"]) == "silver"
    # bob may not write contractTier: the whole import is refused before any row is read
    refused = (await upload(cf, "bob", content, "cf.csv")).json()
    assert error_codes(refused) == ["FORBIDDEN"]


async def test_audit_changes_of_a_field_the_reader_may_not_read_are_left_out(
    cf: GraphQLClient, fields: None
) -> None:
    """erin (compliance) reads the trail but no customer data; with a rule on `audit`, bob
    reads it too, and sees custom field changes only where he may read the field."""
    query = """{ auditEvents(first: 500, filter: {action: "CREATE", resourceType: "customer"})
      { nodes { actor fields changes } } }"""
    body = await cf.query("erin", query)
    created = [n for n in body["data"]["auditEvents"]["nodes"] if "cf.wechat" in n["fields"]]
    assert created, "the rep's write is on the trail"
    assert all(not any(k.startswith("cf.") for k in n["changes"]) for n in created)
    assert {"Customer.cf.contractTier", "Customer.cf.wechat"} <= forbidden_fields(body)
    assert all("name" in n["changes"] for n in created)  # built-in changes stay as they were
    await allow(cf, "sales_manager", "audit", "READ", "ALL")
    body = await cf.query("bob", query)
    created = [n for n in body["data"]["auditEvents"]["nodes"] if "cf.wechat" in n["fields"]]
    assert created and all("cf.contractTier" not in n["changes"] for n in created)
    assert any(n["changes"].get("cf.wechat", {}).get("new") == "wx-one" for n in created)
    assert "Customer.cf.contractTier" in forbidden_fields(body)
    assert "Customer.cf.wechat" not in forbidden_fields(body)


async def test_compiled_read_decrypts_a_sensitive_field_for_a_named_reader(
    cf: GraphQLClient, fields: None
) -> None:
    query = '{ customers(first: 500, filter: {namePrefix: "合同测试"}) { nodes { customFields } } }'
    response = await cf.post("alice", query)
    assert response.headers["x-executor"] == "sql"
    nodes = response.json()["data"]["customers"]["nodes"]
    assert len(nodes) == 1
    assert nodes[0]["customFields"]["contractTier"] == "gold"  # decrypted after the statement
    assert nodes[0]["customFields"]["wechat"] == "wx-one"


async def test_a_unique_custom_field_makes_a_duplicate(cf: GraphQLClient, fields: None) -> None:
    body = await cf.query("alice", CREATE, {"input": customer("同微信", wechat="wx-one")})
    assert error_codes(body) == ["DUPLICATE"], body
    duplicates = body["errors"][0]["extensions"]["duplicates"]
    assert [d["name"] for d in duplicates] == ["合同测试一"]
    assert duplicates[0]["reasons"] == ["CUSTOM_FIELD"]
    forcing = CREATE.replace("input: $input)", "input: $input, force: true)")
    forced = await cf.query("alice", forcing, {"input": customer("同微信", wechat="wx-one")})
    assert "errors" not in forced, forced
