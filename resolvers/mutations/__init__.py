"""Writes of customer data (issue 6): one module per domain, each mutation checked, validated,
written in its own savepoint with its audit event, and answered through the read path."""

from __future__ import annotations

from resolvers.mutations.contact import ContactMutation
from resolvers.mutations.customer import CustomerMutation
from resolvers.mutations.duplicates import DuplicatesQuery
from resolvers.mutations.interaction import InteractionMutation
from resolvers.mutations.merge import MergeMutation
from resolvers.mutations.opportunity import OpportunityMutation
from resolvers.mutations.ticket import TicketMutation

WRITE_QUERIES = (DuplicatesQuery,)
WRITE_MUTATIONS = (
    CustomerMutation,
    MergeMutation,
    ContactMutation,
    OpportunityMutation,
    TicketMutation,
    InteractionMutation,
)
