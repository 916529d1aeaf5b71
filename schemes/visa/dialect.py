"""A link's dialect: its codec, and the translation between its bodies and the network's reference ones.

The engine finds a network by name, so one network object (and one codec: the reference dialect, jPOS
``base1.xml`` with cp500) decodes and encodes for every VISA link. A link whose dialect differs (another code
page, right-padded BCD, EBCDIC fee amounts, ...) has its framer translate each body between the two: decoded with
one compiled codec, re-encoded with the other. Every difference a :class:`~schemes.visa.spec.Dialect` allows
carries the same information both ways (text in two single-byte code pages of the same repertoire, digits padded
on either side, a sign and digits as a sign byte and BCD or as characters), so the translation loses nothing. It
costs a decode and an encode per message on such a link only; the default dialect translates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import cache, partial

from schemes.visa.spec import (
    AMOUNT_DIGITS,
    DEFAULT_DIALECT,
    Dialect,
    amount_from_wire,
    amount_to_wire,
    base1_spec,
)
from switch.model.errors import DecodeError, EncodeError
from switch.wire.codec import WireFields
from switch.wire.compiled import CompiledCodec, compile_codec
from switch.wire.framing.base import FrameEncodeError

Convert = Callable[[str], str]


@cache
def codec_for(dialect: Dialect) -> CompiledCodec:
    """The compiled codec of one dialect (one per distinct dialect, shared by its links)."""
    differences = [f"{key}={value}" for key, value in asdict(dialect).items()
                   if getattr(DEFAULT_DIALECT, key) != value]
    return compile_codec("visa" + "".join(f" {d}" for d in differences), base1_spec(dialect))


def _text_amounts(dialect: Dialect) -> tuple[dict[int, Convert], dict[int, Convert]]:
    """Converters of the fields whose wire values differ between ``dialect`` and the reference: to the
    reference, and from it."""
    to_ref: dict[int, Convert] = {}
    from_ref: dict[int, Convert] = {}
    if dialect.fee_amounts == "ebcdic":  # "D00000123" on the link, "4400000123" (sign byte + BCD) in the reference
        for number in AMOUNT_DIGITS:
            to_ref[number] = partial(amount_to_wire, number)
            from_ref[number] = partial(amount_from_wire, number)
    if dialect.de48 == "ebcdic":  # text on the link, the hex of its EBCDIC bytes in the reference
        cp = dialect.code_page
        to_ref[48] = lambda value: value.encode(cp).hex().upper()
        from_ref[48] = lambda value: bytes.fromhex(value).decode(cp)
    return to_ref, from_ref


class Transcoder:
    """Bodies between a link's dialect and the reference dialect (sans-I/O; one per link, shared by its
    connections: it holds no per-message state)."""

    __slots__ = ("dialect", "from_ref", "link", "reference", "to_ref")

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.link = codec_for(dialect)
        self.reference = codec_for(DEFAULT_DIALECT)
        self.to_ref, self.from_ref = _text_amounts(dialect)

    def __repr__(self) -> str:
        return f"Transcoder({self.dialect})"

    @staticmethod
    def _convert(fields: WireFields, converters: dict[int, Convert]) -> None:
        for number, convert in converters.items():
            value = fields.get(number)
            if value is not None:
                fields[number] = convert(value)

    def inbound(self, body: bytes) -> bytes:
        """A body from the link in the reference dialect. A body the link's dialect cannot read is handed on as it
        came: the network's decoder then reports what is wrong with it (and the link answers as it does for any
        body that does not decode)."""
        try:
            mti, fields = self.link.decode(body)
            self._convert(fields, self.to_ref)
            return self.reference.encode(mti, fields)
        except (DecodeError, EncodeError, ValueError):
            return body

    def outbound(self, body: bytes) -> bytes:
        """A body the network encoded, in the link's dialect. The network built it, so it decodes; a value the
        link's dialect cannot carry (a character outside its code page) is our error, not the peer's."""
        try:
            mti, fields = self.reference.decode(body)
            self._convert(fields, self.from_ref)
            return self.link.encode(mti, fields)
        except (DecodeError, EncodeError, ValueError) as exc:
            raise FrameEncodeError(f"not expressible in the link's VISA dialect: {type(exc).__name__}") from None
