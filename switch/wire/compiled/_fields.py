"""Per-field decoders and encoders, specialised once per spec entry.

Each function is a closure over one field's constants, so the hot path reads no spec dict. Their behaviour
follows pyiso8583 4.x ``decoder._decode_field`` / ``encoder._encode_field``:

- a variable field of length 0 decodes to ``""`` without touching the data encoding;
- ``len_count="nibbles"``: the length counts half bytes; ``data_enc="b"`` odd-length values get the spec's
  ``left_pad`` (else ``right_pad``) nibble on encode, and on decode lose it if it is there (left checked first),
  the field being rejected when neither is;
- binary values are upper-case hex on decode, and on encode anything ``binascii.a2b_hex`` takes;
- errors name the field and, on decode, the position where pyiso8583 reports them: the length prefix for
  length errors, the start of the data for data errors.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from typing import NoReturn

from switch.model.errors import DecodeError, EncodeError
from switch.wire.compiled._lengths import LengthTable, decode_length, encode_length
from switch.wire.compiled._spec import FieldFormat
from switch.wire.compiled._text import decoder, encoder

Decoder = Callable[[bytes, int], tuple[str, int]]

a2b_hex = binascii.a2b_hex


# -- errors -------------------------------------------------------------------------------------------------
def _short(fmt: FieldFormat, n: int, got: int, pos: int) -> NoReturn:
    have = got * 2 if fmt.nibbles else got
    raise DecodeError(f"Field data is {have} {fmt.len_count}, expecting {n}", fmt.key, pos)


def _text_error(exc: Exception, fmt: FieldFormat, pos: int) -> DecodeError:
    if isinstance(exc, LookupError):
        return DecodeError("Failed to decode field, unknown encoding specified", fmt.key, pos)
    return DecodeError("Failed to decode field, invalid data", fmt.key, pos)


def _unpad(fmt: FieldFormat, value: str, n: int, pos: int) -> str:
    """Drop the pad nibble of an odd-length nibble field (decoder._remove_pad_field)."""
    if fmt.left_pad and value[:1] == fmt.left_pad:
        return value[1:]
    if fmt.right_pad and value[-1:] == fmt.right_pad:
        return value[:-1]
    raise DecodeError(f"Field data is {len(value)} nibbles, expecting {n}", fmt.key, pos)


def _encode_text_error(exc: Exception, fmt: FieldFormat) -> EncodeError:
    if isinstance(exc, LookupError):
        return EncodeError("Failed to encode field, unknown encoding specified", fmt.key)
    return EncodeError("Failed to encode field, invalid data", fmt.key)


def _encode_hex_error(value: object, fmt: FieldFormat) -> EncodeError:
    odd = isinstance(value, str | bytes) and len(value) % 2 == 1
    padded = fmt.nibbles and bool(fmt.left_pad or fmt.right_pad)
    if odd and fmt.nibbles and not padded:
        return EncodeError("Failed to encode field, odd-length nibble data, specify pad", fmt.key)
    if odd and not padded:
        return EncodeError("Failed to encode field, odd-length hex data", fmt.key)
    return EncodeError("Failed to encode field, non-hex data", fmt.key)


def _bad_length(fmt: FieldFormat, n: int) -> NoReturn:
    if fmt.len_type == 0:
        raise EncodeError(f"Field data is {n} {fmt.len_count}, expecting {fmt.max_len}", fmt.key)
    raise EncodeError(f"Field data is {n} {fmt.len_count}, larger than maximum {fmt.max_len}", fmt.key)


# -- decoders -----------------------------------------------------------------------------------------------
# A decoding step reads one field (or a run of fixed fields) at ``s[i:]`` into ``out`` and returns the next
# position. Writing into ``out`` directly saves building and unpacking a tuple per field.
Step = Callable[[bytes, int, dict[int, str]], int]


def make_step(number: int, fmt: FieldFormat, table: LengthTable | None) -> Step:
    """The decoding step of one field."""
    if fmt.len_type == 0:
        return _fixed_step(number, fmt)
    assert table is not None
    return _variable_step(number, fmt, table)


def make_value_decoder(fmt: FieldFormat, table: LengthTable | None) -> Decoder:
    """``(data, position) -> (value, next position)`` for the header and the MTI (off the hot path)."""
    step = make_step(0, fmt, table)

    def decode(s: bytes, i: int) -> tuple[str, int]:
        out: dict[int, str] = {}
        j = step(s, i, out)
        return out[0], j

    return decode


def _fixed_step(number: int, fmt: FieldFormat) -> Step:
    n = fmt.max_len
    size = (n + 1) >> 1 if fmt.nibbles else n
    if n == 0:

        def empty(s: bytes, i: int, out: dict[int, str]) -> int:
            out[number] = ""
            return i

        return empty
    if not fmt.binary:
        text = decoder(fmt.data_enc)

        def fixed_text(s: bytes, i: int, out: dict[int, str]) -> int:
            j = i + size
            raw = s[i:j]
            if len(raw) != size:
                _short(fmt, n, len(raw), i)
            try:
                out[number] = text(raw)
            except Exception as exc:
                raise _text_error(exc, fmt, i) from None
            return j

        return fixed_text
    if not (fmt.nibbles and n & 1):

        def fixed_hex(s: bytes, i: int, out: dict[int, str]) -> int:
            j = i + size
            raw = s[i:j]
            if len(raw) != size:
                _short(fmt, n, len(raw), i)
            out[number] = raw.hex().upper()
            return j

        return fixed_hex

    def fixed_odd_nibbles(s: bytes, i: int, out: dict[int, str]) -> int:
        j = i + size
        raw = s[i:j]
        if len(raw) != size:
            _short(fmt, n, len(raw), i)
        out[number] = _unpad(fmt, raw.hex().upper(), n, i)
        return j

    return fixed_odd_nibbles


def _variable_step(number: int, fmt: FieldFormat, table: LengthTable) -> Step:
    width, max_len, nibbles = fmt.len_type, fmt.max_len, fmt.nibbles
    lookup = table.by_prefix.get
    text = decoder(fmt.data_enc)  # used by the text steps only

    if not fmt.binary and not nibbles:

        def var_text(s: bytes, i: int, out: dict[int, str]) -> int:
            k = i + width
            n = lookup(s[i:k])
            if n is None or n > max_len:
                n = decode_length(s, i, fmt)
            if n == 0:
                out[number] = ""
                return k
            j = k + n
            raw = s[k:j]
            if len(raw) != n:
                _short(fmt, n, len(raw), k)
            try:
                out[number] = text(raw)
            except Exception as exc:
                raise _text_error(exc, fmt, k) from None
            return j

        return var_text
    if not fmt.binary:

        def var_text_nibbles(s: bytes, i: int, out: dict[int, str]) -> int:
            k = i + width
            n = lookup(s[i:k])
            if n is None or n > max_len:
                n = decode_length(s, i, fmt)
            if n == 0:
                out[number] = ""
                return k
            size = (n + 1) >> 1
            j = k + size
            raw = s[k:j]
            if len(raw) != size:
                _short(fmt, n, len(raw), k)
            try:
                out[number] = text(raw)
            except Exception as exc:
                raise _text_error(exc, fmt, k) from None
            return j

        return var_text_nibbles
    if not nibbles:

        def var_hex(s: bytes, i: int, out: dict[int, str]) -> int:
            k = i + width
            n = lookup(s[i:k])
            if n is None or n > max_len:
                n = decode_length(s, i, fmt)
            if n == 0:
                out[number] = ""
                return k
            j = k + n
            raw = s[k:j]
            if len(raw) != n:
                _short(fmt, n, len(raw), k)
            out[number] = raw.hex().upper()
            return j

        return var_hex

    def var_nibbles(s: bytes, i: int, out: dict[int, str]) -> int:
        k = i + width
        n = lookup(s[i:k])
        if n is None or n > max_len:
            n = decode_length(s, i, fmt)
        if n == 0:
            out[number] = ""
            return k
        size = (n + 1) >> 1
        j = k + size
        raw = s[k:j]
        if len(raw) != size:
            _short(fmt, n, len(raw), k)
        value = raw.hex().upper()
        out[number] = _unpad(fmt, value, n, k) if n & 1 else value
        return j

    return var_nibbles


# -- encoders -----------------------------------------------------------------------------------------------
# An encoding step takes the caller's field mapping and returns one field's wire bytes (length prefix + data),
# or a run's (see :mod:`._runs`).
EncodeStep = Callable[[Mapping[int, str]], bytes]


def make_encoder(number: int, fmt: FieldFormat, table: LengthTable | None) -> EncodeStep:
    """The encoding step of one field: ``fields -> length prefix + data of fields[number]``."""
    if not fmt.binary:
        return _text_encoder(number, fmt, table)
    if fmt.nibbles:
        return _nibble_encoder(number, fmt, table)
    return _hex_encoder(number, fmt, table)


def _prefixes(table: LengthTable | None) -> tuple[list[bytes], int]:
    prefixes = table.by_length if table is not None else []
    return prefixes, len(prefixes)


def _text_encoder(number: int, fmt: FieldFormat, table: LengthTable | None) -> EncodeStep:
    encode, max_len, unit = encoder(fmt.data_enc), fmt.max_len, 2 if fmt.nibbles else 1
    if fmt.len_type == 0:

        def fixed_text(fields: Mapping[int, str]) -> bytes:
            try:
                data = encode(fields[number])
            except Exception as exc:
                raise _encode_text_error(exc, fmt) from None
            if len(data) * unit != max_len:
                _bad_length(fmt, len(data) * unit)
            return data

        return fixed_text
    prefixes, known = _prefixes(table)

    def var_text(fields: Mapping[int, str]) -> bytes:
        try:
            data = encode(fields[number])
        except Exception as exc:
            raise _encode_text_error(exc, fmt) from None
        n = len(data) * unit
        if n > max_len:
            _bad_length(fmt, n)
        return (prefixes[n] if n < known else encode_length(n, fmt)) + data

    return var_text


def _hex_encoder(number: int, fmt: FieldFormat, table: LengthTable | None) -> EncodeStep:
    max_len = fmt.max_len
    if fmt.len_type == 0:

        def fixed_hex(fields: Mapping[int, str]) -> bytes:
            value = fields[number]
            try:
                data = a2b_hex(value)
            except Exception:
                raise _encode_hex_error(value, fmt) from None
            if len(data) != max_len:
                _bad_length(fmt, len(data))
            return data

        return fixed_hex
    prefixes, known = _prefixes(table)

    def var_hex(fields: Mapping[int, str]) -> bytes:
        value = fields[number]
        try:
            data = a2b_hex(value)
        except Exception:
            raise _encode_hex_error(value, fmt) from None
        n = len(data)
        if n > max_len:
            _bad_length(fmt, n)
        return (prefixes[n] if n < known else encode_length(n, fmt)) + data

    return var_hex


def _nibble_encoder(number: int, fmt: FieldFormat, table: LengthTable | None) -> EncodeStep:
    # encoder._add_pad_field: left_pad wins over right_pad; no pad leaves odd data to fail in a2b_hex.
    left, right = (fmt.left_pad, "") if fmt.left_pad else ("", fmt.right_pad)
    fixed, max_len = fmt.len_type == 0, fmt.max_len
    prefixes, known = _prefixes(table)

    def nibbles(fields: Mapping[int, str]) -> bytes:
        value = fields[number]
        try:
            n = len(value)
            data = a2b_hex(left + value + right if n & 1 else value)
        except Exception:
            raise _encode_hex_error(value, fmt) from None
        if fixed:
            if n != max_len:
                _bad_length(fmt, n)
            return data
        if n > max_len:
            _bad_length(fmt, n)
        return (prefixes[n] if n < known else encode_length(n, fmt)) + data

    return nibbles
