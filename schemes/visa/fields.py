"""The structure inside VISA's private fields: DE 44, 60 (positional) and DE 62, 63, 126 (bitmap-structured).

In the canonical message the bitmap-structured fields are text: the upper-case hex of their wire bytes (so they
pass through other networks' text fields and come back byte for byte). These functions read them, and build
them for tests and simulators. Subfield layouts come from rtgparser ``fields_visa.frm`` (reference section 5.3):
``FnBCD`` is n packed digits (an odd count padded with a 0 nibble on the left, as jPOS pads), ``FnEBCDIC`` n
EBCDIC characters, ``FnHEX`` / ``FnBITSTR`` n bytes / n bits. A subfield whose layout is not public stops the
reading: what follows it is reported as unparsed bytes, never guessed at.

Subfield text is read as cp500: the letters, digits and space these subfields carry are the same in every EBCDIC
code page (reference section 2.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from switch.model.errors import DecodeError, RemoteProtocolError
from switch.model.message import Message

CODE_PAGE = "cp500"

# (kind, size): "e" EBCDIC characters, "n" BCD digits, "b" bytes, "llhe" 1-byte length + EBCDIC characters.
Layout = tuple[str, int]

DE62: dict[int, Layout] = {
    1: ("e", 1), 2: ("n", 15), 3: ("e", 4), 4: ("e", 1), 5: ("n", 2), 6: ("e", 1), 17: ("e", 15),
    20: ("n", 10), 21: ("e", 4), 22: ("e", 6), 23: ("e", 2), 24: ("e", 6),
}
DE62_NAMES = {1: "authorization characteristics indicator", 2: "transaction identifier", 3: "validation code"}
DE63: dict[int, Layout] = {
    1: ("n", 4), 2: ("n", 4), 3: ("n", 4), 4: ("n", 4), 5: ("n", 6), 6: ("e", 7), 7: ("b", 16), 8: ("n", 8),
    9: ("b", 28), 10: ("b", 26), 11: ("e", 1), 12: ("e", 30), 13: ("n", 6), 14: ("e", 36), 15: ("e", 9),
    16: ("n", 6), 18: ("n", 2), 19: ("e", 3), 20: ("n", 2), 21: ("e", 1),
}
DE63_NAMES = {1: "network id", 3: "message reason code", 4: "STIP/switch reason code"}
# 126.1-126.5 from jPOS base1.xml (IFE_CHAR), the rest from rtgparser. 126.6 and 126.7 (SET certificate serial
# numbers) are 17 fixed bytes in rtgparser but a BCD-length field in base1.xml: read as rtgparser says, and never
# shown beside a CVV2 (see mask_de126).
DE126: dict[int, Layout] = {
    1: ("e", 25), 2: ("e", 57), 3: ("e", 57), 4: ("e", 18), 5: ("e", 6), 6: ("b", 17), 7: ("b", 17),
    8: ("b", 20), 9: ("b", 20), 10: ("e", 6), 12: ("b", 3), 13: ("e", 1), 14: ("e", 1), 15: ("e", 1),
    16: ("llhe", 32), 18: ("b", 12),
}
CVV2 = 10  # 126.10: CVV2 authorization request data (presence indicator, response type, the CVV2): secret
_DISPUTED_126 = frozenset({6, 7})

# Positional fields: (name, width) in order (rtgparser).
DE44: tuple[tuple[str, int], ...] = (
    ("response source/reason code", 1), ("address verification result", 1), ("reserved", 1),
    ("card product type", 1), ("CVV/iCVV result", 1), ("PACM diversion level", 2), ("PACM diversion reason", 1),
    ("card authentication result", 1), ("reserved", 1), ("CVV2 result", 1), ("original response code", 2),
    ("check settlement code", 1), ("CAVV result", 1), ("response reason code", 4),
)
DE60: tuple[tuple[str, int], ...] = (
    ("terminal type", 1), ("terminal entry capability", 1), ("chip condition code", 1),
    ("special condition indicator", 1), ("not applicable", 2), ("transaction indicator", 1),
    ("card authentication reliability indicator", 1), ("mail/phone/electronic commerce indicator", 2),
    ("not applicable (SMS only)", 1), ("partial authorization indicator", 1),
)


@dataclass(frozen=True)
class Subfields:
    """A bitmap-structured field read: its subfields by number (text: EBCDIC decoded, BCD as digits, bytes as
    upper-case hex) and how many bytes from the first subfield of no public layout on were left unread."""

    field_number: int
    values: Mapping[int, str] = field(default_factory=dict)
    unparsed: int = 0
    stopped_at: int | None = None  # the subfield whose layout is not public

    def get(self, number: int) -> str | None:
        return self.values.get(number)


def _raw(number: int, value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DecodeError("not hex", str(number), 0) from None


def _bits(bitmap: bytes) -> list[int]:
    return [index * 8 + bit for index, byte in enumerate(bitmap) for bit in range(1, 9) if byte >> (8 - bit) & 1]


def _digits(chunk: bytes, size: int, where: str, pos: int) -> str:
    digits = chunk.hex()
    if size % 2:
        if digits[:1] != "0":
            raise DecodeError("odd BCD subfield without its 0 pad nibble", where, pos)
        digits = digits[1:]
    if not digits.isdigit():
        raise DecodeError("BCD subfield is not digits", where, pos)
    return digits


def parse_bitmapped(number: int, value: str | bytes, bitmap_len: int, layouts: Mapping[int, Layout]) -> Subfields:
    """Read a bitmap-structured private field (DE 62, 63, 126): its bitmap, then each subfield the bitmap names.
    Raises :class:`DecodeError` (naming ``number.subfield``) when the bytes do not fit the layouts."""
    raw = _raw(number, value)
    if len(raw) < bitmap_len:
        raise DecodeError(f"shorter than its {bitmap_len}-byte bitmap", str(number), 0)
    pos = bitmap_len
    out: dict[int, str] = {}
    for sub in _bits(raw[:bitmap_len]):
        where = f"{number}.{sub}"
        layout = layouts.get(sub)
        if layout is None:
            return Subfields(number, out, len(raw) - pos, sub)
        kind, size = layout
        if kind == "llhe":
            if pos >= len(raw) or raw[pos] > size:
                raise DecodeError("subfield length missing or above its maximum", where, pos)
            size, pos = raw[pos], pos + 1
        width = (size + 1) // 2 if kind == "n" else size
        chunk = raw[pos:pos + width]
        if len(chunk) != width:
            raise DecodeError(f"subfield is {len(chunk)} bytes, expecting {width}", where, pos)
        if kind == "n":
            out[sub] = _digits(chunk, size, where, pos)
        elif kind == "b":
            out[sub] = chunk.hex().upper()
        else:
            out[sub] = chunk.decode(CODE_PAGE)
        pos += width
    if pos != len(raw):
        raise DecodeError(f"{len(raw) - pos} bytes after the last subfield", str(number), pos)
    return Subfields(number, out)


def build_bitmapped(number: int, values: Mapping[int, str], bitmap_len: int, layouts: Mapping[int, Layout]) -> str:
    """The canonical (hex) value of a bitmap-structured field with these subfields (the inverse of
    :func:`parse_bitmapped`; ValueError on a subfield that does not fit its layout)."""
    bitmap = bytearray(bitmap_len)
    parts: list[bytes] = []
    for sub in sorted(values):
        kind, size = layouts[sub]
        text = values[sub]
        bitmap[(sub - 1) >> 3] |= 0x80 >> ((sub - 1) & 7)
        if kind == "n":
            if len(text) != size or not text.isdigit():
                raise ValueError(f"{number}.{sub}: expected {size} digits")
            parts.append(bytes.fromhex(text.rjust(size + size % 2, "0")))
        elif kind == "b":
            data = bytes.fromhex(text)
            if len(data) != size:
                raise ValueError(f"{number}.{sub}: expected {size} bytes")
            parts.append(data)
        else:
            data = text.encode(CODE_PAGE)
            if kind == "llhe":
                if len(data) > size:
                    raise ValueError(f"{number}.{sub}: at most {size} characters")
                parts.append(bytes((len(data),)) + data)
            else:
                if len(data) != size:
                    raise ValueError(f"{number}.{sub}: expected {size} characters")
                parts.append(data)
    return (bytes(bitmap) + b"".join(parts)).hex().upper()


def parse_de62(value: str | bytes) -> Subfields:
    """DE 62, custom payment service fields: 62.1 authorization characteristics indicator, 62.2 transaction
    identifier, 62.3 validation code, ... (8-byte bitmap)."""
    return parse_bitmapped(62, value, 8, DE62)


def parse_de63(value: str | bytes) -> Subfields:
    """DE 63, V.I.P. private use: 63.1 network id, 63.3 message reason code, 63.4 STIP/switch reason code, ...
    (3-byte bitmap)."""
    return parse_bitmapped(63, value, 3, DE63)


def parse_de126(value: str | bytes) -> Subfields:
    """DE 126, VISA private use (8-byte bitmap); 126.10 is the CVV2 (secret: see :func:`mask_de126`)."""
    return parse_bitmapped(126, value, 8, DE126)


def build_de62(values: Mapping[int, str]) -> str:
    return build_bitmapped(62, values, 8, DE62)


def build_de63(values: Mapping[int, str]) -> str:
    return build_bitmapped(63, values, 3, DE63)


def build_de126(values: Mapping[int, str]) -> str:
    return build_bitmapped(126, values, 8, DE126)


def positional(value: str, layout: tuple[tuple[str, int], ...]) -> dict[str, str]:
    """A positional field (DE 44, DE 60) by subfield name, as far as the value goes."""
    out: dict[str, str] = {}
    pos = 0
    for index, (name, width) in enumerate(layout, start=1):
        if pos >= len(value):
            break
        out[f"{index} {name}"] = value[pos:pos + width]
        pos += width
    return out


def parse_de44(value: str) -> dict[str, str]:
    """DE 44, additional response data (44.1 response source, 44.2 AVS result, 44.5 CVV result, 44.10 CVV2 result,
    44.13 CAVV result, ...)."""
    return positional(value, DE44)


def parse_de60(value: str) -> dict[str, str]:
    """DE 60, additional POS information (60.1 terminal type, 60.2 entry capability, 60.3 chip condition, ...,
    60.10 partial authorization indicator)."""
    return positional(value, DE60)


def transaction_id(msg: Message) -> str | None:
    """The VISA transaction identifier (62.2) a message carries, for settlement to match the clearing record
    (BASE II TCR 5 positions 5-19); None without one. Raises :class:`RemoteProtocolError` on a malformed DE 62."""
    value = msg.get(62)
    if value is None:
        return None
    return parse_de62(value).get(2)


# -- masking ----------------------------------------------------------------------------------------------------
def _show(fields: Subfields, hidden: frozenset[int] = frozenset()) -> str:
    parts = [f"{fields.field_number}.{sub}=" + (f"<{len(text)} hidden>" if sub in hidden else text)
             for sub, text in fields.values.items()]
    if fields.stopped_at is not None:
        parts.append(f"{fields.field_number}.{fields.stopped_at}+<{fields.unparsed} bytes not parsed>")
    return " ".join(parts)


def mask_de62(value: str | bytes) -> str:
    return _show(parse_de62(value))


def mask_de63(value: str | bytes) -> str:
    return _show(parse_de63(value))


def mask_de126(value: str | bytes) -> str:
    """DE 126 subfield by subfield with 126.10 (the CVV2) hidden. When 126.10 comes with a subfield whose public
    layouts disagree (126.6, 126.7), a wrong reading could show CVV2 bytes as part of another subfield: the whole
    field is hidden then (raising makes :class:`~switch.model.masking.Masking` hide it), as it is when the bytes
    do not read at all."""
    fields = parse_de126(value)
    if CVV2 in fields.values and not _DISPUTED_126.isdisjoint(fields.values):
        raise RemoteProtocolError("126.10 beside a subfield of disputed layout")
    if fields.stopped_at is not None and fields.stopped_at < CVV2:
        raise RemoteProtocolError("126.10 may follow a subfield of unknown layout")
    return _show(fields, frozenset({CVV2}))
