"""One cycle of one entity: fetch → normalize → diff/plan → apply → commit.

This module is the thin shell around the pure core: it does the I/O (connectors, state store) and hands plain
values to ``rules`` (normalise) and ``planning`` (plan). Stage timings are recorded for the report and the
benchmarks.

Incremental reads use ``since = cursor`` with *inclusive* semantics and a lag window, so a record written while
a page was being read is seen next time; content hashes make the re-read records free. The cursor moves only
past records whose actions all succeeded: when one fails, the cursor stops at the oldest failed record.
Records skipped or quarantined ("held") are kept in the quarantine table. A fix to the record itself (a
coordinate corrected in OZmap) bumps its change marker, so the next incremental cycle reads it anyway. A fix
elsewhere is picked up without waiting for the daily full resync: when the rule's lookup tables changed (an OLT
added to IXC) every held record is re-read by id; otherwise each incremental cycle re-reads the
:data:`HELD_RECHECK` held records checked least recently among those last checked at least
:data:`HELD_RECHECK_AFTER` ago, so the cost of a cycle follows the changes, not the size of the backlog, every
held record is still re-checked in turn, and cycles run back to back do not read the same held records again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec

from reconciler import agreement, heap, planning
from reconciler.applying import (
    ApplySettings,
    Gate,
    apply_plan,
    iso_utc,
    now_iso,
    quarantine_rows,
    resolve_pending,
)
from reconciler.candidates import Candidates
from reconciler.connectors.base import Connector
from reconciler.errors import GuardTripped
from reconciler.hashtable import HashedIds
from reconciler.link_index import LinkIndex, LinkIndexBuilder
from reconciler.model import (
    Desired,
    EntityPlan,
    Filtered,
    Normalized,
    Outcome,
    Record,
    Skip,
    Value,
)
from reconciler.rules import lookups as rule_lookups
from reconciler.state.store import Commit, LinkRefresh, LinkRow, StateStore

#: Seconds re-read before the cursor, for writes that committed while a page was being read.
CURSOR_LAG_SECONDS = 60
#: Above this many unlinked records an incremental cycle reads the whole target collection instead of
#: looking each natural key up.
FIND_ONE_BY_ONE_MAX = 200
#: Records normalised between two yields to the event loop, and the size of a plan computed in a worker thread:
#: a long cycle never holds the loop for long, so the daemon's other work (webhooks, targeted cycles) goes on.
NORMALIZE_SLICE = 250
PLAN_IN_THREAD_MIN = 2000
#: A full cycle reads the agreed targets of unsettled sources by id up to this share of the snapshot, else it
#: streams the target collection again.
REREAD_BY_ID_SHARE = 0.05
#: Ids a full cycle re-reads at a time, each batch slimmed before the next is read.
REREAD_CHUNK = 1000
#: Held records re-read by an incremental cycle whose lookup tables did not change (least recently checked first).
HELD_RECHECK = 1000
#: ... and only those last checked at least this long ago: one checked minutes ago by the cycle before (or held
#: again by it) is not read again by every cycle that follows; the wait is short beside a rotation through a
#: large backlog (66,000 held boxes at HELD_RECHECK per cycle) and beside the daily full resync.
HELD_RECHECK_AFTER = timedelta(minutes=10)
#: The cursor name under which a cycle saves the fingerprint of the lookup tables it used.
LOOKUPS_MARK = "lookups-fingerprint"

Mode = Literal["auto", "full", "incremental"]
Progress = Callable[[str, int], None]


class RuleLike(Protocol):
    """What the cycle needs of a compiled rule (see ``reconciler.rules.compiling.CompiledRule``)."""

    @property
    def integration(self) -> str: ...
    @property
    def entity(self) -> str: ...
    @property
    def source_system(self) -> str: ...
    @property
    def source_collection(self) -> str: ...
    @property
    def incremental(self) -> bool: ...
    @property
    def target_system(self) -> str: ...
    @property
    def target_collection(self) -> str: ...
    @property
    def fields(self) -> tuple[str, ...]: ...
    @property
    def first_sight(self) -> tuple[str, ...]: ...
    @property
    def first_sight_fallback(self) -> tuple[str, ...]: ...
    @property
    def on_unmatched(self) -> Literal["create", "skip", "ignore"]: ...
    @property
    def apply_action(self) -> Literal["update", "delete", "operation"]: ...
    @property
    def operation(self) -> str: ...
    @property
    def updatable(self) -> frozenset[str]: ...
    @property
    def lookups(self) -> Mapping[str, Any]: ...
    @property
    def removal(self) -> Any: ...
    @property
    def max_inactivate_share(self) -> float | None: ...
    @property
    def fingerprint(self) -> bytes: ...
    @property
    def source_reads(self) -> tuple[str, ...]: ...
    @property
    def target_filter_reads(self) -> frozenset[str]: ...

    def normalize(self, record: Record, lookups: Mapping[str, Mapping[str, Value]]) -> Normalized: ...

    def target_matches(self, record: Record) -> bool: ...


class CycleResult(msgspec.Struct):
    """What one entity cycle did."""

    plan: EntityPlan
    outcomes: list[Outcome] = msgspec.field(default_factory=list)
    applied: bool = False
    fetched: int = 0
    cursor_before: str | None = None
    cursor_after: str | None = None
    timings: dict[str, float] = msgspec.field(default_factory=dict)
    recovered: int = 0
    settled: int = 0
    """Records of a full cycle counted unchanged without running the rule (see ``reconciler.agreement``)."""

    @property
    def failures(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok and o.kind not in ("skip", "quarantine"))


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def add(self, stage: str, started: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started


def plan_spec(rule: RuleLike, default_share: float) -> planning.PlanSpec:
    """The planner's view of a compiled rule."""
    removal = rule.removal
    return planning.PlanSpec(
        integration=rule.integration,
        entity=rule.entity,
        source=f"{rule.source_system}.{rule.source_collection}",
        target=f"{rule.target_system}.{rule.target_collection}",
        first_sight=tuple(rule.first_sight),
        first_sight_fallback=tuple(rule.first_sight_fallback),
        updatable=frozenset(rule.updatable),
        removal=planning.Removal(action=removal.action, field=removal.field or "", value=removal.value),
        max_inactivate_share=(
            rule.max_inactivate_share if rule.max_inactivate_share is not None else default_share
        ),
        on_unmatched=rule.on_unmatched,
        apply=rule.apply_action,
        operation=rule.operation,
    )


async def run_entity(
    rule: RuleLike,
    *,
    connectors: Mapping[str, Connector],
    store: StateStore,
    limiters: Mapping[str, anyio.CapacityLimiter],
    run_id: str,
    mode: Mode = "auto",
    apply: bool = False,
    allow_mass_removal: bool = False,
    default_share: float = 0.10,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
    hold: Mapping[str, str] | None = None,
    recheck: Collection[str] = (),
    gate: Gate | None = None,
    live_runs: Collection[str] = (),
    compare_all: bool = False,
) -> CycleResult:
    """Run one cycle of ``rule``'s entity. ``apply=False`` is the dry run (stops after plan).

    ``only``: a *targeted* cycle over these source ids (webhooks, on-demand): they are read by id, an id the
    source no longer has counts as removed, and the cursor does not move. ``hold``: source id → reason; the
    actions of these records are turned into skips with that reason (per-record backoff after failures).
    ``recheck``: held source ids an incremental cycle re-reads whenever it runs, however recently they were
    checked (records whose backoff after failures has run out: they must not wait :data:`HELD_RECHECK_AFTER`).
    ``gate`` serializes each action with another cycle of the entity running beside this one (see
    ``applying``); ``live_runs`` are the runs in progress whose pending journal rows are not left behind.
    ``compare_all``: a full cycle runs the rule on every record and compares every pair, even those read exactly
    as when last found in agreement (see ``reconciler.agreement``).

    Raises :class:`GuardTripped` (after planning, before acting) when ``apply`` is set and the plan trips a
    guard without ``allow_mass_removal``; the plan is attached as ``exc.args[1]``.
    """
    source = connectors[rule.source_system]
    target = connectors[rule.target_system]
    timer = _Timer()
    spec = plan_spec(rule, default_share)
    integration, entity = rule.integration, rule.entity

    recovered: list[Outcome] = []
    if apply:
        recovered = await resolve_pending(
            integration=integration,
            entity=entity,
            connector=target,
            store=store,
            target_collection=rule.target_collection,
            live_runs=live_runs,
        )

    cursor = await store.cursor(integration, entity)
    effective: Literal["full", "incremental", "targeted"] = (
        "full" if mode == "full" or cursor is None or not rule.incremental else "incremental"
    )
    if only is not None:
        effective = "targeted"

    started = time.perf_counter()
    tables = await _lookup_tables(rule, connectors, store)
    timer.add("lookups", started)
    lookups_mark = lookups_fingerprint(tables)

    key = agreement.basis(rule.fingerprint, lookups_mark)
    reading = _Reading()
    since = _shift(cursor, -CURSOR_LAG_SECONDS) if effective == "incremental" else None
    if effective == "full":
        # links and the target snapshot first: a pair read exactly as when last found in agreement is settled
        # while the source streams, without running the rule (see ``reconciler.agreement``)
        started = time.perf_counter()
        held = HashedIds(await store.held_ids(integration, entity))
        builder = LinkIndexBuilder(held)
        await store.scan_links(integration, entity, builder.add)
        index = builder.build()
        timer.add("state", started)
        started = time.perf_counter()
        snapshot = await _full_snapshot(rule, target, index, key if not compare_all else None)
        index.forget_targets()
        timer.add("fetch_targets", started)
        targets = snapshot.records
        started = time.perf_counter()
        settling = (index, agreement.source_fingerprinter(rule.source_reads, key), held)
        trimmer = heap.Trimmer()
        async for page in source.stream(rule.source_collection, fields=rule.source_reads):
            await _read_page(rule, page, tables, reading, timer, settle=settling)
            trimmer.page_done()
            if progress is not None:
                progress(f"{integration}/{entity}: fetched", reading.fetched)
        timer.add("fetch", started)
        started = time.perf_counter()
        links = await _unsettled_links(store, integration, entity, index)
        # a target linked to a settled pair was dropped from the snapshot, so among the snapshot's targets the
        # claimed ones are exactly those of the links left
        claimed = frozenset(row.target_id for row in links.values())
        timer.add("state", started)
        started = time.perf_counter()
        await _reread_agreed_targets(rule, target, links, index, snapshot)
        del settling, index  # the plan and the commit need none of it (~40 MB at 1M links)
        _unpack_candidates(rule, snapshot, reading.normalized, links)
        timer.add("fetch_targets", started)
    else:
        started = time.perf_counter()
        if only is not None:
            wanted = sorted(set(only))
            records = (
                await source.fetch_by_ids(rule.source_collection, wanted, fields=rule.source_reads)
                if wanted
                else []
            )
            await _read_page(rule, records, tables, reading, timer)
            reading.gone.extend(sorted(set(wanted) - {r.id for r in records}))
        else:
            trimmer = heap.Trimmer()
            async for page in source.stream(rule.source_collection, since=since, fields=rule.source_reads):
                await _read_page(rule, page, tables, reading, timer)
                trimmer.page_done()
                if progress is not None:
                    progress(f"{integration}/{entity}: fetched", reading.fetched)
        if effective == "incremental":
            await _read_incremental_extras(
                rule, source, store, since, lookups_mark, tables, reading, timer, recheck
            )
        timer.add("fetch", started)
        started = time.perf_counter()
        links = await store.links(
            integration, entity, [n.source_id for n in reading.normalized] + reading.gone
        )
        timer.add("state", started)
        started = time.perf_counter()
        targets, claimed = await _targets(rule, target, store, reading.normalized, links, reading.gone)
        timer.add("fetch_targets", started)
    timer.timings["fetch"] = timer.timings.get("fetch", 0.0) - timer.timings.get("normalize", 0.0)
    normalized, gone, fetched = reading.normalized, reading.gone, reading.fetched

    started = time.perf_counter()
    # The guard's denominator. An incremental cycle with nothing gone and no linked record filtered out removes
    # nothing, so it skips counting ~1M links; should it remove anyway, the smaller count only makes the guard
    # stricter.
    may_remove = (
        effective == "full"
        or bool(gone)
        or any(isinstance(n, Filtered) and n.source_id in links for n in normalized)
    )
    linked_total = await store.count_links(integration, entity) if may_remove else len(links)
    data = planning.PlanInput(
        mode="full" if effective == "full" else "incremental",
        normalized=normalized,
        links={
            sid: planning.LinkState(row.target_id, row.content_hash, row.state == "active")
            for sid, row in links.items()
        },
        targets=targets,
        claimed_targets=claimed,
        gone=gone,
        linked_total=linked_total,
        force_compare=effective == "full",
        hold=dict(hold or {}),
        settled=reading.settled,
        filtered=reading.filtered,
    )
    if len(normalized) + len(targets) >= PLAN_IN_THREAD_MIN:  # keep the event loop responsive meanwhile
        entity_plan = await anyio.to_thread.run_sync(planning.plan, spec, data)
    else:
        entity_plan = planning.plan(spec, data)
    entity_plan = _spare_unreadable_targets(entity_plan, targets)
    if effective == "targeted":
        entity_plan = msgspec.structs.replace(entity_plan, mode="targeted")
    timer.add("plan", started)

    result = CycleResult(
        plan=entity_plan,
        fetched=fetched,
        cursor_before=cursor,
        timings=timer.timings,
        recovered=len(recovered),
        outcomes=list(recovered),
        settled=reading.settled,
    )
    if not apply:
        return result
    if entity_plan.guard and not allow_mass_removal:
        raise GuardTripped(f"{integration}/{entity}: {entity_plan.guard}", entity_plan)

    started = time.perf_counter()
    outcomes = await apply_plan(
        entity_plan,
        connector=target,
        store=store,
        limiter=limiters[rule.target_system],
        settings=ApplySettings(run_id=run_id, target_collection=rule.target_collection),
        gate=gate,
    )
    timer.add("apply", started)
    result.outcomes.extend(outcomes)
    result.applied = True

    started = time.perf_counter()
    failed = {o.source_id for o in outcomes if not o.ok and o.kind not in ("skip", "quarantine")}
    new_cursor = (
        _next_cursor(cursor, normalized, failed, reading.settled_mark) if effective != "targeted" else None
    )
    succeeded_unchanged = [
        n.source_id
        for n in normalized
        if (isinstance(n, Filtered) or (isinstance(n, Desired) and n.source_id in links))
        and n.source_id not in failed
    ]
    quarantine = quarantine_rows(entity_plan, run_id, now_iso())
    # Release only ids that are (or are about to be) quarantined: a full cycle would otherwise send one DELETE
    # per unchanged record (~1M at 1M records) to find the few thousand quarantined ones.
    if effective != "full":
        held = HashedIds(
            q.source_id for q in await store.quarantined(integration, entity, source_ids=succeeded_unchanged)
        )
    now_held = {q.source_id for q in quarantine}
    was_held = held.contains(succeeded_unchanged)  # a false yes only releases a row that is not there
    await store.commit(
        Commit(
            integration=integration,
            entity=entity,
            quarantine=quarantine,
            release_quarantine=tuple(
                sid
                for sid, before in zip(succeeded_unchanged, was_held, strict=True)
                if before or sid in now_held
            ),
            refresh_links=_refreshed_links(
                normalized,
                links,
                failed,
                entity_plan,
                agreed=(
                    (reading.fingerprints, targets, _compared_fields(rule), key)
                    if effective == "full"
                    else None
                ),
            ),
            cursor=new_cursor,
            marks=((LOOKUPS_MARK, lookups_mark),) if effective != "targeted" else (),
        )
    )
    timer.add("commit", started)
    result.cursor_after = new_cursor if new_cursor is not None else cursor
    return result


class _Reading:
    """What the source side of a cycle gathered: normalised records, ids gone, and the settled ones."""

    def __init__(self) -> None:
        self.normalized: list[Normalized] = []
        self.gone: list[str] = []
        self.fetched = 0
        self.settled = 0
        """Records skipped as unchanged since their pair was last found in agreement (full cycles)."""
        self.filtered = 0
        """Unlinked, unheld records the rule filtered out, counted but not kept (full cycles)."""
        self.settled_mark = ""
        """The newest change marker among the settled and the counted filtered records (they move the cursor
        too)."""
        self.fingerprints: dict[str, int] = {}
        """Source fingerprints of the linked records normalised to a desired record, to store when found in
        agreement."""


_Settle = tuple[LinkIndex, Callable[[Record], int], HashedIds]


async def _read_page(
    rule: RuleLike,
    page: Sequence[Record],
    tables: Mapping[str, Mapping[str, Value]],
    reading: _Reading,
    timer: _Timer,
    settle: _Settle | None = None,
) -> None:
    """Normalise one page in slices (yielding to the event loop in between).

    ``settle`` (full cycles: the links' index, with the targets confirmed unchanged, the source fingerprint
    function and the held source ids): a linked record whose target was confirmed and whose own fingerprint
    equals the link's is settled instead of normalised (:meth:`LinkIndex.settle`); an unlinked, unheld record the
    rule filters out is only counted (:attr:`_Reading.filtered`).
    """
    for start in range(0, len(page), NORMALIZE_SLICE):
        if start:
            await anyio.lowlevel.checkpoint()  # let other work of the loop in between
        t0 = time.perf_counter()
        chunk = page[start : start + NORMALIZE_SLICE]
        if settle is None:
            reading.normalized.extend(rule.normalize(r, tables) for r in chunk)
        else:
            index, fingerprint, held = settle
            done = index.settle(chunk, fingerprint)
            reading.settled += done.settled
            reading.settled_mark = max(reading.settled_mark, done.settled_mark)
            fingerprints = done.fingerprints
            unlinked_filtered: list[Filtered] = []
            for record in done.rest:
                item = rule.normalize(record, tables)
                if type(item) is Filtered and record.id not in fingerprints:
                    unlinked_filtered.append(item)
                    continue
                reading.normalized.append(item)
                # only a desired record's pair is ever found in agreement: a held one's fingerprint is not kept
                if isinstance(item, Desired) and (value := fingerprints.get(record.id)) is not None:
                    reading.fingerprints[record.id] = value
            ids = [item.source_id for item in unlinked_filtered]
            for item, was_held in zip(unlinked_filtered, held.contains(ids), strict=True):
                if was_held:
                    reading.normalized.append(item)
                else:  # unlinked, not held: nothing to do about it but count it and move the cursor past it
                    reading.filtered += 1
                    reading.settled_mark = max(reading.settled_mark, item.updated_at)
        timer.add("normalize", t0)
    reading.fetched += len(page)


async def _read_incremental_extras(
    rule: RuleLike,
    source: Connector,
    store: StateStore,
    since: str | None,
    lookups_mark: str,
    tables: Mapping[str, Mapping[str, Value]],
    reading: _Reading,
    timer: _Timer,
    recheck: Collection[str] = (),
) -> None:
    """An incremental cycle's other reads: deletions since the cursor and the held records due a re-check
    (``recheck``: held ids due whatever their age, see :func:`run_entity`)."""
    integration, entity = rule.integration, rule.entity
    catalog = source.catalog().get(rule.source_collection)
    if catalog is not None and catalog.deletions:
        async for page in source.stream(rule.source_collection, since=since, deleted=True):
            reading.gone.extend(r.id for r in page)
            reading.fetched += len(page)
    seen = {n.source_id for n in reading.normalized}
    lookups_changed = lookups_mark != await store.cursor(integration, entity, LOOKUPS_MARK)
    if lookups_changed:
        held_rows = await store.quarantined(integration, entity)
    else:
        due = iso_utc(datetime.now(UTC) - HELD_RECHECK_AFTER)
        held_rows = await store.quarantined(integration, entity, limit=HELD_RECHECK, checked_before=due)
        if recheck:
            held_rows += await store.quarantined(integration, entity, source_ids=list(recheck))
    retry_ids = list(dict.fromkeys(q.source_id for q in held_rows if q.source_id not in seen))
    if retry_ids:
        records = await source.fetch_by_ids(rule.source_collection, retry_ids, fields=rule.source_reads)
        fetched = reading.fetched
        await _read_page(rule, records, tables, reading, timer)
        reading.fetched = fetched  # re-checks are not counted as fetched changes


class _FullSnapshot(msgspec.Struct):
    """The target side of a full cycle."""

    records: dict[str, Record]
    """The target records the plan must see (slim: the compared fields), all but the confirmed ones and the
    packed unlinked ones."""
    size: int
    """Target records the filter admitted."""
    unlinked: Candidates | None = None
    """Targets no link names (slim, packed), for first-sight matching once the sources are read."""


async def _full_snapshot(
    rule: RuleLike, target: Connector, index: LinkIndex | None, key: bytes | None
) -> _FullSnapshot:
    """Stream the target collection once, keeping the compared fields of each record the filter admits.

    With ``index`` (a full cycle), a record no link names is packed into :attr:`_FullSnapshot.unlinked` rather
    than kept. With ``key`` too (not ``--compare-all``), a record that is the target of an eligible link (active,
    not held, fingerprints known) and reads as when last in agreement (:meth:`LinkIndex.confirm_targets`) is not
    kept: its source will be settled if it reads the same too.
    """
    records: dict[str, Record] = {}
    keep = _compared_fields(rule)
    size = 0
    unlinked = Candidates((rule.first_sight, rule.first_sight_fallback)) if index is not None else None
    of_fields = agreement.target_fingerprinter(keep, key) if key is not None else None

    def fingerprint(record: Record) -> int:
        if record.problem or of_fields is None:
            return agreement.UNKNOWN  # never stored on an eligible link: never confirmed
        return of_fields(record.fields)

    trimmer = heap.Trimmer()
    async for page in target.stream(rule.target_collection, fields=_target_reads(rule)):
        trimmer.page_done()
        matched = [record for record in page if rule.target_matches(record)]
        size += len(matched)
        if index is not None and key is not None:
            matched = index.confirm_targets(matched, fingerprint)
        if unlinked is not None and index is not None:
            linked = index.linked_targets(matched)
            unlinked.add(_slim(r, keep) for r, named in zip(matched, linked, strict=True) if not named)
            matched = [r for r, named in zip(matched, linked, strict=True) if named]
        for record in matched:
            records[record.id] = _slim(record, keep)
    return _FullSnapshot(records=records, size=size, unlinked=unlinked)


def _slim(record: Record, keep: Sequence[str]) -> Record:
    """``record`` with only the fields a plan reads (a 1M-record snapshot held at a fraction of the size)."""
    fields = record.fields
    return msgspec.structs.replace(record, fields={name: fields[name] for name in keep if name in fields})


async def _unsettled_links(
    store: StateStore, integration: str, entity: str, index: LinkIndex
) -> dict[str, LinkRow]:
    """The links of the pairs a full cycle did not settle, as rows (few, unless the fingerprints are new)."""
    if index.unsettled() > len(index) // 2:  # one scan beats reading most links by id
        wanted = set(index.unsettled_ids())
        every = await store.links(integration, entity, compact=True)
        return {sid: row for sid, row in every.items() if sid in wanted}
    return await store.links(integration, entity, index.unsettled_ids())


async def _reread_agreed_targets(
    rule: RuleLike,
    target: Connector,
    links: Mapping[str, LinkRow],
    index: LinkIndex,
    snapshot: _FullSnapshot,
) -> None:
    """Read again the confirmed targets whose source was not settled, into ``snapshot.records``.

    The snapshot kept only the targets it could not vouch for; a pair whose source changed, vanished or became
    held needs its target's current fields after all (for the update's before values, a removal, a re-check).
    Such pairs are few (about the share of changed records), so they are read by id; when they are more than
    :data:`REREAD_BY_ID_SHARE` of the snapshot, the collection is streamed again instead.
    """
    candidates = list({row.target_id for row in links.values()} - snapshot.records.keys())
    wanted = {
        tid for tid, dropped in zip(candidates, index.maybe_dropped(candidates), strict=True) if dropped
    }
    if not wanted:
        return
    keep = _compared_fields(rule)
    records = snapshot.records
    if len(wanted) <= max(FIND_ONE_BY_ONE_MAX, REREAD_BY_ID_SHARE * snapshot.size):
        ids = sorted(wanted)
        for start in range(0, len(ids), REREAD_CHUNK):
            for record in await target.fetch_by_ids(
                rule.target_collection, ids[start : start + REREAD_CHUNK]
            ):
                if rule.target_matches(record):
                    records[record.id] = _slim(record, keep)
        return
    trimmer = heap.Trimmer()
    async for page in target.stream(rule.target_collection, fields=_target_reads(rule)):
        trimmer.page_done()
        for record in page:
            if record.id in wanted and rule.target_matches(record):
                records[record.id] = _slim(record, keep)


def _unpack_candidates(
    rule: RuleLike, snapshot: _FullSnapshot, normalized: Sequence[Normalized], links: Mapping[str, LinkRow]
) -> None:
    """Move the packed unlinked targets that a source read this cycle may match at first sight into
    ``snapshot.records``, and drop the rest: no source can match them."""
    if snapshot.unlinked is None:
        return
    # rules that never create look a linked record up again by natural key when its target is gone
    retries = rule.on_unmatched != "create"
    wanted = (n for n in normalized if type(n) is Desired and (retries or n.source_id not in links))
    for record in snapshot.unlinked.take(wanted):
        snapshot.records[record.id] = record
    snapshot.unlinked = None


async def _lookup_tables(
    rule: RuleLike, connectors: Mapping[str, Connector], store: StateStore
) -> dict[str, Mapping[str, Value]]:
    tables: dict[str, Mapping[str, Value]] = {}
    for name, spec in rule.lookups.items():
        if spec.kind == "links":
            rows = await store.links(rule.integration, spec.links_entity)
            tables[name] = rule_lookups.links_table(
                ((sid, row.target_id) for sid, row in rows.items() if row.state == "active"), spec.reverse
            )
            continue
        records: list[Record] = []
        async for page in connectors[spec.system].stream(spec.collection):
            records.extend(page)
        tables[name] = rule_lookups.build_table(spec, records)
    return tables


def _compared_fields(rule: RuleLike) -> tuple[str, ...]:
    """The target fields a plan reads: mapped fields, first-sight keys and the removal field."""
    names = dict.fromkeys((*rule.fields, *rule.first_sight, *rule.first_sight_fallback))
    if rule.removal.field:
        names[rule.removal.field] = None
    return tuple(names)


def _target_reads(rule: RuleLike) -> frozenset[str]:
    """The target fields a full cycle reads of a streamed record: the compared ones and the filter's."""
    return frozenset(_compared_fields(rule)) | rule.target_filter_reads


def lookups_fingerprint(tables: Mapping[str, Mapping[str, Value]]) -> str:
    """A short digest of the lookup tables' contents (order-independent)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(tables):
        digest.update(name.encode())
        digest.update(repr(sorted(tables[name].items())).encode())  # repr tells Ambiguous entries apart
    return digest.hexdigest()


async def _targets(
    rule: RuleLike,
    target: Connector,
    store: StateStore,
    normalized: Sequence[Normalized],
    links: Mapping[str, LinkRow],
    gone: Sequence[str],
) -> tuple[dict[str, Record], frozenset[str]]:
    """The target records an incremental or targeted plan must see, and the target ids already claimed by a link.

    Linked targets whose desired content changed are read by id, unlinked records are looked up by natural key;
    past :data:`FIND_ONE_BY_ONE_MAX` unlinked records the whole collection is read instead.
    """
    desired = [n for n in normalized if isinstance(n, Desired)]
    unlinked = [d for d in desired if d.source_id not in links]
    if len(unlinked) > FIND_ONE_BY_ONE_MAX:
        all_links = await store.links(rule.integration, rule.entity, compact=True)
        snapshot = await _full_snapshot(rule, target, None, key=None)
        return snapshot.records, frozenset(row.target_id for row in all_links.values())

    wanted: list[str] = []
    stale: list[Desired] = []
    for d in desired:
        link = links.get(d.source_id)
        if link is not None and link.content_hash != d.content_hash:
            wanted.append(link.target_id)
            stale.append(d)
    wanted.extend(links[sid].target_id for sid in gone if sid in links)
    fetched = await target.fetch_by_ids(rule.target_collection, sorted(set(wanted)))
    removed = {links[sid].target_id for sid in gone if sid in links}
    records = {r.id: r for r in fetched if r.id in removed or rule.target_matches(r)}
    if rule.on_unmatched != "create":  # such rules look a vanished linked target up again by natural key
        unlinked.extend(d for d in stale if links[d.source_id].target_id not in records)

    if unlinked and rule.first_sight:
        found: list[Record] = []

        async def find_one(d: Desired) -> None:
            # The natural key, then the fallback key when the first finds none.
            for key in (d.natural_key, d.fallback_key or {}):
                if not key or any(v is None or v == "" for v in key.values()):
                    continue  # an empty key matches nothing
                hits = [r for r in await target.find(rule.target_collection, key) if rule.target_matches(r)]
                found.extend(hits)
                if hits:
                    return

        async with anyio.create_task_group() as group:
            for d in unlinked:
                group.start_soon(find_one, d)
        by_target = await store.links_by_target(rule.integration, rule.entity, [r.id for r in found])
        for record in found:
            records.setdefault(record.id, record)
        return records, frozenset(by_target)
    return records, frozenset()


def _spare_unreadable_targets(plan: EntityPlan, targets: Mapping[str, Record]) -> EntityPlan:
    """Actions on a target record read with bad data (``Record.problem``) become skips with that problem.

    Its salvaged fields hold defaults where the bad values were, so they must not decide a write (a defaulted
    ``implanted = false`` would make a withdrawal delete an implanted client). Keeping such targets in the plan's
    view, rather than leaving them out, also keeps a linked record from being created a second time.
    """
    unreadable = {tid: r.problem for tid, r in targets.items() if r.problem}
    if not unreadable:
        return plan
    actions = []
    for action in plan.actions:
        target_id = getattr(action, "target_id", None)
        if target_id in unreadable:
            reason = f"the target record cannot be read safely: {unreadable[target_id]}"
            action = Skip(action.source_id, reason, action.label)
        actions.append(action)
    return msgspec.structs.replace(plan, actions=tuple(actions))


def _next_cursor(
    cursor: str | None, normalized: Sequence[Normalized], failed: set[str], settled_mark: str = ""
) -> str | None:
    """Max updated_at seen (``settled_mark``: of the settled records), or the oldest failed record's updated_at
    when something failed."""
    failed_marks = [n.updated_at for n in normalized if n.source_id in failed and n.updated_at]
    if failed_marks:
        return min(failed_marks) if cursor is None or min(failed_marks) >= cursor else None
    marks = [n.updated_at for n in normalized if n.updated_at]
    if settled_mark:
        marks.append(settled_mark)
    if not marks:
        return cursor
    newest = max(marks)
    return newest if cursor is None or newest > cursor else cursor


def _refreshed_links(
    normalized: Sequence[Normalized],
    links: Mapping[str, LinkRow],
    failed: set[str],
    plan: EntityPlan,
    agreed: tuple[Mapping[str, int], Mapping[str, Record], Sequence[str], bytes] | None = None,
) -> tuple[LinkRefresh, ...]:
    """Refreshes of the links of records that needed no action (the target already agreed) whose stored hashes
    are stale.

    The content hash is refreshed always; with ``agreed`` (a full cycle: source fingerprints, the target
    snapshot, the compared fields, the fingerprint key) the pair's fingerprints are stored too, when both records
    were read whole.
    """
    acted = {a.source_id for a in plan.actions}
    rows = []
    of_target = agreement.target_fingerprinter(agreed[2], agreed[3]) if agreed is not None else None
    for n in normalized:
        if not isinstance(n, Desired) or n.source_id in acted or n.source_id in failed:
            continue
        link = links.get(n.source_id)
        if link is None:
            continue
        hashes = (link.source_hash, link.target_hash)
        if agreed is not None and of_target is not None and link.state == "active":
            fingerprints, targets = agreed[0], agreed[1]
            source_hash = fingerprints.get(n.source_id, agreement.UNKNOWN)
            target = targets.get(link.target_id)
            if source_hash != agreement.UNKNOWN and target is not None and not target.problem:
                hashes = (source_hash, of_target(target.fields))
        stale = link.content_hash != n.content_hash
        if stale or hashes != (link.source_hash, link.target_hash):
            rows.append(
                LinkRefresh(n.source_id, n.content_hash, *hashes, updated_at=now_iso() if stale else "")
            )
    return tuple(rows)


def _shift(value: str | None, seconds: int) -> str | None:
    """Move a cursor by ``seconds``, keeping its format (ISO ``...Z`` or IXC ``YYYY-MM-DD HH:MM:SS``)."""
    if not value:
        return value
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"):
        try:
            moved = datetime.strptime(value, fmt) + timedelta(seconds=seconds)
        except ValueError:
            continue
        text = moved.strftime(fmt)
        return text[:-4] + "Z" if fmt.endswith(".%fZ") else text
    return value
