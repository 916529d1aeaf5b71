"""The Mastercard (Banknet / CIS over MIP) message body as a pyiso8583 spec dict: EBCDIC throughout.

Reference section 6.2 (danil/iso8583 ``mastercard_format.go``, which agrees with alatka-messages ``mc.common.iso.xml``
and rtgparser ``fields_mast.frm``): the MTI is 4 EBCDIC digits, the primary and secondary bitmaps are 8 binary bytes
each, fixed fields are EBCDIC characters, variable fields carry their length as 2 or 3 EBCDIC digits counting
bytes, DE 52, 64, 125 and 128 are 8 binary bytes and DE 55 is bytes after a 3-digit EBCDIC length. The field
lengths below are danil's, field by field; a field that table does not name is ISO 8583:1987's (jPOS
``europay.xml`` for 65-128 where danil leaves one out).

The code page is a link choice (:data:`schemes.ebcdic.CODE_PAGES`); the network's own codec is cp500 and a cp037
link translates (:class:`schemes.ebcdic.Recoder`). The hot path runs the codec compiled from this dict
(:mod:`switch.wire.compiled`); pyiso8583 stays the reference the tests hold it to.
"""

from __future__ import annotations

from typing import Any

from schemes.ebcdic import DEFAULT_CODE_PAGE, Layout, binary_fields, ebcdic_spec

LAYOUT: dict[int, Layout] = {
    2: ("ll", 19), 3: ("n", 6), 4: ("n", 12), 5: ("n", 12), 6: ("n", 12), 7: ("n", 10), 8: ("n", 8), 9: ("n", 8),
    10: ("n", 8), 11: ("n", 6), 12: ("n", 6), 13: ("n", 4), 14: ("n", 4), 15: ("n", 4), 16: ("n", 4),
    17: ("n", 4), 18: ("n", 4), 19: ("n", 3), 20: ("n", 3), 21: ("n", 3), 22: ("n", 3), 23: ("n", 3),
    24: ("n", 3), 25: ("n", 2), 26: ("n", 2), 27: ("n", 1), 28: ("a", 9), 29: ("a", 9), 30: ("a", 9),
    31: ("a", 9), 32: ("ll", 6), 33: ("ll", 6), 34: ("ll", 28), 35: ("ll", 37), 36: ("lll", 104), 37: ("a", 12),
    38: ("a", 6), 39: ("a", 2), 40: ("a", 3), 41: ("a", 8), 42: ("a", 15), 43: ("a", 40), 44: ("ll", 25),
    45: ("ll", 76), 46: ("lll", 999), 47: ("lll", 999), 48: ("lll", 999), 49: ("n", 3), 50: ("n", 3),
    51: ("n", 3), 52: ("b", 8), 53: ("n", 16), 54: ("lll", 120), 55: ("lllb", 255), 56: ("lll", 37),
    57: ("lll", 999), 58: ("lll", 999), 59: ("lll", 999), 60: ("lll", 60), 61: ("lll", 26), 62: ("lll", 100),
    63: ("lll", 50), 64: ("b", 8), 65: ("b", 8), 66: ("n", 1), 67: ("n", 2), 68: ("n", 3), 69: ("n", 3),
    70: ("n", 3), 71: ("n", 4), 72: ("n", 4), 73: ("n", 6), **{n: ("n", 10) for n in range(74, 82)},
    **{n: ("n", 12) for n in range(82, 86)}, **{n: ("n", 16) for n in range(86, 90)}, 90: ("n", 42),
    91: ("a", 1), 92: ("a", 2), 93: ("n", 5), 94: ("a", 7), 95: ("n", 42), 96: ("n", 8), 97: ("a", 17),
    98: ("a", 25), 99: ("ll", 11), 100: ("ll", 11), 101: ("ll", 17), 102: ("ll", 28), 103: ("ll", 28),
    104: ("lll", 100), **{n: ("lll", 999) for n in range(105, 112)}, 112: ("lll", 782),
    **{n: ("lll", 999) for n in range(113, 121)}, 121: ("lll", 6), 122: ("lll", 999), 123: ("lll", 512),
    124: ("lll", 299), 125: ("b", 8), 126: ("lll", 999), 127: ("lll", 100), 128: ("b", 8),
}
BINARY_FIELDS = binary_fields(LAYOUT)


def mastercard_spec(code_page: str = DEFAULT_CODE_PAGE) -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec dict of these bodies with their text in ``code_page``."""
    return ebcdic_spec(LAYOUT, code_page)


SPEC = mastercard_spec()
