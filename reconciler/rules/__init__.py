"""Rule files: the TOML language that says how one entity of one integration syncs, compiled to pure functions.

Pipeline: :mod:`~reconciler.rules.loading` reads and decodes a file into :mod:`~reconciler.rules.schema` Structs
and runs the static checks of :mod:`~reconciler.rules.validating`; :mod:`~reconciler.rules.compiling` resolves
its names against the connectors' schemas and returns a :class:`~reconciler.rules.compiling.CompiledRule` whose
``normalize`` turns one source record into the desired target record; :mod:`~reconciler.rules.integration`
does this for every entity of an integration, in dependency order. Expressions
(:mod:`~reconciler.rules.expressions`), transforms, templates and lookup tables are the building blocks.

This package is pure: no network, no state store, no event loop; its only I/O is reading rule files.
"""

from __future__ import annotations

from reconciler.rules.compiling import CompiledRule, compile_rule
from reconciler.rules.integration import load_integration
from reconciler.rules.loading import RuleFile, builtin_rules_dir, discover, load_rule_file
from reconciler.rules.lookups import AMBIGUOUS, Ambiguous, LookupSpec, build_table, links_table

__all__ = [
    "AMBIGUOUS",
    "Ambiguous",
    "CompiledRule",
    "LookupSpec",
    "RuleFile",
    "build_table",
    "builtin_rules_dir",
    "compile_rule",
    "discover",
    "links_table",
    "load_integration",
    "load_rule_file",
]
