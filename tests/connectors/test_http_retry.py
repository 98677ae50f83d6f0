"""Retry, backoff, Retry-After, idempotency and error mapping of the shared transport.

End-to-end cases run against the IXC sandbox with injected faults and count attempts in its request log; the
policy pieces (Retry-After parsing, jitter bounds, token bucket) are checked as plain functions.
"""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.config import HttpSettings
from reconciler.connectors.http import (
    ConnectFailed,
    Response,
    RetryPolicy,
    ServiceUnavailable,
    TokenBucket,
    Transport,
    excerpt_text,
    parse_retry_after,
)
from reconciler.connectors.ixc.connector import IxcConnector
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ixc import DEFAULT_TOKEN, HTML_ERROR_PAGE, IxcStore, basic_auth, create_app
from tests.connectors.conftest import FAST, add_fault, api_requests, system, url_of

pytestmark = pytest.mark.anyio

PROJECT = {"nome": "Centro", "latitude": "-27.59", "longitude": "-48.55", "zoom": "15", "status": "A"}


class Env:
    def __init__(self, store: IxcStore, faults: Faults, url: str, session: aiohttp.ClientSession) -> None:
        self.store, self.faults, self.url, self.session = store, faults, url, session

    def connector(self, **http: object) -> IxcConnector:
        return IxcConnector(
            system("ixc", self.url, DEFAULT_TOKEN, **http), self.session, rng=random.Random(7)
        )

    def transport(self, *, headers: dict[str, str] | None = None) -> Transport:
        return Transport(
            system="ixc",
            session=self.session,
            base_url=self.url + "/webservice/v1",
            settings=FAST,
            headers=headers if headers is not None else {"Authorization": basic_auth(DEFAULT_TOKEN)},
            secrets=(DEFAULT_TOKEN,),
        )


@pytest.fixture
async def env(session: aiohttp.ClientSession) -> AsyncIterator[Env]:
    store = IxcStore()
    store.load("df_projeto", [{"id": "3", **PROJECT}])
    faults = Faults(html_page=HTML_ERROR_PAGE, html_status=200)
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        yield Env(store, faults, url_of(server), session)


async def projects(connector: IxcConnector) -> list[str]:
    return [r.id async for page in connector.stream("df_projeto") for r in page]


async def create_project(connector: IxcConnector) -> str:
    return await connector.create("df_projeto", dict(PROJECT))


def created_rows(env: Env) -> int:
    return len(env.store.all("df_projeto")) - 1


# -- idempotent requests: retried ---------------------------------------------------------------------------------


async def test_503_is_retried_until_it_succeeds(env: Env) -> None:
    add_fault(env.faults, "error", status=503, count=2)
    connector = env.connector()
    assert await projects(connector) == ["3"]
    assert [e.status for e in api_requests(env.faults)] == [503, 503, 200]
    stats = connector.statistics()
    assert stats["requests"] == 3 and stats["retries"] == 2 and stats["errors.transient"] == 2


async def test_429_is_retried_honouring_retry_after(env: Env) -> None:
    add_fault(env.faults, "429", seconds=0, count=2)
    connector = env.connector()
    assert await projects(connector) == ["3"]
    logged = api_requests(env.faults)
    assert [e.status for e in logged] == [429, 429, 200]
    assert connector.statistics()["errors.rate_limited"] == 2


async def test_retries_are_bounded(env: Env) -> None:
    add_fault(env.faults, "error", status=502)
    with pytest.raises(errors.TransientRemoteError) as caught:
        await projects(env.connector())
    assert caught.value.status == 502
    assert str(caught.value).startswith("ixc: POST /webservice/v1/df_projeto → 502: ")
    assert len(api_requests(env.faults)) == 1 + FAST.retries


async def test_reset_timeout_and_malformed_answers_of_a_list_are_retried(env: Env) -> None:
    add_fault(env.faults, "reset", count=1)
    add_fault(env.faults, "timeout", seconds=1.0, count=1)
    add_fault(env.faults, "malformed", count=1)
    connector = env.connector(timeout=0.2)
    assert await projects(connector) == ["3"]
    assert [e.fault for e in api_requests(env.faults)] == ["reset", "timeout", "malformed", ""]
    assert connector.statistics()["retries"] == 3


# -- creates: retried only when the server surely did not act ---------------------------------------------------


@pytest.mark.parametrize(("kind", "options"), [("reset", {}), ("error", {"status": 503}), ("malformed", {})])
async def test_create_is_not_retried_once_it_may_have_reached_the_server(
    env: Env, kind: str, options: dict[str, object]
) -> None:
    add_fault(env.faults, kind, method="POST", count=1, **options)
    with pytest.raises(errors.TransientRemoteError):
        await create_project(env.connector())
    assert len(api_requests(env.faults, "POST")) == 1


async def test_create_timeout_is_not_retried(env: Env) -> None:
    add_fault(env.faults, "timeout", method="POST", seconds=1.0, count=1)
    with pytest.raises(errors.TransientRemoteError, match="timeout"):
        await create_project(env.connector(timeout=0.2))
    assert len(api_requests(env.faults, "POST")) == 1


async def test_create_is_retried_after_429(env: Env) -> None:
    add_fault(env.faults, "429", method="POST", seconds=0, count=1)
    new_id = await create_project(env.connector())
    assert [e.status for e in api_requests(env.faults, "POST")] == [429, 200]
    assert env.store.get("df_projeto", new_id) is not None
    assert created_rows(env) == 1


async def test_create_is_retried_when_the_connection_is_refused(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = IxcConnector(system("ixc", f"http://127.0.0.1:{port}", DEFAULT_TOKEN), session)
    with pytest.raises(ConnectFailed, match="cannot connect") as caught:
        await create_project(connector)
    stats = connector.statistics()
    assert stats["requests"] == 1 + FAST.retries and stats["errors.connect"] == 1 + FAST.retries
    assert DEFAULT_TOKEN not in str(caught.value)


# -- status mapping -----------------------------------------------------------------------------------------------


async def test_status_mapping_and_messages(env: Env) -> None:
    transport = env.transport()
    with pytest.raises(errors.NotFound) as not_found:  # a GET without "ixcsoft: listar"
        await transport.request("GET", "/df_projeto", params={"token": DEFAULT_TOKEN}, decode=lambda r: r)
    assert str(not_found.value) == "ixc: GET /webservice/v1/df_projeto → 404: 404 Not Found"
    with pytest.raises(errors.TerminalRemoteError) as bad_scheme:
        await env.transport(headers={"Authorization": "Bearer x"}).request(
            "GET", "/df_projeto", decode=lambda r: r
        )
    assert bad_scheme.value.status == 400 and not isinstance(bad_scheme.value, errors.AuthError)
    with pytest.raises(errors.AuthError):
        await env.transport(headers={}).request("GET", "/df_projeto", decode=lambda r: r)
    assert len(api_requests(env.faults)) == 3  # terminal answers are never retried


def test_scrub_blanks_credentials() -> None:
    transport = Transport(
        system="x",
        session=None,  # type: ignore[arg-type]  # never used: nothing is sent
        base_url="http://h/api",
        settings=HttpSettings(),
        headers={},
        secrets=("tok-123", ""),
    )
    err = transport.error(errors.TerminalRemoteError, "GET", "/a", "400", b'{"message": "bad key tok-123"}')
    assert "tok-123" not in str(err) and str(err) == 'x: GET /api/a → 400: {"message": "bad key ***"}'


def test_excerpt_strips_html_and_caps_length() -> None:
    assert excerpt_text(HTML_ERROR_PAGE) == "Ocorreu um erro ao processar. Contate o suporte IXC Soft."
    assert len(excerpt_text(b"x" * 5000)) == errors.BODY_EXCERPT_MAX


# -- policy pieces --------------------------------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    later = (now + timedelta(seconds=10)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(later, now=lambda: now) == 10.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    policy = RetryPolicy(retries=4, backoff=0.5, backoff_max=5.0)
    rng = random.Random(1)
    assert policy.delay(errors.RateLimited("x", "m", retry_after=2.0), 0, rng) == 2.0
    assert policy.delay(errors.RateLimited("x", "m", retry_after=600.0), 0, rng) == 5.0
    assert policy.delay(ServiceUnavailable("x", "m", retry_after=1.0), 3, rng) == 1.0


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    policy = RetryPolicy(retries=10, backoff=0.5, backoff_max=5.0)
    rng = random.Random(3)
    exc = errors.TransientRemoteError("x", "m")
    for attempt in range(8):
        cap = min(5.0, 0.5 * 2**attempt)
        delays = [policy.delay(exc, attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # really spread over the window


def test_which_failures_are_retried() -> None:
    policy = RetryPolicy(retries=2)
    transient = errors.TransientRemoteError("x", "m")
    refused = ConnectFailed("x", "m")
    limited = errors.RateLimited("x", "m", retry_after=None)
    terminal = errors.TerminalRemoteError("x", "m")
    assert policy.should_retry(transient, 0, idempotent=True)
    assert not policy.should_retry(transient, 2, idempotent=True)
    assert not policy.should_retry(transient, 0, idempotent=False)
    assert policy.should_retry(refused, 0, idempotent=False)
    assert policy.should_retry(limited, 1, idempotent=False)
    assert not policy.should_retry(terminal, 0, idempotent=True)


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    now = [100.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    now[0] += 1.5  # three tokens' worth refilled, two were owed
    assert bucket.reserve() == 0.0
    assert TokenBucket(0.0).reserve() == 0.0


def test_response_is_a_plain_value() -> None:
    assert Response(200, b"{}", {}).status == 200
