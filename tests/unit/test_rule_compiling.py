"""Compiling rules against schemas, and what ``normalize`` makes of source records (the real boxes rule first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import model
from reconciler.connectors.base import CollectionSchema
from reconciler.errors import ConfigError, RuleError
from reconciler.model import Desired, Filtered, Quarantined, Record, Skipped, Value
from reconciler.rules import schema
from reconciler.rules.compiling import CompiledRule, compile_rule
from reconciler.rules.integration import load_integration
from reconciler.rules.loading import builtin_rules_dir, load_rule_file
from reconciler.rules.lookups import AMBIGUOUS, Ambiguous, LookupSpec, build_table, links_table

# --- the real ozmap-ixc/boxes rule ------------------------------------------------------------------------------

BOXES = CollectionSchema(
    fields=frozenset(
        [
            "name",
            "project_id",
            "project_name",
            "implanted",
            "draft",
            "lat",
            "lng",
            "observation",
            "address",
            "service_splitters",
            "service_ports",
            "olt_ip",
            "olt_name",
        ]
    ),
    incremental=True,
)
CAIXA_FIELDS = frozenset(
    [
        "descricao",
        "tipo",
        "id_projeto",
        "id_transmissor",
        "id_interface",
        "id_tecnologia",
        "capacidade",
        "latitude",
        "longitude",
        "codigo_estilo_caixa",
        "obs_caixa_ftth",
        "status",
        "idx",
        "cep",
        "endereco",
        "numero",
        "bairro",
        "id_cidade",
        "ultima_atualizacao",
    ]
)
CAIXA = CollectionSchema(fields=CAIXA_FIELDS | {"id"}, writable=CAIXA_FIELDS)
PROJETO = CollectionSchema(fields=frozenset({"id", "nome", "ativo"}))
RADIO = CollectionSchema(fields=frozenset({"id", "descricao", "ip", "ativo"}))
CATALOGS = {
    "ozmap": {"boxes": BOXES},
    "ixc": {"rad_caixa_ftth": CAIXA, "df_projeto": PROJETO, "radpop_radio": RADIO},
}
BOXES_PATH = builtin_rules_dir() / "ozmap-ixc" / "boxes.toml"


def compile_boxes(**options: Value) -> CompiledRule:
    return compile_rule(
        load_rule_file(BOXES_PATH),
        source=BOXES,
        target=CAIXA,
        lookup_schemas={"project": PROJETO, "transmitter": RADIO},
        options=options,
    )


def boxes_tables(rule: CompiledRule) -> dict[str, Any]:
    projects = [
        Record("12", {"nome": "Chicago"}),
        Record("13", {"nome": "Dup"}),
        Record("14", {"nome": "Dup"}),
        Record("15", {"nome": ""}),
    ]
    radios = [Record("3", {"ip": "10.0.0.1", "descricao": "OLT 1"})]
    return {
        "project": build_table(rule.lookups["project"], projects),
        "transmitter": build_table(rule.lookups["transmitter"], radios),
    }


def box(**changes: Value) -> Record:
    fields: dict[str, Value] = {
        "name": "CTO-0001",
        "project_id": "p1",
        "project_name": "Chicago",
        "implanted": True,
        "draft": False,
        "lat": -27.5969,
        "lng": -48.5495,
        "observation": "  near the square ",
        "address": "Rua A, 1",
        "service_splitters": 1,
        "service_ports": 16,
        "olt_ip": "10.0.0.1",
        "olt_name": "OLT 1",
    }
    fields.update(changes)
    return Record("box-1", fields, updated_at="2024-05-01T10:00:00Z")


EXPECTED_FIELDS: dict[str, Value] = {
    "descricao": "CTO-0001",
    "id_projeto": "12",
    "id_transmissor": "3",
    "latitude": "-27.5969",
    "longitude": "-48.5495",
    "obs_caixa_ftth": "near the square",
    "capacidade": "16",
    "status": "A",
    "tipo": "P",
    "codigo_estilo_caixa": "7eTTWpDR",
}


def test_boxes_compiles_with_planner_attributes() -> None:
    rule = compile_boxes()
    assert (rule.integration, rule.entity, rule.name, rule.path) == (
        "ozmap-ixc",
        "boxes",
        "ozmap-ixc/boxes",
        BOXES_PATH,
    )
    assert rule.description == "OZmap service boxes become IXC FTTH boxes (rad_caixa_ftth)"
    assert (rule.source_system, rule.source_collection, rule.incremental) == ("ozmap", "boxes", True)
    assert (rule.target_system, rule.target_collection) == ("ixc", "rad_caixa_ftth")
    assert rule.after == ()
    assert rule.first_sight == ("descricao", "id_projeto")
    assert rule.fields == tuple(EXPECTED_FIELDS)
    assert rule.create_only == {"tipo", "codigo_estilo_caixa"}
    assert rule.updatable == set(EXPECTED_FIELDS) - {"tipo", "codigo_estilo_caixa"}
    assert rule.lookups == {
        "project": LookupSpec(
            name="project", kind="table", system="ixc", collection="df_projeto", key="nome", value="id"
        ),
        "transmitter": LookupSpec(
            name="transmitter", kind="table", system="ixc", collection="radpop_radio", key="ip", value="id"
        ),
    }
    assert rule.removal == schema.Removal(action="inactivate", field="status", value="I")
    assert (rule.incremental_seconds, rule.full_seconds) == (300, 86400)
    assert rule.max_inactivate_share == 0.10
    assert rule.options == {"create_box_without_olt": False}


def test_boxes_desired() -> None:
    rule = compile_boxes()
    result = rule.normalize(box(), boxes_tables(rule))
    assert result == Desired(
        source_id="box-1",
        fields=EXPECTED_FIELDS,
        natural_key={"descricao": "CTO-0001", "id_projeto": "12"},
        content_hash=model.content_hash(EXPECTED_FIELDS),
        create_only=frozenset({"tipo", "codigo_estilo_caixa"}),
        label="CTO-0001 (Chicago)",
        updated_at="2024-05-01T10:00:00Z",
    )
    assert isinstance(result, Desired)
    assert list(result.fields) == list(EXPECTED_FIELDS)


@pytest.mark.parametrize(
    ("changes", "options", "expected"),
    [
        pytest.param({"implanted": False}, {}, Filtered("box-1", "2024-05-01T10:00:00Z"), id="in-project"),
        pytest.param(
            {"service_splitters": 0}, {}, Filtered("box-1", "2024-05-01T10:00:00Z"), id="no-splitter"
        ),
        pytest.param(
            {"service_splitters": None}, {}, Filtered("box-1", "2024-05-01T10:00:00Z"), id="null-splitters"
        ),
        pytest.param(
            {"olt_ip": "10.0.0.7"},
            {},
            Skipped(
                "box-1",
                "OLT 10.0.0.7 not found in IXC (option create_box_without_olt is off)",
                "CTO-0001 (Chicago)",
                "2024-05-01T10:00:00Z",
            ),
            id="unknown-olt",
        ),
        pytest.param(
            {"olt_ip": None},
            {},
            Skipped(
                "box-1",
                "OLT null not found in IXC (option create_box_without_olt is off)",
                "CTO-0001 (Chicago)",
                "2024-05-01T10:00:00Z",
            ),
            id="no-olt",
        ),
        pytest.param(
            {"lat": None},
            {},
            Quarantined(
                "box-1",
                "latitude null is missing or out of range",
                "CTO-0001 (Chicago)",
                "2024-05-01T10:00:00Z",
            ),
            id="no-latitude",
        ),
        pytest.param(
            {"lng": 181.0},
            {},
            Quarantined(
                "box-1",
                "longitude 181.0 is missing or out of range",
                "CTO-0001 (Chicago)",
                "2024-05-01T10:00:00Z",
            ),
            id="longitude-out-of-range",
        ),
        pytest.param(
            {"lat": "north"},
            {},
            Quarantined(
                "box-1",
                "latitude north is missing or out of range",
                "CTO-0001 (Chicago)",
                "2024-05-01T10:00:00Z",
            ),
            id="latitude-text",
        ),
        pytest.param(
            {"service_ports": "abc"},
            {},
            Quarantined(
                "box-1", "field capacidade: not a number: 'abc'", "CTO-0001 (Chicago)", "2024-05-01T10:00:00Z"
            ),
            id="bad-capacity",
        ),
        pytest.param(
            {"project_name": "Nowhere"},
            {},
            Skipped(
                "box-1", "project 'Nowhere' not found in IXC", "CTO-0001 (Nowhere)", "2024-05-01T10:00:00Z"
            ),
            id="unknown-project",
        ),
        pytest.param(
            {"project_name": "Dup"},
            {},
            Skipped(
                "box-1",
                "lookup project: 2 IXC records share the key 'Dup'",
                "CTO-0001 (Dup)",
                "2024-05-01T10:00:00Z",
            ),
            id="ambiguous-project",
        ),
        pytest.param(
            {"project_name": ""},
            {},
            Skipped("box-1", "project '' not found in IXC", "CTO-0001 ()", "2024-05-01T10:00:00Z"),
            id="empty-project-name",
        ),
    ],
)
def test_boxes_outcomes(
    changes: dict[str, Value], options: dict[str, Value], expected: model.Normalized
) -> None:
    rule = compile_boxes(**options)
    assert rule.normalize(box(**changes), boxes_tables(rule)) == expected


def test_boxes_without_olt_when_the_option_is_on() -> None:
    rule = compile_boxes(create_box_without_olt=True)
    assert rule.options == {"create_box_without_olt": True}
    result = rule.normalize(box(olt_ip="10.0.0.7"), boxes_tables(rule))
    assert isinstance(result, Desired)
    assert result.fields == {**EXPECTED_FIELDS, "id_transmissor": "0"}
    known = rule.normalize(box(), boxes_tables(rule))
    assert isinstance(known, Desired)
    assert known.fields["id_transmissor"] == "3"


def test_boxes_null_observation_becomes_empty_text() -> None:
    rule = compile_boxes()
    result = rule.normalize(box(observation=None), boxes_tables(rule))
    assert isinstance(result, Desired)
    assert result.fields["obs_caixa_ftth"] == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"create_box_with_olt": True},
            "unknown option 'create_box_with_olt' for ozmap-ixc/boxes; known: create_box_without_olt",
        ),
        (
            {"create_box_without_olt": "yes"},
            "option 'create_box_without_olt' for ozmap-ixc/boxes must be bool, got str 'yes'",
        ),
        (
            {"create_box_without_olt": 1},
            "option 'create_box_without_olt' for ozmap-ixc/boxes must be bool, got int 1",
        ),
    ],
)
def test_option_errors(options: dict[str, Value], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_boxes(**options)
    assert str(info.value) == message


def test_boxes_integration_loads_from_the_builtin_folder() -> None:
    from reconciler.connectors.ixc.connector import IxcConnector
    from reconciler.connectors.ozmap.connector import OzmapConnector

    rules = load_integration(
        builtin_rules_dir(),
        "ozmap-ixc",
        catalogs={"ozmap": OzmapConnector.CATALOG, "ixc": IxcConnector.CATALOG},
        options={"create_box_without_olt": True},
        entities=None,
    )
    assert "boxes" in [rule.entity for rule in rules]
    boxes = next(rule for rule in rules if rule.entity == "boxes")
    assert boxes.options == {"create_box_without_olt": True}


# --- compile-time checks on small rules -------------------------------------------------------------------------

PATH = "rules/demo/things.toml"
THINGS = CollectionSchema(fields=frozenset({"title", "active", "size", "meta", "group"}), incremental=True)
ITEMS_FIELDS = frozenset({"name", "kind", "size", "status", "group_id"})
ITEMS = CollectionSchema(fields=ITEMS_FIELDS | {"id", "created"}, writable=ITEMS_FIELDS)
GROUPS = CollectionSchema(fields=frozenset({"id", "name"}))

SMALL = """\
[entity]
label = "{title}"

[source]
system = "src"
collection = "things"
filter = "active"

[target]
system = "dst"
collection = "items"

[lookups.group]
system = "dst"
collection = "groups"
key = "name"
value = "id"

[options.strict]
default = false

[options.limit]
default = 10

[fields.name]
from = "title"
"""


def compile_small(extra: str = "", *, options: dict[str, Value] | None = None) -> CompiledRule:
    return compile_rule(
        load_rule_file(PATH, text=SMALL + extra),
        source=THINGS,
        target=ITEMS,
        lookup_schemas={"group": GROUPS, "other": GROUPS},
        options=options or {},
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            '\n[fields.colour]\nfrom = "title"\n',
            "28: fields.colour: 'colour' is not a writable field of dst items",
            id="not-writable",
        ),
        pytest.param(
            '\n[fields.kind]\nfrom = "titel"\n',
            "29: fields.kind.from: unknown field 'titel' in src things; did you mean 'title'?",
            id="unknown-from",
        ),
        pytest.param(
            '\n[fields.kind]\nexpr = "upper(titel)"\n',
            "29: fields.kind.expr: unknown field 'titel' at column 7; did you mean 'title'?",
            id="unknown-field-in-expr",
        ),
        pytest.param(
            "\n[fields.kind]\nexpr = \"option('loose')\"\n",
            "29: fields.kind.expr: unknown option 'loose' at column 8; known: limit, strict",
            id="unknown-option-in-expr",
        ),
        pytest.param(
            '\n[fields.kind]\nfrom = "title"\nreason = "{titel} is odd"\nwhen-missing = "skip"\n',
            "30: fields.kind.reason: unknown field 'titel'; did you mean 'title'?",
            id="unknown-field-in-reason",
        ),
        pytest.param(
            '\n[fields.size]\nvalue = "big"\ntransform = "int"\n',
            "29: fields.size.value: not a number: 'big'",
            id="constant-fails-its-transform",
        ),
        pytest.param(
            '\n[lookups.other]\nsystem = "dst"\ncollection = "groups"\nkey = "nome"\nvalue = "id"\n',
            "31: lookups.other.key: unknown field 'nome' in dst groups; did you mean 'name'?",
            id="unknown-lookup-key",
        ),
        pytest.param(
            '\n[removal]\naction = "inactivate"\nfield = "stat"\nvalue = "I"\n',
            "30: removal.field: 'stat' is not a writable field of dst items; did you mean 'status'?",
            id="unknown-removal-field",
        ),
        pytest.param(
            '\n[[source.check]]\nexpr = "size > 0"\nreason = "{sise} is small"\n',
            "30: source.check[0].reason: unknown field 'sise'; did you mean 'size'?",
            id="unknown-field-in-check-reason",
        ),
    ],
)
def test_compile_errors(extra: str, expected: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_small(extra)
    assert str(info.value) == f"{PATH}:{expected}"


def test_lookup_without_a_schema() -> None:
    rule = load_rule_file(PATH, text=SMALL)
    with pytest.raises(RuleError) as info:
        compile_rule(rule, source=THINGS, target=ITEMS, lookup_schemas={}, options={})
    assert str(info.value) == f"{PATH}:15: lookups.group: no schema for dst groups"


def test_incremental_source_must_support_it() -> None:
    rule = load_rule_file(
        PATH, text=SMALL.replace('collection = "things"', 'collection = "things"\nincremental = true')
    )
    with pytest.raises(RuleError) as info:
        compile_rule(
            rule, source=CollectionSchema(fields=THINGS.fields), target=ITEMS, lookup_schemas={}, options={}
        )
    assert str(info.value) == f"{PATH}:7: source.incremental: src things cannot be read incrementally"


def test_option_int_accepted_for_float_default() -> None:
    rule = compile_small("\n[options.ratio]\ndefault = 0.5\n", options={"ratio": 1, "limit": 3})
    assert rule.options == {"strict": False, "limit": 3, "ratio": 1.0}
    assert type(rule.options["ratio"]) is float


MAPPED = """
[fields.kind]
expr = "upper(title) + '-' + id"

[fields.size]
from = "meta.size"
transform = "int"
when-missing = "default"
default = 0

[fields.group_id]
from = "group"
lookup = "group"

[fields.status]
value = true
transform = "bool_sn"
"""


def test_expressions_nested_fields_ids_defaults_and_default_reasons() -> None:
    rule = compile_small(MAPPED)
    tables: dict[str, Any] = {"group": {"core": "7"}}
    record = Record("t1", {"title": "box", "active": True, "meta": {"size": "4"}, "group": "core"})
    result = rule.normalize(record, tables)
    assert isinstance(result, Desired)
    assert result.fields == {"name": "box", "kind": "BOX-t1", "size": 4, "group_id": "7", "status": "S"}
    result = rule.normalize(Record("t2", {"title": "x", "active": True, "group": "edge"}), tables)
    assert result == Skipped("t2", "field group_id: lookup group has no 'edge'", "x")
    result = rule.normalize(Record("t3", {"title": "x", "active": True}), tables)
    assert result == Skipped("t3", "field group_id: no value to look up in group", "x")
    result = rule.normalize(Record("t4", {"title": None, "active": True, "group": "core"}), tables)
    assert isinstance(result, Desired)
    assert result.fields["kind"] is None  # null propagates through upper() and +
    result = rule.normalize(Record("t5", {"title": 5, "active": True, "group": "core"}), tables)
    assert result == Quarantined("t5", "field kind: upper() needs text, got 5", "5")


def test_when_missing_policies() -> None:
    rule = compile_small(
        '\n[fields.kind]\nfrom = "group"\nwhen-missing = "quarantine"\nreason = "{field} needs a group ({value})"\n'
        '\n[fields.size]\nfrom = "size"\nwhen-missing = "skip"\n'
    )
    assert rule.normalize(Record("a", {"active": True, "title": "t", "size": 1}), {}) == Quarantined(
        "a", "kind needs a group (null)", "t"
    )
    assert rule.normalize(Record("b", {"active": True, "title": "t", "group": "g"}), {}) == Skipped(
        "b", "field size: value is missing", "t"
    )
    desired = rule.normalize(Record("c", {"active": True, "group": "g", "size": 2}), {})
    assert isinstance(desired, Desired)
    assert desired.fields == {"name": None, "kind": "g", "size": 2}
    assert desired.label == "null"


def test_filter_errors_quarantine_and_target_filter() -> None:
    rule = compile_rule(
        load_rule_file(
            PATH,
            text=SMALL.replace('filter = "active"', 'filter = "size / 2 > 1"').replace(
                'collection = "items"', "collection = \"items\"\nfilter = \"status == 'A' and id != '0'\""
            ),
        ),
        source=THINGS,
        target=CollectionSchema(fields=ITEMS_FIELDS, writable=ITEMS_FIELDS),
        lookup_schemas={"group": GROUPS},
        options={},
    )
    assert rule.normalize(Record("a", {"size": "x", "title": "t"}), {}) == Quarantined(
        "a", "source.filter: cannot apply '/' to 'x' and 2", "t"
    )
    assert rule.normalize(Record("b", {"size": 1}), {}) == Filtered("b")
    assert rule.target_matches(Record("5", {"status": "A"}))
    assert not rule.target_matches(Record("0", {"status": "A"}))
    assert not rule.target_matches(Record("5", {"status": "I"}))
    assert compile_small().target_matches(Record("x", {}))


# --- lookup tables ----------------------------------------------------------------------------------------------


def test_build_table() -> None:
    spec = LookupSpec(name="p", kind="table", system="ixc", collection="df_projeto", key="nome", value="id")
    records = [
        Record("1", {"nome": "A"}),
        Record("2", {"nome": "B"}),
        Record("3", {"nome": "B"}),
        Record("4", {"nome": "B"}),
        Record("5", {"nome": ""}),
        Record("6", {"nome": None}),
        Record("7", {}),
        Record("8", {"nome": "a"}),
        Record("1", {"nome": "A"}),
        Record("9", {"nome": 10.0}),
    ]
    table = build_table(spec, records)
    assert table == {"A": "1", "B": Ambiguous(3), "a": "8", "10": "9"}
    assert type(table["B"]) is Ambiguous
    assert table["B"].records == 3


def test_build_table_value_field() -> None:
    spec = LookupSpec(name="r", kind="table", system="ixc", collection="radpop_radio", key="id", value="ip")
    assert build_table(spec, [Record("3", {"ip": "10.0.0.1"})]) == {"3": "10.0.0.1"}


def test_links_table() -> None:
    pairs = [("s1", "t1"), ("s2", "t2"), ("s3", "t2"), ("", "t9")]
    assert links_table(pairs, reverse=False) == {"s1": "t1", "s2": "t2", "s3": "t2"}
    assert links_table(pairs, reverse=True) == {"t1": "s1", "t2": Ambiguous(2), "t9": ""}
    assert Ambiguous(2) == AMBIGUOUS


# --- whole integrations -----------------------------------------------------------------------------------------

INTEGRATION_CATALOGS = {"src": {"things": THINGS}, "dst": {"items": ITEMS, "groups": GROUPS}}


def write_rules(tmp_path: Path, rules: dict[str, str]) -> Path:
    folder = tmp_path / "rules" / "demo"
    folder.mkdir(parents=True)
    for entity, text in rules.items():
        (folder / f"{entity}.toml").write_text(text, encoding="utf-8")
    return tmp_path / "rules"


def rule_text(after: list[str] | None = None, *, links: str | None = None, extra: str = "") -> str:
    header = f"[entity]\nafter = {after!r}\n".replace("'", '"') if after is not None else ""
    lookup = f'\n[lookups.parent]\nlinks = "{links}"\n' if links else ""
    return (
        header
        + '[source]\nsystem = "src"\ncollection = "things"\n\n[target]\nsystem = "dst"\ncollection = "items"\n'
        + lookup
        + '\n[fields.name]\nfrom = "title"\n'
        + extra
    )


def test_integration_orders_by_dependency_and_filters(tmp_path: Path) -> None:
    folder = write_rules(
        tmp_path,
        {
            "a-last": rule_text(["b-middle"]),
            "b-middle": rule_text(links="c-first"),
            "c-first": rule_text(extra="\n[options.flag]\ndefault = false\n"),
            "d-off": rule_text().replace("[source]", "[entity]\nenabled = false\n\n[source]"),
        },
    )
    rules = load_integration(
        folder, "demo", catalogs=INTEGRATION_CATALOGS, options={"flag": True}, entities=None
    )
    assert [r.entity for r in rules] == ["c-first", "b-middle", "a-last"]
    assert [r.options for r in rules] == [{"flag": True}, {}, {}]
    assert rules[1].lookups["parent"] == LookupSpec(name="parent", kind="links", links_entity="c-first")
    chosen = load_integration(
        folder, "demo", catalogs=INTEGRATION_CATALOGS, options={}, entities=["d-off", "a-last"]
    )
    assert [r.entity for r in chosen] == ["a-last", "d-off"]


def test_integration_cycle(tmp_path: Path) -> None:
    folder = write_rules(tmp_path, {"a": rule_text(["b"]), "b": rule_text(["a"])})
    with pytest.raises(RuleError) as info:
        load_integration(folder, "demo", catalogs=INTEGRATION_CATALOGS, options={}, entities=None)
    assert str(info.value) == f"{folder / 'demo' / 'a.toml'}:2: entity.after: dependency cycle: a → b → a"


def test_integration_unknown_dependency(tmp_path: Path) -> None:
    folder = write_rules(tmp_path, {"a": rule_text(links="zzz")})
    with pytest.raises(RuleError) as info:
        load_integration(folder, "demo", catalogs=INTEGRATION_CATALOGS, options={}, entities=None)
    assert (
        str(info.value)
        == f"{folder / 'demo' / 'a.toml'}:10: lookups.parent.links: unknown entity 'zzz'; known: a"
    )


@pytest.mark.parametrize(
    ("catalogs", "expected"),
    [
        ({"dst": INTEGRATION_CATALOGS["dst"]}, "2: source.system: unknown system 'src'; known: dst"),
        (
            {**INTEGRATION_CATALOGS, "dst": {"groups": GROUPS}},
            "7: target.collection: dst has no collection 'items'; known: groups",
        ),
    ],
)
def test_integration_unknown_system_or_collection(
    tmp_path: Path, catalogs: dict[str, dict[str, CollectionSchema]], expected: str
) -> None:
    folder = write_rules(tmp_path, {"a": rule_text()})
    with pytest.raises(RuleError) as info:
        load_integration(folder, "demo", catalogs=catalogs, options={}, entities=None)
    assert str(info.value) == f"{folder / 'demo' / 'a.toml'}:{expected}"


@pytest.mark.parametrize(
    ("integration", "options", "entities", "message"),
    [
        ("demo", {"nope": 1}, None, "unknown option 'nope' for integration demo; known: none"),
        ("demo", {}, ["b"], "unknown entity 'b' for integration demo; known: a"),
    ],
)
def test_integration_config_errors(
    tmp_path: Path, integration: str, options: dict[str, Value], entities: list[str] | None, message: str
) -> None:
    folder = write_rules(tmp_path, {"a": rule_text()})
    with pytest.raises(ConfigError) as info:
        load_integration(
            folder, integration, catalogs=INTEGRATION_CATALOGS, options=options, entities=entities
        )
    assert str(info.value) == message


def test_integration_without_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no rule files for integration 'ghost'"):
        load_integration(tmp_path, "ghost", catalogs={}, options={}, entities=None)


def test_source_reads_are_the_fields_any_part_of_the_rule_reads() -> None:
    assert compile_small().source_reads == ("active", "title")  # filter, label and the one field
    rule = compile_small(
        "\n[source.enums]\nsize = [1, 2]\n"
        '\n[[source.check]]\nexpr = "meta.colour != null"\nreason = "{group} has no colour"\n'
    )
    assert rule.source_reads == ("active", "group", "meta", "size", "title")
    assert rule.target_filter_reads == frozenset()  # no [target] filter
