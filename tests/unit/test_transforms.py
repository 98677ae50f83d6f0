"""The named field transforms: table-driven, plus a round-trip property for ixc_decimal."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import Value
from reconciler.rules.transforms import TRANSFORMS


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("text", None, ""),
        ("text", "  CTO 1 \n", "CTO 1"),
        ("text", 16, "16"),
        ("str", None, None),
        ("str", "x", "x"),
        ("str", 16, "16"),
        ("str", 1.5, "1.5"),
        ("str", True, "true"),
        ("int_str", 16, "16"),
        ("int_str", 16.0, "16"),
        ("int_str", " 16 ", "16"),
        ("int_str", "16.0", "16"),
        ("int_str", None, None),
        ("ixc_decimal", -27.5969, "-27.5969"),
        ("ixc_decimal", "-27.5969", "-27.5969"),
        ("ixc_decimal", "-27,5969", "-27.5969"),
        ("ixc_decimal", 10, "10.0"),
        ("ixc_decimal", 0.0, "0.0"),
        ("ixc_decimal", -0.0, "0.0"),
        ("ixc_decimal", 1e-9, "0.0"),
        ("ixc_decimal", -1e-9, "0.0"),
        ("ixc_decimal", 1e-5, "0.00001"),
        ("ixc_decimal", -48.123456789, "-48.12345679"),
        ("ixc_decimal", 1e20, "100000000000000000000.0"),
        ("ixc_decimal", None, None),
        ("float", "1.5", 1.5),
        ("float", 2, 2.0),
        ("float", None, None),
        ("int", "7", 7),
        ("int", 7.0, 7),
        ("int", None, None),
        ("bool_sn", True, "S"),
        ("bool_sn", False, "N"),
        ("bool_sn", None, None),
        ("sn_bool", "S", True),
        ("sn_bool", " n ", False),
        ("sn_bool", None, None),
        ("lower", "AbC", "abc"),
        ("upper", "AbC", "ABC"),
        ("lower", None, None),
    ],
)
def test_transform(name: str, value: Value, expected: Value) -> None:
    result = TRANSFORMS[name](value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("int_str", "abc", "not a number: 'abc'"),
        ("int_str", 16.5, "not a whole number: 16.5"),
        ("int_str", True, "not a number: True"),
        ("int", [1], "not a number: [1]"),
        ("float", "abc", "not a number: 'abc'"),
        ("ixc_decimal", "north", "not a number: 'north'"),
        ("ixc_decimal", float("nan"), "not a finite number: nan"),
        ("ixc_decimal", "inf", "not a finite number: 'inf'"),
        ("ixc_decimal", False, "not a number: False"),
        ("bool_sn", "S", "not a boolean: 'S'"),
        ("sn_bool", "yes", "not an S/N flag: 'yes'"),
        ("text", True, "not text: True"),
        ("str", {"a": 1}, "not text: {'a': 1}"),
        ("lower", 3, "not text: 3"),
        ("upper", 3, "not text: 3"),
    ],
)
def test_transform_rejects(name: str, value: Value, message: str) -> None:
    with pytest.raises(ValueError) as info:
        TRANSFORMS[name](value)
    assert str(info.value) == message


@given(st.floats(min_value=-180, max_value=180, allow_nan=False))
def test_ixc_decimal_is_fixed_point_within_half_an_eighth_decimal(number: float) -> None:
    text = TRANSFORMS["ixc_decimal"](number)
    assert isinstance(text, str)
    assert "e" not in text.lower()
    _, _, decimals = text.partition(".")
    assert 1 <= len(decimals) <= 8
    assert len(decimals) == 1 or not decimals.endswith("0")
    assert math.isclose(float(text), number, abs_tol=5e-9)


@given(st.booleans())
def test_bool_sn_round_trips(flag: bool) -> None:
    assert TRANSFORMS["sn_bool"](TRANSFORMS["bool_sn"](flag)) is flag
