"""Apply a plan: bounded parallelism, journal first, commit only what succeeded.

Per entity plan, every changing action is journaled ``pending`` in one batch *before* any remote call, then the
actions run on as many workers as the target system's :class:`anyio.CapacityLimiter` has tokens (each worker
also waits its turn there: the limiter is shared by every entity of the system). Field updates go
:data:`UPDATE_BATCH` at a time to a connector that can send several in one request (``update_many``: Vetro),
each item still succeeding or failing on its own. Outcomes are committed in batches (links, journal status,
quarantine) so a long apply never holds results only in memory.

A caller running two cycles of one entity side by side (the daemon's immediate lane beside a full sync) passes
a per-record :data:`Gate`: each action runs inside ``gate(source_id)``, which serializes the record with the
other cycle and may veto the action (the other cycle synced the record meanwhile, from a fresher read); a vetoed
action becomes a skip with the gate's reason and its journal row is resolved.

A create whose answer was lost (timeout, reset, 5xx, garbled body) may or may not exist on the target. It is
never blindly re-sent: the record is first looked up by its natural key; found once → adopted; not found → sent
again (bounded); found twice → reported as a duplicate for a person to resolve. A crash between sending and
committing leaves a ``pending`` journal row that :func:`resolve_pending` settles the same way at the next start.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import anyio
import msgspec

from reconciler.connectors.base import Connector, SupportsUpdateMany
from reconciler.errors import NotFound, ReconcilerError, TerminalRemoteError, TransientRemoteError
from reconciler.model import (
    Action,
    Create,
    Delete,
    EntityPlan,
    Fields,
    Inactivate,
    Link,
    Operate,
    Outcome,
    Quarantine,
    Skip,
    Update,
    action_kind,
)
from reconciler.state.store import (
    Commit,
    JournalEntry,
    JournalUpdate,
    LinkRow,
    LinkState,
    QuarantineRow,
    StateStore,
)

#: Outcomes buffered before they are committed to the state store.
COMMIT_BATCH = 500

#: Field updates per ``update_many`` call, for connectors that can send several in one request (Vetro's PATCH
#: of up to 10 features, vetro.md 2.7).
UPDATE_BATCH = 10

#: ``gate(source_id)``: entered around one action; yields None to go ahead, or the reason the action must not run.
Gate = Callable[[str], AbstractAsyncContextManager[str | None]]


class ApplySettings(msgspec.Struct, frozen=True):
    """Knobs of one apply run. ``create_attempts``: sends of one create at most (lost answers included)."""

    run_id: str
    target_collection: str
    create_attempts: int = 3
    backoff: float = 0.5
    backoff_max: float = 10.0


def iso_utc(at: datetime) -> str:
    """``at`` (aware) in UTC, ISO-8601 with milliseconds and a ``Z``: the form of journal and quarantine times."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """Current UTC time, ISO-8601 with milliseconds."""
    return iso_utc(datetime.now(UTC))


def _key_json(key: Fields) -> str:
    return msgspec.json.encode(key, order="sorted").decode()


class _Committer:
    """Buffers links and journal updates; flushes them to the store in batches."""

    def __init__(self, store: StateStore, integration: str, entity: str) -> None:
        self.store = store
        self.integration = integration
        self.entity = entity
        self.links: list[LinkRow] = []
        self.kept: list[LinkRow] = []  # links whose target stays the same (Commit.update_links)
        self.removed: list[str] = []
        self.journal: list[JournalUpdate] = []
        self.release: list[str] = []
        self.pending = 0
        self.lock = anyio.Lock()

    async def add(
        self,
        *,
        link: LinkRow | None = None,
        kept: LinkRow | None = None,
        removed: str | None = None,
        journal: JournalUpdate | None = None,
        release: str | None = None,
    ) -> None:
        if link is not None:
            self.links.append(link)
        if kept is not None:
            self.kept.append(kept)
        if removed is not None:
            self.removed.append(removed)
        if journal is not None:
            self.journal.append(journal)
        if release is not None:
            self.release.append(release)
        self.pending += 1
        if self.pending >= COMMIT_BATCH:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            if not (self.links or self.kept or self.removed or self.journal or self.release):
                return
            batch = Commit(
                integration=self.integration,
                entity=self.entity,
                upsert_links=tuple(self.links),
                update_links=tuple(self.kept),
                remove_links=tuple(self.removed),
                journal=tuple(self.journal),
                release_quarantine=tuple(self.release),
            )
            self.links, self.kept, self.removed, self.journal, self.release = [], [], [], [], []
            self.pending = 0
            await self.store.commit(batch)


async def apply_plan(
    plan: EntityPlan,
    *,
    connector: Connector,
    store: StateStore,
    limiter: anyio.CapacityLimiter,
    settings: ApplySettings,
    gate: Gate | None = None,
) -> list[Outcome]:
    """Execute every changing action of ``plan``; return one :class:`Outcome` per action (skips included).

    Links and journal rows of successful actions are committed before returning; the caller commits the
    cursor (it knows which source records are safe to move past). ``gate``: see the module docstring (None
    when no other cycle of the entity runs).
    """
    changing = [a for a in plan.actions if not isinstance(a, Skip | Quarantine)]
    action_ids = {id(a): f"{settings.run_id}:{plan.entity}:{n}" for n, a in enumerate(changing)}
    at = now_iso()
    await store.journal_begin(
        [
            JournalEntry(
                run_id=settings.run_id,
                action_id=action_ids[id(a)],
                integration=plan.integration,
                entity=plan.entity,
                kind=action_kind(a),
                source_id=a.source_id,
                target_id=getattr(a, "target_id", ""),
                natural_key=_key_json(a.natural_key) if isinstance(a, Create | Link) else "",
                payload_hash=getattr(a, "content_hash", ""),
                at=at,
            )
            for a in changing
        ]
    )
    applier = _Applier(connector, limiter, settings, gate, _Committer(store, plan.integration, plan.entity))
    applier.outcomes.extend(
        Outcome(action_kind(a), a.source_id, ok=False, error=a.reason, attempts=0, label=a.label)
        for a in plan.actions
        if isinstance(a, Skip | Quarantine)
    )
    applier.action_ids = action_ids
    batching = isinstance(connector, SupportsUpdateMany)
    batched = [a for a in changing if isinstance(a, Update | Link) and _batchable(a)] if batching else []
    singles = [a for a in changing if not batching or not _batchable(a)]
    run_one = applier.one if gate is None else applier.gated
    jobs: list[Callable[[], Awaitable[None]]] = [functools.partial(run_one, action) for action in singles]
    jobs.extend(
        functools.partial(applier.batch, batched[start : start + UPDATE_BATCH])
        for start in range(0, len(batched), UPDATE_BATCH)
    )
    await _run_all(jobs, _workers(limiter, len(jobs)))
    await applier.committer.flush()
    return applier.outcomes


async def _run_all(jobs: Sequence[Callable[[], Awaitable[None]]], workers: int) -> None:
    """Run ``jobs`` in order on ``workers`` tasks, each taking the next job when done with its last.

    Not a task per job: at 80k actions, tasks parked on the limiter held ~6 KB each (448 MB of an initial load
    of 100k records)."""
    # one iterator shared by the workers: each job is taken by exactly one (no await between check and take)
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await job()

    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)


def _workers(limiter: anyio.CapacityLimiter, jobs: int) -> int:
    """As many workers as the limiter lets run at once (it may be shared: a worker also waits its turn there)."""
    tokens = limiter.total_tokens
    return max(1, min(jobs, int(tokens) if tokens != math.inf else jobs))


def _batchable(action: Action) -> bool:
    """Field updates that one ``update_many`` call can carry (a link without changes sends nothing)."""
    return isinstance(action, Update) or (isinstance(action, Link) and bool(action.changes))


class _Applier:
    """Runs the changing actions of one plan and settles each outcome (journal, link, quarantine release)."""

    def __init__(
        self,
        connector: Connector,
        limiter: anyio.CapacityLimiter,
        settings: ApplySettings,
        gate: Gate | None,
        committer: _Committer,
    ) -> None:
        self.connector = connector
        self.limiter = limiter
        self.settings = settings
        self.gate = gate
        self.committer = committer
        self.outcomes: list[Outcome] = []
        self.action_ids: dict[int, str] = {}

    async def one(self, action: Action) -> None:
        async with self.limiter:
            outcome = await _execute(action, connector=self.connector, settings=self.settings)
        await self.settle(action, outcome)

    async def gated(self, action: Action) -> None:
        assert self.gate is not None
        async with self.gate(action.source_id) as veto:
            if veto is None:
                await self.one(action)
                return
        await self.vetoed(action, veto)

    async def batch(self, actions: list[Update | Link]) -> None:
        """Several field updates in one ``update_many`` call; each item succeeds or fails on its own."""
        async with contextlib.AsyncExitStack() as stack:
            going: list[Update | Link] = []
            for action in sorted(actions, key=lambda a: a.source_id):  # gates in one global order
                veto = (
                    None
                    if self.gate is None
                    else await stack.enter_async_context(self.gate(action.source_id))
                )
                if veto is None:
                    going.append(action)
                else:
                    await self.vetoed(action, veto)
            if not going:
                return
            assert isinstance(self.connector, SupportsUpdateMany)
            items = [(a.target_id, {c.field: c.after for c in a.changes}) for a in going]
            try:
                async with self.limiter:
                    failures: Sequence[ReconcilerError | None] = await self.connector.update_many(
                        self.settings.target_collection, items
                    )
            except ReconcilerError as exc:
                failures = [exc] * len(going)
            for action, error in zip(going, failures, strict=True):
                kind = action_kind(action)
                error_text = "" if error is None else str(error)
                outcome = Outcome(
                    kind, action.source_id, error is None, action.target_id, error_text, label=action.label
                )
                await self.settle(action, outcome)

    async def vetoed(self, action: Action, veto: str) -> None:
        self.outcomes.append(
            Outcome("skip", action.source_id, ok=False, error=veto, attempts=0, label=action.label)
        )
        target_id = getattr(action, "target_id", "")
        await self.committer.add(
            journal=JournalUpdate(self.action_ids[id(action)], "resolved", target_id, veto)
        )

    async def settle(self, action: Action, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        action_id = self.action_ids[id(action)]
        if not outcome.ok:
            await self.committer.add(
                journal=JournalUpdate(action_id, "failed", outcome.target_id, outcome.error)
            )
            return
        journal = JournalUpdate(action_id, "done", outcome.target_id)
        if isinstance(action, Delete | Operate):  # the target is consumed: nothing stays linked
            await self.committer.add(removed=action.source_id, journal=journal, release=action.source_id)
            return
        state: LinkState = "inactive" if isinstance(action, Inactivate) else "active"
        natural = _key_json(action.natural_key) if isinstance(action, Create | Link) else None
        link = LinkRow(
            source_id=action.source_id,
            target_id=outcome.target_id,
            natural_key=natural if natural is not None else "",
            content_hash=getattr(action, "content_hash", ""),
            state=state,
            updated_at=now_iso(),
        )
        if isinstance(action, Update | Inactivate):  # the target stays the one already linked
            await self.committer.add(kept=link, journal=journal, release=action.source_id)
        else:
            await self.committer.add(link=link, journal=journal, release=action.source_id)


async def _execute(action: Action, *, connector: Connector, settings: ApplySettings) -> Outcome:
    kind = action_kind(action)
    collection = settings.target_collection
    try:
        match action:
            case Create():
                target_id, attempts = await _create(action, connector=connector, settings=settings)
                return Outcome(kind, action.source_id, True, target_id, attempts=attempts, label=action.label)
            case Update(changes=changes) | Link(changes=changes):
                if changes:
                    await connector.update(collection, action.target_id, {c.field: c.after for c in changes})
                return Outcome(kind, action.source_id, True, action.target_id, label=action.label)
            case Inactivate() | Delete() | Operate():
                try:
                    if isinstance(action, Inactivate):
                        await connector.update(collection, action.target_id, {action.field: action.value})
                    elif isinstance(action, Operate):
                        await connector.operate(collection, action.target_id, action.operation, action.args)
                    else:
                        await connector.delete(collection, action.target_id)
                except NotFound:
                    pass  # already gone (or a retried delete whose first answer was lost): the goal holds
                return Outcome(kind, action.source_id, True, action.target_id, label=action.label)
            case _:
                raise AssertionError(f"not a changing action: {kind}")
    except ReconcilerError as exc:
        return Outcome(
            kind,
            action.source_id,
            False,
            getattr(action, "target_id", ""),
            error=str(exc),
            label=action.label,
        )


async def _create(action: Create, *, connector: Connector, settings: ApplySettings) -> tuple[str, int]:
    """Send a create; when its answer is lost, look it up by natural key before sending again."""
    collection = settings.target_collection
    delay = settings.backoff
    last: TransientRemoteError | None = None
    for attempt in range(1, settings.create_attempts + 1):
        try:
            return await connector.create(collection, action.fields), attempt
        except TransientRemoteError as exc:
            last = exc
        if not action.natural_key:
            raise TerminalRemoteError(
                connector.system,
                f"create of {action.label or action.source_id} may or may not have happened ({last}); "
                "the rule has no natural key to check, so it is not sent again",
            )
        found = await connector.find(collection, action.natural_key)
        if len(found) == 1:
            return found[0].id, attempt
        if len(found) > 1:
            raise TerminalRemoteError(
                connector.system,
                f"{len(found)} records now match {action.natural_key}: possible duplicate, resolve by hand",
            )
        await anyio.sleep(min(settings.backoff_max, delay) * (0.5 + random.random() / 2))
        delay *= 2
    assert last is not None
    raise last


async def resolve_pending(
    *,
    integration: str,
    entity: str,
    connector: Connector,
    store: StateStore,
    target_collection: str,
    live_runs: Collection[str] = (),
) -> list[Outcome]:
    """Settle creates left ``pending`` by a run that died: adopt the record if the target has it.

    ``live_runs``: runs still in progress in this process (their pending rows are in flight, not left behind).
    """
    pending = [e for e in await store.journal_unresolved(integration, entity) if e.run_id not in live_runs]
    outcomes: list[Outcome] = []
    links: list[LinkRow] = []
    journal: list[JournalUpdate] = []
    for entry in pending:
        if entry.kind not in ("create", "link") or not entry.natural_key:
            journal.append(
                JournalUpdate(entry.action_id, "resolved", entry.target_id, "interrupted; re-planned")
            )
            continue
        key: Mapping[str, object] = msgspec.json.decode(entry.natural_key)
        found = await connector.find(target_collection, dict(key))  # type: ignore[arg-type]
        if entry.kind == "link" and entry.target_id:
            found = [r for r in found if r.id == entry.target_id] or found
        if len(found) == 1:
            links.append(
                LinkRow(
                    source_id=entry.source_id,
                    target_id=found[0].id,
                    natural_key=entry.natural_key,
                    content_hash="",  # unknown: the next plan compares fields and updates what differs
                    updated_at=now_iso(),
                )
            )
            journal.append(
                JournalUpdate(entry.action_id, "resolved", found[0].id, "adopted after interruption")
            )
            outcomes.append(Outcome("recover", entry.source_id, True, found[0].id))
        elif not found:
            journal.append(JournalUpdate(entry.action_id, "resolved", "", "not created before interruption"))
        else:
            ids = ", ".join(r.id for r in found)
            journal.append(JournalUpdate(entry.action_id, "failed", "", f"several records match: {ids}"))
            outcomes.append(Outcome("recover", entry.source_id, False, error=f"several records match: {ids}"))
    if journal:
        await store.commit(
            Commit(integration=integration, entity=entity, upsert_links=tuple(links), journal=tuple(journal))
        )
    return outcomes


def quarantine_rows(
    plan: EntityPlan, run_id: str, at: str, actions: Sequence[Action] | None = None
) -> tuple[QuarantineRow, ...]:
    """Quarantine rows for the plan's skip/quarantine actions (reason prefixed by the kind)."""
    rows = []
    for action in actions if actions is not None else plan.actions:
        if isinstance(action, Skip | Quarantine):
            rows.append(
                QuarantineRow(
                    integration=plan.integration,
                    entity=plan.entity,
                    source_id=action.source_id,
                    reason=f"{action_kind(action)}: {action.reason}",
                    run_id=run_id,
                    at=at,
                )
            )
    return tuple(rows)
