"""Visa BASE I / V.I.P. framing: the 4-byte VMLH, then the BASE I header chain, then the message.

VMLH (moov-io/iso8583 ``network/vml_header.go``; jPOS ``VAPChannel``): bytes 0-1 are the big-endian length
of everything after the VMLH, byte 2 is reserved, the left nibble of byte 3 is the message format indicator
(2 = session control: heartbeat/shutdown, payload ``C8C2``/``E2C4`` per PosNG ``EAServer``). A VMLH with
length 0 is a "VAP poll", echoed back as the same 4 zero bytes (jPOS ``VAPChannel.getMessageLength``).
Session control never reaches the network's decoder: it is a keep-alive frame whose body is the payload and
whose header is the VMLH, answered by :meth:`VisaFramer.keepalive_reply` and never routed.

The BASE I header (:mod:`schemes.visa.header`): 22 bytes; H2 bit 0x80 says another header follows, as in a
reject (a 26-byte reject header, then the original 22-byte header, jPOS ``VAPChannel.readHeader``). The frame's
``header`` is the whole chain as received; replies are built on the request's (stations swapped).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from typing import Protocol

from schemes.visa.header import (
    BASE1_HEADER_LEN,
    build_base1_header,
    build_reject,
    reply_base1_header,
    station_bcd,
)
from switch.model.errors import FramingError, UnknownMtiError
from switch.model.toml import TomlTable
from switch.wire.framing.base import KEEPALIVE, BufferedFramer, Frame, FrameEncodeError, MalformedFrame, check_body
from switch.wire.framing.options import framing_kind, limits

VMLH_LEN = 4
KEEPALIVE_BYTES = bytes(VMLH_LEN)
_SESSION_CONTROL = 2
# A reject chain is two headers; allow one more before calling the stream garbage.
_MAX_CHAINED_HEADERS = 3
# Session-control payloads (PosNG EAServer): EBCDIC "HB" is a heartbeat, "SD" a shutdown.
HEARTBEAT = bytes.fromhex("C8C2")
SHUTDOWN = bytes.fromhex("E2C4")
HEARTBEAT_REPLIES = ("echo", "none")
# H14 of a malformed message sent back under a reject header. VISA's reject codes are not public: one value per
# failure, each a link option (framing table ``reject_codes``); 0030 echoes DE 39 30, format error.
DEFAULT_REJECT = "0030"


@dataclass(frozen=True)
class RejectCodes:
    """The reject code (H14, 4 digits) a malformed inbound message is sent back with, by what is wrong with it:
    ``header`` (the BASE I header chain breaks its layout), ``mti`` (an MTI the network does not define), ``field``
    (a field that does not decode). None is public."""

    header: str = DEFAULT_REJECT
    mti: str = DEFAULT_REJECT
    field: str = DEFAULT_REJECT

    def __post_init__(self) -> None:
        for item in fields(self):
            code = getattr(self, item.name)
            if len(code) != 4 or not code.isascii() or not code.isdigit():
                raise ValueError(f"reject code {item.name} must be 4 digits")

    def for_error(self, error: Exception) -> str:
        if isinstance(error, MalformedFrame):
            return self.header
        return self.mti if isinstance(error, UnknownMtiError) else self.field


class BodyTranscoder(Protocol):
    """Translates bodies between a link's dialect and the network's (schemes.visa.dialect.Transcoder)."""

    def inbound(self, body: bytes) -> bytes: ...

    def outbound(self, body: bytes) -> bytes: ...


class VisaFramer(BufferedFramer):
    """VMLH frames with the BASE I header chain. ``transcoder`` (a link whose dialect is not the network's
    reference one) translates every body read and written; ``heartbeat_reply`` says how a session-control
    heartbeat is answered ("echo": sent back as it came; "none")."""

    __slots__ = ("destination", "heartbeat_reply", "reject_codes", "source", "transcoder")

    MAX_LENGTH = 0xFFFF

    def __init__(
        self,
        *,
        source_station: str = "000000",
        destination_station: str = "000000",
        max_frame: int = 8192,
        keepalive_echo: bool = True,
        heartbeat_reply: str = "echo",
        transcoder: BodyTranscoder | None = None,
        reject_codes: RejectCodes | None = None,
    ) -> None:
        super().__init__(max_frame, keepalive_echo)
        self.source = station_bcd(source_station)
        self.destination = station_bcd(destination_station)
        if heartbeat_reply not in HEARTBEAT_REPLIES:
            raise ValueError(f"heartbeat_reply is one of {', '.join(HEARTBEAT_REPLIES)}")
        self.heartbeat_reply = heartbeat_reply
        self.transcoder = transcoder
        self.reject_codes = reject_codes if reject_codes is not None else RejectCodes()

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
            # Session control (heartbeat, shutdown): the VMLH is kept as the frame's header, so that a heartbeat
            # can be answered with the indicator it came with.
            return Frame(bytes(buf[start:end]), bytes(buf[pos:start]), True)
        # The VMLH delimits the frame: a header chain that breaks its layout leaves the stream in step, and the
        # frame is sent back rejected (the network's refuse) with what came after the VMLH as its message.
        try:
            split = self._header_end(buf, start, end)
        except FramingError as exc:
            raise MalformedFrame(Frame(bytes(buf[start:end])), exc) from None
        if split == end:
            raise MalformedFrame(Frame(b"", bytes(buf[start:end])),
                                 FramingError("BASE I frame carries a header but no message"))
        body = bytes(buf[split:end])
        if self.transcoder is not None:
            body = self.transcoder.inbound(body)
        return Frame(body, bytes(buf[start:split]))

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
        if self.transcoder is not None and body:
            body = self.transcoder.outbound(body)
        check_body(body, self.MAX_LENGTH - BASE1_HEADER_LEN)
        if reply_to is not None and len(reply_to.header) >= BASE1_HEADER_LEN:
            header = reply_base1_header(reply_to.header, len(body))
        else:
            header = build_base1_header(self.destination, self.source, len(body))
        return self._vmlh(header, body)

    def reject(self, rejected: Frame, code: str) -> bytes:
        """The frame that sends ``rejected`` back unprocessed with reject code ``code`` (4 digits): a reject
        header, the message's own header and the message as they came (what the network does with a message it
        cannot process, and what the switch does with a malformed one)."""
        # A frame without a header of its own (its header chain was what could not be read: the frame's bytes are
        # then its body) gets the one it would have had coming from the peer to us (destination: our station),
        # so that the reject goes back to the peer.
        header = rejected.header if len(rejected.header) >= BASE1_HEADER_LEN else build_base1_header(
            self.source, self.destination, len(rejected.body))
        body = rejected.body
        if self.transcoder is not None and body:
            # back in the link's dialect; a body that is not readable in the reference goes back as it came
            with contextlib.suppress(FrameEncodeError):
                body = self.transcoder.outbound(body)
        if len(body) > self.MAX_LENGTH - 2 * BASE1_HEADER_LEN - 4:
            check_body(body, self.MAX_LENGTH - 2 * BASE1_HEADER_LEN - 4)
        return self._vmlh(build_reject(header, code, len(body)), body)

    @staticmethod
    def _vmlh(header: bytes, body: bytes) -> bytes:
        return b"".join(((len(header) + len(body)).to_bytes(2, "big"), b"\x00\x00", header, body))

    def keepalive_probe(self) -> bytes | None:
        return KEEPALIVE_BYTES

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        if not frame.keepalive:
            return None
        if not frame.body:  # the zero-length poll: echoed (jPOS VAPChannel reply-keepalive)
            return KEEPALIVE_BYTES if self.keepalive_echo else None
        # Session control. No public source says how a heartbeat is answered: by default it is sent back as it
        # came (the VMLH with its indicator, and the payload), as the poll is. A shutdown, or anything else, is
        # not answered.
        if self.heartbeat_reply == "echo" and frame.body.startswith(HEARTBEAT) and len(frame.header) == VMLH_LEN:
            return frame.header + frame.body
        return None


@dataclass(frozen=True)
class VisaFraming:
    """Link options of the ``visa`` framing: the stations of the BASE I header of requests we originate, and how
    keep-alives and heartbeats are answered."""

    source_station: str = "000000"  # 6 digits, BCD in the header
    destination_station: str = "000000"
    max_frame: int = 8192
    keepalive_echo: bool = True  # echo VAP polls (zero-length VMLH)
    heartbeat_reply: str = "echo"  # "echo" | "none": session-control heartbeats
    reject_codes: RejectCodes = field(default_factory=RejectCodes)  # H14 of a malformed message sent back

    def __post_init__(self) -> None:
        station_bcd(self.source_station)
        station_bcd(self.destination_station)
        if self.heartbeat_reply not in HEARTBEAT_REPLIES:
            raise ValueError(f"heartbeat_reply is one of {', '.join(HEARTBEAT_REPLIES)}")

    @property
    def framing_kind(self) -> str:
        return "visa"

    def framer(self, transcoder: BodyTranscoder | None = None) -> VisaFramer:
        return VisaFramer(source_station=self.source_station, destination_station=self.destination_station,
                          max_frame=self.max_frame, keepalive_echo=self.keepalive_echo,
                          heartbeat_reply=self.heartbeat_reply, transcoder=transcoder,
                          reject_codes=self.reject_codes)


def visa_framing(t: TomlTable, network: str = "visa") -> VisaFraming:
    """Read a ``framing = { kind = "visa", ... }`` table: ``source_station``, ``destination_station`` (6 digits),
    ``max_frame``, ``keepalive_echo``, ``heartbeat_reply``, ``reject_codes`` (a table of :class:`RejectCodes`' keys,
    4 digits each)."""
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
    heartbeat = t.get("heartbeat_reply", str, "echo")
    if heartbeat not in HEARTBEAT_REPLIES:
        raise t.error("heartbeat_reply", f"expected one of {', '.join(HEARTBEAT_REPLIES)}")
    codes = _reject_codes(t)
    t.done()
    return VisaFraming(max_frame=max_frame, keepalive_echo=echo, heartbeat_reply=heartbeat, reject_codes=codes,
                       **stations)


def _reject_codes(t: TomlTable) -> RejectCodes:
    table = t.get("reject_codes", dict, {})
    known = {item.name for item in fields(RejectCodes)}
    codes: dict[str, str] = {}
    for key, value in table.items():
        if key not in known:
            raise t.error(f"reject_codes.{key}", f"unknown failure (one of {', '.join(sorted(known))})")
        if not isinstance(value, str) or len(value) != 4 or not value.isascii() or not value.isdigit():
            raise t.error(f"reject_codes.{key}", "expected 4 digits (reject header H14)")
        codes[key] = value
    return RejectCodes(**codes)
