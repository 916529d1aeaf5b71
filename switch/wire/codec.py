"""The codec interface, and its reference implementation on pyiso8583.

A codec turns a message body (no framing, no header) into ``(mti, fields)`` and back, following one
pyiso8583 spec dict. Values are exactly what pyiso8583 produces: ``str`` for every field, binary fields as
upper-case hex. Bitmaps are not in ``fields``: the encoder derives them. Scheme adapters map these wire values
to the canonical :class:`switch.model.message.Message`.

The interface is deliberately small (:class:`Codec`) so that a compiled implementation generated from the same
spec dicts can replace :class:`PyIsoCodec` without touching callers. pyiso8583 stays the oracle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import iso8583

from switch.model.errors import DecodeError, EncodeError

Spec = Mapping[str, Mapping[str, Any]]
WireFields = dict[int, str]

# pyiso8583 names the MTI "t", the primary bitmap "p", the secondary bitmap "1", the message header "h".
_NON_DATA_KEYS = frozenset({"h", "t", "p", "1"})


class Codec(Protocol):
    """Encode and decode one message body with one spec."""

    name: str
    spec: Spec

    def decode(self, data: bytes) -> tuple[str, WireFields]:
        """Raise :class:`switch.model.errors.DecodeError` on malformed input."""
        ...

    def encode(self, mti: str, fields: Mapping[int, str]) -> bytes:
        """Raise :class:`switch.model.errors.EncodeError` on a value the spec cannot carry."""
        ...


class PyIsoCodec:
    """The reference codec: pyiso8583 itself."""

    def __init__(self, name: str, spec: Spec) -> None:
        self.name = name
        self.spec = spec

    def decode(self, data: bytes) -> tuple[str, WireFields]:
        try:
            doc_dec, _ = iso8583.decode(bytes(data), self.spec)
        except iso8583.DecodeError as exc:
            raise DecodeError(_reason(exc), str(exc.field), int(exc.pos)) from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            # pyiso8583 lets a few malformed inputs escape as plain exceptions; they are still the peer's
            # garbage, not our bug.
            raise DecodeError(type(exc).__name__, "?", 0) from None
        mti = doc_dec["t"]
        fields = {int(k): v for k, v in doc_dec.items() if k not in _NON_DATA_KEYS}
        return mti, fields

    def encode(self, mti: str, fields: Mapping[int, str]) -> bytes:
        doc: dict[str, str] = {"t": mti}
        for number, value in fields.items():
            if number <= 1:
                raise EncodeError("bitmaps are derived, not set", str(number))
            doc[str(number)] = value
        try:
            out, _ = iso8583.encode(doc, self.spec)
        except iso8583.EncodeError as exc:
            raise EncodeError(_reason(exc), str(exc.field)) from None
        return bytes(out)


def _reason(exc: iso8583.DecodeError | iso8583.EncodeError) -> str:
    """pyiso8583's message without its trailing ": field N pos P" part (we carry those separately).

    pyiso8583 messages describe lengths and encodings, never field data, so they are safe to keep.
    """
    msg: str = exc.msg
    return msg


def spec_fields(spec: Spec) -> list[int]:
    """The data field numbers a spec defines."""
    return sorted(int(k) for k in spec if k not in _NON_DATA_KEYS)
