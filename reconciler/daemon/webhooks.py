"""Authentication and decoding of webhook and on-demand requests. Pure: no I/O, the time is an argument.

A caller proves it knows a shared secret in one of two ways:

- **Signature** (for senders that can compute one): ``X-Reconciler-Timestamp: <unix seconds>`` and
  ``X-Reconciler-Signature: sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>.<raw body>"`` under the secret.
  The timestamp must be within :data:`REPLAY_WINDOW` seconds of ours, so a captured request cannot be replayed
  later; the signature covers the body, so it cannot be altered.
- **Bearer token** (for simple senders inside the pod or cluster): ``Authorization: Bearer <secret>``.
- **COS BE signature** (COS Business Engine's own webhooks, cosbe.md 4.5): ``X-COS-Signature: sha256=<hex>``, the
  HMAC-SHA256 of the raw body under the secret (the COS system's ``webhook-secret``). COS sends no timestamp
  header, so there is no replay window: a replayed event can only make the daemon read that object from COS
  again (the event carries no data the daemon applies), and COS itself redelivers an event for minutes.

Comparisons use :func:`hmac.compare_digest` (constant time). Several secrets may be accepted at once (the
daemon's ``webhook-secret`` and the source system's own), which also allows rotating a secret without downtime.

Body of ``POST /webhooks/{integration}/{entity}``: ``{"ids": ["<source id>", ...]}`` (numbers are accepted and
turned into strings; other keys are ignored, since senders often add their own), or a COS BE change event
``{"id", "type", "created", "entity": "Object", "data": {"id": "<object id>", ...}}``, whose ``data.id`` is the
source id. Events about anything but an object (COS's order events name no object) queue nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

__all__ = [
    "COS_SIGNATURE_HEADER",
    "MAX_IDS",
    "REPLAY_WINDOW",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookBody",
    "cos_sign",
    "decode_ids",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Reconciler-Signature"
TIMESTAMP_HEADER = "X-Reconciler-Timestamp"
COS_SIGNATURE_HEADER = "X-COS-Signature"
#: The entity of a COS BE change event that names a record to sync.
COS_OBJECT_ENTITY = "Object"
#: Seconds a signed request stays valid, either side of our clock.
REPLAY_WINDOW = 300
#: Most ids one webhook may carry (a bigger batch is a full resync in disguise: use POST /sync).
MAX_IDS = 10_000


class WebhookBody(msgspec.Struct):
    ids: Annotated[list[str | int], msgspec.Meta(max_length=MAX_IDS)]


class ChangeEvent(msgspec.Struct):
    """A COS BE webhook event (cosbe.md 4.5); only ``entity`` and ``data.id`` matter here."""

    data: dict[str, Any]
    entity: str | None = None
    type: str = ""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Reconciler-Signature`` value of ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def cos_sign(secret: str, body: bytes) -> str:
    """The ``X-COS-Signature`` value of ``body`` (HMAC-SHA256 of the raw body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], *, now: float) -> str | None:
    """None when the request is authentic; otherwise why not (safe to show: it never quotes a secret).

    ``headers`` must be case-insensitive (aiohttp's are) or use the canonical names.
    """
    if not secrets:
        return "webhooks are disabled: no webhook-secret is configured"
    authorization = headers.get("Authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "Authorization must be 'Bearer <secret>'"
        if any(hmac.compare_digest(token.strip().encode(), s.encode()) for s in secrets):
            return None
        return "bad bearer token"
    cos_signature = headers.get(COS_SIGNATURE_HEADER, "")
    if cos_signature:
        if any(hmac.compare_digest(cos_signature.encode(), cos_sign(s, body).encode()) for s in secrets):
            return None
        return f"bad {COS_SIGNATURE_HEADER}"
    signature = headers.get(SIGNATURE_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if not signature or not stamp:
        return f"missing {SIGNATURE_HEADER}/{TIMESTAMP_HEADER} (or Authorization: Bearer) headers"
    try:
        sent_at = int(stamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not Unix seconds"
    if abs(now - sent_at) > REPLAY_WINDOW:
        return f"{TIMESTAMP_HEADER} is more than {REPLAY_WINDOW} s away from our clock"
    if any(hmac.compare_digest(signature.encode(), sign(s, stamp, body).encode()) for s in secrets):
        return None
    return "bad signature"


def decode_ids(body: bytes) -> list[str]:
    """The ids of a webhook body, as strings, without duplicates; ValueError with a readable reason.

    A COS BE change event gives its object's id, or nothing when it is about something else (an order).
    """
    try:
        raw = msgspec.json.decode(body)
        if isinstance(raw, dict) and "ids" not in raw and "data" in raw:
            event = msgspec.convert(raw, ChangeEvent)
            object_id = event.data.get("id")
            if event.entity != COS_OBJECT_ENTITY:
                return []
            if not isinstance(object_id, str) or not object_id:
                raise ValueError("a COS object event needs data.id")
            return [object_id]
        parsed = msgspec.convert(raw, WebhookBody)
    except msgspec.DecodeError as exc:
        raise ValueError(f'body must be {{"ids": [...]}} or a COS BE event: {exc}') from None
    ids = [str(i) for i in parsed.ids]
    if any(not i for i in ids):
        raise ValueError("ids must not be empty strings")
    return list(dict.fromkeys(ids))
