"""Numbered, named schema migrations of the SQLite state store.

:data:`MIGRATIONS` is append-only: migration *n* (1-based position) is recorded as ``version = n`` in
``schema_version`` together with its name, so a database touched by another build of the reconciler is recognised
(a recorded name that differs from ours, or a version beyond ours, is refused rather than guessed at). Never edit
or reorder a shipped migration; add a new one.

Each migration is a plain SQL script. The store splits it into statements with :func:`statements` and runs them,
plus the ``schema_version`` insert, inside one ``BEGIN IMMEDIATE`` transaction: SQLite DDL is transactional, so a
migration is applied entirely or not at all. (``executescript`` is not used because it commits any open
transaction first.)

Design notes on the first schema:

- ``links``, ``cursors`` and ``quarantine`` are ``WITHOUT ROWID`` tables clustered on their natural primary key,
  so reading every link of one entity is a single range scan of the primary key.
- ``CHECK`` constraints pin the closed vocabularies (link state, journal status) so a bad value fails the whole
  batch instead of being stored.
- Timestamps are ISO-8601 UTC text (``2024-05-01T12:00:00.000000+00:00``); they sort lexicographically.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

__all__ = ["BOOTSTRAP", "MIGRATIONS", "Migration", "history_problem", "statements"]


class Migration(NamedTuple):
    """One schema step: ``name`` is recorded next to its version; ``script`` is SQL, several statements."""

    name: str
    script: str


#: Created outside any migration: the table that records which migrations ran.
BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    applied_at TEXT NOT NULL
)
"""

_INITIAL = """
CREATE TABLE links (
    integration  TEXT NOT NULL,
    entity       TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    natural_key  TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'inactive')),
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (integration, entity, source_id)
) WITHOUT ROWID;

CREATE INDEX links_by_target ON links (integration, entity, target_id);

CREATE TABLE cursors (
    integration TEXT NOT NULL,
    entity      TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (integration, entity, name)
) WITHOUT ROWID;

CREATE TABLE journal (
    run_id       TEXT NOT NULL,
    action_id    TEXT NOT NULL PRIMARY KEY,
    integration  TEXT NOT NULL,
    entity       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    target_id    TEXT NOT NULL DEFAULT '',
    natural_key  TEXT NOT NULL DEFAULT '',
    payload_hash TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'done', 'failed', 'resolved')),
    error        TEXT NOT NULL DEFAULT '',
    at           TEXT NOT NULL
);

CREATE INDEX journal_by_status ON journal (integration, entity, status);
CREATE INDEX journal_by_run ON journal (run_id);

CREATE TABLE quarantine (
    integration TEXT NOT NULL,
    entity      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    run_id      TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL,
    PRIMARY KEY (integration, entity, source_id)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_id      TEXT NOT NULL PRIMARY KEY,
    integration TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'running',
    summary     TEXT NOT NULL DEFAULT ''
);

CREATE INDEX runs_by_start ON runs (started_at);
"""

#: Incremental cycles re-check the held (skipped/quarantined) records least recently checked first.
_QUARANTINE_BY_AGE = """
CREATE INDEX quarantine_by_age ON quarantine (integration, entity, at, source_id);
"""

#: Fingerprints of the source and target record last found in agreement (see ``reconciler.agreement``);
#: 0 = unknown, which every existing link starts with.
_AGREEMENT = """
ALTER TABLE links ADD COLUMN source_hash INTEGER NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN target_hash INTEGER NOT NULL DEFAULT 0;
"""

#: Every migration, in order. Position + 1 is the schema version it produces.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_initial", _INITIAL),
    Migration("0002_quarantine_by_age", _QUARANTINE_BY_AGE),
    Migration("0003_link_agreement", _AGREEMENT),
)


def statements(script: str) -> list[str]:
    """Split an SQL script into single statements.

    The script is cut at each ``;`` where ``sqlite3.complete_statement`` agrees that a statement ends, so a ``;``
    inside a string literal or a trigger body does not cut a statement in two.
    """
    result: list[str] = []
    pending = ""
    *pieces, rest = script.split(";")
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            result.append(pending.strip())
            pending = ""
    if (pending + rest).strip():
        raise ValueError(
            f"incomplete SQL statement at the end of a migration: {(pending + rest).strip()[:80]!r}"
        )
    return result


def history_problem(recorded: dict[int, str]) -> str | None:
    """Why the recorded ``{version: name}`` history is not a prefix of :data:`MIGRATIONS`; None when it is."""
    for version, name in sorted(recorded.items()):
        if version > len(MIGRATIONS):
            return (
                f"schema version {version} ({name}) is newer than this reconciler knows ({len(MIGRATIONS)}); "
                "upgrade the reconciler"
            )
        if MIGRATIONS[version - 1].name != name:
            return (
                f"schema version {version} is recorded as {name!r} but this reconciler calls it "
                f"{MIGRATIONS[version - 1].name!r}; refusing to guess"
            )
    return None
