"""``CompiledRule.source_reads`` names everything a rule reads of a source record.

A full cycle fingerprints only these fields (``reconciler.agreement``): a field the rule reads but that is missing
from the list would let an edit to it go unseen while the pair stays settled. So, for every built-in rule, records
made of the source collection's fields (with values the rule file itself mentions, so filters and checks pass
often enough) must normalise to the same outcome whatever their other fields hold.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections import Counter

import pytest

from reconciler.connectors import registry
from reconciler.model import Record, Value
from reconciler.rules.compiling import CompiledRule
from reconciler.rules.integration import load_integration
from reconciler.rules.loading import builtin_rules_dir

INTEGRATIONS = sorted(path.name for path in builtin_rules_dir().iterdir() if path.is_dir())
BASIC: list[Value] = [
    None,
    "",
    "S",
    "N",
    "A",
    "I",
    "F",
    "1",
    "0",
    "2",
    0,
    1,
    3,
    -27.59,
    -48.5,
    8,
    16,
    True,
    False,
]
RECORDS = 3000


def rules_of(integration: str) -> list[CompiledRule]:
    systems = {
        line.split('"')[1]
        for path in (builtin_rules_dir() / integration).glob("*.toml")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("system = ")
    }
    catalogs = {name: registry.connector_class(name).CATALOG for name in systems}
    return load_integration(builtin_rules_dir(), integration, catalogs=catalogs, options={}, entities=None)


def pool_of(rule: CompiledRule) -> list[Value]:
    """Values likely to take a record past the rule's filter and checks: the ones its file spells out."""
    text = rule.path.read_text(encoding="utf-8")
    quoted = re.findall(r"'([^']*)'|\"([^\"]*)\"", text)
    return BASIC + sorted({a or b for a, b in quoted if len(a or b) < 40})


def enums_of(rule: CompiledRule) -> dict[str, list[Value]]:
    """The rule's ``[source.enums]``: a record is quarantined unless these fields hold one of the values."""
    spec = tomllib.loads(rule.path.read_text(encoding="utf-8"))
    enums: dict[str, list[Value]] = spec.get("source", {}).get("enums", {})
    return enums


def draw(rng: random.Random, name: str, pool: list[Value], enums: dict[str, list[Value]]) -> Value:
    if name in enums and rng.random() < 0.9:
        return rng.choice(enums[name])
    return rng.choice(pool)


def source_fields(rule: CompiledRule) -> list[str]:
    catalog = registry.connector_class(rule.source_system).CATALOG
    return sorted(catalog[rule.source_collection].fields | {"id", "extra_field_no_rule_names"})


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_fields_a_rule_does_not_read_never_change_its_outcome(integration: str) -> None:
    rng = random.Random(integration)
    for rule in rules_of(integration):
        pool, fields, enums = pool_of(rule), source_fields(rule), enums_of(rule)
        unread = [name for name in fields if name not in rule.source_reads]
        tables = {name: {str(v): f"looked-up {v}" for v in pool} for name in rule.lookups}
        outcomes: Counter[str] = Counter()
        for n in range(RECORDS):
            values = {name: draw(rng, name, pool, enums) for name in fields}
            record = Record(f"r{n}", values, updated_at="2026-01-01")
            outcome = rule.normalize(record, tables)
            outcomes[type(outcome).__name__] += 1
            for name in unread:
                edited = Record(
                    record.id, {**values, name: draw(rng, name, pool, enums)}, updated_at="2026-01-01"
                )
                assert rule.normalize(edited, tables) == outcome, (rule.name, name)
        # the check means something only if records got past the filter and the checks
        assert outcomes["Desired"] + outcomes["Skipped"] > 0, (rule.name, outcomes)


def test_what_a_rule_reads_is_what_its_file_names() -> None:
    (rule,) = [r for r in rules_of("ozmap-ixc") if r.entity == "client-coordinates"]
    assert rule.source_reads == ("code", "lat", "lng")
    assert rule.target_filter_reads == {"ativo", "tipo_conexao_mapa"}
    (boxes,) = [r for r in rules_of("ozmap-ixc") if r.entity == "boxes"]
    assert {"name", "project_name", "olt_ip", "lat", "lng"} <= set(boxes.source_reads)
    assert "draft" not in boxes.source_reads or "implanted" in boxes.source_reads
