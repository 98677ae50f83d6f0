"""Packed unlinked targets: decoded whole, and only when some wanted record shares one of their keys."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.candidates import Candidates
from reconciler.model import Desired, Record
from reconciler.planning import index_candidates, natural_key


def want(**fields: str | None) -> Desired:
    return Desired(source_id="s", fields=dict(fields), natural_key={}, content_hash="h")


def test_a_record_comes_back_whole_when_a_wanted_record_has_its_key() -> None:
    record = Record(
        "t1",
        {"name": "CTO-1", "project": "7", "lat": -23.5, "ports": [1, 2], "extra": {"a": None}, "n": 3},
        updated_at="2026-11-24 10:00:00",
        deleted=False,
        problem="capacidade: expected int",
    )
    other = Record("t2", {"name": "CTO-2", "project": "7"})
    packed = Candidates((("name", "project"), ()))
    packed.add([record, other])

    assert len(packed) == 2
    assert packed.take([want(name="CTO-1", project="7")]) == [record]
    assert packed.take([want(name="CTO-1", project="8")]) == []
    assert packed.take([]) == []


def test_the_fallback_key_finds_records_too() -> None:
    packed = Candidates((("name",), ("serial",)))
    first, second = Record("t1", {"name": "a", "serial": "X1"}), Record("t2", {"name": "b", "serial": "X2"})
    packed.add([first, second])

    assert packed.take([want(name="zzz", serial="X2")]) == [second]
    assert packed.take([want(name="a", serial="X2")]) == [first, second]


def test_an_empty_key_part_matches_nothing() -> None:
    packed = Candidates((("name", "project"),))
    packed.add([Record("t1", {"name": "", "project": "7"}), Record("t2", {"name": "a"})])

    assert packed.take([want(name="", project="7"), want(name="a", project=None)]) == []


def test_the_id_key_is_the_records_own_id() -> None:
    packed = Candidates((("id",),))
    packed.add([Record("42", {"name": "a"})])

    assert packed.take([want(id="42")]) == [Record("42", {"name": "a"})]


names = st.sampled_from(["a", "b", "c", ""])


@settings(max_examples=200, deadline=None)
@given(
    targets=st.lists(st.tuples(names, st.sampled_from(["1", "2"]), names), max_size=12),
    wanted=st.lists(st.tuples(names, st.sampled_from(["1", "2", None]), names), max_size=6),
)
def test_the_planners_first_sight_candidates_are_the_same_over_the_taken_records_as_over_all(
    targets: list[tuple[str, str, str]], wanted: list[tuple[str, str | None, str]]
) -> None:
    """Whatever the wanted records, every candidate the planner would find among all targets is taken."""
    records = [Record(f"t{i}", {"name": n, "project": p, "serial": s}) for i, (n, p, s) in enumerate(targets)]
    desired = [want(name=n, project=p, serial=s) for n, p, s in wanted]
    keys = (("name", "project"), ("serial",))
    packed = Candidates(keys)
    packed.add(records)
    taken = packed.take(desired)

    for names_ in keys:
        over_all = index_candidates(records, names_, frozenset())
        over_taken = index_candidates(taken, names_, frozenset())
        for d in desired:
            key = natural_key(d.fields, names_)
            assert over_taken.get(key, []) == over_all.get(key, [])
