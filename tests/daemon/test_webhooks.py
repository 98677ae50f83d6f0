"""Webhook authentication (signature with a replay window, or bearer token) and body decoding."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from multidict import CIMultiDict

from reconciler.daemon import webhooks

SECRET = "s3cret-value"
NOW = 1_700_000_000.0
BODY = b'{"ids": ["a", "b"]}'


def signed(body: bytes = BODY, *, secret: str = SECRET, at: float = NOW) -> CIMultiDict[str]:
    stamp = str(int(at))
    return CIMultiDict(
        {"x-reconciler-timestamp": stamp, "x-reconciler-signature": webhooks.sign(secret, stamp, body)}
    )


def test_a_correct_signature_within_the_window_is_accepted() -> None:
    assert webhooks.verify(signed(), BODY, [SECRET], now=NOW + 299) is None
    assert webhooks.verify(signed(), BODY, ["other", SECRET], now=NOW) is None  # rotation: any secret


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # echo -n '1700000000.{"ids": ["a", "b"]}' | openssl dgst -sha256 -hmac s3cret-value
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert webhooks.sign(SECRET, 1700000000, BODY) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (signed(), b'{"ids": ["a", "c"]}', "bad signature"),  # body altered
        (signed(secret="wrong"), BODY, "bad signature"),
        (signed(at=NOW - 301), BODY, "more than 300 s away"),  # replayed later
        (signed(at=NOW + 301), BODY, "more than 300 s away"),
        (
            CIMultiDict({"X-Reconciler-Timestamp": "soon", "X-Reconciler-Signature": "sha256=00"}),
            BODY,
            "Unix",
        ),
        (CIMultiDict(), BODY, "missing"),
        (CIMultiDict({"Authorization": "Bearer nope"}), BODY, "bad bearer token"),
        (CIMultiDict({"Authorization": f"Basic {SECRET}"}), BODY, "must be 'Bearer"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(headers: CIMultiDict[str], body: bytes, reason: str) -> None:
    problem = webhooks.verify(headers, body, [SECRET], now=NOW)
    assert problem is not None and reason in problem
    assert SECRET not in problem


def test_a_bearer_token_is_accepted() -> None:
    assert webhooks.verify(CIMultiDict({"authorization": f"Bearer {SECRET}"}), b"", [SECRET], now=NOW) is None


def test_without_a_secret_nothing_is_accepted() -> None:
    problem = webhooks.verify(signed(), BODY, [], now=NOW)
    assert problem is not None and "disabled" in problem


def test_ids_are_decoded_as_unique_strings() -> None:
    assert webhooks.decode_ids(b'{"ids": ["b", 7, "b"], "sender": "ozmap"}') == ["b", "7"]


@pytest.mark.parametrize("body", [b"", b"[]", b'{"ids": "a"}', b'{"ids": [""]}', b'{"ids": [true]}'])
def test_bad_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        webhooks.decode_ids(body)
