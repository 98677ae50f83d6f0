"""The vectorised open-addressing table against a plain dict, on tables small enough to collide a lot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import hashtable
from reconciler.hashtable import KeyTable

# keys from a small range, so that pages repeat keys of earlier pages and crowd a few slots
keys = st.integers(min_value=-40, max_value=40)


@settings(max_examples=300, deadline=None)
@given(
    pages=st.lists(st.lists(keys, max_size=80, unique=True), max_size=12),
    probes=st.lists(keys, max_size=60),
    size=st.sampled_from([8, 16, 32, 64, 128]),
)
def test_insert_and_find_answer_as_a_dict_would(pages: list[list[int]], probes: list[int], size: int) -> None:
    table = KeyTable(size, values=np.int64)
    reference: dict[int, int] = {}
    for n, page in enumerate(pages):
        stored = hashtable.stored(np.array(page, np.int64))
        distinct = list(dict.fromkeys(stored.tolist()))  # 0 and 1 are one key once stored
        if len(reference) + len(distinct) >= table.size:  # grow as a caller would, to at most 3/4 full
            table = table.grown(hashtable.slots_for(len(reference) + len(distinct), (3, 4)))
        values = np.array([1000 * n + i for i in range(len(distinct))], np.int64)
        new = table.insert(np.array(distinct, np.int64), values)
        for key, value, is_new in zip(distinct, values.tolist(), new.tolist(), strict=True):
            assert is_new == (key not in reference)
            reference.setdefault(key, value)  # a key already present keeps its value
    assert table.count == len(reference)
    wanted = hashtable.stored(np.array(probes + list(reference), np.int64))
    hits, found = table.find(wanted)
    for key, hit, value in zip(wanted.tolist(), hits.tolist(), found.tolist(), strict=True):
        assert hit == (key in reference)
        assert value == (reference[key] if hit else 0)


def test_a_big_batch_takes_several_vector_rounds_and_stays_exact() -> None:
    rng = np.random.default_rng(7)
    every = np.unique(hashtable.stored(rng.integers(-(2**63), 2**63 - 1, 300_000, dtype=np.int64)))
    table = KeyTable(hashtable.slots_for(len(every), (7, 8)), values=np.int32)
    positions = np.arange(len(every), dtype=np.int32)
    assert table.insert(every, positions).all()
    assert not table.insert(every[:1000]).any()  # all present already
    hits, found = table.find(every)
    assert hits.all() and (found == positions).all()
    absent = hashtable.stored(rng.integers(-(2**63), 2**63 - 1, 5000, dtype=np.int64))
    absent = absent[~np.isin(absent, every)]
    assert not table.find(absent)[0].any()


def test_keys_only_table_and_sizes() -> None:
    table = KeyTable(8, values=None)
    assert table.insert(np.array([5, 13, 21], np.int64)).tolist() == [True, True, True]  # one home slot
    hits, found = table.find(np.array([13, 29], np.int64))
    assert hits.tolist() == [True, False] and found.tolist() == [0, 0]
    assert hashtable.slots_for(0, (3, 4)) == hashtable.WINDOW
    assert hashtable.slots_for(1_000_000, (3, 4)) == 1 << 21
    assert hashtable.slots_for(806_610, (7, 8)) == 1 << 20
    with pytest.raises(ValueError, match="power of two"):
        KeyTable(100)
    with pytest.raises(ValueError, match="cannot take 6 more"):  # a probe needs an empty slot to stop at
        table.insert(np.arange(1, 7, dtype=np.int64))


@settings(max_examples=100, deadline=None)
@given(st.sets(st.text(max_size=6), max_size=30), st.lists(st.text(max_size=6), max_size=30))
def test_hashed_ids_answer_as_the_set_does(members: set[str], asked: list[str]) -> None:
    held = hashtable.HashedIds(members)
    questions = [*asked, *members]
    assert held.contains(questions) == [q in members for q in questions]
    assert [q in held for q in questions] == [q in members for q in questions]
    assert len(held) == len(members)
    assert 3 not in held


def test_hashed_ids_of_nothing_hold_nothing() -> None:
    held = hashtable.HashedIds(())
    assert held.contains(["a", ""]) == [False, False] and "a" not in held and len(held) == 0
