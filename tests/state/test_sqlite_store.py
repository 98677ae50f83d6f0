"""The SQLite state store against real temporary files: schema, batches, the journal, the lock, transactions.

Behaviour is observed through the store's own reads or a separate stdlib ``sqlite3`` connection, never by
patching the store.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import anyio
import msgspec
import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.state import migrations
from reconciler.state.sqlite import MAX_PARAMS, SqliteStateStore
from reconciler.state.store import (
    Commit,
    JournalEntry,
    JournalUpdate,
    LinkRefresh,
    LinkRow,
    QuarantineRow,
    RunRow,
    StateStore,
)

pytestmark = pytest.mark.anyio

IG, EN = "ozmap-ixc", "boxes"


def ticking_clock(start: datetime = datetime(2024, 5, 1, tzinfo=UTC)) -> Callable[[], datetime]:
    """A fake clock that moves one second per reading, so timestamps are distinct and ordered."""
    now = [start]

    def clock() -> datetime:
        now[0] += timedelta(seconds=1)
        return now[0]

    return clock


def raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Query the database file through a separate stdlib connection."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchall()


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def read_text(path: str | Path) -> str:
    with open(path, encoding="ascii") as file:
        return file.read()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStateStore]:
    async with SqliteStateStore(db_path, clock=ticking_clock()) as opened:
        yield opened


def link(source_id: str, target_id: str = "", content_hash: str = "h1", **kw: Any) -> LinkRow:
    return LinkRow(source_id, target_id or f"t{source_id}", content_hash=content_hash, **kw)


def entry(n: int, *, run_id: str = "run-1", entity: str = EN, **kw: Any) -> JournalEntry:
    return JournalEntry(run_id, f"{run_id}:{n}", IG, entity, "create", f"s{n}", **kw)


# -- opening, file, migrations ---------------------------------------------------------------------------------


async def test_new_file_is_owner_only_and_in_wal_mode(store: SqliteStateStore, db_path: Path) -> None:
    await store.commit(Commit(IG, EN, upsert_links=(link("1"),)))  # makes SQLite create the -wal file
    assert mode_of(db_path) == 0o600
    assert mode_of(f"{db_path}-wal") == 0o600
    assert mode_of(f"{db_path}.lock") == 0o600
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_migrations_apply_once_and_are_recorded(db_path: Path) -> None:
    names = [m.name for m in migrations.MIGRATIONS]
    async with SqliteStateStore(db_path) as store:
        assert await store.schema_version() == len(names)
        assert await store.migrate() == []
    recorded = raw(db_path, "SELECT version, name, applied_at FROM schema_version ORDER BY version")
    assert [(v, n) for v, n, _ in recorded] == list(enumerate(names, start=1))

    async with SqliteStateStore(db_path) as store:  # reopening applies nothing again
        assert await store.migrate() == []
    assert raw(db_path, "SELECT version, name, applied_at FROM schema_version ORDER BY version") == recorded


async def test_migrate_reports_what_it_applied(db_path: Path) -> None:
    store = SqliteStateStore(db_path)
    await store.open(migrate=False)  # what `reconciler migrate` does, to report the names
    try:
        assert await store.schema_version() == 0
        assert await store.migrate() == [m.name for m in migrations.MIGRATIONS]
        assert await store.schema_version() == len(migrations.MIGRATIONS)
        assert await store.migrate() == []
    finally:
        await store.close()


async def test_a_schema_from_a_newer_build_is_refused(db_path: Path) -> None:
    async with SqliteStateStore(db_path):
        pass
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("INSERT INTO schema_version VALUES (99, '0099_future', '2030-01-01')")
    with pytest.raises(StateError, match="newer than this reconciler"):
        await SqliteStateStore(db_path).open()
    with pytest.raises(StateError, match="newer than this reconciler"):  # not StateLockedError: lock released
        await SqliteStateStore(db_path).open()


async def test_a_renamed_migration_is_refused(db_path: Path) -> None:
    async with SqliteStateStore(db_path):
        pass
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE schema_version SET name = 'something_else' WHERE version = 1")
    with pytest.raises(StateError, match="refusing to guess"):
        await SqliteStateStore(db_path).open()


async def test_missing_directory_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no-such-dir"):
        await SqliteStateStore(tmp_path / "no-such-dir" / "state.db").open(lock=False)


async def test_closed_store_raises_state_error(db_path: Path) -> None:
    store = SqliteStateStore(db_path)
    with pytest.raises(StateError, match="is not open"):
        await store.links(IG, EN)
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StateError, match="is not open"):
        await store.cursor(IG, EN)


async def test_migration_scripts_split_into_statements() -> None:
    script = "CREATE TABLE t (a TEXT);\nINSERT INTO t VALUES ('x;y');\n"
    assert migrations.statements(script) == ["CREATE TABLE t (a TEXT);", "INSERT INTO t VALUES ('x;y');"]
    with pytest.raises(ValueError, match="incomplete"):
        migrations.statements("CREATE TABLE t (a TEXT")


async def test_in_memory_store_works_without_file_or_lock() -> None:
    store: StateStore
    async with SqliteStateStore(":memory:") as store:
        await store.commit(Commit(IG, EN, upsert_links=(link("1"),), cursor="c"))
        assert await store.cursor(IG, EN) == "c"
        assert list(await store.links(IG, EN)) == ["1"]


# -- the single-writer lock ------------------------------------------------------------------------------------


async def test_second_writer_is_refused_with_the_holders_pid(db_path: Path) -> None:
    first = SqliteStateStore(db_path)
    await first.open()
    try:
        with pytest.raises(StateLockedError) as caught:
            await SqliteStateStore(db_path).open()
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert str(db_path) in message
        assert read_text(f"{db_path}.lock").strip() == str(os.getpid())
        with pytest.raises(StateLockedError):  # the refused opener did not disturb the holder's lock
            await SqliteStateStore(db_path).open()
        await first.commit(Commit(IG, EN, cursor="still writing"))
    finally:
        await first.close()
    assert read_text(f"{db_path}.lock") == ""  # the PID is cleared on release

    async with SqliteStateStore(db_path) as second:  # free again once the first one closed
        assert await second.schema_version() == len(migrations.MIGRATIONS)


async def test_unlocked_opener_coexists_with_the_writer(store: SqliteStateStore, db_path: Path) -> None:
    await store.commit(Commit(IG, EN, cursor="c1"))
    inspector = SqliteStateStore(db_path)
    await inspector.open(lock=False)
    try:
        assert await inspector.cursor(IG, EN) == "c1"
    finally:
        await inspector.close()


# -- commit ----------------------------------------------------------------------------------------------------


async def test_commit_writes_every_part(store: SqliteStateStore) -> None:
    await store.start_run(RunRow("run-1", IG, "sync", ""))
    await store.journal_begin([entry(1), entry(2)])
    await store.commit(
        Commit(IG, EN, upsert_links=(link("1"), link("2")), quarantine=(QuarantineRow(IG, EN, "9", "bad"),))
    )
    await store.commit(
        Commit(
            IG,
            EN,
            upsert_links=(link("3"),),
            remove_links=("2",),
            journal=(
                JournalUpdate("run-1:1", "done", target_id="t1"),
                JournalUpdate("run-1:2", "failed", error="x"),
            ),
            release_quarantine=("9",),
            cursor="2024-05-01",
        )
    )
    assert sorted(await store.links(IG, EN)) == ["1", "3"]
    assert [(j.status, j.target_id, j.error) for j in await store.journal("run-1")] == [
        ("done", "t1", ""),
        ("failed", "", "x"),
    ]
    assert await store.quarantined(IG, EN) == []
    assert await store.cursor(IG, EN) == "2024-05-01"
    assert await store.statistics() == {"links": 2, "cursors": 1, "journal": 2, "quarantine": 0, "runs": 1}


async def test_failing_part_rolls_back_the_whole_batch(store: SqliteStateStore, db_path: Path) -> None:
    await store.journal_begin([entry(1)])
    await store.commit(Commit(IG, EN, upsert_links=(link("a"), link("b")), cursor="c0"))
    before = raw(db_path, "SELECT * FROM links ORDER BY source_id")

    # Links and journal are written first; the quarantine row then violates NOT NULL on `reason`.
    bad = QuarantineRow(IG, EN, "q", cast("str", None))
    with pytest.raises(StateError, match=r"commit ozmap-ixc/boxes failed: .*NOT NULL") as caught:
        await store.commit(
            Commit(
                IG,
                EN,
                upsert_links=(link("a", content_hash="h2"), link("c")),
                remove_links=("b",),
                journal=(JournalUpdate("run-1:1", "done", target_id="t"),),
                quarantine=(bad,),
                cursor="c1",
            )
        )
    assert str(db_path) in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)

    assert raw(db_path, "SELECT * FROM links ORDER BY source_id") == before
    assert await store.cursor(IG, EN) == "c0"
    assert [j.status for j in await store.journal_unresolved(IG, EN)] == ["pending"]
    assert await store.quarantine_count(IG, EN) == 0


async def test_journal_update_of_unknown_action_fails_the_batch(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, upsert_links=(link("a"),), cursor="c0"))
    with pytest.raises(StateError, match="never journaled: run-9:1"):
        await store.commit(
            Commit(
                IG,
                EN,
                upsert_links=(link("a", content_hash="h2"),),
                journal=(JournalUpdate("run-9:1", "done"),),
            )
        )
    assert (await store.links(IG, EN))["a"].content_hash == "h1"


async def test_check_constraint_guards_link_state(store: SqliteStateStore) -> None:
    with pytest.raises(StateError, match="CHECK"):
        await store.commit(
            Commit(IG, EN, upsert_links=(link("a"), link("b", state=cast("Any", "gone"))), cursor="c")
        )
    assert await store.links(IG, EN) == {}
    assert await store.cursor(IG, EN) is None


async def test_cursor_moves_only_when_given(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, cursor="c1"))
    await store.commit(Commit(IG, EN, upsert_links=(link("1"),)))  # cursor None: it must not move
    assert await store.cursor(IG, EN) == "c1"
    await store.commit(Commit(IG, EN, cursor="f1", cursor_name="full"))
    assert await store.cursor(IG, EN) == "c1"
    assert await store.cursor(IG, EN, "full") == "f1"
    assert await store.cursor(IG, "other") is None
    assert await store.all_cursors() == {(IG, EN, "default"): "c1", (IG, EN, "full"): "f1"}


# -- links -----------------------------------------------------------------------------------------------------


async def test_link_upsert_replaces_hash_and_state(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, upsert_links=(link("1", natural_key='{"n": "CTO-1"}'), link("2"))))
    first = (await store.links(IG, EN))["1"]
    assert (first.target_id, first.content_hash, first.state) == ("t1", "h1", "active")
    assert first.updated_at.endswith("+00:00")

    await store.commit(Commit(IG, EN, upsert_links=(link("1", "t1b", "h2", state="inactive"),)))
    second = (await store.links(IG, EN))["1"]
    assert (second.target_id, second.content_hash, second.state, second.natural_key) == (
        "t1b",
        "h2",
        "inactive",
        "",
    )
    assert second.updated_at > first.updated_at
    assert await store.count_links(IG, EN) == 1
    assert await store.count_links(IG, EN, "inactive") == 1


async def test_links_updated_in_place_keep_target_and_natural_key(store: SqliteStateStore) -> None:
    agreed = msgspec.structs.replace(link("1", natural_key='{"n": "CTO-1"}'), source_hash=7, target_hash=8)
    await store.commit(Commit(IG, EN, upsert_links=(agreed, link("2"))))
    selects: list[str] = []
    await store._conn().set_trace_callback(selects.append)
    await store.commit(Commit(IG, EN, update_links=(link("1", "t1", "h2", state="inactive"),)))
    assert not [s for s in selects if s.startswith("INSERT")]  # in place: no upsert
    row = (await store.links(IG, EN))["1"]
    assert (row.target_id, row.content_hash, row.state, row.natural_key) == (
        "t1",
        "h2",
        "inactive",
        '{"n": "CTO-1"}',
    )
    assert (row.source_hash, row.target_hash) == (0, 0)  # an action's write: no agreement known
    assert (await store.links_by_target(IG, EN, ["t1"]))["t1"].source_id == "1"


async def test_links_updated_in_place_that_are_gone_or_repointed_are_written_whole(
    store: SqliteStateStore,
) -> None:
    await store.commit(Commit(IG, EN, upsert_links=(link("1", "t1-elsewhere"), link("2"))))
    await store.commit(
        Commit(IG, EN, update_links=(link("1", "t1", "h2"), link("2", "t2", "h2"), link("3", "t3")))
    )
    found = await store.links(IG, EN)
    assert {sid: (r.target_id, r.content_hash) for sid, r in found.items()} == {
        "1": ("t1", "h2"),
        "2": ("t2", "h2"),
        "3": ("t3", "h1"),
    }
    assert set(await store.links_by_target(IG, EN, ["t1", "t1-elsewhere"])) == {"t1"}


async def test_links_are_scoped_by_integration_and_entity(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, upsert_links=(link("1"),)))
    await store.commit(Commit(IG, "clients", upsert_links=(link("1", "c1"),)))
    assert (await store.links(IG, EN))["1"].target_id == "t1"
    assert (await store.links(IG, "clients"))["1"].target_id == "c1"
    assert await store.links("other", EN) == {}


async def test_links_by_ids_are_read_in_chunks(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, upsert_links=tuple(link(str(n)) for n in range(1500))))
    wanted = [*(str(n) for n in range(1200)), "missing-1", "missing-2", "5", "5"]

    selects: list[str] = []
    await store._conn().set_trace_callback(selects.append)  # observe statements; the store is not patched
    found = await store.links(IG, EN, wanted)
    selects = [s for s in selects if s.startswith("SELECT")]

    assert sorted(found, key=int) == [str(n) for n in range(1200)]
    assert found["7"] == LinkRow("7", "t7", content_hash="h1", updated_at=found["7"].updated_at)
    per_chunk = MAX_PARAMS - 2
    assert len(selects) == -(-1202 // per_chunk)  # ceil: 1202 distinct ids
    assert await store.links(IG, EN, []) == {}


async def test_links_by_target(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, upsert_links=tuple(link(str(n), f"T{n}") for n in range(700))))
    found = await store.links_by_target(IG, EN, [f"T{n}" for n in range(0, 700, 7)] + ["T-none"])
    assert len(found) == 100
    assert found["T14"].source_id == "14"


async def test_unlink(store: SqliteStateStore) -> None:
    await store.commit(Commit(IG, EN, upsert_links=(link("1"), link("2"), link("3"))))
    await store.unlink(IG, EN, ["1", "3", "nope"])
    assert list(await store.links(IG, EN)) == ["2"]


async def test_hundred_thousand_links_round_trip(store: SqliteStateStore) -> None:
    n = 100_000
    rows = tuple(LinkRow(str(i), f"t{i}", f'{{"descricao": "CTO-{i}"}}', f"{i:032x}") for i in range(n))
    await store.commit(Commit(IG, EN, upsert_links=rows, cursor="c"))
    everything = await store.links(IG, EN)
    assert len(everything) == n
    assert everything["99999"].content_hash == f"{99999:032x}"
    assert await store.count_links(IG, EN) == n


# -- journal ---------------------------------------------------------------------------------------------------


async def test_journal_begin_unresolved_and_update(store: SqliteStateStore) -> None:
    await store.journal_begin([entry(1), entry(2), entry(3), entry(1, run_id="run-2", entity="clients")])
    assert [j.action_id for j in await store.journal_unresolved(IG, EN)] == ["run-1:1", "run-1:2", "run-1:3"]
    assert all(j.at for j in await store.journal())

    await store.commit(Commit(IG, EN, journal=(JournalUpdate("run-1:2", "done", target_id="T2"),)))
    assert [j.action_id for j in await store.journal_unresolved(IG, EN)] == ["run-1:1", "run-1:3"]

    # after a crash: the pending ones are looked up on the target and resolved
    await store.journal_resolve(
        [
            JournalUpdate("run-1:1", "resolved", target_id="T1"),
            JournalUpdate("run-1:3", "failed", error="gone"),
        ]
    )
    assert await store.journal_unresolved(IG, EN) == []
    await store.journal_resolve([JournalUpdate("run-1:1", "failed", error="later")])  # empty id keeps T1
    by_id = {j.action_id: j for j in await store.journal("run-1")}
    assert (by_id["run-1:1"].status, by_id["run-1:1"].target_id, by_id["run-1:1"].error) == (
        "failed",
        "T1",
        "later",
    )
    assert by_id["run-1:2"].target_id == "T2"
    assert by_id["run-1:3"].error == "gone"
    assert len(await store.journal(limit=2)) == 2


async def test_unresolved_are_ordered_by_time(store: SqliteStateStore) -> None:
    await store.journal_begin(
        [entry(1, at="2024-05-01T00:00:03+00:00"), entry(2, at="2024-05-01T00:00:01+00:00")]
    )
    assert [j.action_id for j in await store.journal_unresolved(IG, EN)] == ["run-1:2", "run-1:1"]


async def test_reused_action_id_is_refused(store: SqliteStateStore) -> None:
    await store.journal_begin([entry(1)])
    with pytest.raises(StateError, match=r"journal begin failed.*UNIQUE"):
        await store.journal_begin([entry(2), entry(1)])
    assert [j.action_id for j in await store.journal()] == ["run-1:1"]  # entry 2 rolled back too


# -- quarantine ------------------------------------------------------------------------------------------------


async def test_quarantine_replaces_reason_and_releases(store: SqliteStateStore) -> None:
    await store.commit(
        Commit(
            IG,
            EN,
            quarantine=(
                QuarantineRow(IG, EN, "1", "no OLT", "run-1"),
                QuarantineRow(IG, EN, "2", "bad coords"),
            ),
        )
    )
    await store.commit(Commit(IG, EN, quarantine=(QuarantineRow(IG, EN, "1", "no project", "run-2"),)))
    rows = await store.quarantined(IG, EN)
    assert [(q.source_id, q.reason, q.run_id) for q in rows] == [
        ("2", "bad coords", ""),
        ("1", "no project", "run-2"),
    ]
    assert await store.quarantine_count(IG, EN) == 2
    assert await store.held_ids(IG, EN) == {"1", "2"}

    await store.commit(Commit(IG, EN, release_quarantine=("1", "unknown")))
    assert [q.source_id for q in await store.quarantined(IG, EN)] == ["2"]
    assert await store.held_ids(IG, EN) == {"2"}
    assert await store.held_ids(IG, "clients") == frozenset()
    assert await store.quarantine_count(IG, "clients") == 0


async def test_quarantine_oldest_first_and_only_those_checked_before(store: SqliteStateStore) -> None:
    checked = {
        "a": "2026-01-01T10:00:00.000Z",
        "b": "2026-01-01T09:00:00.000Z",
        "c": "2026-01-01T11:00:00.000Z",
    }
    await store.commit(
        Commit(
            IG,
            EN,
            quarantine=tuple(QuarantineRow(IG, EN, sid, "no OLT", at=at) for sid, at in checked.items()),
        )
    )
    assert [q.source_id for q in await store.quarantined(IG, EN, limit=2)] == ["b", "a"]
    due = await store.quarantined(IG, EN, limit=5, checked_before="2026-01-01T10:30:00.000Z")
    assert [q.source_id for q in due] == ["b", "a"]
    due = await store.quarantined(IG, EN, limit=1, checked_before="2026-01-01T10:30:00.000Z")
    assert [q.source_id for q in due] == ["b"]
    assert await store.quarantined(IG, EN, limit=5, checked_before="2026-01-01T09:00:00.000Z") == []
    due = await store.quarantined(IG, EN, checked_before="2026-01-01T10:30:00.000Z")
    assert [q.source_id for q in due] == ["b", "a"]


# -- runs ------------------------------------------------------------------------------------------------------


async def test_runs_start_finish_and_list(store: SqliteStateStore) -> None:
    await store.start_run(RunRow("run-1", IG, "sync", ""))
    await store.start_run(RunRow("run-2", IG, "plan", ""))
    await store.finish_run("run-1", "ok", '{"created": 3}')

    latest, oldest = await store.runs()
    assert latest.run_id == "run-2"
    assert (latest.status, latest.finished_at) == ("running", "")
    assert (oldest.status, oldest.summary) == ("ok", '{"created": 3}')
    assert oldest.finished_at > oldest.started_at
    assert [r.run_id for r in await store.runs(limit=1)] == ["run-2"]

    with pytest.raises(StateError, match="unknown run 'run-9'"):
        await store.finish_run("run-9", "ok", "")
    with pytest.raises(StateError, match="start run run-1 failed"):
        await store.start_run(RunRow("run-1", IG, "sync", ""))


# -- atomic() and concurrency ----------------------------------------------------------------------------------


async def test_nested_atomic_rolls_back_the_inner_block_only(store: SqliteStateStore) -> None:
    async with store.atomic():
        await store.commit(Commit(IG, EN, upsert_links=(link("outer"),)))
        with pytest.raises(RuntimeError):
            async with store.atomic():
                await store.commit(Commit(IG, EN, upsert_links=(link("inner"),), cursor="inner"))
                assert "inner" in await store.links(IG, EN)
                raise RuntimeError("boom")
        async with store.atomic():
            await store.commit(Commit(IG, EN, upsert_links=(link("kept"),)))
    assert sorted(await store.links(IG, EN)) == ["kept", "outer"]
    assert await store.cursor(IG, EN) is None


async def test_outer_failure_rolls_back_released_inner_blocks(store: SqliteStateStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.atomic():
            async with store.atomic():
                await store.commit(Commit(IG, EN, upsert_links=(link("inner"),)))
            raise RuntimeError("boom")
    assert await store.links(IG, EN) == {}
    await store.commit(Commit(IG, EN, upsert_links=(link("after"),)))  # the store is still usable
    assert list(await store.links(IG, EN)) == ["after"]


async def test_other_tasks_wait_for_an_open_transaction(store: SqliteStateStore) -> None:
    seen: list[str] = []
    inside = anyio.Event()

    async def reader() -> None:
        await inside.wait()
        links = await store.links(IG, EN)  # must wait: never sees the uncommitted row
        seen.append(f"read {sorted(links)}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        async with store.atomic():
            await store.commit(Commit(IG, EN, upsert_links=(link("x"),)))
            inside.set()
            await anyio.sleep(0.05)
            seen.append("committing")
    assert seen == ["committing", "read ['x']"]


async def test_cancellation_inside_atomic_rolls_back(store: SqliteStateStore) -> None:
    with anyio.CancelScope() as scope:
        async with store.atomic():
            await store.commit(Commit(IG, EN, upsert_links=(link("x"),)))
            scope.cancel()
            await anyio.sleep(1)
    assert scope.cancelled_caught
    assert await store.links(IG, EN) == {}
    await store.commit(Commit(IG, EN, cursor="c"))
    assert await store.cursor(IG, EN) == "c"


async def test_compact_links_and_refreshes_leave_the_link_itself_alone(store: SqliteStateStore) -> None:
    key = '{"descricao": "CTO-1"}'
    await store.commit(
        Commit(IG, EN, upsert_links=(LinkRow("b1", "45", key, "h1", updated_at="2024-01-01"),))
    )
    (compact,) = (await store.links(IG, EN, compact=True)).values()
    assert (compact.target_id, compact.content_hash, compact.natural_key, compact.updated_at) == (
        "45",
        "h1",
        "",
        "",
    )
    await store.commit(
        Commit(IG, EN, refresh_links=(LinkRefresh("b1", "h1", source_hash=-7, target_hash=9),))
    )
    row = (await store.links(IG, EN))["b1"]
    assert (row.target_id, row.natural_key, row.content_hash, row.updated_at) == (
        "45",
        key,
        "h1",
        "2024-01-01",
    )
    assert (row.source_hash, row.target_hash) == (-7, 9)
    stamp = "2024-06-01T00:00:00Z"
    refresh = LinkRefresh("b1", "h2", updated_at=stamp)
    await store.commit(Commit(IG, EN, refresh_links=(refresh, LinkRefresh("unknown", "h"))))
    row = (await store.links(IG, EN))["b1"]
    assert (row.content_hash, row.source_hash, row.target_hash, row.updated_at) == ("h2", 0, 0, stamp)
    assert set(await store.links(IG, EN)) == {"b1"}  # a refresh never creates a link
    # an action's write resets the fingerprints: the next full cycle compares the pair again
    await store.commit(Commit(IG, EN, refresh_links=(LinkRefresh("b1", "h2", 1, 2),)))
    await store.commit(Commit(IG, EN, upsert_links=(LinkRow("b1", "46", key, "h3"),)))
    row = (await store.links(IG, EN))["b1"]
    assert (row.target_id, row.source_hash, row.target_hash) == ("46", 0, 0)
