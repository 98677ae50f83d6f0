"""Issue 10.2: ``reconciler sync`` killed with SIGKILL at random points never duplicates or loses anything.

:mod:`tests.reliability.crash_harness` runs the sync as a subprocess against a generated world, kills it during
apply (after the k-th write; as a create is in flight), during fetch and during a commit, restarts it and compares
the converged result with a run that was never killed. CI tries 20 kill points on ozmap-ixc and a few on every
other integration; ``python -m tests.reliability.crash_harness --runs N`` tries more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import crash_harness, support

pytestmark = pytest.mark.anyio

#: Kill points per integration in CI: the issue asks for at least 20.
RUNS = {"ozmap-ixc": 20}
OTHER_RUNS = 3


@pytest.mark.timeout(600)
async def test_kill_9_at_random_points_never_duplicates_loses_links_or_leaves_the_journal_pending(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    results: list[crash_harness.KillResult] = []
    for integration in support.integrations():
        runs = RUNS.get(integration, OTHER_RUNS)
        summary = await crash_harness.run([integration], runs, tmp_path, report=lines.append)
        results.extend(summary.results)
    summary = crash_harness.Summary(results)
    support.FIGURES["crash safety under kill -9 (issue 10.2)"] = summary.figures() + "\n" + "\n".join(lines)
    assert summary.ok, "\n".join(r.line() for r in results if not r.ok)
    ozmap_ixc = [r for r in results if r.integration == "ozmap-ixc"]
    assert sum(r.killed for r in ozmap_ixc) >= 20
    assert len({(r.mode, r.writes_at_kill, r.reads_at_kill) for r in ozmap_ixc}) >= 15, (
        "kill points too alike"
    )
    assert {r.mode for r in ozmap_ixc} == set(crash_harness.MODES)
    assert sum(r.pending_after_kill for r in results) > 0, "no kill ever left a half-done action to resolve"
    assert sum(r.adopted for r in ozmap_ixc) > 0, "no create landed while its process died"
    assert sum(r.verdict.duplicates for r in results) == 0
    assert sum(r.verdict.links_lost for r in results) == 0
