"""The IXC sandbox's data: every served table, API tokens, the clock, the knobs, and the write rules.

Faithful writes (:meth:`IxcStore.insert`, :meth:`IxcStore.update`, :meth:`IxcStore.delete`) apply IXC's rules
(ixc.md 5, 6.10-6.13): required fields, existing references, enum values, a PUT replacing the whole record,
``ultima_atualizacao`` stamped by the server, deletes refused while the record is referenced. They raise
:class:`Refused` (a ``type=error`` JSON answer) or :class:`Unprocessable` (the HTML error page with HTTP 200).
The ``raw_*``/:meth:`IxcStore.patch` methods back the control API and skip all rules, like a person editing
records in IXC's own UI.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec

from reconciler.sandbox.ixc_messages import DEFAULT_LANGUAGE
from reconciler.sandbox.ixc_rows import Row, Table, coerce, eq_key, parse_date
from reconciler.sandbox.ixc_tables import DEC, ID, REF, REFERENCED_BY, TABLES, Column

DEFAULT_TOKEN = "1:8c6f0e3b2a1d4f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b"
"""The API token accepted when the store is built without ``tokens`` (``"<user_id>:<hash>"``)."""

IXC_TIMEZONE = timezone(timedelta(hours=-3))
"""The observed install's local time: IXC writes datetimes without an offset, in UTC-03."""

FREEZE_AFTER = 50_000
"""Loads of at least this many rows end with ``gc.freeze()``: the collector then skips the loaded rows."""


class IxcKnobs(msgspec.Struct, forbid_unknown_fields=True):
    """Data quirks seen on some installs (ixc.md 6.16), off by default; set via ``POST /_sandbox/knobs``."""

    rp_overflow: int = 0
    """Return ``rp + rp_overflow`` rows per page."""
    total_as_number: bool = False
    """``total`` as a JSON number instead of a string."""
    numeric_ids: bool = False
    """``id`` and reference columns as JSON numbers in listed records."""
    in_single_value_error: bool = False
    """``IN`` with one value answers the HTML error page."""
    be_matches_zero_dates: bool = False
    """``BE`` on a date column also matches zero dates."""
    ip_blocked: bool = False
    """Every API call answers "Seu IP não está liberado para efetuar login!" (ixc.md 1, 5.4)."""


class Refused(Exception):
    """A write IXC refuses with ``{"type": "error", "message": …}`` (HTTP 200); ``key`` names the message."""

    def __init__(self, key: str, **fields: str) -> None:
        super().__init__(key, fields)
        self.key = key
        self.fields = fields


class Unprocessable(Exception):
    """A write IXC fails on with its HTML error page and HTTP 200 (e.g. a PUT missing a required field)."""


class UnknownTable(KeyError):
    """A table the sandbox does not serve."""


def _blank(column: Column, value: str) -> bool:
    return not value.strip() or (column.kind == REF and value.strip() == "0")


class IxcStore:
    """In-memory IXC database behind the sandbox server.

    ``tokens`` maps raw API tokens ``"<user_id>:<hash>"`` to the user's language (``"pt-BR"`` or ``"en-US"``);
    without it only :data:`DEFAULT_TOKEN` (pt-BR) is accepted. ``clock`` returns "now" (aware, or naive UTC).
    """

    def __init__(
        self, *, tokens: dict[str, str] | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.tokens: dict[str, str] = (
            dict(tokens) if tokens is not None else {DEFAULT_TOKEN: DEFAULT_LANGUAGE}
        )
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.knobs = IxcKnobs()
        self.tables: dict[str, Table] = {name: Table(schema) for name, schema in TABLES.items()}
        self._last_stamp = ""

    # -- reading ---------------------------------------------------------------------------------------------

    def table(self, name: str) -> Table:
        """The table called ``name``; raises :class:`UnknownTable`."""
        try:
            return self.tables[name]
        except KeyError:
            raise UnknownTable(name) from None

    def all(self, table: str) -> list[dict[str, str]]:
        """Every row of ``table``, in id order, as the list endpoint shows them."""
        tab = self.table(table)
        tab.ensure_ordered()
        return [tab.as_dict(row) for row in tab.rows.values()]

    def get(self, table: str, record_id: str) -> dict[str, str] | None:
        """One row by id, or None."""
        tab = self.table(table)
        row = tab.rows.get(str(record_id))
        return None if row is None else tab.as_dict(row)

    def now(self) -> str:
        """The server's local time as IXC writes it; never earlier than a stamp already given."""
        moment = self.clock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        stamp = moment.astimezone(IXC_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")
        self._last_stamp = max(stamp, self._last_stamp)
        return self._last_stamp

    # -- bulk load -------------------------------------------------------------------------------------------

    def load(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Bulk-load rows as the list endpoint returns them (no rule is checked).

        Missing columns get their empty value, non-string values are coerced to strings, a row without ``id``
        gets the next one, an existing id is replaced, unknown keys become extra text columns.
        """
        tab = self.table(table)
        was_enabled = gc.isenabled()
        gc.disable()  # the collector would otherwise rescan the growing row set many times
        loaded = 0
        try:
            loaded = self._load(tab, rows)
        finally:
            tab.invalidate_indexes()
            if was_enabled:
                gc.enable()
        if loaded >= FREEZE_AFTER:
            gc.freeze()

    def _load(self, tab: Table, rows: Iterable[dict[str, Any]]) -> int:
        template, getter, width = tab.template, tab.getter, len(tab.names)
        store, join, note_new_id = tab.rows, "".join, tab.note_new_id
        count = 0
        for row in rows:
            values: Row | None = None
            if len(row) == width:  # a row carrying exactly every column needs no merge
                try:
                    values = getter(row)
                except KeyError:
                    values = None
            if values is None:
                merged = {**template, **row}
                if len(merged) != width:
                    tab.add_columns(merged)
                    template, getter, width = tab.template, tab.getter, len(tab.names)
                    merged = {**template, **row}
                values = getter(merged)
            try:
                join(row.values())  # the template holds strings only: checking the given values suffices
            except TypeError:
                values = tuple(coerce(v, c) for v, c in zip(values, tab.columns, strict=True))
            rid = values[0]
            if not rid:
                rid = tab.next_id()
                values = (rid, *values[1:])
            if rid not in store:
                note_new_id(rid)
            store[rid] = values
            count += 1
        return count

    # -- faithful writes -------------------------------------------------------------------------------------

    def insert(self, table: str, body: Mapping[str, str]) -> str:
        """Insert a record the way ``POST /webservice/v1/<table>`` does; returns the new id."""
        tab = self.table(table)
        values = self._validated(tab, body, None)
        rid = tab.next_id()
        values[0] = rid
        tab.put(rid, tuple(values))
        return rid

    def update(self, table: str, record_id: str, body: Mapping[str, str]) -> None:
        """Replace a record the way ``PUT /webservice/v1/<table>/<id>`` does."""
        tab = self.table(table)
        old = tab.rows.get(record_id)
        if old is None:
            raise Refused("not_found")
        missing = [c.name for c in tab.columns if c.required and c.name not in body]
        if missing:
            raise Unprocessable(f"PUT without required fields {missing}")
        values = self._validated(tab, body, old)
        values[0] = record_id
        tab.put(record_id, tuple(values))

    def delete(self, table: str, record_id: str) -> None:
        """Remove a record the way ``DELETE /webservice/v1/<table>/<id>`` does."""
        tab = self.table(table)
        if record_id not in tab.rows:
            raise Refused("not_found")
        for other, column in REFERENCED_BY.get(table, ()):
            if self._referenced(other, column, record_id):
                raise Refused("in_use", table=other)
        tab.remove(record_id)

    def _referenced(self, table: str, column: str, record_id: str) -> bool:
        tab = self.tables[table]
        index = tab.index(tab.pos[column])
        if index is not None:
            return eq_key(record_id) in index
        pos = tab.pos[column]
        return any(row[pos] == record_id for row in tab.rows.values())

    def _validated(self, tab: Table, body: Mapping[str, str], old: Row | None) -> list[str]:
        stamp = self.now()
        values: list[str] = []
        for pos, column in enumerate(tab.columns):
            if column.kind == ID:
                values.append("")
            elif column.name == "ultima_atualizacao":
                values.append(stamp)
            elif column.readonly:
                values.append(column.empty if old is None else old[pos])
            elif column.name not in body:
                if column.required:
                    raise Refused("required", field=column.name)
                values.append(column.empty)
            else:
                values.append(self._checked(column, body[column.name]))
        return values

    def _checked(self, column: Column, value: str) -> str:
        if column.required and _blank(column, value):
            raise Refused("required", field=column.name)
        value = _stored_form(column, value)
        if column.choices is not None and value and value not in column.choices:
            raise Refused("bad_value", field=column.name)
        if column.ref is not None and value != "0" and value not in self.tables[column.ref].rows:
            raise Refused("bad_reference", field=column.name, value=value)
        return value

    # -- control API (no rules) ------------------------------------------------------------------------------

    def raw_insert(self, table: str, row: Mapping[str, Any]) -> dict[str, str]:
        """Insert or replace one row as given (id assigned if absent; ``ultima_atualizacao`` now if absent)."""
        tab = self.table(table)
        tab.add_columns(row)
        merged = {**tab.template, **{k: coerce(v, tab.by_name[k]) for k, v in row.items()}}
        if not merged["id"]:
            merged["id"] = tab.next_id()
        if "ultima_atualizacao" in tab.pos and not row.get("ultima_atualizacao"):
            merged["ultima_atualizacao"] = self.now()
        tab.put(merged["id"], tab.getter(merged))
        return merged

    def patch(self, table: str, record_id: str, changes: Mapping[str, Any]) -> dict[str, str] | None:
        """Change some fields of a row, as a user editing it in IXC; bumps ``ultima_atualizacao``.

        Returns the new row, or None when the id does not exist. Raises KeyError for an unknown column.
        """
        tab = self.table(table)
        old = tab.rows.get(record_id)
        if old is None:
            return None
        unknown = [k for k in changes if k not in tab.pos or k == "id"]
        if unknown:
            raise KeyError(", ".join(unknown))
        row = tab.as_dict(old)
        row.update({k: coerce(v, tab.by_name[k]) for k, v in changes.items()})
        if "ultima_atualizacao" in tab.pos and "ultima_atualizacao" not in changes:
            row["ultima_atualizacao"] = self.now()
        tab.put(record_id, tab.getter(row))
        return row

    def raw_delete(self, table: str, record_id: str) -> bool:
        """Remove a row whatever references it; False when it does not exist."""
        return self.table(table).remove(record_id) is not None


def _stored_form(column: Column, value: str) -> str:
    """A written value as IXC stores it: ``"0"`` for empty integers, ISO dates (zero date when unreadable)."""
    if column.numeric:
        stripped = value.strip()
        return stripped if stripped else "0"
    if column.datelike:
        if not value.strip():
            return column.empty
        return parse_date(value, column.kind) or column.empty
    if column.kind == DEC and not value.strip():
        return column.empty
    return value
