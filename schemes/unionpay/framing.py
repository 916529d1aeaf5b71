"""UnionPay CUPS switch framing: a 46-byte message header, optionally preceded by 4 ASCII length digits.

Header layout (com.nasoft ``CUPSHeader``; ``com.easy.iso8583.MsgHead``; alatka ``cups.common.iso.xml``):

====== ===== ===============================================================================
offset bytes field
====== ===== ===============================================================================
0      1     F1 header length, binary 46 (0x2E); CUPS rejects anything else (reject 00015)
1      1     F2 header flag and version: bit 0x80 = test message, low 7 bits = version
2      4     F3 total message length, 4 ASCII digits = 46 + body length
6      11    F4 destination id, ASCII, right space-padded
17     11    F5 source id, ASCII, right space-padded
28     3     F6 reserved, zero bytes
31     1     F7 batch number
32     8     F8 transaction information, ASCII
40     1     F9 user information
41     5     F10 reject code, 5 ASCII digits; members always send ``00000``
====== ===== ===============================================================================

Replies swap F4 and F5. F3 already delimits the message, so the separate 4-digit length prefix some
integrators describe is unconfirmed in public sources and off by default. With that prefix, ``0000`` is
treated as a zero-length keep-alive like the other ASCII-length framings (also unconfirmed for CUPS).
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.model.errors import FramingError
from switch.model.toml import TomlTable
from switch.wire.framing.base import KEEPALIVE, BufferedFramer, Frame, check_body
from switch.wire.framing.length import read_ascii_digits
from switch.wire.framing.options import framing_kind, limits

CUPS_HEADER_LEN = 46
ID_LEN = 11
MAX_TOTAL = 9999  # F3 is four digits
# Version 2 in the low 7 bits of F2 (one public implementation sends 0x82 = test flag + version 2).
_VERSION = 0x02
_TEST_FLAG = 0x80
_PREFIX = 4


def cups_id(value: str) -> bytes:
    """An institution id as the 11-byte, right space-padded ASCII field."""
    if len(value) > ID_LEN or not value.isascii() or not value.isprintable():
        raise ValueError(f"a CUPS institution id is at most {ID_LEN} printable ASCII characters")
    return value.encode("ascii").ljust(ID_LEN, b" ")


def build_cups_header(destination: bytes, source: bytes, body_length: int, *, test: bool) -> bytes:
    """A 46-byte header for a message we originate."""
    return b"".join((
        bytes((CUPS_HEADER_LEN, _VERSION | (_TEST_FLAG if test else 0))),
        b"%04d" % (CUPS_HEADER_LEN + body_length),
        destination,
        source,
        bytes(3),  # F6 reserved
        b"\x00",  # F7 batch number
        b"00000000",  # F8 transaction information
        b"\x00",  # F9 user information
        b"00000",  # F10 reject code: members never set one
    ))


def reply_cups_header(request_header: bytes, body_length: int) -> bytes:
    """The request's header with F4/F5 swapped, F3 recomputed and F10 reset to ``00000``."""
    h = bytearray(request_header[:CUPS_HEADER_LEN])
    h[2:6] = b"%04d" % (CUPS_HEADER_LEN + body_length)
    h[6:17], h[17:28] = request_header[17:28], request_header[6:17]
    h[41:46] = b"00000"
    return bytes(h)


class UnionPayFramer(BufferedFramer):
    __slots__ = ("_adjust", "destination", "length_prefix", "source", "test")

    def __init__(
        self,
        *,
        length_prefix: bool = False,
        length_includes_prefix: bool = False,
        source_id: str = "",
        destination_id: str = "",
        test: bool = False,
        max_frame: int = 8192,
        keepalive_echo: bool = True,
    ) -> None:
        super().__init__(max_frame, keepalive_echo)
        self.length_prefix = length_prefix
        self._adjust = _PREFIX if length_prefix and length_includes_prefix else 0
        self.source = cups_id(source_id)
        self.destination = cups_id(destination_id)
        self.test = test

    # -- reading --------------------------------------------------------------------------------------
    def _parse(self) -> Frame | None:
        if self.length_prefix:
            return self._parse_prefixed()
        return self._parse_bare()

    def _parse_prefixed(self) -> Frame | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < _PREFIX:
            return None
        length = self._without_prefix(read_ascii_digits(buf, pos, _PREFIX), self._adjust, f"{_PREFIX}-digit")
        start = pos + _PREFIX
        if length == 0:
            self._pos = start
            return KEEPALIVE
        end = self._claim(start, length)
        if end is None:
            return None
        # The prefix delimits the frame; F3 must still be well-formed but is not required to agree.
        self._check_header_start(buf, start, end)
        return self._split(buf, start, end)

    def _parse_bare(self) -> Frame | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 6:
            return None
        total = self._check_header_start(buf, pos, None)
        self._check_size(total)
        end = pos + total
        if len(buf) < end:
            return None
        self._pos = end
        return self._split(buf, pos, end)

    @staticmethod
    def _check_header_start(buf: bytearray, start: int, end: int | None) -> int:
        """Validate F1 and F3 at ``start``; return F3 (the total length)."""
        if end is not None and end - start < CUPS_HEADER_LEN + 1:
            raise FramingError(f"frame too short for the {CUPS_HEADER_LEN}-byte CUPS header and a message")
        if buf[start] != CUPS_HEADER_LEN:
            raise FramingError(f"CUPS header length byte is {buf[start]}, not {CUPS_HEADER_LEN}")
        total = read_ascii_digits(buf, start + 2, 4)
        if total <= CUPS_HEADER_LEN:
            raise FramingError(f"CUPS total length {total} leaves no room for a message")
        return total

    @staticmethod
    def _split(buf: bytearray, start: int, end: int) -> Frame:
        split = start + CUPS_HEADER_LEN
        return Frame(bytes(buf[split:end]), bytes(buf[start:split]))

    # -- writing --------------------------------------------------------------------------------------
    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        check_body(body, MAX_TOTAL - CUPS_HEADER_LEN - self._adjust)
        if reply_to is not None and len(reply_to.header) >= CUPS_HEADER_LEN:
            header = reply_cups_header(reply_to.header, len(body))
        else:
            header = build_cups_header(self.destination, self.source, len(body), test=self.test)
        if not self.length_prefix:
            return header + body
        prefix = b"%04d" % (CUPS_HEADER_LEN + len(body) + self._adjust)
        return b"".join((prefix, header, body))

    def keepalive_probe(self) -> bytes | None:
        return b"0000" if self.length_prefix else None

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        if not self.keepalive_echo or not frame.keepalive or not self.length_prefix:
            return None
        return b"0000"


@dataclass(frozen=True)
class UnionPayFraming:
    """Link options of the ``unionpay`` framing."""

    length_prefix: bool = False  # 4 ASCII digits before the header (unconfirmed publicly: off by default)
    length_includes_prefix: bool = False
    source_id: str = ""  # up to 11 characters, space-padded on the wire
    destination_id: str = ""
    test: bool = False  # the test bit of the header's flag byte
    max_frame: int = 8192
    keepalive_echo: bool = True

    def __post_init__(self) -> None:
        cups_id(self.source_id)
        cups_id(self.destination_id)
        if self.length_includes_prefix and not self.length_prefix:
            raise ValueError("length_includes_prefix needs length_prefix")

    @property
    def framing_kind(self) -> str:
        return "unionpay"

    def framer(self) -> UnionPayFramer:
        return UnionPayFramer(length_prefix=self.length_prefix, length_includes_prefix=self.length_includes_prefix,
                              source_id=self.source_id, destination_id=self.destination_id, test=self.test,
                              max_frame=self.max_frame, keepalive_echo=self.keepalive_echo)


def unionpay_framing(t: TomlTable, network: str = "unionpay") -> UnionPayFraming:
    """Read a ``framing = { kind = "unionpay", ... }`` table: ``length_prefix``, ``length_includes_prefix``,
    ``source_id``, ``destination_id`` (up to 11 characters), ``test``, ``max_frame``, ``keepalive_echo``."""
    framing_kind(t, ("unionpay",), network)
    max_frame, echo = limits(t)
    ids = {}
    for key in ("source_id", "destination_id"):
        value = t.get(key, str, "")
        try:
            cups_id(value)
        except ValueError as exc:
            raise t.error(key, str(exc)) from None
        ids[key] = value
    prefix = bool(t.get("length_prefix", bool, False))
    counts = bool(t.get("length_includes_prefix", bool, False))
    if counts and not prefix:
        raise t.error("length_includes_prefix", "needs length_prefix = true")
    cfg = UnionPayFraming(length_prefix=prefix, length_includes_prefix=counts, test=bool(t.get("test", bool, False)),
                          max_frame=max_frame, keepalive_echo=echo, **ids)
    t.done()
    return cfg
