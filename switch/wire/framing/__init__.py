"""Sans-I/O framing: delimit ISO 8583 messages on a byte stream and build the bytes to send.

The shared pieces: :class:`Frame`, the :class:`Framer` protocol and its receive buffer (``base``), and the plain
length prefixes ``binary2``, ``bcd2`` and ``ascii4`` with an optional 5-byte TPDU (``length``, ``options``).
Framings that belong to one network live with it (VISA's VMLH and BASE I header in ``schemes.visa``, UnionPay's
46-byte header in ``schemes.unionpay``).
"""

from switch.wire.framing.base import Frame, FrameEncodeError, Framer, MalformedFrame
from switch.wire.framing.length import Ascii4Framer, Bcd2Framer, Binary2Framer, swap_tpdu
from switch.wire.framing.options import LENGTH_KINDS, LengthFraming, length_framing

__all__ = [
    "LENGTH_KINDS",
    "Ascii4Framer",
    "Bcd2Framer",
    "Binary2Framer",
    "Frame",
    "FrameEncodeError",
    "Framer",
    "LengthFraming",
    "MalformedFrame",
    "length_framing",
    "swap_tpdu",
]
