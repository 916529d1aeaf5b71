"""Field types of payShield host commands, and the one engine that reads and writes them.

A command layout is a tuple of field specs. The same tuple drives all four directions (client encodes a
request, server decodes it, server encodes the response, client decodes it), so the two sides cannot drift.
Field notation follows the Thales manuals as quoted in the reference: ``N`` digits, ``H`` hex characters,
``A`` printable text, ``B`` raw bytes. Keys are written in Thales notation: a scheme letter and hex
(``U`` + 32H, ``T`` + 48H, ...), a bare hex key, or ``R``/``S`` followed by a self-delimiting key block.

Sans-I/O: bytes and values in, bytes and values out. Errors carry the command, field and position, never the
field's content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hsm.thales.errors import LocalThalesError, MalformedCommandError
from hsm.thales.profile import Profile

DIGITS = frozenset(b"0123456789")
HEX = frozenset(b"0123456789ABCDEFabcdef")
PRINTABLE = frozenset(range(0x20, 0x7F))

# Key scheme letter -> hex characters that follow it (payShield variant-LMK schemes).
KEY_SCHEME_LENGTHS = {"Z": 16, "U": 32, "X": 32, "T": 48, "Y": 48}
# Key-block prefixes: R = TR-31 key block, S = Thales key block. Both carry their total length in the four
# digits after the version character, so the field delimits itself.
KEY_BLOCK_PREFIXES = frozenset({"R", "S"})


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a condition or a computed length may look at."""

    command: str
    profile: Profile
    values: Mapping[str, Any]
    request: Any = None


Cond = Callable[[Ctx], bool]
Length = int | Callable[[Ctx], int]


class Reader:
    """A cursor over a message body; every failure is a :class:`MalformedCommandError`."""

    __slots__ = ("command", "data", "end", "pos")

    def __init__(self, command: str, data: bytes, pos: int = 0) -> None:
        self.command = command
        self.data = data
        self.pos = pos
        self.end = len(data)

    def fail(self, field: str, reason: str) -> MalformedCommandError:
        return MalformedCommandError(self.command, field, self.pos, reason)

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise self.fail(field, f"needs {n} bytes, {self.end - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def startswith(self, prefix: bytes) -> bool:
        return self.data.startswith(prefix, self.pos, self.end)

    def index(self, delimiter: bytes, field: str, limit: int) -> int:
        at = self.data.find(delimiter, self.pos, min(self.end, self.pos + limit + 1))
        if at < 0:
            raise self.fail(field, f"no {delimiter!r} within {limit} bytes")
        return at

    @property
    def remaining(self) -> int:
        return self.end - self.pos


def _length(length: Length, ctx: Ctx) -> int:
    return length(ctx) if callable(length) else length


def _check_chars(value: bytes, allowed: frozenset[int]) -> bool:
    return all(b in allowed for b in value)


class Spec:
    """One field. ``when`` decides presence from the values before it (both directions)."""

    name: str = ""
    public: bool = False
    when: Cond | None = None

    def present(self, ctx: Ctx, reader: Reader | None) -> bool:
        return self.when is None or self.when(ctx)

    def read(self, r: Reader, ctx: Ctx) -> Any:
        raise NotImplementedError

    def write(self, value: Any, ctx: Ctx) -> bytes:
        raise NotImplementedError

    def local_error(self, ctx: Ctx, reason: str) -> LocalThalesError:
        return LocalThalesError(ctx.command, self.name, reason)


class Chars(Spec):
    """A fixed-length text field of digits (N), hex (H) or printable characters (A); the value is ``str``."""

    def __init__(self, name: str, length: Length, allowed: frozenset[int], *, when: Cond | None = None,
                 public: bool = False) -> None:
        self.name, self.length, self.allowed, self.when, self.public = name, length, allowed, when, public

    def read(self, r: Reader, ctx: Ctx) -> str:
        start = r.pos
        raw = r.take(_length(self.length, ctx), self.name)
        if not _check_chars(raw, self.allowed):
            r.pos = start
            raise r.fail(self.name, "invalid character")
        text = raw.decode("ascii")
        return text.upper() if self.allowed is HEX else text

    def write(self, value: Any, ctx: Ctx) -> bytes:
        n = _length(self.length, ctx)
        if not isinstance(value, str) or len(value) != n:
            raise self.local_error(ctx, f"must be a string of {n} characters")
        raw = value.encode("ascii", "replace")
        if not _check_chars(raw, self.allowed):
            raise self.local_error(ctx, "invalid character")
        return raw


def digits(name: str, length: Length, *, when: Cond | None = None, public: bool = False) -> Chars:
    return Chars(name, length, DIGITS, when=when, public=public)


def hexchars(name: str, length: Length, *, when: Cond | None = None, public: bool = False) -> Chars:
    return Chars(name, length, HEX, when=when, public=public)


def text(name: str, length: Length, *, when: Cond | None = None, public: bool = False) -> Chars:
    return Chars(name, length, PRINTABLE, when=when, public=public)


class Number(Spec):
    """An unsigned integer written with a fixed number of decimal (or hex) digits; the value is ``int``."""

    public = True

    def __init__(self, name: str, width: Length, *, radix: int = 10, when: Cond | None = None) -> None:
        self.name, self.width, self.radix, self.when = name, width, radix, when

    def read(self, r: Reader, ctx: Ctx) -> int:
        start = r.pos
        raw = r.take(_length(self.width, ctx), self.name)
        if not _check_chars(raw, DIGITS if self.radix == 10 else HEX):
            r.pos = start
            raise r.fail(self.name, "invalid character")
        return int(raw, self.radix)

    def write(self, value: Any, ctx: Ctx) -> bytes:
        width = _length(self.width, ctx)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self.radix ** width:
            raise self.local_error(ctx, f"must be an integer that fits {width} digits")
        return (f"{value:0{width}d}" if self.radix == 10 else f"{value:0{width}X}").encode("ascii")


class Binary(Spec):
    """A fixed number of raw bytes (B); the value is ``bytes``."""

    def __init__(self, name: str, length: Length, *, when: Cond | None = None) -> None:
        self.name, self.length, self.when = name, length, when

    def read(self, r: Reader, ctx: Ctx) -> bytes:
        return r.take(_length(self.length, ctx), self.name)

    def write(self, value: Any, ctx: Ctx) -> bytes:
        n = _length(self.length, ctx)
        if not isinstance(value, bytes) or len(value) != n:
            raise self.local_error(ctx, f"must be {n} bytes")
        return value


class Literal(Spec):
    """A constant delimiter such as ``;``. Carries no value."""

    public = True

    def __init__(self, text_: str, *, when: Cond | None = None) -> None:
        self.raw = text_.encode("ascii")
        self.name = f"delimiter {text_!r}"
        self.when = when

    def read(self, r: Reader, ctx: Ctx) -> None:
        if not r.startswith(self.raw):
            raise r.fail(self.name, "missing")
        r.pos += len(self.raw)

    def write(self, value: Any, ctx: Ctx) -> bytes:
        return self.raw


class Key(Spec):
    """A key in Thales notation: scheme letter + hex, ``R``/``S`` + key block, or bare hex of ``plain`` chars."""

    def __init__(self, name: str, *, plain: Length = 16, when: Cond | None = None) -> None:
        self.name, self.plain, self.when = name, plain, when

    def read(self, r: Reader, ctx: Ctx) -> str:
        start = r.pos
        raw = r.take(self._size(r, ctx), self.name)
        value = raw.decode("ascii", "replace")
        if not _valid_key(value):
            r.pos = start
            raise r.fail(self.name, "not a key in Thales notation")
        return value if value[0] in KEY_BLOCK_PREFIXES else value.upper()

    def _size(self, r: Reader, ctx: Ctx) -> int:
        first = r.data[r.pos:r.pos + 1].decode("ascii", "replace")
        if first in KEY_SCHEME_LENGTHS:
            return 1 + KEY_SCHEME_LENGTHS[first]
        if first in KEY_BLOCK_PREFIXES:
            declared = r.data[r.pos + 2:r.pos + 6]
            if len(declared) != 4 or not _check_chars(declared, DIGITS):
                raise r.fail(self.name, "key block length is not 4 digits")
            return 1 + int(declared)
        return _length(self.plain, ctx)

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if not isinstance(value, str) or not _valid_key(value):
            raise self.local_error(ctx, "not a key in Thales notation")
        if value[0] not in KEY_SCHEME_LENGTHS and value[0] not in KEY_BLOCK_PREFIXES \
                and len(value) != _length(self.plain, ctx):
            raise self.local_error(ctx, f"a key without scheme letter must be {_length(self.plain, ctx)}H")
        return value.encode("ascii")


def _valid_key(value: str) -> bool:
    """Shape check only: the scheme letter's length, or a key block whose declared length matches."""
    if not value or not value.isascii():
        return False
    first, body = value[0], value[1:]
    if first in KEY_SCHEME_LENGTHS:
        return len(body) == KEY_SCHEME_LENGTHS[first] and _is_hex(body)
    if first in KEY_BLOCK_PREFIXES:
        return len(body) >= 16 and body[1:5].isdigit() and int(body[1:5]) == len(body) and body.isalnum()
    return len(value) in (16, 32, 48) and _is_hex(value)


def _is_hex(value: str) -> bool:
    return all(c in "0123456789ABCDEFabcdef" for c in value)


class Keys(Spec):
    """As many keys in a row as an earlier numeric field (``count``) says; the value is a tuple of ``str``."""

    def __init__(self, name: str, count: str, *, plain: Length = 32) -> None:
        self.name, self.count, self.plain = name, count, plain

    def read(self, r: Reader, ctx: Ctx) -> tuple[str, ...]:
        key = Key(self.name, plain=self.plain)
        return tuple(key.read(r, ctx) for _ in range(int(ctx.values[self.count])))

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if not isinstance(value, (tuple, list)) or len(value) != ctx.values.get(self.count):
            raise self.local_error(ctx, f"must be as many keys as {self.count}")
        key = Key(self.name, plain=self.plain)
        return b"".join(key.write(v, ctx) for v in value)


class LengthPrefixed(Spec):
    """Data preceded by its length in bytes (``width`` digits, hex by default). Value ``bytes``; or ``str``
    when ``allowed`` restricts the characters (e.g. a PAN with a 2N length)."""

    def __init__(self, name: str, width: int, *, radix: int = 16, when: Cond | None = None,
                 allowed: frozenset[int] | None = None) -> None:
        self.name, self.width, self.radix, self.when, self.allowed = name, width, radix, when, allowed
        self._length = Number(f"{name} length", width, radix=radix)

    def read(self, r: Reader, ctx: Ctx) -> bytes | str:
        length = self._length.read(r, ctx)
        start = r.pos
        raw = r.take(length, self.name)
        if self.allowed is None:
            return raw
        if not raw or not _check_chars(raw, self.allowed):
            r.pos = start
            raise r.fail(self.name, "empty or invalid character")
        return raw.decode("ascii")

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if self.allowed is None:
            if not isinstance(value, bytes):
                raise self.local_error(ctx, "must be bytes")
            raw = value
        else:
            raw = value.encode("ascii", "replace") if isinstance(value, str) else b""
            if not raw or not _check_chars(raw, self.allowed):
                raise self.local_error(ctx, "empty or invalid character")
        return self._length.write(len(raw), ctx) + raw


class UpTo(Spec):
    """Characters up to (not including) a delimiter, at most ``limit`` of them; value ``str``."""

    def __init__(self, name: str, delimiter: str, limit: int, allowed: frozenset[int] = DIGITS) -> None:
        self.name, self.delimiter, self.limit, self.allowed = name, delimiter.encode("ascii"), limit, allowed

    def read(self, r: Reader, ctx: Ctx) -> str:
        at = r.index(self.delimiter, self.name, self.limit)
        start = r.pos
        raw = r.take(at - r.pos, self.name)
        if not raw or not _check_chars(raw, self.allowed):
            r.pos = start
            raise r.fail(self.name, "empty or invalid character")
        return raw.decode("ascii")

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if not isinstance(value, str) or not 0 < len(value) <= self.limit:
            raise self.local_error(ctx, f"must be 1 to {self.limit} characters")
        raw = value.encode("ascii", "replace")
        if not _check_chars(raw, self.allowed):
            raise self.local_error(ctx, "invalid character")
        return raw


class Rest(Spec):
    """Everything up to the end of the message (or up to the trailer's X'19'); value ``bytes``."""

    def __init__(self, name: str, *, stop_at_trailer: bool = True) -> None:
        self.name, self.stop_at_trailer = name, stop_at_trailer

    def read(self, r: Reader, ctx: Ctx) -> bytes:
        end = r.end
        if self.stop_at_trailer:
            at = r.data.find(TRAILER_MARK, r.pos, r.end)
            end = at if at >= 0 else r.end
        return r.take(end - r.pos, self.name)

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if not isinstance(value, bytes) or (self.stop_at_trailer and TRAILER_MARK in value):
            raise self.local_error(ctx, "must be bytes without X'19'")
        return value


class HexChoice(Spec):
    """A hex field whose length is one of several (``lengths``, in order of preference): the first length with
    which the fields after it (``tail``) read exactly to the end of the command's fields is taken. A request that
    fits none is read with the first length, so its error names the field that does not fit. Written as given,
    when its length is one of the allowed ones."""

    def __init__(self, name: str, lengths: Callable[[Ctx], Sequence[int]], tail: Sequence[Spec], *,
                 public: bool = False) -> None:
        self.name, self.lengths, self.tail, self.public = name, lengths, tuple(tail), public

    def read(self, r: Reader, ctx: Ctx) -> str:
        candidates = list(dict.fromkeys(self.lengths(ctx)))
        end = _fields_end(r)
        chosen = candidates[0]
        for n in candidates:
            trial = Reader(r.command, r.data, r.pos + n)
            trial.end = end
            try:
                _read_into(self.tail, trial, Ctx(ctx.command, ctx.profile, dict(ctx.values), ctx.request),
                           dict(ctx.values))
            except MalformedCommandError:
                continue
            if trial.pos == end:
                chosen = n
                break
        return Chars(self.name, chosen, HEX).read(r, ctx)

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if not isinstance(value, str) or len(value) not in self.lengths(ctx):
            raise self.local_error(ctx, f"must be {' or '.join(map(str, self.lengths(ctx)))} hex characters")
        return Chars(self.name, len(value), HEX).write(value, ctx)


class Tail(Spec):
    """All but the last ``keep`` characters before the end of the fields (e.g. a PIN under the LMK whose
    length is the PIN length plus one); value ``str`` of ``allowed`` characters."""

    def __init__(self, name: str, keep: int, allowed: frozenset[int] = DIGITS) -> None:
        self.name, self.keep, self.allowed = name, keep, allowed

    def read(self, r: Reader, ctx: Ctx) -> str:
        end = _fields_end(r)
        start = r.pos
        raw = r.take(end - self.keep - r.pos, self.name)
        if not raw or not _check_chars(raw, self.allowed):
            r.pos = start
            raise r.fail(self.name, "empty or invalid character")
        return raw.decode("ascii")

    def write(self, value: Any, ctx: Ctx) -> bytes:
        raw = value.encode("ascii", "replace") if isinstance(value, str) else b""
        if not raw or not _check_chars(raw, self.allowed):
            raise self.local_error(ctx, "empty or invalid character")
        return raw


class IfNext(Spec):
    """An optional group introduced by a marker (e.g. ``;``): read when the marker is next, written when the
    value named ``key`` (default: the group's first field) is not ``None``. The marker is part of the group.
    ``when`` (if given) must also hold, in both directions."""

    public = True

    def __init__(self, marker: str, fields: Sequence[Spec], *, key: str | None = None,
                 when: Cond | None = None) -> None:
        self.marker = marker.encode("ascii")
        self.fields = tuple(fields)
        self.key = key or self.fields[0].name
        self.name = f"group {marker!r}"
        self.when = when

    def present(self, ctx: Ctx, reader: Reader | None) -> bool:
        if self.when is not None and not self.when(ctx):
            return False
        if reader is not None:
            return reader.startswith(self.marker)
        return ctx.values.get(self.key) is not None


TRAILER_MARK = b"\x19"
LMK_MARK = b"%"


def _fields_end(r: Reader) -> int:
    """Where the command's own fields stop: before ``%`` + 2N LMK id and/or X'19' + trailer, if present."""
    end = r.end
    at = r.data.rfind(TRAILER_MARK, r.pos, end)
    if at >= 0 and end - at - 1 <= 32:
        end = at
    if end - r.pos >= 3 and r.data[end - 3:end - 2] == LMK_MARK and _check_chars(r.data[end - 2:end], DIGITS):
        end -= 3
    return end


Layout = tuple[Spec, ...]


def flat(layout: Layout) -> list[Spec]:
    """Every value-carrying spec of a layout, groups expanded (used for names and masking)."""
    out: list[Spec] = []
    for spec in layout:
        out.extend(flat(spec.fields) if isinstance(spec, IfNext) else [spec])
    return out


def read_layout(layout: Layout, r: Reader, ctx: Ctx) -> dict[str, Any]:
    """Decode ``layout`` from ``r`` into a dict of field values (absent optional fields are ``None``)."""
    values: dict[str, Any] = {spec.name: None for spec in flat(layout) if not isinstance(spec, Literal)}
    ctx = Ctx(ctx.command, ctx.profile, values, ctx.request)
    _read_into(layout, r, ctx, values)
    return values


def _read_into(layout: Layout, r: Reader, ctx: Ctx, values: dict[str, Any]) -> None:
    for spec in layout:
        if not spec.present(ctx, r):
            continue
        if isinstance(spec, IfNext):
            r.pos += len(spec.marker)
            _read_into(spec.fields, r, ctx, values)
            continue
        value = spec.read(r, ctx)
        if not isinstance(spec, Literal):
            values[spec.name] = value


def write_layout(layout: Layout, values: Mapping[str, Any], ctx: Ctx) -> bytes:
    """Encode ``values`` with ``layout``; a missing or ill-shaped value is a :class:`LocalThalesError`."""
    ctx = Ctx(ctx.command, ctx.profile, values, ctx.request)
    out = bytearray()
    for spec in layout:
        if not spec.present(ctx, None):
            continue
        if isinstance(spec, IfNext):
            out += spec.marker + write_layout(spec.fields, values, ctx)
            continue
        value = None if isinstance(spec, Literal) else values.get(spec.name)
        if value is None and not isinstance(spec, Literal):
            raise spec.local_error(ctx, "missing")
        out += spec.write(value, ctx)
    return bytes(out)
