"""The state store port: links, cursors, the action journal, quarantine and run history.

The engine depends on :class:`StateStore` (a Protocol), never on the SQLite implementation directly. Rows are
msgspec Structs. Every mutating method runs in one transaction and takes a whole batch: the engine never writes
one row per transaction.

Journal life cycle of an action: ``pending`` (written *before* the remote call) → ``done`` (with the target id)
or ``failed`` (with the error). A ``pending`` row found at start means the previous run died mid-call; the
engine resolves it by looking the record up on the target (→ ``resolved``) before planning again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import msgspec

LinkState = Literal["active", "inactive"]
JournalStatus = Literal["pending", "done", "failed", "resolved"]


class LinkRow(msgspec.Struct, frozen=True, gc=False):
    """Source record ``source_id`` is represented by target record ``target_id``.

    ``natural_key`` is the JSON of the first-sight key (e.g. ``{"descricao": "CTO-1", "id_projeto": "3"}``);
    ``content_hash`` fingerprints the desired fields last applied; ``state`` is ``inactive`` once the source
    vanished and the target was inactivated. ``source_hash`` / ``target_hash`` fingerprint the two records when
    a full cycle last found them in agreement (0 = unknown; every write of the link by an action resets them):
    see ``reconciler.agreement``.
    """

    source_id: str
    target_id: str
    natural_key: str = ""
    content_hash: str = ""
    state: LinkState = "active"
    updated_at: str = ""
    source_hash: int = 0
    target_hash: int = 0


class LinkRefresh(msgspec.Struct, frozen=True, gc=False):
    """New hashes for an existing link whose pair needed no action: the link itself (target, key, state) stays.

    ``updated_at`` empty keeps the stored one (only the fingerprints changed).
    """

    source_id: str
    content_hash: str
    source_hash: int = 0
    target_hash: int = 0
    updated_at: str = ""


class JournalEntry(msgspec.Struct, frozen=True):
    """One action's passage through apply. ``action_id`` is unique per run (``<run_id>:<n>``)."""

    run_id: str
    action_id: str
    integration: str
    entity: str
    kind: str
    source_id: str
    target_id: str = ""
    natural_key: str = ""
    payload_hash: str = ""
    status: JournalStatus = "pending"
    error: str = ""
    at: str = ""


class JournalUpdate(msgspec.Struct, frozen=True):
    """A status change of a journal row."""

    action_id: str
    status: JournalStatus
    target_id: str = ""
    error: str = ""


class QuarantineRow(msgspec.Struct, frozen=True):
    """A source record set aside with its reason."""

    integration: str
    entity: str
    source_id: str
    reason: str
    run_id: str = ""
    at: str = ""


class RunRow(msgspec.Struct, frozen=True):
    """One invocation of ``plan``/``sync`` for one integration."""

    run_id: str
    integration: str
    mode: str
    started_at: str
    finished_at: str = ""
    status: str = "running"
    summary: str = ""


class Commit(msgspec.Struct, frozen=True):
    """Everything one apply batch leaves behind, written in a single transaction.

    ``cursor`` is None when it must not move (some action failed before it).
    """

    integration: str
    entity: str
    upsert_links: tuple[LinkRow, ...] = ()
    update_links: tuple[LinkRow, ...] = ()
    """Links whose target is the one already linked (an update or inactivation of a linked record), written in
    place: the target index is left alone and the natural key kept. When a row is not found with that target
    (gone or re-pointed meanwhile), every row of the batch is written whole, as ``upsert_links``."""
    refresh_links: tuple[LinkRefresh, ...] = ()
    remove_links: tuple[str, ...] = ()
    journal: tuple[JournalUpdate, ...] = ()
    quarantine: tuple[QuarantineRow, ...] = ()
    release_quarantine: tuple[str, ...] = ()
    cursor: str | None = None
    cursor_name: str = "default"
    marks: tuple[tuple[str, str], ...] = ()
    """Other named cursors to save (name, value), e.g. the fingerprint of the lookup tables a cycle used."""


#: One link as :meth:`StateStore.scan_links` hands it over: source id, target id, state, source fingerprint,
#: target fingerprint.
LinkColumns = tuple[str, str, str, int, int]


class StateStore(Protocol):
    """What the engine needs from persistent state."""

    async def links(
        self,
        integration: str,
        entity: str,
        source_ids: Sequence[str] | None = None,
        *,
        compact: bool = False,
    ) -> dict[str, LinkRow]:
        """Links of an entity keyed by source id; all of them when ``source_ids`` is None.

        ``compact``: ``natural_key`` and ``updated_at`` are left empty (a full cycle's million links in much less
        memory); such rows must never be written back whole, only refreshed (``Commit.refresh_links``).
        """
        ...

    async def scan_links(
        self,
        integration: str,
        entity: str,
        consume: Callable[[list[LinkColumns]], None],
        *,
        chunk: int = 10_000,
    ) -> None:
        """Hand every link of an entity to ``consume``, ``chunk`` rows at a time, as (source id, target id,
        state, source hash, target hash): a full cycle builds its compact index without a million row objects."""
        ...

    async def links_by_target(
        self, integration: str, entity: str, target_ids: Sequence[str]
    ) -> dict[str, LinkRow]:
        """Links keyed by target id."""
        ...

    async def count_links(self, integration: str, entity: str, state: LinkState = "active") -> int: ...

    async def cursor(self, integration: str, entity: str, name: str = "default") -> str | None: ...

    async def journal_begin(self, entries: Sequence[JournalEntry]) -> None:
        """Insert ``pending`` journal rows (before the remote calls are made)."""
        ...

    async def journal_unresolved(self, integration: str, entity: str) -> list[JournalEntry]:
        """``pending`` rows left by a run that died mid-call."""
        ...

    async def commit(self, batch: Commit) -> None:
        """Apply a :class:`Commit` atomically."""
        ...

    async def quarantined(
        self,
        integration: str,
        entity: str,
        *,
        source_ids: Sequence[str] | None = None,
        limit: int | None = None,
        checked_before: str | None = None,
    ) -> list[QuarantineRow]:
        """Held records, least recently checked first; only ``source_ids`` / those last checked before
        ``checked_before`` (ISO-8601 UTC) / at most ``limit`` when given."""
        ...

    async def held_ids(self, integration: str, entity: str) -> frozenset[str]:
        """The source ids of the held records (a full cycle's: ids alone, not a row object per record)."""
        ...

    async def start_run(self, run: RunRow) -> None: ...

    async def finish_run(self, run_id: str, status: str, summary: str) -> None: ...

    async def runs(self, limit: int = 20) -> list[RunRow]: ...
