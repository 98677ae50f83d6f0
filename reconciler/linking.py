"""``reconciler import-links``: pair source and target records from a CSV file, with a per-line error report.

Seed 000: "Either External Service Location ID or External Identification must be populated in COS BE for the
sync to work. These can be added manually or via CSV import." Pairs that no natural key can find (an object
whose ids were never filled in) are given by a person as a CSV file of ``source_id,target_id`` rows; each good
row becomes a link of the entity in the state store, exactly as if the engine had matched the pair. The next
cycle that reads the source record compares the pair field by field and writes what differs (for
``cosbe-vetro/service-locations``: the object's External Identification, External Service Location ID and
Vetro link, which then make the object take part in the COS → Vetro push). A record the engine skipped before
(kept in quarantine) is re-read by the next incremental cycle, any other at the next full one; ``--sync`` runs a
cycle targeted at the imported records at once.

The file: a header line ``source_id,target_id`` (any case; blank lines and lines starting with ``#`` are
skipped), then one pair per line. A row is *bad* — reported as ``FILE:LINE: what is wrong`` and not written —
when it does not have exactly two values, a value is empty, its source or target id appears on another line of
the file, the source or the target record does not exist, or either is already linked to another record. A pair
already linked is *unchanged*. The good rows are written in one transaction; bad rows write nothing at all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.applying import now_iso
from reconciler.connectors.base import Connector
from reconciler.errors import ConfigError
from reconciler.rules.compiling import CompiledRule
from reconciler.state.store import Commit, LinkRow, StateStore

__all__ = ["HEADER", "LinkImport", "Problem", "Row", "import_links", "parse"]

HEADER = ("source_id", "target_id")
#: Ids per existence check (one ``fetch_by_ids`` call).
CHECK_BATCH = 500


@dataclass(frozen=True)
class Row:
    """One pair of the file, with its 1-based line number."""

    line: int
    source_id: str
    target_id: str


@dataclass(frozen=True)
class Problem:
    """A bad row: its line, and what is wrong with it."""

    line: int
    message: str


@dataclass
class LinkImport:
    """What an import found and did."""

    rows: list[Row] = field(default_factory=list)
    """Good rows (written unless this was a dry run)."""
    unchanged: list[Row] = field(default_factory=list)
    """Rows whose pair was linked already."""
    problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False

    def report(self, path: str | Path) -> list[str]:
        """The per-line error report, in line order, then a summary line."""
        lines = [f"{path}:{p.line}: {p.message}" for p in sorted(self.problems, key=lambda p: p.line)]
        verb = "would import" if self.dry_run else "imported"
        lines.append(
            f"{verb} {len(self.rows)} link(s), {len(self.unchanged)} already linked, "
            f"{len(self.problems)} bad row(s) not written"
        )
        return lines


def parse(text: str) -> tuple[list[Row], list[Problem]]:
    """The rows of a CSV text and the problems of its lines (syntax, empty values, duplicates in the file)."""
    rows: list[Row] = []
    problems: list[Problem] = []
    header_seen = False
    sources: dict[str, int] = {}
    targets: dict[str, int] = {}
    for number, values in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [v.strip() for v in values]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            if tuple(c.lower() for c in cells) != HEADER:
                problems.append(
                    Problem(number, f"the header must read {','.join(HEADER)}, not {','.join(cells)}")
                )
                return [], problems
            continue
        if len(cells) != 2:
            problems.append(Problem(number, f"expected 2 values (source_id,target_id), got {len(cells)}"))
            continue
        source_id, target_id = cells
        if not source_id or not target_id:
            problems.append(Problem(number, f"empty {'source_id' if not source_id else 'target_id'}"))
            continue
        if source_id in sources:
            problems.append(
                Problem(number, f"source {source_id} is already paired on line {sources[source_id]}")
            )
            continue
        if target_id in targets:
            problems.append(
                Problem(number, f"target {target_id} is already paired on line {targets[target_id]}")
            )
            continue
        sources[source_id], targets[target_id] = number, number
        rows.append(Row(number, source_id, target_id))
    if not header_seen:
        problems.append(Problem(1, f"empty file: expected the header {','.join(HEADER)} and rows"))
    return rows, problems


async def import_links(
    text: str,
    *,
    rule: CompiledRule,
    connectors: Mapping[str, Connector],
    store: StateStore,
    dry_run: bool = False,
) -> LinkImport:
    """Check the pairs of ``text`` against both systems and the state store; write the good ones as links."""
    for system in (rule.source_system, rule.target_system):
        if system not in connectors:
            raise ConfigError(f"{rule.name}: system {system!r} is not configured")
    rows, problems = parse(text)
    result = LinkImport(problems=problems, dry_run=dry_run)
    source = connectors[rule.source_system]
    target = connectors[rule.target_system]
    have_sources = await _existing(source, rule.source_collection, [r.source_id for r in rows])
    have_targets = await _existing(target, rule.target_collection, [r.target_id for r in rows])
    linked = await store.links(rule.integration, rule.entity, [r.source_id for r in rows])
    claimed = await store.links_by_target(rule.integration, rule.entity, [r.target_id for r in rows])
    for row in rows:
        problem = _problem(row, rule, have_sources, have_targets, linked, claimed)
        if problem is not None:
            result.problems.append(Problem(row.line, problem))
        elif row.source_id in linked:
            result.unchanged.append(row)
        else:
            result.rows.append(row)
    if result.rows and not dry_run:
        at = now_iso()
        await store.commit(
            Commit(
                integration=rule.integration,
                entity=rule.entity,
                # No content hash: the next cycle that reads the source compares every field and writes the rest.
                upsert_links=tuple(LinkRow(r.source_id, r.target_id, updated_at=at) for r in result.rows),
            )
        )
        result.written = True
    return result


def _problem(
    row: Row,
    rule: CompiledRule,
    have_sources: set[str],
    have_targets: set[str],
    linked: Mapping[str, LinkRow],
    claimed: Mapping[str, LinkRow],
) -> str | None:
    if row.source_id not in have_sources:
        return f"source {row.source_id}: no such record in {rule.source_system} {rule.source_collection}"
    if row.target_id not in have_targets:
        return f"target {row.target_id}: no such record in {rule.target_system} {rule.target_collection}"
    link = linked.get(row.source_id)
    if link is not None and link.target_id != row.target_id:
        return f"source {row.source_id} is already linked to {link.target_id}"
    other = claimed.get(row.target_id)
    if other is not None and other.source_id != row.source_id:
        return f"target {row.target_id} is already linked to source {other.source_id}"
    return None


async def _existing(connector: Connector, collection: str, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHECK_BATCH):
        found.update(r.id for r in await connector.fetch_by_ids(collection, ids[start : start + CHECK_BATCH]))
    return found
