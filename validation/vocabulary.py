"""Controlled vocabularies (region, industry, source channel, tags) and their admin extensions.

A value is looked up through `fold` (NFKC, case, spaces and separators ignored), so "北京",
"北京市", "BJ", "Beijing" and "ｂｅｉｊｉｎｇ" all give the canonical "北京". Unknown values are a
`FieldError` listing the closest allowed ones.

The built-in terms ship in `vocabularies.json`; administrators add canonical values or aliases
with `add_term`, stored in `vocabulary_terms` and merged over the built-ins by
`load_vocabularies`. `VocabularyCache` keeps the merged result per process and reloads it
when the table's revision moves, so one process's addition shows up in every other one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models.vocabulary import REVISION, VocabularyTerm
from validation.errors import FieldError, Rule
from validation.text import fold, normalise_line

MAX_TERM_LENGTH = 100  # the width of customers.region/industry/source
SUGGESTION_LIMIT = 5
SUGGESTION_CUTOFF = 50.0  # rapidfuzz WRatio, 0-100
FALLBACK_SUGGESTIONS = 3


class VocabularyName(StrEnum):
    REGION = "region"
    INDUSTRY = "industry"
    SOURCE = "source"
    TAG = "tag"


# the customer field each vocabulary fills, for error messages
_FIELD_OF = {
    VocabularyName.REGION: "region",
    VocabularyName.INDUSTRY: "industry",
    VocabularyName.SOURCE: "source",
    VocabularyName.TAG: "tags",
}


@dataclass(frozen=True)
class Term:
    """One allowed value and the other spellings that mean it."""

    canonical: str
    aliases: tuple[str, ...] = ()

    def spellings(self) -> Iterator[str]:
        yield self.canonical
        yield from self.aliases


class VocabularyConflictError(ValueError):
    """Two terms of one vocabulary claim the same spelling: look-ups would be ambiguous."""


@dataclass(frozen=True)
class Vocabulary:
    """An immutable vocabulary: its terms and an index from folded spelling to canonical."""

    name: VocabularyName
    terms: tuple[Term, ...]
    _index: Mapping[str, str] = field(repr=False, compare=False)

    @classmethod
    def of(cls, name: VocabularyName, terms: Iterable[Term]) -> Vocabulary:
        """Build and index a vocabulary; terms with the same canonical value are merged."""
        merged: dict[str, list[str]] = {}
        for term in terms:
            aliases = merged.setdefault(term.canonical, [])
            aliases.extend(alias for alias in term.aliases if alias not in aliases)
        built = tuple(Term(canonical, tuple(aliases)) for canonical, aliases in merged.items())
        index: dict[str, str] = {}
        for term in built:
            for spelling in term.spellings():
                key = fold(spelling)
                if not key:
                    continue
                owner = index.setdefault(key, term.canonical)
                if owner != term.canonical:
                    raise VocabularyConflictError(
                        f"{name}: {spelling!r} would mean both {owner!r} and {term.canonical!r}"
                    )
        return cls(name, built, index)

    @property
    def canonical_values(self) -> tuple[str, ...]:
        return tuple(term.canonical for term in self.terms)

    def lookup(self, value: str) -> str | None:
        """The canonical value for any spelling, or None."""
        return self._index.get(fold(value))

    def suggestions(self, value: str, limit: int = SUGGESTION_LIMIT) -> tuple[str, ...]:
        """Canonical values closest to `value`, best first, each once."""
        key = fold(value)
        if not key or not self._index:
            return self.canonical_values[:limit]
        found: dict[str, None] = {}
        # score against every spelling, report the canonical form: "Bejing" finds "北京"
        for spelling, score, _ in process.extract(
            key, list(self._index), scorer=fuzz.WRatio, limit=limit * 4
        ):
            canonical = self._index[spelling]
            # below the cutoff the ranking is noise; still name a few so the caller has a lead
            if score < SUGGESTION_CUTOFF and len(found) >= FALLBACK_SUGGESTIONS:
                break
            found.setdefault(canonical, None)
            if len(found) == limit:
                break
        return tuple(found)

    def canonical(self, value: Any, *, field: str | None = None) -> str:
        """The canonical value, or a VOCABULARY `FieldError` naming the closest allowed ones."""
        name = field or _FIELD_OF[self.name]
        text = normalise_line(value, name, max_length=MAX_TERM_LENGTH)
        found = self.lookup(text)
        if found is None:
            suggestions = self.suggestions(text)
            hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
            raise FieldError(
                name, Rule.VOCABULARY, f"{text!r} is not a known {self.name}{hint}", suggestions
            )
        return found


@dataclass(frozen=True)
class Vocabularies:
    """The four vocabularies as of one revision of the admin table."""

    region: Vocabulary
    industry: Vocabulary
    source: Vocabulary
    tag: Vocabulary
    version: tuple[int, int] = (0, 0)  # (rows, max revision) of vocabulary_terms

    def __getitem__(self, name: VocabularyName | str) -> Vocabulary:
        vocabulary: Vocabulary = getattr(self, VocabularyName(name).value)
        return vocabulary

    def with_additions(
        self, additions: Mapping[VocabularyName, Iterable[Term]], version: tuple[int, int]
    ) -> Vocabularies:
        """These vocabularies with more terms merged in (same canonical value: more aliases)."""
        built = {
            name: Vocabulary.of(name, [*self[name].terms, *additions.get(name, ())])
            for name in VocabularyName
        }
        return _assemble(built, version)


@cache
def default_vocabularies() -> Vocabularies:
    """The built-in vocabularies from `vocabularies.json`, without admin additions."""
    raw = json.loads(resources.files("validation").joinpath("vocabularies.json").read_text("utf-8"))
    built = {
        name: Vocabulary.of(
            name, (Term(item["canonical"], tuple(item["aliases"])) for item in raw[name.value])
        )
        for name in VocabularyName
    }
    return _assemble(built, (0, 0))


def _assemble(built: Mapping[VocabularyName, Vocabulary], version: tuple[int, int]) -> Vocabularies:
    return Vocabularies(
        region=built[VocabularyName.REGION],
        industry=built[VocabularyName.INDUSTRY],
        source=built[VocabularyName.SOURCE],
        tag=built[VocabularyName.TAG],
        version=version,
    )


async def vocabulary_version(session: AsyncSession) -> tuple[int, int]:
    """(row count, highest revision) of the admin table: changes whenever a term is added."""
    rows, revision = (
        await session.execute(
            select(func.count(), func.coalesce(func.max(VocabularyTerm.revision), 0))
        )
    ).one()
    return int(rows), int(revision)


async def load_vocabularies(session: AsyncSession) -> Vocabularies:
    """The built-in vocabularies with every admin addition merged over them."""
    version = await vocabulary_version(session)
    rows = (await session.execute(select(VocabularyTerm).order_by(VocabularyTerm.id))).scalars()
    additions: dict[VocabularyName, list[Term]] = {}
    for row in rows:
        additions.setdefault(VocabularyName(row.vocabulary), []).append(
            Term(row.canonical, tuple(row.aliases))
        )
    return default_vocabularies().with_additions(additions, version)


class VocabularyCache:
    """The merged vocabularies of this process, reloaded only when the admin table changed.

    One instance lives on the application state; `current(session)` costs one indexed query
    when nothing changed.
    """

    def __init__(self) -> None:
        self._vocabularies: Vocabularies | None = None

    async def current(self, session: AsyncSession) -> Vocabularies:
        cached = self._vocabularies
        if cached is not None and cached.version == await vocabulary_version(session):
            return cached
        fresh = await load_vocabularies(session)
        self._vocabularies = fresh
        return fresh

    def invalidate(self) -> None:
        self._vocabularies = None


async def add_term(
    session: AsyncSession,
    vocabulary: VocabularyName | str,
    canonical: str,
    aliases: Iterable[str] = (),
    *,
    actor: str | None = None,
) -> Term:
    """Add a canonical value, or aliases to an existing one, within the caller's transaction.

    Refuses (with `ValidationFailed`-compatible `FieldError`s) blank or over-long spellings and
    spellings that already mean another value of the vocabulary. Returns the term as merged
    with what existed (built-in and earlier additions). The caller commits.
    """
    try:
        name = VocabularyName(vocabulary)
    except ValueError:
        raise FieldError(
            "vocabulary",
            Rule.ENUM,
            f"{vocabulary!r} is not a vocabulary",
            [item.value for item in VocabularyName],
        ) from None
    canonical = normalise_line(canonical, "canonical", max_length=MAX_TERM_LENGTH)
    cleaned: list[str] = []
    for alias in aliases:
        text = normalise_line(alias, "aliases", max_length=MAX_TERM_LENGTH)
        if text != canonical and text not in cleaned:
            cleaned.append(text)

    current = (await load_vocabularies(session))[name]
    for spelling in (canonical, *cleaned):
        owner = current.lookup(spelling)
        if owner is not None and owner != canonical:
            raise FieldError(
                "canonical" if spelling == canonical else "aliases",
                Rule.CONFLICT,
                f"{spelling!r} already means {owner!r} in {name}",
                [owner],
            )

    row = (
        await session.execute(
            select(VocabularyTerm)
            .where(VocabularyTerm.vocabulary == name.value, VocabularyTerm.canonical == canonical)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        row = VocabularyTerm(
            vocabulary=name.value, canonical=canonical, aliases=cleaned, created_by=actor
        )
        session.add(row)
    else:
        row.aliases = [*row.aliases, *(alias for alias in cleaned if alias not in row.aliases)]
        # a SQL expression: the UPDATE draws the next revision, so caches notice the change
        row.revision = REVISION.next_value()
    await session.flush()

    existing = next((term for term in current.terms if term.canonical == canonical), None)
    merged = [*(existing.aliases if existing else ()), *cleaned]
    return Term(canonical, tuple(dict.fromkeys(merged)))
