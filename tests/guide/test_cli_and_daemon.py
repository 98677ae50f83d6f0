"""``reconciler ozmap …`` as a real subprocess, and the guide API mounted in the daemon's own HTTP server."""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest

from reconciler import config as config_mod
from reconciler.daemon import server, settings
from reconciler.daemon.runner import Daemon
from reconciler.engine import Engine

from .conftest import SECRET, Env
from .world import CTO1, LAT, LNG, PON1, S1

pytestmark = pytest.mark.anyio


async def cli(env: Env, *args: str) -> tuple[int, Any, str]:
    """Run ``reconciler ozmap <args> --config …``: (exit code, decoded stdout or None, stderr)."""
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "ozmap",
        args[0],
        "--config",
        str(env.config_path),
        *args[1:],
    ]
    result = await anyio.run_process(command, check=False)
    out = result.stdout.decode()
    return result.returncode, (msgspec.json.decode(out) if out.strip() else None), result.stderr.decode()


async def test_cli_feasibility_reserve_lookup_and_power_check(env: Env) -> None:
    code, found, _ = await cli(env, "feasibility", "--lat", str(LAT), "--lng", str(LNG), "--radius", "200")
    assert code == 0 and [b["id"] for b in found["boxes"]] == [CTO1]
    code, reserved, _ = await cli(
        env, "reserve", "--code", "cli1", "--name", "Cli", "--lat", str(LAT), "--lng", str(LNG)
    )
    assert code == 0 and (reserved["splitter_id"], reserved["port"]) == (S1, 4)
    assert env.client("cli1")["implanted"] is False
    code, where, _ = await cli(env, "lookup", "--code", "cli1")
    assert code == 0 and where["port"] == 4
    code, report, _ = await cli(env, "power-check", "--threshold", "2")
    assert code == 2 and [c["code"] for c in report["worse"]] == ["bia"]  # exit 2: some clients are worse
    code, one, _ = await cli(env, "power-check", "--code", "ana")
    assert code == 0 and one["verdict"] == "ok"
    code, pons, _ = await cli(env, "pon-power", "--olt", "OLT-1", "--slot", "1", "--pon", "1", "--dbm", "5")
    assert code == 0 and pons["id"] == PON1
    code, status, _ = await cli(env, "status", "--code", "ana", "--code", "bia", "--status", "ERROR")
    assert code == 0 and status["updated"] == ["ana", "bia"]


async def test_cli_bad_input_exits_1_with_the_reason(env: Env) -> None:
    code, out, err = await cli(env, "feasibility", "--lat", "95", "--lng", str(LNG))
    assert (code, out) == (1, None)
    assert "lat must be a latitude between -90 and 90 degrees (got 95.0)" in err
    code, _, err = await cli(env, "feasibility", "--lat", str(LAT), "--lng", str(LNG), "--radius", "0")
    assert code == 1 and "radius must be between 1 and 5000 metres" in err
    code, _, err = await cli(env, "implant", "--code", "ghost")
    assert code == 1 and "no client with code 'ghost'" in err


async def test_daemon_serves_the_guide_api_and_its_document(env: Env) -> None:
    cfg = config_mod.load(env.config_path)
    async with Engine.open(cfg) as engine:
        daemon = Daemon(engine=engine, settings=settings.resolve(cfg))
        async with server.running(daemon, host="127.0.0.1", port=0) as url, aiohttp.ClientSession() as http:
            async with http.get(url + "/openapi.json") as resp:
                assert resp.status == 200
                assert "/ozmap/feasibility" in (await resp.json())["paths"]
            async with http.get(url + "/ozmap/feasibility", params={"lat": str(LAT), "lng": "200"}) as resp:
                assert resp.status == 400
                assert (await resp.json())["field"] == "lng"
            async with http.post(url + "/ozmap/clients/caio/implantation") as resp:
                assert resp.status == 401  # the daemon's webhook secret protects writes
            headers = {"Authorization": f"Bearer {SECRET}"}
            async with http.post(url + "/ozmap/clients/caio/implantation", headers=headers) as resp:
                assert resp.status == 200 and (await resp.json())["implanted"] is True
            daemon.stop()
            async with http.post(url + "/ozmap/clients/caio/implantation", headers=headers) as resp:
                assert resp.status == 503  # shutting down: no new writes
            async with http.get(url + "/healthz") as resp:
                assert resp.status == 200
