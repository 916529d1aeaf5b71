"""Runs of consecutive fixed-length fields, decoded with one slice.

ISO 8583 messages put many fixed fields side by side (3, 4, 7, 11, 12, 13 ... in a 0200). A run checks the
length of all of them at once and decodes them in one call, then cuts the values apart. That is exact only
when a value's characters map one to one onto its bytes: upper-case hex of raw bytes, or text in a
single-byte, stateless codec (ASCII and the 256-entry charmap codecs such as latin-1 or cp500 EBCDIC), where
decoding the whole run fails exactly when decoding one of its fields fails. When the run is short or does not
decode, the fields' own steps run one by one and raise pyiso8583's error at the right field and position.
"""

from __future__ import annotations

import codecs
import importlib
import operator
from collections.abc import Mapping
from functools import cache

from switch.wire.compiled._fields import EncodeStep, Step, a2b_hex
from switch.wire.compiled._spec import FieldFormat
from switch.wire.compiled._text import decoder, encoder


@cache
def per_byte_codec(data_enc: str) -> bool:
    """True when ``data_enc`` decodes every byte on its own to exactly one character (or fails on it)."""
    try:
        info = codecs.lookup(data_enc)
    except LookupError:
        return False
    if info.name == "ascii":
        return True
    module_name = "encodings." + info.name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    table = getattr(module, "decoding_table", None)
    # charmap codecs (encodings/cp500.py etc.) map each byte through a 256-character table.
    decode_module = getattr(info.decode, "__module__", None)
    return isinstance(table, str) and len(table) == 256 and decode_module == module_name


def run_kind(fmt: FieldFormat) -> tuple[str, str] | None:
    """What kind of decoding run a fixed field may join: ("text", codec) or ("hex", ""); None if none."""
    if fmt.len_type != 0:
        return None
    if fmt.binary:
        return None if fmt.nibbles and fmt.max_len & 1 else ("hex", "")
    return ("text", fmt.data_enc) if per_byte_codec(fmt.data_enc) else None


def encode_run_kind(fmt: FieldFormat) -> tuple[str, str] | None:
    """The same for encoding; an odd nibble count never encodes (text) or needs a pad (hex): no run."""
    if fmt.nibbles and fmt.max_len & 1:
        return None
    return run_kind(fmt)


def byte_size(fmt: FieldFormat) -> int:
    return (fmt.max_len + 1) >> 1 if fmt.nibbles else fmt.max_len


def make_run(kind: tuple[str, str], members: list[tuple[int, FieldFormat]], singles: list[Step]) -> Step:
    """One step decoding ``members`` (consecutive fixed fields of one kind); ``singles`` are their own steps."""
    numbers: list[int] = []
    cuts: list[slice] = []
    total = 0
    # Hex has two characters per byte; the codecs above have one.
    scale = 2 if kind[0] == "hex" else 1
    for number, fmt in members:
        size = byte_size(fmt)
        numbers.append(number)
        cuts.append(slice(total * scale, (total + size) * scale))
        total += size
    # itemgetter of slices cuts all values in one C call (a tuple, as runs have two or more members).
    cut = operator.itemgetter(*cuts)
    fallback = tuple(singles)

    def one_by_one(s: bytes, i: int, out: dict[int, str]) -> int:
        for step in fallback:
            i = step(s, i, out)
        return i

    if kind[0] == "hex":

        def hex_run(s: bytes, i: int, out: dict[int, str]) -> int:
            j = i + total
            raw = s[i:j]
            if len(raw) != total:
                return one_by_one(s, i, out)
            # zip, itemgetter and update keep the per-field work in C: no Python-level loop.
            out.update(zip(numbers, cut(raw.hex().upper()), strict=True))
            return j

        return hex_run
    decode = decoder(kind[1])

    def text_run(s: bytes, i: int, out: dict[int, str]) -> int:
        j = i + total
        raw = s[i:j]
        if len(raw) != total:
            return one_by_one(s, i, out)
        try:
            text = decode(raw)
        except UnicodeDecodeError:
            text = None
        if text is None:  # outside the handler: the field's own error must not chain the run's
            return one_by_one(s, i, out)
        out.update(zip(numbers, cut(text), strict=True))
        return j

    return text_run


def make_encode_run(
    kind: tuple[str, str], members: list[tuple[int, FieldFormat]], singles: list[EncodeStep]
) -> EncodeStep:
    """One step encoding ``members`` with one join and one encode; ``singles`` are their own steps.

    A value of the right number of characters in a per-byte codec encodes to the right number of bytes, and
    the joined text encodes exactly when every value does, so one check per value and one encode suffice.
    """
    # itemgetter fetches all values in one C call; it returns a tuple when given two or more keys.
    values_of = operator.itemgetter(*(number for number, _ in members))
    scale = 2 if kind[0] == "hex" else 1
    lengths = tuple(byte_size(fmt) * scale for _, fmt in members)
    fallback = tuple(singles)

    def one_by_one(fields: Mapping[int, str]) -> bytes:
        return b"".join([step(fields) for step in fallback])

    if kind[0] == "hex":

        def hex_run(fields: Mapping[int, str]) -> bytes:
            values = values_of(fields)
            try:
                if tuple(map(len, values)) == lengths:
                    return a2b_hex("".join(values))
            except (TypeError, ValueError):
                pass
            return one_by_one(fields)

        return hex_run
    encode = encoder(kind[1])

    def text_run(fields: Mapping[int, str]) -> bytes:
        values = values_of(fields)
        try:
            if tuple(map(len, values)) == lengths:
                return encode("".join(values))
        except (TypeError, UnicodeEncodeError):
            pass
        return one_by_one(fields)

    return text_run
