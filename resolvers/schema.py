"""The executable schema: every root type merged, with parse and validation caches."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from resolvers.admin import AdminMutation, AdminQuery
from resolvers.audit import AuditQuery
from resolvers.customer import CustomerQuery
from resolvers.me import NodeQuery
from resolvers.records_query import RecordsQuery
from schema.contact import Contact
from schema.customer import Customer
from schema.opportunity import Opportunity
from schema.ticket import Ticket
from schema.user import Department, User

Query = merge_types("Query", (NodeQuery, CustomerQuery, RecordsQuery, AdminQuery, AuditQuery))
Mutation = merge_types("Mutation", (AdminMutation,))


class DossierSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by the endpoint, which knows the request id; nothing to do here."""


def build_schema(**extra: Any) -> strawberry.Schema:
    return DossierSchema(
        query=Query,
        mutation=Mutation,
        types=[Customer, Contact, Opportunity, Ticket, User, Department],
        extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)],
        **extra,
    )
