"""The queue's query language: a small Kibana-like language compiled on the server.

    user.name:root and not source.ip:10.0.0.0/8
    rule.level:(high or critical) and host.name:web*
    @timestamp >= now-24h and destination.port < 1024
    "sudo" or alert.assignee:*

Grammar (``and`` binds tighter than ``or``; two terms side by side mean ``and``)::

    query   := or
    or      := and ("or" and)*
    and     := unary (["and"] unary)*
    unary   := "not" unary | primary
    primary := "(" or ")" | FIELD ":" values | FIELD OP VALUE | VALUE
    values  := VALUE | "(" VALUE ("or" VALUE)* ")"

A value is a bare word or a "quoted string" (backslash escapes ``\"`` and ``\\``). On text
fields a bare ``*`` or ``?`` is a wildcard (``host.name:web*``), ``field:*`` means "has the
field"; IP fields take addresses and CIDR ranges; ``>``, ``>=``, ``<``, ``<=`` compare
numbers, times (ISO 8601 or ``now-15m``, ``now-24h``, ``now-7d``) and addresses. A value
without a field searches the alert's name, host, user, URL and command line, ignoring case.

Only fields of ``FIELDS`` may be named (anything else is an error naming it), the result is
Elasticsearch query DSL that console/scope.py places beside the agency filter, and the work is
linear in the input: one pass to cut tokens, one recursive-descent pass over them with bounded
depth, and an input of at most ``MAX_CHARS`` characters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

MAX_CHARS = 1024
MAX_DEPTH = 24
MAX_TOKENS = 256


class Kind(Enum):
    KEYWORD = "keyword"
    IP = "ip"
    NUMBER = "number"
    DATE = "date"


#: The fields a query may name, with their type in the alerts index.
FIELDS: dict[str, Kind] = {
    "@timestamp": Kind.DATE,
    "alert.detected": Kind.DATE,
    "alert.first_seen": Kind.DATE,
    "alert.last_seen": Kind.DATE,
    "alert.updated": Kind.DATE,
    "alert.id": Kind.KEYWORD,
    "alert.status": Kind.KEYWORD,
    "alert.resolution": Kind.KEYWORD,
    "alert.assignee": Kind.KEYWORD,
    "alert.updated_by": Kind.KEYWORD,
    "rule.id": Kind.KEYWORD,
    "rule.name": Kind.KEYWORD,
    "rule.level": Kind.KEYWORD,
    "rule.ruleset": Kind.KEYWORD,
    "event.severity": Kind.NUMBER,
    "tags": Kind.KEYWORD,
    "threat.technique.id": Kind.KEYWORD,
    "threat.tactic.name": Kind.KEYWORD,
    "organization.id": Kind.KEYWORD,
    "host.name": Kind.KEYWORD,
    "user.name": Kind.KEYWORD,
    "user.target.name": Kind.KEYWORD,
    "source.ip": Kind.IP,
    "source.domain": Kind.KEYWORD,
    "destination.ip": Kind.IP,
    "destination.port": Kind.NUMBER,
    "url.original": Kind.KEYWORD,
    "url.domain": Kind.KEYWORD,
    "process.executable": Kind.KEYWORD,
    "process.command_line": Kind.KEYWORD,
    "file.path": Kind.KEYWORD,
    "dns.question.name": Kind.KEYWORD,
    "registry.path": Kind.KEYWORD,
    "correlation.type": Kind.KEYWORD,
    "anomaly.model": Kind.KEYWORD,
}
#: What a value without a field is looked for in.
FREE_TEXT_FIELDS = (
    "rule.name",
    "host.name",
    "user.name",
    "url.original",
    "process.command_line",
)
_FIELD_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@]*")
_RELATIVE_TIME = re.compile(r"now(?:-[0-9]{1,6}[smhdw])?")
_NUMBER = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,18})?")
_RANGE_NAMES = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_WORD_STOP = frozenset(' \t\r\n()"<>')
_KEYWORDS = {"and", "or", "not"}


class QueryError(ValueError):
    """A query that cannot be compiled; ``position`` is where in the text (0-based)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: str  # "(" ")" "op" "word" "string" "and" "or" "not"
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_CHARS:
        raise QueryError(f"the query is longer than {MAX_CHARS} characters", MAX_CHARS)
    tokens: list[Token] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        start = index
        if char in " \t\r\n":
            index += 1
            continue
        if char in "()":
            tokens.append(Token(char, char, start))
            index += 1
        elif char in "<>":
            index += 1
            if index < length and text[index] == "=":
                index += 1
            tokens.append(Token("op", text[start:index], start))
        elif char == '"':
            index += 1
            chars: list[str] = []
            while True:
                if index >= length:
                    raise QueryError("a quoted value is not closed", start)
                current = text[index]
                if current == "\\":
                    if index + 1 >= length or text[index + 1] not in '"\\':
                        raise QueryError('only \\" and \\\\ may follow a backslash', index)
                    chars.append(text[index + 1])
                    index += 2
                elif current == '"':
                    index += 1
                    break
                else:
                    chars.append(current)
                    index += 1
            tokens.append(Token("string", "".join(chars), start))
        elif char == "=":
            raise QueryError("use ':' to match a field, not '='", start)
        else:
            while index < length and text[index] not in _WORD_STOP:
                index += 1
            word = text[start:index]
            lowered = word.lower()
            tokens.append(Token(lowered if lowered in _KEYWORDS else "word", word, start))
        if len(tokens) > MAX_TOKENS:
            raise QueryError(f"the query has more than {MAX_TOKENS} terms", start)
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.end = len(text)

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError("the query ends too early", self.end)
        self.index += 1
        return token

    def expect(self, kind: str, what: str) -> Token:
        token = self.take()
        if token.kind != kind:
            raise QueryError(f"expected {what}, found {token.text!r}", token.position)
        return token

    def parse(self) -> dict[str, Any]:
        if not self.tokens:
            return {"match_all": {}}
        query = self.parse_or(0)
        token = self.peek()
        if token is not None:
            raise QueryError(f"unexpected {token.text!r}", token.position)
        return query

    def parse_or(self, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            token = self.peek()
            raise QueryError("the query nests too deeply", token.position if token else self.end)
        parts = [self.parse_and(depth)]
        while (token := self.peek()) is not None and token.kind == "or":
            self.index += 1
            parts.append(self.parse_and(depth))
        return (
            parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}
        )

    def parse_and(self, depth: int) -> dict[str, Any]:
        parts = [self.parse_unary(depth)]
        while (token := self.peek()) is not None and token.kind not in ("or", ")"):
            if token.kind == "and":
                self.index += 1
            parts.append(self.parse_unary(depth))
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def parse_unary(self, depth: int) -> dict[str, Any]:
        token = self.take()
        if token.kind == "not":
            if depth > MAX_DEPTH:
                raise QueryError("the query nests too deeply", token.position)
            return {"bool": {"must_not": [self.parse_unary(depth + 1)]}}
        if token.kind == "(":
            inner = self.parse_or(depth + 1)
            self.expect(")", "')'")
            return inner
        if token.kind == "string":
            return _free_text(token.text)
        if token.kind != "word":
            raise QueryError(f"unexpected {token.text!r}", token.position)
        name, colon, rest = token.text.partition(":")
        following = self.peek()
        if colon and _FIELD_NAME.fullmatch(name):
            kind = _field_kind(name, token.position)
            if rest:
                return _match(name, kind, rest, False, token.position)
            return self.parse_values(name, kind, token.position)
        if following is not None and following.kind == "op":
            if not _FIELD_NAME.fullmatch(token.text):
                raise QueryError(f"{token.text!r} is not a field name", token.position)
            kind = _field_kind(token.text, token.position)
            operator = self.take()
            value = self.take()
            if value.kind not in ("word", "string"):
                raise QueryError(f"expected a value after {operator.text}", value.position)
            return _compare(token.text, kind, operator.text, value.text, value.position)
        return _free_text(token.text)

    def parse_values(self, name: str, kind: Kind, position: int) -> dict[str, Any]:
        token = self.take()
        if token.kind in ("word", "string"):
            return _match(name, kind, token.text, token.kind == "string", token.position)
        if token.kind != "(":
            raise QueryError(f"expected a value for {name}", token.position)
        values = []
        while True:
            value = self.take()
            if value.kind not in ("word", "string"):
                raise QueryError(f"expected a value for {name}", value.position)
            values.append(_match(name, kind, value.text, value.kind == "string", value.position))
            closing = self.take()
            if closing.kind == ")":
                break
            if closing.kind != "or":
                raise QueryError("expected 'or' or ')' between values", closing.position)
        if len(values) == 1:
            return values[0]
        return {"bool": {"should": values, "minimum_should_match": 1}}


def _field_kind(name: str, position: int) -> Kind:
    kind = FIELDS.get(name)
    if kind is None:
        raise QueryError(f"unknown field {name!r} (see the list of fields)", position)
    return kind


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _match(name: str, kind: Kind, value: str, quoted: bool, position: int) -> dict[str, Any]:
    if value == "*" and not quoted:
        return {"exists": {"field": name}}
    if kind is Kind.KEYWORD:
        if not quoted and _has_wildcard(value):
            escaped = value.replace("\\", "\\\\")
            return {"wildcard": {name: {"value": escaped}}}
        return {"term": {name: value}}
    if kind is Kind.IP:
        return {"term": {name: _ip(value, position, allow_network=True)}}
    if kind is Kind.NUMBER:
        return {"term": {name: _number(value, position)}}
    raise QueryError(f"{name} is a time: compare it with >, >=, <, <=", position)


def _compare(name: str, kind: Kind, operator: str, value: str, position: int) -> dict[str, Any]:
    bound: Any
    if kind is Kind.KEYWORD:
        raise QueryError(f"{name} is text: {operator} compares numbers, times and IPs", position)
    if kind is Kind.IP:
        bound = _ip(value, position, allow_network=False)
    elif kind is Kind.NUMBER:
        bound = _number(value, position)
    else:
        bound = _time(value, position)
    return {"range": {name: {_RANGE_NAMES[operator]: bound}}}


def _ip(value: str, position: int, allow_network: bool) -> str:
    try:
        if "/" in value:
            if not allow_network:
                raise ValueError
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError:
        what = "an IP address or CIDR range" if allow_network else "an IP address"
        raise QueryError(f"{value!r:.80} is not {what}", position) from None


def _number(value: str, position: int) -> int | float:
    if not _NUMBER.fullmatch(value):
        raise QueryError(f"{value!r:.80} is not a number", position)
    return float(value) if "." in value else int(value)


def _time(value: str, position: int) -> str:
    if _RELATIVE_TIME.fullmatch(value):
        return value
    try:
        parsed = datetime.fromisoformat(value) if len(value) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise QueryError(
            f"{value!r:.80} is not a time (ISO 8601 like 2026-03-03T10:00:00Z, or now-24h)",
            position,
        )
    return value


def _free_text(value: str) -> dict[str, Any]:
    escaped = value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    return {
        "bool": {
            "should": [
                {"wildcard": {name: {"value": f"*{escaped}*", "case_insensitive": True}}}
                for name in FREE_TEXT_FIELDS
            ],
            "minimum_should_match": 1,
        }
    }


def compile_query(text: str) -> dict[str, Any]:
    """Elasticsearch query DSL for ``text``; QueryError names the problem and its place."""
    return _Parser(text).parse()
