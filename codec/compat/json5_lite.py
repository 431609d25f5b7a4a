"""A small JSON5 reader, enough for the authors' model configs (which ship as ``*.json5``).

Supported on top of JSON: ``//`` and ``/* */`` comments, trailing commas, single-quoted strings, unquoted
(identifier) keys, ``+``/hex/``.5``/``5.`` numbers, ``Infinity`` and ``NaN``. Not a full implementation of the
spec (no Unicode escapes in identifiers), which the configs we read do not need; anything it cannot parse is a
``ValueError`` naming the line and column, never a silent misread. Written here so that reading one config file does
not add a dependency.
"""

from __future__ import annotations

import math
import re
from typing import Any

_NUMBER = re.compile(r"[+-]?(?:Infinity|NaN|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0"}
_LITERALS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.pos = 0

    def error(self, message: str) -> ValueError:
        line = self.text.count("\n", 0, self.pos) + 1
        col = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        return ValueError(f"{self.where}:{line}:{col}: invalid JSON5: {message}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self) -> None:
        """Skip whitespace and comments."""
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c.isspace() or c == "\ufeff":
                self.pos += 1
            elif self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def value(self) -> Any:
        self.skip()
        c = self.peek()
        if c == "{":
            return self.container("}", is_object=True)
        if c == "[":
            return self.container("]", is_object=False)
        if c and c in "\"'":
            return self.string()
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return self.number(m.group())
        m = _IDENT.match(self.text, self.pos)
        if m and m.group() in _LITERALS:
            self.pos = m.end()
            return _LITERALS[m.group()]
        raise self.error(f"unexpected {c!r}" if c else "unexpected end of input")

    def container(self, close: str, is_object: bool) -> dict | list:
        self.pos += 1  # the opening bracket
        out: dict | list = {} if is_object else []
        while True:
            self.skip()
            if self.peek() == close:  # empty container, or a trailing comma before the close
                self.pos += 1
                return out
            if is_object:
                key = self.key()
                self.skip()
                if self.peek() != ":":
                    raise self.error(f"expected ':' after key {key!r}")
                self.pos += 1
                out[key] = self.value()
            else:
                out.append(self.value())
            self.skip()
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c != close:
                raise self.error(f"expected ',' or {close!r}" + (f", got {c!r}" if c else " before end of input"))

    def key(self) -> str:
        if self.peek() in ("'", '"'):
            return self.string()
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected a key, got {self.peek()!r}" if self.peek() else "unexpected end of input")
        self.pos = m.end()
        return m.group()

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        parts: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.error("unterminated string")
            c = self.text[self.pos]
            self.pos += 1
            if c == quote:
                return "".join(parts)
            if c == "\n":
                raise self.error("newline inside a string")
            if c != "\\":
                parts.append(c)
                continue
            esc = self.peek()
            self.pos += 1
            if esc == "\n":  # line continuation
                continue
            if esc in ("u", "x"):
                width = 4 if esc == "u" else 2
                digits = self.text[self.pos : self.pos + width]
                if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise self.error(f"bad \\{esc} escape")
                parts.append(chr(int(digits, 16)))
                self.pos += width
            else:
                parts.append(_ESCAPES.get(esc, esc))

    @staticmethod
    def number(token: str) -> int | float:
        sign = -1 if token.startswith("-") else 1
        body = token.lstrip("+-")
        if body == "Infinity":
            return sign * math.inf
        if body == "NaN":
            return math.nan
        if body[:2] in ("0x", "0X"):
            return sign * int(body, 16)
        if any(c in body for c in ".eE"):
            return sign * float(body)
        return sign * int(body)


def loads(text: str, where: str = "<json5>") -> Any:
    """Parse JSON5 ``text``; ``where`` (a file name) prefixes error messages.

    Raises:
        ValueError: malformed input, with ``where:line:col``.
    """
    parser = _Parser(text, where)
    result = parser.value()
    parser.skip()
    if parser.pos != len(text):
        raise parser.error("trailing content after the value")
    return result
