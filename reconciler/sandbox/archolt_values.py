"""Scalar primitives of the ArchOLT sandbox: errors with stable codes, Portuguese messages, time, knobs.

Contract: ``/work/shared/apis/archolt.md`` (project-defined, every part of it [assume] unless tagged [seed]).

- Errors (archolt.md 2): ``{"error": {"code", "message", "details"}}``; ``code`` is stable, ``message`` is
  Portuguese and only for people. :class:`ApiError` carries all three plus the HTTP status of the code.
- JSON body readers (``body_*``): a wrong type or a missing required field is 400 ``invalid_parameter`` naming
  the field.
- Timestamps (archolt.md 2, A11): stored as whole epoch seconds (UTC), shown as ISO 8601 with the server's local
  offset (``2025-06-03T11:22:31-03:00``) or, with the ``naive_local_timestamps`` knob, as naive local time
  (``2025-06-03 11:22:31``). Whole seconds keep the keyset pair ``(updated_at, id)`` exact: what a client reads
  back is exactly what the server compares.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final

import msgspec

SERVER_ZONE_NAME: Final = "America/Sao_Paulo"
"""The fake server's zone (archolt.md 2: naive timestamps are local time in America/Sao_Paulo)."""


def _server_zone() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    except ImportError:  # pragma: no cover - zoneinfo is stdlib since 3.9
        return timezone(timedelta(hours=-3))
    try:
        return ZoneInfo(SERVER_ZONE_NAME)
    except ZoneInfoNotFoundError:  # no tz database: São Paulo has had no DST since 2019
        return timezone(timedelta(hours=-3), "-03")


SERVER_ZONE: Final = _server_zone()

SERIAL_PATTERN: Final = re.compile(r"^[A-Z]{4}[0-9A-F]{8}$")
"""Vendor serial: 4 letters + 8 hex digits, e.g. ``ZTEGC8A1B2C3`` (archolt.md 3)."""

MAX_ONU_INDEX: Final = 127
DEFAULT_PER_PAGE: Final = 100
MAX_PER_PAGE: Final = 500
DEFAULT_EVENT_LIMIT: Final = 100
MAX_EVENT_LIMIT: Final = 1000
EVENT_RETENTION_SECONDS: Final = 7 * 86400
TOMBSTONE_SECONDS: Final = 30 * 86400

VENDORS: Final = ("Huawei", "ZTE", "Fiberhome", "Nokia", "Parks", "Datacom", "VSOL")
PON_TYPES: Final = ("GPON", "XGS-PON")
ONU_STATUSES: Final = ("provisioned", "deprovisioned")
OPER_STATES: Final = ("online", "offline", "los", "dying_gasp", "unknown")
EVENT_TYPES: Final = (
    "onu.provisioned",
    "onu.cto_changed",
    "onu.updated",
    "onu.deprovisioned",
    "olt.updated",
    "cto.upserted",
    "cto.deleted",
)

#: error code → (HTTP status, Portuguese message template)
MESSAGES: Final[dict[str, tuple[int, str]]] = {
    "invalid_json": (400, "Corpo da requisição não é um JSON válido"),
    "invalid_parameter": (400, "Parâmetro inválido: {parameter}"),
    "unauthenticated": (401, "Token de acesso ausente ou inválido"),
    "forbidden": (403, "O token não tem permissão de escrita"),
    "olt_not_found": (404, "OLT não encontrada"),
    "onu_not_found": (404, "ONU não encontrada"),
    "cto_not_found": (404, "CTO não encontrada"),
    "serial_already_provisioned": (409, "O serial {serial} já está provisionado em outra ONU"),
    "cto_in_use": (409, "A CTO possui ONUs provisionadas vinculadas"),
    "cto_name_ambiguous": (409, "Existe mais de uma CTO com o nome {name}"),
    "onu_deprovisioned": (409, "A ONU está desprovisionada"),
    "cursor_expired": (410, "O cursor informado é mais antigo que a retenção de eventos"),
    "cto_required": (422, "A OLT exige CTO na ativação do cliente"),
    "cto_wrong_olt": (422, "A CTO pertence a outra OLT"),
    "pon_full": (422, "Não há posição livre nesta PON"),
    "invalid_serial": (422, "Serial inválido: {serial}"),
    "rate_limited": (429, "Limite de requisições excedido, tente novamente em instantes"),
}


class ApiError(Exception):
    """An ArchOLT error answer: ``code`` (stable), Portuguese ``message``, ``details``; status from the code."""

    def __init__(self, code: str, details: dict[str, Any] | None = None, **fields: Any) -> None:
        status, template = MESSAGES[code]
        self.code = code
        self.status = status
        self.details: dict[str, Any] = details if details is not None else {}
        self.message = template.format_map(_Lenient({**self.details, **fields}))
        super().__init__(f"{status} {code}: {self.message}")

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def bad_parameter(parameter: str, **details: Any) -> ApiError:
    """400 ``invalid_parameter`` naming the parameter (and why, in ``details``)."""
    return ApiError("invalid_parameter", {"parameter": parameter, **details})


class ArcholtKnobs(msgspec.Struct, forbid_unknown_fields=True):
    """Data and behaviour knobs (archolt.md 2, 6); change them with ``POST /_sandbox/knobs``."""

    naive_local_timestamps: bool = False
    """Show timestamps as ``2025-06-03 11:22:31`` (local, no offset) instead of ISO 8601 with offset."""
    rate_limit: float = 10.0
    """Requests per second per token (archolt.md A13); 0 disables the limiter."""
    rate_burst: int = 20
    """Bucket size of the per-token limiter."""
    mutate_onus_between_pages: int = 0
    """On every follow-up ``GET onus`` page (``page > 1`` or ``after_id``), first edit this many provisioned ONUs
    (the least recently updated ones): their ``description`` changes, ``updated_at`` bumps, an event is written."""


# -- JSON body readers (a wrong type or a missing required field → 400 invalid_parameter) -----------------------------------------------------------------------------------------------


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError("invalid_json", {"expected": "object"})
    return body


def body_only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_parameter(unknown[0], reason="unknown field")


def body_int(
    body: dict[str, Any], key: str, *, required: bool = False, default: int | None = None
) -> int | None:
    if key not in body or body[key] is None:
        if required:
            raise bad_parameter(key, reason="required")
        return default
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_parameter(key, reason="integer expected")
    return value


def body_req_int(body: dict[str, Any], key: str) -> int:
    value = body_int(body, key, required=True)
    assert value is not None
    return value


def body_str(
    body: dict[str, Any], key: str, *, required: bool = False, default: str | None = None
) -> str | None:
    if key not in body or body[key] is None:
        if required:
            raise bad_parameter(key, reason="required")
        return default
    value = body[key]
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_parameter(key, reason="non-empty string expected" if required else "string expected")
    return value


def body_number(body: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    if key not in body or body[key] is None:
        if required:
            raise bad_parameter(key, reason="required")
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_parameter(key, reason="number expected")
    return float(value)


def body_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    if key not in body:
        return default
    value = body[key]
    if not isinstance(value, bool):
        raise bad_parameter(key, reason="boolean expected")
    return value


# -- time ---------------------------------------------------------------------------------------------------------


def to_epoch(moment: datetime) -> int:
    """Whole epoch seconds of ``moment`` (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def format_time(epoch: int | None, *, naive: bool = False) -> str | None:
    """Epoch seconds → the API spelling (local offset, or naive local with the knob); None stays None."""
    if epoch is None:
        return None
    local = datetime.fromtimestamp(epoch, SERVER_ZONE)
    if naive:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return local.isoformat(timespec="seconds")


def parse_time(text: str) -> int:
    """An ISO 8601 timestamp (offset, ``Z`` or naive local) → epoch seconds (floored); ValueError otherwise."""
    text = text.strip()
    if not text:
        raise ValueError("empty timestamp")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SERVER_ZONE)
    return math.floor(moment.timestamp())


def time_value(value: Any, default: int) -> int:
    """A loaded timestamp: string (parsed), number (epoch seconds), None (``default``)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return math.floor(value)
    if isinstance(value, str):
        return parse_time(value)
    raise ValueError(f"not a timestamp: {value!r}")


def optional_time(value: Any) -> int | None:
    """Like :func:`time_value`, None when absent."""
    return None if value is None or value == "" else time_value(value, 0)
