"""Network operations of the Integrator's Guide (seed 001; ozmap.md F1–F7) over :class:`GuideCalls`.

===========================  ==================================================================================
operation                    OZmap calls
===========================  ==================================================================================
feasibility                  ``GET /ftth-viability/radius`` (boxes) + condominium feasibility [assume: composed
                             from ``GET /buildings`` ``coords near`` and their service splitters, because the
                             public path of OZmap's own endpoint is not known]
box splitters / free ports   ``GET /splitters?filter=[parent = box]`` (free = empty output, not blocked)
port reservation             ``POST /properties`` with ``client: {code, name, implanted: false}``, a splitter and
                             port (or ``auto_connect``); no box given: the nearest feasible box or building
implantation                 ``PATCH /ftth-clients/{id} {"implanted": true}``
removal                      ``DELETE /properties/{id}`` (property, client and drop; the port is freed), or with
                             ``mode=client``: drop unplugged, ``DELETE /ftth-clients/{id}`` (premises stay)
address change               step 1: feasibility + a new property reserving a port at the new address, without
                             a client (a code can belong to one client only) [assume]; step 2 after installation:
                             detach and delete the old property, attach the client to the new one, implant it
update of the client's box   ``PATCH /properties/{id} {box, connector, port}`` (or ``auto_connect``)
box/splitter/port lookup     ``GET /properties?filter=[client = id]&populate=box``
client and premises data     ``PATCH /ftth-clients/{id}`` (name, observation) + ``PATCH /properties/{id}``
===========================  ==================================================================================

A client is always named by its code. Missing things raise :class:`~.validation.Missing`, impossible requests
:class:`~.validation.Conflict`; OZmap's own refusals (an occupied port…) arrive as ``TerminalRemoteError``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Literal

from reconciler import errors
from reconciler.connectors.ozmap.guide_calls import Client, Container, GuideCalls, Property, Splitter
from reconciler.guide import models
from reconciler.guide.validation import Conflict, Missing

__all__ = ["DEFAULT_RADIUS", "Guide", "distance_m", "status_text"]

#: Radius of the condominium search and of an automatic box choice when none is given, metres [assume].
DEFAULT_RADIUS = 200.0
_EARTH_M = 6_371_008.8


def distance_m(lat1: float, lng1: float, lat2: float | None, lng2: float | None) -> float | None:
    """Great-circle distance in metres (None when the second point is unknown)."""
    if lat2 is None or lng2 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    )
    return round(2 * _EARTH_M * math.asin(min(1.0, math.sqrt(a))), 1)


def status_text(status: int) -> models.Status:
    return "ERROR" if status == 1 else "OK"


def splitter_ports(splitter: Splitter) -> models.SplitterPorts:
    outputs = splitter.outputs()
    return models.SplitterPorts(
        id=splitter.id,
        name=splitter.name,
        is_drop=splitter.is_drop,
        ports=splitter.ratio.output if splitter.ratio is not None else len(outputs),
        free_ports=splitter.free_ports(),
        blocked_ports=[i + 1 for i in range(len(outputs)) if splitter.blocked(i + 1)],
    )


class Guide:
    """The guide operations on one OZmap instance."""

    def __init__(self, calls: GuideCalls) -> None:
        self.calls = calls

    # -- feasibility (F1) and free ports ----------------------------------------------------------------------

    async def feasibility(self, query: models.FeasibilityQuery) -> models.Feasibility:
        """Boxes (feasibility by radius) and buildings (condominium feasibility) with free ports, nearest first."""
        viability = await self.calls.viability(query.lat, query.lng, query.radius)
        radius = query.radius or viability.radius or DEFAULT_RADIUS
        boxes: list[models.FeasibleBox] = []
        unviable: list[models.UnfeasibleBox] = []
        for box in viability.viable_boxes:
            lat, lng = (box.coords[1], box.coords[0]) if box.coords and len(box.coords) == 2 else (None, None)
            distance = (
                box.distance if box.distance is not None else distance_m(query.lat, query.lng, lat, lng)
            )
            splitters = [
                models.FeasibleSplitter(s.id, s.name, s.free_ports) for s in box.splitters if s.free_ports
            ]
            free = sum(len(s.free_ports) for s in splitters)
            boxes.append(models.FeasibleBox(box.id, "box", box.name, distance, lat, lng, free, splitters))
        unviable.extend(
            models.UnfeasibleBox(b.id, "box", b.name, b.distance, b.reason or "not feasible")
            for b in viability.unviable_boxes
        )
        buildings, far = await self._condominiums(query.lat, query.lng, radius)
        unviable.extend(far)
        unviable.sort(key=lambda u: (u.distance_m is None, u.distance_m or 0.0))
        return models.Feasibility(
            lat=query.lat,
            lng=query.lng,
            radius=radius,
            viable=bool(boxes or buildings),
            boxes=boxes,
            buildings=buildings,
            unviable=unviable,
        )

    async def _condominiums(
        self, lat: float, lng: float, radius: float
    ) -> tuple[list[models.FeasibleBox], list[models.UnfeasibleBox]]:
        buildings = await self.calls.near("buildings", lat, lng, radius)
        splitters = await self.calls.splitters_in([b.id for b in buildings]) if buildings else []
        viable: list[models.FeasibleBox] = []
        unviable: list[models.UnfeasibleBox] = []
        for building in buildings:
            distance = distance_m(lat, lng, building.lat, building.lng)
            own = [s for s in splitters if s.parent == building.id]
            listed = [models.FeasibleSplitter(s.id, s.name, s.free_ports()) for s in own]
            free = [s for s in listed if s.free_ports]
            reason = ""
            if not building.implanted:
                reason = "in project"
            elif not own:
                reason = "no service splitter"
            elif not free:
                reason = "no free ports"
            if reason:
                unviable.append(
                    models.UnfeasibleBox(building.id, "building", building.name, distance, reason)
                )
                continue
            ports = sum(len(s.free_ports) for s in free)
            viable.append(
                models.FeasibleBox(
                    building.id, "building", building.name, distance, building.lat, building.lng, ports, free
                )
            )
        return viable, unviable

    async def box_splitters(self, box_id: str, *, free_only: bool = True) -> list[models.SplitterPorts]:
        """The service splitters of a box or building (``free_only``: those with a free port) and their ports."""
        await self._container(box_id)
        splitters = await self.calls.splitters_in([box_id])
        listed = [splitter_ports(s) for s in splitters]
        return [s for s in listed if s.free_ports] if free_only else listed

    # -- reservation, implantation, removal (F2–F4) ---------------------------------------------------------

    async def reserve(self, request: models.ReservationRequest) -> models.Reservation:
        """A property with a client not implanted, on a reserved port (F2)."""
        existing = await self.calls.client_by_code(request.code)
        if existing is not None:
            raise Conflict(f"a client with code {request.code!r} already exists in OZmap (id {existing.key})")
        body = await self._placement(request.lat, request.lng, request.box_id, request.splitter_id, request.port,
                                     request.radius)  # fmt: skip
        body["client"] = {"code": request.code, "name": request.name, "implanted": False}
        for key in ("address", "observation"):
            value = getattr(request, key)
            if value:
                body[key] = value
        created = await self.calls.create_property(body)
        connection = created.connections[0] if created.connections else None
        return models.Reservation(
            code=request.code,
            client_id=created.client_id or "",
            property_id=created.id,
            box_id=created.box_id,
            splitter_id=connection.id if connection else None,
            splitter_name=connection.name if connection else None,
            port=connection.port if connection else None,
            implanted=False,
        )

    async def implant(self, code: str) -> models.ClientState:
        """The reservation becomes an active client (F3)."""
        client = await self.client(code)
        await self.calls.patch("ftth-clients", client.key, {"implanted": True})
        return await self.state(code)

    async def remove(self, code: str, mode: Literal["property", "client"] = "property") -> models.Removal:
        """Cancel a reservation or a client (F4): ``property`` deletes premises, client and drop (the port is
        freed); ``client`` unplugs the drop and deletes only the client (the premises stay)."""
        client = await self.client(code)
        props = await self.calls.properties_of(client.key)
        deleted: list[str] = []
        if mode == "property":
            for prop in props:
                with contextlib.suppress(errors.NotFound):
                    await self.calls.delete("properties", prop.id)
                deleted.append(prop.id)
        else:
            for prop in props:
                drop = prop.drop if isinstance(prop.drop, str) else (prop.drop.key if prop.drop else None)
                if drop and prop.connections:
                    await self.calls.disconnect_drop(drop)
        with contextlib.suppress(errors.NotFound):  # a property delete took the client along
            await self.calls.delete("ftth-clients", client.key)
        return models.Removal(code, client.key, mode, deleted, True)

    # -- address change (F5), box update (F6) ---------------------------------------------------------------

    async def change_address(self, code: str, request: models.AddressChangeRequest) -> models.AddressChange:
        """Step 1: feasibility and a reserved port at the new address (a new property, no client yet)."""
        client = await self.client(code)
        old = await self._first_property(client)
        body = await self._placement(request.lat, request.lng, request.box_id, request.splitter_id, request.port,
                                     request.radius)  # fmt: skip
        body["observation"] = f"address change of client {code}: port reserved"
        if request.address:
            body["address"] = request.address
        created = await self.calls.create_property(body)
        connection = created.connections[0] if created.connections else None
        return models.AddressChange(
            code=code,
            stage="reserved",
            old_property_id=old.id if old else None,
            new_property_id=created.id,
            box_id=created.box_id,
            splitter_id=connection.id if connection else None,
            port=connection.port if connection else None,
        )

    async def complete_address_change(
        self, code: str, request: models.AddressChangeCompletion
    ) -> models.AddressChange:
        """Step 2: the old premises are removed (port freed), the client moves to the new ones, implanted."""
        client = await self.client(code)
        try:
            new = await self.calls.get_property(request.new_property_id)
        except errors.NotFound:
            raise Missing(f"no property {request.new_property_id} in OZmap (was step 1 done?)") from None
        if new.client_id not in (None, client.key):
            raise Conflict(f"property {new.id} belongs to another client ({new.client_id})")
        olds = [p for p in await self.calls.properties_of(client.key) if p.id != new.id]
        for old in olds:
            await self.calls.patch("properties", old.id, {"client": None})
            with contextlib.suppress(errors.NotFound):
                await self.calls.delete("properties", old.id)
        if new.client_id != client.key:
            await self.calls.patch("properties", new.id, {"client": client.key})
        await self.calls.patch("ftth-clients", client.key, {"implanted": True})
        connection = new.connections[0] if new.connections else None
        return models.AddressChange(
            code=code,
            stage="completed",
            old_property_id=olds[0].id if olds else None,
            new_property_id=new.id,
            box_id=new.box_id,
            splitter_id=connection.id if connection else None,
            port=connection.port if connection else None,
        )

    async def update_box(self, code: str, request: models.BoxUpdateRequest) -> models.ClientConnection:
        """The client's premises move to the box (splitter, port) used at installation (F6)."""
        client = await self.client(code)
        prop = await self._property_of(client)
        await self._container(request.box_id)
        body: dict[str, Any] = {"box": request.box_id}
        if request.splitter_id:
            body["connector"] = request.splitter_id
        if request.port is not None:
            body["port"] = request.port
        else:
            body["auto_connect"] = True
        await self.calls.patch("properties", prop.id, body)
        return await self.connection(code)

    # -- lookup (F7) and data updates -------------------------------------------------------------------------

    async def connection(self, code: str) -> models.ClientConnection:
        """The client's box (populated), splitter and port, and its premises."""
        client = await self.client(code)
        props = await self.calls.properties_of(client.key, populate="box")
        prop = next((p for p in props if p.connections), props[0] if props else None)
        box = prop.box if prop is not None and isinstance(prop.box, Container) else None
        connection = prop.connections[0] if prop is not None and prop.connections else None
        return models.ClientConnection(
            code=code,
            client_id=client.key,
            client_name=client.name,
            implanted=client.implanted,
            status=status_text(client.status),
            property_id=prop.id if prop else None,
            address=prop.address if prop else None,
            lat=prop.lat if prop else None,
            lng=prop.lng if prop else None,
            potency_read=prop.potency_read if prop else None,
            box=models.BoxRef(box.id, box.kind, box.name, box.lat, box.lng, box.implanted) if box else None,
            splitter_id=connection.id if connection else None,
            splitter_name=connection.name if connection else None,
            port=connection.port if connection else None,
        )

    async def update_client(self, code: str, request: models.ClientUpdateRequest) -> models.ClientConnection:
        """Client fields on the client, premises fields on its property."""
        client = await self.client(code)
        on_client = {
            k: getattr(request, k) for k in ("name", "observation") if getattr(request, k) is not None
        }
        on_property: dict[str, Any] = {}
        if request.address is not None:
            on_property["address"] = request.address
        if request.property_observation is not None:
            on_property["observation"] = request.property_observation
        if request.lat is not None and request.lng is not None:
            on_property["coords"] = [request.lng, request.lat]
        if not on_client and not on_property:
            raise Conflict(
                "nothing to update: give name, observation, address, lat/lng or property_observation"
            )
        if on_property:
            prop = await self._property_of(client)
            await self.calls.patch("properties", prop.id, on_property)
        if on_client:
            await self.calls.patch("ftth-clients", client.key, on_client)
        return await self.connection(code)

    async def state(self, code: str) -> models.ClientState:
        client = await self.client(code)
        onu = client.onu
        return models.ClientState(
            code=code,
            client_id=client.key,
            name=client.name,
            implanted=client.implanted,
            status=status_text(client.status),
            serial_number=onu.serial_number if onu else "",
            mac_address=onu.mac_address if onu else "",
            pppoe_user=onu.user_pppoe if onu else "",
        )

    # -- shared -------------------------------------------------------------------------------------------------

    async def client(self, code: str) -> Client:
        found = await self.calls.client_by_code(code)
        if found is None:
            raise Missing(f"no client with code {code!r} in OZmap")
        return found

    async def _first_property(self, client: Client) -> Property | None:
        """The client's connected property, else any of its properties, else None."""
        props = await self.calls.properties_of(client.key)
        return next((p for p in props if p.connections), props[0] if props else None)

    async def _property_of(self, client: Client) -> Property:
        prop = await self._first_property(client)
        if prop is None:
            raise Missing(f"client {client.code!r} has no premises (property) in OZmap")
        return prop

    async def _container(self, box_id: str) -> Container:
        try:
            return await self.calls.container(box_id)
        except errors.NotFound:
            raise Missing(f"no box or building {box_id} in OZmap") from None

    async def _box_port(self, box_id: str, port: int) -> tuple[str, int]:
        """A port as the box counts it (on across its service splitters in (name, id) order) → (splitter, port)."""
        remaining = port
        for splitter in await self.calls.splitters_in([box_id]):
            outputs = splitter.ratio.output if splitter.ratio is not None else len(splitter.outputs())
            if remaining <= outputs:
                return splitter.id, remaining
            remaining -= outputs
        raise Conflict(f"box {box_id} has {port - remaining} service ports, not a port {port}")

    async def _placement(
        self,
        lat: float,
        lng: float,
        box_id: str | None,
        splitter_id: str | None,
        port: int | None,
        radius: float | None,
    ) -> dict[str, Any]:
        """The ``POST /properties`` body of where a new property connects (project, box, splitter/port, coords)."""
        if box_id is None and splitter_id is not None:
            try:
                box_id = (await self.calls.splitter(splitter_id)).parent
            except errors.NotFound:
                raise Missing(f"no splitter {splitter_id} in OZmap") from None
        if box_id is None:
            found = await self.feasibility(models.FeasibilityQuery(lat=lat, lng=lng, radius=radius))
            options = sorted(found.boxes + found.buildings, key=lambda b: b.distance_m or 0.0)
            if not options:
                where = f"{found.radius:g} m" if found.radius else "the default radius"
                raise Conflict(f"no box or building with a free port within {where} of ({lat}, {lng})")
            box_id = options[0].id
            splitter_id, port = options[0].splitters[0].id, options[0].splitters[0].free_ports[0]
        container = await self._container(box_id)
        if port is not None and splitter_id is None:
            splitter_id, port = await self._box_port(box_id, port)
        body: dict[str, Any] = {"project": container.project, "box": box_id, "coords": [lng, lat]}
        if container.kind == "Building":
            body["parent"] = box_id
        if splitter_id is not None:
            body["connector"] = splitter_id
        if port is not None:
            body["port"] = port
        else:
            body["auto_connect"] = True
        return body
