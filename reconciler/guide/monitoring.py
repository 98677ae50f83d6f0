"""Monitoring operations of the Integrator's Guide (seed 001 "Monitoring/Provisioning"; ozmap.md F8–F10).

===========================  ==================================================================================
operation                    OZmap calls
===========================  ==================================================================================
client status OK/ERROR       ``PATCH /ftth-clients/{id} {"status": 0|1}``; several codes at once:
                             ``POST /ftth-clients/batch-update {"filter": [id in …], "update": {"status"}}``
optical power (read)         ``PATCH /properties/{id} {"potencyRead": dBm}``
ONU data                     ``PATCH /ftth-clients/{id} {"onu": {serial_number, mac_address, user_PPPoE}}`` —
                             OZmap wants all three, so the parts not given keep their current value
PON port power               OLT (id, name or IP) → ``connectables`` slots → PONs; ``PATCH /pons/{id}
                             {"potency": dBm}``; slot/PON numbering of :mod:`reconciler.connectors.ozmap.field_sync`
read vs calculated power     read = the property's ``potencyRead``; calculated = :class:`~.power.PowerModel`
                             [assume: OZmap's own endpoint path is not public]; ``worse_by`` = calculated − read,
                             "worse" above the threshold (seed 001's example: 2 dB, "preventing provisioning")
===========================  ==================================================================================

The same operations run unattended as rules (``rules/archolt-monitoring``); these are the on-demand forms.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.connectors.ozmap.client import batches, cond
from reconciler.connectors.ozmap.field_sync import PonIndex
from reconciler.connectors.ozmap.guide_calls import Olt, Pon, Property, Splitter
from reconciler.guide import models
from reconciler.guide.operations import Guide
from reconciler.guide.power import MAX_DEPTH, PowerModel
from reconciler.guide.validation import Conflict, Missing, mac_address

__all__ = ["Monitoring"]


class Monitoring:
    """Status, power and ONU writes, PON power, and the read-vs-calculated power check."""

    def __init__(self, guide: Guide) -> None:
        self.guide = guide
        self.calls = guide.calls

    # -- client status, power, ONU (F8–F10) -----------------------------------------------------------------

    async def set_status(self, code: str, request: models.StatusRequest) -> models.ClientState:
        client = await self.guide.client(code)
        await self.calls.patch("ftth-clients", client.key, {"status": 1 if request.status == "ERROR" else 0})
        return await self.guide.state(code)

    async def bulk_status(self, request: models.BulkStatusRequest) -> models.BulkStatus:
        """One ``batch-update`` per 200 known codes; unknown codes are listed, not errors."""
        codes = list(dict.fromkeys(request.codes))
        found: dict[str, str] = {}
        for batch in batches(codes):
            for client in await self.calls.clients_where([cond("code", "in", list(batch))]):
                if client.code is not None:
                    found[client.code] = client.key
        ids = list(found.values())
        status = 1 if request.status == "ERROR" else 0
        for batch in batches(ids):
            await self.calls.batch_update("ftth-clients", [cond("id", "in", list(batch))], {"status": status})
        return models.BulkStatus(
            request.status, [c for c in codes if c in found], [c for c in codes if c not in found]
        )

    async def set_power(self, code: str, request: models.PowerRequest) -> models.ClientConnection:
        client = await self.guide.client(code)
        prop = await self._connected(client.key, code)
        await self.calls.patch("properties", prop.id, {"potencyRead": request.dbm})
        return await self.guide.connection(code)

    async def set_onu(self, code: str, request: models.OnuRequest) -> models.ClientState:
        given = {
            "serial_number": request.serial_number,
            "mac_address": mac_address(request.mac_address) if request.mac_address else request.mac_address,
            "user_PPPoE": request.pppoe_user,
        }
        if all(v is None for v in given.values()):
            raise Conflict("nothing to update: give serial_number, mac_address or pppoe_user")
        client = await self.guide.client(code)
        current = client.onu
        merged = {
            "serial_number": current.serial_number if current else "",
            "mac_address": current.mac_address if current else "",
            "user_PPPoE": current.user_pppoe if current else "",
        }
        merged.update({k: v for k, v in given.items() if v is not None})
        await self.calls.patch("ftth-clients", client.key, {"onu": merged})
        return await self.guide.state(code)

    # -- PON power (F9) ---------------------------------------------------------------------------------------

    async def pons(self, olt_ref: str) -> list[models.PonInfo]:
        """The PONs of an OLT (by id, name or IP) with their slot/PON numbers and launch power."""
        olt = await self._olt(olt_ref)
        slots = await self.calls.slots([s for s in olt.connectables if s])
        index = PonIndex([olt], slots)
        pon_ids = [p for slot in slots for p in slot.connectables if p]
        out: list[models.PonInfo] = []
        for pon in await self.calls.pons(pon_ids):
            owner, _, slot_n, pon_n = index.place(pon.id)
            if owner is not None and slot_n is not None and pon_n is not None:
                out.append(models.PonInfo(pon.id, pon.name, olt.id, olt.name, slot_n, pon_n, pon.potency))
        return sorted(out, key=lambda p: (p.slot, p.pon))

    async def set_pon_power(
        self, olt_ref: str, slot: int, pon: int, request: models.PowerRequest
    ) -> models.PonInfo:
        found = next((p for p in await self.pons(olt_ref) if (p.slot, p.pon) == (slot, pon)), None)
        if found is None:
            raise Missing(f"OLT {olt_ref} has no PON {slot}/{pon} in OZmap")
        await self.calls.patch("pons", found.id, {"potency": request.dbm})
        return models.PonInfo(found.id, found.name, found.olt_id, found.olt_name, slot, pon, request.dbm)

    async def _olt(self, ref: str) -> Olt:
        olts = await self.calls.olts()
        for attribute in ("id", "name", "ip"):
            match = [o for o in olts if getattr(o, attribute) == ref]
            if len(match) == 1:
                return match[0]
        raise Missing(f"no OLT with id, name or IP {ref!r} in OZmap (or several with that name)")

    # -- read vs calculated power (F9) ------------------------------------------------------------------------

    async def power_check(
        self, code: str, threshold: float = models.DEFAULT_THRESHOLD_DB
    ) -> models.PowerCheck:
        """One client: walks up its fibre path with targeted queries (no full topology load)."""
        client = await self.guide.client(code)
        prop = await self._connected(client.key, code)
        if not prop.connections:
            return _check(
                code, prop, None, prop.potency_read, [], threshold, "the client is not connected to a port"
            )
        connection = prop.connections[0]
        splitters = await self.calls.splitters_by_id([connection.id or ""])
        if not splitters:
            return _check(
                code, prop, None, None, [], threshold, f"splitter {connection.id} not found in OZmap"
            )
        pons: list[Pon] = []
        upstream: list[Splitter] = []
        current = splitters[0]
        for _ in range(MAX_DEPTH):
            inputs = current.connectables.input if current.connectables is not None else []
            fibre = inputs[0] if inputs else None
            if not fibre:
                break
            found = await self.calls.pons_where([cond("connectables", "=", fibre)])
            if found:
                pons.extend(found)
                break
            above = await self.calls.splitters_where([cond("connectables.output", "=", fibre)])
            if not above:
                break
            upstream.append(above[0])
            current = above[0]
        model = PowerModel(pons=pons, splitters=upstream, types=await self.calls.splitter_types())
        value, path, reason = model.calculate(splitters[0], connection.port or 1)
        return _check(code, prop, value, prop.potency_read, path, threshold, reason)

    async def power_report(self, threshold: float = models.DEFAULT_THRESHOLD_DB) -> models.PowerReport:
        """Every client with a read power, checked against the calculated one; the worse ones, worst first."""
        model = PowerModel(
            pons=await self.calls.pons(),
            splitters=await self.calls.network_splitters(),
            types=await self.calls.splitter_types(),
        )
        checked = unknown = 0
        worse: list[models.PowerCheck] = []
        async for page in self.calls.powered_properties():
            wanted = [p.connections[0].id or "" for p in page if p.connections]
            service = {s.id: s for s in await self.calls.splitters_by_id(wanted)} if wanted else {}
            for prop in page:
                code = (
                    prop.client.code if prop.client is not None and not isinstance(prop.client, str) else None
                )
                result = _evaluate(model, service, prop, code or "", threshold)
                checked += 1
                unknown += result.verdict == "unknown"
                if result.verdict == "worse":
                    worse.append(result)
        worse.sort(key=lambda c: (-(c.worse_by_db or 0.0), c.code))
        return models.PowerReport(threshold_db=threshold, checked=checked, unknown=unknown, worse=worse)

    async def _connected(self, client_id: str, code: str) -> Property:
        props = await self.calls.properties_of(client_id)
        prop = next((p for p in props if p.connections), props[0] if props else None)
        if prop is None:
            raise Missing(f"client {code!r} has no premises (property) in OZmap")
        return prop


def _evaluate(
    model: PowerModel, service: dict[str, Splitter], prop: Property, code: str, threshold: float
) -> models.PowerCheck:
    connection = prop.connections[0] if prop.connections else None
    splitter = service.get(connection.id or "") if connection is not None else None
    if connection is None or splitter is None:
        return _check(
            code, prop, None, prop.potency_read, [], threshold, "the client is not connected to a port"
        )
    value, path, reason = model.calculate(splitter, connection.port or 1)
    return _check(code, prop, value, prop.potency_read, path, threshold, reason)


def _check(
    code: str,
    prop: Property,
    calculated: float | None,
    read: float | None,
    path: Sequence[models.PowerHop],
    threshold: float,
    reason: str,
) -> models.PowerCheck:
    if read is None and not reason:
        reason = "no read power in OZmap (potencyRead)"
    if calculated is None or read is None:
        return models.PowerCheck(
            code, prop.id, read, calculated, None, threshold, "unknown", reason, list(path)
        )
    worse_by = round(calculated - read, 2)
    if worse_by > threshold:
        why = f"read {read:g} dBm is {worse_by:g} dB below the calculated {calculated:g} dBm"
        return models.PowerCheck(
            code, prop.id, read, calculated, worse_by, threshold, "worse", why, list(path)
        )
    return models.PowerCheck(code, prop.id, read, calculated, worse_by, threshold, "ok", "", list(path))
