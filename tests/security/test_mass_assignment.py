"""Mass assignment: every write mutation, asked to set what its caller may not set.

OWASP API3 (broken object property authorisation, the write half): ownership, departments,
timestamps, versions, merge links, money, credit codes and identity numbers smuggled into
`createCustomer`, `updateCustomer`, `createContact`, `updateContact`, `createOpportunity`,
`updateTicket` and `mergeCustomers`, by callers holding a role that lacks the right. Each attempt
must be refused with the contract's code (FORBIDDEN naming the field or the operation, NOT_FOUND
for rows outside the caller's scope, BAD_USER_INPUT for what is no input at all), must change
nothing — checked by a digest of every data and policy table, taken by direct SQL before and
after — and, when it is FORBIDDEN, must leave exactly one DENIED audit event naming the field.

The suite writes, so it runs on a demo database of its own, not on the read tests' one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.seed.demo import seed_demo
from api.settings import Settings
from schema.node import from_global_id, to_global_id
from tests.conftest import fresh_database, migrated_engine, settings_for
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient
from tests.security.conftest import GENEROUS, settings_with
from tests.writes.conftest import company, credit_code, unique

# every table a write could reach, and the ones that would grant more rights
WATCHED = (
    "customers", "contacts", "opportunities", "opportunity_stage_changes", "tickets",
    "interactions", "users", "departments", "policy_rules", "vocabulary_terms",
)  # fmt: skip
CHANGES = ("CREATE", "UPDATE", "ARCHIVE", "MERGE", "DELETE", "POLICY_CHANGE")

CREATE_CUSTOMER = """mutation($input: CustomerInput!) {
  createCustomer(input: $input, force: true) { id } }"""
UPDATE_CUSTOMER = """mutation($id: ID!, $input: CustomerPatch!) {
  updateCustomer(id: $id, input: $input, force: true) { id } }"""
CREATE_CONTACT = "mutation($input: ContactInput!) { createContact(input: $input) { id } }"
UPDATE_CONTACT = """mutation($id: ID!, $input: ContactPatch!) {
  updateContact(id: $id, input: $input) { id } }"""
CREATE_OPPORTUNITY = """mutation($input: OpportunityInput!) {
  createOpportunity(input: $input) { id } }"""
UPDATE_OPPORTUNITY = """mutation($id: ID!, $input: OpportunityPatch!) {
  updateOpportunity(id: $id, input: $input) { id } }"""
UPDATE_TICKET = """mutation($id: ID!, $input: TicketPatch!) {
  updateTicket(id: $id, input: $input) { id } }"""
MERGE = """mutation($keep: ID!, $merge: ID!) {
  mergeCustomers(keepId: $keep, mergeId: $merge) { id } }"""

# the server's insides; conftest's LEAKS also flags the English "from" of "cannot move from
# OPEN to CLOSED", which the lifecycle errors here are bound to say
TRACES = re.compile(
    r"Traceback|File \"|site-packages|/work/|\.py\b|sqlalchemy|asyncpg|SQLSTATE|psycopg"
    r"|\bSELECT\b[^\"]*\bFROM\b|syntax error at|relation \"",
    re.IGNORECASE,
)

# names that are no input of any write: they follow from the mutations themselves
NOT_INPUTS = (
    "id", "archivedAt", "version", "createdAt", "updatedAt", "mergedIntoId", "mergedInto",
    "lastInteractionAt", "openedAt", "resolvedAt", "owner", "department", "customer",
    "stageHistory", "author", "quality",
)  # fmt: skip


# --- a demo database and server of this module's own ---------------------------------------


@pytest.fixture(scope="module")
def mass_settings(data_dir: Path) -> Iterator[Settings]:
    with fresh_database("dossier_mass") as url:
        base = settings_for(url, data_dir / "mass")
        yield settings_with(base, user_rate=GENEROUS)


@pytest.fixture(scope="module")
async def mass_engine(mass_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(mass_settings) as engine:
        await seed_demo(engine, mass_settings.field_cipher, customers=30)
        yield engine


@pytest.fixture(scope="module")
async def mass_app(mass_settings: Settings, mass_engine: AsyncEngine) -> AsyncIterator[Starlette]:
    application = create_app(mass_settings)
    async with application.router.lifespan_context(application):
        yield application


@dataclass(frozen=True)
class Ids:
    """Global ids of the records and people the attempts aim at."""

    users: dict[str, str]
    departments: dict[str, str]
    alices: str  # a customer alice owns (华东销售)
    alices_other: str  # another of hers, for merges
    franks: str  # a customer frank owns (华北销售): outside alice's scope
    key_account: str  # a customer of 销售部 itself
    alices_contact: str
    franks_contact: str
    alices_opportunity: str
    open_ticket: str  # an OPEN ticket on one of alice's customers
    franks_ticket: str


async def _one(engine: AsyncEngine, sql: str, **params: Any) -> int:
    found = await oracle.rows(engine, sql + " ORDER BY 1 LIMIT 1", **params)
    assert found, sql
    return int(found[0][0])


@pytest.fixture(scope="module")
async def ids(mass_engine: AsyncEngine) -> Ids:
    engine = mass_engine
    users = {
        name: to_global_id("User", await oracle.user_id(engine, name))
        for name in ("alice", "bob", "carol", "dave", "erin", "frank", "admin")
    }
    departments = {
        name: to_global_id("Department", await oracle.department_id(engine, name))
        for name in ("华东销售", "华北销售", "销售部", "客服部", "财务部")
    }
    alice = await oracle.user_id(engine, "alice")
    frank = await oracle.user_id(engine, "frank")
    live = "archived_at IS NULL AND owner_id = :u"
    alices = await _one(
        engine,
        f"SELECT id FROM customers c WHERE {live} AND EXISTS "  # noqa: S608  # test-authored
        "(SELECT 1 FROM contacts WHERE customer_id = c.id) AND EXISTS "
        "(SELECT 1 FROM opportunities WHERE customer_id = c.id)",
        u=alice,
    )
    alices_other = await _one(
        engine,
        f"SELECT id FROM customers WHERE {live} AND id <> :a",  # noqa: S608
        u=alice,
        a=alices,
    )
    franks = await _one(engine, f"SELECT id FROM customers WHERE {live}", u=frank)  # noqa: S608
    sales = await oracle.department_id(engine, "销售部")
    key_account = await _one(
        engine, "SELECT id FROM customers WHERE archived_at IS NULL AND department_id = :d",
        d=sales,
    )  # fmt: skip
    of_customer = "SELECT x.id FROM {} x WHERE x.customer_id = :c"
    open_ticket = await _one(
        engine,
        "SELECT t.id FROM tickets t JOIN customers c ON c.id = t.customer_id "
        "WHERE t.status = 'OPEN' AND c.owner_id = :u AND c.archived_at IS NULL",
        u=alice,
    )
    franks_ticket = await _one(
        engine,
        "SELECT t.id FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE c.owner_id = :u",
        u=frank,
    )
    return Ids(
        users=users,
        departments=departments,
        alices=to_global_id("Customer", alices),
        alices_other=to_global_id("Customer", alices_other),
        franks=to_global_id("Customer", franks),
        key_account=to_global_id("Customer", key_account),
        alices_contact=to_global_id(
            "Contact", await _one(engine, of_customer.format("contacts"), c=alices)
        ),
        franks_contact=to_global_id(
            "Contact",
            await _one(
                engine,
                "SELECT x.id FROM contacts x JOIN customers c ON c.id = x.customer_id "
                "WHERE c.owner_id = :u",
                u=frank,
            ),
        ),
        alices_opportunity=to_global_id(
            "Opportunity", await _one(engine, of_customer.format("opportunities"), c=alices)
        ),
        open_ticket=to_global_id("Ticket", open_ticket),
        franks_ticket=to_global_id("Ticket", franks_ticket),
    )


@pytest.fixture
async def client(mass_app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=mass_app, client=("127.0.0.1", 50011))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, {})


# --- one attempt: refused, nothing changed, audited -----------------------------------------


async def digest(engine: AsyncEngine) -> dict[str, str]:
    """An md5 of every row of every watched table: equal digests, equal tables."""
    found: dict[str, str] = {}
    async with engine.connect() as connection:
        for table in WATCHED:
            found[table] = (
                await connection.execute(
                    text(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "  # noqa: S608  # fixed table names
                         f"FROM {table} t")
                )
            ).scalar_one()  # fmt: skip
    return found


@dataclass(frozen=True)
class Attempt:
    body: dict[str, Any]
    events: list[Any]  # audit events of this request: (action, fields, resource_type)

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.body.get("errors", [])]


async def attempt(
    client: GraphQLClient,
    engine: AsyncEngine,
    username: str,
    query: str,
    variables: dict[str, Any],
) -> Attempt:
    """Post as `username` and prove by direct SQL that nothing at all changed."""
    request_id = f"mass-{uuid.uuid4().hex}"
    before = await digest(engine)
    response = await client.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={
            "Authorization": f"Bearer {await client.token(username)}",
            "X-Request-ID": request_id,
        },
    )
    assert_clean_of_traces(response)
    assert response.status_code == 200, response.text
    after = await digest(engine)
    changed = sorted(t for t in WATCHED if before[t] != after[t])
    assert not changed, (changed, response.text)
    events = await oracle.rows(
        engine,
        "SELECT action, fields, resource_type FROM audit_events WHERE request_id = :r",
        r=request_id,
    )
    return Attempt(response.json(), events)


def refused(outcome: Attempt, code: str, field: str | None = None) -> None:
    """Exactly one error of `code` (naming `field`), no data, no change event; DENIED audited."""
    body = outcome.body
    assert outcome.codes == [code], body
    assert not any((body.get("data") or {}).values()), body  # null mutation field, or no data
    if field is not None:
        assert body["errors"][0]["extensions"]["field"] == field, body
    assert not [e for e in outcome.events if e.action in CHANGES], outcome.events
    if code == "FORBIDDEN":  # NOT_FOUND and BAD_USER_INPUT are not denials of a right
        denied = [e for e in outcome.events if e.action == "DENIED"]
        assert len(denied) == 1, outcome.events
        assert field in denied[0].fields, denied


def assert_clean_of_traces(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert not TRACES.search(response.text), response.text
    codes = [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]
    assert "INTERNAL" not in codes, response.text


# --- ownership and placement ----------------------------------------------------------------


async def test_a_rep_cannot_create_customers_for_someone_else(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for owner in ("frank", "bob", "carol", "admin"):
        for extra in ({}, {"departmentId": ids.departments["华北销售"]}):
            variables = {"input": company(ownerId=ids.users[owner], **extra)}
            outcome = await attempt(client, mass_engine, "alice", CREATE_CUSTOMER, variables)
            refused(outcome, "FORBIDDEN", "Customer.owner")


async def test_a_rep_cannot_hand_her_customer_to_someone_else(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for owner in ("frank", "bob", "dave"):
        for patch in (
            {"ownerId": ids.users[owner]},
            {"ownerId": ids.users[owner], "departmentId": ids.departments["华北销售"]},
            {"ownerId": ids.users[owner], "level": "A"},
        ):
            variables = {"id": ids.alices, "input": patch}
            outcome = await attempt(client, mass_engine, "alice", UPDATE_CUSTOMER, variables)
            # with a department move too, the first field named is the department: both are
            # the manager's call (policy/demo.py), and the message names every refused field
            first = "Customer.department" if "departmentId" in patch else "Customer.owner"
            refused(outcome, "FORBIDDEN", first)
            assert "Customer.owner" in outcome.body["errors"][0]["message"]


async def test_a_rep_cannot_pull_another_reps_customer_into_her_scope(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    """Taking over is an update of a row she cannot see: NOT_FOUND, as for a missing id."""
    for target in (ids.franks, ids.key_account, to_global_id("Customer", 987654321)):
        for patch in (
            {"ownerId": ids.users["alice"]},
            {"departmentId": ids.departments["华东销售"]},
            {"ownerId": ids.users["alice"], "departmentId": ids.departments["华东销售"]},
        ):
            variables = {"id": target, "input": patch}
            outcome = await attempt(client, mass_engine, "alice", UPDATE_CUSTOMER, variables)
            refused(outcome, "NOT_FOUND")
            assert outcome.body["errors"][0]["message"] == "No such customer"


async def test_ownership_ids_of_the_wrong_type_are_bad_input(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    """A department's id as owner (or a customer's as department) is refused, not coerced."""
    for patch in (
        {"ownerId": ids.departments["华东销售"]},
        {"departmentId": ids.franks},
        {"ownerId": ""},
        {"ownerId": None},
        {"departmentId": None},
    ):
        outcome = await attempt(
            client, mass_engine, "alice", UPDATE_CUSTOMER, {"id": ids.alices, "input": patch}
        )
        refused(outcome, "BAD_USER_INPUT")


# --- fields the role may not write ---------------------------------------------------------

DENIED_CUSTOMER_FIELDS = (
    ({"totalSpend": "99999.00"}, "Customer.totalSpend"),
    ({"creditCode": "__code__"}, "Customer.creditCode"),
    ({"idNumber": "11010519491231002X", "kind": "PERSON"}, "Customer.idNumber"),
    ({"level": "A", "totalSpend": "0.01"}, "Customer.totalSpend"),
)


def _with_code(patch: dict[str, Any]) -> dict[str, Any]:
    return {k: credit_code() if v == "__code__" else v for k, v in patch.items()}


async def test_a_rep_cannot_write_money_credit_codes_or_id_numbers(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for patch, field in DENIED_CUSTOMER_FIELDS:
        created = {"input": company(**_with_code(patch))}
        refused(await attempt(client, mass_engine, "alice", CREATE_CUSTOMER, created),
                "FORBIDDEN", field)  # fmt: skip
        updated = {"id": ids.alices, "input": _with_code(patch)}
        refused(await attempt(client, mass_engine, "alice", UPDATE_CUSTOMER, updated),
                "FORBIDDEN", field)  # fmt: skip


async def test_readers_of_customers_cannot_write_them_at_all(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    """carol reads every phone, dave every credit code: neither may write a customer."""
    for user, patch in (
        ("carol", {"phone": "13800138000"}),
        ("carol", {"level": "A"}),
        ("carol", {"ownerId": ids.users["carol"]}),
        ("dave", {"totalSpend": "1.00"}),
        ("dave", {"creditCode": credit_code()}),
        ("bob", {"departmentId": ids.departments["销售部"]}),
        ("erin", {"name": unique() + "有限公司"}),
        ("admin", {"ownerId": ids.users["admin"]}),
    ):
        for target in (ids.alices, ids.franks, ids.key_account):
            outcome = await attempt(
                client, mass_engine, user, UPDATE_CUSTOMER, {"id": target, "input": patch}
            )
            refused(outcome, "FORBIDDEN", "Mutation.updateCustomer")
        outcome = await attempt(
            client, mass_engine, user, CREATE_CUSTOMER, {"input": company(**patch)}
        )
        refused(outcome, "FORBIDDEN", "Mutation.createCustomer")


# --- what is no input at all ----------------------------------------------------------------


async def test_derived_fields_are_refused_by_the_schema_inline_and_in_variables(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    """archivedAt, version, createdAt, mergedIntoId, …: BAD_USER_INPUT before any resolver."""
    values: dict[str, Any] = {
        "archivedAt": "2020-01-01T00:00:00Z",
        "version": 1,
        "createdAt": "2020-01-01T00:00:00Z",
        "mergedIntoId": ids.franks,
    }
    smuggled = {**values, "id": ids.franks, "updatedAt": "2020-01-01T00:00:00Z",
                "lastInteractionAt": "2020-01-01T00:00:00Z", "owner": ids.users["frank"],
                "isAdmin": True, "owner_id": ids.users["frank"]}  # fmt: skip
    for name, value in smuggled.items():
        for query, variables in (
            (CREATE_CUSTOMER, {"input": company(**{name: value})}),
            (UPDATE_CUSTOMER, {"id": ids.alices, "input": {"level": "B", name: value}}),
        ):
            outcome = await attempt(client, mass_engine, "alice", query, variables)
            refused(outcome, "BAD_USER_INPUT")
            assert name in outcome.body["errors"][0]["message"], outcome.body
    for name in ("archivedAt: null", "version: 7", "mergedIntoId: null", "foo: 1"):
        inline = f"""mutation($id: ID!) {{
          updateCustomer(id: $id, input: {{ level: B, {name} }}) {{ id }} }}"""
        outcome = await attempt(client, mass_engine, "alice", inline, {"id": ids.alices})
        refused(outcome, "BAD_USER_INPUT")


def test_no_write_input_type_offers_a_derived_field() -> None:
    """The same promise, read from the schema: no input type has any of these fields."""
    from resolvers.mutations.common import camel
    from schema.inputs import (
        ContactInput,
        ContactPatch,
        CustomerInput,
        CustomerPatch,
        InteractionInput,
        OpportunityInput,
        OpportunityPatch,
        TicketInput,
        TicketPatch,
    )

    for input_type in (CustomerInput, CustomerPatch, ContactInput, ContactPatch,
                       OpportunityInput, OpportunityPatch, TicketInput, TicketPatch,
                       InteractionInput):  # fmt: skip
        names = {camel(f) for f in input_type.__dataclass_fields__}
        assert not names & set(NOT_INPUTS), (input_type.__name__, names & set(NOT_INPUTS))
    for patch in (ContactPatch, OpportunityPatch, TicketPatch):
        assert "customer_id" not in patch.__dataclass_fields__  # children never move


# --- contacts and opportunities -------------------------------------------------------------


async def test_contacts_cannot_be_attached_to_or_moved_into_foreign_customers(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for target in (ids.franks, ids.key_account):
        outcome = await attempt(
            client,
            mass_engine,
            "alice",
            CREATE_CONTACT,
            {"input": {"customerId": target, "name": "越权联系人"}},
        )
        refused(outcome, "NOT_FOUND")
    outcome = await attempt(
        client,
        mass_engine,
        "alice",
        UPDATE_CONTACT,
        {"id": ids.alices_contact, "input": {"customerId": ids.franks}},
    )
    refused(outcome, "BAD_USER_INPUT")
    for smuggled in ({"version": 9}, {"archivedAt": None}, {"customer": ids.franks}):
        outcome = await attempt(
            client,
            mass_engine,
            "alice",
            UPDATE_CONTACT,
            {"id": ids.alices_contact, "input": {"title": "经理", **smuggled}},
        )
        refused(outcome, "BAD_USER_INPUT")
    outcome = await attempt(
        client,
        mass_engine,
        "alice",
        UPDATE_CONTACT,
        {"id": ids.franks_contact, "input": {"name": "改名"}},
    )
    refused(outcome, "NOT_FOUND")


async def test_roles_without_contact_writes_are_refused(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for user in ("carol", "dave", "bob", "erin"):
        outcome = await attempt(
            client,
            mass_engine,
            user,
            CREATE_CONTACT,
            {"input": {"customerId": ids.alices, "name": "越权联系人"}},
        )
        refused(outcome, "FORBIDDEN", "Mutation.createContact")
        outcome = await attempt(
            client,
            mass_engine,
            user,
            UPDATE_CONTACT,
            {"id": ids.alices_contact, "input": {"phone": "13800138000"}},
        )
        refused(outcome, "FORBIDDEN", "Mutation.updateContact")


async def test_opportunities_cannot_be_created_on_foreign_customers_or_by_readers(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    opportunity = {"name": "越权商机", "amount": "1000.00"}
    for target in (ids.franks, ids.key_account):
        outcome = await attempt(
            client,
            mass_engine,
            "alice",
            CREATE_OPPORTUNITY,
            {"input": {"customerId": target, **opportunity}},
        )
        refused(outcome, "NOT_FOUND")
    for user in ("carol", "dave", "bob"):
        outcome = await attempt(
            client,
            mass_engine,
            user,
            CREATE_OPPORTUNITY,
            {"input": {"customerId": ids.alices, **opportunity}},
        )
        refused(outcome, "FORBIDDEN", "Mutation.createOpportunity")
        outcome = await attempt(
            client,
            mass_engine,
            user,
            UPDATE_OPPORTUNITY,
            {"id": ids.alices_opportunity, "input": {"amount": "1.00"}},
        )
        refused(outcome, "FORBIDDEN", "Mutation.updateOpportunity")
    for smuggled in ({"version": 1}, {"createdAt": "2020-01-01"}, {"stageHistory": []},
                     {"customer": ids.franks}):  # fmt: skip
        outcome = await attempt(
            client,
            mass_engine,
            "alice",
            CREATE_OPPORTUNITY,
            {"input": {"customerId": ids.alices, **opportunity, **smuggled}},
        )
        refused(outcome, "BAD_USER_INPUT")
    outcome = await attempt(
        client,
        mass_engine,
        "alice",
        UPDATE_OPPORTUNITY,
        {"id": ids.alices_opportunity, "input": {"customerId": ids.franks}},
    )
    refused(outcome, "BAD_USER_INPUT")


# --- tickets: carol may update them, within their lifecycle ---------------------------------


async def test_a_service_agent_cannot_move_a_ticket_or_set_what_the_lifecycle_sets(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for patch in (
        {"customerId": ids.franks},
        {"customer": ids.franks},
        {"openedAt": "2020-01-01T00:00:00Z"},
        {"resolvedAt": "2020-01-01T00:00:00Z"},
        {"version": 1},
        {"archivedAt": None},
        {"satisfaction": 5},  # only once resolved
        {"status": "CLOSED"},  # OPEN → CLOSED skips the lifecycle
        {"satisfaction": 9, "status": "RESOLVED"},  # out of 1–5
        {"assigneeId": ids.franks},  # a customer is no assignee
        {"assigneeId": ids.departments["客服部"]},
    ):
        outcome = await attempt(
            client, mass_engine, "carol", UPDATE_TICKET, {"id": ids.open_ticket, "input": patch}
        )
        refused(outcome, "BAD_USER_INPUT")


async def test_tickets_are_out_of_reach_for_roles_and_rows_without_the_right(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for user in ("dave", "bob", "erin", "admin"):
        outcome = await attempt(
            client,
            mass_engine,
            user,
            UPDATE_TICKET,
            {"id": ids.open_ticket, "input": {"priority": "URGENT"}},
        )
        refused(outcome, "FORBIDDEN", "Mutation.updateTicket")
    outcome = await attempt(
        client,
        mass_engine,
        "alice",
        UPDATE_TICKET,
        {"id": ids.franks_ticket, "input": {"priority": "URGENT"}},
    )
    refused(outcome, "NOT_FOUND")


# --- merges ---------------------------------------------------------------------------------


async def test_a_merge_with_a_foreign_record_is_not_found_in_either_direction(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    for keep, merge in (
        (ids.alices, ids.franks),
        (ids.franks, ids.alices),
        (ids.alices, ids.key_account),
        (ids.alices, to_global_id("Customer", 987654321)),
    ):
        outcome = await attempt(client, mass_engine, "alice", MERGE, {"keep": keep, "merge": merge})
        refused(outcome, "NOT_FOUND")
    for user in ("carol", "dave", "bob"):
        outcome = await attempt(
            client, mass_engine, user, MERGE, {"keep": ids.alices, "merge": ids.alices_other}
        )
        refused(outcome, "FORBIDDEN", "Mutation.mergeCustomers")
    for keep, merge in ((ids.alices, ids.alices), (ids.alices, ids.alices_contact)):
        outcome = await attempt(client, mass_engine, "alice", MERGE, {"keep": keep, "merge": merge})
        refused(outcome, "BAD_USER_INPUT")


async def test_a_merge_cannot_launder_a_field_the_caller_may_not_write(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    """Filling the kept record's empty credit code from the merged one writes the credit code."""
    keep_pk = int(from_global_id(ids.alices)[1])
    merge_pk = int(from_global_id(ids.alices_other)[1])
    async with mass_engine.begin() as connection:  # the setup, by direct SQL
        await connection.execute(
            text("UPDATE customers SET credit_code = NULL, kind = 'COMPANY' WHERE id = :k"),
            {"k": keep_pk},
        )
        await connection.execute(
            text("UPDATE customers SET credit_code = :c, kind = 'COMPANY' WHERE id = :m"),
            {"c": credit_code(), "m": merge_pk},
        )
    outcome = await attempt(
        client, mass_engine, "alice", MERGE, {"keep": ids.alices, "merge": ids.alices_other}
    )
    refused(outcome, "FORBIDDEN", "Customer.creditCode")


# --- the controls: the same requests, minus what is smuggled, do write ----------------------


async def test_the_same_writes_without_the_smuggled_fields_go_through(
    client: GraphQLClient, mass_engine: AsyncEngine, ids: Ids
) -> None:
    """Proof that the refusals above come from what was smuggled, and that the digest sees
    a change: each clean write changes the tables and leaves its change event."""
    for user, query, variables in (
        ("alice", CREATE_CUSTOMER, {"input": company()}),  # owned by her by default
        ("alice", UPDATE_CUSTOMER, {"id": ids.alices, "input": {"level": "B"}}),
        ("alice", CREATE_CONTACT, {"input": {"customerId": ids.alices, "name": "合规联系人"}}),
        ("alice", UPDATE_CONTACT, {"id": ids.alices_contact, "input": {"title": "总监"}}),
        ("alice", CREATE_OPPORTUNITY,
         {"input": {"customerId": ids.alices, "name": "合规商机", "amount": "10.00"}}),
        ("carol", UPDATE_TICKET, {"id": ids.open_ticket, "input": {"priority": "HIGH"}}),
    ):  # fmt: skip
        before = await digest(mass_engine)
        body = await client.query(user, query, variables)
        assert "errors" not in body, body
        assert await digest(mass_engine) != before, query
