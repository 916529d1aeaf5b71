"""Visa BASE I / V.I.P. framing: the 4-byte VMLH, then the 22-byte BASE I header, then the message.

VMLH (moov-io/iso8583 ``network/vml_header.go``; jPOS ``VAPChannel``): bytes 0-1 are the big-endian length
of everything after the VMLH, byte 2 is reserved, the left nibble of byte 3 is the message format indicator
(2 = session control: heartbeat/shutdown, payload ``C8C2``/``E2C4`` per PosNG ``EAServer``). A VMLH with
length 0 is a "VAP poll", echoed back as the same 4 zero bytes (jPOS ``VAPChannel.getMessageLength``).

BASE I header (jPOS ``BASE1Header``): H1 header length (22), H2 header flag (bit 0x80: another header
follows, as in a reject: a 26-byte reject header then the original 22-byte header, jPOS
``VAPChannel.readHeader``), H3 text format, H4 total length = header + message, H5 destination station
(6 BCD digits, bytes 5-7), H6 source station (bytes 8-10), H7-H12 control and flag bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.model.errors import FramingError
from switch.model.toml import TomlTable
from switch.wire.framing.base import KEEPALIVE, BufferedFramer, Frame, check_body
from switch.wire.framing.options import framing_kind, limits

VMLH_LEN = 4
BASE1_HEADER_LEN = 22
KEEPALIVE_BYTES = bytes(VMLH_LEN)
_SESSION_CONTROL = 2
# A reject chain is two headers; allow one more before calling the stream garbage.
_MAX_CHAINED_HEADERS = 3
# H2 header flag and format as jPOS sends it (setHFormat(1)); H3 text format 2 (jPOS default).
_H2_FORMAT = 0x01
_H3_TEXT_FORMAT = 0x02


def station_bcd(station: str) -> bytes:
    """A 6-digit station id as 3 packed-BCD bytes (jPOS ``ISOUtil.str2bcd``)."""
    if len(station) != 6 or not station.isdigit() or not station.isascii():
        raise ValueError("a BASE I station id is 6 digits")
    return bytes.fromhex(station)


def build_base1_header(destination: bytes, source: bytes, body_length: int) -> bytes:
    """A 22-byte BASE I header for a message we originate (destination/source as 3 BCD bytes)."""
    total = BASE1_HEADER_LEN + body_length
    return b"".join((
        bytes((BASE1_HEADER_LEN, _H2_FORMAT, _H3_TEXT_FORMAT)),
        total.to_bytes(2, "big"),
        destination,
        source,
        bytes(BASE1_HEADER_LEN - 11),  # H7-H12: no round-trip, flag, status, batch or user info set
    ))


def reply_base1_header(request_header: bytes, body_length: int) -> bytes:
    """The reply header: the request's first 22 bytes with stations swapped and H4 recomputed.

    A reply carries one plain header, so H1 is 22 and H2's "another header follows" bit is cleared even if
    the request arrived with a longer chain.
    """
    h = bytearray(request_header[:BASE1_HEADER_LEN])
    h[0] = BASE1_HEADER_LEN
    h[1] &= 0x7F
    h[3:5] = (BASE1_HEADER_LEN + body_length).to_bytes(2, "big")
    h[5:8], h[8:11] = request_header[8:11], request_header[5:8]
    return bytes(h)


class VisaFramer(BufferedFramer):
    __slots__ = ("destination", "source")

    MAX_LENGTH = 0xFFFF

    def __init__(
        self,
        *,
        source_station: str = "000000",
        destination_station: str = "000000",
        max_frame: int = 8192,
        keepalive_echo: bool = True,
    ) -> None:
        super().__init__(max_frame, keepalive_echo)
        self.source = station_bcd(source_station)
        self.destination = station_bcd(destination_station)

    # -- reading --------------------------------------------------------------------------------------
    def _parse(self) -> Frame | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < VMLH_LEN:
            return None
        # Byte 2 is reserved and byte 3's right nibble is the platform indicator: neither changes how
        # the frame is delimited, so neither is checked.
        length = (buf[pos] << 8) | buf[pos + 1]
        start = pos + VMLH_LEN
        if length == 0:
            self._pos = start
            return KEEPALIVE
        end = self._claim(start, length)
        if end is None:
            return None
        if buf[pos + 3] >> 4 == _SESSION_CONTROL:
            return Frame(bytes(buf[start:end]), b"", True)
        split = self._header_end(buf, start, end)
        if split == end:
            raise FramingError("BASE I frame carries a header but no message")
        return Frame(bytes(buf[split:end]), bytes(buf[start:split]))

    @staticmethod
    def _header_end(buf: bytearray, start: int, end: int) -> int:
        """Offset just past the header chain that starts at ``start``."""
        hpos = start
        for _ in range(_MAX_CHAINED_HEADERS):
            if end - hpos < BASE1_HEADER_LEN:
                raise FramingError(f"frame too short for a {BASE1_HEADER_LEN}-byte BASE I header")
            hlen = buf[hpos]
            if hlen < BASE1_HEADER_LEN:
                raise FramingError(f"BASE I header length {hlen} is below {BASE1_HEADER_LEN}")
            if hpos + hlen > end:
                raise FramingError(f"BASE I header length {hlen} runs past the end of the frame")
            follows = buf[hpos + 1] & 0x80
            hpos += hlen
            if not follows:
                return hpos
        raise FramingError(f"more than {_MAX_CHAINED_HEADERS} chained BASE I headers")

    # -- writing --------------------------------------------------------------------------------------
    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        check_body(body, self.MAX_LENGTH - BASE1_HEADER_LEN)
        if reply_to is not None and len(reply_to.header) >= BASE1_HEADER_LEN:
            header = reply_base1_header(reply_to.header, len(body))
        else:
            header = build_base1_header(self.destination, self.source, len(body))
        vmlh = (BASE1_HEADER_LEN + len(body)).to_bytes(2, "big") + b"\x00\x00"
        return b"".join((vmlh, header, body))

    def keepalive_probe(self) -> bytes | None:
        return KEEPALIVE_BYTES

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        # Only the zero-length poll has a defined echo; session-control frames (non-empty body) are
        # Visa's own heartbeats and no public source defines an answer to them.
        if not self.keepalive_echo or not frame.keepalive or frame.body:
            return None
        return KEEPALIVE_BYTES


@dataclass(frozen=True)
class VisaFraming:
    """Link options of the ``visa`` framing: the stations of the BASE I header of requests we originate."""

    source_station: str = "000000"  # 6 digits, BCD in the header
    destination_station: str = "000000"
    max_frame: int = 8192
    keepalive_echo: bool = True  # echo VAP polls (zero-length VMLH)

    def __post_init__(self) -> None:
        station_bcd(self.source_station)
        station_bcd(self.destination_station)

    @property
    def framing_kind(self) -> str:
        return "visa"

    def framer(self) -> VisaFramer:
        return VisaFramer(source_station=self.source_station, destination_station=self.destination_station,
                          max_frame=self.max_frame, keepalive_echo=self.keepalive_echo)


def visa_framing(t: TomlTable, network: str = "visa") -> VisaFraming:
    """Read a ``framing = { kind = "visa", ... }`` table: ``source_station``, ``destination_station`` (6 digits),
    ``max_frame``, ``keepalive_echo``."""
    framing_kind(t, ("visa",), network)
    max_frame, echo = limits(t)
    stations = {}
    for key in ("source_station", "destination_station"):
        value = t.get(key, str, "000000")
        try:
            station_bcd(value)
        except ValueError as exc:
            raise t.error(key, str(exc)) from None
        stations[key] = value
    t.done()
    return VisaFraming(max_frame=max_frame, keepalive_echo=echo, **stations)
