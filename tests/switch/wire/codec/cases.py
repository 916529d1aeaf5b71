"""Specs, value strategies and outcome comparisons shared by the codec differential tests.

pyiso8583 is the oracle: :func:`oracle_decode` / :func:`oracle_encode` run it through
:class:`switch.wire.codec.PyIsoCodec`, which turns pyiso8583's own DecodeError/EncodeError into ours and any
other exception it lets escape (a KeyError for a field the spec lacks) into field "?". The compiled codec must
take the same decision; where pyiso8583 reports a field (and position) it must report the same one.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import iso8583
from hypothesis import strategies as st
from iso8583 import specs as pyiso_specs

from schemes.generic import SPEC, SPEC_ASCII
from switch.contracts.registry import networks
from switch.model.errors import DecodeError, EncodeError
from switch.wire import compiled
from switch.wire.codec import PyIsoCodec
from switch.wire.compiled import CompiledCodec, compile_codec
from switch.wire.compiled._runs import per_byte_codec
from switch.wire.compiled._spec import FieldFormat, read_spec

NEVER = 10**9


def f(data_enc: str, len_type: int, max_len: int, len_enc: str = "ascii", **extra: str) -> dict[str, Any]:
    return {"data_enc": data_enc, "len_enc": len_enc, "len_type": len_type, "max_len": max_len, **extra}


NIB = {"len_count": "nibbles"}

# BCD and EBCDIC, binary bitmaps up to field 192, every length encoding and width, pads, odd cases. The layout
# follows what public Visa-style packagers do (jPOS base1.xml: BCD numerics with nibble lengths, EBCDIC text),
# plus fields that exist only to reach pyiso8583's corner cases.
BCD_EBCDIC: dict[str, dict[str, Any]] = {
    "h": f("ascii", 0, 0),
    "t": f("b", 0, 2),
    "p": f("b", 0, 8),
    "1": f("b", 0, 8),
    "2": f("b", 1, 19, "b", **NIB, left_pad="0"),
    "3": f("b", 0, 6, **NIB),
    "4": f("b", 0, 12, **NIB),
    "7": f("b", 0, 10, **NIB),
    "11": f("b", 0, 6, **NIB),
    "14": f("b", 0, 4, **NIB),
    "18": f("b", 0, 4, **NIB),
    "22": f("b", 0, 3, **NIB, left_pad="0"),
    "23": f("b", 0, 3, **NIB, right_pad="F"),
    "25": f("b", 0, 2, **NIB),
    "32": f("b", 1, 11, "bcd", **NIB, left_pad="0"),
    "35": f("b", 1, 37, "b", **NIB, right_pad="F"),
    "37": f("cp500", 0, 12),
    "41": f("cp500", 0, 8),
    "42": f("cp500", 0, 15),
    "43": f("cp500", 0, 40),
    "44": f("cp500", 1, 25, "b"),
    "45": f("b", 1, 120, "bcd", **NIB),  # max_len beyond what the prefix can say: 100+ does not fit
    "46": f("b", 1, 300, "b"),
    "47": f("ascii", 1, 20),
    "48": f("cp500", 2, 255, "bcd"),
    "49": f("b", 0, 3, **NIB, left_pad="0"),
    "52": f("b", 0, 8),
    "54": f("ascii", 3, 120),
    "55": f("b", 1, 255, "b"),
    "60": f("b", 1, 12, "b", **NIB),  # no pad: an odd length neither encodes nor decodes
    "61": f("b", 0, 5, **NIB),  # odd fixed length, no pad: never valid
    "62": f("ascii", 2, 30, **NIB),  # text measured in nibbles
    "63": f("ascii", 4, 9999),
    "64": f("b", 0, 8),
    "65": f("b", 0, 8),
    "70": f("b", 0, 3, **NIB, left_pad="0"),
    "90": f("b", 0, 42, **NIB),
    "100": f("b", 1, 11, "bcd", **NIB, left_pad="0"),
    "102": f("cp500", 2, 28, "cp500"),
    "104": f("latin-1", 3, 255, "latin-1"),
    "120": f("utf-8", 3, 255),  # multi-byte text: no one-byte-per-character shortcut
    "121": f("utf-8", 0, 10),
    "122": f("b", 2, 999, "b"),
    "123": f("ascii", 3, 500, "b"),
    "124": f("b", 2, 9999, "bcd"),
    "125": f("ascii", 0, 0),
    "126": f("no-such-codec", 2, 20),  # only an empty value decodes; nothing encodes
    "127": f("ascii", 2, 99, "no-such-codec"),
    "128": f("b", 0, 8),
    "130": f("ascii", 0, 5),
    "150": f("b", 1, 19, "b", **NIB, right_pad="0"),
    "151": f("b", 0, 5, **NIB, left_pad="f"),  # encodes, but the decoder compares with upper-case hex
    "160": f("b", 1, 9, "b", **NIB, left_pad="F", right_pad="0"),  # left wins on encode, both tried on decode
    "192": f("cp500", 0, 3),
}

# Mainframe style: MTI and bitmaps as EBCDIC text (hex digits in cp500), EBCDIC lengths, tertiary bitmap.
EBCDIC_HEX_BITMAPS: dict[str, dict[str, Any]] = {
    "h": f("ascii", 0, 0),
    "t": f("cp500", 0, 4),
    "p": f("cp500", 0, 16),
    "1": f("cp500", 0, 16),
    "2": f("cp500", 2, 19, "cp500"),
    "3": f("cp500", 0, 6),
    "4": f("cp500", 0, 12),
    "11": f("cp500", 0, 6),
    "12": f("cp500", 0, 6),
    "35": f("cp500", 2, 37, "cp500"),
    "39": f("cp500", 0, 2),
    "41": f("cp500", 0, 8),
    "52": f("b", 0, 8),
    "53": f("b", 0, 8),
    "55": f("b", 3, 255, "cp500"),
    "70": f("cp500", 0, 3),
    "100": f("cp500", 2, 11, "cp500"),
    "128": f("b", 0, 8),
    "140": f("cp500", 3, 300, "cp500"),
    "160": f("b", 0, 4),
    "192": f("ascii", 3, 50),
}

# ASCII hex bitmap, a variable-length header, and no secondary bitmap at all: bit 1 is then an error.
_HEADERED = {k: v for k, v in copy.deepcopy(pyiso_specs.default_ascii).items() if k != "1"}
_HEADERED["h"] = f("ascii", 2, 20)
HEADER_NO_SECONDARY: dict[str, dict[str, Any]] = _HEADERED

SPECS: dict[str, Mapping[str, Mapping[str, Any]]] = {
    "generic": SPEC,
    "generic-ascii": SPEC_ASCII,
    "bcd-ebcdic": BCD_EBCDIC,
    "ebcdic-hex-bitmaps": EBCDIC_HEX_BITMAPS,
    "header-no-secondary": HEADER_NO_SECONDARY,
}


def _add_registered_specs() -> None:
    """Every spec a registered scheme ships (built-ins and entry points), unless one above already covers it."""
    for name, adapter in networks().items():
        spec = adapter.codec.spec
        if all(spec != known for known in SPECS.values()):
            SPECS[f"scheme-{name}"] = spec


_add_registered_specs()


@contextmanager
def small_length_tables() -> Iterator[None]:
    """Build codecs whose length tables hold 3 entries, so most lengths take the exact path."""
    saved = compiled._lengths.TABLE_LIMIT
    compiled._lengths.TABLE_LIMIT = 3
    try:
        yield
    finally:
        compiled._lengths.TABLE_LIMIT = saved


def codecs_for(name: str) -> list[CompiledCodec]:
    """Three builds of one spec: plain loop, generated fast path from the first use, tiny length tables."""
    spec = SPECS[name]
    with small_length_tables():
        tiny = compile_codec(name, spec, hot_after=1)
    return [compile_codec(name, spec, hot_after=NEVER), compile_codec(name, spec, hot_after=1), tiny]


# -- outcomes -----------------------------------------------------------------------------------------------
Outcome = tuple[Any, ...]


def oracle_decode(spec: Mapping[str, Mapping[str, Any]], data: bytes) -> Outcome:
    try:
        return ("ok", *PyIsoCodec("oracle", spec).decode(data))
    except DecodeError as exc:
        return ("error", exc.field, exc.position)


def ours_decode(codec: CompiledCodec, data: bytes) -> Outcome:
    try:
        return ("ok", *codec.decode(data))
    except DecodeError as exc:
        return ("error", exc.field, exc.position)


def assert_same_decode(expected: Outcome, got: Outcome) -> None:
    if expected[:2] == ("error", "?"):
        # pyiso8583 raised something other than its DecodeError: only the decision must match.
        assert got[0] == "error", got
    else:
        assert got == expected


def oracle_encode(spec: Mapping[str, Mapping[str, Any]], mti: str, fields: Mapping[int, str]) -> Outcome:
    try:
        return ("ok", PyIsoCodec("oracle", spec).encode(mti, fields))
    except EncodeError as exc:
        return ("error", exc.field)
    except Exception as exc:  # pyiso8583 lets KeyError/TypeError escape for fields the spec lacks
        return ("crash", type(exc).__name__)


def ours_encode(codec: CompiledCodec, mti: str, fields: Mapping[int, str]) -> Outcome:
    try:
        return ("ok", codec.encode(mti, fields))
    except EncodeError as exc:
        return ("error", exc.field)


def assert_same_encode(expected: Outcome, got: Outcome) -> None:
    if expected[0] == "crash":
        assert got[0] == "error", got
    else:
        assert got == expected


def raw_message(spec: Mapping[str, Mapping[str, Any]], mti: str, fields: Mapping[int, str], header: str) -> bytes:
    """Encode with pyiso8583 itself (which, unlike the Codec interface, can carry a header)."""
    doc = {"t": mti, **{str(n): v for n, v in fields.items()}}
    if spec["h"]["max_len"] > 0:
        doc["h"] = header
    return bytes(iso8583.encode(doc, spec)[0])


# -- valid values -------------------------------------------------------------------------------------------
_HEX = "0123456789ABCDEFabcdef"
# Long enough to cross length-table and run boundaries, short enough to keep examples fast.
_CAP = 300


def _encodes(char: str, data_enc: str) -> bool:
    try:
        char.encode(data_enc)
    except UnicodeEncodeError:
        return False
    return True


def _alphabet(data_enc: str) -> st.SearchStrategy[str] | None:
    try:
        name = codecs.lookup(data_enc).name
    except LookupError:
        return None
    if name == "ascii":
        return st.characters(max_codepoint=127)
    if name == "utf-8":
        return st.characters(blacklist_categories=("Cs",))
    if not per_byte_codec(name):
        # A multi-byte codec (GBK: UnionPay's text) carries some characters only: ASCII, and the others it encodes.
        return st.one_of(st.characters(max_codepoint=127),
                         st.characters(min_codepoint=128, max_codepoint=0xFFFF, blacklist_categories=("Cs",))
                         .filter(lambda c: _encodes(c, name)))
    # latin-1 and cp500 both carry every code point below 256.
    return st.characters(max_codepoint=255)


def _fit(text: str, data_enc: str, size: int) -> str:
    """``text`` cut to at most ``size`` bytes in ``data_enc`` (whole characters), padded with spaces to exactly
    ``size``: fixed fields of a multi-byte codec count bytes, not characters."""
    out, used = [], 0
    for char in text:
        width = len(char.encode(data_enc))
        if used + width > size:
            break
        out.append(char)
        used += width
    return "".join(out) + " " * (size - used)


def prefix_limit(fmt: FieldFormat) -> int:
    """The largest length the field's prefix can express (pyiso8583 refuses more, whatever max_len says)."""
    if fmt.len_enc == "b":
        return 256**fmt.len_type - 1
    if fmt.len_enc == "bcd":
        return 10 ** (2 * fmt.len_type) - 1
    return 10**fmt.len_type - 1


def value_strategy(fmt: FieldFormat) -> st.SearchStrategy[str] | None:
    """Values pyiso8583 accepts for this field, or None when there are none worth generating."""
    fixed = fmt.len_type == 0
    if not fixed and fmt.len_enc not in ("b", "bcd") and _alphabet(fmt.len_enc) is None:
        return None  # an unknown length encoding: nothing encodes
    if not fixed:
        fmt = dataclasses.replace(fmt, max_len=min(fmt.max_len, prefix_limit(fmt)))
    if fmt.binary:
        # An odd nibble count round-trips only when the pad the encoder adds (left wins) is one the decoder
        # recognises in its upper-case hex.
        padded = (fmt.left_pad or fmt.right_pad) in tuple("0123456789ABCDEF")
        if fmt.nibbles:
            if fixed and fmt.max_len & 1 and not padded:
                return None
            if fixed:
                return st.text(_HEX, min_size=fmt.max_len, max_size=fmt.max_len)
            values = st.text(_HEX, max_size=min(fmt.max_len, _CAP))
            return values if padded else values.filter(lambda v: len(v) % 2 == 0)
        sizes = st.just(fmt.max_len) if fixed else st.integers(0, min(fmt.max_len, _CAP))
        return sizes.flatmap(lambda n: st.text(_HEX, min_size=2 * n, max_size=2 * n))
    alphabet = _alphabet(fmt.data_enc)
    if alphabet is None:
        return None
    unit = 2 if fmt.nibbles else 1
    if fixed:
        if fmt.max_len % unit:
            return None
        # Fixed lengths count bytes: stay within one byte per character, or (a multi-byte codec other than
        # UTF-8) fit whole characters to the size.
        name = codecs.lookup(fmt.data_enc).name
        size = fmt.max_len // unit
        if name != "utf-8" and not per_byte_codec(name):
            return st.text(alphabet, max_size=size).map(lambda v: _fit(v, name, size))
        chars = st.characters(max_codepoint=127) if name == "utf-8" else alphabet
        return st.text(chars, min_size=size, max_size=size)
    limit = min(fmt.max_len // unit, _CAP)
    return st.text(alphabet, max_size=limit).filter(lambda v: len(v.encode(fmt.data_enc)) * unit <= fmt.max_len)


def mti_strategy(spec: Mapping[str, Mapping[str, Any]]) -> st.SearchStrategy[str]:
    if spec["t"]["data_enc"] == "b":
        return st.text(_HEX, min_size=4, max_size=4)
    return st.text("0123456789", min_size=4, max_size=4)


@st.composite
def messages(draw: st.DrawFn, name: str) -> tuple[str, dict[int, str], str]:
    """A valid (mti, fields, header) for spec ``name``, fields in a random insertion order."""
    spec = SPECS[name]
    layout = read_spec(name, spec)
    strategies = {n: s for n, fmt in layout.fields.items() if (s := value_strategy(fmt)) is not None}
    if layout.secondary_enc is None:
        strategies = {n: s for n, s in strategies.items() if n <= 64}
    numbers = draw(st.lists(st.sampled_from(sorted(strategies)), unique=True, max_size=30))
    fields = {n: draw(strategies[n], label=f"field {n}") for n in numbers}
    header = draw(st.text(st.characters(max_codepoint=127), max_size=20)) if layout.header else ""
    return draw(mti_strategy(spec)), fields, header
