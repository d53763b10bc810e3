"""Row predicates: which rows a decision reaches, evaluable in SQL and in Python.

A decision is a small boolean expression over three facts of a customer row — its owner, its
department and its id — because every guarded record is a customer or hangs off one. The same
expression becomes a SQL `WHERE` for lists, counts and writes, and is evaluated per row in Python
only for the rare field that is visible on some rows and not others (a manager's phone mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, false, not_, or_, true


class RowFacts(Protocol):
    """What a predicate looks at; customer rows and loaded children both provide it."""

    owner_id: int | None
    department_id: int | None
    customer_id: int


@dataclass(frozen=True, slots=True)
class Predicate:
    """Base of the expression tree; instances are immutable and hashable."""

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        raise NotImplementedError

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        raise NotImplementedError

    @property
    def is_always(self) -> bool:
        return isinstance(self, Always)

    @property
    def is_never(self) -> bool:
        return isinstance(self, Never)


@dataclass(frozen=True, slots=True)
class ScopeColumns:
    """The columns a predicate compiles onto: usually `customers.owner_id` etc."""

    owner_id: Any
    department_id: Any
    customer_id: Any


@dataclass(frozen=True, slots=True)
class Always(Predicate):
    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return True

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return true()


@dataclass(frozen=True, slots=True)
class Never(Predicate):
    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return False

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return false()


@dataclass(frozen=True, slots=True)
class OwnedBy(Predicate):
    user_id: int

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return owner_id == self.user_id

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return columns.owner_id == self.user_id  # type: ignore[no-any-return]  # Column operator


@dataclass(frozen=True, slots=True)
class InDepartments(Predicate):
    department_ids: frozenset[int]

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return department_id in self.department_ids

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return columns.department_id.in_(sorted(self.department_ids))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class AmongCustomers(Predicate):
    """A partner token's shared customers."""

    customer_ids: frozenset[int]

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return customer_id in self.customer_ids

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return columns.customer_id.in_(sorted(self.customer_ids))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class AnyOf(Predicate):
    parts: tuple[Predicate, ...]

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return any(p.holds_for(owner_id, department_id, customer_id) for p in self.parts)

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return or_(*(p.sql(columns) for p in self.parts))


@dataclass(frozen=True, slots=True)
class AllOf(Predicate):
    parts: tuple[Predicate, ...]

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return all(p.holds_for(owner_id, department_id, customer_id) for p in self.parts)

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return and_(*(p.sql(columns) for p in self.parts))


@dataclass(frozen=True, slots=True)
class Not(Predicate):
    part: Predicate

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return not self.part.holds_for(owner_id, department_id, customer_id)

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return not_(self.part.sql(columns))


ALWAYS = Always()
NEVER = Never()


def any_of(parts: list[Predicate] | tuple[Predicate, ...]) -> Predicate:
    """Union, folding constants and merging department sets so SQL stays one `IN`."""
    flat: list[Predicate] = []
    departments: set[int] = set()
    for part in parts:
        if part.is_always:
            return ALWAYS
        if part.is_never:
            continue
        if isinstance(part, InDepartments):
            departments |= part.department_ids
        elif isinstance(part, AnyOf):
            flat.extend(part.parts)
        elif part not in flat:
            flat.append(part)
    if departments:
        flat.insert(0, InDepartments(frozenset(departments)))
    if not flat:
        return NEVER
    return flat[0] if len(flat) == 1 else AnyOf(tuple(flat))


def all_of(parts: list[Predicate] | tuple[Predicate, ...]) -> Predicate:
    flat: list[Predicate] = []
    for part in parts:
        if part.is_never:
            return NEVER
        if part.is_always or part in flat:
            continue
        flat.extend(part.parts if isinstance(part, AllOf) else (part,))
    if not flat:
        return ALWAYS
    return flat[0] if len(flat) == 1 else AllOf(tuple(flat))


def but_not(allowed: Predicate, denied: Predicate) -> Predicate:
    if denied.is_never or allowed.is_never:
        return allowed
    if denied.is_always:
        return NEVER
    return all_of([allowed, Not(denied)])


def implies(p: Predicate, q: Predicate) -> bool:
    """Whether every row satisfying `p` satisfies `q`; conservative (False when unsure).

    Used to see that a field rule is no narrower than the rows already visible — a sales rep's
    phone rule (OWN) on her OWN rows — so the field needs no per-row mask.
    """
    if q.is_always or p.is_never or p == q:
        return True
    if isinstance(p, AllOf):
        return any(implies(part, q) for part in p.parts)
    if isinstance(p, AnyOf):
        return all(implies(part, q) for part in p.parts)
    if isinstance(q, AllOf):
        return all(implies(p, part) for part in q.parts)
    if isinstance(q, AnyOf):
        return any(implies(p, part) for part in q.parts)
    if isinstance(p, InDepartments) and isinstance(q, InDepartments):
        return p.department_ids <= q.department_ids
    if isinstance(p, AmongCustomers) and isinstance(q, AmongCustomers):
        return p.customer_ids <= q.customer_ids
    return False
