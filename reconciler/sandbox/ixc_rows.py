"""Row storage of one IXC sandbox table, its lazy equality indexes and its query cache; value helpers.

Rows are tuples of strings in column order, kept in a dict keyed by id (a tuple costs a fifth of a dict and
1M+ rows must fit). The dict's order is the id order while ``ordered`` holds, so the default sort (``id asc``)
needs no sorting. Every write bumps ``version`` and empties ``cache`` (filtered + sorted id lists of recent list
queries, so paging through one query does not rescan the table). Equality indexes map :func:`eq_key` of a
column's value to the ids holding it; they are built on first use and maintained by :meth:`Table.put`.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from operator import itemgetter
from typing import Any

import msgspec

from reconciler.sandbox.ixc_tables import DATE, DATETIME, ENUM, ZERO_DATE, Column, TableSchema, text_column

Row = tuple[str, ...]
Index = dict[str, str | set[str]]
"""Equality index: key → the one id holding it, or the set of ids (a set per unique value would cost 200 B)."""
CACHE_SIZE = 16

_BR_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?")
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?")


def to_int(value: str) -> int | None:
    """The integer a string spells (``"08"`` → 8, ``"-3"`` → -3), else None."""
    if value.isdigit() and value.isascii():
        return int(value)
    if value[:1] == "-" and value[1:].isdigit() and value.isascii():
        return int(value)
    return None


def eq_key(value: str) -> str:
    """Key under which ``=`` considers two values equal: integers numerically, text case-insensitively."""
    if value.isascii():
        if value.isdigit():
            return value if value[0] != "0" or len(value) == 1 else str(int(value))
        if value[:1] == "-" and value[1:].isdigit():
            return str(int(value))
    return value.lower()


def parse_date(value: str, kind: str) -> str | None:
    """``DD/MM/YYYY[ HH:MM[:SS]]`` or ISO as the ISO text of a DATE/DATETIME column; None when neither.

    A date given to a DATETIME column gets ``00:00:00``, as MariaDB reads it; a time given to a DATE column is
    kept (comparisons then extend the column's values the same way).
    """
    value = value.strip()
    match = _BR_DATE.fullmatch(value)
    if match:
        day, month, year, time = match.groups()
        date = f"{year}-{month}-{day}"
    else:
        match = _ISO_DATE.fullmatch(value)
        if not match:
            return None
        date, time = match.groups()
    if time is not None and len(time) == 5:
        time += ":00"
    if time is None:
        return date if kind == DATE else f"{date} 00:00:00"
    return f"{date} {time}"


def is_zero_date(value: str) -> bool:
    return value.startswith(ZERO_DATE) or value == ""


def coerce(value: Any, column: Column) -> str:
    """A loaded or posted value as the string IXC would hold (None → the column's empty value)."""
    if isinstance(value, str):
        return value
    if value is None:
        return column.empty
    if isinstance(value, bool):
        return "S" if value else "N"
    if isinstance(value, int | float):
        return str(value)
    return msgspec.json.encode(value).decode()


class Table:
    """The rows of one table (see the module docstring for the layout)."""

    def __init__(self, schema: TableSchema) -> None:
        self.name = schema.name
        self.columns: list[Column] = list(schema.columns)
        self.rows: dict[str, Row] = {}
        self.version = 0
        self.max_id = 0
        self.ordered = True
        self.cache: dict[Hashable, list[str]] = {}
        self._indexes: dict[int, Index] = {}
        self._layout()

    def _layout(self) -> None:
        self.names = [c.name for c in self.columns]
        self.pos = {name: i for i, name in enumerate(self.names)}
        self.by_name = {c.name: c for c in self.columns}
        self.template = {c.name: c.empty for c in self.columns}
        self.getter = itemgetter(*self.names)

    # -- reading ---------------------------------------------------------------------------------------------

    def as_dict(self, row: Row) -> dict[str, str]:
        return dict(zip(self.names, row, strict=True))

    def column(self, name: str) -> Column | None:
        return self.by_name.get(name)

    def index(self, pos: int) -> Index | None:
        """The equality index of the column at ``pos`` (built now if missing); None for enum/date columns,
        whose few distinct values make a scan as good."""
        found = self._indexes.get(pos)
        if found is not None:
            return found
        if self.columns[pos].kind in (ENUM, DATE, DATETIME):
            return None
        built: Index = {}
        for rid, row in self.rows.items():
            _index_add(built, eq_key(row[pos]), rid)
        self._indexes[pos] = built
        return built

    def ensure_ordered(self) -> None:
        """Re-insert the rows in id order once a write broke that order."""
        if not self.ordered:
            self.rows = dict(sorted(self.rows.items(), key=lambda item: _id_order(item[0])))
            self.ordered = True

    # -- writing ---------------------------------------------------------------------------------------------

    def touch(self) -> None:
        self.version += 1
        self.cache.clear()

    def next_id(self) -> str:
        return str(self.max_id + 1)

    def note_new_id(self, rid: str) -> None:
        """Track the highest id and whether the rows are still in id order after appending ``rid``."""
        number = to_int(rid)
        if number is None:
            self.ordered = False
        elif number > self.max_id:
            self.max_id = number
        else:
            self.ordered = False

    def put(self, rid: str, row: Row) -> None:
        """Insert or replace one row, maintaining the indexes."""
        old = self.rows.get(rid)
        if old is None:
            self.note_new_id(rid)
        for pos, index in self._indexes.items():
            if old is not None:
                _index_discard(index, eq_key(old[pos]), rid)
            _index_add(index, eq_key(row[pos]), rid)
        self.rows[rid] = row
        self.touch()

    def remove(self, rid: str) -> Row | None:
        old = self.rows.pop(rid, None)
        if old is None:
            return None
        for pos, index in self._indexes.items():
            _index_discard(index, eq_key(old[pos]), rid)
        self.touch()
        return old

    def add_columns(self, names: Iterable[str]) -> None:
        """Append text columns first seen in loaded rows (a real record carries ~120 keys)."""
        new = [n for n in dict.fromkeys(names) if n not in self.pos]
        if not new:
            return
        self.columns.extend(text_column(n) for n in new)
        self._layout()
        pad = ("",) * len(new)
        for rid, row in self.rows.items():
            self.rows[rid] = row + pad
        self.touch()

    def invalidate_indexes(self) -> None:
        self._indexes.clear()
        self.touch()


def _id_order(rid: str) -> tuple[int, str]:
    number = to_int(rid)
    return (number, "") if number is not None else (-1, rid)


def index_ids(index: Index, key: str) -> set[str]:
    """The ids an equality index holds under ``key``."""
    found = index.get(key)
    if found is None:
        return set()
    return {found} if isinstance(found, str) else found


def _index_add(index: Index, key: str, rid: str) -> None:
    found = index.get(key)
    if found is None:
        index[key] = rid
    elif isinstance(found, str):
        if found != rid:
            index[key] = {found, rid}
    else:
        found.add(rid)


def _index_discard(index: Index, key: str, rid: str) -> None:
    found = index.get(key)
    if found is None:
        return
    if isinstance(found, str):
        if found == rid:
            del index[key]
    else:
        found.discard(rid)
        if not found:
            del index[key]
