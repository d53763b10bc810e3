"""Running a compiled read: one cached statement, one round trip, the JSON passed through.

The compiled statement depends on the operation, its variables and the principal's decisions,
so it is cached in `decisions.derived` (dropped with them when policies change) under the
query's hash, operation name and variables. Parameters are bound once at compile time, and the
statement goes straight to asyncpg: no SQLAlchemy execution, no row objects, and the JSON text
PostgreSQL wrote is spliced into the response as it is, but for the encrypted values, which are
decrypted here — keys never reach the database.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import FragmentDefinitionNode, OperationDefinitionNode
from sqlalchemy.exc import SAWarning
from sqlalchemy.sql.compiler import FROM_LINTING

from db.crypto import FieldCipher
from resolvers.context import RequestContext, count_statement
from resolvers.operation import Arguments
from resolvers.sqljson.compiler import ReadCompiler
from resolvers.sqljson.values import ENCRYPTED_KEY

CACHED_STATEMENTS = 64  # per principal and policy version
# json_build_object('$enc', label, 'v', stored) as PostgreSQL writes it
_ENCRYPTED = re.compile(
    r'\{\s*"'
    + re.escape(ENCRYPTED_KEY)
    + r'"\s*:\s*"([a-z_.]+)"\s*,\s*"v"\s*:\s*"((?:[^"\\]|\\.)*)"\s*\}'
)


class RawJSON(dict[str, Any]):
    """`data` already written as JSON; the endpoint splices `text` into the response.

    A dict for graphql-core's and Strawberry's sake: nothing on the way reads it.
    """

    def __init__(self, text: bytes) -> None:
        super().__init__()
        self.text = text


@dataclass(frozen=True)
class LevelRead:
    """What one level's rows add to the read log."""

    resource: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class CompiledRead:
    sql: str
    arguments: tuple[Any, ...]
    levels: tuple[LevelRead, ...]
    decrypts: bool


def compile_read(
    context: RequestContext,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    arguments: Arguments,
    dialect: Any,
) -> CompiledRead:
    compiler = ReadCompiler(context.decisions, fragments, arguments)
    statement = compiler.statement(operation)
    with warnings.catch_warnings():
        # a FROM left without its join condition (a column of a table the level does not
        # select from) would pair every row with every other: refuse, never run it
        warnings.simplefilter("error", SAWarning)
        compiled = statement.compile(
            dialect=dialect, linting=FROM_LINTING, compile_kwargs={"render_postcompile": True}
        )
    params = compiled.construct_params()
    processors = compiled._bind_processors  # the dialect's own conversions
    values = tuple(
        processors[name](params[name]) if name in processors else params[name]
        for name in compiled.positiontup or ()
    )
    levels = tuple(
        LevelRead(level.spec.resource.value, tuple(level.plan.returned_fields))
        for level in compiler.levels
    )
    decrypts = any(
        f.encrypted_as is not None
        for level in compiler.levels
        for f in (*level.plan.visible, *level.plan.row_dependent)
    )
    return CompiledRead(compiled.string, values, levels, decrypts)


def _cached(context: RequestContext, key: Any, build: Any) -> CompiledRead:
    derived = context.decisions.derived
    cache = derived.get("sqljson")
    if cache is None:
        cache = derived["sqljson"] = OrderedDict()
    found = cache.get(key)
    if found is None:
        found = cache[key] = build()
        if len(cache) > CACHED_STATEMENTS:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found  # type: ignore[no-any-return]


def _decrypted(text: str, cipher: FieldCipher) -> str:
    def plain(match: re.Match[str]) -> str:
        stored = orjson.loads(f'"{match.group(2)}"')
        return orjson.dumps(cipher.decrypt(match.group(1), stored)).decode()

    return _ENCRYPTED.sub(plain, text)


async def answer(
    context: RequestContext,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    schema: Any,
) -> RawJSON:
    """The `data` of a direct-eligible operation; raises `NotCompilableError` when it isn't."""
    db = context.db
    key = (
        context.meta.query_hash,
        operation.name.value if operation.name else None,
        orjson.dumps(variables, option=orjson.OPT_SORT_KEYS, default=repr),
    )
    async with db.lock:
        connection = await db.session.connection()
        read = _cached(
            context,
            key,
            lambda: compile_read(
                context, operation, fragments, Arguments(schema, variables), connection.dialect
            ),
        )
        raw = await connection.get_raw_connection()
        count_statement()
        row = await raw.driver_connection.fetchrow(read.sql, *read.arguments)  # type: ignore[union-attr]
    data, denied, *ids = row
    for level, level_ids in zip(read.levels, ids, strict=True):
        if level_ids:
            context.reads.note(level.resource, level_ids, level.fields)
    for name in denied:
        context.deny(name)
    if read.decrypts:
        data = _decrypted(data, context.cipher)
    return RawJSON(data.encode())
