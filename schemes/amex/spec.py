"""The American Express message body as a pyiso8583 spec dict: ISO 8583:1993 field numbering, EBCDIC throughout.

No public source gives American Express's own specification. The layout here puts together what public sources
show (README "American Express" lists each as unconfirmed):

- ISO 8583:1993 field formats (jPOS ``iso93binary.xml``, ``reference/field-formats/jpos-iso93binary.txt``): DE 12
  date and time n12 (YYMMDDhhmmss), DE 22 POS data code an12, DE 24 function code n3, DE 25 message reason code n4,
  DE 26 card acceptor business code n4, DE 30 original amounts n24, DE 31 acquirer reference data, DE 39 action
  code n3, DE 43 variable, DE 53 variable, DE 56 original data elements, DE 96 key management data;
- the sizes and encodings of an open-source processor's American Express interface (Hypercom ATP ``ncamx``, whose
  field table moves every field as EBCDIC, fixed or after EBCDIC length digits, and DE 52 as 8 bytes; its MTIs are
  EBCDIC, e.g. ``0xF1 0xF1 0xF0 0xF0`` for 1100): DE 15 n4, DE 28 n8 (the transaction fee), DE 31 up to 40, DE 43 to
  99, DE 44 and 53 with 2 length digits, DE 55 bytes after 3 length digits, DE 56 up to 37;
- binary primary and secondary bitmaps (8 bytes each), DE 64 and 128 (MACs) 8 bytes.

The code page is a link choice, as on Mastercard links (:mod:`schemes.ebcdic`).
"""

from __future__ import annotations

from typing import Any

from schemes.ebcdic import DEFAULT_CODE_PAGE, Layout, binary_fields, ebcdic_spec

LAYOUT: dict[int, Layout] = {
    2: ("ll", 19), 3: ("n", 6), 4: ("n", 12), 5: ("n", 12), 6: ("n", 12), 7: ("n", 10), 8: ("n", 8), 9: ("n", 8),
    10: ("n", 8), 11: ("n", 6), 12: ("n", 12), 13: ("n", 4), 14: ("n", 4), 15: ("n", 4), 16: ("n", 4),
    17: ("n", 4), 18: ("n", 4), 19: ("n", 3), 20: ("n", 3), 21: ("n", 3), 22: ("a", 12), 23: ("n", 3),
    24: ("n", 3), 25: ("n", 4), 26: ("n", 4), 27: ("n", 1), 28: ("n", 8), 29: ("n", 3), 30: ("n", 24),
    31: ("ll", 40), 32: ("ll", 11), 33: ("ll", 11), 34: ("ll", 28), 35: ("ll", 37), 36: ("lll", 104),
    37: ("a", 12), 38: ("a", 6), 39: ("n", 3), 40: ("n", 3), 41: ("a", 8), 42: ("a", 15), 43: ("ll", 99),
    44: ("ll", 99), 45: ("ll", 76), 46: ("lll", 204), 47: ("lll", 999), 48: ("lll", 999), 49: ("n", 3),
    50: ("n", 3), 51: ("n", 3), 52: ("b", 8), 53: ("ll", 48), 54: ("lll", 120), 55: ("lllb", 255),
    56: ("ll", 37), 57: ("n", 3), 58: ("ll", 11), 59: ("lll", 999), 60: ("lll", 999), 61: ("lll", 999),
    62: ("lll", 999), 63: ("lll", 999), 64: ("b", 8), 65: ("b", 8), 66: ("lll", 204), 67: ("n", 2),
    68: ("n", 3), 69: ("n", 3), 70: ("n", 3), 71: ("n", 8), 72: ("lll", 999), 73: ("n", 6),
    **{n: ("n", 10) for n in range(74, 86)}, **{n: ("n", 16) for n in range(86, 90)}, 90: ("n", 10),
    91: ("n", 3), 92: ("n", 3), 93: ("ll", 11), 94: ("ll", 11), 95: ("ll", 99), 96: ("lll", 999),
    97: ("a", 17), 98: ("a", 25), 99: ("ll", 11), 100: ("ll", 11), 101: ("ll", 17), 102: ("ll", 28),
    103: ("ll", 28), 104: ("lll", 100), **{n: ("n", 16) for n in (105, 106)}, **{n: ("n", 10) for n in (107, 108)},
    109: ("ll", 84), 110: ("ll", 84), **{n: ("lll", 999) for n in range(111, 128)}, 128: ("b", 8),
}
BINARY_FIELDS = binary_fields(LAYOUT)


def amex_spec(code_page: str = DEFAULT_CODE_PAGE) -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec dict of these bodies with their text in ``code_page``."""
    return ebcdic_spec(LAYOUT, code_page)


SPEC = amex_spec()
