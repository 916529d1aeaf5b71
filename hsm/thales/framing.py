"""Sans-I/O framing of the payShield host protocol over TCP: a 2-byte big-endian length before each message.

The length counts the bytes that follow it (header, command or response code, fields, trailer). A message
longer than 65535 bytes cannot be framed; a zero length is not a message and is skipped.
"""

from __future__ import annotations

from hsm.thales.errors import LocalThalesError

MAX_MESSAGE = 0xFFFF


def frame(message: bytes) -> bytes:
    """The bytes to send for ``message``: its 2-byte big-endian length, then the message."""
    if len(message) > MAX_MESSAGE:
        raise LocalThalesError("frame", "length", f"message of {len(message)} bytes exceeds {MAX_MESSAGE}")
    return len(message).to_bytes(2, "big") + message


class FrameBuffer:
    """Accumulates received bytes and hands out whole messages (h11 style: feed, then pull)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append bytes read from the stream."""
        self._buffer += data

    def next_message(self) -> bytes | None:
        """The next complete message (without its length), or ``None`` until more bytes arrive."""
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if length == 0:
                del self._buffer[:2]
                continue
            if len(self._buffer) < 2 + length:
                return None
            message = bytes(self._buffer[2:2 + length])
            del self._buffer[:2 + length]
            return message
        return None

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a message (a partial frame at connection close)."""
        return len(self._buffer)
