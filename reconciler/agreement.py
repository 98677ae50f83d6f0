"""Fingerprints of a source/target pair last found in agreement, so a full cycle can skip what did not change.

A full cycle compares every linked pair: it runs the rule on the source record and diffs the result with the
target record. When the comparison finds them in agreement (no action), the cycle stores two 64-bit
fingerprints on the link: the source record's (the fields the rule reads, ``CompiledRule.source_reads``) and the
target record's (the fields the plan compares). A later full cycle that reads *the same values on both sides*
knows the outcome without running the rule or the diff, because normalisation and planning are pure functions of
those inputs:

* both fingerprints are keyed with the :func:`basis` — the rule as compiled (its spec, options and the two
  collection schemas), the lookup tables it used and the engine's own rule and planning code — so a changed
  rule, option, lookup table or reconciler build makes every stored fingerprint miss;
* any write by the engine (an update, a re-create, an operator link) stores the link with fingerprint 0
  ("unknown"), which never matches, so the next full cycle compares that pair again;
* a record that is held (skipped or quarantined) or whose target was read with bad data never skips.

``reconciler sync --full --compare-all`` ignores the fingerprints and compares every pair.
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from reconciler import __version__
from reconciler.model import Fields, Record

#: The stored value of "no fingerprint": never produced by :func:`_digest` (it maps 0 to 1).
UNKNOWN = 0

_encoder = msgspec.json.Encoder()


def basis(rule_fingerprint: bytes, lookups_fingerprint: str) -> bytes:
    """The 32-byte key every fingerprint of one cycle is computed with.

    ``rule_fingerprint``: the compiled rule's own digest; ``lookups_fingerprint``: the digest of the lookup
    tables the cycle uses (``cycle`` computes it once per cycle for its held-record re-checks too).
    """
    digest = hashlib.blake2b(digest_size=32)
    digest.update(_code_digest())
    digest.update(rule_fingerprint)
    digest.update(lookups_fingerprint.encode())
    return digest.digest()


def source_fingerprint(record: Record, names: Sequence[str], key: bytes) -> int:
    """The fingerprint of what the rule reads of ``record``: the fields ``names`` (the rule's
    ``source_reads``; an absent field counts as ``None``, as the rule reads it) and its problem, if any.

    A field the rule never reads cannot change its outcome, so an edit to it leaves the pair settled.
    """
    return source_fingerprinter(names, key)(record)


def target_fingerprint(fields: Fields, names: Sequence[str], key: bytes) -> int:
    """The fingerprint of the target fields a plan reads (``names``, in rule order).

    An absent field counts as ``None``: the plan reads it that way too.
    """
    return target_fingerprinter(names, key)(fields)


def source_fingerprinter(names: Sequence[str], key: bytes) -> Callable[[Record], int]:
    """:func:`source_fingerprint` with ``names`` and ``key`` bound (the per-record call of a full cycle)."""
    keyed, values = _keyed(key), _values_of(names)

    def fingerprint(record: Record) -> int:
        data = values(record.fields)
        if record.problem:
            data += record.problem.encode()
        return _digest(keyed, data)

    return fingerprint


def target_fingerprinter(names: Sequence[str], key: bytes) -> Callable[[Fields], int]:
    """:func:`target_fingerprint` with ``names`` and ``key`` bound (the per-record call of a full cycle)."""
    keyed, values = _keyed(key), _values_of(names)

    def fingerprint(fields: Fields) -> int:
        return _digest(keyed, values(fields))

    return fingerprint


def _values_of(names: Sequence[str]) -> Callable[[Fields], bytes]:
    """The JSON array of the values of ``names`` in a record's fields, absent ones as ``null``."""
    names, encode = tuple(names), _encoder.encode
    if len(names) < 2:
        return lambda fields: encode([fields.get(name) for name in names])
    # the fields as a tuple when the record has them all (a JSON array either way: the same bytes as a list)
    pick = operator.itemgetter(*names)

    def values(fields: Fields) -> bytes:
        try:
            return encode(pick(fields))
        except KeyError:
            return encode([fields.get(name) for name in names])

    return values


def rule_digest(parts: Iterable[object]) -> bytes:
    """A digest of the parts that make a compiled rule (msgspec-encodable values)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(msgspec.json.encode(part, order="deterministic"))  # sets sorted: same bytes every run
    return digest.digest()


def _digest(keyed: Any, data: bytes) -> int:
    hasher = keyed.copy()  # copying a keyed state skips the key's compression round
    hasher.update(data)
    value = int.from_bytes(hasher.digest(), "little", signed=True)
    return value or 1  # 0 is UNKNOWN


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> Any:
    return hashlib.blake2b(digest_size=8, key=key)


@functools.cache
def _code_digest() -> bytes:
    """The engine code whose behaviour a fingerprint vouches for: normalisation and planning.

    Read from the installed source files, so any change to them (a fix to a transform, to value comparison)
    makes every stored fingerprint miss. Where the sources cannot be read, the package version stands in.
    """
    import reconciler

    root = Path(reconciler.__file__).parent
    digest = hashlib.blake2b(digest_size=16)
    digest.update(__version__.encode())
    paths = sorted((root / "rules").glob("*.py")) + [root / name for name in ("model.py", "planning.py")]
    paths.append(Path(__file__))
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(path.name.encode())
    return digest.digest()
