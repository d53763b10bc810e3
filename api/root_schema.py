"""The executable schema: every root type merged, with parse and validation caches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from bulk.audit_export import AuditExportMutation
from bulk.operations import BulkMutation, BulkQuery
from events.leads import LeadMutation
from events.subscription import Subscription
from events.webhooks import WebhookMutation, WebhookQuery
from insights.query import InsightsQuery
from privacy import PrivacyMutation, PrivacyQuery
from resolvers import loaders
from resolvers.access_record import RecordAccessQuery
from resolvers.admin import AdminMutation, AdminQuery
from resolvers.audit import AuditQuery
from resolvers.audit_integrity import AuditIntegrityQuery
from resolvers.custom_fields import CustomFieldMutation, CustomFieldQuery
from resolvers.customer import CustomerQuery
from resolvers.me import NodeQuery
from resolvers.mutations import WRITE_MUTATIONS, WRITE_QUERIES
from resolvers.policy_preview import PolicyPreviewQuery
from resolvers.records_query import RecordsQuery
from resolvers.workflow.mutations import WorkflowMutation
from resolvers.workflow.queries import WorkflowQuery
from schema.contact import Contact
from schema.contract import Contract, Payment
from schema.customer import Customer
from schema.interaction import Interaction
from schema.opportunity import Opportunity
from schema.task import Task
from schema.ticket import Ticket
from schema.user import Department, User
from sqljson.direct import DirectExecutionContext

Query = merge_types(
    "Query",
    (
        NodeQuery, CustomerQuery, RecordsQuery, AdminQuery, AuditQuery, BulkQuery, InsightsQuery,
        *WRITE_QUERIES, PolicyPreviewQuery, AuditIntegrityQuery,
        RecordAccessQuery, WebhookQuery, CustomFieldQuery, WorkflowQuery, PrivacyQuery,
    ),
)  # fmt: skip
Mutation = merge_types(
    "Mutation",
    (AdminMutation, BulkMutation, AuditExportMutation, *WRITE_MUTATIONS, WebhookMutation,
     LeadMutation, CustomFieldMutation, WorkflowMutation, PrivacyMutation),
)  # fmt: skip


class DossierSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by the endpoint, which knows the request id; nothing to do here."""


class MarksExecution(SchemaExtension):
    """Notes on the request context that execution began.

    The endpoint tells errors apart by it: one without a path from before execution is the
    document failing validation (GRAPHQL_VALIDATION_FAILED), one from after it is a variable
    that did not coerce (BAD_USER_INPUT).
    """

    def on_execute(self) -> Iterator[None]:
        extras = getattr(self.execution_context.context, "extras", None)
        if isinstance(extras, dict):
            extras["executed"] = True
        yield


def build_schema(
    *,
    extensions: Sequence[Callable[[], SchemaExtension]] = (),
    validation_rules: Sequence[type[ASTValidationRule]] = (),
    **extra: Any,
) -> strawberry.Schema:
    """`extensions` run before the caches (limits must see a query before it is parsed)."""
    loaders.install()  # the request context's loaders, which sit above it
    rules = list(validation_rules)
    return DossierSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Customer,
            Contact,
            Opportunity,
            Ticket,
            Interaction,
            Task,
            Contract,
            Payment,
            User,
            Department,
        ],  # fmt: skip
        extensions=[
            *extensions,
            MarksExecution,
            lambda: ParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
            *([lambda: AddValidationRules(rules)] if rules else []),
        ],
        execution_context_class=DirectExecutionContext,
        **extra,
    )
