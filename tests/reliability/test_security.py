"""Issue 10.5: secrets come only from the environment or files and never show; webhooks are authenticated;
the state store is private; no SQL is built from values by string concatenation.

The sandboxes here answer errors that *echo the credentials* (as misconfigured proxies and some APIs do), so any
path that quotes a remote body — CLI output, ``--json``/``--html`` reports, the journal in the state store, the
daemon's logs and ``/readyz`` — is exercised with the secret in hand.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import msgspec
import pytest

from reconciler import cli
from reconciler import config as config_mod
from reconciler.daemon import webhooks
from reconciler.errors import ConfigError
from tests.daemon.conftest import SECRETS, WEBHOOK_SECRET, daemon_config, running_daemon, wait_for
from tests.integration.conftest import IXC_TOKEN, OZMAP_KEY, Sandboxes, sandboxes
from tests.integration.test_boxes_e2e import build_world

__all__ = ["sandboxes"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.anyio

PACKAGE = Path(cli.__file__).resolve().parent
IXC_HASH = IXC_TOKEN.split(":", 1)[1]
#: Every form a credential may take on the wire.
ALL_SECRETS = (*SECRETS, IXC_HASH, base64.b64encode(IXC_TOKEN.encode()).decode())
#: What a server that echoes credentials in its errors answers (each system quotes its own).
IXC_ECHO = (
    f"denied for token {IXC_TOKEN} (Basic {base64.b64encode(IXC_TOKEN.encode()).decode()}, hash {IXC_HASH})"
)
OZMAP_ECHO = f"invalid key {OZMAP_KEY}"


def assert_no_secret(text: str, where: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text, (
            f"a secret leaked into {where}: …{text[max(0, text.find(secret) - 80) :][:200]}…"
        )


async def run_cli(*args: str) -> tuple[int, str, str]:
    """``reconciler ARGS`` in a worker thread (its own event loop); returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                return cli.main(list(args))
            except SystemExit as exc:  # --help
                return int(exc.code or 0)

    code = await anyio.to_thread.run_sync(call)
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# ------------------------------------------------------------------------------------------------ secrets


async def test_secrets_come_only_from_the_environment_or_a_file(
    sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    text = cfg.path.read_text()
    monkeypatch.setenv("RECONCILER_TEST_IXC_TOKEN", IXC_TOKEN)
    from_env = text.replace(
        'secret = { file = "secrets/ixc.token" }', 'secret = { env = "RECONCILER_TEST_IXC_TOKEN" }'
    )
    cfg.path.write_text(from_env)
    code, out, err = await run_cli("plan", "--config", str(cfg.path))
    assert code == 2, out + err
    loaded = config_mod.load(cfg.path)
    assert loaded.systems["ixc"].secret.reveal() == IXC_TOKEN
    assert_no_secret(repr(loaded) + str(loaded.systems), "the config's repr")

    for bad in (
        f'secret = "{IXC_TOKEN}"',
        'secret = { env = "RECONCILER_TEST_IXC_TOKEN", file = "secrets/ixc.token" }',
    ):
        cfg.path.write_text(text.replace('secret = { file = "secrets/ixc.token" }', bad))
        with pytest.raises(ConfigError) as info:
            config_mod.load(cfg.path)
        assert_no_secret(str(info.value), "a config error")
        code, out, err = await run_cli("sync", "--once", "--config", str(cfg.path))
        assert code == 1 and "secret" in err, err
        assert_no_secret(out + err, "the CLI output")


async def test_help_never_shows_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OZMAP_API_KEY", "IXC_TOKEN", "RECONCILER_WEBHOOK_SECRET", "RECONCILER_LISTEN"):
        monkeypatch.setenv(name, IXC_TOKEN)
    parser = cli.build_parser()
    commands = ["", *sorted(parser._subparsers._group_actions[0].choices)]  # type: ignore[union-attr]
    for command in commands:
        code, out, err = await run_cli(*([command] if command else []), "--help")
        assert code == 0 and "usage:" in out, (command, out, err)
        assert_no_secret(out + err, f"`reconciler {command} --help`")


async def test_remote_errors_echoing_credentials_are_redacted_everywhere(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config(entities=None)
    # IXC refuses every write with a body quoting its credentials; an OZmap listing fails the same way.
    refusal = {"type": "error", "message": IXC_ECHO}
    await sandboxes.control(
        "ixc", "POST", "answers", {"mode": "canned", "listing": False, "status": 200, "body": refusal}
    )
    report_json, report_html = sandboxes.tmp / "r.json", sandboxes.tmp / "r.html"
    code, out, err = await run_cli(
        "sync", "--once", "--config", str(cfg.path), "--json", str(report_json), "--html", str(report_html)
    )
    assert code == 1, out + err  # the creates failed
    assert "denied for token ***" in out, out  # the body is quoted, the credential blanked
    assert_no_secret(out + err, "the sync output")
    assert_no_secret(report_json.read_text(), "the JSON report")
    assert_no_secret(report_html.read_text(), "the HTML report")
    for path in sandboxes.tmp.glob("state.db*"):  # the journal keeps the errors of failed actions
        assert_no_secret(path.read_bytes().decode("utf-8", "replace"), f"the state store ({path.name})")

    await sandboxes.control(
        "ozmap", "POST", "answers", {"mode": "canned", "status": 401, "body": {"message": OZMAP_ECHO}}
    )
    code, out, err = await run_cli("plan", "--config", str(cfg.path))
    assert code == 1 and "401" in err, out + err
    assert_no_secret(out + err, "an error message")


async def test_a_credential_cut_by_the_excerpt_cap_does_not_leak_in_part(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    # IXC refuses the create quoting its API hash, which starts 40 characters before the 300-character cap.
    refusal = {"type": "error", "message": "x" * 254 + " hash " + IXC_HASH}
    await sandboxes.control(
        "ixc", "POST", "answers", {"mode": "canned", "listing": False, "status": 200, "body": refusal}
    )
    code, out, err = await run_cli("sync", "--once", "--config", str(cfg.path))
    assert code == 1 and "refused" in out, out + err
    assert IXC_HASH not in out + err
    assert IXC_HASH[:16] not in out + err, f"the first characters of the IXC hash leaked: {out}"


# ---------------------------------------------------------------------------------------- state file mode


async def test_the_state_store_and_its_companions_are_created_0600(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    with umask(0o022):
        code, out, err = await run_cli("sync", "--once", "--config", str(cfg.path))
    assert code == 2, out + err
    files = sorted(sandboxes.tmp.glob("state.db*"))
    assert cfg.state_path in files
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name} has mode {mode:o}"


# ------------------------------------------------------------------------------------------------ daemon


def _signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {
        webhooks.TIMESTAMP_HEADER: stamp,
        webhooks.SIGNATURE_HEADER: webhooks.sign(secret, stamp, body),
        "Content-Type": "application/json",
    }


@pytest.mark.timeout(180)
async def test_the_daemon_authenticates_webhooks_and_never_logs_a_secret(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    path = daemon_config(sandboxes, incremental="1h")
    refusal = {"type": "error", "message": IXC_ECHO}
    await sandboxes.control(
        "ixc", "POST", "answers", {"mode": "canned", "listing": False, "status": 200, "body": refusal}
    )
    async with running_daemon(path) as daemon:

        async def failed_cycle() -> bool:
            return any(e.get("event") == "cycle" and e.get("failures") for e in daemon.events)

        await wait_for(failed_cycle, "a cycle whose creates IXC refused")
        status, ready = await daemon.request("GET", "/readyz")
        assert_no_secret(msgspec.json.encode(ready).decode(), "/readyz")

        body = b'{"ids": ["' + b"65a1f0c2e4b0a1b2c3d4e5f6" + b'"]}'
        route = "/webhooks/ozmap-ixc/boxes"
        now = time.time()
        cases = {
            "signed": (_signed(body), body, 202),
            "body altered after signing": (_signed(body), body.replace(b"f6", b"f7"), 401),
            "signed with another secret": (_signed(body, secret="not-the-secret"), body, 401),
            "replayed after the window": (_signed(body, at=now - webhooks.REPLAY_WINDOW - 5), body, 401),
            "from the future": (_signed(body, at=now + webhooks.REPLAY_WINDOW + 5), body, 401),
            "unsigned": ({"Content-Type": "application/json"}, body, 401),
            "bearer": ({"Authorization": f"Bearer {WEBHOOK_SECRET}"}, body, 202),
            "wrong bearer": ({"Authorization": "Bearer nope"}, body, 401),
            "basic": ({"Authorization": f"Basic {WEBHOOK_SECRET}"}, body, 401),
        }
        for case, (headers, sent, expected) in cases.items():
            status, answer = await daemon.request("POST", route, body=sent, headers=headers)
            assert status == expected, (case, status, answer)
            assert_no_secret(msgspec.json.encode(answer).decode(), f"the answer to a {case} webhook")
        status, _ = await daemon.request("POST", "/sync/ozmap-ixc/boxes?allow-mass-removal=1", body=b"")
        assert status == 401  # the operator's override needs the secret too
    daemon.assert_clean_logs()
    assert_no_secret("\n".join(daemon.lines), "the daemon's log")


def test_webhook_secrets_are_compared_in_constant_time() -> None:
    tree = ast.parse((PACKAGE / "daemon" / "webhooks.py").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compare_digest"
    ]
    assert len(calls) >= 2, "both the bearer token and the signature must go through hmac.compare_digest"
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & {"token", "signature", "secret", "secrets", "s"}, ast.unparse(node)


# ---------------------------------------------------------------------------------------------------- SQL

SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|PRAGMA|CREATE|DROP|ALTER|WITH|SAVEPOINT|RELEASE|ROLLBACK)\b"
)
#: Reviewed exceptions: (file, function) → why the interpolation is not a value.
ALLOWED = {
    ("connectors/replica/connector.py", "find"): "column names checked against the static TABLES catalog",
    ("connectors/replica/connector.py", "create"): "table and column names from the static TABLES catalog",
    ("connectors/replica/connector.py", "update"): "table and column names from the static TABLES catalog",
    ("connectors/replica/connector.py", "delete"): "table name from the static TABLES catalog",
    ("connectors/replica/connector.py", "_select"): "table name from the static TABLES catalog",
    ("connectors/replica/connector.py", "stream"): "table name from the catalog; the page size a constant",
    ("connectors/replica/tables.py", "ddl"): "the schema's own table and column names (TABLES)",
}


def _static_text(node: ast.AST) -> str:
    """The literal parts of a string expression, in order."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_static_text(v) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _static_text(node.left) + _static_text(node.right)
    return ""


def _only_placeholders(node: ast.AST) -> bool:
    """``", ".join("?" * n)`` and friends: interpolations made of ``?``, commas and numbers only."""
    strings = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return bool(strings) and all(set(s) <= set("?, ()") for s in strings)


def _dynamic_sql(tree: ast.Module) -> list[tuple[str, int, str]]:
    """(function, line, source) of every SQL string built at run time from something other than integers,
    placeholders or module constants."""
    module_names = {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    found: list[tuple[str, int, str]] = []

    def check(node: ast.AST, function: str, safe: set[str]) -> None:
        parts: list[ast.AST] = []
        if isinstance(node, ast.JoinedStr):
            parts = [v for v in node.values if isinstance(v, ast.FormattedValue)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            parts = [
                side
                for side in (node.left, node.right)
                if not isinstance(side, ast.Constant | ast.JoinedStr | ast.BinOp)
            ]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
        ):
            parts = [*node.args, *(k.value for k in node.keywords)]
        else:
            return
        if not SQL.search(_static_text(node.func.value if isinstance(node, ast.Call) else node)):  # type: ignore[attr-defined]
            return
        for part in parts:
            value = part.value if isinstance(part, ast.FormattedValue) else part
            spec = (
                ast.unparse(part.format_spec)
                if isinstance(part, ast.FormattedValue) and part.format_spec
                else ""
            )
            names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
            if "d" in spec or _only_placeholders(value) or (names and names <= safe):
                continue
            found.append((function, node.lineno, ast.unparse(node)))  # type: ignore[attr-defined]
            return

    # Module level is not checked: statements built there run once at import, from the code's own constants.
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        safe = set(module_names)
        for sub in ast.walk(func):  # names bound from integer-only f-strings (savepoint names)
            if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.JoinedStr):
                specs = [v for v in sub.value.values if isinstance(v, ast.FormattedValue)]
                if specs and all(v.format_spec and "d" in ast.unparse(v.format_spec) for v in specs):
                    safe |= {t.id for t in sub.targets if isinstance(t, ast.Name)}
        for sub in ast.walk(func):
            check(sub, func.name, safe)
    return found


def test_no_sql_is_built_from_values_by_string_concatenation() -> None:
    problems = []
    scanned = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sandbox" in path.parts:
            continue  # the fakes of other companies' servers hold no SQL
        relative = path.relative_to(PACKAGE).as_posix()
        scanned.append(relative)
        for function, line, text in _dynamic_sql(ast.parse(path.read_text())):
            if (relative, function) not in ALLOWED:
                problems.append(f"{relative}:{line} ({function}): {text}")
    assert "state/sqlite.py" in scanned
    assert problems == [], "SQL built at run time (bind values with ? instead):\n" + "\n".join(problems)


def test_the_sql_check_catches_concatenated_values() -> None:
    tree = ast.parse(
        "def f(db, name, n):\n"
        "    db.execute('SELECT * FROM links WHERE source_id = ' + name)\n"
        "    db.execute(f\"DELETE FROM links WHERE id = '{name}'\")\n"
        "    db.execute('UPDATE links SET state = {}'.format(name))\n"
        "    db.execute(f'SAVEPOINT sp_{n:d}')\n"
        '    db.execute(f\'SELECT * FROM t WHERE id IN ({", ".join("?" * n)})\')\n'
    )
    assert [line for _, line, _ in _dynamic_sql(tree)] == [2, 3, 4]
