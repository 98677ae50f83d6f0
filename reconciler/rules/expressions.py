"""The rule expression language, compiled to closures: safe (no ``eval``), checked at load, fast per record.

A rule's ``filter``, ``[[source.check]] expr`` and ``[fields.X] expr`` are expressions over one record's fields
(grammar in :mod:`reconciler.rules.syntax`). :func:`compile_expression` parses the text once, checks every field
name against the collection's schema and every ``option("…")`` against the rule's options, folds constants
(``-90``, ``option("x")``, ``[1, 2]`` → a frozenset) and returns nested closures: evaluating one record is a few
Python calls, never a walk over a tree. This runs a million times per cycle.

Semantics, chosen so a rule never crashes on odd data:

* ``and`` / ``or`` / ``not`` use truthiness (null, ``0``, ``""`` and ``[]`` are false) and give a bool.
* ``==`` / ``!=`` compare anything (``null == null`` is true). ``<`` ``<=`` ``>`` ``>=`` are false when either
  side is null or the two cannot be ordered (``"a" < 1``); chains (``-90 <= lat <= 90``) evaluate each operand once.
* ``x in [..]`` / ``x in field`` test membership (a substring for text); ``in null`` is false.
* ``+ - * /`` work on numbers (``+`` also joins two texts); null on either side gives null; anything else, or a
  division by zero, raises :class:`ValueError`, which the compiled rule turns into a quarantine reason.
* Functions: ``len present lower upper trim str int float round coalesce case format option`` (see
  :mod:`reconciler.rules.functions`), plus
  ``iff(cond, a, b)`` (evaluates only the branch it returns) and ``lookup("name", key)``: the rule's lookup table
  ``name`` at ``key`` (null when absent; a key several records share raises :class:`ValueError`). The tables
  reach the closures through the record's env under :data:`LOOKUPS_KEY`, which the compiled rule adds only
  for rules that call ``lookup``.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import Value
from reconciler.rules import functions, syntax
from reconciler.rules.lookups import Ambiguous, lookup_key
from reconciler.rules.syntax import ExpressionError, parse

__all__ = [
    "LOOKUPS_KEY",
    "Env",
    "Expression",
    "ExpressionError",
    "Fn",
    "compile_expression",
    "field_getter",
    "parse",
]

#: Env key under which ``lookup()`` finds the lookup tables (never a field name: ``$`` is not a name character).
LOOKUPS_KEY = "$lookups"

#: What an expression reads: one record's fields (plus ``id`` when the rule uses it).
Env = Mapping[str, Value]
#: A compiled expression.
Fn = Callable[[Env], Any]


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: call ``fn(env)``. ``names`` are the top-level fields it reads."""

    text: str
    fn: Fn
    names: frozenset[str]
    uses_lookups: bool = False

    def __call__(self, env: Env) -> Value:
        result: Value = self.fn(env)
        return result


def compile_expression(
    text: str,
    *,
    fields: Collection[str],
    options: Mapping[str, Value] | None = None,
    lookups: Collection[str] | None = None,
) -> Expression:
    """Parse and compile ``text``; every name must be in ``fields``, every ``option()`` in ``options``, every
    ``lookup()`` in ``lookups`` (None: ``lookup()`` is not available, e.g. in a target filter)."""
    compiler = _Compiler(fields, options or {}, lookups)
    code = compiler.code(parse(text))
    return Expression(text, _as_fn(code), frozenset(compiler.names), compiler.uses_lookups)


def field_getter(name: str, fields: Collection[str]) -> Fn:
    """A getter for the field ``name`` (dots reach into nested dicts); unknown names raise ExpressionError."""
    return _getter(name, fields, None)


class _Const:
    """A value known at compile time (folded instead of evaluated per record)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Field:
    """A top-level field read, kept symbolic so comparisons can inline ``env.get(name)``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_Code = Fn | _Const | _Field


def _as_fn(code: _Code) -> Fn:
    if isinstance(code, _Const):
        value = code.value
        return lambda env: value
    if isinstance(code, _Field):
        name = code.name
        return lambda env: env.get(name)
    return code


def _getter(name: str, fields: Collection[str], col: int | None) -> Fn:
    if name in fields:
        return lambda env: env.get(name)
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in fields:
            return _nested(head, tuple(parts[cut:]))
    close = difflib.get_close_matches(name, list(fields), n=1)
    raise ExpressionError(f"unknown field '{name}'", col, hint=f"did you mean '{close[0]}'?" if close else "")


def _nested(head: str, rest: tuple[str, ...]) -> Fn:
    def get(env: Env) -> Any:
        value = env.get(head)
        for part in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


class _Compiler:
    def __init__(
        self, fields: Collection[str], options: Mapping[str, Value], lookups: Collection[str] | None
    ) -> None:
        self.fields = fields
        self.options = options
        self.lookups = lookups
        self.names: set[str] = set()
        self.uses_lookups = False

    def code(self, node: syntax.Node) -> _Code:
        match node:
            case syntax.Lit(value=value):
                return _Const(value)
            case syntax.ListLit(items=items):
                return self.list_code(items)
            case syntax.Name(name=name, col=col):
                if name in self.fields:
                    self.names.add(name)
                    return _Field(name)
                self.names.add(name.split(".")[0])
                return _getter(name, self.fields, col)
            case syntax.Call():
                return self.call(node)
            case syntax.Unary(op=op, operand=operand, col=col):
                return _apply(functions.negate if op == "-" else operator.not_, (self.code(operand),), col)
            case syntax.Binary(op=op, left=left, right=right, col=col):
                return _apply(functions.ARITHMETIC[op], (self.code(left), self.code(right)), col)
            case syntax.Compare(ops=ops, operands=operands):
                return _compare(ops, [self.code(o) for o in operands])
            case syntax.Logic(op=op, operands=operands):
                return _logic(op, [self.code(o) for o in operands])
        raise AssertionError(f"unknown node {node!r}")

    def list_code(self, items: tuple[syntax.Node, ...]) -> _Code:
        codes = [self.code(item) for item in items]
        if all(isinstance(c, _Const) for c in codes):
            return _Const([c.value for c in codes if isinstance(c, _Const)])
        fns = [_as_fn(c) for c in codes]
        return lambda env: [fn(env) for fn in fns]

    def call(self, node: syntax.Call) -> _Code:
        if node.func == "option":
            arg = node.args[0]
            assert isinstance(arg, syntax.Lit) and isinstance(arg.value, str)
            if arg.value not in self.options:
                known = ", ".join(sorted(self.options)) or "none declared"
                raise ExpressionError(f"unknown option '{arg.value}'", arg.col, hint=f"known: {known}")
            return _Const(self.options[arg.value])
        if node.func == "iff":
            return _iff(*(self.code(a) for a in node.args))
        if node.func == "lookup":
            return self.lookup(node)
        return _apply(functions.FUNCTIONS[node.func], tuple(self.code(a) for a in node.args), node.col)

    def lookup(self, node: syntax.Call) -> _Code:
        name_node, key_node = node.args
        assert isinstance(name_node, syntax.Lit) and isinstance(name_node.value, str)
        name = name_node.value
        if self.lookups is None:
            raise ExpressionError("lookup() is not available here", node.col)
        if name not in self.lookups:
            known = ", ".join(sorted(self.lookups)) or "none declared"
            raise ExpressionError(f"unknown lookup '{name}'", name_node.col, hint=f"known: {known}")
        self.uses_lookups = True
        return _lookup(name, _as_fn(self.code(key_node)))


def _iff(cond: _Code, then: _Code, otherwise: _Code) -> _Code:
    """``iff(cond, a, b)``: only the chosen branch is evaluated (so ``b`` may fail when ``cond`` holds)."""
    if isinstance(cond, _Const):
        return then if cond.value else otherwise
    test, yes, no = _as_fn(cond), _as_fn(then), _as_fn(otherwise)
    return lambda env: yes(env) if test(env) else no(env)


def _lookup(name: str, key: Fn) -> Fn:
    def look(env: Env) -> Any:
        value = key(env)
        if value is None or value == "":
            return None
        text = value if type(value) is str else lookup_key(value)
        tables: Mapping[str, Mapping[str, Value]] = env[LOOKUPS_KEY]  # type: ignore[assignment]
        found = tables[name].get(text)
        if type(found) is Ambiguous:
            raise ValueError(f"lookup {name}: {found.records} records share the key {text!r}")
        return found

    return look


def _apply(func: Callable[..., Any], args: tuple[_Code, ...], col: int) -> _Code:
    """``func`` applied to the arguments' values; folded when every argument is constant."""
    if all(isinstance(a, _Const) for a in args):
        try:
            return _Const(func(*(a.value for a in args if isinstance(a, _Const))))
        except ValueError as exc:
            raise ExpressionError(str(exc), col) from None
    fns = [_as_fn(a) for a in args]
    if len(fns) == 1:
        (only,) = fns
        return lambda env: func(only(env))
    if len(fns) == 2:
        first, second = fns
        return lambda env: func(first(env), second(env))
    return lambda env: func(*[fn(env) for fn in fns])


# --- comparisons -----------------------------------------------------------------------------------------------


def _ordering(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def test(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return bool(op(a, b))
        except TypeError:
            return False

    return test


def _contains(item: Any, container: Any) -> bool:
    if container is None:
        return False
    try:
        return item in container
    except TypeError:
        return False


def _not_contains(item: Any, container: Any) -> bool:
    return not _contains(item, container)


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    ">": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
    "in": _contains,
    "not in": _not_contains,
}


def _compare(ops: tuple[str, ...], codes: list[_Code]) -> _Code:
    if len(ops) == 1:
        return _compare_pair(ops[0], codes[0], codes[1])
    tests = [_TESTS[op] for op in ops]
    first, *rest = (_as_fn(c) for c in codes)
    steps = list(zip(tests, rest, strict=True))

    def chain(env: Env) -> bool:
        left = first(env)
        for test, fn in steps:
            right = fn(env)
            if not test(left, right):
                return False
            left = right
        return True

    return chain


def _compare_pair(op: str, left: _Code, right: _Code) -> _Code:
    test = _TESTS[op]
    if isinstance(left, _Const) and isinstance(right, _Const):
        return _Const(bool(test(left.value, right.value)))
    if isinstance(right, _Const):
        return _compare_with_constant(op, left, right.value)
    if isinstance(left, _Const) and op in _FLIPPED:
        return _compare_with_constant(_FLIPPED[op], right, left.value)
    lfn, rfn = _as_fn(left), _as_fn(right)
    return lambda env: test(lfn(env), rfn(env))


def _compare_with_constant(op: str, left: _Code, constant: Any) -> _Code:
    if op in ("in", "not in") and isinstance(constant, list):
        return _membership(_as_fn(left), constant, negate=op == "not in")
    if op in ("==", "!="):
        return _equality(left, constant, negate=op == "!=")
    order = _ORDER.get(op)
    if order is None:
        test, fn = _TESTS[op], _as_fn(left)
        return lambda env: test(fn(env), constant)
    if constant is None:
        return _Const(False)
    return (
        _ordered_field(left.name, order, constant)
        if isinstance(left, _Field)
        else _ordered(_as_fn(left), order, constant)
    )


_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _equality(left: _Code, constant: Any, *, negate: bool) -> Fn:
    if isinstance(left, _Field):
        name = left.name
        if negate:
            return lambda env: env.get(name) != constant
        return lambda env: env.get(name) == constant
    fn = _as_fn(left)
    if negate:
        return lambda env: fn(env) != constant
    return lambda env: fn(env) == constant


def _ordered_field(name: str, order: Callable[[Any, Any], Any], constant: Any) -> Fn:
    def ordered(env: Env) -> bool:
        value = env.get(name)
        if value is None:
            return False
        try:
            return bool(order(value, constant))
        except TypeError:
            return False

    return ordered


def _ordered(left: Fn, order: Callable[[Any, Any], Any], constant: Any) -> Fn:
    def ordered(env: Env) -> bool:
        value = left(env)
        if value is None:
            return False
        try:
            return bool(order(value, constant))
        except TypeError:
            return False

    return ordered


def _membership(left: Fn, items: list[Any], *, negate: bool) -> Fn:
    try:
        members: Collection[Any] = frozenset(items)
    except TypeError:
        members = items

    def member(env: Env) -> bool:
        value = left(env)
        try:
            return (value in members) != negate
        except TypeError:
            return (value in items) != negate

    return member


def _logic(op: str, codes: list[_Code]) -> _Code:
    is_and = op == "and"
    fns: list[Fn] = []
    for code in codes:
        if not isinstance(code, _Const):
            fns.append(_as_fn(code))
        elif bool(code.value) != is_and:
            return _Const(not is_and)  # a constant false in an "and" (or true in an "or") decides
    if not fns:
        return _Const(is_and)
    if len(fns) == 1:
        (only,) = fns
        return lambda env: bool(only(env))
    if len(fns) == 2:
        a, b = fns
        if is_and:
            return lambda env: bool(a(env)) and bool(b(env))
        return lambda env: bool(a(env)) or bool(b(env))
    if is_and:

        def all_of(env: Env) -> bool:
            for fn in fns:  # noqa: SIM110 - a plain loop: no generator object per record
                if not fn(env):
                    return False
            return True

        return all_of

    def any_of(env: Env) -> bool:
        for fn in fns:  # noqa: SIM110 - a plain loop: no generator object per record
            if fn(env):
                return True
        return False

    return any_of
