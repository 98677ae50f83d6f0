"""Issue 10.4: bad rule files and configs stop with one ``file:line`` message and exit 1 before any request;
bad records are quarantined with their reason, listed in the report, and the rest of the cycle goes on.

Rule and config errors go through the real CLI (``reconciler.cli.main``, in a worker thread so this test's
event loop keeps serving the sandboxes and can prove that not a single request reached them). Bad records live
in the hand-built worlds of ``tests/integration`` (imported, not copied).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import anyio
import msgspec
import pytest

from reconciler import cli
from reconciler.engine import Engine
from reconciler.rules import loading
from tests.integration.clients_world import IXC_B1, S1, World
from tests.integration.conftest import (
    IXC_TOKEN,
    OZMAP_KEY,
    Sandboxes,
    oid,
    ozmap_box,
    ozmap_splitter,
    sandboxes,
)

__all__ = ["sandboxes"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.anyio


async def run_cli(*args: str) -> tuple[int, str, str]:
    """``reconciler ARGS`` in a worker thread (its own event loop); returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return cli.main(list(args))

    code = await anyio.to_thread.run_sync(call)
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------------------------- rule files


def _line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in the rule file")


#: case → (text to find in boxes.toml, its replacement, what the message must say); the error is expected on
#: the last line of the replacement (the table header for a misnamed field table)
RULE_ERRORS = {
    "TOML syntax": ('[fields.descricao]\nfrom = "name"', '[fields.descricao]\nfrom = "name', "invalid TOML"),
    "unknown key": (
        '[fields.descricao]\nfrom = "name"',
        '[fields.descricao]\nfrm = "name"',
        "unknown key 'frm'",
    ),
    "wrong type": ("incremental = true", 'incremental = "yes"', "incremental"),
    "unknown source field": (
        '[fields.descricao]\nfrom = "name"',
        '[fields.descricao]\nfrom = "nmae"',
        "nmae",
    ),
    "bad expression": (
        'filter = "implanted and service_splitters > 0"',
        'filter = "implanted and and service_splitters > 0"',
        "filter",
    ),
    "unknown transform": ('transform = "int_str"', 'transform = "int_string"', "int_string"),
    "unknown lookup": ('lookup = "project"', 'lookup = "projet"', "projet"),
    "unknown target field": ('[fields.status]\nvalue = "A"', '[fields.estado]\nvalue = "A"', "estado"),
}


@pytest.mark.parametrize("case", list(RULE_ERRORS))
async def test_a_bad_rule_file_is_one_file_line_message_exit_1_and_nothing_is_sent(
    case: str, sandboxes: Sandboxes
) -> None:
    find, replace, says = RULE_ERRORS[case]
    rules = sandboxes.tmp / "rules"
    shutil.copytree(loading.builtin_rules_dir(), rules, dirs_exist_ok=True)
    path = rules / "ozmap-ixc" / "boxes.toml"
    text = path.read_text()
    assert find in text
    bad = text.replace(find, replace, 1)
    path.write_text(bad)
    cfg = sandboxes.config(entities=None)
    cfg.path.write_text(
        cfg.path.read_text().replace(
            "[integrations.ozmap-ixc]\n", '[integrations.ozmap-ixc]\nrules = "rules"\n'
        )
    )
    needle = {"TOML syntax": 'from = "name', "unknown target field": "[fields.estado]"}.get(case)
    line = _line_of(bad, needle or replace.splitlines()[-1])

    for command in (["plan"], ["sync", "--once"]):
        code, out, err = await run_cli(*command, "--config", str(cfg.path))
        assert code == 1, out + err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"error: {path}:{line}: "), f"expected {path}:{line}: …, got {lines[0]}"
        assert says in lines[0], lines[0]
    assert await sandboxes.control("ozmap", "GET", "requests") == []
    assert await sandboxes.control("ixc", "GET", "requests") == []


# ------------------------------------------------------------------------------------------------- config

GOOD_CONFIG = """\
[state]
path = "state.db"

[systems.ozmap]
kind = "ozmap"
url = "{ozmap}"
secret = {{ file = "secrets/ozmap.key" }}

[systems.ixc]
kind = "ixc"
url = "{ixc}"
secret = {{ file = "secrets/ixc.token" }}

[integrations.ozmap-ixc]
"""
#: case → (line to find, its replacement (None: delete it), the word the message must name)
CONFIG_ERRORS = {
    "TOML syntax": ('kind = "ixc"', 'kind = "ixc', "at line"),
    "unknown key": ('kind = "ixc"', 'kind = "ixc"\ncolour = "blue"', "colour"),
    "unknown key in a table": (
        "[integrations.ozmap-ixc]",
        "[integrations.ozmap-ixc]\nentites = []",
        "entites",
    ),
    "wrong type": ('kind = "ixc"', 'kind = "ixc"\n[systems.ixc.http]\nconcurrency = "eight"', "concurrency"),
    "secret written in the file": (
        'secret = { file = "secrets/ixc.token" }',
        f'secret = "{IXC_TOKEN}"',
        "secret",
    ),
    "missing environment variable": (
        'secret = { file = "secrets/ixc.token" }',
        'secret = { env = "RECONCILER_TEST_UNSET_VARIABLE" }',
        "RECONCILER_TEST_UNSET_VARIABLE",
    ),
    "missing secret file": (
        'secret = { file = "secrets/ixc.token" }',
        'secret = { file = "secrets/nope" }',
        "nope",
    ),
    "unknown system kind": ('kind = "ixc"', 'kind = "ixcc"', "ixcc"),
    "share out of range": (
        "[integrations.ozmap-ixc]",
        "[integrations.ozmap-ixc]\n\n[guard]\nmax-inactivate-share = 1.5",
        "max-inactivate-share",
    ),
}


def _bad_config(sandboxes: Sandboxes, case: str) -> tuple[Path, int, str]:
    sandboxes.config()  # writes the secret files
    find, replace, says = CONFIG_ERRORS[case]
    text = GOOD_CONFIG.format(ozmap=sandboxes.ozmap_url, ixc=sandboxes.ixc_url)
    assert find in text
    bad = text.replace(find, replace, 1)
    path = sandboxes.tmp / "bad.toml"
    path.write_text(bad)
    return path, _line_of(bad, replace.splitlines()[-1]), says


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
async def test_a_bad_config_is_one_message_naming_the_file_exit_1_and_nothing_is_sent(
    case: str, sandboxes: Sandboxes
) -> None:
    path, _, says = _bad_config(sandboxes, case)
    code, out, err = await run_cli("sync", "--once", "--config", str(path))
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert says in lines[0], lines[0]
    assert IXC_TOKEN not in out + err and OZMAP_KEY not in out + err
    assert await sandboxes.control("ozmap", "GET", "requests") == []
    assert await sandboxes.control("ixc", "GET", "requests") == []


@pytest.mark.parametrize("case", [c for c in CONFIG_ERRORS if c not in ("TOML syntax",)])
async def test_a_bad_config_message_names_file_and_line(case: str, sandboxes: Sandboxes) -> None:
    path, line, _ = _bad_config(sandboxes, case)
    code, _, err = await run_cli("plan", "--config", str(path))
    assert code == 1
    assert err.startswith(f"error: {path}:{line}: "), err


async def test_a_toml_syntax_error_in_the_config_names_file_and_line(sandboxes: Sandboxes) -> None:
    path, line, _ = _bad_config(sandboxes, "TOML syntax")
    code, _, err = await run_cli("plan", "--config", str(path))
    assert code == 1
    assert re.search(rf"{re.escape(str(path))}.*line {line}\b", err), err


# ------------------------------------------------------------------------------------------------ records


def bad_records_world(sb: Sandboxes) -> None:
    """The clients world of tests/integration, plus boxes and logins with bad fields next to good ones."""
    world = World()
    world.client(1, "ana.f", splitter=S1, port=1)
    world.login(1, "ana.f", box=IXC_B1, port="1")
    world.login(20, "good.new", box=IXC_B1, port="4", name="Nina Porta", lat="-27.5911", lng="-48.5511")
    world.login(21, "port.nan", box=IXC_B1, port="abc", name="Port Not A Number")
    world.login(22, "lat.nan", box=IXC_B1, port="5", lat="-27,59x", lng="-48.55")
    world.load(sb)
    bad_boxes = [
        ozmap_box(108, "CTO-LAT95", oid(1), lat=95.0, lng=-48.55),
        ozmap_box(109, "CTO-LNG200", oid(1), lat=-27.59, lng=-200.0),
        ozmap_box(110, "CTO-NOCOORDS", oid(1), lat=None, lng=None),
    ]
    sb.ozmap.load("boxes", bad_boxes)
    sb.ozmap.load(
        "splitters",
        [
            ozmap_splitter(400 + n, box["id"], oid(1), is_drop=True, inputs=["f-pon"], outputs=[None] * 8)
            for n, box in enumerate(bad_boxes)
        ],
    )


async def test_bad_records_are_quarantined_with_their_reason_and_the_rest_goes_on(
    sandboxes: Sandboxes,
) -> None:
    bad_records_world(sandboxes)
    cfg = sandboxes.config(entities=None)
    report = sandboxes.tmp / "sync.json"
    code, out, err = await run_cli("sync", "--once", "--config", str(cfg.path), "--json", str(report))
    assert code == 2, out + err  # applied, no failure: quarantines are not errors
    document = msgspec.json.decode(report.read_bytes())
    quarantined = {
        (e["entity"], a["label"].split(" (")[0]): a["reason"]
        for e in document["plan"]["entities"]
        for a in e["actions"]
        if a["type"] == "quarantine"
    }
    expected = {
        ("boxes", "CTO-LAT95"): "latitude 95",
        ("boxes", "CTO-LNG200"): "longitude -200",
        ("boxes", "CTO-NOCOORDS"): "latitude",
        ("client-creation", "port.nan"): "abc",
        ("client-creation", "lat.nan"): "-27,59x",
    }
    for key, words in expected.items():
        assert key in quarantined, f"{key} not quarantined; quarantined: {quarantined}"
        assert words in quarantined[key], (key, quarantined[key])
    for _, label in expected:
        assert "QUARANTINE" in out and label in out, f"{label} missing from the printed report"
    # The rest of the cycle went on: the good login got its reservation, the good boxes stayed linked.
    assert "good.new" in {c["code"] for c in sandboxes.ozmap.all("ftth-clients")}
    assert {"port.nan", "lat.nan"}.isdisjoint(c["code"] for c in sandboxes.ozmap.all("ftth-clients"))
    names = {r["descricao"] for r in sandboxes.ixc.all("rad_caixa_ftth")}
    assert {"CTO-LAT95", "CTO-LNG200", "CTO-NOCOORDS"}.isdisjoint(names)
    async with Engine.open(cfg) as engine:
        kept = {q.source_id for q in await engine.store.quarantined("ozmap-ixc", "boxes")}
    assert {oid(108), oid(109), oid(110)} <= kept
    # Fixed at the source, a quarantined record is picked up by the next (incremental) cycle.
    await sandboxes.control(
        "ozmap", "PATCH", f"store/boxes/{oid(108)}", {"lat": -27.5, "coords": [-48.55, -27.5]}
    )
    code, out, err = await run_cli("sync", "--once", "--config", str(cfg.path))
    assert code == 2, out + err
    assert "CTO-LAT95" in {r["descricao"] for r in sandboxes.ixc.all("rad_caixa_ftth")}


async def test_an_unknown_enum_value_is_quarantined_with_its_reason(sandboxes: Sandboxes) -> None:
    world = World()
    world.login(30, "enum.odd", box=IXC_B1, port="6", ativo="X")
    world.load(sandboxes)
    cfg = sandboxes.config(entities=None)
    report = sandboxes.tmp / "sync.json"
    code, out, err = await run_cli("plan", "--config", str(cfg.path), "--json", str(report))
    assert code in (0, 2), out + err
    reasons = [
        a["reason"]
        for e in msgspec.json.decode(report.read_bytes())["plan"]["entities"]
        for a in e["actions"]
        if a["type"] == "quarantine" and a["label"] == "enum.odd"
    ]
    assert reasons and "X" in reasons[0], reasons


async def test_a_record_with_a_wrongly_typed_field_is_quarantined_and_the_rest_goes_on(
    sandboxes: Sandboxes,
) -> None:
    bad_records_world(sandboxes)
    box = ozmap_box(111, "CTO-TEXTLAT", oid(1))
    box["lat"] = "-27,59"
    sandboxes.ozmap.load("boxes", [box])
    sandboxes.ozmap.load(
        "splitters",
        [ozmap_splitter(411, box["id"], oid(1), is_drop=True, inputs=["f-pon"], outputs=[None] * 8)],
    )
    cfg = sandboxes.config(entities=None)
    code, out, err = await run_cli("sync", "--once", "--config", str(cfg.path))
    assert code == 2, out + err
    assert "CTO-TEXTLAT" in out and "QUARANTINE" in out
    assert "good.new" in {c["code"] for c in sandboxes.ozmap.all("ftth-clients")}
