"""The BASE I message body as a pyiso8583 spec dict: BCD numerics, EBCDIC text, binary lengths.

Field formats follow jPOS ``base1.xml`` (``reference/field-formats/jpos-base1.txt``) with the class names it uses:

- ``IFB_NUMERIC`` (``n``): packed BCD, fixed; an odd digit count is padded with a 0 nibble on the left
  (``pad=true``), so DE 49 = 840 is ``08 40`` (rtgparser's sample decodes DE 49 as 0840);
- ``IFB_LLHNUM`` (``llhnum``): a 1-byte binary length counting *digits* (16 is ``0x10``), then packed BCD
  (pyiso8583 issue 29: DE 2 = ``10`` + 8 BCD bytes);
- ``IFE_CHAR`` (``e``), ``IFB_LLHECHAR`` (``llhe``): EBCDIC text, fixed or after a binary length;
- ``IFB_LLHCHAR`` (``llhc``): text after a binary length (ASCII in jPOS);
- ``IFB_LLHBINARY`` (``llhb``) and ``IFB_BINARY`` (``b``): bytes, the length counting bytes;
- ``IFB_AMOUNT`` (``amount``, DE 28-31 and 97): a sign byte ('C' or 'D', ASCII as jPOS writes it) and packed BCD
  digits (jPOS ``IFB_AMOUNT``: ``D123`` in 6 is ``44 00 01 23``).

Where public implementations disagree, the choice is the link's (:class:`Dialect`, link options documented in the
README, "VISA (BASE I)"); the default is what jPOS ``base1.xml`` does. Exceptions to base1.xml, each on a public
source: DE 22 is ISO 8583's n3 in two bytes with a 0 nibble on the right (rtgparser ``F3BCD``: 22.1 entry mode
and 22.2 PIN capability; the reference's sample reads ``01 20`` as 012), the maximum lengths that rtgparser gives
higher (DE 48, 62, 104, 116-118, 123, 125: a 1-byte length allows up to 255), and the third bitmap (fields
130-152, the VSDC chip fields) from rtgparser, base1.xml having none.

The MTI is 2 BCD bytes and up to three 8-byte binary bitmaps follow it (reference section 2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switch.model.errors import DecodeError, EncodeError

DEFAULT_CODE_PAGE = "cp500"  # pyiso8583's and cardutil's EBCDIC (reference section 2.4)

# Fields carried as IFB_AMOUNT: x+n8 (DE 28-31: sign and 8 digits) and x+n16 (DE 97).
AMOUNT_DIGITS: dict[int, int] = {28: 8, 29: 8, 30: 8, 31: 8, 97: 16}
# Fields jPOS base1.xml packs as IFB_LLHCHAR (text after a binary length): their text encoding is a link option.
PRIVATE_TEXT_FIELDS = frozenset({46, 47, 56, 57, 58, *range(102, 118), 119, 121, 122, 125})

Layout = tuple[str, int]

# jPOS base1.xml, with the exceptions the module docstring lists.
_BASE1: dict[int, Layout] = {
    2: ("llhnum", 19), 3: ("n", 6), 4: ("n", 12), 5: ("n", 12), 6: ("n", 12), 7: ("n", 10), 8: ("n", 8),
    9: ("n", 8), 10: ("n", 8), 11: ("n", 6), 12: ("n", 6), 13: ("n", 4), 14: ("n", 4), 15: ("n", 4),
    16: ("n", 4), 17: ("n", 4), 18: ("n", 4), 19: ("n", 3), 20: ("n", 3), 21: ("n", 3), 22: ("n3right", 3),
    23: ("n", 3), 24: ("n", 3), 25: ("n", 2), 26: ("n", 2), 27: ("n", 1),
    28: ("amount", 9), 29: ("amount", 9), 30: ("amount", 9), 31: ("amount", 9),
    32: ("llhnum", 11), 33: ("llhnum", 11), 34: ("llhnum", 28), 35: ("llhnum", 37), 36: ("lllnum", 104),
    37: ("e", 12), 38: ("e", 6), 39: ("e", 2), 40: ("e", 3), 41: ("e", 8), 42: ("e", 15), 43: ("e", 40),
    44: ("llhe", 25), 45: ("llhe", 76), 46: ("llhc", 99), 47: ("llhc", 99), 48: ("llhb", 255),
    49: ("n", 3), 50: ("n", 3), 51: ("n", 3), 52: ("b", 8), 53: ("n", 16), 54: ("llhe", 120),
    55: ("llhb", 255), 56: ("llhc", 99), 57: ("llhc", 99), 58: ("llhc", 99), 59: ("llhe", 14),
    60: ("llhb", 6), 61: ("llhnum", 36), 62: ("llhb", 255), 63: ("llhb", 255), 64: ("b", 8),
    66: ("n", 1), 67: ("n", 2), 68: ("n", 3), 69: ("n", 3), 70: ("n", 3), 71: ("n", 4), 72: ("n", 4),
    73: ("n", 6), **{n: ("n", 10) for n in range(74, 82)}, **{n: ("n", 12) for n in range(82, 86)},
    **{n: ("n", 16) for n in range(86, 90)}, 90: ("n", 42), 91: ("e", 1), 92: ("e", 2), 93: ("e", 5),
    94: ("e", 7), 95: ("e", 42), 96: ("b", 8), 97: ("amount", 17), 98: ("e", 25), 99: ("llhnum", 11),
    100: ("llhnum", 11), 101: ("llhe", 17), 102: ("llhc", 28), 103: ("llhc", 28), 104: ("llhc", 255),
    **{n: ("llhc", 99) for n in range(105, 115)}, 115: ("llhc", 24), 116: ("llhc", 255), 117: ("llhc", 255),
    118: ("llhb", 255), 119: ("llhc", 99), 120: ("llhnum", 4), 121: ("llhc", 11), 122: ("llhc", 13),
    123: ("llhe", 30), 124: ("llhb", 99), 125: ("llhc", 255), 126: ("llhb", 255), 127: ("llhb", 255),
    128: ("b", 8),
    # Third bitmap: rtgparser fields_visa.frm (chip data; FnHEX there is n bytes, FnBCD n digits).
    130: ("b", 3), 131: ("b", 5), 132: ("b", 4), 133: ("e", 8), 134: ("llhb", 255), 135: ("llhb", 15),
    136: ("b", 8), 137: ("b", 2), 138: ("b", 2), 139: ("b", 10), 140: ("llhb", 255), 142: ("llhb", 255),
    143: ("llhb", 20), 144: ("n", 2), 145: ("n", 3), 146: ("n", 6), 147: ("n", 12), 148: ("n", 3),
    149: ("n", 12), 152: ("b", 8),
}


@dataclass(frozen=True)
class Dialect:
    """How one VISA link writes what the public implementations write differently (link ``options``).

    - ``code_page``: EBCDIC code page of text fields (default cp500, as pyiso8583 and cardutil use);
    - ``odd_pad``: the pad nibble of an odd digit count in a variable BCD field (DE 2, 32-35, 61, 99, 100):
      "left" = a 0 nibble first (jPOS ``pad=true``), "right" = an F nibble last (moov-io/iso8583 pull request
      457, read from a live capture of DE 35);
    - ``fee_amounts``: DE 28-31 and 97 as "bcd" (jPOS ``IFB_AMOUNT``: sign byte + BCD) or "ebcdic" (9 or 17
      EBCDIC characters, rtgparser ``F9EBCDIC``);
    - ``de48``: "binary" (jPOS ``IFB_LLHBINARY``) or "ebcdic" (rtgparser ``B255EBCDIC``);
    - ``de60_length``: DE 60's length byte counting "bytes" (jPOS base1.xml ``IFB_LLHBINARY 6``) or "digits"
      (jPOS vapvip.xml ``IFB_LLHNUM``);
    - ``private_text``: the text of the fields base1.xml packs as ``IFB_LLHCHAR`` (102, 103, 121, 125, ...):
      "ascii" (jPOS) or "ebcdic" (rtgparser).
    """

    code_page: str = DEFAULT_CODE_PAGE
    odd_pad: str = "left"
    fee_amounts: str = "bcd"
    de48: str = "binary"
    de60_length: str = "bytes"
    private_text: str = "ascii"


DEFAULT_DIALECT = Dialect()
CHOICES: dict[str, tuple[str, ...]] = {
    "odd_pad": ("left", "right"),
    "fee_amounts": ("bcd", "ebcdic"),
    "de48": ("binary", "ebcdic"),
    "de60_length": ("bytes", "digits"),
    "private_text": ("ascii", "ebcdic"),
}


def _f(data_enc: str, len_type: int, max_len: int, len_enc: str = "b", **extra: str) -> dict[str, Any]:
    return {"data_enc": data_enc, "len_enc": len_enc, "len_type": len_type, "max_len": max_len, **extra}


def _field(number: int, layout: Layout, d: Dialect) -> dict[str, Any]:
    kind, size = layout
    cp = d.code_page
    odd = {"left_pad": "0"} if d.odd_pad == "left" else {"right_pad": "F"}
    if kind == "n":
        return _f("b", 0, size, len_count="nibbles", left_pad="0")
    if kind == "n3right":
        return _f("b", 0, size, len_count="nibbles", right_pad="0")
    if kind == "llhnum":
        return _f("b", 1, size, len_count="nibbles", **odd)
    if kind == "lllnum":
        return _f("b", 2, size, "bcd", len_count="nibbles", **odd)
    if kind == "e":
        return _f(cp, 0, size)
    if kind == "llhe":
        return _f(cp, 1, size)
    if kind == "llhc":
        return _f(cp if d.private_text == "ebcdic" else "ascii", 1, size)
    if kind == "llhb":
        if number == 48 and d.de48 == "ebcdic":
            return _f(cp, 1, size)
        if number == 60 and d.de60_length == "digits":
            return _f("b", 1, size * 2, len_count="nibbles", **odd)
        return _f("b", 1, size)
    if kind == "b":
        return _f("b", 0, size)
    if kind == "amount":
        if d.fee_amounts == "ebcdic":
            return _f(cp, 0, size)
        return _f("b", 0, 1 + (size - 1) // 2)  # the sign byte, then the (even count of) digits packed
    raise ValueError(f"unknown layout {kind!r} for field {number}")


def base1_spec(d: Dialect = DEFAULT_DIALECT) -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec dict of BASE I bodies as ``d`` writes them."""
    spec: dict[str, dict[str, Any]] = {
        "h": _f("b", 0, 0),
        "t": _f("b", 0, 2),  # the MTI: 2 BCD bytes
        "p": _f("b", 0, 8),
        "1": _f("b", 0, 8),  # the secondary bitmap; a tertiary one (bit 65) uses the same spec
    }
    for number, layout in _BASE1.items():
        spec[str(number)] = _field(number, layout, d)
    return spec


# -- IFB_AMOUNT <-> x+n ------------------------------------------------------------------------------------------
_SIGNS = {0x43: "C", 0x44: "D"}  # 'C' and 'D' in ASCII, as jPOS IFB_AMOUNT writes the sign


def amount_from_wire(number: int, value: str) -> str:
    """An ``IFB_AMOUNT`` wire value (hex of the sign byte and the BCD digits) as ISO 8583 x+n text ("D00000123")."""
    digits = AMOUNT_DIGITS[number]
    sign = _SIGNS.get(int(value[:2], 16)) if len(value) == digits + 2 else None
    if sign is None or not value[2:].isdigit():
        raise DecodeError("amount is not a C/D sign and BCD digits", str(number), 0)
    return sign + value[2:]


def amount_to_wire(number: int, value: str) -> str:
    """x+n text ("D00000123") as the hex of an ``IFB_AMOUNT``."""
    digits = AMOUNT_DIGITS[number]
    if len(value) != digits + 1 or value[0] not in "CD" or not value[1:].isdigit() or not value.isascii():
        raise EncodeError(f"expected C or D and {digits} digits", str(number))
    return f"{ord(value[0]):02X}{value[1:]}"
