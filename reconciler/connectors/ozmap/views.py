"""Narrow msgspec views of OZmap API v2 payloads: only the fields the connector reads.

msgspec skips every key a view does not name while decoding, so a 1000-box page costs little more than the bytes
it arrives in. One ``Decoder`` per view type is built once at import and reused (msgspec perf tips).
Field names follow the API (camelCase renamed where Python would differ); defaults cover keys that ``select``
projections or older instances leave out. Types are lenient where the API is (``name`` may be absent or null).
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T]):
    """The list envelope; ``hasNextPage``/``nextUrl`` are deliberately ignored (never followed blindly)."""

    total: int
    rows: list[T] = []


class Ratio(msgspec.Struct):
    input: int = 1
    output: int = 0


class Connectables(msgspec.Struct):
    input: list[str | None] = []
    output: list[str | None] = []


class Inputs(msgspec.Struct):
    input: list[str | None] = []


class BoxView(msgspec.Struct):
    id: str
    name: str | None = None
    project: str | None = None
    implanted: bool = False
    draft: bool = False
    lat: float | None = None
    lng: float | None = None
    observation: str | None = None
    address: str | None = None
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class Fibres(msgspec.Struct, gc=False):
    """A network splitter's fibres (untracked by the collector: a struct of lists of strings makes no cycle)."""

    input: list[str | None] = []
    output: list[str | None] = []


class NetworkSplitterView(msgspec.Struct, gc=False):
    """A network splitter (``isDrop`` false) as the topology index reads it: its fibres and nothing else.

    A full stream decodes every network splitter of the instance; name, parent and ratio are never read.
    """

    id: str
    is_drop: bool = msgspec.field(default=False, name="isDrop")
    connectables: Fibres | None = None


class ServiceSplitterView(msgspec.Struct):
    """A service splitter of a box: its outputs (client drops) are not needed, so they are not decoded."""

    id: str
    name: str | None = None
    parent: str | None = None
    project: str | None = None
    is_drop: bool = msgspec.field(default=False, name="isDrop")
    ratio: Ratio | None = None
    connectables: Inputs | None = None
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class BuildingView(msgspec.Struct):
    """A building (vertical condominium): its service splitters become IXC boxes."""

    id: str
    name: str | None = None
    project: str | None = None
    lat: float | None = None
    lng: float | None = None
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class PonView(msgspec.Struct):
    id: str
    parent: str | None = None
    slot: str | None = None
    connectables: list[str | None] = []


class SlotView(msgspec.Struct):
    id: str
    parent: str | None = None
    olt: str | None = None
    connectables: list[str | None] = []


class OltView(msgspec.Struct):
    id: str
    name: str | None = None
    ip: str | None = None
    connectables: list[str | None] = []
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class ProjectView(msgspec.Struct):
    id: str
    name: str | None = None
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class Onu(msgspec.Struct):
    serial_number: str = ""
    mac_address: str = ""
    user_pppoe: str = msgspec.field(default="", name="user_PPPoE")


class ClientView(msgspec.Struct):
    id: str
    code: str | None = None
    name: str | None = None
    observation: str | None = None
    implanted: bool = False
    certified: bool = False
    status: int = 0
    onu: Onu | None = None
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class Ref(msgspec.Struct):
    """A populated reference: only its id matters here (``id`` or Mongo's ``_id``)."""

    id: str | None = None
    oid: str | None = msgspec.field(default=None, name="_id")

    @property
    def key(self) -> str | None:
        return self.id or self.oid


class Connection(msgspec.Struct):
    id: str | None = None
    port: int | None = None
    name: str | None = None


class PropertyView(msgspec.Struct):
    id: str
    project: str | None = None
    box: str | Ref | None = None
    client: str | Ref | None = None
    drop: str | Ref | None = None
    address: str | None = None
    observation: str | None = None
    lat: float | None = None
    lng: float | None = None
    potency_read: float | None = msgspec.field(default=None, name="potencyRead")
    connections: list[Connection] = []
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class PopulatedClient(msgspec.Struct):
    """A client populated into a property (some endpoints give only ``_id``)."""

    id: str | None = None
    oid: str | None = msgspec.field(default=None, name="_id")
    code: str | None = None
    name: str | None = None
    implanted: bool = False
    status: int = 0
    updated_at: str = msgspec.field(default="", name="updatedAt")

    @property
    def key(self) -> str | None:
        return self.id or self.oid


class ConnectionView(msgspec.Struct):
    """A property read with ``populate=client``: the premises, its client, box, splitter and port."""

    id: str
    project: str | None = None
    box: str | Ref | None = None
    parent: str | Ref | None = None
    client: PopulatedClient | str | None = None
    drop: str | Ref | None = None
    address: str | None = None
    observation: str | None = None
    lat: float | None = None
    lng: float | None = None
    potency_read: float | None = msgspec.field(default=None, name="potencyRead")
    connections: list[Connection] = []
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class CreatedProperty(msgspec.Struct):
    """Answer of ``POST /properties``: the new property and the id of the client it created."""

    id: str | None = None
    client: str | Ref | None = None


class Created(msgspec.Struct):
    """Answer of a POST: the new record, of which only the id matters."""

    id: str | None = None
    oid: str | None = msgspec.field(default=None, name="_id")


def ref_id(value: str | Ref | None) -> str | None:
    """The id of a reference that may arrive as an id string or as a populated object."""
    return value.key if isinstance(value, Ref) else value


BOXES = msgspec.json.Decoder(Page[BoxView])
NETWORK_SPLITTERS = msgspec.json.Decoder(Page[NetworkSplitterView])
SERVICE_SPLITTERS = msgspec.json.Decoder(Page[ServiceSplitterView])
PONS = msgspec.json.Decoder(Page[PonView])
SLOTS = msgspec.json.Decoder(Page[SlotView])
OLTS = msgspec.json.Decoder(Page[OltView])
PROJECTS = msgspec.json.Decoder(Page[ProjectView])
CLIENTS = msgspec.json.Decoder(Page[ClientView])
PROPERTIES = msgspec.json.Decoder(Page[PropertyView])
CLIENT = msgspec.json.Decoder(ClientView)
CONNECTIONS = msgspec.json.Decoder(Page[ConnectionView])
CONNECTION = msgspec.json.Decoder(ConnectionView)
CONNECTION_LIST = msgspec.json.Decoder(list[ConnectionView])
BUILDINGS = msgspec.json.Decoder(Page[BuildingView])
BUILDING = msgspec.json.Decoder(BuildingView)
BOX = msgspec.json.Decoder(BoxView)
SPLITTER = msgspec.json.Decoder(ServiceSplitterView)
CREATED_PROPERTY = msgspec.json.Decoder(CreatedProperty)
CREATED = msgspec.json.Decoder(Created)
PROPERTY = msgspec.json.Decoder(PropertyView)
