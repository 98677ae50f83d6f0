"""Planning beyond field updates: rules that never create, delete or operate on what they match, and blocked
writes; plus how the report renders an operation."""

from __future__ import annotations

from typing import Any

from reconciler import planning, report
from reconciler.model import Create, Delete, Desired, Link, Operate, Plan, Record, Skip, Update, content_hash


def spec(**overrides: Any) -> planning.PlanSpec:
    base: dict[str, Any] = {
        "integration": "ozmap-ixc",
        "entity": "clients",
        "source": "ixc.logins",
        "target": "ozmap.clients",
        "first_sight": ("code",),
        "updatable": frozenset({"status"}),
        "removal": planning.Removal(),
        "max_inactivate_share": 0.1,
    }
    return planning.PlanSpec(**{**base, **overrides})


def desired(sid: str, code: str, *, status: int | None = 0, **extra: Any) -> Desired:
    fields: dict[str, Any] = {"code": code}
    if status is not None:
        fields["status"] = status
    return Desired(
        source_id=sid,
        fields=fields,
        natural_key={"code": code},
        content_hash=content_hash(fields),
        create_only=frozenset({"code"}),
        label=code,
        **extra,
    )


def target(tid: str, code: str, status: int = 1) -> Record:
    return Record(id=tid, fields={"code": code, "status": status})


def run(rule: planning.PlanSpec, normalized: list[Desired], *, targets: tuple[Record, ...] = (), links=None):  # type: ignore[no-untyped-def]
    links = links or {}
    return planning.plan(
        rule,
        planning.PlanInput(
            mode="full",
            normalized=normalized,
            links=links,
            targets={t.id: t for t in targets},
            claimed_targets=frozenset(link.target_id for link in links.values()),
            linked_total=len(links),
            force_compare=True,
        ),
    )


def test_unmatched_records_are_ignored_skipped_or_created() -> None:
    items = [desired("1", "ana")]
    ignored = run(spec(on_unmatched="ignore"), items)
    assert ignored.actions == () and ignored.unchanged == 1
    (skip,) = run(spec(on_unmatched="skip"), items).actions
    assert isinstance(skip, Skip) and skip.reason == "no ozmap.clients record matches code='ana'"
    (reasoned,) = run(spec(on_unmatched="skip"), [desired("1", "ana", unmatched_reason="no client")]).actions
    assert isinstance(reasoned, Skip) and reasoned.reason == "no client"
    (create,) = run(spec(), items).actions
    assert isinstance(create, Create)


def test_a_blocked_create_is_a_skip_but_a_match_still_links() -> None:
    blocked = [desired("1", "ana", blocked="box 99 is not linked")]
    (skip,) = run(spec(), blocked).actions
    assert isinstance(skip, Skip) and skip.reason == "box 99 is not linked"
    (link,) = run(spec(), blocked, targets=(target("t1", "ana"),)).actions
    assert isinstance(link, Link) and link.target_id == "t1"


def test_a_rule_that_never_creates_skips_a_blocked_match_and_ignores_the_rest() -> None:
    rule = spec(on_unmatched="ignore")
    items = [desired("1", "ana", blocked="box not linked"), desired("2", "bia", blocked="box not linked")]
    (skip,) = run(rule, items, targets=(target("t1", "ana"),)).actions
    assert isinstance(skip, Skip) and (skip.source_id, skip.reason) == ("1", "box not linked")


def test_matched_records_can_be_deleted_or_operated_on() -> None:
    matched = (target("t1", "ana"), target("t2", "bia"))
    items = [desired("1", "ana", status=None), desired("2", "bia", status=None), desired("3", "caio")]
    deleted = run(spec(on_unmatched="ignore", apply="delete"), items, targets=matched)
    assert [(type(a), a.target_id) for a in deleted.actions] == [(Delete, "t1"), (Delete, "t2")]
    assert deleted.guard == "" and deleted.unchanged == 1  # deletes of matched records are not removals
    operated = run(spec(on_unmatched="ignore", apply="operation", operation="cancel"), items, targets=matched)
    first = operated.actions[0]
    assert isinstance(first, Operate) and (first.operation, first.args) == ("cancel", {"code": "ana"})


def test_a_vanished_linked_target_is_looked_up_again_by_rules_that_never_create() -> None:
    links = {"1": planning.LinkState("gone", "old-hash")}
    (link,) = run(
        spec(on_unmatched="ignore"), [desired("1", "ana")], targets=(target("t9", "ana"),), links=links
    ).actions
    assert isinstance(link, Link) and link.target_id == "t9"
    nothing = run(spec(on_unmatched="ignore"), [desired("1", "ana")], links=links)
    assert nothing.actions == ()
    (again,) = run(spec(), [desired("1", "ana")], links=links).actions  # a creating rule creates it again
    assert isinstance(again, Create) and "no longer exists" in again.reason


def test_linked_records_update_only_what_differs() -> None:
    links = {"1": planning.LinkState("t1", "old-hash")}
    (update,) = run(
        spec(on_unmatched="ignore"), [desired("1", "ana")], targets=(target("t1", "ana"),), links=links
    ).actions
    assert isinstance(update, Update) and [(c.before, c.after) for c in update.changes] == [(1, 0)]


def test_an_empty_snapshot_guards_only_rules_that_remove() -> None:
    links = {"1": planning.LinkState("t1", "h")}
    assert run(spec(), [], links=links).guard == ""
    removing = spec(removal=planning.Removal(action="delete"))
    assert "empty" in run(removing, [], links=links).guard


def test_the_report_shows_an_operation_with_its_arguments() -> None:
    action = Operate("1", "p9", "cancel", {"code": "ana", "disconnect_drop": True}, "h", "ana")
    assert report.describe(action) == "ana #p9: cancel(code='ana', disconnect_drop=true)"
    entity = run(spec(on_unmatched="ignore", apply="operation", operation="cancel"), [desired("1", "ana")],
                 targets=(target("t1", "ana"),))  # fmt: skip
    text = report.render_text(Plan(created_at="now", entities=(entity,)))
    assert "operate 1" in text and "OPERATE    ana #t1: cancel(" in text
    assert b'"type": "operate"' in report.to_json(Plan(created_at="now", entities=(entity,)))
