"""The ``when:`` language: a small, safe expression over earlier steps' results.

Parsed by a tokenizer and a recursive-descent parser written here, type-checked when a graph
is registered, and evaluated by walking the tree. Nothing is ever handed to ``eval``.

Grammar (lowest precedence first)::

    expr     := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | quant
    quant    := ("any" | "all") operand "in" operand | compare
    compare  := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") operand]
    operand  := NUMBER | STRING | "true" | "false" | list | call | path | "(" expr ")"
    list     := "[" [literal ("," literal)* [","]] "]"
    call     := [NAME "."] METHOD "(" STRING ")"   e.g. text.contains("EXIT")
    path     := NAME ["." NAME]          e.g. faces.count, labels.max_score, label

A path is ``STEP.ATTRIBUTE``; a bare ``ATTRIBUTE`` (``any label in [...]``) names the one step
of the graph whose items have that field. Attributes are listed in :data:`ATTRIBUTES`, methods
(tests of a step's text) in :data:`METHODS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from argus.errors import BadInput
from argus.tasks import ITEM_KEYS

NUM, STR, BOOL, LIST = "number", "string", "true/false", "list"

# attribute -> (type, item field it reads or None, what it means)
ATTRIBUTES: dict[str, tuple[str, str | None, str]] = {
    "count": (NUM, None, "how many items (labels, faces, objects, crops or per-crop results)"),
    "max_score": (NUM, "score", "the highest score (0 when there are no items)"),
    "min_score": (NUM, "score", "the lowest score (0 when there are no items)"),
    "top_score": (NUM, "score", "the first item's score (0 when there are no items)"),
    "top_label": (STR, "label", "the first item's label ('' when there are no items)"),
    "label": (LIST, "label", "every item's label"),
    "labels": (LIST, "label", "every item's label"),
    "score": (LIST, "score", "every item's score"),
    "scores": (LIST, "score", "every item's score"),
    "index": (LIST, "index", "every item's class index"),
    "text": (STR, "text", "a text step's whole text, its lines joined ('' when there are none)"),
    "texts": (LIST, "text", "every line's text"),
}
# method -> what it means; each reads a step's ``text`` and takes one string.
METHODS: dict[str, str] = {
    "contains": "whether the step's text contains the string, ignoring case",
    "startswith": "whether the step's text starts with the string, ignoring case",
}
KEYWORDS = frozenset({"and", "or", "not", "in", "any", "all", "true", "false"})
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
MAX_LENGTH = 2000
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
    """,
    re.VERBOSE,
)


class ExprError(BadInput):
    """A ``when:`` expression that cannot be parsed or cannot work; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, op, end
    text: str
    column: int
    value: Any = None


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExprError(f"unexpected character {source[pos]!r}", pos + 1)
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "number":
            tokens.append(Token(kind, text, pos + 1, float(text)))
        elif kind == "string":
            tokens.append(Token(kind, text, pos + 1, _unquote(text)))
        elif kind != "space":
            tokens.append(Token(kind, text, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)


# -- syntax tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any
    type: str
    column: int


@dataclass(frozen=True)
class Path:
    step: str
    attr: str
    column: int


@dataclass(frozen=True)
class Not:
    operand: Node
    column: int


@dataclass(frozen=True)
class Logic:
    op: str  # and, or
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Compare:
    op: str  # ==, !=, <, <=, >, >=, in, not in
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Call:
    method: str  # one of METHODS
    subject: Path  # a step's ``text``
    argument: str
    column: int


@dataclass(frozen=True)
class Quantified:
    quantifier: str  # any, all
    items: Node
    options: Node
    column: int


Node = Literal | Path | Not | Logic | Compare | Quantified | Call

# Given a bare or dotted name, the (step, attribute) it means; raises ExprError otherwise.
NameResolver = Callable[[str | None, str, int], tuple[str, str]]


@dataclass(frozen=True)
class Expression:
    source: str
    tree: Node

    def steps(self) -> set[str]:
        """The steps this expression reads (they must answer before it can be evaluated)."""
        found: set[str] = set()
        _collect_steps(self.tree, found)
        return found

    def evaluate(self, results: Mapping[str, Mapping[str, Any]]) -> bool:
        return bool(_eval(self.tree, results))


def _collect_steps(node: Node, found: set[str]) -> None:
    if isinstance(node, Path):
        found.add(node.step)
    elif isinstance(node, Call):
        found.add(node.subject.step)
    elif isinstance(node, Not):
        _collect_steps(node.operand, found)
    elif isinstance(node, Logic | Compare):
        _collect_steps(node.left, found)
        _collect_steps(node.right, found)
    elif isinstance(node, Quantified):
        _collect_steps(node.items, found)
        _collect_steps(node.options, found)


# -- parser --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str, resolve: NameResolver) -> None:
        self.tokens = tokenize(source)
        self.pos = 0
        self.resolve = resolve
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (text is None or tok.text == text)

    def at_word(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.text == word

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise ExprError(f"expected {what} but found {_describe(self.tok)}", self.tok.column)
        return self.take()

    def parse(self) -> Node:
        if self.at("end"):
            raise ExprError("the expression is empty", 1)
        node = self.parse_or()
        if not self.at("end"):
            raise ExprError(
                f"unexpected {_describe(self.tok)} after a complete expression", self.tok.column
            )
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.at_word("or"):
            col = self.take().column
            node = Logic("or", node, self.parse_and(), col)
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.at_word("and"):
            col = self.take().column
            node = Logic("and", node, self.parse_not(), col)
        return node

    def nest(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"the expression nests deeper than {MAX_DEPTH} levels", column)

    def parse_not(self) -> Node:
        if self.at_word("not"):
            col = self.take().column
            self.nest(col)
            node = Not(self.parse_not(), col)
            self.depth -= 1
            return node
        if self.at_word("any") or self.at_word("all"):
            tok = self.take()
            items = self.parse_operand()
            if not self.at_word("in"):
                raise ExprError(
                    f"expected 'in' after '{tok.text} …' but found {_describe(self.tok)}",
                    self.tok.column,
                )
            self.take()
            return Quantified(tok.text, items, self.parse_operand(), tok.column)
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_operand()
        tok = self.tok
        if tok.kind == "op" and tok.text in COMPARISONS:
            self.take()
            return Compare(tok.text, left, self.parse_operand(), tok.column)
        if self.at_word("in"):
            self.take()
            return Compare("in", left, self.parse_operand(), tok.column)
        if self.at_word("not") and self.tokens[self.pos + 1].text == "in":
            self.pos += 2
            return Compare("not in", left, self.parse_operand(), tok.column)
        return left

    def parse_operand(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return Literal(tok.value, NUM, tok.column)
        if tok.kind == "string":
            self.take()
            return Literal(tok.value, STR, tok.column)
        if tok.kind == "op" and tok.text == "(":
            self.take()
            self.nest(tok.column)
            node = self.parse_or()
            self.expect("op", ")", "')'")
            self.depth -= 1
            return node
        if tok.kind == "op" and tok.text == "[":
            return self.parse_list()
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                self.take()
                return Literal(tok.text == "true", BOOL, tok.column)
            if tok.text in KEYWORDS:
                raise ExprError(f"expected a value but found the word {tok.text!r}", tok.column)
            self.take()
            if self.at("op", "."):
                self.take()
                attr = self.tok
                if attr.kind != "name":
                    raise ExprError(
                        f"expected an attribute after '{tok.text}.' but found {_describe(attr)}",
                        attr.column,
                    )
                self.take()
                if attr.text in METHODS:
                    return self.parse_call(tok.text, attr, tok.column)
                step, name = self.resolve(tok.text, attr.text, tok.column)
            elif tok.text in METHODS:
                return self.parse_call(None, tok, tok.column)
            else:
                step, name = self.resolve(None, tok.text, tok.column)
            return Path(step, name, tok.column)
        raise ExprError(f"expected a value but found {_describe(tok)}", tok.column)

    def parse_call(self, prefix: str | None, method: Token, column: int) -> Node:
        """``[STEP.]METHOD("string")``: a test of a step's text (a bare method reads the one
        step whose items have text)."""
        if not self.at("op", "("):
            raise ExprError(
                f"{method.text} is a test: write {method.text}(\"…\") with one string",
                method.column,
            )
        self.take()
        arg = self.tok
        if arg.kind != "string":
            raise ExprError(
                f"{method.text}(…) takes one string in quotes, not {_describe(arg)}", arg.column
            )
        self.take()
        self.expect("op", ")", f"')' after {method.text}'s string")
        step, name = self.resolve(prefix, "text", column)
        return Call(method.text, Path(step, name, column), str(arg.value), column)

    def parse_list(self) -> Node:
        start = self.take()
        values: list[Any] = []
        kinds: set[str] = set()
        while not self.at("op", "]"):
            tok = self.tok
            if tok.kind == "number":
                kinds.add(NUM)
            elif tok.kind == "string":
                kinds.add(STR)
            else:
                raise ExprError(
                    f"a list holds numbers or strings, not {_describe(tok)}", tok.column
                )
            values.append(self.take().value)
            if self.at("op", ","):
                self.take()
            elif not self.at("op", "]"):
                raise ExprError(
                    f"expected ',' or ']' in the list but found {_describe(self.tok)}",
                    self.tok.column,
                )
        self.take()
        if len(kinds) > 1:
            raise ExprError("a list must hold only numbers or only strings", start.column)
        return Literal(tuple(values), LIST, start.column)


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    return f"{tok.text!r}"


# -- types (checked once, at registration) -------------------------------------------------


def _type(node: Node) -> str:
    if isinstance(node, Literal):
        return node.type
    if isinstance(node, Path):
        return ATTRIBUTES[node.attr][0]
    if isinstance(node, Call):
        return BOOL
    if isinstance(node, Not):
        _need(node.operand, BOOL, "'not'")
        return BOOL
    if isinstance(node, Logic):
        _need(node.left, BOOL, f"'{node.op}'")
        _need(node.right, BOOL, f"'{node.op}'")
        return BOOL
    if isinstance(node, Quantified):
        _need(node.items, LIST, f"'{node.quantifier} … in'")
        _need(node.options, LIST, f"'{node.quantifier} … in'")
        return BOOL
    left, right = _type(node.left), _type(node.right)
    if node.op in ("in", "not in"):
        if right != LIST:
            raise ExprError(f"'{node.op}' needs a list on its right, not a {right}", node.column)
        if left == LIST:
            raise ExprError(
                f"'{node.op}' compares one value with a list; to test a list against a list "
                "write 'any X in [...]' or 'all X in [...]'",
                node.column,
            )
        return BOOL
    if left != right:
        raise ExprError(f"cannot compare a {left} with a {right} using '{node.op}'", node.column)
    if left in (LIST, BOOL) and node.op not in ("==", "!="):
        raise ExprError(f"'{node.op}' compares numbers or strings, not a {left}", node.column)
    return BOOL


def _need(node: Node, wanted: str, where: str) -> None:
    got = _type(node)
    if got != wanted:
        column = node.column
        raise ExprError(f"{where} needs a {wanted} here, not a {got}", column)


def parse_expression(source: str, resolve: NameResolver) -> Expression:
    """Parse and type-check ``source``; raises :class:`ExprError` with a 1-based column."""
    if not isinstance(source, str):
        raise ExprError("a when: expression must be a string", 1)
    if len(source) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tree = _Parser(source, resolve).parse()
    kind = _type(tree)
    if kind != BOOL:
        raise ExprError(
            f"the expression must be true or false, but it is a {kind} "
            "(compare it with something, e.g. 'faces.count > 0')",
            1,
        )
    return Expression(source, tree)


# -- evaluation ----------------------------------------------------------------------------


def items_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The items a step answered (its task's list: labels, faces, objects, … or an op's crops),
    flattened over per-crop results."""
    if "results" in result and isinstance(result["results"], list):
        out: list[Mapping[str, Any]] = []
        for sub in result["results"]:
            if isinstance(sub, Mapping):
                out.extend(items_of(sub))
        return out
    for key in (*ITEM_KEYS, "crops"):
        value = result.get(key)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, Mapping)]
    return []


def attribute(result: Mapping[str, Any], attr: str) -> Any:
    kind, field, _ = ATTRIBUTES[attr]
    if attr == "count":
        if isinstance(result.get("count"), int):
            return float(result["count"])
        if isinstance(result.get("results"), list):
            return float(len(result["results"]))
        return float(len(items_of(result)))
    values = [item[field] for item in items_of(result) if field is not None and field in item]
    if kind == LIST:
        return [float(v) if isinstance(v, int | float) else v for v in values]
    if attr == "max_score":
        return float(max(values, default=0.0))
    if attr == "min_score":
        return float(min(values, default=0.0))
    if attr == "top_score":
        return float(values[0]) if values else 0.0
    if attr == "text":
        whole = result.get("text")
        return whole if isinstance(whole, str) else "\n".join(str(v) for v in values)
    return str(values[0]) if values else ""


def _eval(node: Node, results: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(node, Literal):
        return list(node.value) if node.type == LIST else node.value
    if isinstance(node, Path):
        return attribute(results[node.step], node.attr)
    if isinstance(node, Call):
        text = str(attribute(results[node.subject.step], "text")).casefold()
        wanted = node.argument.casefold()
        return text.startswith(wanted) if node.method == "startswith" else wanted in text
    if isinstance(node, Not):
        return not _eval(node.operand, results)
    if isinstance(node, Logic):
        left = bool(_eval(node.left, results))
        if node.op == "and":
            return left and bool(_eval(node.right, results))
        return left or bool(_eval(node.right, results))
    if isinstance(node, Quantified):
        items: Sequence[Any] = _eval(node.items, results)
        options = _eval(node.options, results)
        test = any if node.quantifier == "any" else all
        return test(item in options for item in items)
    left, right = _eval(node.left, results), _eval(node.right, results)
    op = node.op
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right
