"""The nested 360° view every server answers, in each server's own naming.

First `page` customers with 8 scalar fields, and per customer its contacts (name title phone),
opportunities (name stage amount) and tickets (title status priority) — the shape issue 2 and
issue 10 measure.
"""

from __future__ import annotations

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
    nodes = answer["data"][root]["nodes"]
    return (
        len(nodes),
        sum(len(n[contacts]["nodes"]) for n in nodes),
        sum(len(n[opportunities]["nodes"]) for n in nodes),
        sum(len(n[tickets]["nodes"]) for n in nodes),
    )
