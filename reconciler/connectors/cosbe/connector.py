"""The COS Business Engine connector: objects, object groups and object metadata definitions.

Configuration: ``kind = "cosbe"``, ``url`` = ``https://<tenant>.<env>.partnerapi.net`` (``/v1`` appended), secret =
``"<environment>:<api key>"`` — the ``BusinessEngine`` header value, a colon, the API key (:mod:`.client`). The
config file gains nothing COS-specific. COS's REST surface is a project contract (cosbe.md: mostly [assume]), so
this module stays thin.

Collections (:data:`CATALOG`):

- ``objects`` — flat records (:mod:`.views`): ``objectNumber``, ``objectType``, ``status``, ``reachable``,
  ``serviceStatus``, ``dropInstalled``, ``group.id``/``group.name``, ``address.*``, ``externalIdentification``,
  ``externalServiceLocationId``, ``vetroLink``, ``adminUrl``, ``createdAt``, ``updatedAt``, ``version`` and
  ``metadata.<name>``. Writable (cosbe.md 2.3): ``objectType``, ``status``, ``reachable``, ``dropInstalled``,
  ``group.id`` or ``group.name`` (resolved through ``ObjectGroup/List``), ``address.*`` (sent as one whole
  address, merged with the current one on update), the external ids, ``vetroLink`` and ``metadata.<name>``
  (None clears). ``serviceStatus`` is read-only (it follows the order). The catalog lists the sandbox's
  metadata names; any other ``metadata.<name>`` is accepted too and validated by COS against its definitions.
- ``groups`` (``name``) and ``metadata_fields`` (``name``, ``type``, ``options`` …) — read-only, for lookups.

Reads: ``Object/List`` in keyset form (C2): always ``pageIndex=0``, advancing ``(modifiedSince, afterId)`` to the
last item of each page until a page is shorter than its size — never skips, never loops, even when thousands of
objects share one ``updatedAt``. A full stream starts at the epoch; an incremental one at ``since`` (inclusive).
Records are de-duplicated by id within a stream (an object changed while the stream runs comes back at the end;
its first version is kept and the next incremental run, which re-reads a lag window, sees the new one).
``fetch_by_ids`` uses ``Object/Get`` per id, concurrently. COS cannot list deletions and has no delete.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
import anyio

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.base import Catalog, CollectionSchema
from reconciler.connectors.cosbe import views
from reconciler.connectors.cosbe.client import CosbeClient
from reconciler.connectors.cosbe.views import METADATA_PREFIX
from reconciler.model import Fields, Record, Value

EPOCH = "1970-01-01T00:00:00Z"
SANDBOX_METADATA = ("Drop Type", "Survey Done", "Install Notes", "Splice Tray")
ADDRESS_FIELDS = frozenset(f"address.{part}" for part in views.ADDRESS_PARTS)
OBJECT_WRITABLE = (
    frozenset(views.WRITABLE_SCALARS)
    | {"group.id", "group.name"}
    | ADDRESS_FIELDS
    | {METADATA_PREFIX + name for name in SANDBOX_METADATA}
)
OBJECT_FIELDS = OBJECT_WRITABLE | frozenset(views.SCALARS)
#: record field → ``Object/List`` filter parameter (cosbe.md 2.2)
SERVER_FILTERS = {
    "status": "status",
    "group.id": "groupId",
    "externalIdentification": "externalIdentification",
    "externalServiceLocationId": "externalServiceLocationId",
    "objectNumber": "objectNumber",
}
LIST_PATHS = {"groups": "/ObjectGroup/List", "metadata_fields": "/Metadata/List"}

CATALOG: Catalog = {
    "objects": CollectionSchema(
        fields=OBJECT_FIELDS,
        writable=OBJECT_WRITABLE,
        incremental=True,
        deletions=False,
        description="Objects (locations): status, service status, drop, group, address, external ids, metadata.*",
        open_prefixes=frozenset({METADATA_PREFIX}),
    ),
    "groups": CollectionSchema(fields=frozenset({"name"}), description="Object groups"),
    "metadata_fields": CollectionSchema(
        fields=frozenset(
            {
                "name",
                "entity",
                "type",
                "options",
                "required",
                "maxLength",
                "externalId",
                "visibleToServiceProviders",
            }
        ),
        description="Metadata field definitions of objects",
    ),
}


class CosbeConnector:
    """COS BE partner API v1. ``rng`` seeds the retry jitter (None for a fresh one; pass one in tests)."""

    CATALOG: ClassVar[Catalog] = CATALOG

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        self.system = config.name
        self._client = CosbeClient(config, session, rng=rng)

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
            raise errors.ConfigError(f"{self.system}: COS BE cannot list deleted {collection}")
        if collection != "objects":
            if since is not None:
                raise errors.ConfigError(f"{self.system}: {collection} cannot be streamed incrementally")
            return self._named(collection)
        return self._objects(since, {})

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
        if collection != "objects":
            wanted = set(unique)
            return [r async for page in self._named(collection) for r in page if r.id in wanted]
        found: dict[str, Record] = {}
        failures: list[errors.RemoteError] = []
        gate = anyio.Semaphore(self._client.concurrency)

        async def one(object_id: str, scope: anyio.CancelScope) -> None:
            async with gate:
                try:
                    found[object_id] = views.object_record(await self._client.get(object_id))
                except errors.NotFound:
                    pass
                except errors.RemoteError as exc:  # the first failure stops the others and is raised as is
                    failures.append(exc)
                    scope.cancel()

        async with anyio.create_task_group() as tg:
            for object_id in unique:
                tg.start_soon(one, object_id, tg.cancel_scope)
        if failures:
            raise failures[0]
        return [found[i] for i in unique if i in found]

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        self._check(collection)
        known = self.CATALOG[collection].fields | {"id"}
        unknown = [k for k in match if k not in known and not _is_metadata(k, collection)]
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        if "id" in match:
            candidates = await self.fetch_by_ids(collection, [str(match["id"])])
        elif collection != "objects":
            candidates = [r async for page in self._named(collection) for r in page]
        else:
            filters = {
                SERVER_FILTERS[k]: str(v)
                for k, v in match.items()
                if k in SERVER_FILTERS and isinstance(v, str | int) and not isinstance(v, bool) and v != ""
            }
            candidates = [r async for page in self._objects(None, filters) for r in page]
        return [r for r in candidates if all(_same(_get(r, k), v) for k, v in match.items())]

    async def create(self, collection: str, fields: Fields) -> str:
        self._writable(collection, fields)
        body = views.body_of(
            {k: v for k, v in fields.items() if not (k.startswith(METADATA_PREFIX) and v is None)},
            group_id=await self._group_id(fields),
            address=views.address_of(fields, None),
        )
        created = await self._client.create(body)
        new_id = created.get("id")
        if not isinstance(new_id, str) or not new_id:
            raise self._client.transport.error(
                errors.TerminalRemoteError, "POST", "/Object/Create", "created object has no id"
            )
        return new_id

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        self._writable(collection, changes)
        if not changes:
            return
        current: dict[str, Any] | None = None
        if ADDRESS_FIELDS & changes.keys():
            current = (await self._client.get(record_id)).get("address")
        body = views.body_of(
            changes, group_id=await self._group_id(changes), address=views.address_of(changes, current)
        )
        await self._client.update({"id": record_id, **body})

    async def delete(self, collection: str, record_id: str) -> None:
        self._check(collection)
        raise errors.ConfigError(f"{self.system}: COS BE has no API to delete {collection}")

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        """COS BE collections have no named operations (ConfigError)."""
        self._check(collection)
        raise errors.ConfigError(f"{self.system} {collection} has no operation {operation!r}")

    # -- internals ------------------------------------------------------------------------------------------

    def _check(self, collection: str) -> None:
        if collection not in self.CATALOG:
            known = ", ".join(sorted(self.CATALOG))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> None:
        self._check(collection)
        schema = self.CATALOG[collection]
        extra = [k for k in fields if k not in schema.writable and not _is_metadata(k, collection)]
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")

    async def _group_id(self, fields: Mapping[str, Value]) -> str | None:
        """The group id to write: ``group.id`` as given, else ``group.name`` resolved (exact, trimmed)."""
        if "group.id" in fields:
            value = fields["group.id"]
            return None if value is None else str(value)
        name = fields.get("group.name")
        if name is None:
            return None
        wanted = str(name).strip()
        for group in await self._client.groups():
            if group.get("name") == wanted:
                return str(group["id"])
        raise errors.TerminalRemoteError(self.system, f"no object group named {wanted!r}")

    async def _objects(self, since: str | None, filters: Mapping[str, str]) -> AsyncIterator[list[Record]]:
        """Keyset paging over ``Object/List`` (see the module docstring)."""
        client = self._client
        size = client.page_size
        modified, after = since or EPOCH, ""
        seen: set[str] = set()
        first = True
        while True:
            params = {"pageIndex": "0", "pageSize": str(size), "modifiedSince": modified, **filters}
            if after:
                params["afterId"] = after
            try:
                page = await client.page("/Object/List", params)
            except errors.RemoteError as exc:
                if first or not errors.is_transient(exc):
                    raise
                raise errors.SnapshotIncomplete(f"{self.system} objects after {modified}: {exc}") from exc
            first = False
            records = [views.object_record(item) for item in page.items]
            fresh = [r for r in records if r.id not in seen]
            seen.update(r.id for r in fresh)
            if fresh:
                yield fresh
            if len(page.items) < (page.pageSize or size) or not records:
                return
            last = records[-1]
            if (last.updated_at, last.id) <= (modified, after):
                raise self._client.transport.error(
                    errors.TerminalRemoteError, "GET", "/Object/List", "keyset paging did not advance"
                )
            modified, after = last.updated_at, last.id

    async def _named(self, collection: str) -> AsyncIterator[list[Record]]:
        rows = await (self._client.groups() if collection == "groups" else self._client.definitions())
        yield [views.named_record(row) for row in rows]


def _is_metadata(name: str, collection: str) -> bool:
    return collection == "objects" and name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX)


def _get(record: Record, name: str) -> Value:
    return record.id if name == "id" else record.fields.get(name)


def _same(actual: Value, wanted: Value) -> bool:
    """Exact equality (case-sensitive; ``True`` is not ``1``)."""
    return actual == wanted and isinstance(actual, bool) == isinstance(wanted, bool)
