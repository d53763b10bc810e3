"""Compiling a record read into one statement: levels of rows, then JSON built over them.

Every set of rows the caller receives — a root page, one nested connection under every parent
of a level, a to-one relation — is a *level*: a CTE selecting `plan_columns` of its type under
`decisions.rows(...)` and the type's liveness, exactly as `RecordReader` selects it. The JSON
of a level's rows is built in a second CTE that joins the JSON of its own nested levels, and
nested connections are aggregated per parent, so the statement's cost grows with the rows
returned, not with the number of parents.

The statement's columns: the response's `data` object, the names of withheld fields (FORBIDDEN
and the DENIED audit event), then one array of ids per level for the read log.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, FragmentDefinitionNode, OperationDefinitionNode
from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    not_,
    null,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array

from policy.decisions import AccessDecisions
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
from resolvers.sqljson.values import (
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


@dataclass(frozen=True)
class Level:
    """Rows of one type the caller receives, as one CTE of `plan` columns."""

    spec: RecordSpec
    plan: ColumnPlan
    rows: CTE
    carry: tuple[str, ...] = ()  # columns the JSON CTE keeps for its parent: _sort, _parent

    def access(self, name: str) -> str:
        if any(f.name == name for f in self.plan.hidden):
            return "hidden"
        if any(f.name == name for f in self.plan.row_dependent):
            return "dependent"
        return "visible"


@dataclass(frozen=True)
class Connection:
    """The selections of one connection field: its own keys, and its nodes' and edges'."""

    top: Fields
    nodes: Fields | None
    edges: Fields | None
    edge_nodes: Fields | None


@dataclass(frozen=True)
class PageParts:
    """SQL for the parts of a connection's JSON; built only for the keys that are asked."""

    nodes: Callable[[], ColumnElement[Any]]
    edges: Callable[[], ColumnElement[Any]]
    total: Callable[[], ColumnElement[Any]]
    has_next: Callable[[], ColumnElement[Any]]
    end_cursor: Callable[[], ColumnElement[Any]]


def _child_cursor(rows: Any) -> ColumnElement[str]:
    return child_cursor(rows.c._pk)


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
        ids = [
            select(func.array_agg(cast(level.rows.c._pk, Text))).scalar_subquery()
            for level in self.levels
        ]
        return select(cast(data, Text).label("data"), denied.label("denied"), *ids)

    # -- levels -----------------------------------------------------------------------------

    def _name(self, kind: str) -> str:
        return f"{kind}{next(self._names)}"

    def _level(self, spec: RecordSpec, plan: ColumnPlan, rows: CTE, *carry: str) -> Level:
        level = Level(spec, plan, rows, carry)
        self.levels.append(level)
        return level

    def _scope(self, spec: RecordSpec) -> list[ColumnElement[bool]]:
        allowed = self.decisions.rows(spec.resource, Action.READ)
        return [allowed.sql(spec.scope_columns()), *spec.live()]

    def _withheld(self, level: Level) -> list[ColumnElement[Any]]:
        """`Materialiser`'s withheld fields: hidden ones once any row came, masked ones per row."""
        type_name, rows = level.spec.type_name, level.rows
        found: list[ColumnElement[Any]] = []
        for field in level.plan.hidden:
            found.append(
                case((exists(select(1).select_from(rows)), constant(f"{type_name}.{field.name}")))
            )
        for field in level.plan.row_dependent:
            masked = select(func.bool_or(not_(rows.c[f"_can_{field.name}"]))).scalar_subquery()
            found.append(case((masked, constant(f"{type_name}.{field.name}"))))
        return found

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
            .cte(self._name("customer"))
        )
        level = self._level(CUSTOMER, plan, rows)
        fields = collect(sub(nodes), self.fragments, "Customer")
        objects = self._objects(level, Connection({}, fields, None, None), _child_cursor)
        return select(objects.c.n).scalar_subquery()

    def _root_connection(self, name: str, nodes: list[FieldNode]) -> ColumnElement[Any]:
        spec, arguments, where, ordering = self.arguments.root_page(name, nodes[0], self.decisions)
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

        fetched = (
            select(*plan.columns, ordering.column.label("_sort"))
            .select_from(spec.from_clause())
            .where(and_(*page_conditions))
            .order_by(order(ordering.column), order(spec.table.c.id))
            .limit(limit + 1)
            .cte(self._name("page"))
        )
        rows = (
            select(fetched)
            .order_by(order(fetched.c._sort), order(fetched.c._pk))
            .limit(limit)
            .cte(self._name("kept"))
        )
        level = self._level(spec, plan, rows, "_sort")
        connection = self._connection(spec.type_name, nodes)

        def cursor(r: Any) -> Any:
            return sort_cursor(ordering.holds, r.c._sort, r.c._pk)

        objects = self._objects(level, connection, cursor)

        def listed(column: str) -> Callable[[], Any]:
            def build() -> Any:
                ordered = aggregate_order_by(
                    objects.c[column], order(objects.c._sort), order(objects.c._pk)
                )
                return select(func.coalesce(func.json_agg(ordered), EMPTY_LIST)).scalar_subquery()

            return build

        parts = PageParts(
            nodes=listed("n"),
            edges=listed("e"),
            total=lambda: (
                select(func.count())
                .select_from(spec.from_clause())
                .where(and_(*conditions))
                .scalar_subquery()
            ),
            has_next=lambda: select(func.count() > limit).select_from(fetched).scalar_subquery(),
            end_cursor=lambda: (
                select(cursor(rows))
                .order_by(order(rows.c._sort, reverse=True), order(rows.c._pk, reverse=True))
                .limit(1)
                .scalar_subquery()
            ),
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
        return Connection(top, node_fields, edges, edge_nodes)

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

    def _objects(self, level: Level, connection: Connection, cursor: Callable[[Any], Any]) -> CTE:
        """A CTE with one row per row of `level`: `_pk`, its carried columns, and the JSON of
        its node (`n`) and of its edge (`e`) where the document asks for them."""
        rows = level.rows
        joins: list[tuple[CTE, ColumnElement[bool]]] = []
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
        source: Any = rows
        for joined, on in joins:
            source = source.outerjoin(joined, on)
        return select(*columns).select_from(source).cte(self._name("json"))

    def _object_json(
        self, level: Level, fields: Fields, joins: list[tuple[CTE, ColumnElement[bool]]]
    ) -> ColumnElement[Any]:
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

    def _may_follow(self, level: Level, field: FieldSpec) -> ColumnElement[bool]:
        if level.access(field.name) == "dependent":
            return level.rows.c[f"_can_{field.name}"]  # type: ignore[no-any-return]
        return true()

    def _relation(
        self,
        level: Level,
        field: FieldSpec,
        nodes: list[FieldNode],
        joins: list[tuple[CTE, ColumnElement[bool]]],
    ) -> ColumnElement[Any]:
        if field.target is not None and field.foreign_key is not None:
            related = self._related(level, field, nodes)
            joins.append((related, related.c._pk == level.rows.c[f"_{field.foreign_key}"]))
            return related.c.n  # type: ignore[no-any-return]
        if (level.spec.type_name, field.name) in CHILDREN:
            return self._children(level, field, nodes, joins)
        raise NotCompilableError(f"{level.spec.type_name}.{field.name}")

    def _related(self, parent: Level, field: FieldSpec, nodes: list[FieldNode]) -> CTE:
        """A to-one relation: the target rows the parents point at, where the caller may."""
        assert field.target is not None
        target = SPECS[field.target]
        plan = plan_columns(target, object_fields(nodes, self.fragments, target.type_name).fields,
                            self.decisions)  # fmt: skip
        wanted = select(parent.rows.c[f"_{field.foreign_key}"]).where(
            self._may_follow(parent, field)
        )
        rows = (
            select(*plan.columns)
            .select_from(target.from_clause())
            .where(target.table.c.id.in_(wanted), *self._scope(target))
            .cte(self._name("related"))
        )
        level = self._level(target, plan, rows)
        fields = self._collect(sub(nodes), target.type_name)
        return self._objects(level, Connection({}, fields, None, None), _child_cursor)

    def _children(
        self,
        parent: Level,
        field: FieldSpec,
        nodes: list[FieldNode],
        joins: list[tuple[CTE, ColumnElement[bool]]],
    ) -> ColumnElement[Any]:
        """A nested connection, paged per parent by a window over the link column — the
        statement `RecordReader._children_statement` runs, with the parents as a subquery."""
        spec = SPECS[CHILDREN[(parent.spec.type_name, field.name)]]
        arguments = self.arguments.of(parent.spec.type_name, nodes[0])
        limit = checked_first(arguments.get("first"))
        after = arguments.get("after")
        after_pk = decode_cursor(after)[1] if after is not None else 0
        plan = plan_columns(spec, connection_fields(nodes, self.fragments, spec.type_name).fields,
                            self.decisions)  # fmt: skip
        link, pk = spec.table.c.customer_id, spec.table.c.id
        parents = select(parent.rows.c._pk).where(self._may_follow(parent, field))
        position = func.sum(cast(pk > after_pk, Integer)).over(partition_by=link, order_by=pk)
        inner = (
            select(
                *plan.columns,
                link.label("_parent"),
                position.label("_position"),
                func.count().over(partition_by=link).label("_total"),
            )
            .select_from(spec.from_clause())
            .where(link.in_(parents), *self._scope(spec))
            .subquery()
        )
        fetched = (
            select(inner)
            .where(inner.c._pk > after_pk, inner.c._position <= limit + 1)
            .cte(self._name("children"))
        )
        rows = select(fetched).where(fetched.c._position <= limit).cte(self._name("kept"))
        level = self._level(spec, plan, rows, "_parent")
        connection = self._connection(spec.type_name, nodes)
        objects = self._objects(level, connection, _child_cursor)
        kept = fetched.c._position <= limit
        aggregates: list[Any] = [
            fetched.c["_parent"],
            func.bool_or(fetched.c._position > limit).label("has_next"),
            func.max(fetched.c._total).label("total"),
            func.max(fetched.c._pk).filter(kept).label("last"),
        ]
        for column in ("n", "e"):
            if column in objects.c:
                ordered = aggregate_order_by(objects.c[column], fetched.c._pk)
                aggregates.append(func.json_agg(ordered).filter(kept).label(column))
        pages = (
            select(*aggregates)
            .select_from(fetched.outerjoin(objects, objects.c._pk == fetched.c._pk))
            .group_by(fetched.c["_parent"])
            .cte(self._name("pages"))
        )
        joins.append((pages, pages.c["_parent"] == parent.rows.c._pk))
        parts = PageParts(
            nodes=lambda: func.coalesce(pages.c.n, EMPTY_LIST),
            edges=lambda: func.coalesce(pages.c.e, EMPTY_LIST),
            total=lambda: func.coalesce(pages.c.total, 0),
            has_next=lambda: func.coalesce(pages.c.has_next, false()),
            end_cursor=lambda: case(
                (pages.c["last"].is_(None), null()), else_=child_cursor(pages.c["last"])
            ),  # fmt: skip
        )
        return self._connection_json(spec.type_name, connection, parts)
