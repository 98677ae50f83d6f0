"""Lookup tables: "IXC project id by project name", "IXC box id by OZmap box id".

A rule declares lookups (``[lookups.project]``); the engine builds each table once per cycle from a target
collection (:func:`build_table`) or from another entity's links (:func:`links_table`) and hands the tables to
``CompiledRule.normalize``. Keys are exact, case-sensitive text (:func:`lookup_key`), so ``"Chicago"`` never
matches ``"chicago "``: a near miss is reported as "not found" rather than silently linking the wrong record.
When several records share a key the table holds an :class:`Ambiguous` marker instead of guessing; the rule then
skips the source record with a reason naming how many records share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from reconciler.model import Record, Value


class LookupSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved lookup declaration.

    ``kind="table"``: built from ``system``/``collection`` records, ``key`` field → ``value`` field.
    ``kind="links"``: built from the links of entity ``links_entity`` of the same integration, source id → target
    id (or target id → source id when ``reverse``).
    """

    name: str
    kind: Literal["table", "links"]
    system: str = ""
    collection: str = ""
    key: str = ""
    value: str = ""
    links_entity: str = ""
    reverse: bool = False


class Ambiguous(str):
    """Table entry for a key that ``records`` different records share.

    A ``str`` subclass so a table stays an honest ``dict[str, Value]``; rules test ``type(v) is Ambiguous``.
    """

    records: int

    def __new__(cls, records: int) -> Ambiguous:
        entry = super().__new__(cls, f"<ambiguous: {records} records>")
        entry.records = records
        return entry

    def __repr__(self) -> str:
        return f"Ambiguous({self.records})"


#: An ambiguity marker for tables built by hand (tests, other builders): "several records share this key".
AMBIGUOUS = Ambiguous(2)

#: key → value (or an :class:`Ambiguous` entry)
LookupTable = dict[str, Value]


def lookup_key(value: Value) -> str:
    """The table key for a field value: text as is, whole numbers without ``.0``, other values as text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _field(record: Record, name: str) -> Value:
    return record.id if name == "id" and "id" not in record.fields else record.fields.get(name)


def _add(table: LookupTable, key: str, value: Value) -> None:
    if key not in table:
        table[key] = value
        return
    current = table[key]
    if isinstance(current, Ambiguous):
        table[key] = Ambiguous(current.records + 1)
    elif current != value:
        table[key] = Ambiguous(2)


def build_table(spec: LookupSpec, records: Iterable[Record]) -> LookupTable:
    """``spec.key`` → ``spec.value`` over ``records``; empty keys are left out, shared keys become Ambiguous."""
    table: LookupTable = {}
    for record in records:
        key = lookup_key(_field(record, spec.key))
        if key:
            _add(table, key, _field(record, spec.value))
    return table


def links_table(pairs: Iterable[tuple[str, str]], reverse: bool) -> LookupTable:
    """source id → target id from ``(source_id, target_id)`` pairs (target → source when ``reverse``)."""
    table: LookupTable = {}
    for source_id, target_id in pairs:
        key, value = (target_id, source_id) if reverse else (source_id, target_id)
        if key:
            _add(table, key, value)
    return table
