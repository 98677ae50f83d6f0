"""``[source] enums``: values outside a field's list are quarantined with their reason before the filter runs,
unless the filter leaves the record out whatever the value; bad declarations are ``file:line`` errors (BUG-5)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.connectors.base import CollectionSchema
from reconciler.connectors.ixc.connector import IxcConnector
from reconciler.connectors.ozmap.connector import OzmapConnector
from reconciler.errors import RuleError
from reconciler.model import Desired, Filtered, Quarantined, Record
from reconciler.rules.compiling import CompiledRule, compile_rule
from reconciler.rules.integration import load_integration
from reconciler.rules.loading import builtin_rules_dir, load_rule_file

PATH = "rules/demo/logins.toml"
LOGINS = CollectionSchema(
    fields=frozenset({"login", "ativo", "tipo", "contract", "level", "flag", "extra"}), incremental=False
)
CLIENTS = CollectionSchema(fields=frozenset({"id", "code"}), writable=frozenset({"code"}))

# Line numbers matter: the error tests point at them.
RULE = """\
[entity]
label = "{login}"

[source]
system = "src"
collection = "logins"
filter = "tipo == 'F' and ativo == 'S'"

[source.enums]
ativo = ["S", "N"]
tipo = ["F", "58", "L"]

[target]
system = "dst"
collection = "clients"

[fields.code]
from = "login"
"""


def compile_text(text: str) -> CompiledRule:
    return compile_rule(
        load_rule_file(PATH, text=text), source=LOGINS, target=CLIENTS, lookup_schemas={}, options={}
    )


def normalize(rule: CompiledRule, **fields: Any) -> Desired | Quarantined | Filtered:
    result = rule.normalize(Record(id="7", fields={"login": "ana", **fields}, updated_at="u"), {})
    assert isinstance(result, Desired | Quarantined | Filtered)
    return result


def error_of(text: str) -> str:
    with pytest.raises(RuleError) as info:
        compile_text(text)
    return str(info.value)


def test_listed_values_go_through_the_filter_as_before() -> None:
    rule = compile_text(RULE)
    assert isinstance(normalize(rule, ativo="S", tipo="F"), Desired)
    assert normalize(rule, ativo="N", tipo="F") == Filtered("7", "u")
    assert normalize(rule, ativo="S", tipo="58") == Filtered("7", "u")


def test_a_value_outside_the_list_is_quarantined_with_the_field_the_value_and_the_list() -> None:
    rule = compile_text(RULE)
    assert normalize(rule, ativo="X", tipo="F") == Quarantined(
        "7", 'ativo "X" is not one of S, N', "ana", "u"
    )
    assert normalize(rule, ativo=None, tipo="F") == Quarantined(
        "7", "ativo has no value, not one of S, N", "ana", "u"
    )
    assert normalize(rule, tipo="F").reason == "ativo has no value, not one of S, N"  # type: ignore[union-attr]
    both = normalize(rule, ativo="", tipo="W")
    assert isinstance(both, Quarantined)
    assert both.reason == 'ativo "" is not one of S, N; tipo "W" is not one of F, 58, L'


def test_a_record_the_filter_leaves_out_whatever_the_value_is_only_filtered() -> None:
    rule = compile_text(RULE)
    # a radio login with an odd ativo: no listed ativo would make it pass a fiber-only filter
    assert normalize(rule, ativo="X", tipo="58") == Filtered("7", "u")
    # a fiber login with an odd ativo: it passes with ativo "S", so the rule reports it
    assert isinstance(normalize(rule, ativo="X", tipo="F"), Quarantined)
    # an odd tipo on an active login: it would pass as "F"
    assert isinstance(normalize(rule, ativo="S", tipo="W"), Quarantined)


def test_without_a_filter_every_odd_value_is_quarantined() -> None:
    rule = compile_text(RULE.replace("filter = \"tipo == 'F' and ativo == 'S'\"\n", ""))
    assert isinstance(normalize(rule, ativo="X", tipo="58"), Quarantined)
    assert isinstance(normalize(rule, ativo="N", tipo="58"), Desired)


def test_values_compare_exactly_numbers_by_value_and_booleans_are_not_numbers() -> None:
    text = RULE.replace('tipo = ["F", "58", "L"]', 'level = [1, 2.5]\nflag = [true]\nextra = ["", "a, b"]')
    rule = compile_text(text)
    good = {"ativo": "S", "tipo": "F", "flag": True, "extra": ""}
    assert isinstance(normalize(rule, **good, level=1), Desired)
    assert isinstance(normalize(rule, **good, level=1.0), Desired)
    assert isinstance(normalize(rule, **{**good, "extra": "a, b"}, level=2.5), Desired)
    assert normalize(rule, **good, level="1").reason == 'level "1" is not one of 1, 2.5'  # type: ignore[union-attr]
    assert normalize(rule, **good, level=True).reason == "level true is not one of 1, 2.5"  # type: ignore[union-attr]
    assert normalize(rule, **{**good, "flag": 1}, level=2).reason == (  # type: ignore[union-attr]
        "level 2 is not one of 1, 2.5; flag 1 is not one of true"
    )
    listed = normalize(rule, **{**good, "extra": ["a"]}, level=2.5)
    assert isinstance(listed, Quarantined) and listed.reason == 'extra ["a"] is not one of "", "a, b"'


def test_the_inline_table_form_is_the_same() -> None:
    text = RULE.replace('[source.enums]\nativo = ["S", "N"]\ntipo = ["F", "58", "L"]\n', "").replace(
        "filter =", 'enums = { ativo = ["S", "N"], tipo = ["F", "58", "L"] }\nfilter ='
    )
    rule = compile_text(text)
    assert normalize(rule, ativo="X", tipo="F") == Quarantined(
        "7", 'ativo "X" is not one of S, N', "ana", "u"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            'ativo = ["S", "N"]',
            'ativo = "S"',
            "10: source.enums.ativo: expected array, got str",
            id="not-a-list",
        ),
        pytest.param(
            'ativo = ["S", "N"]', "ativo = []", "10: source.enums.ativo: list at least one value", id="empty"
        ),
        pytest.param(
            'ativo = ["S", "N"]',
            'ativo = ["S", "N", "S"]',
            "10: source.enums.ativo: 'S' is listed twice",
            id="twice",
        ),
        pytest.param(
            'ativo = ["S", "N"]',
            'ativo = ["S", ["N"]]',
            "10: source.enums.ativo[1]: expected bool | int | float | str, got array",
            id="nested-list",
        ),
        pytest.param(
            'tipo = ["F", "58", "L"]',
            'tipoo = ["F", "58", "L"]',
            "11: source.enums.tipoo: unknown field 'tipoo' in src logins; did you mean 'tipo'?",
            id="unknown-field",
        ),
        pytest.param(
            "[source.enums]", "[source.enum]", "9: unknown key 'enum' in [source]", id="misspelt-key"
        ),
    ],
)
def test_a_bad_declaration_is_a_file_line_error(old: str, new: str, expected: str) -> None:
    assert old in RULE
    assert error_of(RULE.replace(old, new, 1)) == f"{PATH}:{expected}"


def test_a_bad_inline_declaration_points_at_its_line() -> None:
    text = RULE.replace('[source.enums]\nativo = ["S", "N"]\ntipo = ["F", "58", "L"]\n', "").replace(
        "filter =", 'enums = { ativo = "S" }\nfilter ='
    )
    assert error_of(text) == f"{PATH}:7: source.enums.ativo: expected array, got str"


# --- the ozmap-ixc rules --------------------------------------------------------------------------------------------


def test_the_ozmap_ixc_login_rules_report_an_unknown_ativo_only_where_it_could_matter() -> None:
    rules = {
        rule.entity: rule
        for rule in load_integration(
            builtin_rules_dir(),
            "ozmap-ixc",
            catalogs={"ozmap": OzmapConnector.CATALOG, "ixc": IxcConnector.CATALOG},
            options={},
            entities=None,
        )
        if (rule.source_system, rule.source_collection) == ("ixc", "logins")
    }
    login = {
        "login": "enum.odd", "ativo": "X", "tipo_conexao_mapa": "F", "contract_status": "A", "online": "S",
        "client_name": "Odd", "id_caixa_ftth": "5", "ftth_porta": "6", "latitude": "", "longitude": "",
        "signal": None,
    }  # fmt: skip
    record = Record(id="30", fields=login)
    tables: dict[str, Any] = {"ozmap_boxes": {}, "ozmap_splitters": {}}
    verdicts = {name: type(rule.normalize(record, tables)).__name__ for name, rule in rules.items()}
    assert {name for name, kind in verdicts.items() if kind == "Quarantined"} == {
        "client-creation",
        "client-status",
        "client-power",
    }
    # with an active contract it is no withdrawal or cancellation, whatever ativo says
    assert verdicts["withdrawal"] == verdicts["cancellation"] == "Filtered"
    reason = rules["client-creation"].normalize(record, tables)
    assert isinstance(reason, Quarantined) and reason.reason == 'ativo "X" is not one of S, N'
    radio = Record(id="31", fields={**login, "tipo_conexao_mapa": "58"})
    assert all(not isinstance(rule.normalize(radio, tables), Quarantined) for rule in rules.values())
