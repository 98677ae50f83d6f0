"""Logging setup: JSON lines and the human format, and secrets redacted wherever they hide in a record."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from reconciler import logs
from reconciler.config import Secret, SecretRef, load
from tests.integration.conftest import IXC_TOKEN

SECRET = "tok-9f8e7d6c5b4a"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    yield io.StringIO()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "reconciler"]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_extra_fields(stream: io.StringIO) -> None:
    logs.setup("json", stream=stream)
    logging.getLogger("reconciler.daemon").info("cycle %s", "ok", extra={"entity": "boxes", "changes": 3})
    (line,) = lines(stream)
    event = msgspec.json.decode(line)
    assert event["message"] == "cycle ok" and event["level"] == "info"
    assert event["logger"] == "reconciler.daemon" and event["time"].endswith("+00:00")
    assert (event["entity"], event["changes"]) == ("boxes", 3)


def test_the_human_format_is_one_readable_line(stream: io.StringIO) -> None:
    logs.setup("human", stream=stream, level="DEBUG")
    logging.getLogger("reconciler.daemon").debug("ozmap-ixc/boxes: full cycle ok")
    (line,) = lines(stream)
    assert line.endswith("DEBUG reconciler.daemon: ozmap-ixc/boxes: full cycle ok")


def test_secrets_are_redacted_in_messages_extras_and_tracebacks(stream: io.StringIO) -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    logs.setup("json", secrets=[SECRET, encoded, "ab"], stream=stream)
    log = logging.getLogger("reconciler.test")
    log.warning("token %s in args", SECRET, extra={"url": f"http://x/?key={SECRET}"})
    log.warning("basic header value %s", encoded)
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        log.exception("boom")
    log.warning("a short secret like ab is left alone")
    text = stream.getvalue()
    assert SECRET not in text and encoded not in text
    events = [msgspec.json.decode(line) for line in lines(stream)]
    assert events[0]["message"] == "token *** in args" and events[0]["url"] == "http://x/?key=***"
    assert "failed with ***" in events[2]["exception"]
    assert "like ab is" in events[3]["message"]


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Basic dXNlcjpwYXNz",
        "{'Authorization': 'Bearer abc.def.ghi'}",
        '"authorization": "raw-ozmap-key"',
        "authorization=token xyz",
    ],
)
def test_authorization_header_values_are_redacted(text: str) -> None:
    redacted = logs.RedactingFilter().redact(f"request headers {text} sent")
    assert "***" in redacted and redacted.endswith(" sent")
    for value in ("dXNlcjpwYXNz", "abc.def.ghi", "raw-ozmap-key", "xyz"):
        assert value not in redacted


def test_every_configured_secret_is_collected(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "c.toml").write_text(
        '[systems.ixc]\nkind = "ixc"\nurl = "http://x"\nsecret = { env = "IXC" }\n'
        'webhook-secret = { env = "IXC_HOOK" }\n[daemon]\nwebhook-secret = { env = "HOOK" }\n'
    )
    cfg = load(folder / "c.toml", environ={"IXC": IXC_TOKEN, "IXC_HOOK": "hook-1234", "HOOK": "hook-5678"})
    values = logs.secret_values(cfg)
    assert {IXC_TOKEN, base64.b64encode(IXC_TOKEN.encode()).decode(), "hook-1234", "hook-5678"} <= set(values)
    assert cfg.webhook_secret == Secret("hook-5678")
    assert cfg.daemon.webhook_secret == SecretRef(env="HOOK")


def test_setup_replaces_its_own_handler(stream: io.StringIO) -> None:
    logs.setup("json", stream=io.StringIO())
    logs.setup("json", stream=stream)
    assert [h.get_name() for h in logging.getLogger().handlers].count("reconciler") == 1
