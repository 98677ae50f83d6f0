"""The Vetro FiberMap connector: service locations (GeoJSON features) and plans.

Configuration: ``kind = "vetro"``, ``url`` = the API base (``https://api.vetro.io/v3`` or ``…/v2``; ``/v3`` is
appended when the URL names no version), secret = the API token. Options ride in the URL's query string
(:func:`~.client.parse_url`): ``plans=112,113`` (plans to read; default every plan the token sees),
``layer=Service Location`` (the layer's label; its id is resolved from ``GET layers`` at first use, never
hard-coded), ``incremental=filter|scan`` and ``batch=10``.

Collections (:data:`CATALOG`):

- ``service_locations`` — features of the service-location layer as flat records (:mod:`.views`): ``id`` =
  ``vetro_id``, ``feature_id``, ``plan_id``, ``layer_id``, ``project_id``, ``created_time``,
  ``last_edited_time``, ``lon``, ``lat`` and ``properties.<label>`` per attribute. Writable: ``lon``/``lat``
  (a Point), ``plan_id`` (create only) and every ``properties.<label>`` — the catalog lists the labels of
  vetro.md 4.4; any other ``properties.<label>`` is accepted too (tenant attributes, mapped COS metadata) and
  validated by Vetro against the layer schema.
- ``plans`` — ``label``, ``project_id``, ``project_label`` (read-only; ``GET plans`` is capped per day, read once).

Reads: ``GET features/query`` with ``layer_ids``, ``plan_ids`` (v2 comma form), ``offset``/``limit``, default
order (``feature_id``, stable), until a page is shorter than ``limit`` (no total is announced, vetro.md 2.5).
Records are de-duplicated by ``vetro_id`` within a stream. Incremental = ``filter=last_edited_time>="<since>"``
[assume, V3] re-checked client-side (``incremental=scan`` reads everything and filters here). Every stream ends
with a re-count probe (``offset = n-1, limit = 1`` must still answer the last feature read): if features were
deleted while paging, offsets shifted and some may have been skipped, so the stream raises
``SnapshotIncomplete`` instead of ending (vetro.md 2.5). Vetro cannot list deletions.

Writes: ``create`` = ``POST features`` (not retried once it may have reached Vetro); ``update`` = ``PATCH
features`` with only the changed properties (``None`` clears); :meth:`VetroConnector.update_many` sends
batches of ``batch`` features (all-or-nothing on Vetro's side, so a refused batch is retried item by item to
isolate the bad one); ``delete`` = ``POST features/delete`` (never needed by the seed's flows).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.base import Catalog, CollectionSchema
from reconciler.connectors.vetro import views
from reconciler.connectors.vetro.client import VetroClient
from reconciler.connectors.vetro.views import PROPERTY_PREFIX, parse_time
from reconciler.model import Fields, Record, Value

#: The service-location attributes of vetro.md 4.4 (both tables).
ATTRIBUTES = (
    "ID", "Address", "Street Address", "City", "State", "Zip Code", "County", "Building Type", "Drop Type",
    "Build", "Network Type", "Subname", "Address Import", "Status", "Group Name", "COS Object ID",
    "COS Object Number", "COS Object Status", "COS Reachable", "COS Service Status", "COS Drop Installed",
    "COS Link",
)  # fmt: skip
PROPERTY_FIELDS = frozenset(PROPERTY_PREFIX + label for label in ATTRIBUTES)
META_FIELDS = frozenset(
    {"feature_id", "plan_id", "layer_id", "project_id", "created_time", "last_edited_time", "lon", "lat"}
)
SL_WRITABLE = PROPERTY_FIELDS | {"lon", "lat", "plan_id"}
#: Ids per ``GET features/{ids}`` (a uuid is 36 characters: keeps the URL short).
ID_BATCH = 50

CATALOG: Catalog = {
    "service_locations": CollectionSchema(
        fields=META_FIELDS | PROPERTY_FIELDS,
        writable=SL_WRITABLE,
        incremental=True,
        deletions=False,
        description="Service Location features: x-vetro ids/times, lon/lat, properties.<label> per attribute",
        open_prefixes=frozenset({PROPERTY_PREFIX}),
    ),
    "plans": CollectionSchema(
        fields=frozenset({"label", "project_id", "project_label"}), description="Plans visible to the token"
    ),
}


class VetroConnector:
    """Vetro FiberMap API (v2/v3). ``rng`` seeds the retry jitter (None for a fresh one; pass one in tests)."""

    CATALOG: ClassVar[Catalog] = CATALOG

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        self.system = config.name
        self._client = VetroClient(config, session, rng=rng)
        self._layer_id: int | None = None

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
        self._check(collection)
        if deleted:
            raise errors.ConfigError(f"{self.system}: Vetro cannot list deleted {collection}")
        if collection == "plans":
            if since is not None:
                raise errors.ConfigError(f"{self.system}: plans cannot be streamed incrementally")
            return self._plan_pages()
        if since is not None:
            normalized = parse_time(since)
            if normalized is None:
                raise errors.ConfigError(f"{self.system}: since must be an RFC 3339 timestamp, not {since!r}")
            since = normalized
        return self._locations(since)

    async def fetch_by_ids(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        # a hint this connector ignores, as in ``stream``
        fields: Collection[str] | None = None,
    ) -> list[Record]:
        self._check(collection)
        unique = list(dict.fromkeys(ids))
        if collection == "plans":
            wanted = set(unique)
            return [r async for page in self._plan_pages() for r in page if r.id in wanted]
        layer_id = await self._service_layer()
        found: list[views.Feature] = []
        for start in range(0, len(unique), ID_BATCH):
            found.extend(await self._by_ids(unique[start : start + ID_BATCH]))
        return [views.feature_record(f) for f in found if f.x_vetro.layer_id in (layer_id, None)]

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        self._check(collection)
        known = self.CATALOG[collection].fields | {"id"}
        unknown = [k for k in match if k not in known and not _is_property(k, collection)]
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        if collection == "plans" or "id" in match:
            candidates = (
                await self.fetch_by_ids(collection, [str(match["id"])])
                if "id" in match
                else [r async for page in self._plan_pages() for r in page]
            )
        else:
            params = await self._params()
            clauses = [_clause(k, v) for k, v in match.items() if k.startswith(PROPERTY_PREFIX)]
            if any(clauses):
                params["filter"] = " AND ".join(c for c in clauses if c)
            plan_id = match.get("plan_id")
            if isinstance(plan_id, int):
                if self._client.options.plans and plan_id not in self._client.options.plans:
                    return []
                params["plan_ids"] = str(plan_id)
            candidates = [r async for page in self._pages(params, None, probe=False) for r in page]
        return [r for r in candidates if all(_same(_get(r, k), v) for k, v in match.items())]

    async def create(self, collection: str, fields: Fields) -> str:
        self._writable(collection, fields)
        plan_id = fields.get("plan_id")
        if not isinstance(plan_id, int) or isinstance(plan_id, bool):
            raise errors.ConfigError(f"{self.system} {collection}: a create needs an integer plan_id")
        if fields.get("lon") is None or fields.get("lat") is None:
            raise errors.ConfigError(f"{self.system} {collection}: a create needs lon and lat")
        feature = {
            "type": "Feature",
            "x-vetro": {"plan_id": plan_id, "layer_id": await self._service_layer()},
            "geometry": _point(fields["lon"], fields["lat"]),
            "properties": _properties(fields),
        }
        [created] = await self._client.create([feature])
        return created.x_vetro.vetro_id

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        self._writable(collection, changes)
        if changes:
            await self._client.patch([await self._patch_item(record_id, changes)])

    async def update_many(
        self, collection: str, items: Sequence[tuple[str, Fields]]
    ) -> list[errors.RemoteError | None]:
        """Update many features in PATCH batches of ``batch``; the error of each item (None = done).

        Vetro applies a batch all-or-nothing, so a batch it refuses (4xx) is resent item by item: only the bad
        items fail. Other failures (after retries) fail every item of their batch.
        """
        for _, changes in items:
            self._writable(collection, changes)
        outcome: list[errors.RemoteError | None] = [None] * len(items)
        bodies: list[dict[str, Any]] = []
        positions: list[int] = []
        for position, (record_id, changes) in enumerate(items):
            if not changes:
                continue
            try:
                bodies.append(await self._patch_item(record_id, changes))
            except errors.RemoteError as exc:  # lon or lat alone on a feature that cannot be read
                outcome[position] = exc
                continue
            positions.append(position)
        size = self._client.options.batch
        for start in range(0, len(bodies), size):
            chunk = list(zip(positions[start : start + size], bodies[start : start + size], strict=True))
            try:
                await self._client.patch([body for _, body in chunk])
            except errors.TerminalRemoteError as exc:
                if len(chunk) == 1 or isinstance(exc, errors.AuthError):
                    for position, _ in chunk:
                        outcome[position] = exc
                    continue
                for position, body in chunk:
                    try:
                        await self._client.patch([body])
                    except errors.RemoteError as item_exc:
                        outcome[position] = item_exc
            except errors.RemoteError as exc:
                for position, _ in chunk:
                    outcome[position] = exc
        return outcome

    async def delete(self, collection: str, record_id: str) -> None:
        self._check(collection)
        if collection == "plans":
            raise errors.ConfigError(f"{self.system}: plans are read-only")
        await self._client.delete([record_id])

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        """Vetro collections have no named operations (ConfigError)."""
        self._check(collection)
        raise errors.ConfigError(f"{self.system} {collection} has no operation {operation!r}")

    # -- internals ------------------------------------------------------------------------------------------

    def _check(self, collection: str) -> None:
        if collection not in self.CATALOG:
            known = ", ".join(sorted(self.CATALOG))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> None:
        self._check(collection)
        if collection == "plans":
            raise errors.ConfigError(f"{self.system}: plans are read-only")
        extra = [k for k in fields if k not in SL_WRITABLE and not _is_property(k, collection)]
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")

    async def _service_layer(self) -> int:
        if self._layer_id is None:
            label = self._client.options.layer
            layers = await self._client.layers()
            layer = next((layer for layer in layers if layer.label == label), None)
            if layer is None:
                names = ", ".join(sorted(repr(layer.label) for layer in layers))
                raise errors.ConfigError(f"{self.system}: no layer labelled {label!r} (layers: {names})")
            self._layer_id = layer.id
        return self._layer_id

    async def _params(self) -> dict[str, str]:
        params = {"layer_ids": str(await self._service_layer())}
        plans = self._client.options.plans
        if plans:
            params["plan_ids"] = ",".join(map(str, plans))
        return params

    async def _locations(self, since: str | None) -> AsyncIterator[list[Record]]:
        params = await self._params()
        if since is not None and self._client.options.incremental == "filter":
            params["filter"] = f'last_edited_time>="{since}"'
        async for page in self._pages(params, since, probe=True):
            yield page

    async def _pages(
        self, params: dict[str, str], since: str | None, *, probe: bool
    ) -> AsyncIterator[list[Record]]:
        """Offset paging to the first short page; de-duplicated; optionally ends with the re-count probe."""
        client, size = self._client, self._client.page_size
        seen: set[str] = set()
        offset, last = 0, ""
        while True:
            try:
                page = await client.query({**params, "offset": str(offset), "limit": str(size)})
            except errors.RemoteError as exc:
                if offset == 0 or not errors.is_transient(exc):
                    raise
                raise errors.SnapshotIncomplete(f"{self.system} features at offset {offset}: {exc}") from exc
            offset += len(page)
            if page:
                last = page[-1].x_vetro.vetro_id
            records = []
            for feature in page:
                record = views.feature_record(feature)
                if record.id in seen or (since is not None and record.updated_at < since):
                    continue
                seen.add(record.id)
                records.append(record)
            if records:
                yield records
            if len(page) < size:
                break
        if probe and offset:
            await self._recount(params, offset, last)

    async def _recount(self, params: dict[str, str], read: int, last: str) -> None:
        try:
            tail = await self._client.query({**params, "offset": str(read - 1), "limit": "1"})
        except errors.RemoteError as exc:
            raise errors.SnapshotIncomplete(f"{self.system} features: re-count failed: {exc}") from exc
        if not tail or tail[0].x_vetro.vetro_id != last:
            raise errors.SnapshotIncomplete(
                f"{self.system} features: the listing changed while paging ({read} read); offsets shifted"
            )

    async def _by_ids(self, ids: list[str]) -> list[views.Feature]:
        """``GET features/{ids}``; a 404 (some id unknown) splits the batch until the unknown ids drop out."""
        if not ids:
            return []
        try:
            return await self._client.by_ids(ids)
        except errors.NotFound:
            if len(ids) == 1:
                return []
        middle = len(ids) // 2
        return [*await self._by_ids(ids[:middle]), *await self._by_ids(ids[middle:])]

    async def _patch_item(self, record_id: str, changes: Fields) -> dict[str, Any]:
        if "plan_id" in changes:
            raise errors.ConfigError(f"{self.system}: plan_id can only be set when a feature is created")
        item: dict[str, Any] = {"type": "Feature", "x-vetro": {"vetro_id": record_id}}
        properties = _properties(changes)
        if properties:
            item["properties"] = properties
        if "lon" in changes or "lat" in changes:
            lon, lat = changes.get("lon"), changes.get("lat")
            if "lon" not in changes or "lat" not in changes:
                found = await self.fetch_by_ids("service_locations", [record_id])
                if not found:
                    raise errors.NotFound(self.system, f"feature {record_id} not found")
                current = found[0]
                lon = changes.get("lon", current.fields["lon"])
                lat = changes.get("lat", current.fields["lat"])
            item["geometry"] = _point(lon, lat)
        return item

    async def _plan_pages(self) -> AsyncIterator[list[Record]]:
        yield [views.plan_record(plan) for plan in await self._client.plans()]


def _is_property(name: str, collection: str) -> bool:
    return collection == "service_locations" and name.startswith(PROPERTY_PREFIX) and len(name) > 11


def _properties(fields: Mapping[str, Value]) -> dict[str, Value]:
    return {k[len(PROPERTY_PREFIX) :]: v for k, v in fields.items() if k.startswith(PROPERTY_PREFIX)}


def _point(lon: Value, lat: Value) -> dict[str, Any]:
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lon, lat)):
        raise errors.ConfigError(f"lon/lat must be numbers, not {lon!r}/{lat!r}")
    return {"type": "Point", "coordinates": [lon, lat]}


def _clause(name: str, value: Value) -> str:
    """A server-side ``filter`` clause for ``properties.<label> = value``, or "" when it cannot be expressed."""
    label = name[len(PROPERTY_PREFIX) :]
    if '"' in label or "\\" in label:
        return ""
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{label}"="{value}"'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'"{label}"={value}'
    return ""


def _get(record: Record, name: str) -> Value:
    return record.id if name == "id" else record.fields.get(name)


def _same(actual: Value, wanted: Value) -> bool:
    """Exact equality (case-sensitive; ``True`` is not ``1``)."""
    return actual == wanted and isinstance(actual, bool) == isinstance(wanted, bool)
