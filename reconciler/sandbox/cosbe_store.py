"""The COS BE sandbox's data: objects, object groups, metadata definitions, API keys, clock, knobs, webhooks.

Objects are kept in their wire shape (cosbe.md 4.1). Faithful writes (:meth:`CosbeStore.create`,
:meth:`CosbeStore.update`) validate per :mod:`.cosbe_objects`, bump ``version`` and ``updatedAt`` on every write
and emit ``ObjectCreated``/``ObjectUpdated`` webhook events [assume, C6]. Listing (:meth:`CosbeStore.list_objects`)
orders by ``updatedAt`` then ``id``, with an inclusive ``modifiedSince`` and the keyset ``afterId`` (C2).

The ``user_*`` methods and the lifecycle actions (:meth:`CosbeStore.order`,
:meth:`CosbeStore.work_order_completed`) back the control API: a person working in COS BE's UI. They skip the
API's validation but emit the same events (plus ``OrderOperation``/``OrderCreated`` noise, and
``ObjectDeleted`` for a UI deletion — a fake-side extension; the contract has no delete).
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from reconciler.sandbox import cosbe_objects as co
from reconciler.sandbox.cosbe_objects import Group, MetadataField, Obj, Problem
from reconciler.sandbox.cosbe_webhooks import Notifier

DEFAULT_API_KEY = "cosbe-sandbox-key-2f9c41d7a8e64b0c"
DEFAULT_ENVIRONMENT = "sandbox-test"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
KINDS = ("objects", "groups", "metadata")
OBJECT_KEYS = frozenset(
    {
        "id", "objectNumber", "objectType", "status", "reachable", "serviceStatus", "dropInstalled", "group",
        "address", "externalIdentification", "externalServiceLocationId", "vetroLink", "adminUrl", "metadata",
        "createdAt", "updatedAt", "version",
    }
)  # fmt: skip


class ApiKey(msgspec.Struct, forbid_unknown_fields=True):
    """An API key: the ``environment`` it belongs to and whether it may write."""

    environment: str = DEFAULT_ENVIRONMENT
    write: bool = True


class CosbeKnobs(msgspec.Struct, forbid_unknown_fields=True):
    """Behaviour switches, set via ``POST /_sandbox/knobs``."""

    rate_limit: float = 20.0
    """Requests per second per key [assume, C9]; 0 = unlimited."""
    rate_burst: float = 40.0
    allowed_ips: list[str] | None = None
    """Source IPv4 allow-list (cosbe.md 1); None = allow every address."""
    drift_touch: int = 0
    """After each ``Object/List`` page: bump updatedAt/version of the first objects of the page (no event)."""
    order_noise: bool = True
    """Lifecycle ``order`` actions also emit the published-shape order events."""


class ListQuery(NamedTuple):
    """The parameters of ``Object/List`` (cosbe.md 2.1, 2.2), parsed."""

    page_index: int = 0
    page_size: int = DEFAULT_PAGE_SIZE
    modified_since: str | None = None
    fractional: bool = False
    after_id: str | None = None
    filters: tuple[tuple[str, Any], ...] = ()


def stamp_of(moment: datetime) -> str:
    """REST timestamp form [assume, cosbe.md 2]: RFC 3339 UTC, second precision, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str) -> tuple[str, bool]:
    """``modifiedSince`` → (its whole-second stamp rounded up, whether it had a fraction); ValueError if bad."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    fractional = moment.microsecond != 0
    if fractional:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return stamp_of(moment), fractional


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CosbeStore:
    """In-memory COS BE environment behind the sandbox server.

    ``keys`` maps API keys to :class:`ApiKey` (default: :data:`DEFAULT_API_KEY` in
    :data:`DEFAULT_ENVIRONMENT`, with write rights). ``webhook_url``/``webhook_secret`` configure the
    :class:`~.cosbe_webhooks.Notifier` (``self.webhooks``). ``clock`` returns an aware "now"; ``seed`` makes ids
    repeatable; ``admin_base_url`` prefixes ``adminUrl``.
    """

    def __init__(
        self,
        *,
        keys: dict[str, ApiKey] | None = None,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        admin_base_url: str = "https://sandbox.example-be.net",
    ) -> None:
        self.keys = dict(keys) if keys is not None else {DEFAULT_API_KEY: ApiKey()}
        self.knobs = CosbeKnobs()
        self.webhooks = Notifier(webhook_url, webhook_secret)
        self.admin_base_url = admin_base_url.rstrip("/")
        self._clock = clock or _utcnow
        self._offset = timedelta()
        self._frozen: datetime | None = None
        self._rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        """Forget every object, group and definition (keys, knobs, clock and webhook settings stay)."""
        self.objects: dict[str, Obj] = {}
        self.groups: dict[str, Group] = {}
        self.definitions: dict[str, MetadataField] = {}
        self._next_number = 10_001
        self._order: list[tuple[str, str]] | None = None

    async def aclose(self) -> None:
        """Stop webhook deliveries and close their HTTP session."""
        await self.webhooks.close()

    # -- clock and ids ---------------------------------------------------------------------------------------

    def now(self) -> datetime:
        base = self._frozen if self._frozen is not None else self._clock()
        return base + self._offset

    def set_clock(
        self, *, advance_seconds: float = 0.0, now: str | None = None, frozen: bool | None = None
    ) -> str:
        """Advance, set (``now``, RFC 3339) or freeze/unfreeze the clock; returns the new time."""
        if frozen is True and self._frozen is None:
            self._frozen = self._clock()
        elif frozen is False and self._frozen is not None:
            self._offset += self._frozen - self._clock()
            self._frozen = None
        if now is not None:
            moment = datetime.fromisoformat(now)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            self._offset = moment - (self._frozen if self._frozen is not None else self._clock())
        self._offset += timedelta(seconds=advance_seconds)
        return stamp_of(self.now())

    def stamp(self) -> str:
        return stamp_of(self.now())

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- control: load / read ----------------------------------------------------------------------------------

    def load(self, kind: str, rows: Iterable[dict[str, Any]]) -> int:
        """Bulk-load objects, groups or metadata definitions as the API shows them (no rule, no event)."""
        count = 0
        for row in rows:
            if kind == "groups":
                group = msgspec.convert(row, Group)
                self.groups[group.id] = group
            elif kind == "metadata":
                definition = msgspec.convert(row, MetadataField)
                self.definitions[definition.id] = definition
            elif kind == "objects":
                obj = self._complete(row)
                self.objects[obj["id"]] = obj
            else:
                raise KeyError(kind)
            count += 1
        self._order = None
        return count

    def _complete(self, row: dict[str, Any]) -> Obj:
        unknown = set(row) - OBJECT_KEYS
        if unknown:
            raise ValueError(f"unknown object field(s): {', '.join(sorted(unknown))}")
        obj: Obj = {
            "id": row.get("id") or self.new_id(),
            "objectNumber": row.get("objectNumber") or self._number(),
            "objectType": "SingleFamilyHome",
            "status": "NotDeliverable",
            "reachable": False,
            "serviceStatus": "Inactive",
            "dropInstalled": False,
            "group": None,
            "address": None,
            "externalIdentification": None,
            "externalServiceLocationId": None,
            "vetroLink": None,
            "metadata": [],
            "version": 1,
        }
        obj.update({k: v for k, v in row.items() if k not in ("id", "objectNumber")})
        self._next_number = max(self._next_number, int(obj["objectNumber"]) + 1)
        obj["adminUrl"] = row.get("adminUrl") or f"{self.admin_base_url}/admin/objects/{obj['id']}"
        for name in ("createdAt", "updatedAt"):
            obj[name] = parse_since(row[name])[0] if row.get(name) else self.stamp()
        return obj

    def _number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    def all(self, kind: str) -> list[Any]:
        if kind == "objects":
            return [self.objects[oid] for _, oid in self._ordered()]
        if kind == "groups":
            return list(self.groups.values())
        if kind == "metadata":
            return list(self.definitions.values())
        raise KeyError(kind)

    def get(self, kind: str, key: str) -> Any:
        if kind == "objects":
            return self.objects.get(key)
        if kind == "groups":
            return self.groups.get(key)
        if kind == "metadata":
            return self.definitions.get(key)
        raise KeyError(kind)

    def group_by_name(self, name: str) -> Group | None:
        return next((g for g in self.groups.values() if g.name == name), None)

    def object_definitions(self) -> dict[str, MetadataField]:
        """Metadata definitions of the ``Object`` entity, by name."""
        return {d.name: d for d in self.definitions.values() if d.entity == "Object"}

    # -- listing ---------------------------------------------------------------------------------------------

    def _ordered(self) -> list[tuple[str, str]]:
        if self._order is None:
            self._order = sorted((obj["updatedAt"], oid) for oid, obj in self.objects.items())
        return self._order

    def list_objects(self, query: ListQuery) -> tuple[list[Obj], int]:
        """One page of ``Object/List`` and the total count of matching objects."""
        keys = self._ordered()
        start = 0
        if query.modified_since is not None:
            if query.after_id is not None and not query.fractional:
                start = bisect.bisect_right(keys, (query.modified_since, query.after_id))
            else:
                start = bisect.bisect_left(keys, (query.modified_since, ""))
        first = query.page_index * query.page_size
        if not query.filters:
            window = keys[start + first : start + first + query.page_size]
            return [self.objects[oid] for _, oid in window], len(keys) - start
        matched = [
            oid for _, oid in keys[start:] if all(_field(self.objects[oid], k) == v for k, v in query.filters)
        ]
        return [self.objects[oid] for oid in matched[first : first + query.page_size]], len(matched)

    def drift(self, page: list[Obj]) -> None:
        """The ``drift_touch`` knob: objects of the served page change before the next request."""
        for obj in page[: self.knobs.drift_touch]:
            obj["version"] += 1
            obj["updatedAt"] = self.stamp()
        if page and self.knobs.drift_touch:
            self._order = None

    # -- faithful writes -------------------------------------------------------------------------------------

    def create(self, body: Any) -> Obj:
        """``Object/Create``: validate, assign server fields, store, emit ``ObjectCreated``."""
        if not isinstance(body, dict):
            raise Problem(400, errors={"$": ["The request body must be a JSON object."]})
        changes = co.checked_changes(
            body, creating=True, groups=self.groups, definitions=self.object_definitions()
        )
        stamp = self.stamp()
        oid = self.new_id()
        obj: Obj = {
            "id": oid,
            "objectNumber": self._number(),
            "serviceStatus": "Inactive",
            "adminUrl": f"{self.admin_base_url}/admin/objects/{oid}",
            "metadata": [],
            "createdAt": stamp,
            "updatedAt": stamp,
            "version": 1,
        }
        changed = co.apply(obj, changes)
        self.objects[oid] = obj
        self._order = None
        self._event("ObjectCreated", obj, changed)
        return obj

    def update(self, body: Any) -> Obj:
        """``Object/Update``: partial update by ``id``, optional ``version`` condition, emits ``ObjectUpdated``."""
        if not isinstance(body, dict):
            raise Problem(400, errors={"$": ["The request body must be a JSON object."]})
        oid = body.get("id")
        if not isinstance(oid, str):
            raise Problem(400, errors={"id": ["The id field is required."]})
        obj = self.objects.get(oid)
        if obj is None:
            raise Problem(404, f"Object {oid} was not found.")
        version = body.get("version")
        if version is not None and version != obj["version"]:
            raise Problem(409, f"Object {oid} is at version {obj['version']}, not {version}.")
        changes = co.checked_changes(
            body, creating=False, groups=self.groups, definitions=self.object_definitions()
        )
        changed = co.apply(obj, changes)
        return self._touched(obj, changed)

    def _touched(self, obj: Obj, changed: list[str]) -> Obj:
        obj["version"] += 1
        obj["updatedAt"] = self.stamp()
        self._order = None
        self._event("ObjectUpdated", obj, changed)
        return obj

    # -- a user in COS BE (control API) ----------------------------------------------------------------------

    def user_create(self, row: dict[str, Any]) -> Obj:
        """Insert an object as given (no validation; server fields filled in) and emit ``ObjectCreated``."""
        obj = self._complete({k: v for k, v in row.items() if k not in ("createdAt", "updatedAt", "version")})
        self.objects[obj["id"]] = obj
        self._order = None
        self._event("ObjectCreated", obj, sorted(k for k in row if k in OBJECT_KEYS))
        return obj

    def user_edit(self, oid: str, changes: dict[str, Any]) -> Obj | None:
        """Change fields as a user would (``metadata`` merged by name, null clears); emits ``ObjectUpdated``."""
        obj = self.objects.get(oid)
        if obj is None:
            return None
        unknown = set(changes) - (OBJECT_KEYS - {"id", "objectNumber", "adminUrl", "createdAt", "version"})
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        edits = dict(changes)
        if "metadata" in edits:
            edits["metadata"] = [(m["name"], m.get("value")) for m in edits["metadata"]]
        return self._touched(obj, co.apply(obj, {k: v for k, v in edits.items() if k != "updatedAt"}))

    def user_delete(self, oid: str) -> bool:
        """Delete an object from the UI; emits ``ObjectDeleted`` (fake-side extension)."""
        obj = self.objects.pop(oid, None)
        if obj is None:
            return False
        self._order = None
        self._event("ObjectDeleted", obj, [])
        return True

    def order(self, oid: str, operation: str) -> Obj | None:
        """An order operation (Created/Activated/Paused/Terminated) moving ``serviceStatus`` (cosbe.md 3)."""
        obj = self.objects.get(oid)
        if obj is None:
            return None
        target = co.ORDER_OPERATIONS.get(operation)
        if target is None:
            raise ValueError(f"operation must be one of {', '.join(co.ORDER_OPERATIONS)}")
        if self.knobs.order_noise:
            self._order_event(operation)
        changed = co.apply(obj, {"serviceStatus": target})
        return self._touched(obj, changed)

    def work_order_completed(self, oid: str) -> Obj | None:
        """The deployment work order is done: drop installed, object Deliverable (cosbe.md 1)."""
        obj = self.objects.get(oid)
        if obj is None:
            return None
        return self._touched(obj, co.apply(obj, {"dropInstalled": True, "status": "Deliverable"}))

    # -- events ----------------------------------------------------------------------------------------------

    def _event(self, kind: str, obj: Obj, changed: list[str]) -> None:
        self.webhooks.emit(
            {
                "id": self.new_id(),
                "type": kind,
                "created": math.floor(self.now().timestamp()),
                "entity": "Object",
                "data": {
                    "id": obj["id"],
                    "objectNumber": obj["objectNumber"],
                    "version": obj["version"],
                    "changed": changed,
                },
            }
        )

    def _order_event(self, operation: str) -> None:
        """An order event in the published shape (cosbe.md 4.5): it names no object."""
        order_id = self.new_id()
        data: dict[str, Any] = {
            "id": order_id,
            "serviceProviderId": self.new_id(),
            "externalOrderNumber": f"SP-{self._rng.randrange(10**6):06d}",
        }
        if operation == "Created":
            kind = "OrderCreated"
            data.update(customerId=self.new_id(), previousCustomerId=None, previousOrderId=None)
        else:
            kind = "OrderOperation"
            data.update(operation=operation, terminationCode=None)
        created = math.floor(self.now().timestamp())
        self.webhooks.emit(
            {"id": self.new_id(), "type": kind, "created": created, "entity": None, "data": data}
        )


def _field(obj: Obj, key: str) -> Any:
    if key == "groupId":
        group = obj.get("group")
        return group.get("id") if isinstance(group, dict) else None
    return obj.get(key)
