"""The compact links index of a full cycle: exact source matches, settling, confirmed targets, collisions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.hashtable import HashedIds
from reconciler.link_index import LinkIndex, LinkIndexBuilder, SourceIds
from reconciler.model import Record
from reconciler.state.store import LinkColumns


def rec(rid: str, value: int = 0, updated_at: str = "") -> Record:
    return Record(id=rid, fields={"v": value}, updated_at=updated_at)


def fp(record: Record) -> int:
    """A stand-in fingerprint: the record's value (0 never matches a stored hash)."""
    value = record.fields["v"]
    assert isinstance(value, int)
    return value


def build(rows: list[LinkColumns], held: set[str] | None = None, chunk: int = 2) -> LinkIndex:
    builder = LinkIndexBuilder(HashedIds(held or ()))
    for start in range(0, len(rows), chunk):
        builder.add(rows[start : start + chunk])
    return builder.build()


def test_a_pair_whose_target_and_source_read_as_stored_is_settled_and_nothing_else_is() -> None:
    index = build(
        [
            ("s1", "t1", "active", 11, 21),  # both read as stored: settled
            ("s2", "t2", "active", 12, 22),  # source changed
            ("s3", "t3", "active", 13, 23),  # target changed
            ("s4", "t4", "active", 14, 24),  # never read: gone
        ]
    )
    kept = index.confirm_targets([rec("t1", 21), rec("t2", 22), rec("t3", 99), rec("t9", 5)], fp)
    assert [r.id for r in kept] == ["t3", "t9"]

    done = index.settle(
        [rec("s1", 11, "2026-01-02"), rec("x", 1), rec("s2", 99), rec("s3", 13, "2026-01-09")], fp
    )
    assert done.settled == 1
    assert done.settled_mark == "2026-01-02"
    assert [r.id for r in done.rest] == ["x", "s2", "s3"]  # stream order kept
    assert done.fingerprints == {"s2": 99, "s3": 13}  # linked records only
    assert sorted(index.unsettled_ids()) == ["s2", "s3", "s4"]
    assert index.unsettled() == 3
    assert index.maybe_dropped(["t1", "t2", "t3", "t9"]) == [True, True, False, False]
    index.forget_targets()  # maybe_dropped forgot the target table already: again, nothing changes
    assert index.maybe_dropped(["t1", "t2", "t3", "t9"]) == [True, True, False, False]
    with pytest.raises(RuntimeError, match="forgotten"):
        index.confirm_targets([rec("t1", 21)], fp)


def test_only_eligible_links_are_compared_active_known_and_not_held() -> None:
    index = build(
        [
            ("s1", "t1", "inactive", 11, 21),
            ("s2", "t2", "active", 0, 22),  # source fingerprint unknown
            ("s3", "t3", "active", 13, 0),  # target fingerprint unknown
            ("s4", "t4", "active", 14, 24),  # held
        ],
        held={"s4"},
    )
    calls: list[str] = []

    def counting(record: Record) -> int:
        calls.append(record.id)
        return fp(record)

    records = [rec("t1", 21), rec("t2", 22), rec("t3", 0), rec("t4", 24)]
    assert index.confirm_targets(records, counting) == records
    assert calls == []  # no fingerprint is computed for a target no eligible link has
    done = index.settle([rec("s1", 11), rec("s2", 0), rec("s3", 13), rec("s4", 14)], fp)
    assert done.settled == 0
    assert len(done.rest) == 4


@pytest.mark.parametrize(("x", "y", "z", "w"), [("x", "y", "z", "w"), ("0a", "0b", "0c", "0d")])
def test_a_source_id_sharing_its_hash_with_another_link_is_still_matched_exactly(
    x: str, y: str, z: str, w: str
) -> None:
    # Crafted keys: link 0 (x) is filed under hash(y), like a real 64-bit collision between x and y; the ids as
    # text, then as hex packed into bytes
    keys = np.array([hash(y), hash(y), hash(z)], np.int64)
    index = LinkIndex(
        ids=SourceIds(x + y + z, np.array([0, 2, 4, 6] if len(x) == 2 else [0, 1, 2, 3], np.int64)),
        source_keys=keys,
        target_keys=np.array([hash("tx"), hash("ty"), hash("tz")], np.int64),
        source_hashes=np.array([1, 2, 3], np.int64),
        target_hashes=np.array([7, 8, 9], np.int64),
        eligible=np.array([True, True, True]),
    )
    index.confirm_targets([rec("tx", 7), rec("ty", 8), rec("tz", 9)], fp)
    done = index.settle([rec(y, 2), rec(z, 3), rec(w, 2)], fp)
    assert done.settled == 2  # y found past x, which comes first under their shared hash
    assert [r.id for r in done.rest] == [w]
    assert index.unsettled_ids() == [x]


@pytest.mark.parametrize(
    ("ids", "packed"),
    [
        (["64eb6e95262f070000000000", "64eb6e95262f07000000000a", "00"], True),  # hex, even lengths
        (["64eb6e95262f070000000000", "64EB6E95262F07000000000A"], False),  # capitals would come back small
        (["0a", "abc"], False),  # an odd length
        (["0a", "0 b1"], False),  # bytes.fromhex would skip the space
        (["é1", "x"], False),
    ],
)
def test_source_ids_come_back_as_given_packed_or_not(ids: list[str], packed: bool) -> None:
    index = build([(sid, f"t{n}", "active", 10 + n, 20 + n) for n, sid in enumerate(ids)], chunk=1)
    assert index.ids.packed is packed
    assert [index.source_id(n) for n in range(len(ids))] == ids
    assert index.unsettled_ids() == ids
    index.confirm_targets([rec(f"t{n}", 20 + n) for n in range(len(ids))], fp)
    done = index.settle([rec(sid, 10 + n) for n, sid in enumerate(ids)] + [rec("0b", 1)], fp)
    assert done.settled == len(ids) and [r.id for r in done.rest] == ["0b"]


def test_links_sharing_a_target_are_each_confirmed_on_their_own_fingerprint() -> None:
    index = build(
        [
            ("s1", "t1", "inactive", 11, 21),
            ("s2", "t1", "active", 12, 21),
            ("s3", "t1", "active", 13, 29),
        ]
    )
    assert index.confirm_targets([rec("t1", 21)], fp) == []
    done = index.settle([rec("s1", 11), rec("s2", 12), rec("s3", 13)], fp)
    assert done.settled == 1  # s2 only: s1 is inactive, s3 stored another target fingerprint
    assert sorted(index.unsettled_ids()) == ["s1", "s3"]
    assert index.maybe_dropped(["t1"]) == [True]
    index.forget_targets()  # t1's first link (s1) was not confirmed, its second was
    assert index.maybe_dropped(["t1", "t2"]) == [True, False]


def test_an_empty_index_settles_nothing_and_keeps_everything() -> None:
    index = LinkIndexBuilder().build()
    assert len(index) == 0
    records = [rec("a", 1), rec("b", 2)]
    assert index.confirm_targets(records, fp) == records
    done = index.settle(records, fp)
    assert (done.settled, done.rest, done.fingerprints) == (0, records, {})
    assert index.unsettled_ids() == []
    assert index.maybe_dropped(["a"]) == [False]
    index.forget_targets()
    assert index.maybe_dropped(["a"]) == [False]


def test_non_ascii_ids_are_cut_from_the_blob_whole() -> None:
    index = build([("ação-1", "t1", "active", 5, 6), ("b", "t2", "active", 7, 8)])
    index.confirm_targets([rec("t1", 6), rec("t2", 8)], fp)
    assert index.settle([rec("ação-1", 5)], fp).settled == 1
    assert index.unsettled_ids() == ["b"]


ids = st.text(alphabet="abcdé", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    links=st.dictionaries(
        ids,
        st.tuples(ids, st.booleans(), st.integers(0, 3), st.integers(0, 3)),
        max_size=12,
    ),
    held=st.sets(ids, max_size=3),
    targets=st.dictionaries(ids, st.integers(0, 3), max_size=12),
    sources=st.dictionaries(ids, st.integers(0, 3), max_size=12),
    chunk=st.integers(1, 5),
)
def test_the_index_answers_as_a_dict_of_links_would(
    links: dict[str, tuple[str, bool, int, int]],
    held: set[str],
    targets: dict[str, int],
    sources: dict[str, int],
    chunk: int,
) -> None:
    rows: list[LinkColumns] = [
        (sid, tid, "active" if active else "inactive", sh, th) for sid, (tid, active, sh, th) in links.items()
    ]
    index = build(rows, held, chunk)

    def eligible(sid: str) -> bool:
        _, active, sh, th = links[sid]
        return active and sh != 0 and th != 0 and sid not in held

    # the reference: a target is dropped when some eligible link stored its fingerprint; a link agrees then
    agreed = {sid for sid, (tid, _, _, th) in links.items() if eligible(sid) and targets.get(tid) == th}
    dropped = {links[sid][0] for sid in agreed}
    kept = index.confirm_targets([rec(t, v) for t, v in targets.items()], fp)
    assert [r.id for r in kept] == [t for t in targets if t not in dropped]

    done = index.settle([rec(s, v) for s, v in sources.items()], fp)
    settled = {s for s, v in sources.items() if s in agreed and links[s][2] == v}
    assert done.settled == len(settled)
    assert [r.id for r in done.rest] == [s for s in sources if s not in settled]
    assert done.fingerprints == {s: v for s, v in sources.items() if s in links and s not in settled}
    assert sorted(index.unsettled_ids()) == sorted(set(links) - settled)
    # once the snapshot is read, the dropped targets are known from the confirmed links' keys alone
    asked = [*targets, *(tid for tid, _, _, _ in links.values())]
    assert index.maybe_dropped(asked) == [tid in dropped for tid in asked]


def test_a_record_no_link_names_is_told_apart_from_the_linked_targets() -> None:
    index = build([("s1", "t1", "active", 11, 21), ("s2", "t2", "inactive", 12, 22)])
    assert index.linked_targets([rec("t1"), rec("t9"), rec("t2"), rec("s1")]) == [True, False, True, False]
    assert build([]).linked_targets([rec("t1")]) == [False]
