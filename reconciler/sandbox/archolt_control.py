"""The ArchOLT sandbox's control API under ``/_sandbox/``: the test's hands inside "ArchOLT".

Routes (listed with the faithful ones in :mod:`reconciler.sandbox.archolt`): knobs, raw store access, operator
actions (provision, edit, link a CTO, deprovision), the monitoring poll, reset/seed (archolt.md 6.11), the clock and
``PUT /_sandbox/faults``. Control routes need no auth, are not logged and are never faulted (``/_sandbox/`` prefix,
see :mod:`reconciler.sandbox.faults`). Operator actions apply the same rules and write the same events as the API;
refusals answer the contract's error body. Raw inserts and removals skip every rule and write no event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from reconciler.sandbox import archolt_domain as domain
from reconciler.sandbox.archolt_store import COLLECTIONS, ArcholtStore, UnknownCollection
from reconciler.sandbox.archolt_values import ApiError, ArcholtKnobs, parse_time
from reconciler.sandbox.archolt_world import archolt_rows
from reconciler.sandbox.faults import FaultRule, Faults, json_response

__all__ = ["Control", "error_response", "read_json"]


async def read_json(request: web.Request) -> Any:
    """The JSON body; 400 ``invalid_json`` when absent or unreadable."""
    raw = await request.read()
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError("invalid_json") from None


def error_response(exc: ApiError) -> web.Response:
    """The contract's error body with the code's status."""
    return json_response(exc.body(), status=exc.status)


def _message(status: int, text: str) -> web.Response:
    return json_response({"message": text}, status=status)


def _record_id(request: web.Request) -> int | None:
    try:
        return int(request.match_info["id"])
    except ValueError:
        return None


class Control:
    """Handlers of the ``/_sandbox/`` routes of one ArchOLT sandbox."""

    def __init__(self, store: ArcholtStore, faults: Faults) -> None:
        self.store = store
        self.faults = faults

    def install(self, app: web.Application) -> None:
        """Register the control routes on ``app`` (the fault/log routes come from ``faults.install``)."""
        r = app.router
        r.add_get("/_sandbox/knobs", self.get_knobs)
        r.add_post("/_sandbox/knobs", self.post_knobs)
        r.add_get("/_sandbox/store/{collection}", self.list_all)
        r.add_post("/_sandbox/store/{collection}", self.insert)
        r.add_get("/_sandbox/store/{collection}/{id}", self.get_one)
        r.add_patch("/_sandbox/store/{collection}/{id}", self.edit)
        r.add_delete("/_sandbox/store/{collection}/{id}", self.delete)
        r.add_post("/_sandbox/provision", self.provision)
        r.add_post("/_sandbox/poll", self.poll)
        r.add_post("/_sandbox/reset", self.reset)
        r.add_post("/_sandbox/seed", self.seed)
        r.add_get("/_sandbox/clock", self.clock)
        r.add_put("/_sandbox/clock", self.set_clock)
        r.add_post("/_sandbox/clock", self.set_clock)
        r.add_put("/_sandbox/faults", self.replace_faults)

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ApiError("invalid_json", {"reason": str(exc)}) from None

    # -- knobs ------------------------------------------------------------------------------------------------

    async def get_knobs(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.store.knobs)

    async def post_knobs(self, request: web.Request) -> web.StreamResponse:
        store = self.store
        try:
            changes = msgspec.json.decode(await request.read() or b"{}", type=dict[str, Any])
            store.knobs = msgspec.convert({**msgspec.to_builtins(store.knobs), **changes}, ArcholtKnobs)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _message(400, f"bad knobs: {exc}")
        return json_response(store.knobs)

    # -- store ------------------------------------------------------------------------------------------------

    async def list_all(self, request: web.Request) -> web.StreamResponse:
        try:
            return json_response(self.store.all(request.match_info["collection"]))
        except UnknownCollection as exc:
            return _message(404, f"unknown collection {exc}")

    async def get_one(self, request: web.Request) -> web.StreamResponse:
        try:
            row = self.store.get(request.match_info["collection"], request.match_info["id"])
        except UnknownCollection as exc:
            return _message(404, f"unknown collection {exc}")
        return _message(404, "no such record") if row is None else json_response(row)

    async def insert(self, request: web.Request) -> web.StreamResponse:
        collection = request.match_info["collection"]
        if collection not in COLLECTIONS:
            return _message(404, f"unknown collection {collection!r}")
        try:
            body = await self._body(request)
            if isinstance(body, dict):
                return json_response(self.store.load_one(collection, body), status=201)
            if isinstance(body, list) and all(isinstance(row, dict) for row in body):
                return json_response({"loaded": self.store.load(collection, body)}, status=201)
        except ApiError as exc:
            return _message(400, exc.message)
        except (ValueError, TypeError, KeyError) as exc:
            return _message(400, f"bad record: {exc!r}")
        return _message(400, "expected a record object or an array of records")

    async def edit(self, request: web.Request) -> web.StreamResponse:
        store, collection = self.store, request.match_info["collection"]
        record_id = _record_id(request)
        if collection not in COLLECTIONS or collection == "events":
            return _message(404 if collection not in COLLECTIONS else 400, f"cannot edit {collection!r}")
        if record_id is None:
            return _message(404, "no such record")
        try:
            body = await self._body(request)
            if collection == "onus":
                row = domain.edit_onu(store, record_id, body)
            elif collection == "olts":
                row = domain.patch_olt(store, record_id, body, operator=True)
            else:
                row = domain.edit_cto(store, record_id, body)
        except ApiError as exc:
            return error_response(exc)
        return json_response(store.render(collection, row))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        store, collection = self.store, request.match_info["collection"]
        if collection not in COLLECTIONS:
            return _message(404, f"unknown collection {collection!r}")
        record_id = _record_id(request)
        if record_id is None:
            return web.Response(status=404)
        purge = request.query.get("purge", "").lower() in ("1", "true", "yes")
        if collection == "onus" and not purge:
            try:
                row = domain.deprovision(store, record_id)
            except ApiError as exc:
                return error_response(exc)
            return json_response(store.render("onus", row))
        return web.Response(status=204 if store.remove(collection, record_id) is not None else 404)

    # -- operator actions --------------------------------------------------------------------------------------

    async def provision(self, request: web.Request) -> web.StreamResponse:
        try:
            row = domain.provision(self.store, await self._body(request))
        except ApiError as exc:
            return error_response(exc)
        return json_response(self.store.render("onus", row), status=201)

    async def poll(self, request: web.Request) -> web.StreamResponse:
        return json_response({"polled": domain.poll(self.store)})

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.store.reset()
        self.faults.clear()
        self.faults.log.clear()
        return web.Response(status=204)

    async def seed(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._body(request) or {}
        except ApiError as exc:
            return _message(400, exc.message)
        if not isinstance(body, dict):
            return _message(400, "expected an object")
        seed, scale = body.get("seed", 0), body.get("scale", 12)
        olts, boxes = body.get("ozmap_olts") or [], body.get("ozmap_boxes")
        if not isinstance(seed, int) or not isinstance(scale, int) or scale < 1 or not isinstance(olts, list):
            return _message(400, "seed and scale (>= 1) are integers, ozmap_olts a list")
        try:
            now = datetime.fromtimestamp(self.store.now(), UTC)  # the world's stamps end at the server's now
            rows = archolt_rows(seed, scale, olts, ozmap_boxes=boxes, now=now)
        except (ValueError, TypeError, KeyError) as exc:
            return _message(400, f"cannot build the world: {exc!r}")
        self.store.reset()
        loaded = {name: self.store.load(name, items) for name, items in rows.items()}
        return json_response({"loaded": loaded}, status=201)

    # -- clock and faults ----------------------------------------------------------------------------------------

    def _clock_body(self) -> dict[str, Any]:
        now = self.store.now()
        return {"now": self.store.fmt(now), "epoch": now}

    async def clock(self, request: web.Request) -> web.StreamResponse:
        return json_response(self._clock_body())

    async def set_clock(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._body(request)
        except ApiError as exc:
            return _message(400, exc.message)
        if not isinstance(body, dict):
            return _message(400, 'expected {"now": <ISO 8601>} or {"advance_seconds": n}')
        seconds = body.get("advance_seconds")
        if "now" in body:
            try:
                self.store.set_clock(datetime.fromtimestamp(parse_time(str(body["now"])), UTC))
            except ValueError as exc:
                return _message(400, f"bad now: {exc}")
        elif isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            self.store.advance_clock(seconds)
        else:
            return _message(400, "advance_seconds must be a non-negative number")
        return json_response(self._clock_body())

    async def replace_faults(self, request: web.Request) -> web.StreamResponse:
        faults, previous = self.faults, list(self.faults.rules)
        try:
            rules = msgspec.json.decode(await request.read() or b"[]", type=list[FaultRule])
            faults.clear()
            for rule in rules:
                faults.add(rule)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, re.error) as exc:
            faults.rules = previous
            return _message(400, f"bad fault rules: {exc}")
        return json_response(faults.rules)
