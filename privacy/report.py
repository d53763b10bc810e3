"""`personalDataReport`: everything held on one person, and who read or changed it, as one file.

The report is the answer to an access request (个人信息保护法 art. 45): the customer's values
(custom fields included, encrypted ones decrypted), its contacts, interactions, tickets,
opportunities and consents, and every audit event that names any of these records — reads
included, found through the audit resource index (`audit.queries`, complete without waiting
for the indexer). It needs READ on `privacy`, not the customer rules: the officer answers for
the person, not for a sales team. The file is a JSON document behind a one-time download, like
an export, and handing it out is itself an EXPORT event on the customer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import hashlib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from audit.queries import AuditFilter, event_document, list_events
from bulk.downloads import Download, register_download, sweep_expired
from bulk.runtime import BulkRuntime
from db.crypto import FieldCipher
from db.models import Consent as ConsentRow
from db.models import Contact as ContactRow
from db.models import Customer as CustomerRow
from db.models import Interaction as InteractionRow
from db.models import Opportunity as OpportunityRow
from db.models import Ticket as TicketRow
from policy.custom_fields import FieldCatalog
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import NotFoundError
from resolvers.filters import pk_of
from resolvers.mutations.custom_values import stored_custom
from resolvers.records import CUSTOMER
from resolvers.writes import record, require, write

CONTENT_TYPE = "application/json"
EVENT_PAGE = 500
# encrypted columns: attribute → (cipher label, the name the report shows)
ENCRYPTED = {
    "customers": {"phone_enc": ("customer.phone", "phone"),
                  "id_number_enc": ("customer.id_number", "id_number"),
                  "email_enc": ("customer.email", "email"),
                  "address_enc": ("customer.address", "address")},
    "contacts": {"phone_enc": ("contact.phone", "phone"),
                 "email_enc": ("contact.email", "email")},
}  # fmt: skip
CUSTOM_RESOURCES = {
    "customers": Resource.CUSTOMER,
    "contacts": Resource.CONTACT,
    "opportunities": Resource.OPPORTUNITY,
    "tickets": Resource.TICKET,
}
CHILDREN: tuple[tuple[str, type[Any]], ...] = (
    ("contact", ContactRow),
    ("interaction", InteractionRow),
    ("ticket", TicketRow),
    ("opportunity", OpportunityRow),
)


def row_values(
    row: Any, cipher: FieldCipher, catalog: FieldCatalog | None = None
) -> dict[str, Any]:
    """Every column of a row, encrypted ones (sensitive custom values included) decrypted, blind
    indexes (not data) left out."""
    table = row.__table__
    encrypted = ENCRYPTED.get(table.name, {})
    values: dict[str, Any] = {}
    for column in table.columns:
        name = column.key
        if name.endswith("_bidx") or name == "data_key":
            continue
        value = getattr(row, name)
        if name == "custom_fields" and catalog is not None:
            resource = CUSTOM_RESOURCES[table.name]
            definitions = {d.key: d for d in catalog.definitions if d.resource is resource}
            data_key = getattr(row, "data_key", None)
            values[name] = stored_custom(definitions, value or {}, cipher, data_key)
        elif name in encrypted:
            label, shown = encrypted[name]
            if value is not None or shown not in values:  # a clear value from before 0015 stays
                values[shown] = cipher.decrypt(label, value, getattr(row, "data_key", None))
        else:
            values[name] = value
    return values


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID | dt.date):
        return str(value)
    raise TypeError(type(value).__name__)


async def events_naming(
    session: AsyncSession, resources: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Every audit event naming one of `resources` (type, id), oldest first, each once."""
    found: dict[int, dict[str, Any]] = {}
    for resource_type, pk in resources:
        audit_filter = AuditFilter(resource_type=resource_type, resource_id=str(pk))
        after: int | None = None
        while True:
            page, more = await list_events(session, audit_filter, first=EVENT_PAGE, after_seq=after)
            for event in page:
                found.setdefault(event.seq, event_document(event))
            if not more or not page:
                break
            after = page[-1].seq
    return [found[seq] for seq in sorted(found)]


async def gather_report(
    session: AsyncSession, cipher: FieldCipher, customer: CustomerRow, catalog: FieldCatalog
) -> dict[str, Any]:
    """The report's document: values first, then the events that read or changed them."""
    document: dict[str, Any] = {"customer": row_values(customer, cipher, catalog)}
    resources: list[tuple[str, int]] = [("customer", customer.id), ("consent", customer.id)]
    for name, model in CHILDREN:
        rows = (
            await session.execute(
                select(model).where(model.customer_id == customer.id).order_by(model.id)
            )
        ).scalars()
        document[f"{name}s"] = [row_values(row, cipher, catalog) for row in rows]
        resources += [(name, item["id"]) for item in document[f"{name}s"]]
    consents = await session.execute(
        select(ConsentRow).where(ConsentRow.customer_id == customer.id).order_by(ConsentRow.id)
    )
    document["consents"] = [row_values(row, cipher) for row in consents.scalars()]
    document["auditEvents"] = await events_naming(session, resources)
    return document


def _write(path: Path, document: dict[str, Any]) -> str:
    content = orjson.dumps(document, default=_default, option=orjson.OPT_INDENT_2)
    path.write_bytes(content)
    return hashlib.sha256(content).hexdigest()


async def personal_data_report(
    context: RequestContext, runtime: BulkRuntime, customer_id: str
) -> tuple[Download, int, str]:
    """Write the report, register its one-time download; (download, event count, sha256)."""
    require(context, Resource.PRIVACY, Action.READ, "personalDataReport")
    pk = pk_of(customer_id, "Customer", "customerId")
    path = runtime.new_path(f"privacy-{uuid.uuid4().hex}.json")
    try:
        async with write(context) as session:
            await sweep_expired(session, runtime.objects, context.extras["savepoint_events"])
            scope = context.decisions.rows(Resource.PRIVACY, Action.READ)
            customer = (
                await session.execute(
                    select(CustomerRow)
                    .where(CustomerRow.id == pk, scope.sql(CUSTOMER.scope_columns()))
                    .execution_options(populate_existing=True)
                )
            ).scalar_one_or_none()
            if customer is None:
                raise NotFoundError("customer")
            catalog = context.decisions.snapshot.catalog
            document = await gather_report(session, context.cipher, customer, catalog)
            document["generatedAt"] = dt.datetime.now(dt.UTC).isoformat()
            document["generatedBy"] = context.principal.name
            sha256 = await asyncio.to_thread(_write, path, document)
            events = len(document["auditEvents"])
            download = await register_download(
                session,
                principal=context.principal.subject,
                path=path,
                content_type=CONTENT_TYPE,
                row_count=events,
                sha256=sha256,
                ttl_seconds=runtime.settings.download_ttl_seconds,
                objects=runtime.objects,
            )
            await record(context, session, AuditAction.EXPORT, "customer", [pk],
                         changes={"report": "personalData", "exportId": str(download.id),
                                  "format": "JSON", "auditEvents": events, "sha256": sha256},
                         fields=["personalData"])  # fmt: skip
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return download, events, sha256
