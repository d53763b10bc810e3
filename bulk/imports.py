"""Customer imports: every row validated like a mutation, duplicates refused, batches written.

The run, for a table already proven readable (`sources`) and mapped (`columns`):
1. permissions first — the importer needs CREATE on customers and on every mapped field, for
   records it will own in its own department; otherwise nothing is read further;
2. rows in batches of `batch_size`: each is normalised by `validate_customer_input` (the
   mutation's rule set), then checked for duplicates within the file and, with one query per
   batch through the blind indexes, against existing live customers;
3. a real run writes a batch's accepted rows, its progress and its audit event in one
   transaction; a dry run only records progress. Either way every rejected or duplicate row
   lands in the CSV report with its row number, field, rule and reason.

Reading and validating a batch is CPU work and runs in a worker thread, so an import inside the
server does not stall the event loop that answers other requests.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.chain import append_events
from audit.events import AuditAction, AuditRecord
from bulk.cells import csv_cell, import_cell
from bulk.columns import CUSTOM_COLUMN, ColumnMap, is_custom
from bulk.jobs import (
    Progress,
    create_job,
    finish_job,
    job_issues,
    job_progress,
    record_issues,
    record_progress,
)
from bulk.settings import BulkSettings
from bulk.sources import Table
from bulk.store import Storage, delete_files, store_file
from db.crypto import FieldCipher
from db.models import ImportJob
from events.outbox import enqueue
from policy.decisions import AccessDecisions
from policy.principal import Principal
from policy.vocabulary import Action, Resource
from resolvers.context import RequestMeta
from resolvers.personal import blind_form
from resolvers.records import CUSTOMERS
from schema.node import to_global_id
from validation.custom_fields import cell_value, validate_custom_values
from validation.customer import CustomerKind, NormalisedCustomer, validate_customer_input
from validation.errors import ValidationFailed
from validation.similarity import normalise_company_name
from validation.vocabulary import Vocabularies, load_vocabularies

log = logging.getLogger("dossier.imports")

REPORT_HEADER = ("row", "status", "field", "rule", "message", "duplicateOf")
REJECTED = "rejected"
DUPLICATE = "duplicate"
HIDDEN_DUPLICATE = "an existing customer outside your scope"
KEY_LABELS = {
    "creditCode": "credit code",
    "phone": "phone",
    "email": "email",
    "idNumber": "id number",
    "name": "name in the same region",
}


class ImportOvertakenError(Exception):
    """Another run of the same import committed a batch first: this run stops, keeping none."""


def _write_report(path: Path, issues: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as report:
        writer = csv.writer(report)
        writer.writerow(REPORT_HEADER)
        writer.writerows([csv_cell(v) for v in Issue.from_dict(issue).cells()] for issue in issues)


class ImportForbiddenError(Exception):
    """The importer may not create customers, or not with one of the mapped fields."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Importer:
    """Who imports: new customers are theirs and in their department."""

    principal: Principal
    decisions: AccessDecisions
    meta: RequestMeta = RequestMeta()


def check_permissions(importer: Importer, columns: ColumnMap) -> None:
    """Refuse before reading rows: CREATE on customers and on each mapped field, for own rows."""
    principal, decisions = importer.principal, importer.decisions
    facts = (principal.user_id, principal.department_id, 0)
    if principal.user_id is None or principal.department_id is None:
        raise ImportForbiddenError("Mutation.importCustomers", "only a user can own imported rows")
    if not decisions.rows(Resource.CUSTOMER, Action.CREATE).holds_for(*facts):
        raise ImportForbiddenError("Mutation.importCustomers", "Not allowed to create customers")
    for name in columns.field_names:
        if not decisions.field(Resource.CUSTOMER, name, Action.CREATE).holds_for(*facts):
            raise ImportForbiddenError(f"Customer.{name}", f"Not allowed to write Customer.{name}")


@dataclass(frozen=True)
class Issue:
    row: int
    status: str
    message: str
    field: str | None = None
    rule: str | None = None
    duplicate_of: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "status": self.status,
            "field": self.field,
            "rule": self.rule,
            "message": self.message,
            "duplicateOf": self.duplicate_of,
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Issue:
        return cls(
            item["row"], item["status"], item["message"], item.get("field"), item.get("rule"),
            item.get("duplicateOf"),
        )  # fmt: skip

    def cells(self) -> list[Any]:
        return [self.row, self.status, self.field, self.rule, self.message, self.duplicate_of]


@dataclass(frozen=True)
class Candidate:
    row: int
    values: NormalisedCustomer
    keys: tuple[tuple[str, Any], ...]  # duplicate keys, most telling first
    custom: dict[str, Any] = field(default_factory=dict)  # custom values by key, as stored


@dataclass
class ImportOutcome:
    job_id: uuid.UUID
    progress: Progress
    total_rows: int
    issues: list[Issue]
    ignored_columns: tuple[str, ...]
    report_path: Path
    error: str | None = None


@dataclass
class _Batch:
    read: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: set[int] = field(default_factory=set)


def _file_keys(values: NormalisedCustomer) -> tuple[tuple[str, Any], ...]:
    keys: list[tuple[str, Any]] = []
    if values.credit_code:
        keys.append(("creditCode", values.credit_code))
    if values.id_number:
        keys.append(("idNumber", values.id_number))
    if values.phone:
        keys.append(("phone", values.phone))
    if values.email:
        keys.append(("email", values.email.lower()))
    if values.kind is not CustomerKind.PERSON and values.name and values.region:
        # people share names; companies in one region should not
        keys.append(("name", (values.region, normalise_company_name(values.name))))
    return tuple(keys)


class CustomerImport:
    """One import run over a readable, mapped table; `start()` then `run()`."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cipher: FieldCipher,
        settings: BulkSettings,
        directory: Path,
        importer: Importer,
        table: Table,
        columns: ColumnMap,
        file_name: str,
        dry_run: bool,
        on_progress: Callable[[Progress, int], None] | None = None,
        store_report: bool = False,
        upload_key: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.settings = settings
        self.directory = directory
        self.importer = importer
        self.table = table
        self.columns = columns
        self.file_name = file_name
        self.dry_run = dry_run
        self.on_progress = on_progress
        # a worker's report goes to the shared store (any host serves `importReport`); the
        # stored upload is deleted once the import has finished
        self.store_report = store_report
        self.upload_key = upload_key
        self.job_id: uuid.UUID | None = None
        self._seen: dict[tuple[str, Any], int] = {}
        self._rows: Iterator[tuple[int, list[Any]]] | None = None

    async def start(
        self, queue: Callable[[AsyncSession, uuid.UUID], Awaitable[None]] | None = None
    ) -> uuid.UUID:
        """Create the job row (committed), so its progress can be asked for at once; `queue`
        runs in the same transaction (the request stores the upload and queues the job)."""
        check_permissions(self.importer, self.columns)
        async with self.sessions() as session, session.begin():
            self.job_id = await create_job(
                session,
                principal=self.importer.principal.subject,
                resource=Resource.CUSTOMER.value,
                file_name=self.file_name,
                dry_run=self.dry_run,
                total_rows=self.table.total_rows,
                ignored_columns=self.columns.ignored,
            )
            if queue is not None:
                await queue(session, self.job_id)
        return self.job_id

    async def run(self) -> ImportOutcome:
        """Run the import, or resume it after the last batch a previous run committed.

        Each batch commits its rows, its issues, its progress and its audit event together,
        so a run killed mid-way leaves whole batches; the next run skips the rows those
        batches processed (replaying only their in-file duplicate keys) and goes on: no row
        is written twice and none is lost. Raises ImportOvertakenError when another run moved
        the job on meanwhile.
        """
        job_id = self.job_id or await self.start()
        self.job_id = job_id
        report_path = self.directory / f"import-{job_id.hex}-report.csv"
        async with self.sessions() as session:
            vocabularies = await load_vocabularies(session)
            progress = await job_progress(session, job_id)
        try:
            self._rows = self.table.rows()
            if progress.processed:
                await asyncio.to_thread(self._replay, progress.processed, vocabularies)
            while True:
                batch = await asyncio.to_thread(self._prepare_batch, vocabularies)
                if batch.read == 0:
                    break
                progress = await self._store_batch(job_id, batch, progress)
                if self.on_progress is not None:
                    self.on_progress(progress, batch.read)
        except ImportOvertakenError:
            raise
        except Exception as exc:
            log.exception("import %s failed", job_id)
            await self._finish(job_id, progress, report_path, f"{type(exc).__name__}: {exc}")
            raise
        # cancelled (the worker stops) it stays RUNNING: the next run resumes it
        kept = await self._finish(job_id, progress, report_path, None)
        return ImportOutcome(
            job_id, progress, self.table.total_rows, kept, self.columns.ignored, report_path
        )

    async def _finish(
        self, job_id: uuid.UUID, progress: Progress, report_path: Path, error: str | None
    ) -> list[Issue]:
        """Write the report from every issue recorded, and mark the job finished."""
        async with self.sessions() as session, session.begin():
            issues = await job_issues(session, job_id)
            await asyncio.to_thread(_write_report, report_path, issues)
            stored = str(report_path)
            if self.store_report:
                stored = f"import-{job_id.hex}-report.csv"
                await store_file(session, stored, report_path)
                await asyncio.to_thread(report_path.unlink, missing_ok=True)
                if self.upload_key is not None:
                    await delete_files(session, [(Storage.DATABASE, self.upload_key)])
            kept = [Issue.from_dict(issue) for issue in issues[: self.settings.max_job_issues]]
            await finish_job(
                session,
                job_id,
                progress=progress,
                issues=[issue.as_dict() for issue in kept],
                report_path=stored,
                error=error,
            )
        return kept

    def _replay(self, processed: int, vocabularies: Vocabularies) -> None:
        """Consume the rows earlier runs committed, keeping only their duplicate keys."""
        while processed > 0:
            batch = self._prepare_batch(vocabularies, limit=processed)
            if batch.read == 0:
                return
            processed -= batch.read

    # -- one batch ------------------------------------------------------------------------------

    def _prepare_batch(self, vocabularies: Vocabularies, limit: int | None = None) -> _Batch:
        """Read, validate and de-duplicate within the file the next batch (worker thread)."""
        size = min(self.settings.batch_size, limit or self.settings.batch_size)
        assert self._rows is not None
        batch = _Batch()
        for number, cells in self._rows:
            batch.read += 1
            raw = self.columns.record(cells)
            data = {name: text for name, value in raw.items() if (text := import_cell(value))}
            custom_cells = {
                name[len(CUSTOM_COLUMN) :]: data.pop(name) for name in list(data) if is_custom(name)
            }
            try:
                values = validate_customer_input(data, vocabularies=vocabularies)
                custom = self._custom_values(custom_cells)
            except ValidationFailed as failed:
                batch.rejected_rows.add(number)
                batch.issues.extend(
                    Issue(number, REJECTED, e.message, e.field, e.rule) for e in failed.errors
                )
            else:
                keys = _file_keys(values)
                earlier = next(((key, self._seen[key]) for key in keys if key in self._seen), None)
                for key in keys:
                    self._seen.setdefault(key, number)
                if earlier is not None:
                    (kind, _), row = earlier
                    batch.issues.append(
                        Issue(
                            number,
                            DUPLICATE,
                            f"same {KEY_LABELS[kind]} as row {row}",
                            kind,
                            "duplicate",
                            f"row {row}",
                        )  # fmt: skip
                    )
                else:
                    batch.candidates.append(Candidate(number, values, keys, custom))
            if batch.read >= size:
                break
        return batch

    def _custom_values(self, cells: dict[str, str]) -> dict[str, Any]:
        """Custom cells validated as the API validates them, sensitive ones encrypted."""
        catalog = self.importer.decisions.snapshot.catalog
        definitions = {d.key: d for d in catalog.definitions if d.resource is Resource.CUSTOMER}
        parsed = {key: cell_value(definitions.get(key), text) for key, text in cells.items()}
        changes = validate_custom_values(definitions, parsed, {}, creating=True)
        stored: dict[str, Any] = {}
        for key, value in changes.items():
            if value is None:
                continue
            definition = definitions[key]
            stored[key] = (
                self.cipher.encrypt(definition.cipher_label, value)
                if definition.sensitive
                else value
            )
        return stored

    async def _store_batch(self, job_id: uuid.UUID, batch: _Batch, before: Progress) -> Progress:
        """Refuse rows duplicating existing customers; write the rest unless dry run."""
        async with self.sessions() as session, session.begin():
            # the job row, locked: a second run of the same job waits here, then sees it moved
            processed = await session.scalar(
                select(ImportJob.processed_rows).where(ImportJob.id == job_id).with_for_update()
            )
            if processed != before.processed:
                raise ImportOvertakenError(job_id)
            existing = await self._existing_duplicates(session, batch.candidates)
            accepted: list[Candidate] = []
            for candidate in batch.candidates:
                found = existing.get(candidate.row)
                if found is None:
                    accepted.append(candidate)
                    continue
                kind, reference = found
                batch.issues.append(
                    Issue(
                        candidate.row,
                        DUPLICATE,
                        f"same {KEY_LABELS[kind]} as an existing customer",
                        kind,
                        "duplicate",
                        reference,
                    )  # fmt: skip
                )
            batch.issues.sort(key=lambda issue: issue.row)
            progress = Progress(
                processed=before.processed + batch.read,
                accepted=before.accepted + len(accepted),
                rejected=before.rejected + len(batch.rejected_rows),
                duplicates=before.duplicates
                + len({i.row for i in batch.issues if i.status == DUPLICATE}),
                written=before.written + (0 if self.dry_run else len(accepted)),
            )
            await record_progress(session, job_id, progress)
            await record_issues(session, job_id, [issue.as_dict() for issue in batch.issues])
            if not self.dry_run and accepted:
                ids = await self._insert(session, accepted)
                event = self._audit(job_id, accepted, ids)
                await enqueue(session, [event])  # customer.created, in this batch's transaction
                # last before the commit: the audit chain's lock is held from here to COMMIT
                await append_events(session, [event])
        return progress

    async def _existing_duplicates(
        self, session: AsyncSession, candidates: Sequence[Candidate]
    ) -> dict[int, tuple[str, str]]:
        """Row → (matching key, existing customer reference) for rows already on file."""
        if not candidates:
            return {}
        c = CUSTOMERS
        codes = {v.credit_code for v in (x.values for x in candidates) if v.credit_code}
        emails = {self._email_index(x.values.email) for x in candidates if x.values.email}
        phones = {self._phone_index(x.values.phone) for x in candidates if x.values.phone}
        ids = {self._id_index(x.values.id_number) for x in candidates if x.values.id_number}
        names = {
            x.values.name
            for x in candidates
            if x.values.kind is not CustomerKind.PERSON and x.values.name
        }
        clauses = []
        if codes:
            clauses.append(c.c.credit_code.in_(sorted(codes)))
        if emails:
            clauses.append(c.c.email_bidx.in_(sorted(e for e in emails if e)))
        if phones:
            clauses.append(c.c.phone_bidx.in_(sorted(p for p in phones if p)))
        if ids:
            clauses.append(c.c.id_number_bidx.in_(sorted(i for i in ids if i)))
        if names:
            clauses.append(c.c.name.in_(sorted(names)))
        statement = select(
            c.c.id, c.c.owner_id, c.c.department_id, c.c.credit_code, c.c.phone_bidx,
            c.c.email_bidx, c.c.id_number_bidx, c.c.name, c.c.region,
            c.c.kind,
        ).where(c.c.archived_at.is_(None), or_(*clauses))  # fmt: skip
        rows = (await session.execute(statement)).all()
        visible = self.importer.decisions.rows(Resource.CUSTOMER, Action.READ)
        index: dict[tuple[str, Any], str] = {}
        for row in rows:
            seen = visible.holds_for(row.owner_id, row.department_id, row.id)
            reference = to_global_id("Customer", row.id) if seen else HIDDEN_DUPLICATE
            for key in (
                ("creditCode", row.credit_code),
                ("email", row.email_bidx),
                ("phone", row.phone_bidx),
                ("idNumber", row.id_number_bidx),
                ("name", (row.region, row.name)),
            ):
                if key[1] is not None:
                    index.setdefault(key, reference)
        found: dict[int, tuple[str, str]] = {}
        for candidate in candidates:
            v = candidate.values
            probes = (
                ("creditCode", v.credit_code),
                ("idNumber", self._id_index(v.id_number)),
                ("phone", self._phone_index(v.phone)),
                ("email", self._email_index(v.email)),
                ("name", (v.region, v.name) if v.kind is not CustomerKind.PERSON else None),
            )
            for kind, value in probes:
                if value is not None and (kind, value) in index:
                    found[candidate.row] = (kind, index[(kind, value)])
                    break
        return found

    def _email_index(self, email: str | None) -> bytes | None:
        return self.cipher.blind_index("customer.email", blind_form("email", email))

    def _phone_index(self, phone: str | None) -> bytes | None:
        return self.cipher.blind_index("customer.phone", phone)

    def _id_index(self, id_number: str | None) -> bytes | None:
        return self.cipher.blind_index("customer.id_number", id_number)

    async def _insert(self, session: AsyncSession, accepted: Sequence[Candidate]) -> list[int]:
        principal, cipher = self.importer.principal, self.cipher
        records = []
        for candidate in accepted:
            v = candidate.values
            data_key = cipher.new_data_key()  # envelope encryption: one key per customer
            records.append(
                {
                    "name": v.name,
                    "kind": (v.kind or CustomerKind.COMPANY).value,
                    "industry": v.industry,
                    "region": v.region,
                    "level": v.level.value if v.level else "C",
                    "source": v.source,
                    "tags": list(v.tags or ()),
                    "credit_code": v.credit_code,
                    "data_key": data_key,
                    "phone_enc": cipher.encrypt("customer.phone", v.phone, data_key),
                    "phone_bidx": cipher.blind_index("customer.phone", v.phone),
                    "email_enc": cipher.encrypt("customer.email", v.email, data_key),
                    "email_bidx": cipher.blind_index(
                        "customer.email", blind_form("email", v.email)
                    ),
                    "id_number_enc": cipher.encrypt("customer.id_number", v.id_number, data_key),
                    "id_number_bidx": cipher.blind_index("customer.id_number", v.id_number),
                    "address_enc": cipher.encrypt("customer.address", v.address, data_key),
                    "address_bidx": cipher.blind_index("customer.address", v.address),
                    "total_spend": v.total_spend if v.total_spend is not None else Decimal(0),
                    "owner_id": principal.user_id,
                    "department_id": principal.department_id,
                    "custom_fields": candidate.custom,
                }
            )
        statement = insert(CUSTOMERS).returning(CUSTOMERS.c.id, sort_by_parameter_order=True)
        result = await session.execute(statement, records)
        return [row.id for row in result]

    def _audit(
        self, job_id: uuid.UUID, accepted: Sequence[Candidate], ids: Sequence[int]
    ) -> AuditRecord:
        principal, meta = self.importer.principal, self.importer.meta
        return AuditRecord(
            actor=principal.name,
            actor_kind=principal.kind.value,
            action=AuditAction.IMPORT,
            resource_type=Resource.CUSTOMER.value,
            resource_ids=[str(pk) for pk in ids],
            fields=sorted(self.columns.field_names),
            changes={
                "importJob": str(job_id),
                "file": self.file_name,
                "rows": {"from": accepted[0].row, "to": accepted[-1].row},
                "written": len(ids),
            },
            operation=meta.operation or "importCustomers",
            query_hash=meta.query_hash,
            ip=meta.ip,
            user_agent=meta.user_agent,
            request_id=meta.request_id,
            token_id=principal.token_id,
        )
