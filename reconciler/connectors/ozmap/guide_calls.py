"""OZmap API v2 calls behind the Integrator's Guide operations (seed 001; ozmap.md F1–F12), on :class:`OzmapClient`.

The sync engine reads OZmap through flat collections; the guide operations (:mod:`reconciler.guide`) need the
API's own shapes instead — a property with its populated box, a splitter's outputs and blocked ports, the
OLT → slot → PON chain — so this module holds their narrow views and one method per call. It adds nothing to
:mod:`.client`: every request goes through the same :class:`~reconciler.connectors.http.Transport` (retries,
rate limit, error mapping, secret scrubbing).

Calls and their contract section:

- ``GET /ftth-viability/radius`` (F1; answer shape [assume], see :class:`Viability`);
- ``GET /buildings`` with ``coords near`` + ``GET /splitters`` ``parent in``, ``isDrop`` (condominium
  feasibility: its public path is not known, so it is composed from documented listings [assume]);
- ``GET /ftth-clients?filter=code``, ``GET /properties?filter=client&populate=box`` (F7),
  ``GET /properties/client/{code}`` (F3/F9);
- ``POST /properties`` (F2), ``PATCH``/``DELETE`` of properties and clients (F3–F6, F8, F10),
  ``POST /cables/{drop}/fibers/disconnect`` (F4), ``POST /<res>/batch-update`` (F8);
- ``GET /olts``, ``/slots``, ``/pons``, ``PATCH /pons/{id}`` (F9), the splitter/PON listings of the power model;
- ``POST /pendencies``, ``POST /prospects``, ``GET /tags``, ``GET /pendency-types``, ``GET /authenticated`` (F12).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.http import Response
from reconciler.connectors.ozmap import views
from reconciler.connectors.ozmap.client import Filter, OzmapClient, batches, cond

T = TypeVar("T")

__all__ = ["GuideCalls"]


# -- views ---------------------------------------------------------------------------------------------------


class ViabilitySplitter(msgspec.Struct):
    id: str
    name: str | None = None
    free_ports: list[int] = msgspec.field(default_factory=list, name="freePorts")


class ViabilityBox(msgspec.Struct):
    id: str
    name: str | None = None
    distance: float | None = None
    coords: list[float] | None = None
    splitters: list[ViabilitySplitter] = msgspec.field(default_factory=list)
    reason: str | None = None


class Viability(msgspec.Struct):
    """``GET /ftth-viability/radius``: ``viable`` is [seen]; the box lists are the sandbox's [assume] shape."""

    viable: bool = False
    radius: float | None = None
    viable_boxes: list[ViabilityBox] = msgspec.field(default_factory=list, name="viableBoxes")
    unviable_boxes: list[ViabilityBox] = msgspec.field(default_factory=list, name="unviableBoxes")


class PortFlag(msgspec.Struct):
    blocked: bool = False


class Splitter(msgspec.Struct):
    """A splitter with what port availability and power need: outputs, blocked flags, attenuation, type."""

    id: str
    name: str | None = None
    parent: str | None = None
    project: str | None = None
    is_drop: bool = msgspec.field(default=False, name="isDrop")
    implanted: bool = True
    ratio: views.Ratio | None = None
    connectables: views.Connectables | None = None
    ports: list[PortFlag | None] = msgspec.field(default_factory=list)
    attenuation: list[float | None] | float | None = None
    splitter_type: str | None = msgspec.field(default=None, name="splitterType")

    def outputs(self) -> list[str | None]:
        return self.connectables.output if self.connectables is not None else []

    def blocked(self, port: int) -> bool:
        """Whether 1-based ``port`` is blocked (``ports[i]`` carries port ``i + 1``)."""
        flag = self.ports[port - 1] if 0 < port <= len(self.ports) else None
        return flag is not None and flag.blocked

    def free_ports(self) -> list[int]:
        """1-based ports with no fibre that are not blocked."""
        return [i + 1 for i, fibre in enumerate(self.outputs()) if fibre is None and not self.blocked(i + 1)]


class SplitterType(msgspec.Struct):
    id: str
    name: str | None = None
    ratio: views.Ratio | None = None
    attenuation: list[float | None] | float | None = None


class Container(msgspec.Struct):
    """A box or a building (vertical condominium): where a property connects."""

    id: str
    kind: str | None = None
    name: str | None = None
    project: str | None = None
    implanted: bool = True
    lat: float | None = None
    lng: float | None = None
    address: str | None = None
    tags: list[str | views.Ref] = msgspec.field(default_factory=list)


class Connection(msgspec.Struct):
    id: str | None = None
    name: str | None = None
    port: int | None = None
    fiber: str | None = None


class ClientOnu(msgspec.Struct):
    serial_number: str = ""
    mac_address: str = ""
    user_pppoe: str = msgspec.field(default="", name="user_PPPoE")


class Client(msgspec.Struct):
    """An FTTH client (also as populated into a property, where it may carry only ``_id``)."""

    id: str | None = None
    oid: str | None = msgspec.field(default=None, name="_id")
    code: str | None = None
    name: str | None = None
    observation: str | None = None
    implanted: bool = False
    status: int = 0
    onu: ClientOnu | None = None
    tags: list[str | views.Ref] = msgspec.field(default_factory=list)

    @property
    def key(self) -> str:
        return self.id or self.oid or ""


class Property(msgspec.Struct):
    """A property, its box possibly populated (F7) and its client possibly populated."""

    id: str
    project: str | None = None
    box: Container | str | None = None
    client: Client | str | None = None
    parent: str | views.Ref | None = None
    drop: str | views.Ref | None = None
    address: str | None = None
    observation: str | None = None
    lat: float | None = None
    lng: float | None = None
    potency_read: float | None = msgspec.field(default=None, name="potencyRead")
    connections: list[Connection] = msgspec.field(default_factory=list)
    tags: list[str | views.Ref] = msgspec.field(default_factory=list)

    @property
    def box_id(self) -> str | None:
        return self.box.id if isinstance(self.box, Container) else self.box

    @property
    def client_id(self) -> str | None:
        return self.client.key if isinstance(self.client, Client) else self.client


class Olt(msgspec.Struct):
    id: str
    name: str | None = None
    ip: str | None = None
    connectables: list[str | None] = msgspec.field(default_factory=list)


class Slot(msgspec.Struct):
    id: str
    name: str | None = None
    label: str | None = None
    starting_pon_number: int | None = None
    parent: str | None = None
    olt: str | None = None
    connectables: list[str | None] = msgspec.field(default_factory=list)


class Pon(msgspec.Struct):
    id: str
    name: str | None = None
    potency: float | None = None
    parent: str | None = None
    slot: str | None = None
    connectables: list[str | None] = msgspec.field(default_factory=list)


class Named(msgspec.Struct):
    """Any record of which only the id and name matter (tags, pendency types, projects)."""

    id: str
    name: str | None = None


class Identity(msgspec.Struct):
    """``GET /authenticated``: the key's user (the sandbox answers it; older instances only 2xx)."""

    user: views.Ref | None = None


_VIABILITY = msgspec.json.Decoder(Viability)
_SPLITTERS = msgspec.json.Decoder(views.Page[Splitter])
_SPLITTER = msgspec.json.Decoder(Splitter)
_SPLITTER_TYPES = msgspec.json.Decoder(views.Page[SplitterType])
_CONTAINERS = msgspec.json.Decoder(views.Page[Container])
_CONTAINER = msgspec.json.Decoder(Container)
_CLIENTS = msgspec.json.Decoder(views.Page[Client])
_CLIENT = msgspec.json.Decoder(Client)
_PROPERTIES = msgspec.json.Decoder(views.Page[Property])
_PROPERTY = msgspec.json.Decoder(Property)
_PROPERTY_LIST = msgspec.json.Decoder(list[Property])
_OLTS = msgspec.json.Decoder(views.Page[Olt])
_SLOTS = msgspec.json.Decoder(views.Page[Slot])
_PONS = msgspec.json.Decoder(views.Page[Pon])
_NAMED = msgspec.json.Decoder(views.Page[Named])
_IDENTITY = msgspec.json.Decoder(Identity)


class GuideCalls:
    """The guide's OZmap calls over one :class:`OzmapClient` (its transport, retries and error mapping)."""

    def __init__(self, client: OzmapClient, *, api_key: str | None = None) -> None:
        self.client = client
        self.transport = client.transport
        self._api_key = api_key

    @classmethod
    def for_system(cls, config: SystemConfig, session: aiohttp.ClientSession) -> GuideCalls:
        """Calls to the OZmap system ``config`` through ``session`` (owned by the caller)."""
        return cls(OzmapClient(config, session), api_key=config.secret.reveal())

    # -- feasibility (F1) -----------------------------------------------------------------------------------

    async def viability(self, lat: float, lng: float, radius: float | None) -> Viability:
        """``GET /ftth-viability/radius``; ``radius`` None = the instance's default search radius."""
        params = {"lat": repr(lat), "lng": repr(lng)}
        if radius is not None:
            params["radius"] = repr(radius)
        path = "/ftth-viability/radius"
        return await self._get(path, _VIABILITY, params)

    async def near(self, resource: str, lat: float, lng: float, radius: float) -> list[Container]:
        """Boxes or buildings within ``radius`` metres of the point, nearest first (``coords near``)."""
        where = cond("coords", "near", {"lat": lat, "lng": lng, "radius": radius})
        return await self.client.collect(resource, _CONTAINERS, filter=[where])

    async def splitters_in(self, parents: Sequence[str], *, service_only: bool = True) -> list[Splitter]:
        """The splitters of these boxes/buildings (only service ones by default), in (name, id) order."""
        found: list[Splitter] = []
        for batch in batches(sorted(set(parents))):
            where: Filter = [cond("parent", "in", list(batch))]
            if service_only:
                where.append(cond("isDrop", "=", True))
            found.extend(await self.client.collect("splitters", _SPLITTERS, filter=where))
        return sorted(found, key=lambda s: (s.name or "", s.id))

    async def splitter(self, splitter_id: str) -> Splitter:
        return await self.client.get("splitters", splitter_id, _SPLITTER)

    async def container(self, container_id: str) -> Container:
        """A box, else a building, by id; NotFound when neither has it."""
        try:
            return await self.client.get("boxes", container_id, _CONTAINER)
        except errors.NotFound:
            return await self.client.get("buildings", container_id, _CONTAINER)

    # -- clients and properties (F2–F10) ---------------------------------------------------------------------

    async def client_by_code(self, code: str) -> Client | None:
        rows = await self.client.collect("ftth-clients", _CLIENTS, filter=[cond("code", "=", code)])
        return next((c for c in rows if c.code == code), None)

    async def clients_where(self, where: Filter) -> list[Client]:
        return await self.client.collect("ftth-clients", _CLIENTS, filter=where)

    async def get_client(self, client_id: str) -> Client:
        return await self.client.get("ftth-clients", client_id, _CLIENT)

    async def properties_of(self, client_id: str, *, populate: str | None = None) -> list[Property]:
        """``GET /properties?filter=[client = id]`` (``populate=box`` for F7)."""
        where = [cond("client", "=", client_id)]
        return await self.client.collect("properties", _PROPERTIES, filter=where, populate=populate)

    async def properties_by_code(self, code: str) -> list[Property]:
        """``GET /properties/client/{code}``: a bare array, client populated; [] when unknown."""
        try:
            return await self.client.read(f"/properties/client/{quote(code, safe='')}", _PROPERTY_LIST)
        except errors.NotFound:
            return []

    async def get_property(self, property_id: str, *, populate: str | None = None) -> Property:
        params = {"populate": populate} if populate else None
        return await self._get(f"/properties/{quote(property_id, safe='')}", _PROPERTY, params)

    async def create_property(self, body: dict[str, Any]) -> Property:
        """``POST /properties`` (F2): not retried once it may have reached the server."""
        return await self._post("/properties", body, _PROPERTY)

    async def create(self, resource: str, body: dict[str, Any]) -> str:
        """``POST /<resource>`` → the new id (not retried after it may have reached the server)."""
        return await self.client.create(resource, body)

    async def patch(self, resource: str, record_id: str, body: dict[str, Any]) -> None:
        await self.client.patch(resource, record_id, body)

    async def delete(self, resource: str, record_id: str) -> None:
        await self.client.delete(resource, record_id)

    async def disconnect_drop(self, drop_id: str) -> None:
        """``POST /cables/{drop}/fibers/disconnect``: the port is freed, the drop stays."""
        await self.client.action(f"/cables/{quote(drop_id, safe='')}/fibers/disconnect")

    async def batch_update(self, resource: str, where: Filter, update: dict[str, Any]) -> None:
        """``POST /<resource>/batch-update {filter, update}`` (204)."""
        body = {"filter": where, "update": update}
        path = f"/{resource}/batch-update"
        await self.transport.request("POST", path, json=body, decode=self.client._no_content("POST", path))

    def powered_properties(self) -> AsyncIterator[list[Property]]:
        """Every property with a client and a read power, client populated, page by page."""
        where = [cond("client", "!=", None), cond("potencyRead", "!=", None)]
        return self.client.pages("properties", _PROPERTIES, filter=where, populate="client")

    # -- OLT chain and power model (F9) ----------------------------------------------------------------------

    async def olts(self, where: Filter | None = None) -> list[Olt]:
        return await self.client.collect("olts", _OLTS, filter=where)

    async def slots(self, ids: Sequence[str] | None = None) -> list[Slot]:
        return await self._by_ids("slots", _SLOTS, ids)

    async def pons(self, ids: Sequence[str] | None = None) -> list[Pon]:
        return await self._by_ids("pons", _PONS, ids)

    async def network_splitters(self) -> list[Splitter]:
        return await self.client.collect("splitters", _SPLITTERS, filter=[cond("isDrop", "=", False)])

    async def splitters_where(self, where: Filter) -> list[Splitter]:
        return await self.client.collect("splitters", _SPLITTERS, filter=where)

    async def pons_where(self, where: Filter) -> list[Pon]:
        return await self.client.collect("pons", _PONS, filter=where)

    async def splitters_by_id(self, ids: Sequence[str]) -> list[Splitter]:
        return await self._by_ids("splitters", _SPLITTERS, ids)

    async def splitter_types(self) -> list[SplitterType]:
        return await self.client.collect("splitter-types", _SPLITTER_TYPES)

    # -- tags, pendencies, prospects, identity (F12) ---------------------------------------------------------

    async def named(self, resource: str, ids: Sequence[str] | None = None) -> list[Named]:
        """Tags, pendency types, projects…: every record (``ids`` None) or these ids."""
        return await self._by_ids(resource, _NAMED, ids)

    async def named_like(self, resource: str, name: str) -> list[Named]:
        rows = await self.client.collect(resource, _NAMED, filter=[cond("name", "=", name)])
        return [r for r in rows if r.name == name]

    async def user_id(self) -> str | None:
        """The API key's user: ``GET /authenticated``, else the ``user`` claim of the key (a JWT) [assume]."""
        try:
            identity = await self._get("/authenticated", _IDENTITY, None)
        except errors.RemoteError:
            identity = Identity()
        if identity.user is not None and identity.user.key:
            return identity.user.key
        return _jwt_user(self._api_key or "")

    # -- plumbing ----------------------------------------------------------------------------------------------

    async def _by_ids(
        self, resource: str, decoder: msgspec.json.Decoder[views.Page[T]], ids: Sequence[str] | None
    ) -> list[T]:
        if ids is None:
            return await self.client.collect(resource, decoder)
        out: list[T] = []
        for batch in batches(sorted(set(ids))):
            out.extend(await self.client.collect(resource, decoder, filter=[cond("id", "in", list(batch))]))
        return out

    async def _get(self, path: str, decoder: msgspec.json.Decoder[T], params: dict[str, str] | None) -> T:
        return await self.transport.request(
            "GET", path, params=params, decode=self._decode(decoder, "GET", path)
        )

    async def _post(self, path: str, body: dict[str, Any], decoder: msgspec.json.Decoder[T]) -> T:
        decode = self._decode(decoder, "POST", path)
        return await self.transport.request("POST", path, json=body, idempotent=False, decode=decode)

    def _decode(self, decoder: msgspec.json.Decoder[T], method: str, path: str) -> Callable[[Response], T]:
        transport = self.transport

        def decode(response: Response) -> T:
            try:
                return decoder.decode(response.body)
            except msgspec.ValidationError as exc:
                what = f"unexpected answer ({exc})"
                raise transport.error(errors.TerminalRemoteError, method, path, what) from exc
            except msgspec.DecodeError as exc:
                what = "malformed JSON"
                raise transport.error(errors.TransientRemoteError, method, path, what, response.body) from exc

        return decode


def _jwt_user(key: str) -> str | None:
    """The ``user`` claim of a JWT API key (ozmap.md 1), read without verifying; None when not a JWT."""
    parts = key.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = msgspec.json.decode(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    user = claims.get("user") if isinstance(claims, dict) else None
    return user if isinstance(user, str) and user else None
