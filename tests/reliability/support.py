"""Shared machinery of the reliability suite: generated worlds, configs, user edits and the final-state check.

Everything is generic over what exists *at run time*: the integrations are the rule folders shipped with the
package whose systems the sandbox runner serves (:func:`integrations`), and their entities are whatever
``Engine.rules`` loads. Per entity the checks are links, journal, natural-key duplicates of creating rules, link
targets that vanished and a full plan. On top, the records of every sandbox are compared one by one with a
*reference*: the same world driven through the same steps without faults or kills. Ids of records the engine
created differ between two runs, so rows are keyed by what a person reads (box name + project, login, client
code, OZmap box id) and references to created rows are translated into those keys.

Used by ``fault_suite`` and ``crash_harness`` (both runnable with ``python -m``) and by the pytest modules.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from reconciler import config as config_mod
from reconciler.engine import Engine, IntegrationRun
from reconciler.errors import GuardTripped, ReconcilerError
from reconciler.model import Quarantine
from reconciler.rules import loading
from reconciler.sandbox import runner

SEED = 7
#: Generated worlds of this scale have ~40 service boxes and ~350 clients: ~600 requests per full cycle.
SCALE = 400
#: HTTP settings for the tests: quick backoff, a Retry-After of 1 s honoured, 4 retries.
FAST_HTTP: dict[str, Any] = {"retries": 4, "backoff": 0.05, "backoff-max": 1.0, "timeout": 5}
#: Integration options of the tests' configs. ozmap-ixc: boxes whose OLT IXC lacks are created too, so a small
#: world links enough boxes (~25 at scale 400) for one removal to stay under the 10 % removal guard.
OPTIONS: dict[str, dict[str, Any]] = {"ozmap-ixc": {"create_box_without_olt": True}}
#: Linked boxes needed before one removal stays under a 10 % removal guard.
GUARD_SAFE_LINKS = 12
#: Fields that change on every write (ids of new rows, timestamps): never compared.
VOLATILE = frozenset(
    {
        "id",
        "_id",
        "ultima_atualizacao",
        "updatedAt",
        "createdAt",
        "creatorData",
        "__v",
        "updated_at",
        "synced_at",
        "created_at",
    }
)


#: Figures the pytest modules leave for the terminal summary (see conftest.py): title → printable text.
FIGURES: dict[str, str] = {}


def integrations() -> dict[str, tuple[str, ...]]:
    """Integration → the sandbox systems it needs: every shipped rule folder the sandbox runner can serve."""
    found: dict[str, tuple[str, ...]] = {}
    for path in loading.discover(loading.builtin_rules_dir()):
        name = path.parent.name
        systems = tuple(part for part in name.split("-") if part in runner.SYSTEMS)
        if len(systems) == len(name.split("-")):
            found[name] = tuple(s for s in runner.SYSTEMS if s in systems)
    return dict(sorted(found.items()))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def write_config(
    sandboxes: runner.Sandboxes,
    folder: Path,
    *,
    name: str = "reconciler.toml",
    http: Mapping[str, Any] = FAST_HTTP,
    state: str = "state.db",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    extra: str = "",
) -> Path:
    """An engine config for ``sandboxes`` (secrets in files) with ``http`` settings for every system.

    ``options`` (integration → option → value; default :data:`OPTIONS`) replace the runner's; ``extra`` is
    appended as is.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = sandboxes.write_config(folder / name, state_path=state)
    text = path.read_text(encoding="utf-8")
    for integration, chosen in (OPTIONS if options is None else options).items():
        if chosen and f"[integrations.{integration}]" in text:
            text = set_table(text, f"integrations.{integration}.options", chosen)
    for system in sandboxes:
        text = set_table(text, f"systems.{system.name}.http", http)
    path.write_text(text + extra, encoding="utf-8")
    return path


def set_table(text: str, table: str, values: Mapping[str, Any]) -> str:
    """``text`` (TOML) with ``values`` set in ``[table]``: keys already there are replaced; the table is added
    at the end when absent. Enough for the flat tables of an engine config."""
    lines = text.splitlines(keepends=True)
    header = f"[{table}]"
    assignments = [f"{k} = {_toml(v)}\n" for k, v in values.items()]
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        return text.rstrip("\n") + f"\n\n{header}\n" + "".join(assignments)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    kept = [line for line in lines[start + 1 : end] if line.split("=")[0].strip() not in values]
    return "".join([*lines[: start + 1], *assignments, *kept, *lines[end:]])


async def control(base_url: str, method: str, path: str, body: Any = None) -> Any:
    """Call a sandbox control route (``path`` relative to ``/_sandbox/``); fails on any 4xx/5xx."""
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{base_url}/_sandbox/{path}", json=body) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise AssertionError(f"{method} /_sandbox/{path} → {resp.status}: {text[:300]}")
            return json.loads(text) if text.strip() else None


async def clear_faults(sandboxes: runner.Sandboxes) -> None:
    """Remove every fault and answer rule from every sandbox."""
    for system in sandboxes:
        await control(system.url, "DELETE", "faults")
        await control(system.url, "DELETE", "answers")


@contextlib.asynccontextmanager
async def world(integration: str, seed: int = SEED, scale: int = SCALE) -> AsyncIterator[runner.Sandboxes]:
    """Fresh sandboxes of ``integration``'s systems serving the generated world of ``(seed, scale)``."""
    systems = integrations()[integration]
    async with runner.running(list(systems), seed=seed, scale=scale) as sandboxes:
        for system in sandboxes:
            system.faults.log_bodies = False  # the request log only needs methods, paths and headers here
        yield sandboxes


def write_requests(sandboxes: runner.Sandboxes) -> int:
    """Write requests served so far by every sandbox (an IXC list is a POST with ``ixcsoft: listar``)."""
    return sum(
        1
        for system in sandboxes
        for entry in list(system.faults.log)
        if entry.method != "GET" and entry.headers.get("ixcsoft", "").lower() != "listar"
    )


# ------------------------------------------------------------------------------------------------- cycles


@dataclass
class CycleLog:
    """What the cycles of one phase did: applied changes, failed actions, cycles that stopped with an error."""

    cycles: int = 0
    changes: int = 0
    failures: int = 0
    aborted: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)

    def add(self, run: IntegrationRun | None = None, *, error: BaseException | None = None) -> None:
        self.cycles += 1
        if run is not None:
            self.changes += run.plan.changes
            self.failures += run.failures
        if isinstance(error, GuardTripped):
            self.guards.append(str(error))
        elif error is not None:
            self.aborted.append(f"{type(error).__name__}: {error}")


async def sync_once(
    engine: Engine, integration: str, log: CycleLog, *, mode: str = "auto"
) -> IntegrationRun | None:
    """One ``sync`` cycle of the whole integration; a cycle that stops with an error is logged, not raised."""
    try:
        run = await engine.run(integration, mode=mode, apply=True)  # type: ignore[arg-type]
    except ReconcilerError as exc:
        log.add(error=exc)
        return None
    log.add(run)
    return run


async def converge(cfg: config_mod.Config, integration: str, *, most: int = 4) -> int:
    """Sync (incremental, as the daemon would) until a *full* plan is empty; returns the cycles it took.

    Raises AssertionError naming what is left when ``most`` cycles do not converge.
    """
    async with Engine.open(cfg) as engine:
        log = CycleLog()
        for n in range(1, most + 1):
            await sync_once(engine, integration, log)
            full = await engine.run(integration, mode="full")
            if full.plan.changes == 0 and not full.plan.guard_tripped:
                return n
        left = {
            e.entity: [f"{type(a).__name__} {a.label or a.source_id}" for a in e.actions][:5]
            for e in full.plan.entities
            if e.changes
        }
        raise AssertionError(
            f"{integration}: not converged after {most} clean cycles; left: {left}; "
            f"errors: {log.aborted}; guards: {log.guards}"
        )


# -------------------------------------------------------------------------------------------------- edits


class Edit(msgspec.Struct, frozen=True):
    """A change made by a person in one of the systems, through the sandbox's control API."""

    system: str
    method: str
    path: str
    body: Any = None
    why: str = ""


async def choose_edits(
    engine: Engine, integration: str, sandboxes: runner.Sandboxes, pending: set[str] | None
) -> list[Edit]:
    """People at work after the first sync, on records already linked: an OZmap box moved and another removed
    (when enough boxes are linked for the removal guard, and none of its dependents is in ``pending``, the
    :func:`unsettled` source ids of that sync); for ozmap-ixc also an OZmap client renamed (the ERP's name
    wins) and an IXC login cancelled."""
    edits: list[Edit] = []
    rules = engine.rules(integration)
    box_rule = next((r for r in rules if (r.source_system, r.source_collection) == ("ozmap", "boxes")), None)
    if box_rule is not None:
        links = await engine.store.links(integration, box_rule.entity)
        active = sorted(sid for sid, row in links.items() if row.state == "active")
        box = sandboxes["ozmap"].store.get("boxes", active[0]) if active else None
        if box is not None and box.get("lat") is not None and box.get("lng") is not None:
            lat, lng = round(box["lat"] + 0.0005, 6), round(box["lng"] - 0.0005, 6)
            body = {"observation": "moved across the street", "lat": lat, "lng": lng, "coords": [lng, lat]}
            edits.append(Edit("ozmap", "PATCH", f"store/boxes/{active[0]}", body, "box moved"))
        quiet = [
            sid
            for sid in active
            if pending is not None and not _box_in_use(sandboxes, sid, links[sid].target_id, pending)
        ]
        if len(active) >= GUARD_SAFE_LINKS and quiet:
            edits.append(Edit("ozmap", "DELETE", f"store/boxes/{quiet[-1]}", None, "box removed"))
    if integration == "ozmap-ixc" and any(r.entity == "client-status" for r in rules):
        statuses = await engine.store.links(integration, "client-status")
        pairs = sorted((sid, row.target_id) for sid, row in statuses.items() if row.state == "active")
        if len(pairs) >= 2:
            renamed, cancelled = pairs[0][1], pairs[-1][0]
            edits.append(
                Edit("ozmap", "PATCH", f"store/ftth-clients/{renamed}", {"name": "Renamed"}, "client renamed")
            )
            edits.append(
                Edit(
                    "ixc",
                    "PATCH",
                    f"store/radusuarios/{cancelled}",
                    {"ativo": "N", "id_contrato": "0"},
                    "login cancelled",
                )
            )
    return edits


def _box_in_use(sandboxes: runner.Sandboxes, box_id: str, target_id: str, unsettled: set[str]) -> bool:
    """Whether a record depending on the box (a client in it, a login or an ONU pointing at it) has an action
    that did not succeed yet (``unsettled`` source ids).

    Removing such a box makes the final state depend on *when* that action runs (a client moved into the box
    before or after it vanished), so the run could legitimately end unlike the reference.
    """
    if any(
        p.get("box") == box_id and p["id"] in unsettled for p in sandboxes["ozmap"].store.all("properties")
    ):
        return True
    logins = sandboxes["ixc"].store.all("radusuarios") if "ixc" in sandboxes else []
    if any(r.get("id_caixa_ftth") == target_id and r["id"] in unsettled for r in logins):
        return True
    onus = sandboxes["archolt"].store.all("onus") if "archolt" in sandboxes else []
    return any((o.get("cto") or {}).get("ozmap_box_id") == box_id and str(o["id"]) in unsettled for o in onus)


def unsettled(run: IntegrationRun | None) -> set[str] | None:
    """Source ids whose action did not succeed in ``run`` (None: the cycle stopped, everything is unsettled)."""
    if run is None:
        return None
    return {o.source_id for r in run.results for o in r.outcomes if not o.ok}


async def apply_edits(sandboxes: runner.Sandboxes, edits: Iterable[Edit]) -> None:
    for edit in edits:
        await control(sandboxes[edit.system].url, edit.method, edit.path, edit.body)


# ------------------------------------------------------------------------------------------- final state


@dataclass
class FinalState:
    """Everything the reliability checks compare, gathered once the engine converged."""

    links: dict[str, dict[str, str]]
    """entity → source id → link state (active/inactive)."""
    pending: dict[str, int]
    """entity → journal rows still ``pending``."""
    key_counts: dict[str, collections.Counter[tuple[str, ...]]]
    """creating entity → natural key → target records carrying it."""
    rows: dict[str, dict[str, Any]]
    """"system.collection" → readable key → the records' comparable content."""
    quarantined: int
    plan_changes: int
    dangling: dict[str, int] = field(default_factory=dict)
    """entity → active links whose target record no longer exists."""
    shared: dict[str, int] = field(default_factory=dict)
    """entity → target records linked to more than one source."""


async def final_state(cfg: config_mod.Config, sandboxes: runner.Sandboxes, integration: str) -> FinalState:
    """Read the state store, the sandboxes and a full plan (nothing is written)."""
    async with Engine.open(cfg) as engine:
        full = await engine.run(integration, mode="full")
        state = FinalState(
            links={},
            pending={},
            key_counts={},
            rows=readable_rows(sandboxes),
            quarantined=sum(1 for e in full.plan.entities for a in e.actions if isinstance(a, Quarantine)),
            plan_changes=full.plan.changes,
        )
        for rule in engine.rules(integration):
            entity = rule.entity
            rows = await engine.store.links(integration, entity)
            state.links[entity] = {sid: row.state for sid, row in rows.items()}
            state.pending[entity] = len(await engine.store.journal_unresolved(integration, entity))
            active = {sid: row.target_id for sid, row in rows.items() if row.state == "active"}
            state.shared[entity] = sum(1 for n in collections.Counter(active.values()).values() if n > 1)
            connector = engine.connectors[rule.target_system]
            if active:
                found = await connector.fetch_by_ids(rule.target_collection, sorted(set(active.values())))
                present = {r.id for r in found}
                state.dangling[entity] = sum(1 for t in active.values() if t not in present)
            if rule.on_unmatched == "create" and rule.first_sight:
                counts: collections.Counter[tuple[str, ...]] = collections.Counter()
                async for page in connector.stream(rule.target_collection):
                    for record in page:
                        if rule.target_matches(record):
                            counts[tuple(str(record.fields.get(k)) for k in rule.first_sight)] += 1
                state.key_counts[entity] = counts
    return state


def readable_rows(sandboxes: runner.Sandboxes) -> dict[str, dict[str, Any]]:
    """Every sandbox's synced collections keyed by what a person reads; ids of other rows translated."""
    out: dict[str, dict[str, Any]] = {}

    def group(name: str, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
        grouped: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for key, content in rows:
            grouped[key].append(content)
        out[name] = {k: sorted(v, key=repr) for k, v in grouped.items()}

    if "ixc" in sandboxes:
        ixc = sandboxes["ixc"].store
        box_key = {r["id"]: f"{r['descricao']} @ {r['id_projeto']}" for r in ixc.all("rad_caixa_ftth")}
        group("ixc.rad_caixa_ftth", ((box_key[r["id"]], _plain(r)) for r in ixc.all("rad_caixa_ftth")))
        group(
            "ixc.radusuarios",
            (
                (
                    r["login"],
                    {**_plain(r), "id_caixa_ftth": box_key.get(r["id_caixa_ftth"], r["id_caixa_ftth"])},
                )
                for r in ixc.all("radusuarios")
            ),
        )
    if "ozmap" in sandboxes:
        oz = sandboxes["ozmap"].store
        box_names = {r["id"]: r.get("name") for r in [*oz.all("boxes"), *oz.all("buildings")]}
        codes = {r["id"]: r.get("code") for r in oz.all("ftth-clients")}
        group(
            "ozmap.ftth-clients",
            (
                (
                    str(r.get("code")),
                    {k: r.get(k) for k in ("name", "implanted", "status", "observation", "onu")},
                )
                for r in oz.all("ftth-clients")
            ),
        )

        def property_key(row: Mapping[str, Any]) -> str:
            history = [str(c.get("code")) for c in (row.get("history") or {}).get("clients", [])]
            return " / ".join(history) or f"(never a client) {row.get('address')}"

        group(
            "ozmap.properties",
            (
                (
                    property_key(r),
                    {
                        "box": box_names.get(str(r.get("box")), r.get("box")),
                        "client": codes.get(str(r.get("client"))) if r.get("client") else None,
                        "observation": r.get("observation"),
                        "address": r.get("address"),
                    },
                )
                for r in oz.all("properties")
            ),
        )
    if "cosbe" in sandboxes:
        # Objects the engine creates get new ids, numbers and admin links; retried updates bump ``version``;
        # deep links name the Vetro sandbox, whose port differs from run to run.
        skip = {"objectNumber", "adminUrl", "version"}

        def cosbe_row(row: Mapping[str, Any]) -> dict[str, Any]:
            content = _plain(row, skip)
            if isinstance(content.get("vetroLink"), str):
                content["vetroLink"] = re.sub(r"^https?://[^/]+", "<vetro>", content["vetroLink"])
            return content

        group(
            "cosbe.objects",
            (
                (
                    str(r.get("externalServiceLocationId") or r.get("externalIdentification") or r["id"]),
                    cosbe_row(r),
                )
                for r in sandboxes["cosbe"].store.all("objects")
            ),
        )
    if "vetro" in sandboxes:
        group(
            "vetro.features",
            (
                (
                    str((f.get("x-vetro") or {}).get("feature_id")),
                    _vetro_feature(f),
                )
                for f in _features(sandboxes["vetro"].store)
            ),
        )
    if "archolt" in sandboxes:
        arch = sandboxes["archolt"].store
        group("archolt.ctos", ((str(r.get("ozmap_box_id")), _plain(r)) for r in arch.all("ctos")))
        group("archolt.olts", ((str(r.get("name")), _plain(r)) for r in arch.all("olts")))
    return out


def _plain(row: Mapping[str, Any], skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in VOLATILE and k not in skip}


#: Vetro attributes naming a COS BE object by its id or number: created objects get new ones in every run.
COS_REFERENCES = frozenset({"COS Object ID", "COS Object Number", "COS Link"})


def _vetro_feature(feature: Mapping[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in (feature.get("properties") or {}).items() if k not in COS_REFERENCES}
    return {"geometry": feature.get("geometry"), "properties": properties}


def _features(store: Any) -> list[dict[str, Any]]:
    """Vetro features as plain dicts (the store may keep them as objects)."""
    out = []
    for feature in store.all("features"):
        out.append(feature if isinstance(feature, dict) else msgspec.to_builtins(feature))
    return out


@dataclass
class Verdict:
    """How a run's final state compares with the reference."""

    duplicates: int = 0
    links_lost: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def compare(test: FinalState, ref: FinalState) -> Verdict:
    """Duplicates, lost links and every record that differs from the reference (readable, capped)."""
    verdict = Verdict()
    problems = verdict.problems
    if test.plan_changes:
        problems.append(f"a full plan still has {test.plan_changes} change(s)")
    for entity, count in test.pending.items():
        if count:
            problems.append(f"{entity}: {count} journal row(s) still pending")
    for what, mine, theirs in (
        ("dangling", test.dangling, ref.dangling),
        ("shared", test.shared, ref.shared),
    ):
        for entity in sorted(set(mine) | set(theirs)):
            if mine.get(entity, 0) != theirs.get(entity, 0):
                problems.append(
                    f"{entity}: {mine.get(entity, 0)} {what} link target(s), the reference {theirs.get(entity, 0)}"
                )
    for entity, counts in test.key_counts.items():
        reference = ref.key_counts.get(entity, collections.Counter())
        # a duplicate: more records carry the key than in the reference, and more than one
        extra = {
            k: n - max(1, reference.get(k, 0)) for k, n in counts.items() if n > max(1, reference.get(k, 0))
        }
        if extra:
            verdict.duplicates += sum(extra.values())
            problems.append(f"{entity}: duplicate target records for {sorted(extra)[:5]}")
        appeared = sorted(k for k, n in counts.items() if n == 1 and not reference.get(k))
        if appeared:
            problems.append(
                f"{entity}: {len(appeared)} target record(s) the reference lacks, e.g. {appeared[:3]}"
            )
    for entity, links in ref.links.items():
        mine_links = test.links.get(entity, {})
        lost = sorted(sid for sid in links if sid not in mine_links)
        extra_links = sorted(sid for sid in mine_links if sid not in links)
        # Source records the engine created (the OZmap property of a reservation) get new ids in every run: as
        # many unmatched ids on both sides are the same records, which the row comparison below checks.
        renamed = min(len(lost), len(extra_links))
        lost, extra_links = lost[renamed:], extra_links[renamed:]
        verdict.links_lost += len(lost)
        if lost:
            problems.append(f"{entity}: {len(lost)} link(s) lost, e.g. {lost[:3]}")
        if extra_links:
            problems.append(
                f"{entity}: {len(extra_links)} link(s) the reference lacks, e.g. {extra_links[:3]}"
            )
        differ = sorted(sid for sid, state in links.items() if sid in mine_links and mine_links[sid] != state)
        if differ:
            problems.append(f"{entity}: {len(differ)} link state(s) differ, e.g. {differ[:3]}")
    if test.quarantined != ref.quarantined:
        problems.append(f"quarantined {test.quarantined} records, the reference {ref.quarantined}")
    for name, rows in ref.rows.items():
        mine_rows = test.rows.get(name, {})
        missing = sorted(set(rows) - set(mine_rows))
        added = sorted(set(mine_rows) - set(rows))
        changed = sorted(k for k in set(rows) & set(mine_rows) if rows[k] != mine_rows[k])
        for what, keys in (("missing", missing), ("extra", added), ("different", changed)):
            if keys:
                detail = f": {_diff(rows[keys[0]], mine_rows[keys[0]])}" if what == "different" else ""
                problems.append(f"{name}: {len(keys)} {what} record(s), e.g. {keys[0]!r}{detail}")
    return verdict


def _diff(ref: Sequence[Mapping[str, Any]], mine: Sequence[Mapping[str, Any]]) -> str:
    if len(ref) != len(mine):
        return f"{len(mine)} record(s) instead of {len(ref)}"
    for a, b in zip(ref, mine, strict=True):
        fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if fields:
            return ", ".join(f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in fields[:4])
    return "(order)"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            numeric = cell.replace(".", "", 1).isdigit()
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return " | ".join(out).rstrip()

    return "\n".join([line(cells[0]), "-+-".join("-" * w for w in widths), *(line(r) for r in cells[1:])])
