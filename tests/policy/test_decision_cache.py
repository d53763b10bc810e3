"""The decision cache keeps the principals in use and drops the least recently used."""

from __future__ import annotations

from policy.decisions import DecisionCache
from policy.principal import Principal, PrincipalKind
from policy.store import DepartmentTree, PolicySnapshot, new_enforcer


def snapshot(version: int) -> PolicySnapshot:
    """A snapshot without rules: every decision denies, which is all a cache test needs."""
    return PolicySnapshot(
        version=version,
        enforcer=new_enforcer([]),
        departments=DepartmentTree(parents={}, names={}),
        lines=(),
    )


def user(number: int) -> Principal:
    return Principal(kind=PrincipalKind.USER, name=f"user{number}", user_id=number)


def test_a_full_cache_drops_the_least_recently_used_principal_only() -> None:
    cache, now = DecisionCache(max_entries=3), snapshot(1)
    first = cache.for_principal(user(1), now)
    for number in (2, 3):
        cache.for_principal(user(number), now)
    assert cache.for_principal(user(1), now) is first  # a hit: user 1 is the most recent now
    cache.for_principal(user(4), now)  # full: user 2, the least recently used, goes
    assert len(cache) == 3
    assert cache.for_principal(user(1), now) is first
    kept = cache.for_principal(user(3), now)
    assert cache.for_principal(user(3), now) is kept
    assert cache.for_principal(user(2), now) is not None  # computed again, user 4 dropped
    assert len(cache) == 3


def test_decisions_of_an_old_policy_version_are_not_served_for_a_new_one() -> None:
    cache = DecisionCache(max_entries=2)
    old = cache.for_principal(user(1), snapshot(1))
    new = cache.for_principal(user(1), snapshot(2))
    assert new is not old and new.snapshot.version == 2
    cache.for_principal(user(2), snapshot(2))  # full: version 1's entry, the oldest, goes
    assert cache.for_principal(user(1), snapshot(2)) is new
