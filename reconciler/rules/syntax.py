"""Syntax of the rule expression language: tokenizer, syntax tree, recursive-descent parser.

Kept apart from :mod:`reconciler.rules.expressions` (which turns the tree into closures) so the loader can check
an expression's syntax without any schema, and so the grammar can be read in one place::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") sum)*
    sum        := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | "true" | "false" | "null" | NAME | NAME "(" [expr ("," expr)*] ")"
                | QUOTED_NAME | "(" expr ")" | "[" [expr ("," expr)*] "]"

Names are field names (letters, digits, ``_``; dots reach into nested dicts). A field whose name holds other
characters is written between backticks, e.g. `` `properties.Building Type` `` (a quoted name is never a
keyword or a function). Only whitelisted functions parse.
Every error is an :class:`ExpressionError` carrying the 1-based column it was found at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from reconciler.model import Value

#: function name → (least, most) arguments; None = any number
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "len": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "trim": (1, 1),
    "present": (1, 1),
    "option": (1, 1),
    "coalesce": (1, None),
    "str": (1, 1),
    "int": (1, 1),
    "float": (1, 1),
    "round": (1, 2),
    "iff": (3, 3),
    "lookup": (2, 2),
    "case": (3, None),
    "format": (1, None),
}
#: functions whose first argument must be a quoted name (an option, a lookup table)
NAMED_FIRST = {"option": 'option("name")', "lookup": 'lookup("name", key)'}

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
_LITERALS: dict[str, Value] = {"true": True, "false": False, "null": None}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<quoted>`[^`]+`)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


class ExpressionError(ValueError):
    """A syntax or name error in an expression. ``str()`` reads ``unexpected ')' at column 12``."""

    def __init__(self, message: str, column: int | None = None, *, hint: str = "") -> None:
        self.message = message
        self.column = column
        self.hint = hint
        text = message if column is None else f"{message} at column {column}"
        super().__init__(f"{text}; {hint}" if hint else text)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | name | quoted | op | end
    text: str
    col: int


@dataclass(frozen=True, slots=True)
class Lit:
    value: Value
    col: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Node, ...]
    col: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    col: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]
    col: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "not"
    operand: Node
    col: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * /
    left: Node
    right: Node
    col: int


@dataclass(frozen=True, slots=True)
class Compare:
    ops: tuple[str, ...]
    operands: tuple[Node, ...]
    col: int


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]
    col: int


Node: TypeAlias = Lit | ListLit | Name | Call | Unary | Binary | Compare | Logic


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of ``text``, ending with one ``end`` token."""
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            if char in "'\"":
                raise ExpressionError("unterminated string", pos + 1)
            if char == "`":
                raise ExpressionError("unterminated or empty `quoted name`", pos + 1)
            if char == "=":
                raise ExpressionError("unexpected '=' (compare with '==')", pos + 1)
            raise ExpressionError(f"unexpected character {char!r}", pos + 1)
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            yield Token(kind, match.group(), pos + 1)
        pos = match.end()
    yield Token("end", "", len(text) + 1)


def unquote(literal: str) -> str:
    """The value of a quoted string token (``\\n``, ``\\t``, ``\\r`` and ``\\<char>`` escapes)."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), literal[1:-1])


def parse(text: str) -> Node:
    """The syntax tree of ``text``; raises :class:`ExpressionError` with the column of the first problem."""
    if not text.strip():
        raise ExpressionError("empty expression")
    parser = _Parser(list(tokenize(text)))
    node = parser.expr()
    parser.expect_end()
    return node


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind in ("op", "name") and token.text in texts

    def expect(self, text: str) -> Token:
        if not self.at(text):
            self.fail()
        return self.advance()

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            self.fail()

    def fail(self, token: Token | None = None) -> NoReturn:
        token = token or self.peek()
        if token.kind == "end":
            raise ExpressionError("unexpected end of expression", token.col)
        raise ExpressionError(f"unexpected {token.text!r}", token.col)

    def expr(self) -> Node:
        return self.logic("or", self.conjunction)

    def conjunction(self) -> Node:
        return self.logic("and", self.negation)

    def logic(self, op: str, parse_operand: Callable[[], Node]) -> Node:
        col = self.peek().col
        operands: list[Node] = [parse_operand()]
        while self.at(op):
            self.advance()
            operands.append(parse_operand())
        return operands[0] if len(operands) == 1 else Logic(op, tuple(operands), col)

    def negation(self) -> Node:
        if self.at("not"):
            token = self.advance()
            return Unary("not", self.negation(), token.col)
        return self.comparison()

    def comparison_op(self) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.text in COMPARISONS:
            return self.advance().text
        if token.kind == "name" and token.text == "in":
            return self.advance().text
        if self.at("not") and self.tokens[self.pos + 1].text == "in":
            self.pos += 2
            return "not in"
        return None

    def comparison(self) -> Node:
        col = self.peek().col
        operands = [self.sum()]
        ops: list[str] = []
        while (op := self.comparison_op()) is not None:
            ops.append(op)
            operands.append(self.sum())
        return operands[0] if not ops else Compare(tuple(ops), tuple(operands), col)

    def sum(self) -> Node:
        node = self.term()
        while self.at("+", "-"):
            token = self.advance()
            node = Binary(token.text, node, self.term(), token.col)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.at("*", "/"):
            token = self.advance()
            node = Binary(token.text, node, self.unary(), token.col)
        return node

    def unary(self) -> Node:
        if self.at("-"):
            token = self.advance()
            return Unary("-", self.unary(), token.col)
        return self.primary()

    def primary(self) -> Node:
        token = self.advance()
        if token.kind == "number":
            return Lit(_number(token.text), token.col)
        if token.kind == "string":
            return Lit(unquote(token.text), token.col)
        if token.kind == "name":
            return self.name(token)
        if token.kind == "quoted":
            return Name(token.text[1:-1], token.col)
        if token.kind == "op" and token.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if token.kind == "op" and token.text == "[":
            return ListLit(self.items("]"), token.col)
        self.fail(token)

    def name(self, token: Token) -> Node:
        if token.text in _LITERALS:
            return Lit(_LITERALS[token.text], token.col)
        if token.text in KEYWORDS:
            self.fail(token)
        if not self.at("("):
            return Name(token.text, token.col)
        self.advance()
        return _call(token, self.items(")"))

    def items(self, closing: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if not self.at(closing):
            items.append(self.expr())
            while self.at(","):
                self.advance()
                items.append(self.expr())
        self.expect(closing)
        return tuple(items)


def _number(text: str) -> int | float:
    return int(text) if text.isdigit() else float(text)


def _call(token: Token, args: tuple[Node, ...]) -> Call:
    arity = FUNCTIONS.get(token.text)
    if arity is None:
        known = ", ".join(sorted(FUNCTIONS))
        raise ExpressionError(f"unknown function '{token.text}'", token.col, hint=f"known: {known}")
    least, most = arity
    if len(args) < least or (most is not None and len(args) > most):
        wanted = str(least) if least == most else f"{least} to {most}" if most else f"at least {least}"
        raise ExpressionError(f"{token.text}() takes {wanted} argument(s), got {len(args)}", token.col)
    example = NAMED_FIRST.get(token.text)
    if example is not None and not (isinstance(args[0], Lit) and isinstance(args[0].value, str)):
        raise ExpressionError(f"{token.text}() takes a quoted {token.text} name, e.g. {example}", token.col)
    return Call(token.text, args, token.col)
