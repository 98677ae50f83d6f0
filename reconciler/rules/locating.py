"""Find the line of a key in TOML text, so every rule error can say ``file:line``.

``tomllib`` keeps no positions, so :class:`Locator` scans the text once, tracking ``[table]`` and ``[[array]]``
headers, ``key =`` lines (bare, quoted and dotted keys), multi-line strings and multi-line arrays or inline
tables. A path such as ``("fields", "id_projeto", "lookup")`` or ``("source", "check", 1, "expr")`` (the form of
msgspec's ``$.source.check[1].expr``) maps to the line that defines it, or else to the line of its nearest
defined parent: a key inside an inline table reports the line of the table's key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PathPart = str | int

_BARE = r"[A-Za-z0-9_-]+"
_BARE_KEY = re.compile(_BARE)
_KEY_PART = rf"""(?:{_BARE}|"(?:[^"\\]|\\.)*"|'[^']*')"""
_PART = re.compile(rf"\s*({_KEY_PART})\s*(?:\.|$)")


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$|\s*\(at end of document\)$")


def toml_error_position(text: str, message: str) -> tuple[int, int | None, str]:
    """Where a ``tomllib.TOMLDecodeError`` message points in ``text``: (line, column, the message without its
    position). "At end of document" is the last line, without a column."""
    match = _TOML_POSITION.search(message)
    detail = message[: match.start()] if match else message
    if match is None or match.group(1) is None:
        return max(text.count("\n") + (0 if text.endswith("\n") else 1), 1), None, detail
    return int(match.group(1)), int(match.group(2)), detail


def split_key(text: str) -> tuple[str, ...] | None:
    """``a."b.c".d`` → ``("a", "b.c", "d")``; None when ``text`` is not a TOML key."""
    parts: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            return None
        part = match.group(1)
        parts.append(part[1:-1] if part[0] in "\"'" else part)
        pos = match.end()
    return tuple(parts) or None


def dotted(path: Sequence[PathPart]) -> str:
    """``("source", "check", 1, "expr")`` → ``source.check[1].expr``; keys that are not bare are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
            text += f".{key}" if text else key
    return text


def _bracket_depth(value: str) -> int:
    """Net ``[``/``{`` nesting opened by a value, ignoring strings and a trailing comment."""
    depth = 0
    quote = ""
    escaped = False
    for char in value:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return depth


class Locator:
    """Line numbers (1-based) of the tables and keys of one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[PathPart, ...], int] = {}
        self._arrays: dict[tuple[str, ...], int] = {}
        self._scan(text.splitlines())

    def line(self, path: Sequence[PathPart]) -> int:
        """The line defining ``path``, else its nearest defined parent's, else 1."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return 1

    def _scan(self, lines: list[str]) -> None:
        table: tuple[PathPart, ...] = ()
        closing = ""  # the delimiter of an open multi-line string
        depth = 0  # open brackets of a multi-line array / inline table
        for number, text in enumerate(lines, start=1):
            if closing:
                closing = "" if closing in text else closing
                continue
            if depth > 0:
                depth += _bracket_depth(text)
                continue
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("["):
                table = self._header(stripped, number) or table
                continue
            key_text, sep, value = stripped.partition("=")
            keys = split_key(key_text)
            if not sep or keys is None:
                continue
            self._define(table + keys, number)
            closing, depth = self._value_state(value.strip())

    @staticmethod
    def _value_state(value: str) -> tuple[str, int]:
        for delimiter in ('"""', "'''"):
            if value.startswith(delimiter) and value.count(delimiter) == 1:
                return delimiter, 0
        return "", max(_bracket_depth(value), 0)

    def _header(self, stripped: str, number: int) -> tuple[PathPart, ...] | None:
        is_array = stripped.startswith("[[")
        end = stripped.find("]]" if is_array else "]")
        keys = split_key(stripped[2 if is_array else 1 : end]) if end > 0 else None
        if keys is None:
            return None
        path: list[PathPart] = []
        for i, key in enumerate(keys):
            path.append(key)
            plain = keys[: i + 1]
            if is_array and i == len(keys) - 1:
                self._define(tuple(path), number)
                self._arrays[plain] = self._arrays.get(plain, -1) + 1
            if plain in self._arrays:
                path.append(self._arrays[plain])
        self._define(tuple(path), number)
        return tuple(path)

    def _define(self, path: tuple[PathPart, ...], number: int) -> None:
        for cut in range(1, len(path) + 1):
            self._lines.setdefault(path[:cut], number)


_MSGSPEC_ERROR = re.compile(r"(.*) - at `\$(.*)`", re.DOTALL)
_MSGSPEC_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def split_msgspec_error(text: str) -> tuple[str, tuple[PathPart, ...]]:
    """msgspec's ``"Expected `int`, got `str` - at `$.http.concurrency`"`` → its message and the key path
    ``("http", "concurrency")`` (``()`` at the top level). A dict key msgspec shows as ``[...]`` is dropped:
    decode tables of named entries entry by entry to know it."""
    match = _MSGSPEC_ERROR.fullmatch(text)
    if match is None:
        return text, ()
    path = tuple(int(index) if index else name for name, index in _MSGSPEC_PART.findall(match.group(2)))
    return match.group(1), path
