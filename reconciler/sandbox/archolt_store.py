"""The ArchOLT sandbox's data: OLTs, CTO mirrors, ONUs, the event feed, tokens, the clock and list queries.

Rows are kept in an internal form (plain dicts, timestamps as whole epoch seconds, the ONU's CTO link as a
snapshot ``{id, name, ozmap_box_id}``) and rendered into API shape per request (:meth:`ArcholtStore.render`), so the
``naive_local_timestamps`` knob and live values (an OLT's ``onu_count`` per PON, the current name of a linked CTO)
apply to every answer.

List queries (archolt.md 2): a filtered listing is the ordered list of ``(updated_at, id)`` keys of matching rows,
cached per (collection, filter) until the next write to that collection, so keyset (``updated_since`` +
``after_id``) and offset (``page``) positions are a bisect and a slice.

Time: ``clock`` gives "now" (default the real clock) shifted by :meth:`ArcholtStore.advance_clock` /
:meth:`ArcholtStore.set_clock`; stamps never go backwards. Housekeeping on that clock (:meth:`ArcholtStore.expire`):
events older than 7 days leave the feed (an older ``after`` then answers 410), deprovisioned ONUs are purged
30 days after deprovisioning (archolt.md 2 "Tombstones" and "Change feed").

Writes that follow the contract's rules live in :mod:`reconciler.sandbox.archolt_domain`; this module only keeps
the rows, the indexes and the feed consistent (:meth:`ArcholtStore.put`, :meth:`ArcholtStore.emit`).
"""

from __future__ import annotations

import bisect
import collections
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from reconciler.sandbox.archolt_values import (
    EVENT_RETENTION_SECONDS,
    TOMBSTONE_SECONDS,
    ArcholtKnobs,
    format_time,
    optional_time,
    time_value,
    to_epoch,
)

__all__ = [
    "COLLECTIONS",
    "DEFAULT_READ_TOKEN",
    "DEFAULT_TOKEN",
    "ArcholtStore",
    "Row",
    "UnknownCollection",
]

Row = dict[str, Any]
Key = tuple[int, int]

DEFAULT_TOKEN: Final = "archolt-sandbox-rw-token"
"""Token with scope ``read_write`` accepted when the store is built without ``tokens``."""
DEFAULT_READ_TOKEN: Final = "archolt-sandbox-ro-token"
"""Token with scope ``read`` accepted when the store is built without ``tokens``."""
COLLECTIONS: Final = ("olts", "ctos", "onus", "events")
SCOPES: Final = ("read", "read_write")
CACHE_ENTRIES: Final = 32
EXPIRE_EVERY: Final = 60


class UnknownCollection(KeyError):
    """A collection the sandbox does not keep."""


def _real_now() -> datetime:
    return datetime.now(UTC)


class ArcholtStore:
    """In-memory ArchOLT behind the sandbox server.

    ``tokens`` maps Bearer tokens to their scope (``"read"`` or ``"read_write"``; default :data:`DEFAULT_TOKEN`
    and :data:`DEFAULT_READ_TOKEN`). ``clock`` returns "now" (aware, or naive UTC); ``monotonic`` drives the rate
    limiter (seconds, default :func:`time.monotonic`).
    """

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.tokens: dict[str, str] = (
            dict(tokens) if tokens is not None else {DEFAULT_TOKEN: "read_write", DEFAULT_READ_TOKEN: "read"}
        )
        bad = {scope for scope in self.tokens.values() if scope not in SCOPES}
        if bad:
            raise ValueError(f"unknown token scope(s) {sorted(bad)}; expected read or read_write")
        self._clock = clock or _real_now
        self.monotonic: Callable[[], float] = monotonic or time.monotonic
        self.knobs = ArcholtKnobs()
        self._offset = 0
        self._clear()

    def _clear(self) -> None:
        self.rows: dict[str, dict[int, Row]] = {"olts": {}, "ctos": {}, "onus": {}}
        self.events: list[Row] = []
        self.purged_through = 0
        """Highest event seq dropped by retention (an ``after`` below it answers 410)."""
        self._next_seq = 1
        self._next_id: collections.Counter[str] = collections.Counter()
        self._versions: collections.Counter[str] = collections.Counter()
        self._cache: collections.OrderedDict[tuple[str, Any], tuple[int, list[Key]]] = (
            collections.OrderedDict()
        )
        self._box_index: dict[str, int] = {}
        self._pon_counts: tuple[int, dict[tuple[int, int, int], int]] = (-1, {})
        self._last_stamp = 0
        self._last_expire: int | None = None

    def reset(self) -> None:
        """Forget every row and event and restore the default knobs (tokens and clock stay)."""
        self._clear()
        self.knobs = ArcholtKnobs()

    # -- clock -------------------------------------------------------------------------------------------------

    def now(self) -> int:
        """ "Now" in epoch seconds; never earlier than a stamp already given."""
        stamp = to_epoch(self._clock()) + self._offset
        self._last_stamp = max(stamp, self._last_stamp)
        return self._last_stamp

    def advance_clock(self, seconds: float) -> int:
        """Move the clock forward by ``seconds``; returns the new now."""
        self._offset += int(seconds)
        return self.now()

    def set_clock(self, moment: datetime) -> int:
        """Make "now" equal ``moment`` (stamps still never go backwards); returns the new now."""
        self._offset += to_epoch(moment) - (to_epoch(self._clock()) + self._offset)
        return self.now()

    def fmt(self, epoch: int | None) -> str | None:
        """An epoch as the API shows it under the current knobs."""
        return format_time(epoch, naive=self.knobs.naive_local_timestamps)

    # -- reading -----------------------------------------------------------------------------------------------

    def table(self, collection: str) -> dict[int, Row]:
        """The rows of ``olts``, ``ctos`` or ``onus`` by id; raises :class:`UnknownCollection`."""
        try:
            return self.rows[collection]
        except KeyError:
            raise UnknownCollection(collection) from None

    def all(self, collection: str) -> list[Row]:
        """Every row of ``collection`` in API shape, in id order (events in seq order)."""
        if collection == "events":
            return [self.render("events", e) for e in self.events]
        table = self.table(collection)
        return [self.render(collection, table[i]) for i in sorted(table)]

    def get(self, collection: str, record_id: int | str) -> Row | None:
        """One row in API shape by id (events: by seq), or None."""
        try:
            wanted = int(record_id)
        except (TypeError, ValueError):
            return None
        if collection == "events":
            found = [e for e in self.events if e["seq"] == wanted]
            return self.render("events", found[0]) if found else None
        row = self.table(collection).get(wanted)
        return None if row is None else self.render(collection, row)

    def render(self, collection: str, row: Row) -> Row:
        """A stored row in API shape."""
        fmt = self.fmt
        if collection == "onus":
            return {
                **row,
                "cto": self._cto_link(row["cto"]),
                "provisioned_at": fmt(row["provisioned_at"]),
                "deprovisioned_at": fmt(row["deprovisioned_at"]),
                "updated_at": fmt(row["updated_at"]),
            }
        if collection == "ctos":
            return {**row, "synced_at": fmt(row["synced_at"]), "updated_at": fmt(row["updated_at"])}
        if collection == "olts":
            counts = self.pon_counts()
            olt_id = row["id"]
            ports = [
                {
                    "slot": p["slot"],
                    "pon": p["pon"],
                    "onu_count": counts.get((olt_id, p["slot"], p["pon"]), 0),
                    "max_onus": p["max_onus"],
                    **({"tx_power_dbm": p["tx_power_dbm"]} if p.get("tx_power_dbm") is not None else {}),
                }
                for p in row["pon_ports"]
            ]
            return {
                **row,
                "pon_ports": ports,
                "created_at": fmt(row["created_at"]),
                "updated_at": fmt(row["updated_at"]),
            }
        if collection == "events":
            return {**row, "at": fmt(row["at"])}
        raise UnknownCollection(collection)

    def _cto_link(self, link: Row | None) -> Row | None:
        if link is None:
            return None
        live = self.rows["ctos"].get(link["id"])
        if live is None:
            return dict(link)
        return {"id": live["id"], "name": live["name"], "ozmap_box_id": live["ozmap_box_id"]}

    def cto_by_box(self, ozmap_box_id: str) -> Row | None:
        """The CTO mirror of an OZmap box, or None."""
        cto_id = self._box_index.get(ozmap_box_id)
        return None if cto_id is None else self.rows["ctos"][cto_id]

    def olt_for_ozmap(self, ozmap_olt_id: str | None) -> int | None:
        """The ArchOLT OLT mapped to an OZmap OLT (lowest id when several are), or None."""
        if ozmap_olt_id is None:
            return None
        found = [i for i, o in self.rows["olts"].items() if o["ozmap_olt_id"] == ozmap_olt_id]
        return min(found) if found else None

    def pon_counts(self) -> dict[tuple[int, int, int], int]:
        """Provisioned ONUs per ``(olt_id, slot, pon)`` (cached until the next ONU write)."""
        version = self._versions["onus"]
        if self._pon_counts[0] != version:
            counts: collections.Counter[tuple[int, int, int]] = collections.Counter(
                (o["olt_id"], o["slot"], o["pon"])
                for o in self.rows["onus"].values()
                if o["status"] == "provisioned"
            )
            self._pon_counts = (version, dict(counts))
        return self._pon_counts[1]

    def listing(self, collection: str, key: Any, predicate: Callable[[Row], bool] | None) -> list[Key]:
        """``(updated_at, id)`` keys of the rows matching ``predicate`` (None = all), in the default order.

        ``key`` names the filter for the cache (equal keys must mean equal predicates).
        """
        version = self._versions[collection]
        cache_key = (collection, key)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] == version:
            self._cache.move_to_end(cache_key)
            return cached[1]
        rows: Iterable[Row] = self.table(collection).values()
        if predicate is not None:
            rows = filter(predicate, rows)
        keys = sorted((r["updated_at"], r["id"]) for r in rows)
        self._cache[cache_key] = (version, keys)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return keys

    def events_after(self, after: int, limit: int) -> list[Row]:
        """Up to ``limit`` retained events with ``seq > after``, in seq order (stored form)."""
        start = bisect.bisect_right(self.events, after, key=lambda e: e["seq"])
        return self.events[start : start + limit]

    # -- writing -------------------------------------------------------------------------------------------------

    def new_id(self, collection: str) -> int:
        """The next id of ``collection`` (ids are never reused)."""
        self._next_id[collection] += 1
        return self._next_id[collection]

    def put(self, collection: str, row: Row) -> Row:
        """Store ``row`` (insert or replace by ``row["id"]``) and keep the indexes right."""
        table = self.table(collection)
        rid = row["id"]
        old = table.get(rid)
        if collection == "ctos":
            if old is not None and self._box_index.get(old["ozmap_box_id"]) == rid:
                del self._box_index[old["ozmap_box_id"]]
            self._box_index[row["ozmap_box_id"]] = rid
        table[rid] = row
        self._next_id[collection] = max(self._next_id[collection], rid)
        self._versions[collection] += 1
        return row

    def remove(self, collection: str, record_id: int) -> Row | None:
        """Drop a row (no rule, no event); returns it, or None when absent."""
        if collection == "events":
            for i, event in enumerate(self.events):
                if event["seq"] == record_id:
                    return self.events.pop(i)
            return None
        row = self.table(collection).pop(record_id, None)
        if row is not None:
            self._versions[collection] += 1
            if collection == "ctos" and self._box_index.get(row["ozmap_box_id"]) == record_id:
                del self._box_index[row["ozmap_box_id"]]
        return row

    def emit(
        self,
        type: str,
        *,
        olt_id: int | None = None,
        onu_id: int | None = None,
        cto_id: int | None = None,
        data: Row | None = None,
        at: int | None = None,
    ) -> Row:
        """Append one event to the feed (same "transaction" as the change that caused it)."""
        event = {
            "seq": self._next_seq,
            "type": type,
            "at": self.now() if at is None else at,
            "olt_id": olt_id,
            "onu_id": onu_id,
            "cto_id": cto_id,
            "data": data or {},
        }
        self._next_seq += 1
        self.events.append(event)
        return event

    @property
    def last_seq(self) -> int:
        """The newest event's seq (0 before any event)."""
        return self._next_seq - 1

    def expire(self) -> None:
        """Apply retention: drop events older than 7 days and ONU tombstones older than 30 days."""
        now = self.now()
        cutoff = now - EVENT_RETENTION_SECONDS
        drop = 0
        while drop < len(self.events) and self.events[drop]["at"] < cutoff:
            drop += 1
        if drop:
            self.purged_through = self.events[drop - 1]["seq"]
            del self.events[:drop]
        if self._last_expire is not None and 0 <= now - self._last_expire < EXPIRE_EVERY:
            return
        self._last_expire = now
        tomb_cutoff = now - TOMBSTONE_SECONDS
        onus = self.rows["onus"]
        stale = [
            i
            for i, o in onus.items()
            if o["status"] == "deprovisioned" and (o["deprovisioned_at"] or o["updated_at"]) < tomb_cutoff
        ]
        for onu_id in stale:
            del onus[onu_id]
        if stale:
            self._versions["onus"] += 1

    # -- bulk load -----------------------------------------------------------------------------------------------

    def load(self, collection: str, rows: Iterable[Row]) -> int:
        """Bulk-load rows in API shape (no rule is checked, no event is written); returns how many.

        Missing fields get their defaults, a row without ``id`` (events: ``seq``) gets the next one, an existing
        id is replaced; timestamps may be API strings (with offset, ``Z`` or naive local) or epoch seconds.
        Raises ValueError/TypeError for a row that cannot be read.
        """
        count = 0
        for raw in rows:
            self.load_one(collection, raw)
            count += 1
        return count

    def load_one(self, collection: str, raw: Row) -> Row:
        """Load one row like :meth:`load`; returns it in API shape."""
        if collection not in COLLECTIONS:
            raise UnknownCollection(collection)
        if collection == "events":
            return self.render("events", self._load_event(raw))
        row = _LOADERS[collection](raw, self.now())
        if not row.get("id"):
            row["id"] = self.new_id(collection)
        if collection == "ctos" and row["olt_id"] is None:
            row["olt_id"] = self.olt_for_ozmap(row["ozmap_olt_id"])
        return self.render(collection, self.put(collection, row))

    def _load_event(self, raw: Row) -> Row:
        seq = int(raw.get("seq") or self._next_seq)
        if self.events and seq <= self.events[-1]["seq"]:
            raise ValueError(f"event seq {seq} is not after the last one ({self.events[-1]['seq']})")
        event = {
            "seq": seq,
            "type": str(raw.get("type", "onu.updated")),
            "at": time_value(raw.get("at"), self.now()),
            "olt_id": raw.get("olt_id"),
            "onu_id": raw.get("onu_id"),
            "cto_id": raw.get("cto_id"),
            "data": dict(raw.get("data") or {}),
        }
        self.events.append(event)
        self._next_seq = seq + 1
        return event


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _olt(raw: Row, now: int) -> Row:
    ports = [
        {
            "slot": int(p["slot"]),
            "pon": int(p["pon"]),
            "max_onus": int(p.get("max_onus", 128)),
            "tx_power_dbm": _float_or_none(p.get("tx_power_dbm")),
        }
        for p in raw.get("pon_ports") or []
    ]
    return {
        "id": _int_or_none(raw.get("id")),
        "name": str(raw.get("name", "")),
        "ip": str(raw.get("ip", "")),
        "vendor": str(raw.get("vendor", "Huawei")),
        "model": str(raw.get("model", "")),
        "pon_type": str(raw.get("pon_type", "GPON")),
        "ozmap_olt_id": None if raw.get("ozmap_olt_id") is None else str(raw["ozmap_olt_id"]),
        "require_cto_on_activation": bool(raw.get("require_cto_on_activation", False)),
        "pon_ports": ports,
        "created_at": time_value(raw.get("created_at"), now),
        "updated_at": time_value(raw.get("updated_at"), now),
    }


def _cto(raw: Row, now: int) -> Row:
    box = raw.get("ozmap_box_id")
    if not box:
        raise ValueError("a CTO needs ozmap_box_id")
    return {
        "id": _int_or_none(raw.get("id")),
        "ozmap_box_id": str(box),
        "name": str(raw.get("name", "")),
        "olt_id": _int_or_none(raw.get("olt_id")),
        "ozmap_olt_id": None if raw.get("ozmap_olt_id") is None else str(raw["ozmap_olt_id"]),
        "project": None if raw.get("project") is None else str(raw["project"]),
        "latitude": _float_or_none(raw.get("latitude")),
        "longitude": _float_or_none(raw.get("longitude")),
        "ports_total": int(raw.get("ports_total", 0)),
        "ports_free": _int_or_none(raw.get("ports_free")),
        "active": bool(raw.get("active", True)),
        "synced_at": time_value(raw.get("synced_at"), now),
        "updated_at": time_value(raw.get("updated_at"), now),
    }


def _onu(raw: Row, now: int) -> Row:
    cto = raw.get("cto")
    link = None
    if isinstance(cto, dict) and cto.get("id") is not None:
        link = {
            "id": int(cto["id"]),
            "name": str(cto.get("name", "")),
            "ozmap_box_id": str(cto.get("ozmap_box_id", "")),
        }
    status = str(raw.get("status", "provisioned"))
    provisioned = time_value(raw.get("provisioned_at"), now)
    deprovisioned = optional_time(raw.get("deprovisioned_at"))
    if status == "deprovisioned" and deprovisioned is None:
        deprovisioned = now
    return {
        "id": _int_or_none(raw.get("id")),
        "serial": str(raw.get("serial", "")),
        "olt_id": int(raw["olt_id"]),
        "slot": int(raw.get("slot", 1)),
        "pon": int(raw.get("pon", 1)),
        "onu_index": int(raw.get("onu_index", 0)),
        "model": str(raw.get("model", "")),
        "vlan": int(raw.get("vlan", 100)),
        "description": str(raw.get("description", "")),
        "login": None if raw.get("login") is None else str(raw["login"]),
        "status": status,
        "cto": link,
        "oper_state": str(raw.get("oper_state", "unknown")),
        "rx_power_dbm": _float_or_none(raw.get("rx_power_dbm")),
        "tx_power_dbm": _float_or_none(raw.get("tx_power_dbm")),
        "provisioned_at": provisioned,
        "deprovisioned_at": deprovisioned,
        "updated_at": time_value(raw.get("updated_at"), max(provisioned, deprovisioned or 0)),
    }


_LOADERS: Final[dict[str, Callable[[Row, int], Row]]] = {"olts": _olt, "ctos": _cto, "onus": _onu}
