"""The UnionPay (CUPS) message body as a pyiso8583 spec dict: the single source of its field formats.

Reference section 7.2 (alatka-messages ``cups.common.iso.xml``, and the public samples of section 7.3): ASCII MTI,
binary primary and secondary bitmaps, ASCII numerics and text, ASCII ``LL``/``LLL`` lengths counting bytes, binary
DE 52 (PIN), 96 (message security code, or a single-length key in a key reset) and 128 (MAC), 8 bytes each. That is
pyiso8583's ``default`` layout, with these UnionPay differences:

- GBK text (:data:`GBK_FIELDS`): DE 43 (card acceptor name and location: public samples carry Chinese merchant
  names), DE 61 (cardholder authentication information: a public 0110 carries a Chinese name) and the other
  private variable text fields where UnionPay carries free text. GBK is ASCII for bytes below 0x80, so ASCII values
  are unchanged; a GBK character is two bytes, and lengths count bytes. GBK decodes and encodes back byte for byte
  (every valid two-byte sequence maps to one character and back: ``tests/schemes/unionpay``); a byte sequence that
  is not GBK is a format error, never a replacement character.
- DE 48 (additional data, usage tag first) and DE 63 (financial network data, usage-length-value entries) are
  read as bytes here: some usages carry binary data (DE 48 ``NK`` a new key, DE 63 ``SM`` an SM4-encrypted PIN)
  and the network turns them into text the rest of the switch can carry (:mod:`schemes.unionpay.fields`).
- Maximum lengths where the reference gives them: DE 48 512, DE 54 40 (two balances), DE 55 255, DE 60 100.
  DE 121-123 keep 999: alatka's 100 for them is contradicted by a public 0210 whose DE 123 is 226 bytes.

The hot path runs the codec compiled from this dict (:mod:`switch.wire.compiled`); pyiso8583 stays the reference
the tests hold it to.
"""

from __future__ import annotations

import copy
from typing import Any

from iso8583 import specs

GBK = "gbk"
GBK_FIELDS = frozenset({43, 56, 57, 59, 61, 62, 104, 113, 116, 117, 121, 122, 123})
RAW_FIELDS = frozenset({48, 63})  # bytes in the codec, text in the canonical message (schemes.unionpay.fields)

_MAX_LEN = {48: 512, 54: 40, 55: 255, 60: 100}


def _spec() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = copy.deepcopy(specs.default)
    for number in GBK_FIELDS:
        spec[str(number)]["data_enc"] = GBK
    for number in RAW_FIELDS:
        spec[str(number)]["data_enc"] = "b"
    for number, max_len in _MAX_LEN.items():
        spec[str(number)]["max_len"] = max_len
    spec["43"]["desc"] = "Card Acceptor Name/Location (GBK)"
    spec["48"]["desc"] = "Additional Data - Private (usage tag first)"
    spec["53"]["desc"] = "Security Related Control Information (key type/PIN format, encryption method)"
    spec["54"]["desc"] = "Balances (2 x account type, amount type, currency, C/D, 12 digits)"
    spec["60"]["desc"] = "Reserved (CUPS: message reason code and transaction conditions)"
    spec["61"]["desc"] = "Cardholder Authentication Information (GBK)"
    spec["63"]["desc"] = "Financial Network Data (usage, length, value)"
    spec["96"]["desc"] = "Message Security Code (a single-length key in a key reset)"
    spec["121"]["desc"] = "CUPS Reserved"
    spec["122"]["desc"] = "Acquirer Reserved"
    spec["123"]["desc"] = "Issuer Reserved"
    return spec


SPEC = _spec()
