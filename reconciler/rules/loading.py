"""Read a rule file: TOML → :class:`~reconciler.rules.schema.Rule`, with every error as ``file:line: message``.

Loading checks everything a rule file can get wrong on its own, without knowing any system: TOML syntax, unknown
keys, wrong types, expression and template syntax, unknown transforms, lookups and options, first-sight keys that
are not mapped, a removal without its field, bad durations (the static checks live in
:mod:`reconciler.rules.validating`). Whether the fields exist in the systems is checked later by
:mod:`reconciler.rules.compiling`, against the connectors' schemas.

The only I/O in the rules package is here: reading the rule file's text (or taking it as an argument).
Rule files live at ``rules/<integration>/<entity>.toml``; the package ships them through the
``reconciler/builtin_rules`` symlink.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from reconciler.errors import RuleError
from reconciler.rules import schema, validating
from reconciler.rules.locating import Locator, PathPart, dotted, toml_error_position

_T = TypeVar("_T")
_MSGSPEC_PATH = re.compile(r"(.*) - at `\$(.*)`", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`")
_MISSING = re.compile(r"Object missing required field `(.*)`")


@dataclass(frozen=True, slots=True)
class RuleFile:
    """A decoded, statically checked rule file and where it came from."""

    path: Path
    integration: str
    entity: str
    spec: schema.Rule
    locator: Locator

    @property
    def name(self) -> str:
        """``integration/entity``, as messages and config refer to it."""
        return f"{self.integration}/{self.entity}"

    def line(self, *path: PathPart) -> int:
        """The line defining ``path`` (e.g. ``"fields", "latitude", "transform"``)."""
        return self.locator.line(path)

    def error(self, message: str, *path: PathPart) -> RuleError:
        """A :class:`RuleError` at the line of ``path``."""
        return RuleError(str(self.path), self.line(*path), message)


def load_rule_file(path: str | Path, *, text: str | None = None) -> RuleFile:
    """Read (unless ``text`` is given), decode and statically check ``rules/<integration>/<entity>.toml``."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleError(str(path), 1, f"cannot read rule file: {exc.strerror}") from None
    raw = _parse_toml(path, text)
    locator = Locator(text)
    spec = _decode(raw, str(path), locator)
    rule = RuleFile(path, path.parent.name, path.stem, spec, locator)
    validating.check(rule)
    return rule


def discover(folder: Path) -> list[Path]:
    """Every rule file under ``folder``: ``<folder>/<integration>/*.toml``, sorted."""
    return sorted(p for p in Path(folder).glob("*/*.toml") if p.is_file())


def builtin_rules_dir() -> Path:
    """The rule files shipped with the package (``reconciler/builtin_rules`` → the repository's ``rules/``)."""
    return Path(__file__).resolve().parent.parent / "builtin_rules"


def parse_duration(text: str) -> int:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` → seconds; ValueError when malformed or zero."""
    return validating.parse_duration(text)


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column, detail = toml_error_position(text, str(exc))
        where = f" (column {column})" if column is not None else ""
        raise RuleError(str(path), line, f"invalid TOML: {detail}{where}") from None


def _decode(raw: dict[str, Any], file: str, locator: Locator) -> schema.Rule:
    """Decode the named tables entry by entry first: msgspec reports dict keys as ``[...]``, losing the name."""
    for section, entry_type in schema.NAMED_TABLES.items():
        table = raw.get(section)
        if isinstance(table, dict):
            for key, entry in table.items():
                _convert(entry, entry_type, (section, key), file, locator)
    source = raw.get("source")
    enums = source.get("enums") if isinstance(source, dict) else None
    if isinstance(enums, dict):
        for key, values in enums.items():  # one by one, for the line of each field's list
            try:
                msgspec.convert(values, schema.EnumValues)
            except msgspec.ValidationError as exc:
                raise _rule_error(str(exc), ("source", "enums", key), file, locator) from None
    return _convert(raw, schema.Rule, (), file, locator)


def _convert(raw: Any, kind: type[_T], prefix: tuple[PathPart, ...], file: str, locator: Locator) -> _T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise _rule_error(str(exc), prefix, file, locator) from None


def _rule_error(text: str, prefix: tuple[PathPart, ...], file: str, locator: Locator) -> RuleError:
    match = _MSGSPEC_PATH.fullmatch(text)
    message, where = (match.group(1), match.group(2)) if match else (text, "")
    path = prefix + tuple(int(index) if index else name for name, index in _PATH_PART.findall(where))
    if unknown := _UNKNOWN.fullmatch(message):
        key = unknown.group(1)
        return RuleError(file, locator.line((*path, key)), f"unknown key '{key}' {_where(path)}")
    if missing := _MISSING.fullmatch(message):
        return RuleError(file, locator.line(path), f"missing key '{missing.group(1)}' {_where(path)}")
    message = message.replace("`", "").replace(" | null", "").replace("object", "table")
    message = message[:1].lower() + message[1:]
    return RuleError(file, locator.line(path), f"{dotted(path)}: {message}" if path else message)


def _where(path: tuple[PathPart, ...]) -> str:
    if not path:
        return "at top level"
    if isinstance(path[-1], int):
        return f"in [[{dotted(path[:-1])}]]"
    return f"in [{dotted(path)}]"
