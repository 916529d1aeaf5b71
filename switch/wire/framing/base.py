"""What every framer shares: :class:`Frame`, the :class:`Framer` protocol and the receive buffer.

The buffer is a ``bytearray`` with a read offset. Frames are cut out of it by index arithmetic and the
consumed prefix is dropped only when new data arrives, so a read that carries hundreds of frames costs one
copy per frame plus one compaction, never a re-slice of the whole remainder per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from switch.model.errors import FramingError, LocalProtocolError


@dataclass(frozen=True, slots=True)
class Frame:
    """One delimited unit from the wire.

    ``body`` is the ISO 8583 message from the MTI on (``b""`` for a zero-length keep-alive). ``header`` is
    the message header exactly as received (5-byte TPDU, 22-byte BASE I header or a longer reject chain,
    46-byte CUPS header), ``b""`` when the framing has none. ``keepalive`` marks zero-length keep-alives and
    Visa session-control frames, whose ``body`` is then the session-control payload and ``header`` the 4-byte VMLH
    it came with (so that a heartbeat can be answered with its own indicator).
    """

    body: bytes
    header: bytes = b""
    keepalive: bool = False

    def __repr__(self) -> str:
        # Bodies carry card data: show sizes only.
        return f"Frame(body=<{len(self.body)} bytes>, header={self.header.hex()}, keepalive={self.keepalive})"


class Framer(Protocol):
    """A sans-I/O frame reader/writer for one connection (h11 style: bytes in, frames out)."""

    def receive_data(self, data: bytes) -> None: ...

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None when more bytes are needed.

        Raises :class:`switch.model.errors.FramingError` on a bad length, bad header or oversized frame. The
        stream cannot be resynchronised after that: every later call raises the same error. The exception is
        :class:`MalformedFrame`: a frame delimited but unreadable, skipped; the next call reads on.
        """
        ...

    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        """The full bytes for the wire. With ``reply_to``, the header is built from the request's."""
        ...

    def keepalive_reply(self, frame: Frame) -> bytes | None: ...

    def keepalive_probe(self) -> bytes | None: ...

    @property
    def buffered(self) -> int: ...


class MalformedFrame(FramingError):
    """A frame its framing could delimit (a length prefix says where it ends) but whose header breaks the layout.
    Unlike other framing errors the stream is still in step: the framer goes on with the next frame, and the frame
    (``frame``: its body, and the header bytes as received) is answered in its network's form for a malformed
    message (:meth:`switch.contracts.network.Network.refuse`). ``error`` says what is wrong with it."""

    def __init__(self, frame: Frame, error: FramingError) -> None:
        self.frame = frame
        self.error = error
        super().__init__(str(error))


class FrameEncodeError(LocalProtocolError):
    """We were asked to frame something the framing cannot carry (empty or too long a body)."""


# A zero-length frame: the keep-alive of every framing that defines one.
KEEPALIVE = Frame(b"", b"", True)

# Compact the buffer once the consumed prefix is at least this big even if part of a frame is left,
# so a slow trickle of partial frames after a big batch does not keep the batch's memory alive.
_COMPACT_AT = 1 << 16


class BufferedFramer:
    """Receive buffer and the sticky-error rule shared by all framers. Subclasses implement ``_parse``."""

    __slots__ = ("_buf", "_error", "_pos", "keepalive_echo", "max_frame")

    def __init__(self, max_frame: int, keepalive_echo: bool) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._error: FramingError | None = None
        self.max_frame = max_frame
        self.keepalive_echo = keepalive_echo

    def receive_data(self, data: bytes) -> None:
        pos = self._pos
        if pos:
            if pos == len(self._buf):
                self._buf.clear()
                self._pos = 0
            elif pos >= _COMPACT_AT or pos * 2 >= len(self._buf):
                del self._buf[:pos]
                self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def next_frame(self) -> Frame | None:
        if self._error is not None:
            raise self._error
        try:
            return self._parse()
        except MalformedFrame:
            raise  # the frame is skipped, the stream still in step: not sticky
        except FramingError as exc:
            self._error = exc
            raise

    def _parse(self) -> Frame | None:
        raise NotImplementedError

    def _check_size(self, length: int) -> None:
        # Checked on the length alone, before any of the frame is buffered for it.
        if length > self.max_frame:
            raise FramingError(f"frame length {length} exceeds the maximum of {self.max_frame}")

    def _claim(self, start: int, length: int) -> int | None:
        """The frame's ``length`` bytes start at ``start``: once all are buffered, move the read position past
        them and return their end; None while some are missing. (A zero length is the caller's keep-alive.)"""
        self._check_size(length)
        end = start + length
        if len(self._buf) < end:
            return None
        self._pos = end
        return end

    @staticmethod
    def _without_prefix(length: int, adjust: int, prefix: str) -> int:
        """A host that counts the prefix in the length (jPOS include-header-length) sends at least the prefix's
        own size; a bare zero is still the usual keep-alive."""
        if not adjust or not length:
            return length
        if length < adjust:
            raise FramingError(f"length {length} is shorter than its own {prefix} prefix")
        return length - adjust


def check_body(body: bytes, limit: int) -> None:
    """Refuse bodies a framing cannot carry: empty (that would be a keep-alive) or longer than ``limit``."""
    if not body:
        raise FrameEncodeError("empty message body (use keepalive_probe for keep-alives)")
    if len(body) > limit:
        raise FrameEncodeError(f"message of {len(body)} bytes exceeds the framing's limit of {limit}")
