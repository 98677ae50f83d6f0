"""OZmap writes that take more than one call: a port reservation (F2) and a client cancellation (F4).

**Reservation** (the ``reservations`` collection's create): ``POST /properties`` with an inline client
``{code, name, implanted}``, in the box or building the fields name, with the project and (when the fields have
none) the position of that container. Where it connects:

- ``splitter_id`` (a building splitter exported as an IXC box): that splitter; ``box`` defaults to its parent;
- ``box_id`` and a ``port`` > 0: the port as the box counts it — ports run on across the box's service splitters
  in (name, id) order (splitter 2 port 1 of two 1x16 splitters = port 17), the numbering of the ``connections``
  view's ``box_port`` and of IXC's ``ftth_porta``;
- no port (absent or 0): ``auto_connect`` — OZmap takes the first free port (of the splitter, or of the box);
  ``auto_connect = false`` instead leaves the client in the box without a port (ArchOLT clients, archolt.md A4).

The inline client also carries the ONU data (``onu_*`` fields → OZmap's three-part ``onu`` object) when given.
Returns the id of the client the property created, so a reservation is found again by the client's code.
**Removal** (the collection's delete): ``DELETE /properties/<id>`` of every property of the client, which removes
the client and the drop with it (F4), then the client itself should it have none (a 404 there means done).

**Cancellation** (the ``connections`` collection's ``cancel`` operation), written to be safe to repeat after a
failure half-way: (1) append ``"client <code> cancelled; last connection: <splitter> port <n>"`` to the property's
``observation`` unless a note for that code is already there, (2) with ``disconnect_drop``, unplug the drop's
fibre from its port (``POST /cables/<drop>/fibers/disconnect``; the drop stays), (3) remove the client
(``DELETE /ftth-clients/<id>``, so a login reactivated later gets a new reservation instead of matching an orphan)
and detach it from the property (``PATCH /properties/<id> {"client": null}``). The property stays, with its note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reconciler import errors
from reconciler.connectors.ozmap import mapping, views
from reconciler.connectors.ozmap.client import OzmapClient, cond
from reconciler.connectors.ozmap.joins import service_splitters
from reconciler.model import Value

#: Fields of the ``reservations`` collection (a create-only view over clients).
RESERVATION_FIELDS = frozenset(
    {"code", "name", "implanted", "box_id", "splitter_id", "port", "lat", "lng", "address", "observation"}
    | {"auto_connect", *mapping.CLIENT_ONU}
)
#: Argument names of the ``cancel`` operation.
CANCEL_ARGS = frozenset({"disconnect_drop"})


async def create_reservation(client: OzmapClient, fields: Mapping[str, Value]) -> str:
    """``POST /properties`` reserving a port for a new client; returns the new client's id."""
    box_id, splitter_id = _text(fields.get("box_id")), _text(fields.get("splitter_id"))
    port = fields.get("port")
    port = port if isinstance(port, int) and not isinstance(port, bool) and port > 0 else None
    body: dict[str, Any] = {}
    if splitter_id:
        splitter = await client.get("splitters", splitter_id, views.SPLITTER)
        box_id = box_id or splitter.parent
        body["connector"] = splitter_id
        if port is not None:
            body["port"] = port
    elif box_id and port is not None:
        body["connector"], body["port"] = await _box_port(client, box_id, port)
    if not box_id:
        raise errors.ConfigError("a reservation needs box_id or splitter_id")
    if "port" not in body and fields.get("auto_connect") is not False:
        body["auto_connect"] = True
    project, lat, lng = await _container(client, box_id)
    lat = _number(fields.get("lat"), lat)
    lng = _number(fields.get("lng"), lng)
    client_fields: dict[str, Any] = {
        "code": fields.get("code"),
        "name": fields.get("name") or "",
        "implanted": bool(fields.get("implanted", False)),
    }
    onu = mapping.client_body(fields).get("onu")  # present when an onu_* field is
    if onu is not None:
        client_fields["onu"] = onu
    body.update(project=project, box=box_id, client=client_fields)
    if lat is not None and lng is not None:
        body["coords"] = [lng, lat]
    for key in ("address", "observation"):
        if fields.get(key) not in (None, ""):
            body[key] = fields[key]
    return await client.create_property(body)


async def delete_reservation(client: OzmapClient, client_id: str) -> None:
    """Remove a reservation: its properties (each takes the client and its drop along), then the client."""
    props = await client.collect("properties", views.PROPERTIES, filter=[cond("client", "=", client_id)])
    for prop in props:
        with contextlib.suppress(errors.NotFound):  # removed meanwhile: the goal holds
            await client.delete("properties", prop.id)
    try:
        await client.delete("ftth-clients", client_id)
    except errors.NotFound:
        if not props:
            raise  # nothing of the reservation was there: tell the caller it was already gone


async def _box_port(client: OzmapClient, box_id: str, port: int) -> tuple[str, int]:
    """(splitter id, its port) of the box's ``port``-th port across its service splitters."""
    remaining = port
    for splitter in (await service_splitters(client, [box_id])).get(box_id, []):
        outputs = splitter.ratio.output if splitter.ratio is not None else 0
        if remaining <= outputs:
            return splitter.id, remaining
        remaining -= outputs
    raise errors.TerminalRemoteError(
        client.transport.system, f"box {box_id} has {port - remaining} service ports, not a port {port}"
    )


async def _container(client: OzmapClient, box_id: str) -> tuple[str | None, float | None, float | None]:
    """(project, lat, lng) of a box or, failing that, a building."""
    try:
        box = await client.get("boxes", box_id, views.BOX)
        return box.project, box.lat, box.lng
    except errors.NotFound:
        building = await client.get("buildings", box_id, views.BUILDING)
        return building.project, building.lat, building.lng


async def cancel(client: OzmapClient, property_id: str, args: Mapping[str, Value]) -> None:
    """Detach the property's client, noting its code and last connection; optionally unplug the drop."""
    prop = await client.get("properties", property_id, views.CONNECTION)
    if prop.client is None:
        return  # already cancelled
    client_id = _client_id(prop.client)
    if isinstance(prop.client, views.PopulatedClient) and prop.client.code is not None:
        code = prop.client.code
    else:
        code = (await client.get("ftth-clients", client_id, views.CLIENT)).code or "?"
    marker = f"client {code} cancelled"
    observation = prop.observation or ""
    if marker not in observation:
        note = f"{marker}; last connection: {_connection_text(prop.connections)}"
        await client.patch("properties", property_id, {"observation": f"{observation}\n{note}".strip()})
    drop = views.ref_id(prop.drop)
    if args.get("disconnect_drop") is True and drop and prop.connections:
        await client.action(f"/cables/{quote(drop, safe='')}/fibers/disconnect")
    with contextlib.suppress(errors.NotFound):  # removed already: a retry after a lost answer
        await client.delete("ftth-clients", client_id)
    await client.patch("properties", property_id, {"client": None})


def _client_id(value: views.PopulatedClient | str) -> str:
    return value if isinstance(value, str) else value.key or ""


def _connection_text(connections: list[views.Connection]) -> str:
    if not connections:
        return "none"
    first = connections[0]
    return f"splitter {first.name or first.id} port {first.port}"


def _text(value: Value) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Value, fallback: float | None) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return fallback
