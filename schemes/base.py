"""The adapter interface every scheme implements, with the ISO 8583:1987 behaviour as default.

Subclasses override only what their network does differently. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import iso8583

from switch.model.codes import ResponseCode
from switch.model.errors import DecodeError, EncodeError, RemoteProtocolError, UnknownMtiError
from switch.model.message import DEFAULT_ECHO_FIELDS, FieldValue, Message, MessageMeta, match_mti
from switch.wire.codec import Codec, WireFields

# Network management information codes, ISO 8583:1987 field 70.
SIGN_ON = "001"
SIGN_OFF = "002"
ECHO_TEST = "301"


class FieldError(RemoteProtocolError):
    """A decoded message lacks a mandatory field or carries a value that breaks the field's rule."""

    def __init__(self, field_number: int, reason: str) -> None:
        self.field = field_number
        self.reason = reason
        super().__init__(f"field {field_number}: {reason}")


@dataclass(frozen=True)
class FieldRule:
    """What a field must look like after decoding (checked by :meth:`SchemeAdapter.validate`)."""

    digits: bool = False
    length: int | None = None


# Mandatory fields by MTI class for ISO 8583:1987 requests. 2 may be replaced by 35 (track 2).
_MANDATORY: dict[str, tuple[int, ...]] = {
    "1": (3, 4, 11),
    "2": (3, 4, 11),
    "4": (3, 4, 11),
    "8": (11, 70),
}

# The value types from_canonical passes through unchanged (exactly str: anything else takes the checked loop).
_TEXT_ONLY: frozenset[type] = frozenset({str})

_RULES: dict[int, FieldRule] = {
    2: FieldRule(digits=True),
    3: FieldRule(digits=True, length=6),
    4: FieldRule(digits=True, length=12),
    7: FieldRule(digits=True, length=10),
    11: FieldRule(digits=True, length=6),
    49: FieldRule(digits=True, length=3),
    70: FieldRule(digits=True, length=3),
}


@dataclass
class SchemeAdapter:
    """ISO 8583:1987 adapter over one codec.

    ``binary_fields`` are carried as hex text by the codec and as ``bytes`` in the canonical message.
    ``match_fields`` (with the folded MTI) form the key that pairs a response with its request.
    """

    name: str
    codec: Codec
    binary_fields: frozenset[int] = frozenset({52, 55, 64, 65, 96, 128})
    match_fields: tuple[int, ...] = (11, 41)
    echo_fields: tuple[int, ...] = DEFAULT_ECHO_FIELDS
    # MTI versions/classes this adapter accepts; anything else is answered with a format error.
    mti_classes: frozenset[str] = frozenset({"1", "2", "4", "8"})
    network_codes: Mapping[str, str] = field(
        default_factory=lambda: {"signon": SIGN_ON, "signoff": SIGN_OFF, "echo": ECHO_TEST}
    )
    description: str = ""

    # -- bytes <-> canonical ------------------------------------------------------------------------
    def decode(self, body: bytes, meta: MessageMeta | None = None) -> Message:
        mti, fields = self.codec.decode(body)
        self._check_mti(mti)
        msg = self.to_canonical(mti, fields)
        if meta is not None:
            msg.meta = meta
        msg.meta.scheme = self.name
        return msg

    def encode(self, msg: Message) -> bytes:
        mti, fields = self.from_canonical(msg)
        return self.codec.encode(mti, fields)

    def to_canonical(self, mti: str, fields: WireFields) -> Message:
        # Text fields go across as they are (one C-level dict copy); only the binary ones present are
        # converted. A loop over every field was 3-4% of the node's event loop (fin-sim profile).
        out: dict[int, FieldValue] = dict(fields)
        if self.binary_fields.isdisjoint(fields):  # most messages: no set built, nothing sorted
            return Message(mti, out)
        for number in sorted(self.binary_fields.intersection(fields)):  # a bad one reported in wire order
            try:
                out[number] = bytes.fromhex(fields[number])
            except ValueError:
                raise DecodeError("binary field is not hex", str(number), 0, mti) from None
        return Message(mti, out)

    def from_canonical(self, msg: Message) -> tuple[str, WireFields]:
        fields = msg.fields
        out: WireFields = dict(fields)  # type: ignore[arg-type]  # bytes values are replaced just below
        if _TEXT_ONLY.issuperset(map(type, fields.values())):  # all plain str (most messages): one C-level pass
            return msg.mti, out
        for number, value in fields.items():
            if isinstance(value, bytes):
                if number not in self.binary_fields:
                    raise EncodeError("binary value in a text field", str(number))
                out[number] = value.hex().upper()
        return msg.mti, out

    def salvage(self, body: bytes) -> Message | None:
        """What can be read of a body that failed to decode: the MTI and the fields before the bad one.

        Used only on the error path, to answer 30 with the request's identifying fields where possible.
        pyiso8583 keeps the partial result on its DecodeError, so the reference decoder does the salvage
        whatever codec the hot path uses.
        """
        try:
            doc, _ = iso8583.decode(bytes(body), self.codec.spec)
        except iso8583.DecodeError as exc:
            doc = {k: v for k, v in exc.doc_dec.items() if k != exc.field}
        except Exception:
            return None
        mti = doc.get("t")
        if not isinstance(mti, str) or len(mti) != 4 or not mti.isdigit() or mti[2] not in "024":
            return None
        fields = {int(k): v for k, v in doc.items() if k not in ("h", "t", "p", "1") and k.isdigit()}
        try:
            return self.to_canonical(mti, fields)
        except RemoteProtocolError:
            return Message(mti, {k: v for k, v in fields.items() if k not in self.binary_fields})

    def _check_mti(self, mti: str) -> None:
        # ISO 8583:1987 message functions are 0-5 (request, response, advice, its response, notification, its
        # acknowledgement); 6-9 are reserved for ISO use: such a message has no response MTI to answer with.
        if len(mti) != 4 or not mti.isdigit() or mti[0] != "0" or mti[1] not in self.mti_classes \
                or mti[2] > "5":
            raise UnknownMtiError(mti)

    # -- rules --------------------------------------------------------------------------------------
    def validate(self, msg: Message) -> None:
        """Raise :class:`FieldError` when a request lacks what ISO 8583:1987 makes mandatory."""
        if not msg.is_request:
            return
        for number in _MANDATORY.get(msg.mti_class, ()):
            if number not in msg.fields:
                raise FieldError(number, "mandatory field missing")
        if msg.mti_class in "124" and msg.pan is None:
            raise FieldError(2, "PAN missing (neither field 2 nor track 2)")
        for number, rule in _RULES.items():
            value = msg.fields.get(number)
            if value is None:
                continue
            if not isinstance(value, str):
                raise FieldError(number, "expected text")
            if rule.digits and not value.isdigit():
                raise FieldError(number, "expected digits")
            if rule.length is not None and len(value) != rule.length:
                raise FieldError(number, f"expected {rule.length} characters")

    def match_key(self, msg: Message) -> tuple[str, ...]:
        """Default: folded MTI + STAN (11) + terminal id (41), as jPOS QMUX does."""
        key = [match_mti(msg.mti)]
        for number in self.match_fields:
            value = msg.fields.get(number)
            key.append(value if isinstance(value, str) else "")
        return tuple(key)

    @cached_property
    def _echo_set(self) -> frozenset[int]:
        return frozenset(self.echo_fields)

    def make_response(self, request: Message, code: ResponseCode | str) -> Message:
        return request.make_response(code, self._echo_set)

    def network_request(self, kind: str, stan: str, transmission_time: str) -> Message:
        """A 0800 for ``kind`` in ("signon", "signoff", "echo")."""
        return Message("0800", {7: transmission_time, 11: stan, 70: self.network_codes[kind]})
