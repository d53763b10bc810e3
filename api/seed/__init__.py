"""The demo data set: the organisation of docs/api.md and generated customers, loaded by COPY."""

from api.seed.demo import (
    DEFAULT_CUSTOMERS,
    DatabaseNotEmptyError,
    DemoSummary,
    database_is_empty,
    seed_demo,
)
from api.seed.organisation import DEMO_PASSWORD, DEMO_USERS, DEPARTMENTS

__all__ = [
    "DEFAULT_CUSTOMERS",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "DEPARTMENTS",
    "DatabaseNotEmptyError",
    "DemoSummary",
    "database_is_empty",
    "seed_demo",
]
