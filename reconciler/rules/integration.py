"""Load every rule of one integration, compile each against the systems' catalogs, order them by dependency.

An integration (``ozmap-ixc``) is a folder of entity rules (``boxes.toml``, ``clients.toml``...). Entities run in
dependency order: ``[entity] after`` names entities that must run first, and a ``links`` lookup implies the same
(a rule reading another entity's links needs them written first). Options are shared by the integration: each
option in the config must be declared by at least one of its rules, and each rule receives the ones it declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ConfigError
from reconciler.model import Value
from reconciler.rules import compiling, loading
from reconciler.rules.loading import RuleFile
from reconciler.rules.locating import PathPart, dotted

if TYPE_CHECKING:
    from reconciler.connectors.base import Catalog, CollectionSchema


def load_integration(
    folder: Path,
    integration: str,
    *,
    catalogs: Mapping[str, Catalog],
    options: Mapping[str, Value],
    entities: Sequence[str] | None,
) -> list[compiling.CompiledRule]:
    """The compiled rules of ``folder/<integration>/*.toml``, dependencies first.

    ``catalogs``: system name → its collections' schemas. ``options``: the integration's config options.
    ``entities``: the entities to run (None: every rule whose ``[entity] enabled`` is true).
    """
    paths = sorted((Path(folder) / integration).glob("*.toml"))
    if not paths:
        raise ConfigError(f"no rule files for integration '{integration}' in {folder}")
    rules = {path.stem: loading.load_rule_file(path) for path in paths}
    order = dependency_order(rules)
    selected = _select(rules, integration, entities)
    _check_options(rules, integration, options)
    return [_compile(rules[name], catalogs, options) for name in order if name in selected]


def dependencies(rule: RuleFile) -> list[tuple[str, tuple[PathPart, ...]]]:
    """``(entity, path of the key naming it)`` for every entity ``rule`` depends on."""
    spec = rule.spec
    found: list[tuple[str, tuple[PathPart, ...]]] = [
        (name, ("entity", "after")) for name in spec.entity.after
    ]
    for name, lookup in spec.lookups.items():
        if lookup.links is not None and lookup.links != rule.entity:
            found.append((lookup.links, ("lookups", name, "links")))
    return found


def dependency_order(rules: Mapping[str, RuleFile]) -> list[str]:
    """Entity names, each after its dependencies (alphabetical among equals); RuleError on unknowns or a cycle."""
    for rule in rules.values():
        for name, path in dependencies(rule):
            if name not in rules:
                known = ", ".join(sorted(rules))
                raise rule.error(f"{dotted(path)}: unknown entity '{name}'; known: {known}", *path)
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" | "done"
    for name in sorted(rules):
        _visit(name, rules, state, order, [])
    return order


def _visit(
    name: str, rules: Mapping[str, RuleFile], state: dict[str, str], order: list[str], trail: list[str]
) -> None:
    if state.get(name) == "done":
        return
    if state.get(name) == "visiting":
        cycle = " → ".join([*trail[trail.index(name) :], name])
        rule = rules[name]
        raise rule.error(f"entity.after: dependency cycle: {cycle}", "entity", "after")
    state[name] = "visiting"
    for dependency, _path in sorted(dependencies(rules[name])):
        _visit(dependency, rules, state, order, [*trail, name])
    state[name] = "done"
    order.append(name)


def _select(rules: Mapping[str, RuleFile], integration: str, entities: Sequence[str] | None) -> set[str]:
    if entities is None:
        return {name for name, rule in rules.items() if rule.spec.entity.enabled}
    unknown = [name for name in entities if name not in rules]
    if unknown:
        known = ", ".join(sorted(rules))
        raise ConfigError(f"unknown entity '{unknown[0]}' for integration {integration}; known: {known}")
    return set(entities)


def _check_options(rules: Mapping[str, RuleFile], integration: str, options: Mapping[str, Value]) -> None:
    declared = {name for rule in rules.values() for name in rule.spec.options}
    for name in options:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ConfigError(f"unknown option '{name}' for integration {integration}; known: {known}")


def _compile(
    rule: RuleFile, catalogs: Mapping[str, Catalog], options: Mapping[str, Value]
) -> compiling.CompiledRule:
    spec = rule.spec
    lookup_schemas = {
        name: _schema(rule, catalogs, lookup.system, lookup.collection, ("lookups", name))
        for name, lookup in spec.lookups.items()
        if lookup.system is not None and lookup.collection is not None
    }
    return compiling.compile_rule(
        rule,
        source=_schema(rule, catalogs, spec.source.system, spec.source.collection, ("source",)),
        target=_schema(rule, catalogs, spec.target.system, spec.target.collection, ("target",)),
        lookup_schemas=lookup_schemas,
        options={name: value for name, value in options.items() if name in spec.options},
    )


def _schema(
    rule: RuleFile, catalogs: Mapping[str, Catalog], system: str, collection: str, where: tuple[str, ...]
) -> CollectionSchema:
    catalog = catalogs.get(system)
    prefix = ".".join(where)
    if catalog is None:
        known = ", ".join(sorted(catalogs)) or "none"
        raise rule.error(f"{prefix}.system: unknown system '{system}'; known: {known}", *where, "system")
    schema = catalog.get(collection)
    if schema is None:
        known = ", ".join(sorted(catalog)) or "none"
        raise rule.error(
            f"{prefix}.collection: {system} has no collection '{collection}'; known: {known}",
            *where,
            "collection",
        )
    return schema
