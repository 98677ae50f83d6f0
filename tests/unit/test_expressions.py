"""The expression language: evaluation tables, error columns, and Python-equivalence properties."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import Value
from reconciler.rules.expressions import ExpressionError, compile_expression, field_getter, parse

FIELDS = frozenset({"a", "b", "c", "name", "lat", "tags", "implanted", "splitters", "address", "address.zip"})
OPTIONS: dict[str, Value] = {"flag": True, "limit": 10, "label": "x"}


def evaluate(text: str, env: dict[str, Value] | None = None) -> Value:
    return compile_expression(text, fields=FIELDS, options=OPTIONS)(env or {})


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        # literals and arithmetic
        ("1 + 2 * 3", {}, 7),
        ("(1 + 2) * 3", {}, 9),
        ("7 / 2", {}, 3.5),
        ("-a + 1", {"a": 3}, -2),
        ("--a", {"a": 3}, 3),
        ("1.5e2", {}, 150.0),
        ("'it\\'s' + \" ok\"", {}, "it's ok"),
        ("a + 1", {"a": None}, None),
        ("a - b", {"a": 5, "b": 2.5}, 2.5),
        # comparisons, null and mixed types never raise
        ("a == null", {}, True),
        ("a != null", {"a": 0}, True),
        ("a < 1", {"a": None}, False),
        ("a >= 1", {"a": None}, False),
        ("null < 1", {}, False),
        ("a < 1", {"a": "x"}, False),
        ("a > b", {"a": 2, "b": 1}, True),
        ("a > b", {"a": 2, "b": None}, False),
        ("-90 <= lat <= 90", {"lat": -27.5}, True),
        ("-90 <= lat <= 90", {"lat": 91}, False),
        ("-90 <= lat <= 90", {"lat": None}, False),
        ("1 < a", {"a": 2}, True),
        ("1 < a", {"a": None}, False),
        ("a < b < c", {"a": 1, "b": 2, "c": 3}, True),
        ("a < b < c", {"a": 1, "b": 3, "c": 2}, False),
        # membership
        ("name in ['a', 'b']", {"name": "b"}, True),
        ("name not in ['a', 'b']", {"name": "b"}, False),
        ("name in ['a', b]", {"name": "z", "b": "z"}, True),
        ("a in [1, 2]", {"a": 2.0}, True),
        ("a in [[1], 2]", {"a": [1]}, True),
        ("tags in [1]", {"tags": [1]}, False),
        ("'x' in tags", {"tags": ["x", "y"]}, True),
        ("'x' in tags", {"tags": None}, False),
        ("'x' not in tags", {"tags": None}, True),
        ("'bc' in name", {"name": "abcd"}, True),
        ("1 in name", {"name": "abcd"}, False),
        # logic uses truthiness and yields bools
        ("implanted and splitters > 0", {"implanted": True, "splitters": 2}, True),
        ("implanted and splitters > 0", {"implanted": False, "splitters": 2}, False),
        ("implanted and splitters > 0", {"implanted": True, "splitters": None}, False),
        ("a or b", {"a": 0, "b": "x"}, True),
        ("a or b or c", {}, False),
        ("a and b and c", {"a": 1, "b": 1, "c": 1}, True),
        ("not a", {"a": ""}, True),
        ("not a == 1", {"a": 1}, False),
        ("true and a", {"a": 1}, True),
        ("false or a", {"a": 0}, False),
        ("false and a", {}, False),
        ("true or a", {}, True),
        # nested fields and dotted flat names
        ("address.city", {"address": {"city": "Floripa"}}, "Floripa"),
        ("address.city.name", {"address": {"city": "Floripa"}}, None),
        ("address.city", {"address": None}, None),
        ("address.zip", {"address.zip": "88000"}, "88000"),
        # functions
        ("len(name)", {"name": "abc"}, 3),
        ("len(tags)", {"tags": [1, 2]}, 2),
        ("len(name)", {}, 0),
        ("lower(name) == 'cto'", {"name": "CTO"}, True),
        ("upper(name)", {"name": "cto"}, "CTO"),
        ("trim(name)", {"name": "  x "}, "x"),
        ("trim(name)", {}, None),
        ("present(name)", {"name": ""}, False),
        ("present(name)", {"name": "x"}, True),
        ("present(name)", {}, False),
        ("coalesce(a, b, 'none')", {"b": 2}, 2),
        ("coalesce(a, b)", {}, None),
        ("str(a)", {"a": 16}, "16"),
        ("int(a)", {"a": "16"}, 16),
        ("float(a) + 1", {"a": "1.5"}, 2.5),
        ("round(a, 2)", {"a": 1.23456}, 1.23),
        ("round(a)", {"a": 1.6}, 2),
        ("round(a, 1)", {"a": None}, None),
        ("option('flag')", {}, True),
        ('splitters > option("limit")', {"splitters": 11}, True),
        ("option('label') + name", {"name": "y"}, "xy"),
    ],
)
def test_evaluate(text: str, env: dict[str, Value], expected: Value) -> None:
    result = evaluate(text, env)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("a +", "unexpected end of expression at column 4"),
        ("(a", "unexpected end of expression at column 3"),
        ("implanted and (a > 1))", "unexpected ')' at column 22"),
        ("a b", "unexpected 'b' at column 3"),
        ("a = 1", "unexpected '=' (compare with '==') at column 3"),
        ("a == 'abc", "unterminated string at column 6"),
        ("a $ 1", "unexpected character '$' at column 3"),
        ("[1, 2", "unexpected end of expression at column 6"),
        ("a and", "unexpected end of expression at column 6"),
        ("a in", "unexpected end of expression at column 5"),
        ("not", "unexpected end of expression at column 4"),
        ("in", "unexpected 'in' at column 1"),
        (
            "eval(a)",
            "unknown function 'eval' at column 1; known: case, coalesce, float, format, iff, int, len, lookup, "
            "lower, option, present, round, str, trim, upper",
        ),
        ("len(a, b)", "len() takes 1 argument(s), got 2 at column 1"),
        ("round()", "round() takes 1 to 2 argument(s), got 0 at column 1"),
        ("coalesce()", "coalesce() takes at least 1 argument(s), got 0 at column 1"),
        ("option(a)", 'option() takes a quoted option name, e.g. option("name") at column 1'),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nmae == 'x'", "unknown field 'nmae' at column 1; did you mean 'name'?"),
        ("a > 1 and zzz", "unknown field 'zzz' at column 11"),
        ("option('nope')", "unknown option 'nope' at column 8; known: flag, label, limit"),
        ("1 / 0", "division by zero: 1 / 0 at column 3"),
        ("'a' * 2", "cannot apply '*' to 'a' and 2 at column 5"),
    ],
)
def test_compile_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, fields=FIELDS, options=OPTIONS)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("a + 1", {"a": "x"}, "cannot apply '+' to 'x' and 1"),
        ("a / b", {"a": 1, "b": 0}, "division by zero: 1 / 0"),
        ("-a", {"a": "x"}, "cannot negate 'x'"),
        ("int(a)", {"a": "abc"}, "not a number: 'abc'"),
        ("lower(a)", {"a": 1}, "lower() needs text, got 1"),
        ("len(a)", {"a": 1}, "len() needs text or a list, got 1"),
        ("a + true", {"a": 1}, "cannot apply '+' to 1 and True"),
    ],
)
def test_runtime_errors_are_value_errors(text: str, env: dict[str, Value], message: str) -> None:
    fn = compile_expression(text, fields=FIELDS).fn
    with pytest.raises(ValueError) as info:
        fn(env)
    assert str(info.value) == message


def test_names_lists_top_level_fields_read() -> None:
    expression = compile_expression("a > 1 and address.city == name", fields=FIELDS)
    assert expression.names == {"a", "address", "name"}


def test_field_getter() -> None:
    assert field_getter("address.city", FIELDS)({"address": {"city": "X"}}) == "X"
    with pytest.raises(ExpressionError, match="unknown field 'nope'"):
        field_getter("nope", FIELDS)


# --- properties: evaluation agrees with Python ------------------------------------------------------------------

PYTHON_TESTS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

scalars = st.one_of(
    st.none(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="abcXYZ ", max_size=4),
    st.booleans(),
)


def python_compare(op: str, a: Any, b: Any) -> bool:
    if op in ("==", "!="):
        return bool(PYTHON_TESTS[op](a, b))
    if a is None or b is None:
        return False
    try:
        return bool(PYTHON_TESTS[op](a, b))
    except TypeError:
        return False


def literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return repr(value)


@given(a=scalars, b=scalars, op=st.sampled_from(sorted(PYTHON_TESTS)))
def test_comparison_of_fields_matches_python(a: Any, b: Any, op: str) -> None:
    assert evaluate(f"a {op} b", {"a": a, "b": b}) == python_compare(op, a, b)


@given(a=scalars, b=scalars, op=st.sampled_from(sorted(PYTHON_TESTS)))
def test_comparison_with_literals_matches_python(a: Any, b: Any, op: str) -> None:
    assert evaluate(f"a {op} {literal(b)}", {"a": a}) == python_compare(op, a, b)
    assert evaluate(f"{literal(a)} {op} b", {"b": b}) == python_compare(op, a, b)
    assert evaluate(f"{literal(a)} {op} {literal(b)}") == python_compare(op, a, b)


@given(
    values=st.lists(st.integers(min_value=-5, max_value=5), min_size=3, max_size=3),
    ops=st.lists(st.sampled_from(sorted(PYTHON_TESTS)), min_size=2, max_size=2),
)
def test_chained_comparison_matches_python(values: list[int], ops: list[str]) -> None:
    a, b, c = values
    expected = PYTHON_TESTS[ops[0]](a, b) and PYTHON_TESTS[ops[1]](b, c)
    assert evaluate(f"a {ops[0]} b {ops[1]} c", {"a": a, "b": b, "c": c}) == expected


ARITHMETIC: list[tuple[str, Callable[[int, int, int], float]]] = [
    ("a + b * c", lambda a, b, c: a + b * c),
    ("(a - b) / c", lambda a, b, c: (a - b) / c),
    ("-a * -b + c", lambda a, b, c: -a * -b + c),
    ("a * (b + c) - a / c", lambda a, b, c: a * (b + c) - a / c),
]


@given(
    a=st.integers(min_value=-1000, max_value=1000),
    b=st.integers(min_value=-1000, max_value=1000),
    c=st.integers(min_value=1, max_value=50),
)
def test_arithmetic_matches_python(a: int, b: int, c: int) -> None:
    for text, python in ARITHMETIC:
        assert evaluate(text, {"a": a, "b": b, "c": c}) == python(a, b, c)


LOGIC: list[tuple[str, Callable[[bool, bool, bool], bool]]] = [
    ("a and b or c", lambda a, b, c: (a and b) or c),
    ("not a or b and not c", lambda a, b, c: (not a) or (b and not c)),
    ("a and (b or c)", lambda a, b, c: a and (b or c)),
    ("not (a and b and c)", lambda a, b, c: not (a and b and c)),
]


@given(a=st.booleans(), b=st.booleans(), c=st.booleans())
def test_logic_matches_python(a: bool, b: bool, c: bool) -> None:
    for text, python in LOGIC:
        assert evaluate(text, {"a": a, "b": b, "c": c}) == python(a, b, c)


@given(item=scalars, items=st.lists(scalars, max_size=4))
def test_membership_in_literal_list_matches_python(item: Any, items: list[Any]) -> None:
    listed = "[" + ", ".join(literal(v) for v in items) + "]"
    assert evaluate(f"a in {listed}", {"a": item}) == (item in items)
    assert evaluate(f"a not in {listed}", {"a": item}) == (item not in items)
