"""Plain length-prefix framings: 2-byte binary, 2-byte BCD, 4 ASCII digits; optional 5-byte TPDU.

Layouts follow jPOS ``NACChannel``/``PostChannel`` (binary), ``NCCChannel``/``BCDChannel`` (BCD) and
``ASCIIChannel`` (ASCII digits), which moov-io/iso8583 ``network/`` also implements: the length counts the
bytes after the prefix (TPDU included) unless the host counts the prefix too (jPOS ``include-header-length``,
``AmexChannel``). A zero length is a keep-alive, echoed back as jPOS channels do.

TPDU (jPOS ``NACChannel``): ``id(1) destination(2) source(2)``; a reply swaps destination and source.
"""

from __future__ import annotations

from switch.model.errors import FramingError
from switch.wire.framing.base import KEEPALIVE, BufferedFramer, Frame, check_body

TPDU_LEN = 5


def swap_tpdu(tpdu: bytes) -> bytes:
    """The reply TPDU: bytes 1-2 (destination) and 3-4 (source) exchanged."""
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


class LengthPrefixFramer(BufferedFramer):
    """Base for the three prefix encodings; subclasses define the prefix size, reader and writer."""

    __slots__ = ("_adjust", "_tpdu", "tpdu_default")

    PREFIX = 2
    MAX_LENGTH = 0xFFFF

    def __init__(
        self,
        *,
        tpdu: bool = False,
        tpdu_default: bytes = bytes.fromhex("6000000000"),
        length_includes_prefix: bool = False,
        max_frame: int = 8192,
        keepalive_echo: bool = True,
    ) -> None:
        super().__init__(max_frame, keepalive_echo)
        if len(tpdu_default) != TPDU_LEN:
            raise ValueError("a TPDU is 5 bytes")
        self._tpdu = tpdu
        self.tpdu_default = tpdu_default
        self._adjust = self.PREFIX if length_includes_prefix else 0

    # -- prefix codec, per subclass -------------------------------------------------------------------
    def _read_length(self, buf: bytearray, pos: int) -> int:
        raise NotImplementedError

    def _write_length(self, length: int) -> bytes:
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------------------
    def _parse(self) -> Frame | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < self.PREFIX:
            return None
        length = self._without_prefix(self._read_length(buf, pos), self._adjust, f"{self._adjust}-byte")
        start = pos + self.PREFIX
        if length == 0:
            self._pos = start
            return KEEPALIVE
        end = self._claim(start, length)
        if end is None:
            return None
        if not self._tpdu:
            return Frame(bytes(buf[start:end]))
        if length <= TPDU_LEN:
            raise FramingError(f"frame of {length} bytes has no room for a message after the 5-byte TPDU")
        split = start + TPDU_LEN
        return Frame(bytes(buf[split:end]), bytes(buf[start:split]))

    # -- writing --------------------------------------------------------------------------------------
    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        header = b""
        if self._tpdu:
            if reply_to is not None and len(reply_to.header) == TPDU_LEN:
                header = swap_tpdu(reply_to.header)
            else:
                header = self.tpdu_default
        check_body(body, self.MAX_LENGTH - self._adjust - len(header))
        return b"".join((self._write_length(len(header) + len(body) + self._adjust), header, body))

    def keepalive_probe(self) -> bytes | None:
        return self._write_length(0)

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        if not self.keepalive_echo or not frame.keepalive:
            return None
        return self._write_length(0)


class Binary2Framer(LengthPrefixFramer):
    """2-byte big-endian binary length (jPOS ``NACChannel``/``PostChannel``, moov ``Binary2Bytes``)."""

    __slots__ = ()

    def _read_length(self, buf: bytearray, pos: int) -> int:
        return (buf[pos] << 8) | buf[pos + 1]

    def _write_length(self, length: int) -> bytes:
        return length.to_bytes(2, "big")


# BCD byte -> value, or -1 where a nibble is not a decimal digit.
_BCD = tuple((b >> 4) * 10 + (b & 0x0F) if (b >> 4) < 10 and (b & 0x0F) < 10 else -1 for b in range(256))


class Bcd2Framer(LengthPrefixFramer):
    """2-byte packed-BCD length, e.g. ``01 15`` = 115 (jPOS ``NCCChannel``/``BCDChannel``)."""

    __slots__ = ()

    MAX_LENGTH = 9999

    def _read_length(self, buf: bytearray, pos: int) -> int:
        high = _BCD[buf[pos]]
        low = _BCD[buf[pos + 1]]
        if high < 0 or low < 0:
            raise FramingError("2-byte length prefix is not packed BCD (a nibble above 9)")
        return high * 100 + low

    def _write_length(self, length: int) -> bytes:
        return bytes.fromhex(f"{length:04d}")


class Ascii4Framer(LengthPrefixFramer):
    """4 ASCII decimal digits (jPOS ``ASCIIChannel``, moov ``ASCII4BytesHeader``)."""

    __slots__ = ()

    PREFIX = 4
    MAX_LENGTH = 9999

    def _read_length(self, buf: bytearray, pos: int) -> int:
        return read_ascii_digits(buf, pos, 4)

    def _write_length(self, length: int) -> bytes:
        return b"%04d" % length


def read_ascii_digits(buf: bytearray, pos: int, count: int) -> int:
    """``count`` ASCII digits at ``pos`` as an int; FramingError on anything else (signs, spaces)."""
    digits = bytes(buf[pos:pos + count])
    if not digits.isdigit():  # bytes.isdigit() accepts ASCII 0-9 only
        # The bytes themselves stay out of the message: a misaligned stream may put card data here.
        raise FramingError(f"length prefix is not {count} ASCII digits")
    return int(digits)
