"""Every read of guarded records goes through here: pages, nested connections, ids, relations.

Each path applies the same three things: the row scope as SQL `WHERE`, the field plan of
`resolvers.masking`, and a note in the request's read log for the audit trail. Nested levels are
batched by DataLoaders, so the statements per request do not grow with the page size.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, bindparam, func, select, tuple_
from strawberry import Info
from strawberry.dataloader import DataLoader

from policy.vocabulary import Action
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError
from resolvers.masking import Materialiser, plan_columns
from resolvers.pagination import backward_page, checked_first, decode_cursor, encode_cursor
from resolvers.records import CHILDREN, SPECS, RecordSpec, child_link
from resolvers.selection import Requested, requested_connection, requested_object
from schema.node import Connection, Edge, PageInfo, integer_pk


@dataclass(frozen=True)
class Ordering:
    """A keyset order: one column (ties broken by id) and a direction."""

    name: str
    column: ColumnElement[Any]
    descending: bool = False
    holds: type = int  # the Python type of the column's values, to check cursors against


@dataclass(frozen=True)
class ChildKey:
    parent_pk: int
    first: int
    after: int | None
    fields: frozenset[str]
    edges: bool = True


@dataclass(frozen=True)
class RecordKey:
    pk: int
    fields: frozenset[str]


class RecordReader:
    def __init__(self, context: RequestContext) -> None:
        self.context = context
        self._children: dict[str, DataLoader[ChildKey, Connection[Any]]] = {}
        self._records: dict[str, DataLoader[RecordKey, Any]] = {}

    # -- root pages -----------------------------------------------------------------------------

    async def page(
        self,
        spec: RecordSpec,
        requested: Requested,
        *,
        first: int | None,
        after: str | None,
        where: Sequence[ColumnElement[bool]] = (),
        ordering: Ordering | None = None,
        last: int | None = None,
        before: str | None = None,
        first_given: bool = False,
    ) -> Connection[Any]:
        backward = backward_page(first, after, last, before, first_given=first_given)
        if backward is not None:
            return await self._page_backward(
                spec,
                requested,
                backward,
                before,
                where,
                ordering or Ordering("id", spec.table.c.id),
            )
        limit = checked_first(first)
        ordering = ordering or Ordering("id", spec.table.c.id)
        decisions = self.context.decisions
        rows_allowed = decisions.rows(spec.resource, Action.READ)
        if rows_allowed.is_never:
            return _connection([], [], False, 0 if requested.total_count else None)
        user_id = self.context.principal.user_id
        conditions = [spec.rows_sql(rows_allowed, user_id), *spec.live(), *where]
        plan = self._plan(spec, requested.fields)
        sort_key = ordering.column.label("_sort")
        statement = select(*plan.columns, sort_key).select_from(spec.from_clause())
        page_conditions = list(conditions)
        if after is not None:
            value, pk = decode_cursor(after, expect=ordering.holds)
            keyset = tuple_(ordering.column, spec.table.c.id)
            page_conditions.append(
                keyset < tuple_(value, pk) if ordering.descending else keyset > tuple_(value, pk)
            )
        direction = (lambda c: c.desc()) if ordering.descending else (lambda c: c.asc())
        statement = (
            statement.where(and_(*page_conditions))
            .order_by(direction(ordering.column), direction(spec.table.c.id))
            .limit(limit + 1)
        )
        rows = (await self.context.db.execute(statement)).all()
        has_next = len(rows) > limit
        rows = rows[:limit]
        total = None
        if requested.total_count:
            count = select(func.count()).select_from(spec.from_clause()).where(and_(*conditions))
            total = (await self.context.db.execute(count)).scalar_one()
        objects = self._materialise(spec, plan, rows)
        sort_at = len(plan.columns)  # `_sort` follows the plan's columns
        cursor_rows = rows if requested.edges else rows[-1:]
        cursors = [
            encode_cursor(row[sort_at], obj.pk)
            for row, obj in zip(cursor_rows, objects[-len(cursor_rows) :], strict=True)
        ]
        if requested.edges:
            return _connection(objects, cursors, has_next, total)
        page = _connection(objects, [], has_next, total, cursors[-1] if cursors else None)
        if rows:
            page.page_info.start_cursor = encode_cursor(rows[0][sort_at], objects[0].pk)
        return page

    async def _page_backward(
        self,
        spec: RecordSpec,
        requested: Requested,
        limit: int,
        before: str | None,
        where: Sequence[ColumnElement[bool]],
        ordering: Ordering,
    ) -> Connection[Any]:
        """The `limit` rows just before `before` (the last ones without it), in the
        connection's order: the same scope, filters and masks as a forward page, read in the
        opposite order; hasNextPage says whether a visible row lies at or after `before`."""
        decisions = self.context.decisions
        rows_allowed = decisions.rows(spec.resource, Action.READ)
        if rows_allowed.is_never:
            return _connection([], [], False, 0 if requested.total_count else None)
        conditions = [rows_allowed.sql(spec.scope_columns()), *spec.live(), *where]
        plan = self._plan(spec, requested.fields)
        keyset = tuple_(ordering.column, spec.table.c.id)
        page_conditions = list(conditions)
        after_conditions: list[ColumnElement[bool]] = []
        if before is not None:
            value, pk = decode_cursor(before, argument="before", expect=ordering.holds)
            bound = tuple_(value, pk)
            page_conditions.append(keyset > bound if ordering.descending else keyset < bound)
            after_conditions.append(keyset <= bound if ordering.descending else keyset >= bound)
        # reversed: nearest the bound first
        direction = (lambda c: c.asc()) if ordering.descending else (lambda c: c.desc())
        statement = (
            select(*plan.columns, ordering.column.label("_sort"))
            .select_from(spec.from_clause())
            .where(and_(*page_conditions))
            .order_by(direction(ordering.column), direction(spec.table.c.id))
            .limit(limit + 1)
        )
        rows = (await self.context.db.execute(statement)).all()
        has_previous = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_next = False
        if after_conditions:
            later = (
                select(spec.table.c.id)
                .select_from(spec.from_clause())
                .where(and_(*conditions, *after_conditions))
                .limit(1)
            )
            has_next = (await self.context.db.execute(later)).first() is not None
        total = None
        if requested.total_count:
            count = select(func.count()).select_from(spec.from_clause()).where(and_(*conditions))
            total = (await self.context.db.execute(count)).scalar_one()
        objects = self._materialise(spec, plan, rows)
        sort_at = len(plan.columns)
        cursors = [
            encode_cursor(row[sort_at], obj.pk) for row, obj in zip(rows, objects, strict=True)
        ]
        page = _connection(objects, cursors if requested.edges else [], has_next, total,
                           cursors[-1] if cursors else None)  # fmt: skip
        page.page_info.has_previous_page = has_previous
        page.page_info.start_cursor = cursors[0] if cursors else None
        return page

    # -- single records -------------------------------------------------------------------------

    async def one(self, info: Info, type_name: str, pk: int) -> Any:
        """A record by primary key, or None when it does not exist for the caller."""
        return await self.one_with(requested_object(info, type_name), type_name, pk)

    async def one_with(self, requested: Requested, type_name: str, pk: int) -> Any:
        return await self._record_loader(type_name).load(RecordKey(pk, requested.fields))

    async def related(self, info: Info, parent: Any, field: str, pk: int | None) -> Any:
        """The record a to-one field of `parent` points at, if the caller may follow it."""
        target = SPECS[type(parent).__name__].fields[field].target
        assert target is not None
        return await self.related_with(requested_object(info, target), parent, field, pk)

    async def related_with(
        self, requested: Requested, parent: Any, field: str, pk: int | None
    ) -> Any:
        return await self.related_future(requested, parent, field, pk)

    def related_future(
        self, requested: Requested, parent: Any, field: str, pk: int | None
    ) -> Awaitable[Any]:
        """`related_with` without a coroutine: a future the loader resolves in its batch."""
        parent_type = type(parent).__name__
        if field in parent.withheld:
            self.context.deny(f"{parent_type}.{field}")
            return _resolved(None)
        if pk is None:
            return _resolved(None)
        target = SPECS[parent_type].fields[field].target
        assert target is not None
        return self._record_loader(target).load(RecordKey(pk, requested.fields))

    async def related_many(
        self, requested: Requested, parents: Sequence[Any], field: str, foreign_key: str
    ) -> list[Any]:
        """`related_with` for a whole level at once: one statement, no loader round trip.

        The direct executor knows every parent of a level before it asks, so it needs no
        DataLoader to discover the batch; the checks and the fetch are the same.
        """
        if not parents:
            return []
        parent_type = type(parents[0]).__name__
        target = SPECS[parent_type].fields[field].target
        assert target is not None
        wanted: list[int | None] = []
        for parent in parents:
            if field in parent.withheld:
                self.context.deny(f"{parent_type}.{field}")
                wanted.append(None)
            else:
                wanted.append(getattr(parent, foreign_key))
        pks = sorted({pk for pk in wanted if pk is not None})
        found = {}
        if pks:
            found = {o.pk: o for o in await self._fetch_by_pk(SPECS[target], requested.fields, pks)}
        return [None if pk is None else found.get(pk) for pk in wanted]

    async def children_many(
        self,
        requested: Requested,
        parents: Sequence[Any],
        field: str,
        first: int | None,
        after: str | None,
    ) -> list[Connection[Any] | None]:
        """`children_with` for a whole level at once (see `related_many`)."""
        if not parents:
            return []
        parent_type = type(parents[0]).__name__
        child_type = CHILDREN[(parent_type, field)]
        limit = checked_first(first)
        after_pk = decode_cursor(after)[1] if after is not None else None
        keys: list[ChildKey | None] = []
        for parent in parents:
            if field in parent.withheld:
                self.context.deny(f"{parent_type}.{field}")
                keys.append(None)
            else:
                keys.append(ChildKey(parent.pk, limit, after_pk, requested.fields, requested.edges))
        present = [key for key in keys if key is not None]
        pages = await self._fetch_children(SPECS[child_type], present) if present else {}
        return [None if key is None else pages[key] for key in keys]

    def _record_loader(self, type_name: str) -> DataLoader[RecordKey, Any]:
        loader = self._records.get(type_name)
        if loader is None:
            spec = SPECS[type_name]

            async def load(keys: list[RecordKey]) -> list[Any]:
                by_fields: dict[frozenset[str], list[int]] = defaultdict(list)
                for key in keys:
                    by_fields[key.fields].append(key.pk)
                found: dict[tuple[int, frozenset[str]], Any] = {}
                for fields, pks in by_fields.items():
                    for obj in await self._fetch_by_pk(spec, fields, pks):
                        found[(obj.pk, fields)] = obj
                return [found.get((key.pk, key.fields)) for key in keys]

            loader = DataLoader(load_fn=load)
            self._records[type_name] = loader
        return loader

    async def _fetch_by_pk(
        self, spec: RecordSpec, fields: frozenset[str], pks: list[int]
    ) -> list[Any]:
        decisions = self.context.decisions
        rows_allowed = decisions.rows(spec.resource, Action.READ)
        if rows_allowed.is_never:
            return []
        plan = self._plan(spec, fields)
        statement = (
            select(*plan.columns)
            .select_from(spec.from_clause())
            .where(
                spec.table.c.id.in_(sorted(set(pks))),
                spec.rows_sql(rows_allowed, self.context.principal.user_id),
                *spec.live(),
            )
        )
        rows = (await self.context.db.execute(statement)).all()
        return self._materialise(spec, plan, rows)

    # -- nested connections ---------------------------------------------------------------------

    async def children(
        self, info: Info, parent: Any, field: str, first: int | None, after: str | None
    ) -> Connection[Any] | None:
        child_type, _ = child_link(type(parent).__name__, field)
        requested = requested_connection(info, child_type)
        return await self.children_with(requested, parent, field, first, after)

    async def children_with(
        self, requested: Requested, parent: Any, field: str, first: int | None, after: str | None
    ) -> Connection[Any] | None:
        return await self.children_future(requested, parent, field, first, after)

    def children_future(
        self, requested: Requested, parent: Any, field: str, first: int | None, after: str | None
    ) -> Awaitable[Connection[Any] | None]:
        """`children_with` without a coroutine: gathering 150 futures costs no tasks."""
        parent_type = type(parent).__name__
        if field in parent.withheld:
            self.context.deny(f"{parent_type}.{field}")
            return _resolved(None)
        child_type, link = child_link(parent_type, field)
        limit = checked_first(first)
        after_pk = None
        if after is not None:
            _, after_pk = decode_cursor(after)
        key = ChildKey(parent.pk, limit, after_pk, requested.fields, requested.edges)
        return self._children_loader(child_type, link).load(key)

    def _children_loader(
        self, child_type: str, link: str = "customer_id"
    ) -> DataLoader[ChildKey, Connection[Any]]:
        loader = self._children.get(f"{child_type}.{link}")
        if loader is None:
            spec = SPECS[child_type]

            async def load(keys: list[ChildKey]) -> list[Connection[Any]]:
                groups: dict[Hashable, list[ChildKey]] = defaultdict(list)
                for key in keys:
                    groups[(key.first, key.after, key.fields, key.edges)].append(key)
                pages: dict[ChildKey, Connection[Any]] = {}
                for group in groups.values():
                    pages.update(await self._fetch_children(spec, group, link))
                return [pages[key] for key in keys]

            loader = DataLoader(load_fn=load)
            self._children[f"{child_type}.{link}"] = loader
        return loader

    async def _fetch_children(
        self, spec: RecordSpec, keys: list[ChildKey], link: str = "customer_id"
    ) -> dict[ChildKey, Connection[Any]]:
        sample = keys[0]
        decisions = self.context.decisions
        rows_allowed = decisions.rows(spec.resource, Action.READ)
        if rows_allowed.is_never:
            return {key: _connection([], [], False, 0) for key in keys}
        plan, statement = self._children_statement(spec, sample.fields, link)
        parameters = {
            "parents": sorted({key.parent_pk for key in keys}),
            "after": sample.after if sample.after is not None else 0,
            "limit": sample.first + 1,
        }
        rows = (await self.context.db.execute(statement, parameters)).all()
        if not rows:
            return {key: _connection([], [], False, 0) for key in keys}
        parent_at, total_at = len(plan.columns), len(plan.columns) + 2  # see _children_statement
        by_parent: dict[int, list[Any]] = defaultdict(list)
        totals: dict[int, int] = {}
        for row in rows:
            by_parent[row[parent_at]].append(row)
            totals[row[parent_at]] = row[total_at]
        # one page per parent, built in one pass: trim each to `first`, materialise together
        kept: list[Any] = []
        spans: dict[int, tuple[int, int, bool]] = {}
        for parent, parent_rows in by_parent.items():
            start = len(kept)
            kept.extend(parent_rows[: sample.first])
            spans[parent] = (start, len(kept), len(parent_rows) > sample.first)
        objects = self._materialise(spec, plan, kept)
        result: dict[ChildKey, Connection[Any]] = {}
        for key in keys:
            start, end, has_next = spans.get(key.parent_pk, (0, 0, False))
            page = objects[start:end]
            cursors = [encode_cursor(None, obj.pk) for obj in page] if key.edges else []
            end_cursor = encode_cursor(None, page[-1].pk) if page else None
            result[key] = _connection(
                page, cursors, has_next, totals.get(key.parent_pk, 0), end_cursor
            )
        return result

    def _children_statement(
        self, spec: RecordSpec, fields: frozenset[str], link_column: str = "customer_id"
    ) -> tuple[Any, Any]:
        """The children query for this principal and selection, built once and then reused.

        Building it costs more than running it (the subquery copies every column with its
        foreign keys), and it depends only on the decisions and the fields: page bounds and
        parents are bind parameters.
        """
        decisions = self.context.decisions
        cache_key = ("children", spec.type_name, fields, link_column)
        cached = decisions.derived.get(cache_key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        plan = plan_columns(spec, fields, decisions)
        link = spec.table.c[link_column]
        after = bindparam("after", type_=Integer)
        position = func.sum((spec.table.c.id > after).cast(Integer)).over(
            partition_by=link, order_by=spec.table.c.id
        )
        inner = (
            select(
                *plan.columns,
                link.label("_parent"),
                position.label("_position"),
                func.count().over(partition_by=link).label("_total"),
            )
            .select_from(spec.from_clause())
            .where(
                link.in_(bindparam("parents", expanding=True)),
                spec.rows_sql(
                    decisions.rows(spec.resource, Action.READ), self.context.principal.user_id
                ),
                *spec.live(),
            )
            .subquery()
        )
        statement = (
            select(inner)
            .where(inner.c._pk > after, inner.c._position <= bindparam("limit", type_=Integer))
            # `c["_parent"]`, not `c._parent`: that attribute is the collection's own parent
            # (the subquery), which ordered by every column and failed on JSON ones
            .order_by(inner.c["_parent"], inner.c._pk)
        )
        decisions.derived[cache_key] = (plan, statement)
        return plan, statement

    def _plan(self, spec: RecordSpec, fields: frozenset[str]) -> Any:
        """The column plan for this principal and selection, kept with its decisions."""
        derived = self.context.decisions.derived
        key = ("plan", spec.type_name, fields)
        plan = derived.get(key)
        if plan is None:
            plan = derived[key] = plan_columns(spec, fields, self.context.decisions)
        return plan

    # -- shared ---------------------------------------------------------------------------------

    def _materialise(self, spec: RecordSpec, plan: Any, rows: Sequence[Any]) -> list[Any]:
        objects, withheld, masked = Materialiser(plan, self.context.cipher).build_noting(rows)
        for name in withheld:
            self.context.deny(f"{spec.type_name}.{name}")
        if objects:
            self.context.reads.note(
                spec.resource.value,
                [obj.pk for obj in objects],
                plan.returned_fields,
                type_name=spec.type_name,
                masked=masked,
                hidden=(f.name for f in plan.hidden),
            )
        return objects


def _connection(
    objects: list[Any],
    cursors: list[str],
    has_next: bool,
    total: int | None,
    end_cursor: str | None = None,
) -> Connection[Any]:
    """A page; `cursors` may be empty when no edges were asked for (then pass `end_cursor`)."""
    if end_cursor is None and cursors:
        end_cursor = cursors[-1]
    return Connection(
        edges=[Edge(cursor=c, node=o) for c, o in zip(cursors, objects, strict=False)],
        nodes=objects,
        page_info=PageInfo(
            has_next_page=has_next,
            end_cursor=end_cursor,
            start_cursor=cursors[0] if cursors else None,
        ),
        total_count=total,
    )


def _resolved(value: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def require_int_pk(raw: str, argument: str = "id") -> int:
    key = integer_pk(raw)
    if key is None:
        raise BadUserInputError("malformed id", argument=argument)
    return key
