"""The general rule-language and planner capabilities added for ``cosbe-vetro``, on small made-up rules.

Quoted field names, ``case()`` and ``format()``, the ``yes_no`` transform, ``on-fail = "skip-create"`` checks,
``first-sight-fallback`` (and ``id`` as the target's own id, empty keys matching nothing), table options with
``[field-map.OPTION]``, open field prefixes in collection schemas, and the CSV parser of ``import-links``.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import linking
from reconciler.connectors.base import CollectionSchema
from reconciler.errors import ConfigError, RuleError
from reconciler.model import Desired, Link, Record, Skip, Skipped, Update, Value, content_hash
from reconciler.planning import LinkState, PlanInput, PlanSpec, Removal, plan
from reconciler.rules import expressions, transforms
from reconciler.rules.compiling import CompiledRule, compile_rule
from reconciler.rules.loading import load_rule_file

PATH = "rules/demo/places.toml"
SOURCE = CollectionSchema(
    fields=frozenset({"name", "properties.Zip Code", "properties.Import", "plan_id", "flag"}),
    open_prefixes=frozenset({"properties."}),
)
TARGET = CollectionSchema(
    fields=frozenset({"ext", "code", "zip", "link", "flag_text"}),
    writable=frozenset({"ext", "code", "zip", "link", "flag_text"}),
    open_prefixes=frozenset({"meta."}),
)
RULE = """\
[source]
system = "src"
collection = "places"

[target]
system = "dst"
collection = "things"

[match]
first-sight = ["ext"]
first-sight-fallback = ["code"]

[[source.check]]
expr = "`properties.Import` == 'Yes'"
reason = "Import is {properties.Import}"
on-fail = "skip-create"

[[source.check]]
expr = "present(`properties.Zip Code`)"
reason = "no Zip Code"
on-fail = "skip-create"

[options.link_url]
default = "https://map/{1}?plan={0}"

[options.extra]
default = { "Colour" = "Color" }

[fields.ext]
expr = "id"

[fields.code]
from = "name"

[fields.zip]
from = "properties.Zip Code"

[fields.link]
expr = "format(option('link_url'), plan_id, id)"

[fields.flag_text]
from = "flag"
transform = "yes_no"

[field-map.extra]
target = "meta.{value}"
from = "properties.{key}"
"""


def compiled(text: str = RULE, **options: Value) -> CompiledRule:
    rule = load_rule_file(PATH, text=text)
    return compile_rule(rule, source=SOURCE, target=TARGET, lookup_schemas={}, options=options)


def record(rid: str = "p1", **fields: Any) -> Record:
    base: dict[str, Any] = {
        "name": "C-1",
        "properties.Zip Code": "05602",
        "properties.Import": "Yes",
        "plan_id": 112,
        "flag": True,
        "properties.Colour": "red",
    }
    base.update(fields)
    return Record(id=rid, fields=base)


def test_expression_additions() -> None:
    def value(text: str, **env: Any) -> Any:
        return expressions.compile_expression(text, fields=["properties.Zip Code", "x"])(env)

    assert value("`properties.Zip Code` + '-1'", **{"properties.Zip Code": "05602"}) == "05602-1"
    assert value("case(x, 'A', 'a', 'B', 'b')", x="B") == "b"
    assert value("case(x, 'A', 'a', 'other')", x="Z") == "other"
    assert value("case(x, 1, 'one')", x=True) is None  # true is not 1
    assert value("format('{1}/{0}', x, 7)", x="p") == "7/p"
    assert value("format('{}-{}', x, null)", x="p") is None  # a missing part: no half-built URL
    with pytest.raises(ValueError, match="only"):
        value("format('{x.__class__}', x)", x="p")
    with pytest.raises(expressions.ExpressionError, match="unterminated"):
        expressions.parse("`properties.Zip Code")


def test_yes_no() -> None:
    assert [transforms.yes_no(v) for v in (True, False, "true", "FALSE", "Yes", "Aerial", None)] == [
        "Yes",
        "No",
        "Yes",
        "No",
        "Yes",
        "Aerial",
        None,
    ]


def test_skip_create_checks_name_every_failing_condition_but_keep_the_record() -> None:
    rule = compiled()
    good = rule.normalize(record(), {})
    assert isinstance(good, Desired) and good.blocked == ""
    assert good.fields["link"] == "https://map/p1?plan=112" and good.fields["flag_text"] == "Yes"
    assert good.fields["meta.Color"] == "red"  # the field-map entry, through the open prefixes
    assert good.natural_key == {"ext": "p1"} and good.fallback_key == {"code": "C-1"}
    bad = rule.normalize(record(**{"properties.Import": "No", "properties.Zip Code": ""}), {})
    assert isinstance(bad, Desired) and bad.blocked == "Import is No; no Zip Code"


def test_the_config_replaces_a_table_option() -> None:
    rule = compiled(extra={"Colour": "Tint", "Size": "Size"})
    assert {f for f in rule.fields if f.startswith("meta.")} == {"meta.Tint", "meta.Size"}
    with pytest.raises(ConfigError, match="must be a table of text"):
        compiled(extra={"Colour": 3})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'first-sight-fallback = ["code"]',
            'first-sight-fallback = ["nope"]',
            "'nope' is not a mapped field",
        ),
        ("[field-map.extra]\n", "[field-map.link_url]\n", "option 'link_url' is not a table"),
        ('target = "meta.{value}"', 'target = "meta.x"', "use the placeholders {key} and {value}"),
        ('from = "properties.{key}"', 'from = "properties.{other}"', "use the placeholders"),
        ("[match]\n", '[match]\non-unmatched = "ignore"\n', '"skip-create" gates creation'),
    ],
)
def test_static_errors(old: str, new: str, message: str) -> None:
    assert old in RULE
    with pytest.raises(RuleError, match=message):
        load_rule_file(PATH, text=RULE.replace(old, new, 1))


def desired(sid: str, **fields: Any) -> Desired:
    return Desired(
        source_id=sid,
        fields=fields,
        natural_key={"id": fields.get("id")},
        fallback_key={"code": fields.get("code")},
        content_hash=content_hash(fields),
        create_only=frozenset({"id", "code"}),
    )


SPEC = PlanSpec(
    integration="i",
    entity="e",
    source="s.x",
    target="t.y",
    first_sight=("id",),
    first_sight_fallback=("code",),
    updatable=frozenset({"v"}),
    removal=Removal(),
    max_inactivate_share=0.1,
    on_unmatched="skip",
)


def test_first_sight_by_target_id_then_by_the_fallback_key_and_never_by_an_empty_one() -> None:
    targets = {
        "t1": Record("t1", {"code": "A", "v": 1}),
        "t2": Record("t2", {"code": "B", "v": 1}),
        "t3": Record("t3", {"code": "", "v": 1}),
    }
    normalized = [
        desired("s1", id="t1", code="zzz", v=2),  # by its target id
        desired("s2", id=None, code="B", v=1),  # no target id: by code
        desired("s3", id="gone", code="", v=1),  # neither matches; "" never matches t3's empty code
    ]
    actions = {
        a.source_id: a
        for a in plan(SPEC, PlanInput(mode="full", normalized=normalized, links={}, targets=targets)).actions
    }
    assert isinstance(actions["s1"], Link) and actions["s1"].target_id == "t1"
    assert actions["s1"].natural_key == {"id": "t1"}
    assert isinstance(actions["s2"], Link) and actions["s2"].target_id == "t2"
    assert actions["s2"].natural_key == {"code": "B"} and actions["s2"].changes == ()
    assert isinstance(actions["s3"], Skip)
    linked = PlanInput(
        mode="incremental",
        normalized=[desired("s1", id="t1", code="zzz", v=3)],
        links={"s1": LinkState("t1", "old")},
        targets=targets,
    )
    [update] = plan(SPEC, linked).actions
    assert isinstance(update, Update) and [c.field for c in update.changes] == ["v"]


def test_a_skip_on_a_rule_that_never_creates_is_still_a_skipped_record() -> None:
    text = RULE.replace('on-fail = "skip-create"', 'on-fail = "skip"', 1)
    assert isinstance(compiled(text).normalize(record(**{"properties.Import": "No"}), {}), Skipped)


def test_the_csv_parser_reports_each_bad_line() -> None:
    rows, problems = linking.parse("Source_ID, Target_ID\na,1\n\n# note\nb\na,2\nc,1\n,3\nd,4,5\ne,5\n")
    assert [(r.line, r.source_id, r.target_id) for r in rows] == [(2, "a", "1"), (10, "e", "5")]
    assert [(p.line, p.message) for p in problems] == [
        (5, "expected 2 values (source_id,target_id), got 1"),
        (6, "source a is already paired on line 2"),
        (7, "target 1 is already paired on line 2"),
        (8, "empty source_id"),
        (9, "expected 2 values (source_id,target_id), got 3"),
    ]
    assert linking.parse("")[1][0].message.startswith("empty file")
