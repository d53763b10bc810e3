"""personalDataReport: one download with the person's values and every read of them."""

from __future__ import annotations

import orjson

from api.settings import Settings
from db.models import Customer as CustomerRow
from policy.custom_fields import CustomFieldType, FieldCatalog, FieldDefinition
from policy.vocabulary import Resource
from privacy.report import row_values
from tests.bulk.conftest import download
from tests.graphql.conftest import GraphQLClient, error_codes
from tests.privacy.conftest import create_person
from tests.privacy.test_consents import RECORD, customer_pk

REPORT = """
mutation($c: ID!) { personalDataReport(customerId: $c) { id rowCount url fields format sha256 } }"""
READ = """query($id: ID!) { node(id: $id) { ... on Customer { id name phone email } } }"""
ADD_CONTACT = """
mutation($input: ContactInput!) { createContact(input: $input) { id } }"""


async def test_report_holds_the_values_and_every_read_of_the_person(gql: GraphQLClient) -> None:
    customer, values = await create_person(gql)
    pk = customer_pk(customer)
    await gql.query("alice", RECORD, {"c": customer, "p": "marketing", "e": "签字 F-7"})
    contact = await gql.query(
        "alice",
        ADD_CONTACT,
        {"input": {"customerId": customer, "name": "联系人甲", "phone": "+8613912345678"}},
    )
    assert "errors" not in contact, contact
    for username in ("bob", "alice"):
        read = await gql.query(username, READ, {"id": customer})
        assert read["data"]["node"]["name"] == values["name"], read

    body = await gql.query("erin", REPORT, {"c": customer})
    assert "errors" not in body, body
    report = body["data"]["personalDataReport"]
    assert report["format"] == "JSON"
    response = await download(gql, "erin", report["url"])
    assert response.status_code == 200
    document = orjson.loads(response.content)
    assert document["customer"]["name"] == values["name"]
    assert document["customer"]["phone"] == values["phone"]
    assert document["customer"]["email"] == values["email"]
    assert [c["phone"] for c in document["contacts"]] == ["+8613912345678"]
    assert [c["purpose"] for c in document["consents"]] == ["marketing"]

    events = document["auditEvents"]
    reads = [e for e in events if e["action"] == "READ" and str(pk) in e["resource_ids"]]
    assert {"bob", "alice"} <= {e["actor"] for e in reads}, events
    actions = {(e["resource_type"], e["action"]) for e in events}
    assert {("customer", "CREATE"), ("consent", "CREATE"), ("contact", "CREATE")} <= actions
    assert report["rowCount"] == len(events)
    # the url downloads once
    assert (await download(gql, "erin", report["url"])).status_code == 404

    # handing the report out is itself an EXPORT of the customer, seen in the next report
    again = await gql.query("erin", REPORT, {"c": customer})
    second = await download(gql, "erin", again["data"]["personalDataReport"]["url"])
    later = orjson.loads(second.content)["auditEvents"]
    exports = [e for e in later if e["action"] == "EXPORT" and e["actor"] == "erin"]
    assert exports and exports[0]["changes"]["report"] == "personalData"


async def test_report_needs_read_on_privacy(gql: GraphQLClient) -> None:
    customer, _ = await create_person(gql)
    for username in ("alice", "bob", "admin"):
        body = await gql.query(username, REPORT, {"c": customer})
        assert error_codes(body) == ["FORBIDDEN"], (username, body)


def test_report_values_decrypt_sensitive_custom_fields_and_drop_blind_indexes(
    demo_settings: Settings,
) -> None:
    cipher = demo_settings.field_cipher
    wechat = FieldDefinition(Resource.CUSTOMER, "wechat", CustomFieldType.TEXT, sensitive=True)
    catalog = FieldCatalog(definitions=(wechat,))
    row = CustomerRow(
        id=7,
        name="某人",
        phone_enc=cipher.encrypt("customer.phone", "+8613812345678"),
        phone_bidx=b"x",
        custom_fields={"wechat": cipher.encrypt(wechat.cipher_label, "wx-7"), "plain": "p"},
    )
    values = row_values(row, cipher, catalog)
    assert values["phone"] == "+8613812345678" and "phone_bidx" not in values
    assert values["custom_fields"] == {"cf.wechat": "wx-7", "cf.plain": "p"}
