"""Markdown tables of a benchmark run (``benchmarks/results/<name>.md``) and the check of the issue's targets."""

from __future__ import annotations

from typing import Any

from benchmarks.scenarios import in_memory, read_path
from reconciler.cycle import HELD_RECHECK, HELD_RECHECK_AFTER

#: Issue 11's targets.
FULL_VS_BASELINE = 1.5
INCREMENTAL_RATIO = 1.5
APPLY_VS_BARE = 0.90
PEAK_RSS_MB = 250.0
PEER_SPEEDUP = 20.0


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _n(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def fetch_s(t: dict[str, float]) -> float:
    return t.get("lookups", 0.0) + t.get("fetch", 0.0) + t.get("fetch_targets", 0.0)


def targets(run: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) rows; met is None when the run did not measure it."""
    scales = run["scales"]
    rows: list[tuple[str, str, bool | None]] = []
    if scales:
        worst = max(scales, key=lambda s: s["full"]["wall"] / s["baseline"]["wall"])
        ratio = worst["full"]["wall"] / worst["baseline"]["wall"]
        first = ""
        if all("first_full" in s for s in scales):
            ratios = [s["first_full"]["full"]["wall"] / s["first_full"]["baseline"]["wall"] for s in scales]
            first = (
                f"; the first full cycle after the load, which compares every pair: worst {max(ratios):.2f}×"
            )
        rows.append(
            (
                f"full cycle ≤ {FULL_VS_BASELINE}× the baseline",
                f"worst {ratio:.2f}× (N = {worst['n']:,}){first}",
                ratio <= FULL_VS_BASELINE,
            )
        )
    if len(scales) > 1:
        small, large = scales[0], scales[-1]
        ratio = large["incremental"]["wall"] / small["incremental"]["wall"]
        rows.append(
            (
                f"incremental cost {large['n']:,} ÷ {small['n']:,} ≤ {INCREMENTAL_RATIO}",
                f"{ratio:.2f}",
                ratio <= INCREMENTAL_RATIO,
            )
        )
    applied = [a for s in scales for a in s.get("apply", []) if a["engine_vs_bare"] is not None]
    if applied:
        worst_apply = min(applied, key=lambda a: a["engine_vs_bare"])
        share = worst_apply["engine_vs_bare"] or 0.0
        rows.append(
            (
                f"apply ≥ {APPLY_VS_BARE:.0%} of a bare aiohttp loop",
                f"worst {share:.0%} (concurrency {worst_apply['concurrency']})",
                share >= APPLY_VS_BARE,
            )
        )
    if scales:
        largest = scales[-1]
        rss = largest["full"]["peak_rss_mb"]
        rows.append(
            (
                f"peak RSS ≤ {PEAK_RSS_MB:.0f} MB at the largest scale",
                f"{rss:,.0f} MB (full cycle, N = {largest['n']:,})",
                rss <= PEAK_RSS_MB if largest["n"] >= 1_000_000 else None,
            )
        )
    peer = next((s for s in scales if "peer_reload" in s), None)
    if peer is not None:
        fmt, dlt = _fastest(peer["peer_reload"])
        ours = in_memory(peer["full"])
        speedup = dlt["dlt_s"] / ours if ours else 0.0
        rows.append(
            (
                f"ingest + diff ≥ {PEER_SPEEDUP:.0f}× faster than dlt's fastest",
                f"{speedup:.1f}× in memory; {(dlt['fetch_s'] + dlt['dlt_s']) / read_path(peer['full']):.1f}× "
                f"end to end (dlt {fmt}, reload 1% changed)",
                speedup >= PEER_SPEEDUP,
            )
        )
    return rows


def _fastest(loads: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    fmt = min(loads, key=lambda k: loads[k]["dlt_s"])
    return fmt, loads[fmt]


def markdown(run: dict[str, Any]) -> str:
    out: list[str] = []
    meta = run["meta"]
    scales = run["scales"]
    entity = meta["entity"]
    out.append(f"# Benchmarks — {meta['integration']} / {entity} ({meta['mode']})\n")
    if meta.get("profiled"):
        out.append(
            "**Profiled run**: the incremental and full cycles ran under pyinstrument (profiles next to this "
            "file), so their figures include its overhead; do not compare them with unprofiled runs.\n"
        )
    out.append(
        f"{meta['machine']}; Python {meta['python']}; {meta['started']}; whole run {meta['total_s'] / 60:.1f} min. "
        "Sandboxes, engine cycles, replays and peer loads each run in their own process on loopback"
        + (
            " — the sandbox pinned to core 0, every engine cycle and baseline replay to core 1 (server and client, "
            "as on two machines; dlt and the state-store test unpinned)"
            if meta.get("pinned")
            else ""
        )
        + f"; engine HTTP concurrency {meta['concurrency']} per system. Peak RSS is each process's own "
        "(`VmHWM`; `ru_maxrss` would also count the benchmark driver's memory, see `benchmarks/rss.py`).\n"
    )
    if meta["world"] == "network":
        sizes = ", ".join(f"N = {s['n']:,} → {s['fetched']:,} OZmap boxes" for s in scales)
        out.append(
            f"**Scale.** Entity `{entity}` only (OZmap → IXC client coordinates are in `clients.md`). `reconciler sandbox "
            "--scale S` makes ≈ S/10 boxes and 0.9 S clients, so N boxes would need S = 10 N and 9 N clients; "
            "the benchmarks instead start the same generator and servers with the network only "
            "(`benchmarks/sandbox.py`, no clients) at S = 10 N: "
            f"{sizes} (every box is fetched and normalised; ~77% pass the rule's filter and checks and get "
            "linked).\n"
        )
    out.append("## Targets\n")
    if meta["mode"] == "smoke":
        out.append(
            "Smoke run: a tiny world checks that every scenario works; its ratios are dominated by fixed costs "
            "and say nothing about the targets, which `make bench` measures.\n"
        )
    out.append("| target | measured | met |\n|---|---|---|")
    for name, measured, met in targets(run):
        out.append(f"| {name} | {measured} | {'–' if met is None else ('yes' if met else '**no**')} |")
    out.append("")

    out.append("## 1 + 2. Full cycle with 1% changed, against the baseline\n")
    out.append(
        "Baseline = the full cycle's own requests (from the sandbox request logs) replayed by a bare aiohttp "
        "loop at the same concurrency per system, every answer decoded with msgspec: reads first, then the "
        "apply's reads and writes. Each side is the best of "
        f"{len(scales[0].get('full_attempts', [1])) if scales else 1} runs (each run with its own fresh 1% edit; "
        "all runs are in `latest.json`). Stage seconds: fetch = source + target snapshot + lookup tables "
        "(I/O, decode, OZmap join), normalize = rule, links = state-store read, diff+plan = pure planner. "
        "These are the steady-state cycles: settled = linked records whose source and target read exactly as when "
        "the previous full cycle found them in agreement, counted unchanged without running the rule "
        "(`reconciler/agreement.py`); the first full cycle after the load is in the table below.\n"
    )
    out.append(
        "| N | records | changed | settled | baseline s (reads + apply) | full cycle s | fetch | normalize | "
        "links | diff+plan | apply | commit | records/s | ÷ baseline | read path ÷ baseline reads | CPU s: engine / "
        "sandbox (baseline: client / sandbox) | peak RSS MB (baseline) |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in scales:
        out.append(_full_row(s["n"], s["full"], s["baseline"]))
    if all("first_full" in s for s in scales):
        out.append(
            "\nFirst full cycle after the initial load (one run per N): no pair has fingerprints yet, so the rule "
            "runs on every record, every pair is compared, and the commit stores the fingerprints of the pairs in "
            "agreement (a one-off cost, also after a rule, lookup-table or engine change).\n"
        )
        out.append(
            "| N | records | changed | settled | baseline s (reads + apply) | full cycle s | fetch | normalize | "
            "links | diff+plan | apply | commit | records/s | ÷ baseline | read path ÷ baseline reads | CPU s: "
            "engine / sandbox (baseline: client / sandbox) | peak RSS MB (baseline) |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s in scales:
            out.append(_full_row(s["n"], s["first_full"]["full"], s["first_full"]["baseline"]))
    out.append("")
    _rest(out, run)
    return "\n".join(out) + "\n"


def _full_row(n: int, f: dict[str, Any], b: dict[str, Any]) -> str:
    """One row of the full-cycle tables: the engine's cycle ``f`` beside its baseline ``b``."""
    t = f["timings"]
    reads, writes = b["phases"].get("0", 0.0), b["phases"].get("1", 0.0)
    return (
        f"| {n:,} | {f['fetched']:,} | {f['changed']:,} | {f.get('settled', 0):,} "
        f"| {_f(b['wall'])} ({_f(reads)} + {_f(writes)}) "
        f"| {_f(f['wall'])} | {_f(fetch_s(t))} | {_f(t.get('normalize'))} | {_f(t.get('state'))} "
        f"| {_f(t.get('plan'))} | {_f(t.get('apply'))} | {_f(t.get('commit'))} "
        f"| {_n(f['fetched'] / f['wall'])} | {f['wall'] / b['wall']:.2f}× "
        f"| {read_path(f) / reads if reads else 0:.2f}× "
        f"| {_f(f.get('cpu_s'), 1)} / {_f(f.get('sandbox_cpu_s'), 1)} "
        f"({_f(b.get('cpu_s'), 1)} / {_f(b.get('sandbox_cpu_s'), 1)}) "
        f"| {_n(f['peak_rss_mb'])} ({_n(b['peak_rss_mb'])}) |"
    )


def _rest(out: list[str], run: dict[str, Any]) -> None:
    """Sections 3 to 6 and the setup figures."""
    scales, meta = run["scales"], run["meta"]
    out.append("## 3. Incremental cycle: cost follows changes, not size\n")
    out.append(
        "Changes = source records edited since the last sync; fetched = records read (changes and the cursor's "
        "lag window; held — skipped or quarantined — records due a re-check are read too but not counted, see "
        "below); OZmap requests include the OLT traces of those boxes (no whole-topology listing). Each row is "
        f"the fastest of {len(scales[0].get('incremental_attempts', [1])) if scales else 1} runs, the same "
        "records edited anew before each (a single cycle of about a second varies by ±30% on this machine; all "
        "runs are in the JSON).\n"
    )
    out.append(
        "| linked | changes | fetched | wall s | fetch | normalize | links | diff+plan | apply | commit | "
        "requests (ozmap / ixc) | ÷ smallest | CPU s: engine / sandbox | peak RSS MB |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = scales[0]["incremental"]["wall"] if scales else 1.0
    for s in scales:
        i, t = s["incremental"], s["incremental"]["timings"]
        req = i["sandbox_requests"]
        out.append(
            f"| {s['linked']:,} | {i['changed']:,} | {i['fetched']:,} | {_f(i['wall'])} | {_f(fetch_s(t))} "
            f"| {_f(t.get('normalize'))} | {_f(t.get('state'))} | {_f(t.get('plan'))} | {_f(t.get('apply'))} "
            f"| {_f(t.get('commit'))} | {req.get('ozmap', 0):,} / {req.get('ixc', 0):,} | {i['wall'] / base:.2f} "
            f"| {_f(i.get('cpu_s'), 1)} / {_f(i.get('sandbox_cpu_s'), 1)} | {_n(i['peak_rss_mb'])} |"
        )
    out.append("")
    due = [s for s in scales if "incremental_rechecks" in s]
    if due:
        out.append(
            "With held records due a re-check: the same edit once more after every held record was marked as "
            "checked long ago (the runs above find none due: the initial load checked them minutes before, less "
            f"than {HELD_RECHECK_AFTER.total_seconds() / 60:g} minutes ago), so the cycle also re-reads up to "
            f"{HELD_RECHECK:,} of them. One run each.\n"
        )
        out.append(
            "| linked | held | re-read | wall s | fetch | normalize | requests (ozmap / ixc) | ÷ fastest above |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for s in due:
            r, t = s["incremental_rechecks"], s["incremental_rechecks"]["timings"]
            req = r["sandbox_requests"]
            out.append(
                f"| {s['linked']:,} | {r['held']:,} | {r['rechecked']:,} | {_f(r['wall'])} | {_f(fetch_s(t))} "
                f"| {_f(t.get('normalize'))} | {req.get('ozmap', 0):,} / {req.get('ixc', 0):,} "
                f"| {r['wall'] / s['incremental']['wall']:.2f} |"
            )
        out.append("")

    applied = [(s, a) for s in scales for a in s.get("apply", [])]
    if applied:
        s0 = applied[0][0]
        latency = applied[0][1]["latency_s"] * 1000
        out.append("## 4. Apply throughput against a slow target\n")
        out.append(
            f"N = {s0['n']:,}; {latency:g} ms latency injected on every target request of `{meta['entity']}` "
            "(the read before each "
            "PUT and the PUT); one update = 2 requests. Bound (Little's law) = min(concurrency ÷ latency, rate "
            "limit); with a rate limit the token bucket starts full (one second of the rate), which the bound "
            "accounts for. Bare = the same requests replayed by a plain aiohttp loop at the same concurrency "
            "(no rate limit, so not compared on the rate-limited row).\n"
        )
        out.append(
            "| concurrency | rate limit /s | updates | requests | apply s | engine req/s | bound req/s | "
            "engine ÷ bound | bare req/s | bare ÷ bound | engine ÷ bare | sandbox CPU ÷ wall: engine run / bare "
            "run |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for _, a in applied:
            out.append(
                f"| {a['concurrency']} | {_n(a['rate_limit']) if a['rate_limit'] else 'none'} | {a['updates']:,} "
                f"| {a['requests']:,} | {_f(a['apply_s'])} | {_n(a['engine_rps'])} | {_n(a['bound_rps'])} "
                f"| {a['share_of_bound']:.0%} | {_n(a['bare_rps'])} | {a['bare_share_of_bound']:.0%} "
                f"| {'–' if a['engine_vs_bare'] is None else format(a['engine_vs_bare'], '.0%')} "
                f"| {a['engine_sandbox_cpu_s'] / a['engine_wall_s']:.0%} / {a['bare_sandbox_cpu_s'] / a['bare_wall_s']:.0%} |"
            )
        out.append("")

    peer = next((s for s in scales if "peer_reload" in s), None)
    if peer is not None:
        out.append("## 5. Peer: dlt merge vs the engine's ingest + diff, same records, same run\n")
        first_plan, full = peer["first_plan"], peer["full"]
        any_load = next(iter(peer["peer_reload"].values()))
        out.append(
            f"N = {peer['n']:,}: the {any_load['records']:,} OZmap box records of the joined view, fetched once "
            "through the engine's own connector (fetch s), then loaded by dlt from memory into a local duckdb "
            f"file, `write_disposition=merge`, `primary_key=id` (dlt {any_load['dlt_version']}; `arrow` = pages "
            "handed to dlt as pyarrow tables, written as parquet; `parquet` = dicts through dlt's normaliser "
            "into parquet). Engine in memory = normalize + links read + diff/plan of the same records "
            "(its fetch also reads the IXC snapshot). First = empty destination / empty state; reload = all "
            "records again with 1% changed.\n"
        )
        out.append(
            "| | first: fetch s | first: in memory s | reload: fetch s | reload: in memory s | "
            "in-memory records/s (reload) | peak RSS MB |"
        )
        out.append("|---|---|---|---|---|---|---|")
        for fmt in peer["peer_reload"]:
            a, b = peer["peer_first"][fmt], peer["peer_reload"][fmt]
            out.append(
                f"| dlt {fmt} | {_f(a['fetch_s'])} | {_f(a['dlt_s'])} | {_f(b['fetch_s'])} | {_f(b['dlt_s'])} "
                f"| {_n(b['records'] / b['dlt_s'])} | {_n(max(a['peak_rss_mb'], b['peak_rss_mb']))} |"
            )
        out.append(
            f"| engine ingest + diff | {_f(fetch_s(first_plan['timings']))} | {_f(in_memory(first_plan))} "
            f"| {_f(fetch_s(full['timings']))} | {_f(in_memory(full))} | {_n(full['fetched'] / in_memory(full))} "
            f"| {_n(max(first_plan['peak_rss_mb'], full['peak_rss_mb']))} |"
        )
        fmt, dlt = _fastest(peer["peer_reload"])
        out.append(
            f"\nReload, dlt's fastest here ({fmt}) ÷ engine: {dlt['dlt_s'] / in_memory(full):.1f}× in memory, "
            f"{(dlt['fetch_s'] + dlt['dlt_s']) / read_path(full):.1f}× end to end (fetch + load vs the engine's "
            "whole read path).\n"
        )

    store = run.get("state_store")
    if store:
        out.append("## 6. State store (SQLite, WAL)\n")
        rows = store["rows"]
        out.append("| operation | rows | s | rows/s |\n|---|---|---|---|")
        out.append(
            f"| upsert, new links, one transaction | {rows:,} | {_f(store['insert_s'])} | {_n(store['insert_rows_per_s'])} |"
        )
        out.append(
            f"| upsert, existing links (1% new hash), transactions of {store['batch']} | {rows:,} "
            f"| {_f(store['upsert_batched_s'])} | {_n(store['upsert_batched_rows_per_s'])} |"
        )
        out.append(
            f"| diff: read every link + compare hashes ({store['diff_changed']:,} changed) | {rows:,} "
            f"| {_f(store['diff_s'])} | {_n(store['diff_rows_per_s'])} |"
        )
        out.append(
            f"| incremental: links of 1,000 ids | {store['incremental_read_rows']:,} "
            f"| {_f(store['incremental_read_s'], 3)} | {_n(store['incremental_read_rows'] / store['incremental_read_s'])} |"
        )
        out.append(
            f"\nPeak RSS {store['peak_rss_mb']:,.0f} MB (test data included); database {store['db_mb']:,.0f} MB.\n"
        )

    loads = ", ".join(f"N = {s['n']:,}: {s['load_before'][0]:.1f} → {s['load_after'][0]:.1f}" for s in scales)
    out.append(f"Load average (1 min) before → after each scale: {loads}.\n")
    out.append("## Setup figures\n")
    out.append(
        "| N | sandbox start s | sandbox RSS MB | initial load s | creates / links | changing actions/s | "
        "initial peak RSS MB | converged |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for s in scales:
        i = s["initial"]
        acts = i["actions"]
        out.append(
            f"| {s['n']:,} | {_f(s['sandbox_startup_s'], 1)} | {_n(s['sandbox_peak_rss_mb'])} | {_f(i['wall'])} "
            f"| {acts['create']:,} / {acts['link']:,} | {_n(i['changes'] / i['wall'])} | {_n(i['peak_rss_mb'])} "
            f"| {'yes' if s['converged'] else '**no**'} |"
        )
    out.append("")
