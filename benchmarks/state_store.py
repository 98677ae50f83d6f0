"""State store throughput: link upserts and the diff of a full cycle, in their own process.

    python -m benchmarks.state_store --rows 1000000 [--dir DIR]

Against a fresh :class:`~reconciler.state.sqlite.SqliteStateStore` file (WAL, ``synchronous=NORMAL``, as the
engine opens it):

1. **insert** — ``rows`` new links in one :class:`~reconciler.state.store.Commit` (a first sync's final commit);
2. **upsert, apply batches** — the same links again, 1% with a new content hash, in commits of
   ``applying.COMMIT_BATCH`` rows (how apply flushes outcomes);
3. **diff** — what a full cycle does with the store: read every link, compare each content hash with the desired
   one (1% differ), count the changed;
4. **incremental read** — the links of 1 000 source ids (an incremental cycle's lookup).

Prints one JSON line with seconds and rows/s per step and the peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec

from benchmarks.rss import peak_rss_mb
from reconciler.applying import COMMIT_BATCH
from reconciler.state.sqlite import SqliteStateStore
from reconciler.state.store import Commit, LinkRow

INTEGRATION, ENTITY = "bench", "links"


def _links(rows: int, salt: str) -> list[LinkRow]:
    stamp = "2025-01-01T00:00:00.000Z"
    return [
        LinkRow(
            source_id=f"{n:024x}",
            target_id=str(n + 1),
            natural_key=f'{{"descricao":"CTO-{n}","id_projeto":"{n % 97}"}}',
            content_hash=f"{salt if n % 100 == 0 else 'h'}{n:015x}",
            updated_at=stamp,
        )
        for n in range(rows)
    ]


async def _run(rows: int, folder: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"rows": rows}
    first = _links(rows, "h")
    desired = {link.source_id: link.content_hash for link in _links(rows, "y")}
    async with SqliteStateStore(folder / "state.db") as store:
        started = time.perf_counter()
        await store.commit(Commit(INTEGRATION, ENTITY, upsert_links=tuple(first)))
        result["insert_s"] = time.perf_counter() - started

        del first
        second = _links(rows, "x")
        started = time.perf_counter()
        for start in range(0, rows, COMMIT_BATCH):
            await store.commit(
                Commit(INTEGRATION, ENTITY, upsert_links=tuple(second[start : start + COMMIT_BATCH]))
            )
        result["upsert_batched_s"] = time.perf_counter() - started
        result["batch"] = COMMIT_BATCH
        del second

        started = time.perf_counter()
        links = await store.links(INTEGRATION, ENTITY)
        read = time.perf_counter() - started
        changed = sum(1 for sid, link in links.items() if desired.get(sid) != link.content_hash)
        result["diff_read_s"] = read
        result["diff_s"] = time.perf_counter() - started
        result["diff_changed"] = changed
        del links

        wanted = list(desired)[:: max(1, rows // 1000)][:1000]
        started = time.perf_counter()
        some = await store.links(INTEGRATION, ENTITY, wanted)
        result["incremental_read_s"] = time.perf_counter() - started
        result["incremental_read_rows"] = len(some)
    for step in ("insert", "upsert_batched", "diff"):
        result[f"{step}_rows_per_s"] = rows / result[f"{step}_s"]
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.state_store")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="where the database goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-state-", dir=args.dir) as tmp:
        result = anyio.run(_run, args.rows, Path(tmp))
        result["db_mb"] = sum(p.stat().st_size for p in Path(tmp).glob("state.db*")) / 1e6
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
