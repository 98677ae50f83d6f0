"""Decoding Vetro answers and mapping features to records (vetro.md 2.1-2.4, 4).

The decoder is lenient about the envelope [assume, V1]: ``{"success": true, "result": …}`` (v2, and v3 by
default) or a bare body (``{"features": [...]}``, ``{"plans": [...]}``, ``{"layers": [...]}`` or a bare list).
``result`` may itself hold ``{"plans": [...]}`` (``GET plans``, vetro.md 4.1). ``success: false`` is a refusal
(Terminal); an HTML page (proxy error) or truncated JSON is Transient; a body of the wrong shape is Terminal.

A service location becomes a flat record: ``id`` = ``x-vetro.vetro_id``; ``feature_id``, ``plan_id``,
``layer_id``, ``project_id``, ``created_time``, ``last_edited_time`` from ``x-vetro``; ``lon``/``lat`` from a
``Point`` geometry; every attribute as ``properties.<label>`` with the label kept verbatim (labels are opaque
strings, vetro.md 2.2). Timestamps are rewritten as RFC 3339 UTC with milliseconds and ``Z`` so that they sort
as strings; ``updated_at`` = ``last_edited_time``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from reconciler import errors
from reconciler.connectors.http import Response
from reconciler.model import Fields, Record

T = TypeVar("T")

PROPERTY_PREFIX = "properties."

#: (error class, what, body) → the error to raise; the client binds method, path and credential scrubbing.
MakeError = Callable[[type[errors.RemoteError], str, bytes | str], errors.RemoteError]


class XVetro(msgspec.Struct, frozen=True):
    """The ``x-vetro`` block of a feature."""

    vetro_id: str
    feature_id: int | None = None
    layer_id: int | None = None
    plan_id: int | None = None
    project_id: int | None = None
    created_time: str | None = None
    last_edited_time: str | None = None


class Geometry(msgspec.Struct, frozen=True):
    type: str
    coordinates: Any = None


class Feature(msgspec.Struct, frozen=True):
    """A GeoJSON feature as Vetro serves it."""

    x_vetro: XVetro = msgspec.field(name="x-vetro")
    geometry: Geometry | None = None
    properties: dict[str, Any] = {}
    type: str = "Feature"


class Plan(msgspec.Struct, frozen=True):
    id: int
    label: str = ""
    project_id: int | None = None
    project_label: str | None = None


class Attribute(msgspec.Struct, frozen=True):
    html_input_type: str | None = None
    permitted_values: list[str] | None = None
    is_hidden: bool = False


class Layer(msgspec.Struct, frozen=True):
    id: int
    label: str = ""
    geometry_type: str | None = None
    available_attributes: dict[str, Attribute] = {}


_ABSENT = msgspec.Raw(b"")


class _Envelope(msgspec.Struct):
    """Every shape an answer may take; a member absent from the body stays an empty ``Raw``."""

    success: bool | None = None
    message: str | None = None
    result: msgspec.Raw = _ABSENT
    features: msgspec.Raw = _ABSENT
    plans: msgspec.Raw = _ABSENT
    layers: msgspec.Raw = _ABSENT


_ENVELOPE = msgspec.json.Decoder(_Envelope)
FEATURES: msgspec.json.Decoder[list[Feature]] = msgspec.json.Decoder(list[Feature])
PLANS: msgspec.json.Decoder[list[Plan]] = msgspec.json.Decoder(list[Plan])
LAYERS: msgspec.json.Decoder[list[Layer]] = msgspec.json.Decoder(list[Layer])


def decode(response: Response, key: str | None, decoder: msgspec.json.Decoder[T], fail: MakeError) -> T:
    """The data of an answer: ``result`` (or its ``key`` member), else the bare ``key`` member or bare list."""
    body = response.body
    start = body.lstrip()[:1]
    if start == b"<":
        raise fail(errors.TransientRemoteError, "HTML page instead of JSON", body)
    try:
        raw = _data(body, key, fail) if start == b"{" else body
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise fail(errors.TerminalRemoteError, f"unexpected answer ({exc})", b"") from exc
    except msgspec.DecodeError as exc:
        raise fail(errors.TransientRemoteError, "malformed JSON", body) from exc


def _data(body: bytes, key: str | None, fail: MakeError) -> bytes:
    envelope = _ENVELOPE.decode(body)
    if envelope.success is False:
        raise fail(errors.TerminalRemoteError, "refused", envelope.message or "(no message)")
    if len(envelope.result):
        raw = bytes(envelope.result)
        if key is not None and raw.lstrip()[:1] == b"{":
            inner: msgspec.Raw = getattr(_ENVELOPE.decode(raw), key)
            if len(inner):
                return bytes(inner)
        return raw
    bare: msgspec.Raw = getattr(envelope, key) if key is not None else _ABSENT
    if not len(bare):
        raise fail(errors.TerminalRemoteError, "answer without result", body)
    return bytes(bare)


def parse_time(text: str) -> str | None:
    """An RFC 3339 timestamp (any offset; none = UTC) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; None when unreadable."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def canonical_time(text: str | None) -> str | None:
    """:func:`parse_time` of ``text``; empty or unreadable text is returned as is."""
    return (parse_time(text) or text) if text else text


def feature_record(feature: Feature) -> Record:
    """A service location as a flat record (see the module docstring)."""
    meta = feature.x_vetro
    lon = lat = None
    geometry = feature.geometry
    if geometry is not None and geometry.type == "Point" and isinstance(geometry.coordinates, list):
        coords = geometry.coordinates
        if len(coords) >= 2:
            lon, lat = coords[0], coords[1]
    edited = canonical_time(meta.last_edited_time)
    fields: Fields = {
        "feature_id": meta.feature_id,
        "plan_id": meta.plan_id,
        "layer_id": meta.layer_id,
        "project_id": meta.project_id,
        "created_time": canonical_time(meta.created_time),
        "last_edited_time": edited,
        "lon": lon,
        "lat": lat,
    }
    for label, value in feature.properties.items():
        fields[PROPERTY_PREFIX + label] = value
    return Record(id=meta.vetro_id, fields=fields, updated_at=edited or "")


def plan_record(plan: Plan) -> Record:
    fields: Fields = {"label": plan.label, "project_id": plan.project_id, "project_label": plan.project_label}
    return Record(id=str(plan.id), fields=fields)
