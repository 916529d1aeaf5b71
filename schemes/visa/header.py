"""The BASE I message header (22 bytes) and the reject header (26 bytes) that puts a rejected message back.

Layout (jPOS ``org.jpos.iso.header.BASE1Header``; rtgparser ``fields_visa.frm`` agrees; reference section 5.2):

====  ======  =====  ==========================================================================================
H     offset  bytes  field
====  ======  =====  ==========================================================================================
H1    0       1      header length: 22 (26 for a reject header)
H2    1       1      header flag and format: jPOS sends 0x01; bit 0x80 says another header follows (a reject)
H3    2       1      text format: 2 (jPOS's default; jPOS ignores messages with a text format above 2)
H4    3       2      total message length, binary: header + message (jPOS ``setLen``)
H5    5       3      destination station id, 6 BCD digits
H6    8       3      source station id, 6 BCD digits
H7    11      1      round-trip control information (bits)
H8    12      2      BASE I flags (bits)
H9    14      3      message status flags (bits)
H10   17      1      batch number
H11   18      3      reserved
H12   21      1      user information
H13   22      2      bitmap (reject header only): bit 1 (0x80 of byte 22) set = rejected, H14 present
H14   24      2      reject data group: the reject code, 4 BCD digits
====  ======  =====  ==========================================================================================

The meaning of the H7-H9 bits is not public (reference section 13): they are carried as received and a reply
keeps the request's (jPOS ``VAPChannel`` replies on the request's header with the stations swapped). A reject
header is followed by the rejected message's own 22-byte header and then that message (jPOS ``VAPChannel.readHeader``;
iso8583.info: "the original request header and message will be sent back").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from switch.model.errors import FramingError

BASE1_HEADER_LEN = 22
REJECT_HEADER_LEN = 26
ANOTHER_HEADER = 0x80  # H2: another header follows this one
REJECTED = 0x80  # H13, first byte: the message is rejected and H14 carries the reason
H2_FORMAT = 0x01  # what jPOS sends (BASE1Header.setHFormat(1))
H3_TEXT_FORMAT = 0x02  # jPOS's default text format


def station_bcd(station: str) -> bytes:
    """A 6-digit station id as 3 packed-BCD bytes (jPOS ``ISOUtil.str2bcd``)."""
    if len(station) != 6 or not station.isdigit() or not station.isascii():
        raise ValueError("a BASE I station id is 6 digits")
    return bytes.fromhex(station)


def _bcd_digits(raw: bytes, what: str) -> str:
    digits = raw.hex()
    if not digits.isdigit():
        raise FramingError(f"BASE I header {what} is not BCD")
    return digits


@dataclass(frozen=True, slots=True)
class Base1Header:
    """One 22-byte BASE I header, field by field (see the module docstring)."""

    length: int = BASE1_HEADER_LEN  # H1
    flags: int = H2_FORMAT  # H2
    text_format: int = H3_TEXT_FORMAT  # H3
    total_length: int = BASE1_HEADER_LEN  # H4: header + message
    destination: str = "000000"  # H5
    source: str = "000000"  # H6
    round_trip: int = 0  # H7
    base1_flags: int = 0  # H8 (2 bytes)
    status: int = 0  # H9 (3 bytes)
    batch: int = 0  # H10
    reserved: bytes = bytes(3)  # H11
    user_info: int = 0  # H12

    @classmethod
    def parse(cls, data: bytes) -> Base1Header:
        """The header at the start of ``data`` (its first 22 bytes; a longer H1 is reported, not followed)."""
        if len(data) < BASE1_HEADER_LEN:
            raise FramingError(f"a BASE I header is {BASE1_HEADER_LEN} bytes, got {len(data)}")
        return cls(
            length=data[0],
            flags=data[1],
            text_format=data[2],
            total_length=int.from_bytes(data[3:5], "big"),
            destination=_bcd_digits(data[5:8], "destination station (H5)"),
            source=_bcd_digits(data[8:11], "source station (H6)"),
            round_trip=data[11],
            base1_flags=int.from_bytes(data[12:14], "big"),
            status=int.from_bytes(data[14:17], "big"),
            batch=data[17],
            reserved=bytes(data[18:21]),
            user_info=data[21],
        )

    def pack(self) -> bytes:
        """The 22 bytes; ValueError when a field does not fit its bytes (a bug in the caller)."""
        if len(self.reserved) != 3:
            raise ValueError("H11 is 3 bytes")
        return b"".join((
            bytes((self.length, self.flags, self.text_format)),
            self.total_length.to_bytes(2, "big"),
            station_bcd(self.destination),
            station_bcd(self.source),
            bytes((self.round_trip,)),
            self.base1_flags.to_bytes(2, "big"),
            self.status.to_bytes(3, "big"),
            bytes((self.batch,)),
            self.reserved,
            bytes((self.user_info,)),
        ))

    @property
    def chained(self) -> bool:
        """Another header follows this one (H2 bit 0x80)."""
        return bool(self.flags & ANOTHER_HEADER)

    def reply(self, body_length: int) -> Base1Header:
        """The header of the reply to the message this header came with: the stations swapped, one plain header
        (H1 22, H2's "another header follows" cleared), H4 for the reply; H3 and H7-H12 as the request had them."""
        return replace(self, length=BASE1_HEADER_LEN, flags=self.flags & ~ANOTHER_HEADER & 0xFF,
                       total_length=BASE1_HEADER_LEN + body_length, destination=self.source, source=self.destination)


def build_base1_header(destination: bytes, source: bytes, body_length: int) -> bytes:
    """A 22-byte BASE I header for a message we originate (destination/source as 3 BCD bytes)."""
    total = BASE1_HEADER_LEN + body_length
    return b"".join((
        bytes((BASE1_HEADER_LEN, H2_FORMAT, H3_TEXT_FORMAT)),
        total.to_bytes(2, "big"),
        destination,
        source,
        bytes(BASE1_HEADER_LEN - 11),  # H7-H12: no round-trip, flag, status, batch or user info set
    ))


def reply_base1_header(request_header: bytes, body_length: int) -> bytes:
    """The reply header: the request's first 22 bytes with stations swapped and H4 recomputed (the bytes are
    copied, not parsed: a reply never fails on a station the request carried)."""
    h = bytearray(request_header[:BASE1_HEADER_LEN])
    h[0] = BASE1_HEADER_LEN
    h[1] &= ~ANOTHER_HEADER & 0xFF
    h[3:5] = (BASE1_HEADER_LEN + body_length).to_bytes(2, "big")
    h[5:8], h[8:11] = request_header[8:11], request_header[5:8]
    return bytes(h)


# -- rejects ----------------------------------------------------------------------------------------------------
def is_reject(chain: bytes) -> bool:
    """Whether a frame's header chain starts with a reject header (jPOS ``BASE1Header.isRejected``: 26 bytes or
    more and bit 1 of H13 set)."""
    return len(chain) >= REJECT_HEADER_LEN and chain[0] >= REJECT_HEADER_LEN and bool(chain[22] & REJECTED)


def reject_code(chain: bytes) -> str:
    """The reject code of a reject header chain: H14, 4 BCD digits (jPOS ``getRejectCode``)."""
    if not is_reject(chain):
        raise FramingError("not a BASE I reject header")
    return _bcd_digits(chain[24:26], "reject code (H14)")


def original_header(chain: bytes) -> bytes:
    """The rejected message's own header, after the reject header (b"" when the chain has none)."""
    return chain[chain[0]:] if chain else b""


def build_reject(original: bytes, code: str, body_length: int) -> bytes:
    """The header chain that sends a message back rejected: a 26-byte reject header (to the original's source,
    from its destination; H2 says another header follows; H13 bit 1; H14 = ``code``) and the original's 22-byte
    header unchanged. H4 of the reject header counts everything after the VMLH (both headers and the message):
    the public sources do not say what it counts in a chain."""
    if len(original) < BASE1_HEADER_LEN:
        raise ValueError("the rejected message's header is 22 bytes")
    if len(code) != 4 or not code.isdigit() or not code.isascii():
        raise ValueError("a BASE I reject code is 4 digits")
    first = bytearray(original[:BASE1_HEADER_LEN])
    first[0] = REJECT_HEADER_LEN
    first[1] |= ANOTHER_HEADER
    first[3:5] = (REJECT_HEADER_LEN + BASE1_HEADER_LEN + body_length).to_bytes(2, "big")
    first[5:8], first[8:11] = original[8:11], original[5:8]
    return bytes(first) + bytes((REJECTED, 0x00)) + bytes.fromhex(code) + bytes(original[:BASE1_HEADER_LEN])
