"""The fingerprints a full cycle settles agreed pairs with: stable, keyed by the basis, never "unknown"."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from reconciler import agreement, cycle
from reconciler.model import Record


def lookups(tables: dict[str, dict[str, str]]) -> str:
    return cycle.lookups_fingerprint(tables)


KEY = agreement.basis(b"rule", lookups({"projects": {"Chicago": "3"}}))
BOX = Record("b1", {"descricao": "CTO-1", "lat": -27.59, "tags": ["a"], "olt": {"ip": "10.0.0.1"}})
READS = ("descricao", "lat", "olt", "tags")


def source_fp(record: Record, key: bytes = KEY, reads: tuple[str, ...] = READS) -> int:
    return agreement.source_fingerprint(record, reads, key)


def test_the_same_record_has_the_same_fingerprint_and_any_change_another() -> None:
    assert source_fp(BOX) == source_fp(Record("b1", dict(BOX.fields)))
    for changed in (
        {**BOX.fields, "lat": -27.58},
        {**BOX.fields, "lat": "-27.59"},  # a type change is a change
        {**BOX.fields, "tags": ["a", "b"]},
        {k: v for k, v in BOX.fields.items() if k != "tags"},
    ):
        assert source_fp(Record("b1", changed)) != source_fp(BOX)
    problem = Record("b1", BOX.fields, problem="field lat: expected a number")
    assert source_fp(problem) != source_fp(BOX)


def test_a_source_fingerprint_covers_the_fields_the_rule_reads_and_only_them() -> None:
    unread = Record("b1", {**BOX.fields, "observacao": "edited in OZmap", "id": "other"})
    assert source_fp(unread) == source_fp(BOX)
    # the rule reads an absent field as null, so absent and null are the same input to it
    assert source_fp(Record("b1", {**BOX.fields, "lat": None})) == source_fp(
        Record("b1", {k: v for k, v in BOX.fields.items() if k != "lat"})
    )
    assert source_fp(BOX, reads=("descricao", "lat")) != source_fp(BOX)
    assert source_fp(BOX, reads=("lat",)) != source_fp(
        Record("b1", {**BOX.fields, "lat": 1.0}), reads=("lat",)
    )
    assert source_fp(BOX, reads=()) == source_fp(Record("b2", {}), reads=())


def test_a_changed_rule_or_lookup_table_changes_every_fingerprint() -> None:
    fields = {"descricao": "CTO-1", "id_projeto": "3"}
    same = agreement.basis(b"rule", lookups({"projects": {"Chicago": "3"}}))
    assert same == KEY
    for other in (
        agreement.basis(b"rule2", lookups({"projects": {"Chicago": "3"}})),
        agreement.basis(b"rule", lookups({"projects": {"Chicago": "4"}})),
        agreement.basis(b"rule", lookups({"projects": {"Chicago": "3", "Curitiba": "4"}})),
        agreement.basis(b"rule", lookups({})),
    ):
        assert other != KEY
        names = tuple(fields)
        assert agreement.target_fingerprint(fields, names, other) != agreement.target_fingerprint(
            fields, names, KEY
        )
        assert source_fp(BOX, other) != source_fp(BOX)


def test_rule_digests_do_not_depend_on_set_order() -> None:
    # frozenset iteration order follows the string hash seed: the digest must not
    code = (
        "from reconciler import agreement; "
        "print(agreement.rule_digest([frozenset(f'field{i}' for i in range(50)), {'b': 1, 'a': 2}]).hex())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers(), st.none())))
def test_a_fingerprint_is_never_the_unknown_value(fields: dict[str, object]) -> None:
    assert agreement.target_fingerprint(fields, tuple(fields), KEY) != agreement.UNKNOWN  # type: ignore[arg-type]


def test_a_target_fingerprint_covers_the_compared_fields_only_and_absent_reads_as_none() -> None:
    names = ("descricao", "status")
    box = {"descricao": "CTO-1", "status": "A", "obs": "x"}
    assert agreement.target_fingerprint(box, names, KEY) == agreement.target_fingerprint(
        {**box, "obs": "y"}, names, KEY
    )
    assert agreement.target_fingerprint(box, names, KEY) != agreement.target_fingerprint(
        {**box, "status": "I"}, names, KEY
    )
    assert agreement.target_fingerprint({"descricao": "CTO-1"}, names, KEY) == agreement.target_fingerprint(
        {"descricao": "CTO-1", "status": None}, names, KEY
    )
