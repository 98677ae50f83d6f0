"""The ArchOLT connector: OLTs, ONUs, CTO mirrors and the change feed as flat collections (archolt.md; A1).

Collections (:data:`CATALOG`):

- ``olts`` — read-only: each OLT with its OZmap mapping (``ozmap_olt_id``, ``mapped``) and the "require CTO on
  activation" option [seed]; incremental on ``updated_at``.
- ``onus`` — read-only: the *provisioned* ONUs, flattened with their CTO link and their OLT (name, ip, mapping,
  ``require_cto``); incremental on ``updated_at``. Deprovisioned ONUs are this collection's deletions: the
  ``deleted=True`` stream lists the tombstones deprovisioned since the cursor (``status=deprovisioned``, kept
  30 days by ArchOLT, archolt.md 2 "Tombstones"), and a full stream leaves them out, so the engine sees a
  deprovisioned ONU as gone either way (the seed's "client cancellation"). ``fetch_by_ids`` answers provisioned
  ONUs only, for the same reason.
- ``ctos`` — the box mirrors, read/write (the box sync writes OZmap boxes into ArchOLT). The record id is the
  ``ozmap_box_id`` every write addresses (ArchOLT's own id is ``cto_id``). create/update = ``PUT
  ctos/ozmap/{id}`` (an idempotent upsert, so safely retried; update reads the mirror and overlays the changes,
  because the PUT replaces it), delete = ``DELETE ctos/ozmap/{id}``, falling back to ``?deactivate=true`` when
  ArchOLT answers 409 ``cto_in_use`` (archolt.md A7). Incremental on ``updated_at``; no deletion listing.
- ``events`` — the change feed, read-only: ``since`` is a feed position (a record's ``updated_at`` is its zero-
  padded ``seq``; ``since`` is inclusive like everywhere else), ``since=None`` starts at the oldest retained event.
  A position older than the 7-day retention raises :class:`~.client.CursorExpired` (410): resync with a full
  ``onus`` read (archolt.md 2 "Change feed", A10).
- ``pon-ports`` — read-only: one record per PON port with its launch power ``tx_power_dbm`` (see
  :mod:`.pon_ports`).

No collection has operations (``operate`` raises ConfigError): inactivating a mirror is an update of ``active``.

Timestamps are normalised to UTC with ``zone`` (default America/Sao_Paulo, the server zone of archolt.md 2), so
naive local timestamps (``naive_local_timestamps`` installs) and offset ones give the same records.
"""

from __future__ import annotations

import operator
import random
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import tzinfo
from typing import ClassVar

import aiohttp
import anyio

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.archolt import pon_ports, views
from reconciler.connectors.archolt.client import EVENT_LIMIT, ArcholtClient, Refused
from reconciler.connectors.base import Catalog, CollectionSchema
from reconciler.model import Fields, Record, Value

DEFAULT_ZONE = "America/Sao_Paulo"

CTO_WRITABLE = frozenset(views.CTO_BODY_FIELDS)

CATALOG: Catalog = {
    "olts": CollectionSchema(
        fields=views.OLT_FIELDS,
        incremental=True,
        description="OLTs with their OZmap mapping, PON ports and the require-CTO-on-activation option",
    ),
    "onus": CollectionSchema(
        fields=views.ONU_FIELDS,
        incremental=True,
        deletions=True,
        description="Provisioned ONUs with CTO link and OLT; deletions = deprovisioned tombstones",
    ),
    "ctos": CollectionSchema(
        fields=views.CTO_FIELDS,
        writable=CTO_WRITABLE,
        incremental=True,
        description="CTO mirrors of OZmap boxes, addressed by ozmap_box_id (upsert/delete)",
    ),
    "events": CollectionSchema(
        fields=views.EVENT_FIELDS,
        incremental=True,
        description="Change feed; updated_at = zero-padded seq (the feed position)",
    ),
    pon_ports.COLLECTION: pon_ports.SCHEMA,
}

#: record field → ``GET`` filter of the list endpoint (values are sent as text)
_FILTERS: dict[str, dict[str, str]] = {
    "olts": {},
    "onus": {"serial": "serial", "olt_id": "olt_id", "cto_id": "cto_id", "has_cto": "has_cto"},
    "ctos": {"id": "ozmap_box_id", "ozmap_box_id": "ozmap_box_id", "name": "name", "olt_id": "olt_id", "active": "active"},
}  # fmt: skip

_BOOL_FILTERS = frozenset({"has_cto", "active"})
_INT_FILTERS = frozenset({"olt_id", "cto_id"})
_keyset_key = operator.attrgetter("updated_at", "id")


def _zone(zone: tzinfo | str | None) -> tzinfo:
    if isinstance(zone, tzinfo):
        return zone
    from zoneinfo import ZoneInfo

    return ZoneInfo(zone or DEFAULT_ZONE)


class ArcholtConnector:
    """ArchOLT REST API. ``rng`` seeds the retry jitter; ``zone`` reads naive server timestamps."""

    CATALOG: ClassVar[Catalog] = CATALOG

    def __init__(
        self,
        config: SystemConfig,
        session: aiohttp.ClientSession,
        *,
        rng: random.Random | None = None,
        zone: tzinfo | str | None = None,
    ) -> None:
        self.system = config.name
        self.zone = _zone(zone)
        self._client = ArcholtClient(config, session, rng=rng)

    @classmethod
    def catalog(cls) -> Catalog:
        return cls.CATALOG

    def statistics(self) -> Mapping[str, int]:
        return self._client.transport.statistics()

    def stream(
        self,
        collection: str,
        *,
        since: str | None = None,
        deleted: bool = False,
        # a hint this connector ignores: its records carry every field, and reading them whole costs no request
        fields: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[Record]]:
        schema = self._schema(collection)
        if deleted and not schema.deletions:
            raise errors.ConfigError(f"{self.system}: ArchOLT cannot list deleted {collection}")
        if collection == "events":
            return self._events(since)
        if collection == "onus":
            status = "deprovisioned" if deleted else "provisioned"
            return self._onus({"status": status}, since, deleted=deleted)
        if collection == "ctos":
            return self._simple("ctos", since)
        if collection == pon_ports.COLLECTION:
            return pon_ports.stream(self._client, self.zone, since)
        return self._simple("olts", since)

    async def fetch_by_ids(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        # a hint this connector ignores, as in ``stream``
        fields: Collection[str] | None = None,
    ) -> list[Record]:
        self._schema(collection)
        if collection == "events":
            raise errors.ConfigError(f"{self.system}: events are read by position, not by id")
        if collection == pon_ports.COLLECTION:
            return await pon_ports.fetch_by_ids(self._client, self.zone, ids)
        unique = list(dict.fromkeys(ids))
        found: dict[str, Record] = {}
        olts = await self._olt_index() if collection == "onus" else {}

        failures: list[errors.RemoteError] = []

        async def one(record_id: str) -> None:
            try:
                record = await self._one(collection, record_id, olts)
            except errors.RemoteError as exc:  # raised once the group is done, never as an ExceptionGroup
                failures.append(exc)
                return
            if record is not None:
                found[record_id] = record

        async with anyio.create_task_group() as tg:
            for record_id in unique:
                tg.start_soon(one, record_id)
        if failures:
            raise failures[0]
        return [found[i] for i in unique if i in found]

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        schema = self._schema(collection)
        if collection == "events":
            raise errors.ConfigError(f"{self.system}: events cannot be searched")
        unknown = set(match) - schema.fields
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        if collection == pon_ports.COLLECTION:
            ports = [r async for page in pon_ports.stream(self._client, self.zone, None) for r in page]
            return [r for r in ports if all(_same(r.fields.get(k), v) for k, v in match.items())]
        if collection != "ctos" and "id" in match:
            wanted = match["id"]
            found = await self.fetch_by_ids(collection, [wanted]) if isinstance(wanted, str) else []
            return [r for r in found if all(_same(r.fields.get(k), v) for k, v in match.items())]
        filters = {"status": "provisioned"} if collection == "onus" else {}
        for name, value in match.items():
            param = _FILTERS[collection].get(name)
            if param is None:
                continue
            text = _filter_text(param, value)
            if text is None:
                return []  # a value of the wrong type can never equal the field exactly
            filters[param] = text
        out: list[Record] = []
        async for page in self._filtered(collection, filters):
            out.extend(r for r in page if all(_same(r.fields.get(k), v) for k, v in match.items()))
        return out

    async def create(self, collection: str, fields: Fields) -> str:
        self._writable(collection, fields)
        box = fields.get("ozmap_box_id")
        if not isinstance(box, str) or not box:
            raise errors.ConfigError(f"{self.system} ctos: create needs ozmap_box_id (a non-empty string)")
        body = {k: v for k, v in fields.items() if k != "ozmap_box_id"}
        cto = await self._client.put_cto(box, body)
        return cto.ozmap_box_id

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        self._writable(collection, changes)
        if not changes:
            return
        if changes.get("ozmap_box_id", record_id) != record_id:
            raise errors.ConfigError(f"{self.system} ctos: ozmap_box_id is the record id and cannot change")
        current = await self._current_cto(record_id)
        body = {**views.cto_body(current), **changes}
        body.pop("ozmap_box_id", None)
        await self._client.put_cto(record_id, body)

    async def delete(self, collection: str, record_id: str) -> None:
        self._writable(collection, {})
        try:
            await self._client.delete_cto(record_id)
        except Refused as exc:
            if exc.code != "cto_in_use":
                raise
            await self._client.delete_cto(record_id, deactivate=True)

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        """ArchOLT collections have no operations (a mirror is inactivated by updating ``active``)."""
        self._schema(collection)
        raise errors.ConfigError(f"{self.system} {collection} has no operation {operation!r}")

    # -- internals ------------------------------------------------------------------------------------------

    def _schema(self, collection: str) -> CollectionSchema:
        schema = CATALOG.get(collection)
        if schema is None:
            known = ", ".join(sorted(CATALOG))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")
        return schema

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> None:
        schema = self._schema(collection)
        if not schema.writable:
            raise errors.ConfigError(f"{self.system} {collection} is read-only")
        extra = set(fields) - schema.writable
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")

    async def _olt_index(self) -> dict[int, views.OltView]:
        index: dict[int, views.OltView] = {}
        async for page in self._client.pages("olts", views.OLTS, lambda o: str(o.id)):
            index.update((o.id, o) for o in page)
        return index

    async def _onus(
        self, filters: dict[str, str], since: str | None, *, deleted: bool = False
    ) -> AsyncIterator[list[Record]]:
        olts: dict[int, views.OltView] | None = None
        async for page in self._client.walk("onus", views.ONUS, _keyset_key, filters=filters, since=since):
            if olts is None:
                olts = await self._olt_index()
            yield [views.onu_record(o, olts, self.zone, deleted=deleted) for o in page]

    async def _simple(self, collection: str, since: str | None) -> AsyncIterator[list[Record]]:
        zone = self.zone
        if collection == "ctos":
            async for ctos in self._client.walk("ctos", views.CTOS, _keyset_key, since=since):
                yield [views.cto_record(c, zone) for c in ctos]
        else:
            async for olts in self._client.walk("olts", views.OLTS, _keyset_key, since=since):
                yield [views.olt_record(o, zone) for o in olts]

    async def _filtered(self, collection: str, filters: dict[str, str]) -> AsyncIterator[list[Record]]:
        zone, client = self.zone, self._client
        if collection == "onus":
            olts = await self._olt_index()
            async for onus in client.pages("onus", views.ONUS, lambda o: str(o.id), filters=filters):
                yield [views.onu_record(o, olts, zone) for o in onus]
        elif collection == "ctos":
            async for ctos in client.pages("ctos", views.CTOS, lambda c: str(c.id), filters=filters):
                yield [views.cto_record(c, zone) for c in ctos]
        else:
            async for olts_page in client.pages("olts", views.OLTS, lambda o: str(o.id), filters=filters):
                yield [views.olt_record(o, zone) for o in olts_page]

    async def _one(self, collection: str, record_id: str, olts: Mapping[int, views.OltView]) -> Record | None:
        if collection == "ctos":
            found = [r async for page in self._filtered("ctos", {"ozmap_box_id": record_id}) for r in page]
            return next((r for r in found if r.id == record_id), None)
        if not record_id.isdigit():
            return None
        try:
            if collection == "olts":
                return views.olt_record(await self._client.get(f"/olts/{record_id}", views.OLT), self.zone)
            onu = await self._client.get(f"/onus/{record_id}", views.ONU)
        except errors.NotFound:
            return None
        if onu.status != "provisioned":
            return None
        return views.onu_record(onu, olts, self.zone)

    async def _current_cto(self, ozmap_box_id: str) -> views.CtoView:
        params = {"ozmap_box_id": ozmap_box_id, "page": "1", "per_page": "2"}
        page = await self._client.list_page("ctos", views.CTOS, params)
        for cto in page.data:
            if cto.ozmap_box_id == ozmap_box_id:
                return cto
        raise errors.NotFound(
            self.system, f"GET /ctos?ozmap_box_id → no CTO mirror of OZmap box {ozmap_box_id}"
        )

    async def _events(self, since: str | None) -> AsyncIterator[list[Record]]:
        after: int | None = None
        if since is not None:
            try:
                after = max(0, int(since) - 1)
            except ValueError:
                raise errors.ConfigError(
                    f"{self.system} events: since must be a feed position, got {since!r}"
                ) from None
        while True:
            page = await self._client.events(after, EVENT_LIMIT)
            if page.data:
                yield [views.event_record(e, self.zone) for e in page.data]
            if len(page.data) < EVENT_LIMIT or (after is not None and page.next_after <= after):
                return
            after = page.next_after


def _filter_text(param: str, value: Value) -> str | None:
    """A match value as the text of list filter ``param``; None when no record can equal it (wrong type)."""
    if param in _BOOL_FILTERS:
        return ("true" if value else "false") if isinstance(value, bool) else None
    if param in _INT_FILTERS:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def _same(actual: Value, wanted: Value) -> bool:
    """Exact equality (case-sensitive; ``True`` is not ``1``)."""
    return actual == wanted and isinstance(actual, bool) == isinstance(wanted, bool)
