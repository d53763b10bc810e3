"""What a request disclosed: for each record read, the fields it actually received.

The audit trail must answer "whose phone numbers did bob see". A row-dependent mask hands bob
the `phone` of some customers and `null` for the rest; logging "bob read `phone` of all fifty"
would claim disclosures that never happened and hide which numbers did leave. So every reader
notes, per set of rows, the fields returned and, per masked field, the rows it was withheld on;
`disclosures` turns that into groups of records that received the same fields (one READ event
each) and groups that were refused the same fields (one DENIED event each).

Groups stay few: a view has as many as it has distinct masks, not as many as rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

RecordId = int | str


@dataclass(frozen=True, slots=True)
class Noted:
    """One reader's rows of one type: the fields they came with, and where some were not."""

    ids: Collection[RecordId]
    fields: frozenset[str]
    masked: Mapping[str, Collection[RecordId]]  # field → the rows it was withheld on
    hidden: frozenset[str]  # fields withheld on every row


@dataclass(frozen=True, slots=True)
class Disclosure:
    """Records of one type that received (or were refused) the same fields."""

    resource: str
    type_name: str
    fields: tuple[str, ...]
    ids: tuple[RecordId, ...]


@dataclass
class ReadLog:
    """Records and fields returned, per resource type, with what was withheld on which row."""

    entries: dict[str, list[Noted]] = field(default_factory=dict)
    type_names: dict[str, str] = field(default_factory=dict)

    def note(
        self,
        resource: str,
        ids: Iterable[RecordId],
        fields: Iterable[str],
        *,
        type_name: str | None = None,
        masked: Mapping[str, Collection[RecordId]] | None = None,
        hidden: Iterable[str] = (),
    ) -> None:
        """Ids are kept as given (mostly bigint keys) and turned into text once, in the audit
        record: per id `str()` here cost ~0.1 ms on a 550-id view. `fields` are those returned
        on every row but where `masked` says otherwise; `hidden` ones came on none."""
        kept = ids if isinstance(ids, Collection) else list(ids)
        masked_on = {name: rows for name, rows in (masked or {}).items() if rows}
        self.entries.setdefault(resource, []).append(
            Noted(kept, frozenset(fields), masked_on, frozenset(hidden))
        )
        if type_name is not None:
            self.type_names.setdefault(resource, type_name)

    def disclosures(self) -> tuple[list[Disclosure], list[Disclosure]]:
        """(what was read, what was withheld), grouped, in a stable order."""
        reads: list[Disclosure] = []
        refused: list[Disclosure] = []
        for resource in sorted(self.entries):
            type_name = self.type_names.get(resource, resource)
            received, withheld = _per_record(self.entries[resource])
            reads.extend(_grouped(resource, type_name, received))
            refused.extend(_grouped(resource, type_name, withheld))
        return reads, refused


def _per_record(
    noted: list[Noted],
) -> tuple[dict[frozenset[str], list[RecordId]], dict[frozenset[str], list[RecordId]]]:
    """Ids by the fields they received, and by the fields withheld from them.

    The common case — one reader, no mask — costs no loop over the ids: they all share the
    reader's fields. A record reached twice (a customer listed and also under its contact)
    received the union of what each reader gave it.
    """
    if len(noted) == 1:
        return _one_reader(noted[0])
    received: dict[RecordId, frozenset[str]] = {}
    withheld: dict[RecordId, frozenset[str]] = {}
    for entry in noted:
        masked_by_id: dict[RecordId, set[str]] = {}
        for name, rows in entry.masked.items():
            for record in rows:
                masked_by_id.setdefault(record, set()).add(name)
        for record in entry.ids:
            masked = masked_by_id.get(record)
            got = entry.fields if masked is None else entry.fields - masked
            before = received.get(record)
            received[record] = got if before is None else before | got
            refused = entry.hidden if masked is None else entry.hidden | masked
            if refused:
                before = withheld.get(record)
                withheld[record] = refused if before is None else before | refused
    for record, got in received.items():  # disclosed by one reader: not withheld after all
        if record in withheld:
            withheld[record] = withheld[record] - got
    return _by_fields(received, keep_empty=True), _by_fields(withheld, keep_empty=False)


def _one_reader(
    entry: Noted,
) -> tuple[dict[frozenset[str], list[RecordId]], dict[frozenset[str], list[RecordId]]]:
    """`_per_record` for one reader, the usual case, without a dictionary entry per record.

    Every record received `fields` and was refused `hidden`, but for the few a mask withheld
    something from: only those are looked at one by one. (The event's ids are sorted and made
    unique later, in the audit record, so the order and repeats of ids here do not matter.)
    """
    masked_by_id: dict[RecordId, set[str]] = {}
    for name, rows in entry.masked.items():
        for record in rows:
            masked_by_id.setdefault(record, set()).add(name)
    if not masked_by_id and not entry.hidden:  # a read of ids alone (or of none) is a read
        return {entry.fields: list(entry.ids)}, {}
    received: dict[frozenset[str], list[RecordId]] = {}
    withheld: dict[frozenset[str], list[RecordId]] = {}
    if masked_by_id:
        plain = [record for record in entry.ids if record not in masked_by_id]
        for record, names in masked_by_id.items():
            masked = frozenset(names)
            received.setdefault(entry.fields - masked, []).append(record)
            withheld.setdefault(entry.hidden | masked, []).append(record)
    else:
        plain = list(entry.ids)
    if plain:
        received.setdefault(entry.fields, []).extend(plain)
        if entry.hidden:
            withheld.setdefault(entry.hidden, []).extend(plain)
    return received, withheld


def _by_fields(
    per_record: dict[RecordId, frozenset[str]], *, keep_empty: bool
) -> dict[frozenset[str], list[RecordId]]:
    """`keep_empty`: a record read for its id alone was still read."""
    groups: dict[frozenset[str], list[RecordId]] = {}
    for record, fields in per_record.items():
        if fields or keep_empty:
            groups.setdefault(fields, []).append(record)
    return groups


def _grouped(
    resource: str, type_name: str, groups: dict[frozenset[str], list[RecordId]]
) -> list[Disclosure]:
    return [
        Disclosure(resource, type_name, tuple(sorted(fields)), tuple(ids))
        for fields, ids in sorted(groups.items(), key=lambda group: sorted(group[0]))
    ]
