"""The sandbox runner: servers on real sockets, the engine config it writes, and the command line."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import stat
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest

from reconciler import config
from reconciler.sandbox import runner
from reconciler.sandbox.ixc import basic_auth

pytestmark = pytest.mark.anyio

LIST = {"ixcsoft": "listar"}


def _ixc_list_body(table: str, rp: int = 5) -> dict[str, str]:
    return {"qtype": f"{table}.id", "query": "", "oper": "=", "page": "1", "rp": str(rp)}


async def test_running_serves_both_systems() -> None:
    async with runner.running(["ozmap", "ixc"], seed=3, scale=300) as sandboxes:
        summary = sandboxes.world.summary()
        oz, ixc = sandboxes["ozmap"], sandboxes["ixc"]
        assert oz.url.startswith("http://127.0.0.1:") and oz.api_url == oz.url + "/api/v2"
        assert ixc.api_url == ixc.url + "/webservice/v1"
        assert oz.store is not None and oz.faults is not None and oz.world is sandboxes.world
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": oz.secret}
            async with session.get(f"{oz.api_url}/boxes", params={"limit": "5"}, headers=headers) as response:
                assert response.status == 200
                page = await response.json()
            assert page["total"] == summary["boxes"] and len(page["rows"]) == 5
            async with session.get(f"{oz.api_url}/boxes", headers={"Authorization": "wrong"}) as response:
                assert response.status == 401
            headers = {**LIST, "Authorization": basic_auth(ixc.secret)}
            async with session.post(
                f"{ixc.api_url}/rad_caixa_ftth", json=_ixc_list_body("rad_caixa_ftth"), headers=headers
            ) as response:
                assert response.status == 200
                listed = json.loads(await response.text())
            assert int(listed["total"]) == summary["ixc_boxes"] and len(listed["registros"]) == 5
            async with session.get(f"{oz.control_url}stats") as response:
                assert response.status == 200


async def test_one_system_and_unknown_systems() -> None:
    async with runner.running(["ixc"], seed=1, scale=100) as sandboxes:
        assert "ixc" in sandboxes and "ozmap" not in sandboxes
        assert [s.name for s in sandboxes] == ["ixc"]
        assert "[integrations" not in sandboxes.config_text()
    with pytest.raises(ValueError, match="unknown sandbox system"):
        async with runner.running(["erp"], seed=1, scale=100):
            pass


def _free_port_pair() -> int:
    """A port ``p`` with ``p`` and ``p + 1`` free right now (best effort)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", base))
                second.bind(("127.0.0.1", base + 1))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port pair")


async def test_port_base_puts_ozmap_first_and_ixc_next() -> None:
    base = _free_port_pair()
    async with runner.running(["ixc", "ozmap"], seed=2, scale=100, port_base=base) as sandboxes:
        assert sandboxes["ozmap"].url == f"http://127.0.0.1:{base}"
        assert sandboxes["ixc"].url == f"http://127.0.0.1:{base + 1}"


def test_credentials_are_deterministic_and_look_real() -> None:
    first, again, other = runner.credentials(5), runner.credentials(5), runner.credentials(6)
    assert first == again and first != other
    header, payload, signature = first.ozmap_key.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["module"] == "api" and "exp" not in claims and re.fullmatch(r"[0-9a-f]{24}", claims["user"])
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "HS256"
    assert signature
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", first.ixc_token)


async def test_write_config_is_accepted_by_the_engine(tmp_path: Path) -> None:
    async with runner.running(["ozmap", "ixc"], seed=9, scale=150) as sandboxes:
        path = sandboxes.write_config(tmp_path / "sandbox.toml")
        loaded = config.load(path, environ={})
        assert loaded.systems["ozmap"].url == sandboxes["ozmap"].url
        assert loaded.systems["ixc"].url == sandboxes["ixc"].url
        assert loaded.systems["ozmap"].secret.reveal() == sandboxes["ozmap"].secret
        assert loaded.systems["ixc"].secret.reveal() == sandboxes["ixc"].secret
        assert loaded.systems["ixc"].kind == "ixc"
        assert loaded.integrations["ozmap-ixc"].options == {"create_box_without_olt": False}
        assert loaded.state_path == tmp_path / "reconciler-state.db"
    folder = tmp_path / "sandbox.secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ozmap.key", "ixc.token"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    text = path.read_text()
    assert sandboxes["ozmap"].secret not in text and sandboxes["ixc"].secret not in text


async def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    config_path = tmp_path / "cli.toml"
    command = [sys.executable, "-m", "reconciler.sandbox.runner", "--scale", "200", "--seed", "11"]
    command += ["--port-base", "0", "--write-config", str(config_path)]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    async with await anyio.open_process(command, env=env) as process:
        assert process.stdout is not None
        output = ""
        with anyio.fail_after(60):
            async for chunk in process.stdout:
                output += chunk.decode()
                if "serving" in output:
                    break
        ozmap_url = re.search(r"^ozmap: (\S+)", output, re.MULTILINE)
        key = re.search(r"api key:\s+(\S+)", output)
        assert ozmap_url and key, output
        assert re.search(r"^ixc: http://127\.0\.0\.1:\d+", output, re.MULTILINE), output
        assert "generated and loaded in" in output and "peak RSS" in output and "/_sandbox/" in output
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{ozmap_url[1]}/api/v2/boxes?limit=2", headers={"Authorization": key[1]}
            ) as response,
        ):
            assert response.status == 200
            assert len((await response.json())["rows"]) == 2
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            code = await process.wait()
    assert code == 0
    assert config.load(config_path, environ={}).systems["ozmap"].url == ozmap_url[1]
