"""Sans-I/O framing: delimit ISO 8583 messages on a byte stream and build the bytes to send.

Kinds: ``binary2``, ``bcd2`` and ``ascii4`` length prefixes (optionally with a 5-byte TPDU), ``visa``
(VMLH + BASE I header) and ``unionpay`` (46-byte CUPS header). Facts and sources are in each module.
"""

from switch.wire.framing.base import Frame, FrameEncodeError, Framer
from switch.wire.framing.config import KINDS, FramingConfig, framing_config_from_dict, make_framer
from switch.wire.framing.length import Ascii4Framer, Bcd2Framer, Binary2Framer, swap_tpdu
from switch.wire.framing.unionpay import UnionPayFramer
from switch.wire.framing.visa import VisaFramer

__all__ = [
    "KINDS",
    "Ascii4Framer",
    "Bcd2Framer",
    "Binary2Framer",
    "Frame",
    "FrameEncodeError",
    "Framer",
    "FramingConfig",
    "UnionPayFramer",
    "VisaFramer",
    "framing_config_from_dict",
    "make_framer",
    "swap_tpdu",
]
