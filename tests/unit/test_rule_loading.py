"""Loading rule files: every mistake is reported as ``file:line: message``, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.connectors.base import CollectionSchema
from reconciler.errors import RuleError
from reconciler.rules import schema
from reconciler.rules.compiling import compile_rule
from reconciler.rules.loading import (
    RuleFile,
    builtin_rules_dir,
    discover,
    load_rule_file,
    parse_duration,
)
from reconciler.rules.locating import Locator, dotted, split_key

PATH = "rules/demo/things.toml"

# Line numbers matter: the tests below point at them.
BASE = """\
[entity]
description = "things"
label = "{title}"

[source]
system = "src"
collection = "things"
filter = "active"

[target]
system = "dst"
collection = "items"

[fields.name]
from = "title"

[fields.kind]
value = "T"
update = false
"""


def load(text: str) -> RuleFile:
    return load_rule_file(PATH, text=text)


def error_of(text: str) -> str:
    with pytest.raises(RuleError) as info:
        load(text)
    return str(info.value)


def edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


def test_base_rule_loads() -> None:
    rule = load(BASE)
    assert (rule.integration, rule.entity, rule.name) == ("demo", "things", "demo/things")
    assert list(rule.spec.fields) == ["name", "kind"]
    assert rule.spec.fields["kind"] == schema.Field(value="T", update=False)
    assert rule.spec.removal == schema.Removal(action="ignore")
    assert rule.spec.schedule == schema.Schedule(incremental="5m", full="24h")
    assert rule.spec.guard.max_inactivate_share is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edit('from = "title"', 'from = "title'),
            "15: invalid TOML: Illegal character '\\n' (column 14)",
            id="toml-syntax",
        ),
        pytest.param(
            BASE + "\n[sourc]\nsystem = 'x'\n",
            "21: unknown key 'sourc' at top level",
            id="unknown-top-level-key",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\nnmae = "x"'),
            "16: unknown key 'nmae' in [fields.name]",
            id="unknown-field-key",
        ),
        pytest.param(
            BASE + '\n[[source.check]]\nexpr = "a"\nreason = "r"\n\n[[source.check]]\nexp = "b"\n',
            "26: unknown key 'exp' in [[source.check]]",
            id="unknown-key-in-array-of-tables",
        ),
        pytest.param(
            BASE + "\n[fields.capacity]\nfrom = 3\n",
            "22: fields.capacity.from: expected str, got int",
            id="wrong-type",
        ),
        pytest.param(
            edit('collection = "things"\n', ""),
            "5: missing key 'collection' in [source]",
            id="missing-key",
        ),
        pytest.param(
            edit("update = false", 'when-missing = "sometimes"'),
            "19: fields.kind.when-missing: invalid enum value 'sometimes'",
            id="bad-enum",
        ),
        pytest.param(
            BASE + "\n[guard]\nmax-inactivate-share = 1.5\n",
            "22: guard.max-inactivate-share: expected float <= 1.0",
            id="share-out-of-range",
        ),
        pytest.param(
            edit('filter = "active"', 'filter = "active and (x > 1))"'),
            "8: source.filter: unexpected ')' at column 19",
            id="filter-syntax",
        ),
        pytest.param(
            BASE
            + '\n[[source.check]]\nexpr = "a > 0"\nreason = "r"\n\n[[source.check]]\nexpr = "a >"\nreason = "r"\n',
            "26: source.check[1].expr: unexpected end of expression at column 4",
            id="second-check-syntax",
        ),
        pytest.param(
            edit('label = "{title}"', 'label = "{title"'),
            "3: entity.label: bad template: expected '}' before end of string",
            id="bad-template",
        ),
        pytest.param(
            edit('label = "{title}"', 'label = "{title!r}"'),
            "3: entity.label: bad template: only {field} placeholders are allowed (no {0}, {x!r} or {x:>5})",
            id="template-conversion",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\ntransform = "uper"'),
            "16: fields.name.transform: unknown transform 'uper'; known: bool_sn, float, int, int_str, "
            "ixc_coordinate, ixc_decimal, ixc_reading, lower, sn_bool, str, text, upper, yes_no",
            id="unknown-transform",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\nlookup = "project"'),
            "16: fields.name.lookup: unknown lookup 'project'; declared: none",
            id="unknown-lookup",
        ),
        pytest.param(
            BASE + '\n[match]\nfirst-sight = ["name", "nome"]\n',
            "22: match.first-sight: 'nome' is not a mapped field; mapped: name, kind",
            id="first-sight-unmapped",
        ),
        pytest.param(
            BASE + '\n[removal]\naction = "inactivate"\nvalue = "I"\n',
            '21: removal: action "inactivate" needs field',
            id="removal-without-field",
        ),
        pytest.param(
            BASE + '\n[removal]\naction = "delete"\nfield = "status"\n',
            '21: removal: field and value apply only to action "inactivate"',
            id="removal-field-without-inactivate",
        ),
        pytest.param(
            BASE + '\n[schedule]\nincremental = "5x"\n',
            "22: schedule.incremental: bad duration '5x' (use e.g. 90s, 5m, 1h30m, 1d)",
            id="bad-duration",
        ),
        pytest.param(
            BASE + '\n[schedule]\nfull = "0s"\n',
            "22: schedule.full: bad duration '0s' (use e.g. 90s, 5m, 1h30m, 1d)",
            id="zero-duration",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\nvalue = "x"'),
            "14: fields.name: give exactly one of from, value or expr (found from and value)",
            id="from-and-value",
        ),
        pytest.param(
            edit('from = "title"', "update = true"),
            "14: fields.name: give exactly one of from, value or expr",
            id="no-value-source",
        ),
        pytest.param(
            BASE + '\n[lookups.project]\nsystem = "dst"\ncollection = "projects"\nkey = "name"\n',
            "21: lookups.project: give either system, collection, key and value (a table lookup) "
            "or links (another entity's links, optionally with reverse)",
            id="incomplete-lookup",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\ndefault = "x"\ndefault-if = "fallback"'),
            "17: fields.name.default-if: unknown option 'fallback'; declared: none",
            id="default-if-unknown-option",
        ),
        pytest.param(
            BASE + '\n[options.fallback]\ndefault = "x"\n\n[fields.other]\nfrom = "t"\ndefault = "0"\n'
            'default-if = "fallback"\n',
            "27: fields.other.default-if: option 'fallback' is not a boolean",
            id="default-if-not-boolean",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\nwhen-missing = "default"'),
            '14: fields.name: default-if and when-missing = "default" need a default',
            id="default-missing",
        ),
        pytest.param(
            edit('from = "title"', 'from = "title"\nwhen-missing = "skip"\ndefault = "x"'),
            '17: fields.name.default: never used; set when-missing = "default" or default-if',
            id="default-unused",
        ),
        pytest.param(
            edit('description = "things"', 'description = "things"\nafter = ["things"]'),
            "3: entity.after: things cannot run after itself",
            id="after-itself",
        ),
        pytest.param(
            BASE.split("[fields.name]")[0] + "[fields]\n",
            "14: fields: no field is mapped; add a [fields.NAME] table",
            id="no-fields",
        ),
        pytest.param(
            BASE.split("[fields.name]")[0],
            "1: missing key 'fields' at top level",
            id="fields-missing",
        ),
        pytest.param(
            BASE + "\n[options.x]\ndescription = 'no default'\n",
            "21: missing key 'default' in [options.x]",
            id="option-without-default",
        ),
    ],
)
def test_load_errors(text: str, expected: str) -> None:
    assert error_of(text) == f"{PATH}:{expected}"


def test_error_carries_file_and_line() -> None:
    with pytest.raises(RuleError) as info:
        load(BASE + "\n[fields.capacity]\nfrom = 3\n")
    assert (info.value.file, info.value.line) == (PATH, 22)
    assert info.value.message == "fields.capacity.from: expected str, got int"


def test_unknown_source_field_in_expression_is_reported_at_compile() -> None:
    rule = load(edit('filter = "active"', 'filter = "active and nmae == 1"'))
    things = CollectionSchema(fields=frozenset({"title", "active", "name"}))
    items = CollectionSchema(fields=frozenset({"name", "kind"}))
    with pytest.raises(RuleError) as info:
        compile_rule(rule, source=things, target=items, lookup_schemas={}, options={})
    assert (
        str(info.value) == f"{PATH}:8: source.filter: unknown field 'nmae' at column 12; did you mean 'name'?"
    )


def test_reads_the_file_when_no_text_is_given(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "things.toml").write_text(BASE, encoding="utf-8")
    rule = load_rule_file(folder / "things.toml")
    assert rule.name == "demo/things"
    with pytest.raises(RuleError, match=r"missing.toml:1: cannot read rule file"):
        load_rule_file(folder / "missing.toml")


def test_discover_and_builtin_rules() -> None:
    found = discover(builtin_rules_dir())
    assert builtin_rules_dir() / "ozmap-ixc" / "boxes.toml" in found
    assert all(path.suffix == ".toml" for path in found)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("24h", 86400), ("1d", 86400), ("1d2h3m4s", 93784)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "1m1h", "0m", "-5m", "1.5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


LOCATOR_TEXT = """\
# comment = 1
top = 1
[a]
b = 2
"c.d" = 3
e.f = 4
inline = { x = 1, y = 2 }
list = [
  "[not a table]",
  { z = 1 },
]
text = \"\"\"
[not.a.table]
fake = 1
\"\"\"
after = 5

[[arr]]
k = 1
[[arr]]
k = 2
[arr.sub]
m = 3
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("top",), 2),
        (("a",), 3),
        (("a", "b"), 4),
        (("a", "c.d"), 5),
        (("a", "e"), 6),
        (("a", "e", "f"), 6),
        (("a", "inline", "y"), 7),
        (("a", "list"), 8),
        (("a", "list", 1, "z"), 8),
        (("a", "text"), 12),
        (("a", "after"), 16),
        (("not",), 1),
        (("arr",), 18),
        (("arr", 0, "k"), 19),
        (("arr", 1), 20),
        (("arr", 1, "k"), 21),
        (("arr", 1, "sub", "m"), 23),
        (("arr", 1, "nope"), 20),
        ((), 1),
    ],
)
def test_locator(path: tuple[str | int, ...], line: int) -> None:
    assert Locator(LOCATOR_TEXT).line(path) == line


def test_split_key_and_dotted() -> None:
    assert split_key('a."b.c".d') == ("a", "b.c", "d")
    assert split_key("a b") is None
    assert dotted(("source", "check", 1, "expr")) == "source.check[1].expr"
    assert dotted(("fields", "a b")) == 'fields."a b"'
