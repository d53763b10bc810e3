"""The read log's grouping: the one-reader shortcut says exactly what the general path says.

Which records received which fields is what READ and DENIED events claim; a shortcut that
grouped a masked record with the unmasked ones would log a disclosure that never happened.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resolvers.read_log import Noted, _one_reader, _per_record

FIELDS = ("name", "phone", "email", "level", "region")


@st.composite
def one_reader(draw: st.DrawFn) -> Noted:
    ids = draw(st.lists(st.integers(1, 40), max_size=30))
    shown = draw(st.sets(st.sampled_from(FIELDS)))
    rest = [f for f in FIELDS if f not in shown]
    hidden = draw(st.sets(st.sampled_from(rest))) if rest else set()
    names = draw(st.sets(st.sampled_from(sorted(shown)))) if shown else set()
    masked = {
        name: draw(st.lists(st.sampled_from(ids), unique=True)) if ids else [] for name in names
    }
    return Noted(ids, frozenset(shown), {k: v for k, v in masked.items() if v}, frozenset(hidden))


def _as_sets(groups: dict[frozenset[str], list[int | str]]) -> dict[frozenset[str], set[int | str]]:
    return {fields: set(ids) for fields, ids in groups.items()}


@settings(max_examples=300, deadline=None)
@given(one_reader())
def test_one_reader_groups_records_as_the_general_path_does(entry: Noted) -> None:
    quick = _one_reader(entry)
    if not entry.masked and not entry.hidden:  # every record, even none, read the same fields
        assert quick == ({entry.fields: list(entry.ids)}, {})
        return
    # a second reader of no rows changes nothing but forces the record-by-record path
    general = _per_record([entry, Noted((), frozenset(), {}, frozenset())])
    assert _as_sets(quick[0]) == _as_sets(general[0])
    assert _as_sets(quick[1]) == _as_sets(general[1])


def test_an_operation_read_without_records_is_still_a_read() -> None:
    """`previewPolicyChange` and the like note no ids: their READ event must still be written."""
    assert _one_reader(Noted((), frozenset({"previewPolicyChange"}), {}, frozenset())) == (
        {frozenset({"previewPolicyChange"}): []},
        {},
    )


def test_a_masked_record_is_not_reported_as_receiving_the_masked_field() -> None:
    entry = Noted([1, 2, 3], frozenset({"name", "phone"}), {"phone": [2]}, frozenset({"email"}))
    received, withheld = _one_reader(entry)
    assert _as_sets(received) == {frozenset({"name", "phone"}): {1, 3}, frozenset({"name"}): {2}}
    assert _as_sets(withheld) == {frozenset({"email"}): {1, 3}, frozenset({"email", "phone"}): {2}}
