"""The small, honest subset of Lucene query syntax the simulators understand.

Enough to tell a client that escapes its input from one that does not:

- a term: any run of characters up to whitespace, where `\\x` stands for a literal x; an
  unescaped `*` or `?` is a wildcard; `-` and `+` are literal inside a term;
- a phrase: `"..."` in which `\\"` and `\\\\` (and any `\\x`) stand for the character;
- `field:term` or `field:"phrase"`;
- `AND`/`&&` binding tighter than `OR`/`||`; side by side clauses are OR'ed (Lucene's default
  operator); parentheses group.

A literal term or phrase matches a value that contains it, a wildcard term one that it
matches whole; both ignore case. So `* OR x` matches everything, while `"* OR x"` or
`\\*\\ OR\\ x` matches only a value holding that text. Syntax outside the subset (NOT, `!`,
a leading `+`/`-`, ranges, boosts, fuzzy and regex queries) and unbalanced syntax raise
QuerySyntaxError, as a real appliance answers a query it cannot parse with an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

# Characters that are syntax when unescaped and that this subset does not support.
_UNSUPPORTED = set("!^~{}[]/")
_TERM_END = set("()\"")


class QuerySyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Match:
    """One term or phrase, optionally limited to a field."""

    field: str | None    # lower case; None searches the default fields
    text: str            # the text with its escapes resolved
    pattern: re.Pattern | None = None   # set for a term with an unescaped * or ?; used instead

    def matches(self, document: Mapping[str, str], default_fields: Sequence[str]) -> bool:
        names = default_fields if self.field is None else (self.field,)
        for name in names:
            value = document.get(name)
            if value is None:
                continue
            if self.pattern is not None:
                if self.pattern.fullmatch(value):
                    return True
            elif self.text and self.text.casefold() in value.casefold():
                return True
        return False


@dataclass(frozen=True)
class Both:
    clauses: tuple

    def matches(self, document, default_fields) -> bool:
        return all(clause.matches(document, default_fields) for clause in self.clauses)


@dataclass(frozen=True)
class Either:
    clauses: tuple

    def matches(self, document, default_fields) -> bool:
        return any(clause.matches(document, default_fields) for clause in self.clauses)


Query = Match | Both | Either
_AND, _OR, _OPEN, _CLOSE = "AND", "OR", "(", ")"


def parse(text: str) -> Query:
    """The query `text` as a tree of Match, Both and Either; QuerySyntaxError if it is not
    in the subset or not well formed."""
    tokens = _tokenize(text)
    if not tokens:
        raise QuerySyntaxError("empty query")
    parser = _Parser(tokens)
    query = parser.either()
    if parser.position < len(tokens):
        raise QuerySyntaxError(f"unexpected {_describe(tokens[parser.position])}")
    return query


def _describe(token) -> str:
    return f"'{token}'" if isinstance(token, str) else "term"


class _Parser:
    """Recursive descent: either := both ((OR)? both)* ; both := primary (AND primary)*."""

    def __init__(self, tokens: list):
        self.tokens = tokens
        self.position = 0

    def _peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self):
        token = self._peek()
        self.position += 1
        return token

    def either(self) -> Query:
        clauses = [self.both()]
        while (token := self._peek()) is not None and token != _CLOSE:
            if token == _OR:
                self._take()
            clauses.append(self.both())
        return clauses[0] if len(clauses) == 1 else Either(tuple(clauses))

    def both(self) -> Query:
        clauses = [self.primary()]
        while self._peek() == _AND:
            self._take()
            clauses.append(self.primary())
        return clauses[0] if len(clauses) == 1 else Both(tuple(clauses))

    def primary(self) -> Query:
        token = self._take()
        if isinstance(token, Match):
            return token
        if token == _OPEN:
            if self._peek() == _CLOSE:
                raise QuerySyntaxError("empty parentheses")
            inner = self.either()
            if self._take() != _CLOSE:
                raise QuerySyntaxError("unbalanced '(': missing ')'")
            return inner
        if token is None:
            raise QuerySyntaxError("query ends where a term was expected")
        raise QuerySyntaxError(f"{_describe(token)} where a term was expected")


def _tokenize(text: str) -> list:
    tokens: list = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif char in "()":
            tokens.append(char)
            position += 1
        elif text.startswith("&&", position) or text.startswith("||", position):
            tokens.append(_AND if char == "&" else _OR)
            position += 2
        elif char == '"':
            phrase, position = _read_phrase(text, position)
            tokens.append(Match(None, phrase))
        else:
            token, position = _read_term(text, position)
            tokens.append(token)
    return tokens


def _read_phrase(text: str, position: int) -> tuple[str, int]:
    """The phrase opening at text[position] ('"'), unescaped, and the position after it."""
    chars = []
    position += 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 == len(text):
                break
            chars.append(text[position + 1])
            position += 2
        elif char == '"':
            return "".join(chars), position + 1
        else:
            chars.append(char)
            position += 1
    raise QuerySyntaxError('unbalanced \'"\': the phrase is never closed')


def _read_term(text: str, position: int):
    """A term (possibly `field:value`), or the operator AND/OR, starting at text[position]."""
    if text[position] in "+-":
        raise QuerySyntaxError(f"'{text[position]}' operator is not supported")
    pieces: list[tuple[str, bool]] = []   # (character, escaped)
    field = None
    while position < len(text):
        char = text[position]
        if char.isspace() or char in _TERM_END or text.startswith(("&&", "||"), position):
            if char == '"' and field is not None and not pieces:
                phrase, position = _read_phrase(text, position)
                return Match(field, phrase), position
            if char == '"':
                raise QuerySyntaxError("'\"' inside a term (escape it as \\\")")
            break
        if char == "\\":
            if position + 1 == len(text):
                raise QuerySyntaxError("the query ends with an unfinished escape '\\'")
            pieces.append((text[position + 1], True))
            position += 2
            continue
        if char in _UNSUPPORTED:
            raise QuerySyntaxError(f"'{char}' is query syntax this server does not support "
                                   f"(escape it as \\{char})")
        if char == ":":
            if field is not None:
                raise QuerySyntaxError("a second ':' in one term (escape it as \\:)")
            if not pieces:
                raise QuerySyntaxError("':' without a field name before it (escape it as \\:)")
            if any(escaped or piece in "*?" for piece, escaped in pieces):
                raise QuerySyntaxError("a field name cannot hold escapes or wildcards")
            field = "".join(piece for piece, _ in pieces).lower()
            pieces = []
            position += 1
            continue
        pieces.append((char, False))
        position += 1
    if not pieces:
        raise QuerySyntaxError(f"nothing after '{field}:'")
    if field is None and not any(escaped for _, escaped in pieces):
        word = "".join(piece for piece, _ in pieces)
        if word in (_AND, _OR):
            return word, position
        if word == "NOT":
            raise QuerySyntaxError("NOT is not supported")
    return _term(field, pieces), position


def _term(field: str | None, pieces: list[tuple[str, bool]]) -> Match:
    text = "".join(piece for piece, _ in pieces)
    if not any(piece in "*?" and not escaped for piece, escaped in pieces):
        return Match(field, text)
    regex = "".join(".*" if (piece == "*" and not escaped) else
                    "." if (piece == "?" and not escaped) else re.escape(piece)
                    for piece, escaped in pieces)
    return Match(field, text, re.compile(regex, re.IGNORECASE | re.DOTALL))
