"""``cosbe-vetro``: the CSV import of links (``reconciler import-links``) and the schedules, through the CLI.

The commands run as real subprocesses (``python -m reconciler``) while the test's event loop serves the Vetro
and COS BE sandboxes; the test reads their exit codes, their per-line reports, the state store and the stores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from reconciler.engine import Engine
from reconciler.state.sqlite import SqliteStateStore

from .cosbe_vetro_world import IMPORT, INTEGRATION, PUSH, CosVetro, cos_object, cv, oid, sl, vid

__all__ = ["cv"]

pytestmark = pytest.mark.anyio

NOT_IMPORTED = {"Address Import": "No"}  # so the first sync cannot create objects for them


async def cli(cv: CosVetro, *args: str) -> tuple[int, str, str]:
    config = cv.tmp / "reconciler.toml"
    config.write_text(cv.config_text())
    done = await anyio.run_process(
        [sys.executable, "-m", "reconciler", *args, "--config", str(config)], check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def links(cv: CosVetro) -> dict[str, str]:
    store = SqliteStateStore(cv.tmp / "state.db")
    await store.open(lock=False)
    try:
        return {sid: row.target_id for sid, row in (await store.links(INTEGRATION, IMPORT)).items()}
    finally:
        await store.close()


def write(cv: CosVetro, name: str, *lines: str) -> Path:
    path = cv.tmp / name
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_import_links_writes_the_good_rows_and_reports_every_bad_line(cv: CosVetro) -> None:
    cv.load(
        [sl(n, **NOT_IMPORTED) for n in (1, 2, 3, 4, 6)] + [sl(5), sl(8)],
        [cos_object(1, link="none"), cos_object(2, link="none"), cos_object(5), cos_object(7, link="none"),
         cos_object(8)],
    )  # fmt: skip
    assert (await cli(cv, "sync"))[0] == 2  # links SL-5 and SL-8 to their objects; skips the rest
    path = write(
        cv,
        "links.csv",
        "source_id,target_id",
        f"{vid(1)},{oid(1)}",  # 2: good
        f"{vid(2)}, {oid(2)} ",  # 3: good (blanks around values are ignored)
        f"{vid(3)},{oid(3)}",  # 4: COS has no object 3
        f"00000000-0000-4000-8000-00000000dead,{oid(9)}",  # 5: Vetro has no such service location
        f"{vid(1)},{oid(7)}",  # 6: SL-1 is paired on line 2 already
        "a,b,c",  # 7
        f"{vid(4)},",  # 8
        f"{vid(6)},{oid(5)}",  # 9: object 5 is linked to SL-5
        f"{vid(5)},{oid(7)}",  # 10: SL-5 is linked to object 5
        "",
        "# a comment line",
        f"{vid(8)},{oid(8)}",  # 13: already linked: unchanged
    )
    code, out, err = await cli(
        cv, "import-links", str(path), "--integration", INTEGRATION, "--entity", IMPORT
    )
    assert code == 1
    assert err.splitlines() == [
        f"{path}:4: target {oid(3)}: no such record in cosbe objects",
        f"{path}:5: source 00000000-0000-4000-8000-00000000dead: no such record in vetro service_locations",
        f"{path}:6: source {vid(1)} is already paired on line 2",
        f"{path}:7: expected 2 values (source_id,target_id), got 3",
        f"{path}:8: empty target_id",
        f"{path}:9: target {oid(5)} is already linked to source {vid(5)}",
        f"{path}:10: source {vid(5)} is already linked to {oid(5)}",
    ]
    assert out.strip() == "imported 2 link(s), 1 already linked, 7 bad row(s) not written"
    assert await links(cv) == {vid(1): oid(1), vid(2): oid(2), vid(5): oid(5), vid(8): oid(8)}

    # The next partial sync re-reads the two skipped service locations: their objects get the link fields,
    # which make them take part in the push.
    assert (await cli(cv, "sync"))[0] == 2
    for n in (1, 2):
        obj = cv.cos.objects[oid(n)]
        assert (obj["externalIdentification"], obj["externalServiceLocationId"]) == (vid(n), f"SL-{n:04d}")
        assert obj["vetroLink"].endswith(f"/ui/feature/{vid(n)}?plan_id=112")
        assert cv.properties(n)["COS Object ID"] == oid(n)
    assert len(cv.cos.objects) == 5  # nothing was auto-imported on the way

    good = write(cv, "good.csv", "Source_ID,Target_ID", f"{vid(1)},{oid(1)}", f"{vid(2)},{oid(2)}")
    code, out, err = await cli(
        cv, "import-links", str(good), "--integration", INTEGRATION, "--entity", IMPORT
    )
    assert (code, err) == (0, "")
    assert out.strip() == "imported 0 link(s), 2 already linked, 0 bad row(s) not written"


async def test_a_bad_header_or_a_dry_run_writes_nothing(cv: CosVetro) -> None:
    cv.load([sl(1, **NOT_IMPORTED)], [cos_object(1, link="none")])
    bad = write(cv, "bad.csv", "vetro_id;object_id", f"{vid(1)};{oid(1)}")
    code, _, err = await cli(cv, "import-links", str(bad), "--integration", INTEGRATION, "--entity", IMPORT)
    assert code == 1 and f"{bad}:1: the header must read source_id,target_id" in err
    rows = write(cv, "rows.csv", "source_id,target_id", f"{vid(1)},{oid(1)}")
    code, out, _ = await cli(
        cv, "import-links", str(rows), "--integration", INTEGRATION, "--entity", IMPORT, "--dry-run"
    )
    assert (code, out.strip()) == (0, "would import 1 link(s), 0 already linked, 0 bad row(s) not written")
    assert await links(cv) == {}
    code, out, _ = await cli(
        cv, "import-links", str(rows), "--integration", INTEGRATION, "--entity", IMPORT, "--sync"
    )
    assert code == 0 and "imported 1 link(s)" in out
    assert cv.cos.objects[oid(1)]["externalIdentification"] == vid(1)  # synced at once, targeted


# -- 5. schedules ------------------------------------------------------------------------------------------------


async def test_hourly_partial_daily_full_and_a_full_sync_on_demand(cv: CosVetro) -> None:
    cv.load([sl(n) for n in range(1, 4)], [cos_object(n) for n in range(1, 4)])
    async with Engine.open(cv.config()) as engine:
        schedules = {r.entity: (r.incremental_seconds, r.full_seconds) for r in engine.rules(INTEGRATION)}
    assert schedules == {IMPORT: (3600, 86400), PUSH: (3600, 86400)}

    assert (await cli(cv, "sync"))[0] == 2
    # Partial sync, Vetro → COS BE: only the edited service location is read back and compared.
    await cv.user(
        "vetro", "PATCH", f"store/features/{vid(2)}", {"properties": {"Street Address": "2 Elm St"}}
    )
    report = cv.tmp / "partial.json"
    assert (await cli(cv, "sync", "--json", str(report)))[0] == 2
    entities = {e["entity"]: e for e in json.loads(report.read_text())["plan"]["entities"]}
    assert entities[IMPORT]["mode"] == "incremental"
    assert [(a["type"], a["source_id"]) for a in entities[IMPORT]["actions"]] == [("update", vid(2))]
    assert cv.cos.objects[oid(2)]["address"]["street"] == "2 Elm St"
    assert entities[PUSH]["actions"] == []

    # On demand: `sync --full` reads everything on both sides, and finds nothing left to do.
    report = cv.tmp / "full.json"
    assert (await cli(cv, "sync", "--full", "--json", str(report)))[0] == 0
    entities = {e["entity"]: e for e in json.loads(report.read_text())["plan"]["entities"]}
    assert {e["mode"] for e in entities.values()} == {"full"}
    assert entities[IMPORT]["unchanged"] == 3 and entities[PUSH]["unchanged"] == 3
