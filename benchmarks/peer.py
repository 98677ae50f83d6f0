"""The peer: the same source records loaded and merged with dlt, in their own process.

    python -m benchmarks.peer --config CFG --dir DIR --phase first|reload [--format parquet] [--entity boxes]

The records are exactly those the engine ingests: the OZmap connector's stream of the entity's source collection
(for ``boxes`` the joined, flat view: project name, service splitters, OLT), fetched with the same requests and
concurrency, *first*, into memory (``fetch_s``); dlt then loads them from memory (``dlt_s``), so its figure is
dlt's own work, comparable with the engine's in-memory ingest + diff (normalise, read links, diff/plan), and
``fetch_s + dlt_s`` is comparable with the engine's whole read path. The resource is declared
``write_disposition="merge"``, ``primary_key="id"``, into a local duckdb file under ``DIR``; ``first`` loads an
empty destination, ``reload`` (same ``DIR``) loads the whole snapshot again and merges it (the 1%-changed
reload). Formats:

* ``parquet`` — dicts, dlt's Python normaliser writes parquet, duckdb loads parquet (dlt's fastest *dict* path);
* ``insert_values`` — dlt's default: dicts written as SQL ``INSERT … VALUES`` files;
* ``arrow`` — each page converted to a ``pyarrow.Table`` before dlt sees it (dlt's arrow path; its normaliser
  only re-writes parquet).

Prints one JSON line: records, fetch seconds, dlt seconds per step (extract, normalize, load) and in total, peak
RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.rss import peak_rss_mb

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")


def fetch(config: Path, system: str, collection: str) -> list[list[dict[str, Any]]]:
    """Every page of the collection, through the engine's own connector (same requests, same concurrency)."""
    from reconciler import config as config_mod
    from reconciler.connectors import registry
    from reconciler.connectors.http import make_session

    async def pages() -> list[list[dict[str, Any]]]:
        cfg = config_mod.load(config)
        source = cfg.systems[system]
        session = make_session(source.http, limit=source.http.concurrency)
        out: list[list[dict[str, Any]]] = []
        try:
            connector = registry.create(source, session)
            async for page in connector.stream(collection):
                out.append([dict(record.fields) for record in page])
        finally:
            await session.close()
        return out

    return asyncio.run(pages())


def run(args: argparse.Namespace) -> dict[str, Any]:
    import dlt

    from benchmarks.entities import ENTITIES

    entity = ENTITIES[args.entity]
    collection = _source_collection(args.config, entity.integration, entity.name)
    started = time.perf_counter()
    pages = fetch(args.config, entity.source_system, collection)
    fetch_s = time.perf_counter() - started
    records = sum(len(page) for page in pages)
    arrow = args.format == "arrow"
    file_format = "parquet" if arrow else args.format

    @dlt.resource(name=entity.name, primary_key="id", write_disposition="merge")
    def source_records() -> Iterator[Any]:
        if arrow:
            import pyarrow as pa

            for page in pages:
                yield pa.Table.from_pylist(page)
        else:
            yield from pages

    args.dir.mkdir(parents=True, exist_ok=True)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{entity.name}",
        pipelines_dir=str(args.dir / "pipelines"),
        destination=dlt.destinations.duckdb(str(args.dir / "peer.duckdb")),
        dataset_name="source",
        progress=None,  # type: ignore[arg-type]
    )
    steps: dict[str, float] = {}
    started = time.perf_counter()
    pipeline.extract(source_records(), loader_file_format=file_format)  # type: ignore[arg-type]
    steps["extract"] = time.perf_counter() - started
    step = time.perf_counter()
    pipeline.normalize()
    steps["normalize"] = time.perf_counter() - step
    step = time.perf_counter()
    pipeline.load()
    steps["load"] = time.perf_counter() - step
    dlt_s = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"SELECT count(*) FROM {entity.name}")[0][0]
    return {
        "phase": args.phase,
        "format": args.format,
        "records": records,
        "rows_in_destination": rows,
        "fetch_s": fetch_s,
        "dlt_s": dlt_s,
        "steps": steps,
        "records_per_s": records / dlt_s if dlt_s else None,
        "peak_rss_mb": peak_rss_mb(),
        "dlt_version": dlt.__version__,
    }


def _source_collection(config: Path, integration: str, entity: str) -> str:
    from reconciler import config as config_mod
    from reconciler.engine import load_rules

    for rule in load_rules(config_mod.load(config), integration):
        if rule.entity == entity:
            return rule.source_collection
    raise SystemExit(f"no rule for {integration}/{entity}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument(
        "--dir", type=Path, required=True, help="pipelines folder and duckdb file (kept between phases)"
    )
    parser.add_argument("--phase", choices=["first", "reload"], required=True)
    parser.add_argument("--format", choices=["parquet", "insert_values", "arrow"], default="parquet")
    parser.add_argument("--entity", default="boxes")
    args = parser.parse_args(argv)
    result = run(args)
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
