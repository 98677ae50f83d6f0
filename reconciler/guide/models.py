"""Requests and answers of the guide operations: msgspec Structs, also the schemas of ``/openapi.json``.

Requests reject unknown keys and carry their bounds as constraints (shown in the OpenAPI document and enforced by
:mod:`.validation`): latitude −90..90, longitude −180..180, radius :data:`MIN_RADIUS`..:data:`MAX_RADIUS`
metres, optical powers −60..+20 dBm, ports ≥ 1. Answers use snake_case, metres and dBm; a client's status is
``"OK"``/``"ERROR"`` (OZmap stores 0/1).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

#: Radius bounds of a feasibility search, metres [assume: OZmap's own default is an instance setting, ~200 m].
MIN_RADIUS = 1.0
MAX_RADIUS = 5000.0
#: Read-vs-calculated power threshold of seed 001's example, dB.
DEFAULT_THRESHOLD_DB = 2.0

Latitude = Annotated[float, Meta(ge=-90, le=90, description="WGS84 latitude, degrees")]
Longitude = Annotated[float, Meta(ge=-180, le=180, description="WGS84 longitude, degrees")]
Radius = Annotated[float, Meta(ge=MIN_RADIUS, le=MAX_RADIUS, description="search radius, metres")]
Dbm = Annotated[float, Meta(ge=-60, le=20, description="optical power, dBm")]
Port = Annotated[int, Meta(ge=1, le=1024, description="1-based splitter output port")]
Code = Annotated[
    str,
    Meta(
        min_length=1, max_length=128, description="the client's code in OZmap (ERP login, contract or ONU id)"
    ),
]
OzmapId = Annotated[str, Meta(min_length=1, max_length=64, description="an OZmap record id")]
Text = Annotated[str, Meta(max_length=2000)]
Status = Literal["OK", "ERROR"]


class _Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of request bodies: keyword-only, unknown keys rejected."""


# -- requests --------------------------------------------------------------------------------------------------


class FeasibilityQuery(_Request):
    """Query of ``GET /ozmap/feasibility``: where, and how far (omitted: OZmap's default radius)."""

    lat: Latitude
    lng: Longitude
    radius: Radius | None = None


class PowerCheckQuery(_Request):
    threshold: Annotated[
        float, Meta(ge=0, le=30, description="dB the read power may be below the calculated one")
    ] = DEFAULT_THRESHOLD_DB


class RemovalQuery(_Request):
    """``property`` (default): premises, client and drop are deleted and the port is freed — a withdrawn
    reservation or a cancelled contract; ``client``: only the client, its drop unplugged, the premises stay."""

    mode: Annotated[
        Literal["property", "client"],
        Meta(description="property: premises, client and drop (port freed); client: only the client"),
    ] = "property"


class SplittersQuery(_Request):
    all: Annotated[bool, Meta(description="false: only service splitters with a free port")] = False


class TagsQuery(_Request):
    tag: (
        Annotated[str, Meta(min_length=1, max_length=200, description="a tag name or id to look for")] | None
    ) = None


class ReservationRequest(_Request):
    """Reserve a port for a client not yet installed (F2). No ``box_id``: the nearest feasible box or building
    within ``radius`` is chosen; no ``port``: OZmap takes the first free port of the box (or of ``splitter_id``)."""

    code: Code
    lat: Latitude
    lng: Longitude
    name: Text = ""
    address: Text | None = None
    observation: Text | None = None
    box_id: OzmapId | None = None
    splitter_id: OzmapId | None = None
    port: Port | None = None
    radius: Radius | None = None


class AddressChangeRequest(_Request):
    """Step 1 of an address change (F5): feasibility and a reserved port at the new address."""

    lat: Latitude
    lng: Longitude
    address: Text | None = None
    box_id: OzmapId | None = None
    splitter_id: OzmapId | None = None
    port: Port | None = None
    radius: Radius | None = None


class AddressChangeCompletion(_Request):
    """Step 2 (after installation at the new address): move the client there, remove the old premises."""

    new_property_id: OzmapId


class BoxUpdateRequest(_Request):
    """Move the client to the box (and splitter/port) really used at installation (F6)."""

    box_id: OzmapId
    splitter_id: OzmapId | None = None
    port: Port | None = None


class ClientUpdateRequest(_Request):
    """Client data (name, observation) and premises data (address, position, observation)."""

    name: Text | None = None
    observation: Text | None = None
    address: Text | None = None
    lat: Latitude | None = None
    lng: Longitude | None = None
    property_observation: Text | None = None


class StatusRequest(_Request):
    status: Status


class BulkStatusRequest(_Request):
    codes: Annotated[list[Code], Meta(min_length=1, max_length=1000)]
    status: Status


class PowerRequest(_Request):
    """The client's read optical power (F9)."""

    dbm: Dbm


class OnuRequest(_Request):
    """ONU data (F10); fields left out keep their value."""

    serial_number: Annotated[str, Meta(max_length=64)] | None = None
    mac_address: Annotated[str, Meta(max_length=32)] | None = None
    pppoe_user: Annotated[str, Meta(max_length=128)] | None = None


class PendencyRequest(_Request):
    """A pendency (network or client fix) at a point, in a project given directly or through a box or client."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Text | None = None
    lat: Latitude | None = None
    lng: Longitude | None = None
    project_id: OzmapId | None = None
    box_id: OzmapId | None = None
    client_code: Code | None = None
    pendency_type: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    owner_id: OzmapId | None = None


class ProspectRequest(_Request):
    """A lead without feasibility; ``viable`` omitted = checked by feasibility at the point."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    lat: Latitude
    lng: Longitude
    phone: Annotated[str, Meta(max_length=40)] | None = None
    code: Code | None = None
    address: Text | None = None
    observation: Text | None = None
    viable: bool | None = None
    radius: Radius | None = None


# -- answers ---------------------------------------------------------------------------------------------------


class Problem(msgspec.Struct, omit_defaults=True):
    """Every 4xx/5xx answer: what went wrong, and the offending input field when there is one."""

    error: str
    field: str | None = None


class SplitterPorts(msgspec.Struct):
    id: str
    name: str | None
    is_drop: bool
    ports: int
    free_ports: list[int]
    blocked_ports: list[int]


class FeasibleSplitter(msgspec.Struct):
    id: str
    name: str | None
    free_ports: list[int]


class FeasibleBox(msgspec.Struct):
    """A box (CTO) or building with at least one free port on a service splitter, nearest first."""

    id: str
    kind: Literal["box", "building"]
    name: str | None
    distance_m: float | None
    lat: float | None
    lng: float | None
    free_ports: int
    splitters: list[FeasibleSplitter]


class UnfeasibleBox(msgspec.Struct):
    id: str
    kind: Literal["box", "building"]
    name: str | None
    distance_m: float | None
    reason: str


class Feasibility(msgspec.Struct):
    lat: float
    lng: float
    radius: float | None
    viable: bool
    boxes: list[FeasibleBox]
    buildings: list[FeasibleBox]
    unviable: list[UnfeasibleBox]


class BoxRef(msgspec.Struct):
    id: str
    kind: str | None
    name: str | None
    lat: float | None
    lng: float | None
    implanted: bool


class Reservation(msgspec.Struct):
    code: str
    client_id: str
    property_id: str
    box_id: str | None
    splitter_id: str | None
    splitter_name: str | None
    port: int | None
    implanted: bool


class ClientConnection(msgspec.Struct):
    """Where a client is connected (F7): its premises, box (populated), splitter and port."""

    code: str
    client_id: str
    client_name: str | None
    implanted: bool
    status: Status
    property_id: str | None
    address: str | None
    lat: float | None
    lng: float | None
    potency_read: float | None
    box: BoxRef | None
    splitter_id: str | None
    splitter_name: str | None
    port: int | None


class ClientState(msgspec.Struct):
    code: str
    client_id: str
    name: str | None
    implanted: bool
    status: Status
    serial_number: str
    mac_address: str
    pppoe_user: str


class Removal(msgspec.Struct):
    code: str
    client_id: str
    mode: Literal["property", "client"]
    properties_deleted: list[str]
    client_deleted: bool


class AddressChange(msgspec.Struct):
    code: str
    stage: Literal["reserved", "completed"]
    old_property_id: str | None
    new_property_id: str
    box_id: str | None
    splitter_id: str | None
    port: int | None


class BulkStatus(msgspec.Struct):
    status: Status
    updated: list[str]
    unknown: list[str]


class PowerHop(msgspec.Struct):
    """One element of the calculated path: the PON (its launch power) or a splitter (its loss on that port)."""

    kind: Literal["pon", "splitter"]
    id: str
    name: str | None
    port: int | None
    db: float


class PowerCheck(msgspec.Struct):
    """Read vs calculated power of one client; ``worse_by_db`` = calculated − read (positive = worse)."""

    code: str
    property_id: str | None
    read_dbm: float | None
    calculated_dbm: float | None
    worse_by_db: float | None
    threshold_db: float
    verdict: Literal["ok", "worse", "unknown"]
    reason: str
    path: list[PowerHop]


class PowerReport(msgspec.Struct):
    threshold_db: float
    checked: int
    unknown: int
    worse: list[PowerCheck]


class PonInfo(msgspec.Struct):
    id: str
    name: str | None
    olt_id: str
    olt_name: str | None
    slot: int
    pon: int
    potency: float | None


class PendencyCreated(msgspec.Struct):
    id: str
    name: str
    project_id: str
    pendency_type_id: str
    lat: float
    lng: float


class ProspectCreated(msgspec.Struct):
    id: str
    name: str
    viable: bool


TagOwner = Literal["client", "property", "box"]


class TagRef(msgspec.Struct):
    """A tag and where it is: on the client, on its premises or on its box."""

    id: str
    name: str | None
    on: TagOwner


class TagQuery(msgspec.Struct):
    code: str
    tags: list[TagRef]
    tag: str | None
    has_tag: bool | None
