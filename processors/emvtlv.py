"""BER-TLV as used in ISO 8583 DE 55 (EMV Book 3 Annex B): parse a flat list of data objects, build one.

Only what a host needs: primitive data objects at the top level of DE 55, tags as upper-case hex text
(``"9F26"``), lengths in the short form or the ``81``/``82`` long forms.
"""

from __future__ import annotations

from switch.model.errors import RemoteProtocolError


class TlvError(RemoteProtocolError):
    """DE 55 is not well-formed BER-TLV."""


def parse(data: bytes) -> dict[str, bytes]:
    """Data objects of ``data`` by tag; a later duplicate tag wins. Padding bytes 00/FF between objects are
    skipped (EMV Book 3 Annex B1)."""
    out: dict[str, bytes] = {}
    i = 0
    n = len(data)
    while i < n:
        first = data[i]
        if first in (0x00, 0xFF):
            i += 1
            continue
        start = i
        i += 1
        if first & 0x1F == 0x1F:  # more tag bytes follow while b8 is set
            while True:
                if i >= n:
                    raise TlvError("truncated tag")
                more = data[i] & 0x80
                i += 1
                if not more:
                    break
        tag = data[start:i].hex().upper()
        if i >= n:
            raise TlvError(f"tag {tag} has no length")
        length = data[i]
        i += 1
        if length & 0x80:
            count = length & 0x7F
            if count not in (1, 2) or i + count > n:
                raise TlvError(f"tag {tag}: unsupported length form")
            length = int.from_bytes(data[i:i + count], "big")
            i += count
        if i + length > n:
            raise TlvError(f"tag {tag}: value runs past the end")
        out[tag] = data[i:i + length]
        i += length
    return out


def build(objects: list[tuple[str, bytes]]) -> bytes:
    """BER-TLV encoding of (tag hex, value) pairs, in order."""
    out = bytearray()
    for tag, value in objects:
        out += bytes.fromhex(tag)
        length = len(value)
        if length < 0x80:
            out.append(length)
        elif length < 0x100:
            out += bytes((0x81, length))
        else:
            out += b"\x82" + length.to_bytes(2, "big")
        out += value
    return bytes(out)
