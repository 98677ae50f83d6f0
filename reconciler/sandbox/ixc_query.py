"""IXC list semantics: parsing ``qtype/query/oper`` + ``grid_param``, filtering, sorting (ixc.md 2.2, 6.5-6.7).

Rules reproduced:

- every filter names its column ``<table>.<column>``; an unknown column or a missing/wrong prefix (also in
  ``sortname``) is a :class:`ListError`, which the server answers with the HTML error page and HTTP 500;
- an empty ``query`` means no main filter; ``grid_param`` (a JSON string, a real array tolerated) adds filters,
  all ANDed; ``{"OP": "=", "P": ""}`` matches empty values (``"0"`` on integer columns, zero dates on dates);
- operators ``= != > < >= <= L NL IN NI BE NBE``; integers compare numerically when both sides are integers,
  text case-insensitively (MariaDB ``_ci`` collations); ``L``/``NL`` are case-insensitive substring tests;
- DATE/DATETIME filters accept ``DD/MM/YYYY[ HH:MM:SS]`` and ISO; a main-filter ``BE``/``NBE`` takes
  ``query = "low,high"`` [assume], a grid one ``P``/``P2``;
- default sort ``<table>.id asc``, default ``rp`` 20; ties keep id order.

Results (the matching ids, sorted) are cached on the table until its next write, so paging is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from reconciler.sandbox.ixc_rows import CACHE_SIZE, Table, eq_key, index_ids, is_zero_date, parse_date, to_int
from reconciler.sandbox.ixc_tables import DATE, DEC, Column

OPERATORS = frozenset({"=", "!=", ">", "<", ">=", "<=", "L", "NL", "IN", "NI", "BE", "NBE"})
DEFAULT_RP = 20
INDEX_SHARE = 8
"""Use an equality index only when it leaves at most 1/INDEX_SHARE of the table (else a scan is as fast)."""

Predicate = Callable[[str], bool]


class ListError(Exception):
    """A list request IXC cannot process: answered with its HTML error page (HTTP 500)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter with its values normalised for the column (ISO dates, ``"0"`` for empty integers)."""

    column: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request."""

    conditions: tuple[Condition, ...]
    sort: str = "id"
    descending: bool = False
    page: int = 1
    rp: int = DEFAULT_RP


def parse(table: Table, params: Mapping[str, Any], *, in_single_value_error: bool = False) -> ListQuery:
    """Validate list parameters against ``table``; raises :class:`ListError` where IXC shows its HTML page."""
    conditions: list[Condition] = []
    qtype, query = _text(params.get("qtype")), _text(params.get("query"))
    main_column = _column(table, qtype) if qtype.strip() else None
    if query != "":
        if main_column is None:
            raise ListError("query without qtype")
        oper = _text(params.get("oper")) or "="
        conditions.append(_condition(table, main_column, oper, query, None, in_single_value_error))
    for item in _grid(params.get("grid_param")):
        column = _column(table, item.get("TB"))
        second = item.get("P2")
        conditions.append(
            _condition(
                table,
                column,
                _text(item.get("OP")) or "=",
                _text(item.get("P")),
                None if second is None else _text(second),
                in_single_value_error,
            )
        )
    sortname = _text(params.get("sortname"))
    sort = _column(table, sortname) if sortname.strip() else "id"
    descending = _text(params.get("sortorder")).strip().lower() == "desc"
    page = _positive(params.get("page"), 1)
    rp = _positive(params.get("rp"), DEFAULT_RP)
    return ListQuery(tuple(conditions), sort, descending, page, rp)


def select(table: Table, query: ListQuery, *, be_matches_zero_dates: bool = False) -> list[str]:
    """The ids matching ``query``, sorted; cached on the table until its next write. Do not mutate."""
    key = (query.conditions, query.sort, query.descending, be_matches_zero_dates)
    cached = table.cache.get(key)
    if cached is not None:
        return cached
    ids, in_id_order = _filter(table, query.conditions, be_matches_zero_dates)
    _sort(table, ids, query.sort, query.descending, in_id_order)
    if len(table.cache) >= CACHE_SIZE:
        table.cache.pop(next(iter(table.cache)))
    table.cache[key] = ids
    return ids


# -- parsing ---------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise ListError(f"not a scalar: {value!r}")


def _column(table: Table, ref: Any) -> str:
    if not isinstance(ref, str):
        raise ListError(f"bad column reference {ref!r}")
    prefix, dot, name = ref.strip().partition(".")
    if not dot or prefix != table.name or name not in table.pos:
        raise ListError(f"unknown column {ref!r}")
    return name


def _grid(raw: Any) -> list[Mapping[str, Any]]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    if isinstance(raw, str):
        try:
            raw = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ListError(f"grid_param is not JSON: {exc}") from exc
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ListError("grid_param must be a list of objects")
    return raw


def _positive(value: Any, default: int) -> int:
    text = _text(value).strip()
    if not text:
        return default
    number = to_int(text)
    if number is None:
        raise ListError(f"not an integer: {text!r}")
    return number if number >= 1 else default


def _condition(
    table: Table, name: str, op: str, value: str, second: str | None, in_single_value_error: bool
) -> Condition:
    op = op.strip().upper()
    if op not in OPERATORS:
        raise ListError(f"unknown operator {op!r}")
    column = table.by_name[name]
    values: list[str]
    if op in ("L", "NL"):
        return Condition(name, op, (value,))
    if op in ("IN", "NI"):
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            raise ListError(f"{op} without values")
        if op == "IN" and len(values) == 1 and in_single_value_error:
            raise ListError("IN with a single value")
    elif op in ("BE", "NBE"):
        if second is None:
            low, comma, high = value.partition(",")
            if not comma:
                raise ListError(f"{op} needs two values")
            values = [low.strip(), high.strip()]
        else:
            values = [value, second]
    else:
        values = [value]
    return Condition(name, op, tuple(_normalise(column, v) for v in values))


def _normalise(column: Column, value: str) -> str:
    if column.datelike:
        if not value.strip():
            return column.empty
        return parse_date(value, column.kind) or value
    if column.numeric and not value.strip():
        return "0"
    return value


# -- filtering -------------------------------------------------------------------------------------------------


def _filter(table: Table, conditions: tuple[Condition, ...], be_zero: bool) -> tuple[list[str], bool]:
    rows = table.rows
    preds = [(table.pos[c.column], _predicate(table.by_name[c.column], c, be_zero)) for c in conditions]
    candidates = _candidates(table, conditions)
    if candidates is None:
        table.ensure_ordered()
        rows = table.rows
        if not preds:
            return list(rows), True
        pos, pred = preds.pop(0)
        ids = [rid for rid, row in rows.items() if pred(row[pos])]
        in_order = True
    else:
        ids, in_order = candidates, False
    for pos, pred in preds:
        ids = [rid for rid in ids if pred(rows[rid][pos])]
    return ids, in_order


def _candidates(table: Table, conditions: tuple[Condition, ...]) -> list[str] | None:
    best: set[str] | None = None
    for cond in conditions:
        if cond.op not in ("=", "IN"):
            continue
        if cond.column == "id":
            found = {key for key in map(eq_key, cond.values) if key in table.rows}
        else:
            index = table.index(table.pos[cond.column])
            if index is None:
                continue
            found = set()
            for key in {eq_key(v) for v in cond.values}:
                found |= index_ids(index, key)
        if best is None or len(found) < len(best):
            best = found
    if best is None or len(best) > max(2048, len(table.rows) // INDEX_SHARE):
        return None
    return list(best)


def _predicate(column: Column, cond: Condition, be_zero: bool) -> Predicate:
    op, values = cond.op, cond.values
    if op in ("L", "NL"):
        needle = values[0].lower()
        if op == "L":
            return lambda r: needle in r.lower()
        return lambda r: needle not in r.lower()
    if column.datelike:
        return _date_predicate(column, op, values, be_zero)
    if op in ("=", "!=", "IN", "NI"):
        raw = frozenset(values)
        keys = frozenset(map(eq_key, values))
        if op in ("=", "IN"):
            return lambda r: r in raw or eq_key(r) in keys
        return lambda r: r not in raw and eq_key(r) not in keys
    cmps = [_comparer(v) for v in values]
    if op == "BE":
        low, high = cmps
        return lambda r: low(r) >= 0 and high(r) <= 0
    if op == "NBE":
        low, high = cmps
        return lambda r: low(r) < 0 or high(r) > 0
    cmp = cmps[0]
    if op == ">":
        return lambda r: cmp(r) > 0
    if op == "<":
        return lambda r: cmp(r) < 0
    if op == ">=":
        return lambda r: cmp(r) >= 0
    return lambda r: cmp(r) <= 0


def _comparer(value: str) -> Callable[[str], int]:
    """``cmp(row_value, value)``: numeric when both are integers, else case-insensitive text."""
    number = to_int(value)
    lowered = value.lower()

    def text(r: str) -> int:
        r = r.lower()
        return (r > lowered) - (r < lowered)

    if number is None:
        return text

    def numeric(r: str) -> int:
        n = to_int(r)
        if n is None:
            return text(r)
        return (n > number) - (n < number)

    return numeric


def _date_predicate(column: Column, op: str, values: tuple[str, ...], be_zero: bool) -> Predicate:
    # A time given for a DATE column compares against the column's value at midnight, as MariaDB does.
    if column.kind == DATE and any(len(v) > 10 for v in values):
        return _extended(_date_predicate(column, op, values, be_zero))
    if op in ("=", "IN"):
        wanted = frozenset(values)
        return lambda r: r in wanted
    if op in ("!=", "NI"):
        unwanted = frozenset(values)
        return lambda r: r not in unwanted
    if op in ("BE", "NBE"):
        low, high = values
        if op == "NBE":
            return lambda r: not low <= r <= high
        if be_zero:
            return lambda r: low <= r <= high or is_zero_date(r)
        return lambda r: low <= r <= high
    bound = values[0]
    if op == ">":
        return lambda r: r > bound
    if op == "<":
        return lambda r: r < bound
    if op == ">=":
        return lambda r: r >= bound
    return lambda r: r <= bound


def _extended(pred: Predicate) -> Predicate:
    return lambda r: pred(r + " 00:00:00")


# -- sorting ---------------------------------------------------------------------------------------------------


def _sort(table: Table, ids: list[str], sort: str, descending: bool, in_id_order: bool) -> None:
    if not in_id_order:
        ids.sort(key=_id_key)
    if sort == "id":
        if descending:
            ids.reverse()
        return
    pos = table.pos[sort]
    column = table.columns[pos]
    value_key = _value_key(column)
    rows = table.rows
    ids.sort(key=lambda rid: value_key(rows[rid][pos]), reverse=descending)


def _id_key(rid: str) -> int:
    number = to_int(rid)
    return -1 if number is None else number


def _value_key(column: Column) -> Callable[[str], Any]:
    if column.numeric:
        return lambda v: to_int(v) or 0
    if column.kind == DEC:
        return _decimal
    if column.datelike:
        return lambda v: v
    return str.lower


def _decimal(value: str) -> float:
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return 0.0
