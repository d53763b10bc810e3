"""The nested 360° view every server answers, in each server's own naming.

First `page` customers with 8 scalar fields, and per customer its contacts (name title phone),
opportunities (name stage amount) and tickets (title status priority) — the shape issue 2 and
issue 10 measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

PAGE = 50
CHILD_PAGE = 50  # every nested connection asks for up to 50; the seed has 5, 3 and 2 per customer


def dossier_query(page: int = PAGE) -> str:
    return (
        f"query CustomerView {{ customers(first: {page}) {{ nodes {{"
        " name kind industry region level phone email updatedAt"
        f" contacts(first: {CHILD_PAGE}) {{ nodes {{ name title phone }} }}"
        f" opportunities(first: {CHILD_PAGE}) {{ nodes {{ name stage amount }} }}"
        f" tickets(first: {CHILD_PAGE}) {{ nodes {{ title status priority }} }}"
        " } } }"
    )


def postgraphile_query(page: int = PAGE) -> str:
    """The same view in PostGraphile 4's inflection; it knows no masking, so `phoneEnc`."""
    child = f"first: {CHILD_PAGE}, orderBy: PRIMARY_KEY_ASC"
    return (
        "query CustomerView { allCustomers("
        f"first: {page}, orderBy: PRIMARY_KEY_ASC, condition: {{archivedAt: null}}) {{ nodes {{"
        " name kind industry region level phoneEnc email updatedAt"
        f" contactsByCustomerId({child}) {{ nodes {{ name title phoneEnc }} }}"
        f" opportunitiesByCustomerId({child}) {{ nodes {{ name stage amount }} }}"
        f" ticketsByCustomerId({child}) {{ nodes {{ title status priority }} }}"
        " } } }"
    )


# Issue 22's second shape: every scalar field of the customer, sensitive (phone, e-mail, ID
# number, address) and finance (totalSpend) ones included, and every scalar of ten of each
# child: decryption and row-dependent masks on most columns, not on two.
SCALAR_CHILD_PAGE = 10
_CUSTOMER_SCALARS = (
    "id name kind industry region level source tags creditCode phone email idNumber address"
    " totalSpend createdAt updatedAt lastInteractionAt version"
)
_PEER_CUSTOMER_SCALARS = (
    "id name kind industry region level source tags creditCode phoneEnc email idNumberEnc"
    " address totalSpend createdAt updatedAt lastInteractionAt version"
)


def dossier_scalars_query(page: int = PAGE) -> str:
    child = f"first: {SCALAR_CHILD_PAGE}"
    return (
        f"query CustomerView {{ customers(first: {page}) {{ nodes {{ {_CUSTOMER_SCALARS}"
        f" contacts({child}) {{ nodes {{ id name title phone email isDecisionMaker version }} }}"
        f" opportunities({child}) {{ nodes {{ id name stage amount expectedCloseDate version }} }}"
        f" tickets({child}) {{ nodes {{ id title status priority openedAt resolvedAt"
        " satisfaction version } }"
        " } } }"
    )


def postgraphile_scalars_query(page: int = PAGE) -> str:
    child = f"first: {SCALAR_CHILD_PAGE}, orderBy: PRIMARY_KEY_ASC"
    return (
        "query CustomerView { allCustomers("
        f"first: {page}, orderBy: PRIMARY_KEY_ASC, condition: {{archivedAt: null}}) {{ nodes {{"
        f" {_PEER_CUSTOMER_SCALARS}"
        f" contactsByCustomerId({child}) {{ nodes {{ id name title phoneEnc email"
        " isDecisionMaker version } }"
        f" opportunitiesByCustomerId({child}) {{ nodes {{ id name stage amount"
        " expectedCloseDate version } }"
        f" ticketsByCustomerId({child}) {{ nodes {{ id title status priority openedAt"
        " resolvedAt satisfaction version } }"
        " } } }"
    )


# The 360° view of one customer, as a frontend opens it: every scalar with the custom fields,
# the people and deals under it, and the workflow (interactions, contracts with payments, tasks,
# the timeline). Only ours answers it: the peer has no policies, custom fields or timeline.
CUSTOMER_360 = (
    "query Customer360($id: ID!) { customer(id: $id) {"
    f" {_CUSTOMER_SCALARS} customFields segment quality {{ score missing stale }}"
    " owner { username } department { name } consents { purpose grantedAt withdrawnAt }"
    " contacts { nodes { id name title phone email isDecisionMaker customFields } }"
    " opportunities { nodes { id name stage amount expectedCloseDate customFields"
    " stageHistory { from to at by } } }"
    " tickets { nodes { id title status priority openedAt resolvedAt satisfaction } }"
    " interactions { nodes { id channel summary occurredAt nextFollowUpOn author { username } } }"
    " contracts { nodes { id title amount startsOn endsOn status"
    " payments { nodes { id amount dueOn paidOn status } } } }"
    " tasks { nodes { id title kind status dueAt completedAt } }"
    " timeline(first: 20) { nodes { at kind stageChange { from to } node { id } } }"
    " } }"
)


def customer_360_body(customer_id: str) -> bytes:
    return orjson.dumps(
        {"query": CUSTOMER_360, "operationName": "Customer360", "variables": {"id": customer_id}}
    )


@dataclass(frozen=True)
class Shape:
    """One question every server of a run answers, in each naming (None: the peer cannot)."""

    key: str
    dossier: Callable[[int], str]
    postgraphile: Callable[[int], str] | None


SHAPES = {
    "bench": Shape("bench", dossier_query, postgraphile_query),
    "scalars": Shape("scalars", dossier_scalars_query, postgraphile_scalars_query),
    "360": Shape("360", lambda page: CUSTOMER_360, None),
}
FIRST_CUSTOMER = "query First { customers(first: 1) { nodes { id } } }"


def shape_body(shape: str, naming: str, page: int = PAGE, customer_id: str | None = None) -> bytes:
    """The request body of `shape` in `naming`; the 360° view needs the customer it opens."""
    if shape == "360":
        if naming != "dossier" or customer_id is None:
            raise ValueError("the 360° view is ours alone and needs a customer id")
        return customer_360_body(customer_id)
    chosen = SHAPES[shape]
    build = chosen.dossier if naming == "dossier" else chosen.postgraphile
    if build is None:
        raise ValueError(f"{naming} cannot answer the {shape} shape")
    return request_body(build(page))


def request_body(query: str) -> bytes:
    return orjson.dumps({"query": query, "operationName": "CustomerView"})


# (customers, contacts, opportunities, tickets) lists, by naming
_NAMES = {
    "dossier": ("customers", "contacts", "opportunities", "tickets"),
    "postgraphile": (
        "allCustomers",
        "contactsByCustomerId",
        "opportunitiesByCustomerId",
        "ticketsByCustomerId",
    ),
}


def shape_of(answer: dict[str, Any], naming: str) -> tuple[int, int, int, int]:
    """Row counts of an answer: customers, and contacts, opportunities, tickets over all of them.

    Two servers answering the same view over the same data give the same counts, whatever
    their naming; this is how the bench checks the peer and the floor answer the same question.
    """
    root, contacts, opportunities, tickets = _NAMES[naming]
    if root not in answer["data"]:  # the 360° view: one customer
        one = answer["data"]["customer"]
        return (1, *(len(one[name]["nodes"]) for name in (contacts, opportunities, tickets)))
    nodes = answer["data"][root]["nodes"]
    return (
        len(nodes),
        sum(len(n[contacts]["nodes"]) for n in nodes),
        sum(len(n[opportunities]["nodes"]) for n in nodes),
        sum(len(n[tickets]["nodes"]) for n in nodes),
    )
