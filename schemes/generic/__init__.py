"""Generic ISO 8583:1987 hosts.

``generic``: ASCII MTI and fields, 8-byte binary bitmap(s), binary fields 52/55/64/65/96/128: the layout of
pyiso8583's ``default`` spec (jPOS ``iso87ascii-binary-bitmap``).

Both run on the codec compiled from those spec dicts (:mod:`switch.wire.compiled`); pyiso8583 itself stays
the reference that the differential tests hold the compiled codec to.

``generic-ascii``: everything printable: 16-hex-character bitmaps and binary fields as hex text (pyiso8583's
``default_ascii`` spec, jPOS ``iso87ascii``). The canonical message still carries bytes for binary fields.
"""

from __future__ import annotations

import copy

from iso8583 import specs

from schemes.iso87 import Iso87Network
from switch.wire.compiled import compile_codec

SPEC = copy.deepcopy(specs.default)
SPEC_ASCII = copy.deepcopy(specs.default_ascii)

SCHEME = Iso87Network(
    name="generic",
    codec=compile_codec("generic", SPEC),
    # Administrative advices (0620) too: a card retained at a terminal is told to its issuer that way (the ATMP's
    # capture notice to the cells, README "ATM processing (ATMP)"; an acquirer may send one as well).
    mti_classes=frozenset({"1", "2", "4", "6", "8"}),
    description="ISO 8583:1987, ASCII fields, binary bitmap, binary 52/55/64/128",
)
SCHEME_ASCII = Iso87Network(
    name="generic-ascii",
    codec=compile_codec("generic-ascii", SPEC_ASCII),
    description="ISO 8583:1987, all ASCII, hex bitmap, binary fields as hex",
)
