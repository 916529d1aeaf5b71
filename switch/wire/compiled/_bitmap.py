"""Bitmaps, the exact pyiso8583 way (``decoder._decode_bitmap``, ``encoder._encode_bitmap``).

A bitmap is 8 raw bytes when its ``data_enc`` is "b", else 16 characters of hex text in that encoding
(``bytes.fromhex``, which also skips ASCII whitespace). Bit 1 of the primary announces the secondary bitmap;
bit 1 of the secondary (field 65) announces the tertiary one (fields 129-192), which uses the secondary's
spec. These functions run once per distinct bitmap: the codec caches what they find.
"""

from __future__ import annotations

from collections.abc import Iterable

from switch.model.errors import DecodeError, EncodeError


def bitmap_width(data_enc: str) -> int:
    return 8 if data_enc == "b" else 16


def read_bitmap(s: bytes, i: int, key: str, data_enc: str, offset: int, extends: int) -> set[int]:
    """The field numbers one bitmap at ``s[i:]`` switches on.

    ``extends`` is the width of the bitmap this one extends (tertiary after secondary), 0 otherwise:
    pyiso8583 counts both in its "too short" message.
    """
    width = bitmap_width(data_enc)
    raw = s[i : i + width]
    if len(raw) != width:
        expecting = width * 2 if extends else width
        raise DecodeError(f"Field data is {extends + len(raw)} bytes, expecting {expecting}", key, i)
    if data_enc == "b":
        bitmap = raw
    else:
        try:
            text = raw.decode(data_enc)
        except LookupError:
            raise DecodeError("Failed to decode field, unknown encoding specified", key, i) from None
        except Exception:
            raise DecodeError("Failed to decode field, invalid data", key, i) from None
        try:
            bitmap = bytes.fromhex(text)
        except ValueError:
            raise DecodeError("Failed to decode field, non-hex data", key, i) from None
    return {
        offset + index * 8 + bit
        for index, byte in enumerate(bitmap)
        for bit in range(1, 9)
        if byte >> (8 - bit) & 1
    }


def write_bitmap(numbers: Iterable[int], offset: int, key: str, data_enc: str) -> bytes:
    """The wire form of the bitmap carrying ``numbers`` (all within ``offset+1 .. offset+64``)."""
    bitmap = bytearray(8)
    for number in numbers:
        bit = number - 1 - offset
        bitmap[bit >> 3] |= 0x80 >> (bit & 7)
    if data_enc == "b":
        return bytes(bitmap)
    try:
        return bitmap.hex().upper().encode(data_enc)
    except LookupError:
        raise EncodeError("Failed to encode field, unknown encoding specified", key) from None
    except Exception:
        raise EncodeError("Failed to encode field, invalid data", key) from None
