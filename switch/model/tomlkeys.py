"""Line numbers for TOML keys, which :mod:`tomllib` does not report.

tomllib parses and validates the syntax; this module then walks the same (known valid) text once with a small
tokenizer and records the line of every key, table header and array element, keyed by its path:
``("routes", 2, "bins", 1)`` is the second element of ``bins`` in the third ``[[routes]]`` table. The n-th
``[[routes]]`` header is ``routes[n]`` exactly as tomllib numbers the array of tables (TOML 1.0, "Array of
Tables"). It is a best effort: a construct it does not follow ends the walk early, and lookups then fall back
to the nearest enclosing path that was seen.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

Path = tuple[str | int, ...]

_TOKEN = re.compile(
    r"""
    (?P<nl>\n)
  | (?P<ws>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>
        \"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"\"{0,2}   # multi-line basic; up to two quotes may end the content
      | '''[\s\S]*?''''{0,2}                       # multi-line literal
      | "(?:\\.|[^"\\\n])*"                         # basic
      | '[^'\n]*'                                   # literal
    )
  | (?P<punct>[\[\]{}=,.])
  | (?P<word>[A-Za-z0-9_+\-:]+)
  | (?P<other>.)
    """,
    re.VERBOSE,
)


class _Token(NamedTuple):
    kind: str
    text: str
    line: int
    pos: int


_EOF = _Token("eof", "", 0, -1)


def _tokens(text: str) -> Iterator[_Token]:
    line = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        value = m.group()
        if kind != "ws":
            yield _Token(kind, value, line, m.start())
        line += value.count("\n")


class _Walker:
    """Recursive descent over the token stream, recording the line where each path starts."""

    def __init__(self, text: str) -> None:
        self.toks = list(_tokens(text))
        self.i = 0
        self.lines: dict[Path, int] = {}
        self.aot_index: dict[Path, int] = {}  # resolved array-of-tables path -> index of its current table

    def peek(self) -> _Token:
        return self.toks[self.i] if self.i < len(self.toks) else _EOF

    def take(self) -> _Token:
        tok = self.peek()
        self.i += 1
        return tok

    def skip_blank(self) -> None:
        while self.peek().kind in ("nl", "comment"):
            self.i += 1

    def record(self, path: Path, line: int) -> None:
        self.lines.setdefault(path, line)

    def run(self) -> None:
        table: Path = ()
        while True:
            self.skip_blank()
            tok = self.peek()
            if tok.kind == "eof":
                return
            if tok.text == "[":
                table = self.header()
            else:
                self.keyval(table)

    def header(self) -> Path:
        start = self.take()
        nxt = self.peek()
        is_array = nxt.text == "[" and nxt.pos == start.pos + 1
        if is_array:
            self.take()
        parts = self.key_parts("]")
        self.take()
        if is_array:
            self.take()
        path: Path = ()
        for n, part in enumerate(parts, 1):  # a header names tables inside the current element of arrays
            path += (part,)
            if path in self.aot_index and (n < len(parts) or not is_array):
                path += (self.aot_index[path],)
        if is_array:
            index = self.aot_index.get(path, -1) + 1
            self.aot_index[path] = index
            path += (index,)
        self.record(path, start.line)
        return path

    def key_parts(self, end: str) -> list[str]:
        parts: list[str] = []
        while (tok := self.peek()).text != end and tok.kind != "eof":
            self.take()
            if tok.kind == "word":
                parts.append(tok.text)
            elif tok.kind == "string":
                parts.append(str(tomllib.loads(f"k = {tok.text}")["k"]))
        return parts

    def keyval(self, table: Path) -> None:
        line = self.peek().line
        path = table + tuple(self.key_parts("="))
        self.take()
        self.record(path, line)
        self.value(path)

    def value(self, path: Path) -> None:
        tok = self.take()
        if tok.text == "[":
            self.array(path)
        elif tok.text == "{":
            self.inline_table(path)
        elif tok.kind == "word":  # numbers, booleans, dates (a date and a time may be two words)
            while self.peek().kind == "word" or self.peek().text == ".":
                self.take()

    def array(self, path: Path) -> None:
        index = 0
        while True:
            self.skip_blank()
            tok = self.peek()
            if tok.text == "]" or tok.kind == "eof":
                self.take()
                return
            self.record((*path, index), tok.line)
            self.value((*path, index))
            self.skip_blank()
            if self.peek().text == ",":
                self.take()
            index += 1

    def inline_table(self, path: Path) -> None:
        while True:
            tok = self.peek()
            if tok.text == "}" or tok.kind == "eof":
                self.take()
                return
            if tok.text == ",":
                self.take()
                continue
            self.keyval(path)


@dataclass(frozen=True, slots=True)
class KeyLines:
    """Line lookup for paths in one TOML text."""

    lines: Mapping[Path, int]

    def line(self, path: Path) -> int | None:
        """The line of ``path``, or of the nearest enclosing path found (None when nothing encloses it)."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None


def locate_keys(text: str) -> KeyLines:
    """Index the lines of every key, table header and array element in ``text`` (valid TOML)."""
    walker = _Walker(text)
    # Defensive: the text is valid TOML, but should the walk not follow it, keep what was found so far.
    with contextlib.suppress(IndexError, tomllib.TOMLDecodeError):
        walker.run()
    return KeyLines(walker.lines)


_PART = re.compile(r'\.?(?:"((?:\\.|[^"\\])*)"|([A-Za-z0-9_-]+))|\[(\d+)\]')


def undotted(key: str) -> Path | None:
    """The inverse of :func:`dotted`: ``listeners[0].port`` -> ``("listeners", 0, "port")``; None when ``key``
    is not in that form."""
    path: list[str | int] = []
    pos = 0
    while pos < len(key):
        found = _PART.match(key, pos)
        if found is None or found.end() == pos:
            return None
        quoted, bare, index = found.groups()
        path.append(int(index) if index is not None else bare if bare is not None else quoted)
        pos = found.end()
    return tuple(path) or None


def dotted(path: Path) -> str:
    """``("routes", 2, "bins", 1)`` -> ``routes[2].bins[1]``; keys that are not bare are quoted."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out.append(f".{text}" if out else text)
    return "".join(out)
