"""The Vetro sandbox's data: plans, layers with their attribute schema, GeoJSON features, tokens, clock, knobs.

Features are kept in their wire shape (``{"type", "geometry", "x-vetro", "properties"}``), iterated in
``feature_id`` order (vetro.md 2.5: the default order [assume, V4]). Faithful writes (:meth:`VetroStore.create`,
:meth:`VetroStore.patch`, :meth:`VetroStore.delete`) follow vetro.md 2.7/2.9: every item is validated first and a
batch is all-or-nothing [assume, V6]; they raise :class:`VetroError`. Server-owned fields (``vetro_id``,
``feature_id``, ``created_time``, ``last_edited_time``) are assigned here, ``last_edited_time`` strictly increasing
even within one millisecond (vetro.md 6.5). The ``raw_*``/:meth:`VetroStore.user_edit` methods back the control
API and skip the rules, like a person editing the map in Vetro's UI.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from reconciler.sandbox import vetro_filter as vf
from reconciler.sandbox.vetro_schema import (
    Layer,
    Plan,
    TokenScope,
    geometry_problem,
    properties_problem,
)

DEFAULT_TOKEN = "vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"
"""The token accepted (all plans, editing rights) when the store is built without ``tokens``."""
MAX_LIMIT = 50_000
DEFAULT_LIMIT = 100
KINDS = ("plans", "layers", "features")
SERVER_OWNED = ("vetro_id", "feature_id", "created_time", "last_edited_time")

Feature = dict[str, Any]


class VetroKnobs(msgspec.Struct, forbid_unknown_fields=True):
    """Behaviour switches, set via ``POST /_sandbox/knobs`` (vetro.md 2.1, 2.8, 6.4)."""

    v3_bare: bool = False
    """``/v3/`` answers bare bodies (``{"features": [...]}`` …) instead of the envelope [assume, V1]."""
    rate_limit: float = 10.0
    """Requests per second per token (token bucket) [assume, V8]; 0 = unlimited."""
    rate_burst: float = 20.0
    """Bucket size [assume, V8]."""
    plans_daily_cap: int | None = None
    """``GET plans`` calls per token per (fake-clock) UTC day; None = no cap (vetro.md 2.8)."""
    drift_insert: int = 0
    """After each ``features/query`` page: create this many features like the page's first one."""
    drift_delete: int = 0
    """After each ``features/query`` page: delete the first features of the query's result."""
    drift_touch: int = 0
    """After each ``features/query`` page: bump ``last_edited_time`` of the first features of the result."""
    strict_attributes: bool = True
    """Writes naming an attribute the layer does not define are item errors (fake choice)."""


class VetroError(Exception):
    """An API refusal: HTTP ``status``, ``message`` and, for batch validation, per-index ``errors``."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.errors = errors


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VetroStore:
    """In-memory Vetro tenant behind the sandbox server.

    ``tokens`` maps tokens to their :class:`TokenScope` (default: :data:`DEFAULT_TOKEN` with full rights).
    ``clock`` returns an aware "now" (None: the real clock); ``seed`` makes new ``vetro_id`` values repeatable.
    """

    def __init__(
        self,
        *,
        tokens: dict[str, TokenScope] | None = None,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
    ) -> None:
        self.tokens = dict(tokens) if tokens is not None else {DEFAULT_TOKEN: TokenScope()}
        self.knobs = VetroKnobs()
        self._clock = clock or _utcnow
        self._offset = timedelta()
        self._frozen: datetime | None = None
        self._rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        """Forget every plan, layer and feature (tokens, knobs and clock stay)."""
        self.plans: dict[int, Plan] = {}
        self.layers: dict[int, Layer] = {}
        self.features: dict[str, Feature] = {}
        self.version = 0
        self.last_loaded: Any = None
        """The last plan, layer or feature :meth:`load` stored (the control API answers it)."""
        self._last_ms = 0
        self._max_feature_id = 0
        self._cache: dict[tuple[Any, ...], tuple[int, list[Feature]]] = {}

    # -- clock -----------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The fake's current time (frozen or real, plus any advance)."""
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
            base = self._frozen if self._frozen is not None else self._clock()
            self._offset = vf.parse_instant(now) - base
        self._offset += timedelta(seconds=advance_seconds)
        return vf.format_instant(self.now())

    def stamp(self) -> str:
        """A write timestamp, strictly greater than every earlier one (vetro.md 6.5)."""
        ms = int(self.now().timestamp() * 1000)
        self._last_ms = max(ms, self._last_ms + 1)
        return vf.format_instant(datetime.fromtimestamp(self._last_ms / 1000, UTC))

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- control: load / read / raw writes -------------------------------------------------------------------

    def load(self, kind: str, rows: Iterable[dict[str, Any]]) -> int:
        """Bulk-load plans, layers or features as the API returns them (no rule is checked); returns a count.

        Features missing ``vetro_id``/``feature_id``/timestamps get them; timestamps are rewritten in the fake's
        canonical form; ``properties`` defaults to ``{}``.
        """
        count = 0
        if kind == "plans":
            for row in rows:
                plan = msgspec.convert(row, Plan)
                self.plans[plan.id] = self.last_loaded = plan
                count += 1
        elif kind == "layers":
            for row in rows:
                layer = msgspec.convert(row, Layer)
                self.layers[layer.id] = self.last_loaded = layer
                count += 1
        elif kind == "features":
            in_order = True
            for row in rows:
                feature = self._complete(row)
                fid = feature["x-vetro"]["feature_id"]
                in_order = in_order and fid > self._max_feature_id
                self._max_feature_id = max(self._max_feature_id, fid)
                self.features[feature["x-vetro"]["vetro_id"]] = self.last_loaded = feature
                count += 1
            if not in_order:
                self._resort()
        else:
            raise KeyError(kind)
        self._changed()
        return count

    def _complete(self, row: dict[str, Any]) -> Feature:
        meta = dict(row.get("x-vetro") or {})
        meta.setdefault("vetro_id", self.new_id())
        if not isinstance(meta.get("feature_id"), int):
            meta["feature_id"] = self._max_feature_id + 1
        for name in ("created_time", "last_edited_time"):
            meta[name] = vf.canonical(meta[name]) if meta.get(name) else self.stamp()
        plan = self.plans.get(meta.get("plan_id", -1))
        if plan is not None:
            meta.setdefault("project_id", plan.project_id)
        return {
            "type": "Feature",
            "geometry": row.get("geometry"),
            "x-vetro": meta,
            "properties": dict(row.get("properties") or {}),
        }

    def _resort(self) -> None:
        items = sorted(self.features.items(), key=lambda item: item[1]["x-vetro"]["feature_id"])
        self.features = dict(items)

    def _changed(self) -> None:
        self.version += 1

    def all(self, kind: str) -> list[Any]:
        """Every plan, layer or feature (features in ``feature_id`` order)."""
        if kind == "plans":
            return list(self.plans.values())
        if kind == "layers":
            return list(self.layers.values())
        if kind == "features":
            return list(self.features.values())
        raise KeyError(kind)

    def get(self, kind: str, key: str) -> Any:
        """One plan/layer (by integer id) or feature (by ``vetro_id``), or None."""
        if kind == "features":
            return self.features.get(key)
        try:
            number = int(key)
        except ValueError:
            return None
        if kind == "plans":
            return self.plans.get(number)
        if kind == "layers":
            return self.layers.get(number)
        raise KeyError(kind)

    def raw_delete(self, kind: str, key: str) -> bool:
        """Remove one plan, layer or feature without any check; False when absent."""
        found = self.get(kind, key)
        if found is None:
            return False
        if kind == "features":
            del self.features[key]
        elif kind == "plans":
            del self.plans[int(key)]
        else:
            del self.layers[int(key)]
        self._changed()
        return True

    def user_edit(self, vetro_id: str, changes: dict[str, Any]) -> Feature | None:
        """A person editing a feature in Vetro: merge ``properties`` (null clears), replace ``geometry``."""
        feature = self.features.get(vetro_id)
        if feature is None:
            return None
        unknown = set(changes) - {"properties", "geometry"}
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        feature["properties"].update(changes.get("properties") or {})
        if "geometry" in changes:
            feature["geometry"] = changes["geometry"]
        feature["x-vetro"]["last_edited_time"] = self.stamp()
        self._changed()
        return feature

    # -- faithful reads --------------------------------------------------------------------------------------

    def scope(self, token: str) -> TokenScope | None:
        return self.tokens.get(token)

    def visible_plans(self, scope: TokenScope) -> list[Plan]:
        return [p for p in sorted(self.plans.values(), key=lambda p: p.id) if scope.allows(p.id)]

    def query(
        self,
        scope: TokenScope,
        *,
        plan_ids: list[int],
        layer_ids: list[int],
        clauses: list[vf.Clause],
        order: tuple[str, bool] | None,
        filter_text: str = "",
    ) -> list[Feature]:
        """Every matching feature in the answer's order (cached until the next write)."""
        denied = [p for p in plan_ids if not scope.allows(p)]
        if denied:
            raise VetroError(403, f"plan {denied[0]} is not accessible with this token")
        key = (tuple(plan_ids), tuple(layer_ids), filter_text, order, tuple(scope.plans or ()))
        cached = self._cache.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        plans, layers = set(plan_ids), set(layer_ids)
        found: list[Feature] = []
        for feature in self.features.values():
            meta = feature["x-vetro"]
            if plans and meta.get("plan_id") not in plans:
                continue
            if not scope.allows(meta.get("plan_id")):
                continue
            if layers and meta.get("layer_id") not in layers:
                continue
            if clauses and not vf.matches(feature, clauses):
                continue
            found.append(feature)
        result = vf.ordered(found, order)
        self._cache = {key: (self.version, result)}
        return result

    def by_ids(self, scope: TokenScope, ids: list[str]) -> list[Feature]:
        """``GET features/{ids}``: 404 when any id is unknown, 403 when one lies outside the token's plans."""
        out: list[Feature] = []
        for vetro_id in ids:
            feature = self.features.get(vetro_id)
            if feature is None:
                raise VetroError(404, f"feature {vetro_id} not found")
            if not scope.allows(feature["x-vetro"].get("plan_id")):
                raise VetroError(403, f"feature {vetro_id} is not accessible with this token")
            out.append(feature)
        return out

    # -- faithful writes -------------------------------------------------------------------------------------

    def create(self, scope: TokenScope, items: Any) -> list[Feature]:
        """``POST features``: validate every item, then create all (new ids and times) or nothing."""
        features = self._batch(scope, items)
        problems: list[dict[str, Any]] = []
        for index, item in enumerate(features):
            meta = _meta(item)
            plan_id, layer_id = meta.get("plan_id"), meta.get("layer_id")
            if not isinstance(plan_id, int) or plan_id not in self.plans:
                problems.append({"index": index, "message": f"unknown plan_id {plan_id!r}"})
                continue
            if not scope.allows(plan_id):
                raise VetroError(403, f"plan {plan_id} is not accessible with this token")
            layer = self.layers.get(layer_id) if isinstance(layer_id, int) else None
            if layer is None:
                problems.append({"index": index, "message": f"unknown layer_id {layer_id!r}"})
                continue
            message = geometry_problem(layer, item.get("geometry"), required=True)
            message = message or properties_problem(
                layer, item.get("properties"), strict=self.knobs.strict_attributes
            )
            if message:
                problems.append({"index": index, "message": message})
        _raise_if(problems)
        out: list[Feature] = []
        for item in features:
            meta = item["x-vetro"]
            stamp = self.stamp()
            self._max_feature_id += 1
            feature: Feature = {
                "type": "Feature",
                "geometry": item["geometry"],
                "x-vetro": {
                    "vetro_id": self.new_id(),
                    "feature_id": self._max_feature_id,
                    "layer_id": meta["layer_id"],
                    "plan_id": meta["plan_id"],
                    "project_id": self.plans[meta["plan_id"]].project_id,
                    "created_time": stamp,
                    "last_edited_time": stamp,
                },
                "properties": dict(item.get("properties") or {}),
            }
            self.features[feature["x-vetro"]["vetro_id"]] = feature
            out.append(feature)
        self._changed()
        return out

    def patch(self, scope: TokenScope, items: Any) -> list[Feature]:
        """``PATCH features``: merge properties (null clears), optional geometry; all items or none."""
        features = self._batch(scope, items)
        problems: list[dict[str, Any]] = []
        targets: list[Feature] = []
        for index, item in enumerate(features):
            meta = _meta(item)
            current = self.features.get(str(meta.get("vetro_id")))
            if current is None:
                problems.append({"index": index, "message": f"feature {meta.get('vetro_id')!r} not found"})
                continue
            if not scope.allows(current["x-vetro"].get("plan_id")):
                raise VetroError(403, f"feature {meta['vetro_id']} is not accessible with this token")
            layer = self.layers.get(current["x-vetro"].get("layer_id"))
            message = None
            if layer is not None:
                message = geometry_problem(layer, item.get("geometry"), required=False)
                message = message or properties_problem(
                    layer, item.get("properties"), strict=self.knobs.strict_attributes
                )
            if message:
                problems.append({"index": index, "message": message})
            targets.append(current)
        _raise_if(problems)
        for item, current in zip(features, targets, strict=True):
            current["properties"].update(item.get("properties") or {})
            if item.get("geometry") is not None:
                current["geometry"] = item["geometry"]
            current["x-vetro"]["last_edited_time"] = self.stamp()
        self._changed()
        return targets

    def delete(self, scope: TokenScope, ids: Any) -> int:
        """``POST features/delete`` with an array of vetro_ids [weak evidence, V7]; 404 when one is unknown."""
        if scope.read_only:
            raise VetroError(403, "this token has no editing privileges")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise VetroError(400, "expected a JSON array of vetro_id strings")
        self.by_ids(scope, ids)
        for vetro_id in ids:
            self.features.pop(vetro_id, None)
        self._changed()
        return len(ids)

    def _batch(self, scope: TokenScope, body: Any) -> list[dict[str, Any]]:
        if scope.read_only:
            raise VetroError(403, "this token has no editing privileges")
        features = body.get("features") if isinstance(body, dict) else None
        if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
            raise VetroError(400, 'expected {"features": [<Feature>, ...]}')
        return features

    # -- paging drift (vetro.md 6.4) -------------------------------------------------------------------------

    def drift(self, result: list[Feature]) -> None:
        """Apply the drift knobs after a page of ``result`` was served."""
        knobs = self.knobs
        if not result or not (knobs.drift_insert or knobs.drift_delete or knobs.drift_touch):
            return
        first = result[0]
        for feature in list(result[: knobs.drift_touch]):
            feature["x-vetro"]["last_edited_time"] = self.stamp()
        for feature in list(result[: knobs.drift_delete]):
            self.features.pop(feature["x-vetro"]["vetro_id"], None)
        for n in range(knobs.drift_insert):
            self._max_feature_id += 1
            meta = first["x-vetro"]
            stamp = self.stamp()
            clone: Feature = {
                "type": "Feature",
                "geometry": first["geometry"],
                "x-vetro": {
                    **meta,
                    "vetro_id": self.new_id(),
                    "feature_id": self._max_feature_id,
                    "created_time": stamp,
                    "last_edited_time": stamp,
                },
                "properties": {**first["properties"], "ID": f"DRIFT-{self._max_feature_id}-{n}"},
            }
            self.features[clone["x-vetro"]["vetro_id"]] = clone
        self._changed()


def _meta(item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("x-vetro")
    return meta if isinstance(meta, dict) else {}


def _raise_if(problems: list[dict[str, Any]]) -> None:
    if problems:
        raise VetroError(400, "validation failed", problems)
