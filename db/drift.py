"""What `alembic check` (model-vs-migration drift) compares, and what it leaves out.

The models (`db.models`) and the migrations must describe the same schema; `alembic check`
(and `tests/ops/test_schema_drift.py`) fail when a model changed without a migration or the
other way round. Left out are the objects the migrations make that no model declares, named
here one by one so that a new one is a decision, not an accident:

- the monthly and default partitions of `audit_events` and `audit_resource_index` (made by the
  SQL function `audit_ensure_partition`, see `audit.partitions`), and their indexes;
- migration 0004's `insight_refreshes` bookkeeping table and the indexes that only the insight
  snapshots' SQL uses;
- procrastinate's own tables (`procrastinate_*`, migration 0010 applies its schema: the job
  system owns them, not our models);
- the events-out tables of migration 0012 (`outbox_events`, `webhooks`, `webhook_deliveries`),
  which `events/` declares as SQLAlchemy Core tables of its own, with their indexes;
- the GIN indexes on `custom_fields` (migration 0013, used by `@>` filters, not by the ORM) and
  the `import_job_issues` lookup index (0010).
"""

from __future__ import annotations

import re
from typing import Any

PARTITION = re.compile(r"^audit_(events|resource_index)_(default|y\d{4}m\d{2})(_|$)")
JOB_SYSTEM = re.compile(r"^procrastinate_")
MIGRATION_ONLY_TABLES = frozenset(
    {"insight_refreshes", "outbox_events", "webhooks", "webhook_deliveries"}
)
MIGRATION_ONLY_INDEXES = frozenset(
    {
        "ix_customers_created_at",
        "ix_interactions_occurred_at",
        "ix_opportunity_stage_changes_won_at",
        "ix_tickets_open_urgent_customer_id",
        "ix_customers_custom_fields",
        "ix_contacts_custom_fields",
        "ix_opportunities_custom_fields",
        "ix_tickets_custom_fields",
        "ix_import_job_issues_job_id",
        "webhook_deliveries_by_webhook",
        "webhook_deliveries_open",
    }
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's `include_object` hook: False for the objects listed above."""
    table = getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", "")
    if PARTITION.match(table_name or "") or PARTITION.match(name or ""):
        return False
    if JOB_SYSTEM.match(table_name or "") or JOB_SYSTEM.match(name or ""):
        return False
    if type_ == "table" and name in MIGRATION_ONLY_TABLES:
        return False
    return not (type_ == "index" and reflected and name in MIGRATION_ONLY_INDEXES)
