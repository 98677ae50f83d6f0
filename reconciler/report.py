"""Render plans and apply outcomes for people (terminal text, HTML) and machines (JSON).

Pure: takes :class:`~reconciler.model.Plan` / outcomes, returns strings or bytes. Reasons are grouped so a
thousand boxes skipped for the same missing OLT read as one line with a count, not a thousand lines.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence

import msgspec

from reconciler.model import (
    Action,
    Create,
    Delete,
    EntityPlan,
    Inactivate,
    Link,
    Operate,
    Outcome,
    Plan,
    Quarantine,
    Skip,
    Update,
    Value,
    action_kind,
)

KINDS = ("create", "link", "update", "operate", "inactivate", "delete", "skip", "quarantine")
#: Detail lines per kind in the terminal report (the HTML and JSON reports list everything).
TEXT_DETAIL_MAX = 25


class Report(msgspec.Struct):
    """The JSON document written by ``--json``: the plan and, after a sync, what happened."""

    plan: Plan
    outcomes: dict[str, list[Outcome]] = msgspec.field(default_factory=dict)


def to_json(plan: Plan, outcomes: dict[str, list[Outcome]] | None = None) -> bytes:
    """The plan (and outcomes) as indented JSON."""
    return msgspec.json.format(msgspec.json.encode(Report(plan, outcomes or {})), indent=2)


def _show(value: Value) -> str:
    if value is None:
        return "∅"
    if isinstance(value, str):
        return repr(value)
    return msgspec.json.encode(value).decode()


def _name(action: Action) -> str:
    return action.label or action.source_id


def describe(action: Action) -> str:
    """One line saying what an action does, with field before → after."""
    match action:
        case Create():
            fields = " ".join(f"{k}={_show(v)}" for k, v in action.fields.items())
            why = f"  ({action.reason})" if action.reason else ""
            return f"{_name(action)}: {fields}{why}"
        case Link():
            changes = "; ".join(f"{c.field}: {_show(c.before)} → {_show(c.after)}" for c in action.changes)
            return f"{_name(action)} ↔ #{action.target_id}" + (
                f": {changes}" if changes else " (already equal)"
            )
        case Update():
            changes = "; ".join(f"{c.field}: {_show(c.before)} → {_show(c.after)}" for c in action.changes)
            return f"{_name(action)} #{action.target_id}: {changes}"
        case Operate():
            args = ", ".join(f"{k}={_show(v)}" for k, v in action.args.items())
            return f"{_name(action)} #{action.target_id}: {action.operation}({args})"
        case Inactivate():
            return f"{_name(action)} #{action.target_id}: {action.field}: {_show(action.before)} → {_show(action.value)}"
        case Delete():
            return f"{_name(action)} #{action.target_id}"
        case Skip() | Quarantine():
            return f"{_name(action)}: {action.reason}"
    raise AssertionError(action)


def summary_line(entity: EntityPlan) -> str:
    parts = [f"{kind} {entity.count(kind)}" for kind in KINDS if entity.count(kind)]
    parts.append(f"unchanged {entity.unchanged}")
    if entity.filtered:
        parts.append(f"filtered out {entity.filtered}")
    return ", ".join(parts)


def _grouped_reasons(actions: Sequence[Skip | Quarantine]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for action in actions:
        groups[action.reason].append(_name(action))
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def render_text(
    plan: Plan, outcomes: dict[str, list[Outcome]] | None = None, *, guard_overridden: bool = False
) -> str:
    """The terminal report: a summary per entity, then details per action kind."""
    lines: list[str] = []
    for entity in plan.entities:
        key = f"{entity.integration}/{entity.entity}"
        lines.append(f"== {key}  ({entity.source} → {entity.target}, {entity.mode})")
        lines.append(f"   {summary_line(entity)}")
        if entity.guard:
            lines.append(f"   GUARD: {entity.guard}")
        for kind in ("create", "link", "update", "operate", "inactivate", "delete"):
            chosen = [a for a in entity.actions if action_kind(a) == kind]
            for action in chosen[:TEXT_DETAIL_MAX]:
                lines.append(f"   {kind.upper():<10} {describe(action)}")
            if len(chosen) > TEXT_DETAIL_MAX:
                lines.append(
                    f"   {'':<10} … and {len(chosen) - TEXT_DETAIL_MAX} more {kind}s (see --json/--html)"
                )
        for kind, cls in (("skip", Skip), ("quarantine", Quarantine)):
            chosen_sq = [a for a in entity.actions if isinstance(a, cls)]
            for reason, names in _grouped_reasons(chosen_sq)[:TEXT_DETAIL_MAX]:
                shown = ", ".join(names[:5]) + (f", … (+{len(names) - 5})" if len(names) > 5 else "")
                lines.append(f"   {kind.upper():<10} ×{len(names)} {reason}: {shown}")
        done = (outcomes or {}).get(key)
        if done is not None:
            ok = sum(1 for o in done if o.ok)
            failed = [o for o in done if not o.ok and o.kind not in ("skip", "quarantine")]
            lines.append(f"   applied: {ok} succeeded, {len(failed)} failed")
            for outcome in failed[:TEXT_DETAIL_MAX]:
                lines.append(
                    f"   FAILED     {outcome.kind} {outcome.label or outcome.source_id}: {outcome.error}"
                )
        lines.append("")
    total = plan.changes
    verdict = "in sync: nothing to do" if total == 0 else f"{total} change(s) planned"
    if plan.guard_tripped and guard_overridden:
        verdict += " — guard overridden by the operator (--allow-mass-removal): applied"
    elif plan.guard_tripped:
        verdict += " — GUARD TRIPPED, nothing will be applied without an override"
    lines.append(verdict)
    return "\n".join(lines)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} .guard{background:#fdd;padding:.5rem;border:1px solid #c00}
.create{color:#070}.update,.link,.operate{color:#05a}.inactivate,.delete{color:#a00}.skip,.quarantine{color:#a60}
code{font-size:.85rem}
"""


def render_html(
    plan: Plan, outcomes: dict[str, list[Outcome]] | None = None, *, title: str = "reconciler plan"
) -> str:
    """A self-contained HTML report listing every action."""
    e = html.escape
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_STYLE}</style>"
    ]
    out.append(f"</head><body><h1>{e(title)}</h1><p>Planned at {e(plan.created_at)}. ")
    out.append(
        f"{plan.changes} change(s) in {len(plan.entities)} entit{'y' if len(plan.entities) == 1 else 'ies'}.</p>"
    )
    out.append("<table><tr><th>entity</th><th>source → target</th><th>mode</th>")
    out.extend(f"<th>{k}</th>" for k in KINDS)
    out.append("<th>unchanged</th><th>filtered</th></tr>")
    for ent in plan.entities:
        out.append(
            f"<tr><td>{e(ent.integration)}/{e(ent.entity)}</td><td>{e(ent.source)} → {e(ent.target)}</td>"
        )
        out.append(f"<td>{e(ent.mode)}</td>")
        out.extend(f"<td class='{k}'>{ent.count(k)}</td>" for k in KINDS)
        out.append(f"<td>{ent.unchanged}</td><td>{ent.filtered}</td></tr>")
    out.append("</table>")
    for ent in plan.entities:
        key = f"{ent.integration}/{ent.entity}"
        out.append(f"<h2>{e(key)}</h2>")
        if ent.guard:
            out.append(f"<p class='guard'>Guard: {e(ent.guard)}</p>")
        if not ent.actions:
            out.append("<p>Nothing to do.</p>")
            continue
        out.append("<table><tr><th>action</th><th>record</th><th>details</th></tr>")
        for action in ent.actions:
            kind = action_kind(action)
            out.append(
                f"<tr><td class='{kind}'>{kind}</td><td>{e(_name(action))}</td><td><code>{e(describe(action))}</code></td></tr>"
            )
        out.append("</table>")
        done = (outcomes or {}).get(key)
        if done:
            failed = [o for o in done if not o.ok and o.kind not in ("skip", "quarantine")]
            out.append(f"<p>Applied: {sum(1 for o in done if o.ok)} succeeded, {len(failed)} failed.</p>")
            if failed:
                out.append("<table><tr><th>failed action</th><th>record</th><th>error</th></tr>")
                for o in failed:
                    out.append(
                        f"<tr><td>{e(o.kind)}</td><td>{e(o.label or o.source_id)}</td><td>{e(o.error)}</td></tr>"
                    )
                out.append("</table>")
    out.append("</body></html>")
    return "".join(out)
