"""Compiling a record read into one statement: levels of rows, their JSON built as they are read.

Every set of rows the caller receives — a root page, one nested connection under every parent
of a level, a to-one relation — is a *level*: a subquery selecting `plan_columns` of its type
under `decisions.rows(...)` and the type's liveness, exactly as `RecordReader` selects it. A
level's JSON is built in the select that reads its rows; nested connections and to-one relations
are `LEFT JOIN LATERAL`s run once per parent row (`ORDER BY id LIMIT first`, on the link
column's index), so the statement's cost grows with the rows returned, not with the number of
rows the caller could see.

Besides its JSON, every row carries *marks* for the read log and FORBIDDEN: its level's id, and
per withheld field whether it was withheld on that row — for its own level and, aggregated, for
every level below it. The aggregates that build a list's JSON also fold its rows' marks
(`string_agg` of ids, `bool_or` of flags), so one pass over the rows yields everything.

The statement's columns: the response's `data` object, the names of withheld fields (FORBIDDEN
and the DENIED audit event), one array of ids per level for the read log, then per level and
row-dependent field the ids of the rows that field was withheld on (so the log names, per
record, the fields it actually disclosed).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, FragmentDefinitionNode, OperationDefinitionNode
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    not_,
    null,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array

from policy.decisions import AccessDecisions
from policy.predicates import ScopeColumns
from policy.vocabulary import Action
from resolvers.filters import pk_of
from resolvers.masking import ColumnPlan, plan_columns
from resolvers.operation import (
    ROOT_CONNECTIONS,
    Arguments,
    Fields,
    NotDirectError,
    collect,
    sub,
)
from resolvers.pagination import checked_first, decode_cursor
from resolvers.reader import Ordering
from resolvers.records import CHILDREN, CUSTOMER, SPECS, FieldSpec, RecordSpec
from resolvers.selection import connection_fields, object_fields
from sqljson.values import (
    EMPTY_LIST,
    NotCompilableError,
    child_cursor,
    constant,
    field_value,
    global_id,
    json_object,
    sort_cursor,
)

__all__ = ["Level", "NotCompilableError", "ReadCompiler"]

Pairs = list[tuple[str, ColumnElement[Any]]]
IDS, FLAG = "ids", "flag"
# (column label, IDS or FLAG): what a row or a group of rows tells the read log and FORBIDDEN
Marks = list[tuple[str, str]]
_COMMA = literal_column("','")


@dataclass(frozen=True)
class Level:
    """Rows of one type the caller receives, as one subquery of `plan` columns."""

    spec: RecordSpec
    plan: ColumnPlan
    rows: FromClause
    index: int
    carry: tuple[str, ...] = ()  # columns the JSON select keeps for its parent: _sort, _rn

    def access(self, name: str) -> str:
        if any(f.name == name for f in self.plan.hidden):
            return "hidden"
        if any(f.name == name for f in self.plan.row_dependent):
            return "dependent"
        return "visible"

    @property
    def ids(self) -> str:
        return f"_i{self.index}"

    def hidden(self, field: FieldSpec) -> str:
        return f"_h{self.index}_{field.name}"

    def masked(self, field: FieldSpec) -> str:
        return f"_m{self.index}_{field.name}"


@dataclass(frozen=True)
class Connection:
    """The selections of one connection field: its own keys, and its nodes' and edges'."""

    top: Fields
    nodes: Fields | None
    edges: Fields | None
    edge_nodes: Fields | None
    info: frozenset[str] = frozenset()  # the PageInfo fields selected


@dataclass(frozen=True)
class PageParts:
    """SQL for the parts of a connection's JSON; built only for the keys that are asked."""

    nodes: Callable[[], ColumnElement[Any]]
    edges: Callable[[], ColumnElement[Any]]
    total: Callable[[], ColumnElement[Any]]
    has_next: Callable[[], ColumnElement[Any]]
    end_cursor: Callable[[], ColumnElement[Any]]


@dataclass
class Joins:
    """LATERAL joins a level's JSON select reads, each with the marks it brings per row."""

    laterals: list[tuple[FromClause, Marks]]


def _number(value: int) -> Any:
    """A page size or cursor id, written into the statement: they shape the plan (a LIMIT the
    planner knows), and a statement with only the policy's values as parameters is one
    PostgreSQL may plan once for good."""
    return bindparam(None, int(value), type_=Integer, literal_execute=True)


def _unasked() -> ColumnElement[Any]:
    raise NotCompilableError("a page part built without being asked for")


def _child_cursor(rows: Any) -> ColumnElement[str]:
    return child_cursor(rows.c._pk)


def _folded(source: FromClause, marks: Marks, kept: Any = None) -> list[ColumnElement[Any]]:
    """The marks of a group of rows: ids joined by commas, flags or-ed."""
    folded = []
    for label, kind in marks:
        column = source.c[label]
        value = func.string_agg(column, _COMMA) if kind == IDS else func.bool_or(column)
        if kept is not None:
            value = value.filter(kept)
        folded.append(value.label(label))
    return folded


def _first(column: Any, *order: Any) -> ColumnElement[Any]:
    """The value of `column` on the first row of a group in `order` (NULL for no rows)."""
    return func.array_agg(aggregate_order_by(column, *order), type_=ARRAY(column.type))[1]


class ReadCompiler:
    """Builds the statement of one operation for one principal's decisions."""

    def __init__(
        self,
        decisions: AccessDecisions,
        fragments: dict[str, FragmentDefinitionNode],
        arguments: Arguments,
    ) -> None:
        self.decisions = decisions
        self.fragments = fragments
        self.arguments = arguments
        self.levels: list[Level] = []
        self._names = itertools.count()
        self._groups: list[FromClause] = []  # one row each: a root field's JSON and marks
        self._marks: dict[str, Any] = {}  # mark label → its column in a root group

    def statement(self, operation: OperationDefinitionNode) -> Select[Any]:
        try:
            root = collect([operation.selection_set], self.fragments, "Query")
        except NotDirectError as exc:
            raise NotCompilableError(str(exc)) from exc
        pairs: Pairs = []
        for key, nodes in root.items():
            name = nodes[0].name.value
            if name == "__typename":
                pairs.append((key, constant("Query")))
            elif name == "customer":
                pairs.append((key, self._customer(nodes)))
            elif name in ROOT_CONNECTIONS:
                pairs.append((key, self._root_connection(name, nodes)))
            else:
                raise NotCompilableError(name)
        data = json_object(pairs)
        withheld = [d for level in self.levels for d in self._withheld(level)]
        denied = func.array_remove(array(withheld), null()) if withheld else array([], type_=Text)
        ids = [self._level_ids(level, level.ids) for level in self.levels]
        ids += [
            self._level_ids(level, level.masked(field))
            for level in self.levels
            for field in level.plan.row_dependent
        ]
        # as UTF-8 bytes: asyncpg hands bytea over as it came, where text was decoded to a str
        # only to be encoded again for the response (~55 µs of a 44 kB view, measured)
        utf8 = func.convert_to(cast(data, Text), literal_column("'UTF8'"))
        columns = [utf8.label("data"), denied.label("denied"), *ids]
        if not self._groups:
            return select(*columns)
        source = self._groups[0]
        for group in self._groups[1:]:
            source = source.join(group, true())
        return select(*columns).select_from(source)

    # -- levels -----------------------------------------------------------------------------

    def _name(self, kind: str) -> str:
        return f"{kind}{next(self._names)}"

    def _level(self, spec: RecordSpec, plan: ColumnPlan, rows: FromClause, *carry: str) -> Level:
        level = Level(spec, plan, rows, len(self.levels), carry)
        self.levels.append(level)
        return level

    def _scope(self, spec: RecordSpec) -> list[ColumnElement[bool]]:
        allowed = self.decisions.rows(spec.resource, Action.READ)
        return [allowed.sql(spec.scope_columns()), *spec.live()]

    def _child_facts(self, parent: Level, spec: RecordSpec) -> ScopeColumns:
        """Where the scope facts of `spec`'s children of one parent row are read: that row.

        A child's scope facts are those of its customer — `spec.from_clause()` joins the
        customer for them — and the parent row *is* that customer, read under its own scope
        and liveness. Every predicate on a child — its row scope and its field masks alike —
        must read them from there: the child's subquery selects from the child's table only,
        and a `customers` column left in it would join every customer to every child.
        """
        facts, own = spec.scope_columns(), parent.spec.scope_columns()
        located = {c: f"_{attr}" for attr, c in parent.spec.private.items()}
        names = ("owner_id", "department_id", "customer_id")
        if not (
            spec.joins_customer
            and parent.spec is CUSTOMER
            and all(getattr(facts, n) is getattr(own, n) for n in names)
            and all(getattr(own, n).name in located for n in names)
        ):
            raise NotCompilableError(f"scope of {spec.type_name} under {parent.spec.type_name}")
        return ScopeColumns(*(parent.rows.c[located[getattr(own, n).name]] for n in names))

    def _child_scope(self, spec: RecordSpec, facts: ScopeColumns) -> list[ColumnElement[bool]]:
        """The row scope of children, on their parent's facts (`_child_facts`)."""
        allowed = self.decisions.rows(spec.resource, Action.READ)
        live = [spec.table.c.archived_at.is_(None)] if spec.has_archive else []
        return [allowed.sql(facts), *live]

    def _level_ids(self, level: Level, mark: str) -> ColumnElement[Any]:
        """The ids of `level`'s rows under `mark` (all of them, or those a field was withheld
        on) for the read log; integer keys as int8[], which asyncpg decodes to ints in C and
        the log sorts as integers (as text, sorting them by length and text cost ~0.15 ms per
        550-id view)."""
        joined = func.string_to_array(self._marks[mark], _COMMA)
        if isinstance(level.rows.c._pk.type, Integer):
            return cast(joined, ARRAY(BigInteger))
        return joined

    def _withheld(self, level: Level) -> list[ColumnElement[Any]]:
        """`Materialiser`'s withheld fields: hidden ones once any row came, masked ones per row."""
        type_name = level.spec.type_name
        found: list[ColumnElement[Any]] = []
        for field in level.plan.hidden:
            flag = self._marks[level.hidden(field)]
            found.append(case((flag, constant(f"{type_name}.{field.name}"))))
        for field in level.plan.row_dependent:
            withheld_on = self._marks[level.masked(field)]
            found.append(case((withheld_on.isnot(None), constant(f"{type_name}.{field.name}"))))
        return found

    def _group(self, source: FromClause, columns: list[Any], marks: Marks, kept: Any = None) -> Any:
        """One root field's row: its JSON `columns` and the marks of every level below it."""
        group = select(*columns, *_folded(source, marks, kept)).subquery(self._name("root"))
        self._groups.append(group)
        for label, _ in marks:
            self._marks[label] = group.c[label]
        return group

    # -- roots ------------------------------------------------------------------------------

    def _customer(self, nodes: list[FieldNode]) -> ColumnElement[Any]:
        arguments = self.arguments.of("Query", nodes[0])
        pk = pk_of(arguments["id"], "Customer", "id")
        plan = plan_columns(CUSTOMER, object_fields(nodes, self.fragments, "Customer").fields,
                            self.decisions)  # fmt: skip
        rows = (
            select(*plan.columns)
            .select_from(CUSTOMER.from_clause())
            .where(CUSTOMER.table.c.id == pk, *self._scope(CUSTOMER))
            .subquery(self._name("customer"))
        )
        level = self._level(CUSTOMER, plan, rows)
        fields = collect(sub(nodes), self.fragments, "Customer")
        objects, marks = self._objects(level, Connection({}, fields, None, None), _child_cursor)
        found = objects.subquery(self._name("json"))
        first = func.json_agg(found.c.n).op("->")(literal_column("0"))
        group = self._group(found, [first.label("n")], marks)
        return group.c.n  # type: ignore[no-any-return]

    def _root_connection(self, name: str, nodes: list[FieldNode]) -> ColumnElement[Any]:
        spec, arguments, where, ordering = self.arguments.root_page(name, nodes[0], self.decisions)
        if arguments.get("last") is not None or arguments.get("before") is not None:
            raise NotCompilableError("backward paging")  # the general path answers it
        ordering = ordering or Ordering("id", spec.table.c.id)
        limit = checked_first(arguments.get("first"))
        requested = connection_fields(nodes, self.fragments, spec.type_name)
        plan = plan_columns(spec, requested.fields, self.decisions)
        conditions = [*self._scope(spec), *where]
        page_conditions = list(conditions)
        after = arguments.get("after")
        if after is not None:
            value, pk = decode_cursor(after, expect=ordering.holds)
            keyset, bound = tuple_(ordering.column, spec.table.c.id), tuple_(value, pk)
            page_conditions.append(keyset < bound if ordering.descending else keyset > bound)

        def order(column: Any, reverse: bool = False) -> Any:
            return column.desc() if ordering.descending != reverse else column.asc()

        connection = self._connection(spec.type_name, nodes)
        page = (
            select(*plan.columns, ordering.column.label("_sort"))
            .select_from(spec.from_clause())
            .where(and_(*page_conditions))
            .order_by(order(ordering.column), order(spec.table.c.id))
        )
        has_next: Callable[[], ColumnElement[Any]] = _unasked
        if "hasNextPage" in connection.info:
            fetched = page.limit(_number(limit + 1)).cte(self._name("page"))
            rows = (
                select(fetched)
                .order_by(order(fetched.c._sort), order(fetched.c._pk))
                .limit(_number(limit))
                .subquery(self._name("kept"))
            )

            def has_next() -> ColumnElement[Any]:
                more = func.count() > _number(limit)
                return select(more).select_from(fetched).scalar_subquery()

        else:
            rows = page.limit(_number(limit)).subquery(self._name("kept"))
        level = self._level(spec, plan, rows, "_sort")

        def cursor(r: Any) -> Any:
            return sort_cursor(ordering.holds, r.c._sort, r.c._pk)

        objects, marks = self._objects(level, connection, cursor)
        found = objects.subquery(self._name("json"))
        columns: list[Any] = []
        for column in ("n", "e"):
            if column in found.c:
                ordered = aggregate_order_by(found.c[column], order(found.c._sort),
                                             order(found.c._pk))  # fmt: skip
                columns.append(func.json_agg(ordered).label(column))
        ends = "endCursor" in connection.info
        if ends:
            last = [order(found.c._sort, reverse=True), order(found.c._pk, reverse=True)]
            columns.append(_first(found.c._pk, *last).label("_last_pk"))
            columns.append(_first(found.c._sort, *last).label("_last_sort"))
        group = self._group(found, columns, marks)

        def end_cursor() -> Any:
            last_pk = group.c._last_pk
            return case(
                (last_pk.is_(None), null()),
                else_=sort_cursor(ordering.holds, group.c._last_sort, last_pk),
            )

        parts = PageParts(
            nodes=lambda: func.coalesce(group.c.n, EMPTY_LIST),
            edges=lambda: func.coalesce(group.c.e, EMPTY_LIST),
            total=lambda: (
                select(func.count())
                .select_from(spec.from_clause())
                .where(and_(*conditions))
                .scalar_subquery()
            ),
            has_next=has_next,
            end_cursor=end_cursor,
        )
        return self._connection_json(spec.type_name, connection, parts)

    # -- JSON of a level --------------------------------------------------------------------

    def _connection(self, type_name: str, nodes: list[FieldNode]) -> Connection:
        """The connection's selections; one `nodes` and one `edges { node }` key at most."""
        top = self._collect(sub(nodes), f"{type_name}Connection")
        node_keys = [k for k, n in top.items() if n[0].name.value == "nodes"]
        edge_keys = [k for k, n in top.items() if n[0].name.value == "edges"]
        if len(node_keys) > 1 or len(edge_keys) > 1:
            raise NotCompilableError("a connection's nodes or edges under several keys")
        node_fields = self._collect(sub(top[node_keys[0]]), type_name) if node_keys else None
        edges = edge_nodes = None
        if edge_keys:
            edges = self._collect(sub(top[edge_keys[0]]), f"{type_name}Edge")
            inner = [k for k, n in edges.items() if n[0].name.value == "node"]
            if len(inner) > 1:
                raise NotCompilableError("an edge's node under several keys")
            if inner:
                edge_nodes = self._collect(sub(edges[inner[0]]), type_name)
        info: set[str] = set()
        for nodes in top.values():
            if nodes[0].name.value == "pageInfo":
                info.update(n[0].name.value for n in self._collect(sub(nodes), "PageInfo").values())
        return Connection(top, node_fields, edges, edge_nodes, frozenset(info))

    def _collect(self, selection_sets: Any, type_name: str) -> Fields:
        try:
            return collect(selection_sets, self.fragments, type_name)
        except NotDirectError as exc:
            raise NotCompilableError(str(exc)) from exc

    def _connection_json(
        self, type_name: str, connection: Connection, parts: PageParts
    ) -> ColumnElement[Any]:
        pairs: Pairs = []
        for key, nodes in connection.top.items():
            name = nodes[0].name.value
            if name == "__typename":
                pairs.append((key, constant(f"{type_name}Connection")))
            elif name == "totalCount":
                pairs.append((key, parts.total()))
            elif name == "nodes":
                pairs.append((key, parts.nodes()))
            elif name == "edges":
                pairs.append((key, parts.edges()))
            elif name == "pageInfo":
                info: Pairs = []
                for info_key, info_nodes in self._collect(sub(nodes), "PageInfo").items():
                    info_name = info_nodes[0].name.value
                    if info_name == "__typename":
                        info.append((info_key, constant("PageInfo")))
                    elif info_name == "hasNextPage":
                        info.append((info_key, parts.has_next()))
                    elif info_name == "endCursor":
                        info.append((info_key, parts.end_cursor()))
                    else:
                        raise NotCompilableError(f"PageInfo.{info_name}")
                pairs.append((key, json_object(info)))
            else:
                raise NotCompilableError(f"{type_name}Connection.{name}")
        return json_object(pairs)

    def _objects(
        self, level: Level, connection: Connection, cursor: Callable[[Any], Any]
    ) -> tuple[Select[Any], Marks]:
        """A select with one row per row of `level`: `_pk`, its carried columns, the JSON of
        its node (`n`) and of its edge (`e`) where the document asks for them, and the marks
        of the row and of every level below it."""
        rows = level.rows
        joins = Joins([])
        columns: list[Any] = [rows.c._pk, *(rows.c[name] for name in level.carry)]
        if connection.nodes is not None:
            columns.append(self._object_json(level, connection.nodes, joins).label("n"))
        if connection.edges is not None:
            edge: Pairs = []
            for key, nodes in connection.edges.items():
                name = nodes[0].name.value
                if name == "cursor":
                    edge.append((key, cursor(rows)))
                elif name == "node":
                    assert connection.edge_nodes is not None
                    edge.append((key, self._object_json(level, connection.edge_nodes, joins)))
                elif name == "__typename":
                    edge.append((key, constant(f"{level.spec.type_name}Edge")))
                else:
                    raise NotCompilableError(f"Edge.{name}")
            columns.append(json_object(edge).label("e"))
        marks: Marks = [(level.ids, IDS)]
        columns.append(cast(rows.c._pk, Text).label(level.ids))
        for field in level.plan.hidden:
            marks.append((level.hidden(field), FLAG))
            columns.append(true().label(level.hidden(field)))
        for field in level.plan.row_dependent:
            # the ids of the rows it was withheld on: the read log's per-record disclosure
            marks.append((level.masked(field), IDS))
            withheld_here = case((not_(rows.c[f"_can_{field.name}"]), cast(rows.c._pk, Text)))
            columns.append(withheld_here.label(level.masked(field)))
        source: Any = rows
        for joined, joined_marks in joins.laterals:
            source = source.outerjoin(joined, true())
            marks.extend(joined_marks)
            columns.extend(joined.c[label] for label, _ in joined_marks)
        return select(*columns).select_from(source), marks

    def _object_json(self, level: Level, fields: Fields, joins: Joins) -> ColumnElement[Any]:
        spec, rows = level.spec, level.rows
        pairs: Pairs = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                pairs.append((key, constant(spec.type_name)))
                continue
            if name == "id":
                pairs.append((key, global_id(spec.type_name, rows.c._pk)))
                continue
            field = spec.fields.get(name)
            if field is None:
                raise NotCompilableError(f"{spec.type_name}.{name}")
            access = level.access(name)
            value: ColumnElement[Any]
            if access == "hidden":
                value = null()
            elif field.column is not None:
                value = field_value(spec, field, rows.c[name])
            else:
                value = self._relation(level, field, nodes, joins)
                if access == "dependent":
                    value = case((rows.c[f"_can_{name}"], value), else_=null())
            pairs.append((key, value))
        return json_object(pairs)

    def _may_follow(self, level: Level, field: FieldSpec) -> list[ColumnElement[bool]]:
        if level.access(field.name) == "dependent":
            return [level.rows.c[f"_can_{field.name}"]]
        return []

    def _relation(
        self, level: Level, field: FieldSpec, nodes: list[FieldNode], joins: Joins
    ) -> ColumnElement[Any]:
        if field.target is not None and field.foreign_key is not None:
            return self._related(level, field, nodes, joins)
        if (level.spec.type_name, field.name) in CHILDREN:
            return self._children(level, field, nodes, joins)
        raise NotCompilableError(f"{level.spec.type_name}.{field.name}")

    def _related(
        self, parent: Level, field: FieldSpec, nodes: list[FieldNode], joins: Joins
    ) -> ColumnElement[Any]:
        """A to-one relation: the target row the parent row points at, where the caller may."""
        assert field.target is not None
        target = SPECS[field.target]
        plan = plan_columns(target, object_fields(nodes, self.fragments, target.type_name).fields,
                            self.decisions)  # fmt: skip
        rows = (
            select(*plan.columns)
            .select_from(target.from_clause())
            .where(
                target.table.c.id == parent.rows.c[f"_{field.foreign_key}"],
                *self._may_follow(parent, field),
                *self._scope(target),
            )
            .correlate(parent.rows)
            .lateral(self._name("related"))
        )
        level = self._level(target, plan, rows)
        fields = self._collect(sub(nodes), target.type_name)
        objects, marks = self._objects(level, Connection({}, fields, None, None), _child_cursor)
        related = objects.correlate(parent.rows).lateral(self._name("json"))
        joins.laterals.append((related, marks))
        return related.c.n  # type: ignore[no-any-return]

    def _children(
        self, parent: Level, field: FieldSpec, nodes: list[FieldNode], joins: Joins
    ) -> ColumnElement[Any]:
        """A nested connection: per parent row, its first children after the cursor by id —
        one index range scan on the link column, as `RecordReader._children_statement` pages
        them (`first + 1` rows only when `hasNextPage` is asked)."""
        spec = SPECS[CHILDREN[(parent.spec.type_name, field.name)]]
        arguments = self.arguments.of(parent.spec.type_name, nodes[0])
        limit = checked_first(arguments.get("first"))
        after = arguments.get("after")
        after_pk = decode_cursor(after)[1] if after is not None else 0
        facts = self._child_facts(parent, spec)
        requested = connection_fields(nodes, self.fragments, spec.type_name).fields
        plan = plan_columns(spec, requested, self.decisions, facts=facts)
        connection = self._connection(spec.type_name, nodes)
        link, pk = spec.table.c.customer_id, spec.table.c.id
        belongs = [
            link == parent.rows.c._pk,
            *self._may_follow(parent, field),
            *self._child_scope(spec, facts),
        ]
        wants_next = "hasNextPage" in connection.info
        columns: list[Any] = list(plan.columns)
        carry: tuple[str, ...] = ()
        if wants_next:
            columns.append(func.row_number().over(order_by=pk).label("_rn"))
            carry = ("_rn",)
        rows = (
            select(*columns)
            .select_from(spec.table)
            .where(*belongs, *([pk > _number(after_pk)] if after is not None else []))
            .order_by(pk)
            .limit(_number(limit + 1 if wants_next else limit))
            .correlate(parent.rows)
            .lateral(self._name("children"))
        )
        level = self._level(spec, plan, rows, *carry)
        objects, marks = self._objects(level, connection, _child_cursor)
        found = objects.subquery(self._name("json"))
        kept = found.c._rn <= _number(limit) if wants_next else None

        def only_kept(aggregate: Any) -> Any:
            return aggregate.filter(kept) if kept is not None else aggregate

        columns = [only_kept(func.max(found.c._pk)).label("_last")]
        if wants_next:
            columns.append((func.count() > _number(limit)).label("_has_next"))
        # rows read straight from their `ORDER BY id LIMIT` subquery, with no join between,
        # reach the aggregate in that order (PostgreSQL's documented way to feed an ordered
        # aggregate); with relations or connections joined under them, sort explicitly
        in_order = objects.get_final_froms() == [rows]
        for column in ("n", "e"):
            if column in found.c:
                value = found.c[column]
                ordered = value if in_order else aggregate_order_by(value, found.c._pk)
                columns.append(only_kept(func.json_agg(ordered)).label(column))
        pages = (
            select(*columns, *_folded(found, marks, kept))
            .select_from(found)
            .correlate(parent.rows)
            .lateral(self._name("pages"))
        )
        joins.laterals.append((pages, marks))

        def total() -> Any:
            # as `RecordReader._fetch_children`: 0 when no child comes after the cursor
            count = func.count()
            if after is not None:
                count = case((func.count().filter(pk > _number(after_pk)) > 0, count), else_=0)
            return (
                select(count)
                .select_from(spec.table)
                .where(*belongs)
                .correlate(parent.rows)
                .scalar_subquery()
            )

        parts = PageParts(
            nodes=lambda: func.coalesce(pages.c.n, EMPTY_LIST),
            edges=lambda: func.coalesce(pages.c.e, EMPTY_LIST),
            total=total,
            has_next=lambda: pages.c._has_next,
            end_cursor=lambda: case(
                (pages.c._last.is_(None), null()), else_=child_cursor(pages.c._last)
            ),  # fmt: skip
        )
        return self._connection_json(spec.type_name, connection, parts)
