"""Named value transforms a rule file may apply to a mapped field (``transform = "ixc_decimal"``).

Each transform is a pure function ``Value -> Value``. Bad input raises :class:`ValueError` with a message a person
can act on ("not a number: 'abc'"); the compiled rule turns it into ``Quarantined("field capacidade: ...")``.
``None`` (a missing source value) passes through unchanged, except for ``text``, which turns it into ``""``, so
the rule's when-missing policy decides what a missing value means.

:data:`TRANSFORMS` is the registry the loader checks names against; the expression language reuses the number
parsers (:func:`to_int`, :func:`to_float`) for its ``int()`` and ``float()`` functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

from reconciler.model import Value

Transform = Callable[[Value], Value]


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_float(value: Value) -> float | None:
    """A finite float from a number or numeric text (``"-27,5"`` accepted); ``None`` stays ``None``."""
    if value is None:
        return None
    if _is_number(value):
        result = float(value)  # type: ignore[arg-type]
    elif isinstance(value, str):
        text = value.strip()
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            result = float(text)
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    else:
        raise ValueError(f"not a number: {value!r}")
    if not math.isfinite(result):
        raise ValueError(f"not a finite number: {value!r}")
    return result


def to_int(value: Value) -> int | None:
    """An int from an int, a whole float or numeric text (``"16"``, ``"16.0"``); ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = to_float(value)
    assert number is not None
    if not number.is_integer():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def text(value: Value) -> Value:
    """Trimmed text; ``None`` becomes ``""``; numbers become their decimal text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if _is_number(value):
        return str(value)
    raise ValueError(f"not text: {value!r}")


def to_str(value: Value) -> Value:
    """Text as is; numbers as decimal text; booleans as ``"true"``/``"false"``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(value)
    raise ValueError(f"not text: {value!r}")


def int_str(value: Value) -> Value:
    """A whole number as IXC's decimal text: ``16``, ``16.0`` and ``"16"`` all give ``"16"``."""
    number = to_int(value)
    return None if number is None else str(number)


def ixc_decimal(value: Value) -> Value:
    """A decimal as IXC stores coordinates: fixed point, at most 8 decimals, at least one, no exponent.

    Eight decimals of a degree is about 1 mm; more would only carry float noise into the target's text.

    ``-27.5969`` → ``"-27.5969"``, ``10`` → ``"10.0"``, ``1e-9`` → ``"0.0"``, ``"-27,5"`` → ``"-27.5"``.
    """
    number = value if type(value) is float and math.isfinite(value) else to_float(value)
    if number is None:
        return None
    digits = f"{number:.8f}".rstrip("0")
    if digits[-1] == ".":
        digits += "0"
    return "0.0" if digits == "-0.0" else digits


def ixc_reading(value: Value) -> Value:
    """An IXC optical reading in dBm (``"-21.35"`` → ``-21.35``); ``"0.00"`` and ``""`` mean no reading → None.

    ixc.md §2.4: ``"0.00"`` is not 0 dBm but "the ONU did not report", on about 30 % of ONUs.
    """
    number = to_float(value) if value not in ("", None) else None
    return None if number is None or number == 0 else number


def ixc_coordinate(value: Value) -> Value:
    """An IXC coordinate as a float; ``""`` and ``"0"`` mean "no position" (ixc.md §2.4) → None."""
    number = to_float(value) if value not in ("", None) else None
    return None if number is None or number == 0 else number


def bool_sn(value: Value) -> Value:
    """IXC's flags: ``True`` → ``"S"`` (sim), ``False`` → ``"N"`` (não)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "S" if value else "N"
    raise ValueError(f"not a boolean: {value!r}")


def sn_bool(value: Value) -> Value:
    """The reverse of :func:`bool_sn`; ``"s"``/``"n"`` in any case, surrounding blanks ignored."""
    if value is None:
        return None
    if isinstance(value, str):
        flag = value.strip().upper()
        if flag in ("S", "N"):
            return flag == "S"
    raise ValueError(f"not an S/N flag: {value!r}")


def yes_no(value: Value) -> Value:
    """A flag as a Yes/No choice: booleans and the texts ``"true"``/``"false"`` (any case; a checkbox as COS BE
    stores it) become ``"Yes"``/``"No"``; other values pass through (a Yes/No already, or a mapped free text)."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return "Yes" if value.strip().lower() == "true" else "No"
    return value


def lower(value: Value) -> Value:
    """Lower-case text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower()
    raise ValueError(f"not text: {value!r}")


def upper(value: Value) -> Value:
    """Upper-case text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.upper()
    raise ValueError(f"not text: {value!r}")


def _float(value: Value) -> Value:
    return to_float(value)


def _int(value: Value) -> Value:
    return to_int(value)


#: transform name (as written in rule files) → function
TRANSFORMS: Mapping[str, Transform] = MappingProxyType(
    {
        "text": text,
        "str": to_str,
        "int_str": int_str,
        "ixc_decimal": ixc_decimal,
        "ixc_reading": ixc_reading,
        "ixc_coordinate": ixc_coordinate,
        "float": _float,
        "int": _int,
        "bool_sn": bool_sn,
        "sn_bool": sn_bool,
        "yes_no": yes_no,
        "lower": lower,
        "upper": upper,
    }
)
