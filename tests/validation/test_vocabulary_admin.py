"""Admin extensions of the vocabularies, stored in PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.models.vocabulary import VocabularyTerm
from validation.errors import FieldError, Rule
from validation.vocabulary import VocabularyCache, add_term, load_vocabularies


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    yield factory
    async with factory() as session, session.begin():
        # remove what this test added, so other suites see the built-in vocabularies
        await session.execute(
            delete(VocabularyTerm).where(VocabularyTerm.created_by == "vocabulary-test")
        )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


async def test_added_term_is_looked_up_by_its_aliases(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    canonical, alias = unique("新能源汽车"), unique("nev")
    async with sessions() as session, session.begin():
        term = await add_term(session, "industry", canonical, [alias], actor="vocabulary-test")
    assert term.canonical == canonical and term.aliases == (alias,)
    async with sessions() as session:
        vocabularies = await load_vocabularies(session)
    assert vocabularies.industry.canonical(alias.upper()) == canonical
    assert vocabularies.industry.canonical("IT") == "信息技术"  # built-ins stay


async def test_aliases_can_extend_a_built_in_term(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    alias = unique("深圳")
    async with sessions() as session, session.begin():
        term = await add_term(session, "region", "广东", [alias], actor="vocabulary-test")
    assert "粤" in term.aliases and alias in term.aliases
    async with sessions() as session:
        vocabularies = await load_vocabularies(session)
    assert vocabularies.region.canonical(alias) == "广东"
    assert vocabularies.region.canonical("Guangdong") == "广东"


async def test_alias_already_meaning_another_value_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(FieldError) as caught:
            await add_term(session, "region", "上海", ["BJ"], actor="vocabulary-test")
    assert caught.value.rule == Rule.CONFLICT
    assert caught.value.suggestions == ("北京",)


async def test_unknown_vocabulary_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(FieldError) as caught:
            await add_term(session, "colour", "红", [], actor="vocabulary-test")
    assert caught.value.rule == Rule.ENUM


async def test_cache_sees_another_writers_addition(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = VocabularyCache()
    async with sessions() as session:
        before = await cache.current(session)
        assert await cache.current(session) is before  # unchanged table: no reload
    tag = unique("战略合作")
    async with sessions() as session, session.begin():
        await add_term(session, "tag", tag, [], actor="vocabulary-test")
    async with sessions() as session:
        after = await cache.current(session)
    assert after is not before
    assert after.version != before.version
    assert after.tag.canonical(tag) == tag


async def test_adding_aliases_to_an_added_term_moves_the_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    canonical = unique("直播带货")
    cache = VocabularyCache()
    async with sessions() as session, session.begin():
        await add_term(session, "source", canonical, ["livestream"], actor="vocabulary-test")
    async with sessions() as session:
        first = await cache.current(session)
    async with sessions() as session, session.begin():
        term = await add_term(session, "source", canonical, ["直播"], actor="vocabulary-test")
    assert term.aliases == ("livestream", "直播")
    async with sessions() as session:
        second = await cache.current(session)
    assert second.version[1] > first.version[1]
    assert second.source.canonical("直播") == canonical
