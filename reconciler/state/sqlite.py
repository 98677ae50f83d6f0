"""The SQLite implementation of the :class:`~reconciler.state.store.StateStore` port (aiosqlite, WAL).

Usage::

    async with SqliteStateStore("state.db") as store:   # lock + open + migrate
        links = await store.links("ozmap-ixc", "boxes")
        await store.commit(Commit("ozmap-ixc", "boxes", upsert_links=..., cursor="2024-05-01T00:00:00Z"))

How it keeps the safety rules:

- **One writer.** :meth:`SqliteStateStore.open` takes :class:`~reconciler.state.locking.WriterLock` before
  touching the database, so a second reconciler on the same file fails fast with ``StateLockedError``.
- **One transaction per batch.** Every mutating method runs in :meth:`~SqliteStateStore.atomic`, which issues
  ``BEGIN IMMEDIATE`` itself (the sqlite3 module runs in autocommit mode, ``isolation_level=None``, so nothing
  begins or commits behind our back). Rows go in with ``executemany``. A failure anywhere in a
  :class:`~reconciler.state.store.Commit` rolls the whole batch back, cursor included.
- **Transactions belong to a task.** The single aiosqlite connection is shared, so a task that calls the store
  while another task's ``atomic()`` block is open waits for that block to end instead of writing into (or
  reading uncommitted rows of) someone else's transaction. Nested ``atomic()`` in the *same* task become
  ``SAVEPOINT``\\ s: an exception rolls back the inner block only. Do not call the store from a child task while
  its parent holds ``atomic()`` - the child would wait for the parent forever.
- **Errors** from sqlite3/aiosqlite are mapped once, here, to :class:`~reconciler.errors.StateError` naming
  the database path and the operation.

SQL is built from constants only; values always travel as ``?`` parameters. Lists of ids are queried in chunks
of at most :data:`MAX_PARAMS` parameters per statement.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import aiosqlite
import anyio
import msgspec

from reconciler.errors import StateError
from reconciler.state import migrations
from reconciler.state.locking import WriterLock
from reconciler.state.store import (
    Commit,
    JournalEntry,
    JournalUpdate,
    LinkColumns,
    LinkRow,
    LinkState,
    QuarantineRow,
    RunRow,
)

if TYPE_CHECKING:
    from reconciler.state.store import StateStore

__all__ = ["MAX_PARAMS", "SqliteStateStore"]

#: Most ``?`` parameters bound in one statement when querying by a list of ids.
MAX_PARAMS = 500
#: Milliseconds SQLite waits for a lock held by another connection (a read-only inspector, a backup).
BUSY_TIMEOUT_MS = 5000

_Row = tuple[Any, ...]

_LINK_COLS = "source_id, target_id, natural_key, content_hash, state, updated_at, source_hash, target_hash"
_JOURNAL_COLS = (
    "run_id, action_id, integration, entity, kind, source_id, target_id, natural_key, payload_hash, status, "
    "error, at"
)
_QUARANTINE_COLS = "integration, entity, source_id, reason, run_id, at"
_RUN_COLS = "run_id, integration, mode, started_at, finished_at, status, summary"

# Column lists follow the field order of the row Structs: rows are built with ``Struct(*row)`` and written with
# ``msgspec.structs.astuple``.
_SELECT_LINKS = f"SELECT {_LINK_COLS} FROM links WHERE integration = ? AND entity = ?"
_UPSERT_LINK = (
    "INSERT INTO links (integration, entity, source_id, target_id, natural_key, content_hash, state, updated_at, "
    "source_hash, target_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (integration, entity, source_id) DO UPDATE SET "
    "target_id = excluded.target_id, natural_key = excluded.natural_key, content_hash = excluded.content_hash, "
    "state = excluded.state, updated_at = excluded.updated_at, source_hash = excluded.source_hash, "
    "target_hash = excluded.target_hash"
)
# Everything but the target (and the natural key, which only a create or a match sets): the target index stays.
_UPDATE_LINK_IN_PLACE = (
    "UPDATE links SET content_hash = ?, state = ?, updated_at = ?, source_hash = ?, target_hash = ? "
    "WHERE integration = ? AND entity = ? AND source_id = ? AND target_id = ?"
)
_SELECT_LINKS_COMPACT = (
    "SELECT source_id, target_id, content_hash, state, source_hash, target_hash FROM links "
    "WHERE integration = ? AND entity = ?"
)
_SCAN_LINKS = "SELECT source_id, target_id, state, source_hash, target_hash FROM links WHERE integration = ? AND entity = ?"
_REFRESH_LINK = (
    "UPDATE links SET content_hash = ?, source_hash = ?, target_hash = ?, "
    "updated_at = coalesce(nullif(?, ''), updated_at) WHERE integration = ? AND entity = ? AND source_id = ?"
)
_DELETE_LINK = "DELETE FROM links WHERE integration = ? AND entity = ? AND source_id = ?"
_COUNT_LINKS = "SELECT count(*) FROM links WHERE integration = ? AND entity = ? AND state = ?"
_SELECT_CURSOR = "SELECT value FROM cursors WHERE integration = ? AND entity = ? AND name = ?"
_UPSERT_CURSOR = (
    "INSERT INTO cursors (integration, entity, name, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (integration, entity, name) DO UPDATE SET value = excluded.value"
)
_INSERT_JOURNAL = f"INSERT INTO journal ({_JOURNAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# An empty target id in an update keeps the one already recorded (a failure does not erase a known id).
_UPDATE_JOURNAL = (
    "UPDATE journal SET status = ?, target_id = coalesce(nullif(?, ''), target_id), error = ? "
    "WHERE action_id = ?"
)
_SELECT_ACTION_IDS = "SELECT action_id FROM journal"
_SELECT_UNRESOLVED = (
    f"SELECT {_JOURNAL_COLS} FROM journal WHERE integration = ? AND entity = ? AND status = 'pending' "
    "ORDER BY at, rowid"
)
_SELECT_JOURNAL = f"SELECT {_JOURNAL_COLS} FROM journal ORDER BY at, rowid LIMIT ?"
_SELECT_JOURNAL_OF_RUN = f"SELECT {_JOURNAL_COLS} FROM journal WHERE run_id = ? ORDER BY at, rowid LIMIT ?"
_UPSERT_QUARANTINE = (
    f"INSERT INTO quarantine ({_QUARANTINE_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (integration, entity, source_id) DO UPDATE SET "
    "reason = excluded.reason, run_id = excluded.run_id, at = excluded.at"
)
_DELETE_QUARANTINE = "DELETE FROM quarantine WHERE integration = ? AND entity = ? AND source_id = ?"
_QUARANTINE_OF = f"SELECT {_QUARANTINE_COLS} FROM quarantine WHERE integration = ? AND entity = ?"
_QUARANTINED_IDS = "SELECT source_id FROM quarantine WHERE integration = ? AND entity = ?"
_COUNT_QUARANTINE = "SELECT count(*) FROM quarantine WHERE integration = ? AND entity = ?"
_INSERT_RUN = f"INSERT INTO runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_FINISH_RUN = "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?"
_SELECT_RUNS = f"SELECT {_RUN_COLS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?"
_HAS_SCHEMA_VERSION = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
_TABLES = ("links", "cursors", "journal", "quarantine", "runs")
_STATISTICS = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in _TABLES)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _upsert_params(key: tuple[str, str], rows: Sequence[LinkRow], now: str) -> Iterator[tuple[Any, ...]]:
    """``_UPSERT_LINK`` parameters of ``rows``, one tuple at a time (the hot path of a first sync: millions of
    rows, so spelled out rather than through :func:`_values`)."""
    for r in rows:
        yield (
            *key,
            r.source_id,
            r.target_id,
            r.natural_key,
            r.content_hash,
            r.state,
            r.updated_at or now,
            r.source_hash,
            r.target_hash,
        )


def _values(row: msgspec.Struct, stamp: str, now: str) -> tuple[Any, ...]:
    """``row``'s values in column order, its timestamp field ``stamp`` set to ``now`` when left empty."""
    if not getattr(row, stamp):
        row = msgspec.structs.replace(row, **{stamp: now})
    return msgspec.structs.astuple(row)


class SqliteStateStore:
    """State in one SQLite file (or ``":memory:"``, which has no lock, no WAL and no file).

    ``clock`` returns an aware datetime; None for the wall clock (tests pass a fake one). Timestamps the caller
    leaves empty (``LinkRow.updated_at``, ``JournalEntry.at``, ``QuarantineRow.at``, ``RunRow.started_at``) are
    filled from it.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path if str(path) == ":memory:" else Path(path)
        self._clock = clock or _utcnow
        self._db: aiosqlite.Connection | None = None
        self._lock: WriterLock | None = None
        self._tx_lock = anyio.Lock()
        self._tx_owner: int | None = None  # id of the task whose atomic() block is open
        self._tx_depth = 0

    @property
    def in_memory(self) -> bool:
        """True for a ``":memory:"`` store."""
        return str(self.path) == ":memory:"

    async def open(self, *, lock: bool = True, migrate: bool = True) -> None:
        """Take the writer lock (unless ``lock=False``), create the file (0600), connect, and apply pending
        migrations (unless ``migrate=False``: ``reconciler migrate`` calls :meth:`migrate` itself to report)."""
        if self._db is not None:
            raise StateError(f"state store {self.path} is already open")
        if lock and not self.in_memory:
            writer_lock = WriterLock(self.path)
            writer_lock.acquire()
            self._lock = writer_lock
        try:
            if not self.in_memory:
                self._create_file()
            with self._mapped("open"):
                self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._configure()
            if migrate:
                await self.migrate()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and release the writer lock; idempotent."""
        db, self._db = self._db, None
        try:
            if db is not None:
                with self._mapped("close"):
                    await db.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _create_file(self) -> None:
        """Create the database file owner-only before SQLite does (SQLite gives its WAL files the same mode)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise StateError(f"state store {self.path}: cannot create the database file: {exc}") from exc
        os.close(fd)

    async def _configure(self) -> None:
        db = self._conn()
        with self._mapped("configure"):
            rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        mode = next(iter(rows))[0]
        if not self.in_memory and mode != "wal":
            raise StateError(f"state store {self.path}: cannot switch to WAL journal mode (got {mode!r})")

    async def migrate(self) -> list[str]:
        """Apply pending migrations, each in its own transaction; return the names applied (maybe none)."""
        async with self._turn():
            with self._mapped("create schema_version"):
                await self._conn().execute(migrations.BOOTSTRAP)  # a no-op (no write) once it exists
        recorded = await self._recorded_migrations()
        applied: list[str] = []
        for version, migration in enumerate(migrations.MIGRATIONS, start=1):
            if version in recorded:
                continue
            async with self.atomic():
                # Re-read inside the write transaction: an unlocked opener may have migrated meanwhile.
                if version in await self._recorded_migrations():
                    continue
                with self._mapped(f"migration {version} {migration.name}"):
                    for statement in migrations.statements(migration.script):
                        await self._conn().execute(statement)
                    await self._conn().execute(
                        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, migration.name, self._now()),
                    )
                applied.append(migration.name)
        return applied

    async def _recorded_migrations(self) -> dict[int, str]:
        """Recorded versions, after checking they are a history this build knows."""
        rows = await self._fetch("read schema_version", "SELECT version, name FROM schema_version")
        recorded: dict[int, str] = {version: name for version, name in rows}
        if problem := migrations.history_problem(recorded):
            raise StateError(f"state store {self.path}: {problem}")
        return recorded

    async def schema_version(self) -> int:
        """The highest applied migration version (0 for a database never migrated)."""
        if not await self._fetch("look for schema_version", _HAS_SCHEMA_VERSION):
            return 0
        rows = await self._fetch(
            "read schema_version", "SELECT coalesce(max(version), 0) FROM schema_version"
        )
        return int(rows[0][0])

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """One transaction (``BEGIN IMMEDIATE``); nested in the same task, a ``SAVEPOINT``.

        An exception leaving the block rolls back that block only (the whole transaction at the outermost level)
        and propagates.
        """
        me = anyio.get_current_task().id
        if self._tx_owner == me:
            async with self._savepoint():
                yield
            return
        async with self._tx_lock:
            self._tx_owner = me
            try:
                async with self._transaction():
                    yield
            finally:
                self._tx_owner = None

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        db = self._conn()
        with anyio.CancelScope(shield=True), self._mapped("begin transaction"):
            await db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._rollback("ROLLBACK")
            raise
        try:
            with anyio.CancelScope(shield=True), self._mapped("commit transaction"):
                await db.execute("COMMIT")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._rollback("ROLLBACK")
            raise

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        self._tx_depth += 1
        name = f"sp_{self._tx_depth:d}"  # an identifier, not a value: it cannot be a parameter
        try:
            with anyio.CancelScope(shield=True), self._mapped("savepoint"):
                await self._conn().execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._rollback(f"ROLLBACK TO {name}", f"RELEASE {name}")
                raise
            with anyio.CancelScope(shield=True), self._mapped("release savepoint"):
                await self._conn().execute(f"RELEASE {name}")
        finally:
            self._tx_depth -= 1

    async def _rollback(self, *sql: str) -> None:
        """Undo after a failure; some SQLite errors already rolled back, so only act inside a transaction."""
        db = self._db
        if db is None or not db.in_transaction:
            return
        with self._mapped("rollback"):
            for statement in sql:
                await db.execute(statement)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Wait until no other task holds an open transaction (reads never see uncommitted rows)."""
        if self._tx_owner == anyio.get_current_task().id:
            yield
        else:
            async with self._tx_lock:
                yield

    async def links(
        self,
        integration: str,
        entity: str,
        source_ids: Sequence[str] | None = None,
        *,
        compact: bool = False,
    ) -> dict[str, LinkRow]:
        """Links of an entity keyed by source id; all of them when ``source_ids`` is None.

        ``compact`` (all links only): ``natural_key`` and ``updated_at`` left empty, the state strings shared.
        """
        what = f"read links of {integration}/{entity}"
        if compact and source_ids is None:
            rows = await self._fetch(what, _SELECT_LINKS_COMPACT, (integration, entity))
            states: dict[str, LinkState] = {"active": "active", "inactive": "inactive"}
            return {
                sid: LinkRow(sid, tid, "", content, states[state], "", source_hash, target_hash)
                for sid, tid, content, state, source_hash, target_hash in rows
            }
        if source_ids is None:
            rows = await self._fetch(what, _SELECT_LINKS, (integration, entity))
        else:
            rows = await self._fetch_in(what, _SELECT_LINKS, "source_id", (integration, entity), source_ids)
        return {row[0]: LinkRow(*row) for row in rows}

    async def scan_links(
        self,
        integration: str,
        entity: str,
        consume: Callable[[list[LinkColumns]], None],
        *,
        chunk: int = 10_000,
    ) -> None:
        """Hand every link of an entity to ``consume``, ``chunk`` rows at a time (see the port)."""
        db = self._conn()
        async with self._turn():
            with self._mapped(f"read links of {integration}/{entity}"):
                async with db.execute(_SCAN_LINKS, (integration, entity)) as cursor:
                    while rows := await cursor.fetchmany(chunk):
                        consume(cast("list[LinkColumns]", rows))

    async def links_by_target(
        self, integration: str, entity: str, target_ids: Sequence[str]
    ) -> dict[str, LinkRow]:
        """Links keyed by target id (should two sources share a target, one of them wins)."""
        what = f"read links of {integration}/{entity} by target"
        rows = await self._fetch_in(what, _SELECT_LINKS, "target_id", (integration, entity), target_ids)
        return {row[1]: LinkRow(*row) for row in rows}

    async def count_links(self, integration: str, entity: str, state: LinkState = "active") -> int:
        """How many links of an entity are in ``state``."""
        rows = await self._fetch(
            f"count links of {integration}/{entity}", _COUNT_LINKS, (integration, entity, state)
        )
        return int(rows[0][0])

    async def unlink(self, integration: str, entity: str, source_ids: Sequence[str]) -> None:
        """Delete links by source id in one transaction (the operator's "forget these" tool)."""
        async with self._writing(f"unlink {integration}/{entity}") as db:
            await db.executemany(_DELETE_LINK, [(integration, entity, sid) for sid in source_ids])

    async def cursor(self, integration: str, entity: str, name: str = "default") -> str | None:
        """The saved cursor, or None if the entity never completed a batch with one."""
        rows = await self._fetch(
            f"read cursor of {integration}/{entity}", _SELECT_CURSOR, (integration, entity, name)
        )
        return str(rows[0][0]) if rows else None

    async def all_cursors(self) -> dict[tuple[str, str, str], str]:
        """Every cursor, keyed by ``(integration, entity, name)``."""
        rows = await self._fetch("read cursors", "SELECT integration, entity, name, value FROM cursors")
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    async def journal_begin(self, entries: Sequence[JournalEntry]) -> None:
        """Insert journal rows (``pending``, before the remote calls); a reused ``action_id`` is an error."""
        now = self._now()
        async with self._writing("journal begin") as db:
            await db.executemany(_INSERT_JOURNAL, [_values(e, "at", now) for e in entries])

    async def journal_unresolved(self, integration: str, entity: str) -> list[JournalEntry]:
        """``pending`` rows of an entity, oldest first."""
        what = f"read unresolved journal of {integration}/{entity}"
        return [
            JournalEntry(*row) for row in await self._fetch(what, _SELECT_UNRESOLVED, (integration, entity))
        ]

    async def journal(self, run_id: str | None = None, limit: int = 1000) -> list[JournalEntry]:
        """Journal rows, oldest first: those of ``run_id``, or of every run."""
        if run_id is None:
            rows = await self._fetch("read journal", _SELECT_JOURNAL, (limit,))
        else:
            rows = await self._fetch(f"read journal of run {run_id}", _SELECT_JOURNAL_OF_RUN, (run_id, limit))
        return [JournalEntry(*row) for row in rows]

    async def journal_resolve(self, updates: Sequence[JournalUpdate]) -> None:
        """Apply journal status changes in one transaction (e.g. ``pending`` → ``resolved`` after a crash)."""
        async with self.atomic():
            await self._update_journal(updates)

    async def _update_journal(self, updates: Sequence[JournalUpdate]) -> None:
        params = [(u.status, u.target_id, u.error, u.action_id) for u in updates]
        with self._mapped("update journal"):
            changed = (await self._conn().executemany(_UPDATE_JOURNAL, params)).rowcount
        if changed != len(params):
            ids = [u.action_id for u in updates]
            found = {
                row[0]
                for row in await self._fetch_in("check journal", _SELECT_ACTION_IDS, "action_id", (), ids)
            }
            missing = sorted(set(ids) - found)
            raise StateError(
                f"state store {self.path}: journal update names {len(missing)} action id(s) that were never "
                f"journaled: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )

    async def commit(self, batch: Commit) -> None:
        """Apply a :class:`Commit` in one transaction: link upserts, then removals, journal updates, quarantine,
        releases, and the cursor (only when ``batch.cursor`` is not None). Any failure rolls back all of it.

        Rows are handed to SQLite as generators over the batch (immutable), so each parameter tuple lives only
        while its statement runs: a first sync's million links never exist twice over."""
        now, key = self._now(), (batch.integration, batch.entity)
        async with self._writing(f"commit {batch.integration}/{batch.entity}") as db:
            if batch.upsert_links:
                await db.executemany(_UPSERT_LINK, _upsert_params(key, batch.upsert_links, now))
            if batch.update_links:
                # in place: one B-tree leaf per link instead of two (links_by_target untouched), which at 1M links
                # halves the pages an apply of scattered updates dirties and checkpoints
                in_place = (
                    (
                        r.content_hash,
                        r.state,
                        r.updated_at or now,
                        r.source_hash,
                        r.target_hash,
                        *key,
                        r.source_id,
                        r.target_id,
                    )
                    for r in batch.update_links
                )
                written = (await db.executemany(_UPDATE_LINK_IN_PLACE, in_place)).rowcount
                if written != len(batch.update_links):
                    # some link is gone or points elsewhere (which one, executemany cannot tell): the whole
                    # batch is written whole, as upserts, which is what it would have been without this path
                    await db.executemany(_UPSERT_LINK, _upsert_params(key, batch.update_links, now))
            if batch.refresh_links:
                await db.executemany(
                    _REFRESH_LINK,
                    (
                        (r.content_hash, r.source_hash, r.target_hash, r.updated_at, *key, r.source_id)
                        for r in batch.refresh_links
                    ),
                )
            if batch.remove_links:
                await db.executemany(_DELETE_LINK, ((*key, sid) for sid in batch.remove_links))
            if batch.journal:
                await self._update_journal(batch.journal)
            if batch.quarantine:
                await db.executemany(_UPSERT_QUARANTINE, (_values(q, "at", now) for q in batch.quarantine))
            if batch.release_quarantine:
                await db.executemany(_DELETE_QUARANTINE, ((*key, sid) for sid in batch.release_quarantine))
            if batch.cursor is not None:
                await db.execute(_UPSERT_CURSOR, (*key, batch.cursor_name, batch.cursor))
            if batch.marks:
                await db.executemany(_UPSERT_CURSOR, [(*key, name, value) for name, value in batch.marks])

    async def quarantined(
        self,
        integration: str,
        entity: str,
        *,
        source_ids: Sequence[str] | None = None,
        limit: int | None = None,
        checked_before: str | None = None,
    ) -> list[QuarantineRow]:
        """Quarantined (held) records of an entity, least recently checked first.

        ``source_ids``: only these (any order; the other two do not apply); ``checked_before``: only those last
        checked before this ISO-8601 UTC time; ``limit``: at most this many, the oldest.
        """
        what = f"read quarantine of {integration}/{entity}"
        key = (integration, entity)
        if source_ids is not None:
            rows = await self._fetch_in(what, _QUARANTINE_OF, "source_id", key, source_ids)
            return [QuarantineRow(*row) for row in rows]
        params: list[object] = [*key]
        sql = _QUARANTINE_OF
        if checked_before is not None:
            sql, params = f"{sql} AND at < ?", [*params, checked_before]
        sql += " ORDER BY at, source_id"  # the quarantine_by_age index: a range scan, no sort
        if limit is not None:
            sql, params = f"{sql} LIMIT ?", [*params, limit]
        return [QuarantineRow(*row) for row in await self._fetch(what, sql, params)]

    async def held_ids(self, integration: str, entity: str) -> frozenset[str]:
        """The source ids of the held records, read a chunk at a time."""
        held: set[str] = set()
        db = self._conn()
        async with self._turn():
            with self._mapped(f"read quarantined ids of {integration}/{entity}"):
                async with db.execute(_QUARANTINED_IDS, (integration, entity)) as cursor:
                    while rows := await cursor.fetchmany(10_000):
                        held.update(row[0] for row in rows)
        return frozenset(held)

    async def quarantine_count(self, integration: str, entity: str) -> int:
        """How many records of an entity are quarantined."""
        what = f"count quarantine of {integration}/{entity}"
        return int((await self._fetch(what, _COUNT_QUARANTINE, (integration, entity)))[0][0])

    async def start_run(self, run: RunRow) -> None:
        """Record a run; its ``run_id`` must be new."""
        async with self._writing(f"start run {run.run_id}") as db:
            await db.execute(_INSERT_RUN, _values(run, "started_at", self._now()))

    async def finish_run(self, run_id: str, status: str, summary: str) -> None:
        """Stamp a run's end, status and summary; an unknown ``run_id`` is an error."""
        async with self._writing(f"finish run {run_id}") as db:
            cur = await db.execute(_FINISH_RUN, (self._now(), status, summary, run_id))
            if cur.rowcount != 1:
                raise StateError(f"state store {self.path}: cannot finish unknown run {run_id!r}")

    async def runs(self, limit: int = 20) -> list[RunRow]:
        """The latest runs, newest first."""
        return [RunRow(*row) for row in await self._fetch("read runs", _SELECT_RUNS, (limit,))]

    async def statistics(self) -> dict[str, int]:
        """Row counts per table."""
        rows = await self._fetch("count rows", _STATISTICS)
        return dict(zip(_TABLES, (int(n) for n in rows[0]), strict=True))

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StateError(f"state store {self.path} is not open")
        return self._db

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="microseconds")

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Turn sqlite3/aiosqlite errors into :class:`StateError` naming the database and the operation."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorname", None)
            detail = f"{exc} ({code})" if code else str(exc)
            raise StateError(f"state store {self.path}: {what} failed: {detail}") from exc
        except ValueError as exc:  # aiosqlite: "Connection closed" / "no active connection"
            raise StateError(f"state store {self.path}: {what} failed: {exc}") from exc

    @asynccontextmanager
    async def _writing(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """A transaction whose sqlite errors become :class:`StateError` about ``what``."""
        async with self.atomic():
            with self._mapped(what):
                yield self._conn()

    async def _fetch(self, what: str, sql: str, params: Sequence[object] = ()) -> list[_Row]:
        db = self._conn()
        async with self._turn():
            with self._mapped(what):
                return cast("list[_Row]", await db.execute_fetchall(sql, params))

    async def _fetch_in(
        self, what: str, select: str, column: str, fixed: tuple[str, ...], ids: Sequence[str]
    ) -> list[_Row]:
        """``select`` narrowed by ``column IN (ids)``, at most :data:`MAX_PARAMS` parameters per statement."""
        unique = list(dict.fromkeys(ids))
        size = MAX_PARAMS - len(fixed)
        rows: list[_Row] = []
        db = self._conn()
        async with self._turn():
            with self._mapped(what):
                for start in range(0, len(unique), size):
                    chunk = unique[start : start + size]
                    marks = ", ".join("?" * len(chunk))  # placeholders only, never values
                    sql = f"{select} {'AND' if fixed else 'WHERE'} {column} IN ({marks})"
                    rows.extend(cast("list[_Row]", await db.execute_fetchall(sql, (*fixed, *chunk))))
        return rows


if TYPE_CHECKING:
    # mypy proves the implementation satisfies the port.
    _conforms: StateStore = SqliteStateStore(":memory:")
