"""Random text in every customer field never crashes a write: it is refused or stored clean."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.writes.conftest import CREATE_CUSTOMER, GraphQLClient, error_codes

TEXT = st.text(min_size=0, max_size=40)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        name: TEXT
        for name in (
            "name",
            "industry",
            "region",
            "source",
            "creditCode",
            "phone",
            "email",
            "address",
        )
    },  # fmt: skip
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=FIELDS)
async def test_random_customer_input_is_bad_input_duplicate_or_a_clean_record(
    gql: GraphQLClient, fields: dict[str, str]
) -> None:
    body = await gql.query("alice", CREATE_CUSTOMER, {"input": fields, "force": False})
    codes = error_codes(body)
    if any("\x00" in value for value in fields.values()):
        # NUL is refused for the whole request before any resolver runs (api/hardening/text.py)
        assert codes == ["BAD_USER_INPUT"], body
        return
    if "creditCode" in fields:  # a sales rep may not write it at all: refused before validation
        assert codes == ["FORBIDDEN"], body
        return
    assert codes in ([], ["BAD_USER_INPUT"], ["DUPLICATE"]), body
    if not codes:
        created = body["data"]["createCustomer"]
        assert created["name"] and created["name"] == created["name"].strip()
