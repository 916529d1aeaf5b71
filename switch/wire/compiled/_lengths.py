"""Length prefixes of variable fields: the exact pyiso8583 rules, plus tables built from them.

The exact functions follow pyiso8583 4.x ``encoder._encode_field`` and ``decoder._decode_field`` step by step,
so every odd input gets the same decision (a decoded length goes through ``int()``, which accepts ``" 9"``,
``"+9"``, ``"-0"`` or ``"1_0"``; a negative length then fails or, for nibble fields, may give an empty value).
The tables only hold prefixes the exact functions map to the same number and back, so a table hit is
always the exact answer; anything else takes the exact path.
"""

from __future__ import annotations

import binascii

from switch.model.errors import DecodeError, EncodeError
from switch.wire.compiled._spec import FieldFormat

# Largest table per (len_enc, len_type): covers ASCII LLLLVAR fully; longer fields use the exact path.
TABLE_LIMIT = 10_000

_NO_FIT = "Failed to encode field length, field length does not fit into configured field size"


def encode_length(n: int, fmt: FieldFormat) -> bytes:
    """The prefix for a value of ``n`` bytes or nibbles (``n <= max_len`` already checked)."""
    len_enc, len_type = fmt.len_enc, fmt.len_type
    if len_enc == "b":
        try:
            return n.to_bytes(len_type, "big", signed=False)
        except OverflowError:
            raise EncodeError(_NO_FIT, fmt.key) from None
    if len_enc == "bcd":
        digits = f"{n:0{len_type * 2}d}"
        if len(digits) > len_type * 2:
            raise EncodeError(_NO_FIT, fmt.key)
        return binascii.a2b_hex(digits)
    try:
        prefix = f"{n:0{len_type}d}".encode(len_enc)
    except LookupError:
        raise EncodeError("Failed to encode field length, unknown encoding specified", fmt.key) from None
    except Exception:
        raise EncodeError("Failed to encode field length, invalid data", fmt.key) from None
    if len(prefix) > len_type:
        raise EncodeError(_NO_FIT, fmt.key)
    return prefix


def decode_length(s: bytes, i: int, fmt: FieldFormat) -> int:
    """The length at ``s[i:]``; raises what pyiso8583 raises, at the prefix's position."""
    len_type, key = fmt.len_type, fmt.key
    raw = s[i : i + len_type]
    if len(raw) != len_type:
        raise DecodeError(f"Field length is {len(raw)} bytes wide, expecting {len_type}", key, i)
    n = _parse_length(raw, fmt, i)
    if n > fmt.max_len:
        raise DecodeError(f"Field data is {n} {fmt.len_count}, larger than maximum {fmt.max_len}", key, i)
    return n


def _parse_length(raw: bytes, fmt: FieldFormat, i: int) -> int:
    len_enc, key = fmt.len_enc, fmt.key
    if len_enc == "b":
        return int.from_bytes(raw, "big", signed=False)
    if len_enc == "bcd":
        try:
            return int(raw.hex(), 10)
        except ValueError:
            raise DecodeError("Failed to decode field length, invalid BCD data", key, i) from None
    try:
        text = raw.decode(len_enc)
    except LookupError:
        raise DecodeError("Failed to decode field length, unknown encoding specified", key, i) from None
    except Exception:
        raise DecodeError("Failed to decode field length, invalid data", key, i) from None
    try:
        return int(text)
    except Exception:
        raise DecodeError("Failed to decode field length, non-numeric data", key, i) from None


class LengthTable:
    """Prefixes for lengths ``0 .. size-1`` of one (len_enc, len_type), both ways.

    Shared by every field with that pair; a field still checks its own ``max_len`` on each hit.
    """

    __slots__ = ("by_length", "by_prefix")

    def __init__(self, fmt: FieldFormat, size: int) -> None:
        self.by_length: list[bytes] = []
        self.by_prefix: dict[bytes, int] = {}
        # A roomy max_len keeps the table's own checks out of the way; the key is irrelevant here.
        probe = FieldFormat("", fmt.data_enc, fmt.len_enc, fmt.len_type, 1 << 62, False, "", "")
        for n in range(min(size, TABLE_LIMIT)):
            try:
                prefix = encode_length(n, probe)
                back = decode_length(prefix, 0, probe) if len(prefix) == fmt.len_type else -1
            except (EncodeError, DecodeError):
                break
            self.by_length.append(prefix)
            if back == n:
                self.by_prefix[prefix] = n


def build_tables(fields: list[FieldFormat]) -> dict[tuple[str, int], LengthTable]:
    """One table per (len_enc, len_type) used by a variable field, sized for the largest max_len."""
    sizes: dict[tuple[str, int], tuple[FieldFormat, int]] = {}
    for fmt in fields:
        if fmt.len_type == 0:
            continue
        pair = (fmt.len_enc, fmt.len_type)
        _, size = sizes.get(pair, (fmt, 0))
        sizes[pair] = (fmt, max(size, fmt.max_len + 1))
    return {pair: LengthTable(fmt, size) for pair, (fmt, size) in sizes.items()}
