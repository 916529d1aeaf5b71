"""UnionPay (CUPS) behind the network contract: the ISO 8583:1987 base with what UnionPay does differently.

- Framing: the 46-byte header (:mod:`schemes.unionpay.framing`); a frame whose header carries a reject code is
  UnionPay sending one of our messages back unprocessed: a REJECT of that original (told by the header before the
  body is decoded, so it is never taken for a new request), its acquirer answered 96.
- A malformed message from UnionPay (a header that breaks its layout in a frame the length prefix delimits, an MTI
  UnionPay does not define, a field that does not decode) is sent back the way CUPS itself refuses one: under its
  own header, ids swapped, with a reject code in F10 (the link's ``reject_codes``). Not an answer we cannot read
  (its request times out), and never a message that is itself a reject (two switches would bounce it for ever).
- Body: :data:`schemes.unionpay.spec.SPEC` on the compiled codec; DE 48 and DE 63 between their wire bytes and
  canonical text (:mod:`schemes.unionpay.fields`); GBK text fields decoded and encoded back byte for byte.
- Requests UnionPay sends: balance inquiries carry no amount (DE 4), as public samples show.
- Response codes: :data:`schemes.unionpay.codes.UNIONPAY_CODES`; network management:
  :mod:`schemes.unionpay.session`; secret fields: the default ones, plus DE 48 usage NK (a key), DE 61.2 and
  61.6 (identity document number, CVN2) and DE 63 usage SM (an SM4 PIN block); DE 53 (flags) is shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from schemes.iso87 import Iso87Network
from schemes.unionpay.codes import MAC_ERROR
from schemes.unionpay.fields import (
    de48_from_wire,
    de48_to_wire,
    de63_from_wire,
    de63_to_wire,
    mask_de48,
    mask_de61,
    mask_de63,
)
from schemes.unionpay.framing import RejectCodes, UnionPayFramer, UnionPayFraming, unionpay_framing
from schemes.unionpay.header import HEADER_LEN, NO_REJECT, CupsHeader, HeaderError, describe_reject
from schemes.unionpay.session import UnionPayLink, UnionPaySession, read_options
from switch.contracts.network import (
    KEEPALIVE,
    FrameKind,
    Inbound,
    LinkOptions,
    NetworkSession,
    Refusal,
    RefusalForm,
)
from switch.model.codes import ResponseCode
from switch.model.errors import DecodeError, EncodeError, FieldError, FramingError, RemoteProtocolError
from switch.model.masking import SECRET_FIELDS, Masking
from switch.model.message import DEFAULT_ECHO_FIELDS, Message
from switch.model.toml import TomlTable
from switch.wire.codec import WireFields
from switch.wire.framing.base import Frame, FrameEncodeError, Framer

_REQUEST, _RESPONSE, _REJECT = FrameKind.REQUEST, FrameKind.RESPONSE, FrameKind.REJECT
_NO_REJECT = NO_REJECT.encode("ascii")
_ANSWER_FUNCTIONS = b"13579"  # MTI function digits of what answers something: never rejected back

# Canonical text of the fields the codec carries as bytes (schemes.unionpay.spec.RAW_FIELDS).
_FROM_WIRE: dict[int, Callable[[bytes], str]] = {48: de48_from_wire, 63: de63_from_wire}
_TO_WIRE: dict[int, Callable[[str], bytes]] = {48: de48_to_wire, 63: de63_to_wire}

MASKING = Masking(SECRET_FIELDS - {53}, subfields={48: mask_de48, 61: mask_de61, 63: mask_de63})

# A response echoes the request's fields as ISO 8583:1987 does, but not DE 22 (POS entry mode: absent from the
# public samples' responses) and with DE 60 and DE 121 (UnionPay's reserved fields: echoed in those samples).
ECHO_FIELDS: tuple[int, ...] = (*(n for n in DEFAULT_ECHO_FIELDS if n not in (22, 24)), 60, 121)

# Mandatory fields of the requests UnionPay sends, by MTI class; a PAN (DE 2 or track 2) for 1, 2 and 4, and an
# amount unless DE 3 says balance inquiry (30, 31).
_MANDATORY: dict[str, tuple[int, ...]] = {"1": (3, 11), "2": (3, 11), "4": (3, 11), "8": (11, 70)}
_INQUIRIES = ("30", "31")
_DIGITS: dict[int, int] = {3: 6, 4: 12, 7: 10, 11: 6, 49: 3, 70: 3}  # field -> its number of digits


def _safe_reason(exc: ValueError) -> str:
    # A codec error names the offending bytes; only what went wrong may be said.
    return "not GBK text" if isinstance(exc, UnicodeError) else str(exc)


@dataclass
class UnionPayNetwork(Iso87Network):
    """UnionPay: see the module docstring. ``reject_code`` is what the acquirer of a rejected request gets."""

    reject_code: ResponseCode = ResponseCode.SYSTEM_MALFUNCTION
    # MAC on a UnionPay link (a link's ``mac = true``): UnionPay carries the message MAC in DE 128 (reference
    # section 7.2) and answers a request whose MAC fails A0 (schemes.unionpay.codes); links may override both.
    mac_field: str = "128"
    mac_failure_code: str = MAC_ERROR
    # The switch numbers what it sends to the network itself (its own STAN, DE 7; switch.exchange.identity).
    own_identity: bool = True

    # -- link options ---------------------------------------------------------------------------------
    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        link_framing = UnionPayFraming() if framing is None else unionpay_framing(framing, self.name)
        if options is None:
            return UnionPayLink(link_framing)
        return read_options(link_framing, options)

    def session(self, options: LinkOptions) -> NetworkSession:
        return UnionPaySession(self.make_response, options if isinstance(options, UnionPayLink) else UnionPayLink())

    # -- frames ---------------------------------------------------------------------------------------
    def classify(self, frame: Frame) -> Inbound:
        if frame.keepalive:
            return KEEPALIVE
        header = frame.header
        if len(header) != HEADER_LEN:
            raise HeaderError(f"{len(header)} bytes, a header is {HEADER_LEN}")
        if header[41:46] != _NO_REJECT:
            return self._rejected(frame)
        ids = header[6:28]
        if not (ids.isascii() and ids.decode("ascii").isprintable()):
            CupsHeader.parse(header)  # raises the HeaderError naming which id, with its reject code
        msg = self.decode(frame.body)
        msg.meta.header = header
        return Inbound(_RESPONSE if msg.is_response else _REQUEST, msg)

    def unframe(self, data: bytes) -> Frame:
        """The 46-byte header and the body, cut by the header's own total length (a capture without the 4-digit
        length that links send by default)."""
        framer = UnionPayFramer(length_prefix=False)
        framer.receive_data(bytes(data))
        frame = framer.next_frame()
        if frame is None or framer.buffered:
            raise FramingError(f"{len(data)} bytes are not one UnionPay frame (header total length)")
        return frame

    def header_fields(self, header: bytes) -> list[tuple[str, str]]:
        if not header:
            return []
        parsed = CupsHeader.parse(header)
        out = [(name, value.hex().upper() if isinstance(value, bytes) else str(value))
               for name, value in dataclasses.asdict(parsed).items()]
        if parsed.rejected:
            out.append(("reject", describe_reject(parsed.reject_code)))
        return out

    def refuse(self, frame: Frame, error: Exception, framer: Framer) -> Refusal:
        """A malformed message back under its own header with the link's reject code for what is wrong (see the
        module docstring); nothing for a reject or an answer."""
        header, body = frame.header, frame.body
        mti = body[:4].decode("ascii", "replace") if body[:4].isascii() else ""
        if len(header) == HEADER_LEN and header[41:46] != _NO_REJECT:
            return Refusal(RefusalForm.NONE, what="reject")
        if len(mti) == 4 and mti.isdigit() and body[2:3] in _ANSWER_FUNCTIONS:
            return Refusal(RefusalForm.NONE, what=mti)
        codes = framer.reject_codes if isinstance(framer, UnionPayFramer) else RejectCodes()
        code = codes.for_error(error)
        if not isinstance(framer, UnionPayFramer):
            return Refusal(RefusalForm.NONE, code=code, what=mti)
        try:
            wire = framer.reject(frame, code)
        except (FrameEncodeError, ValueError):  # nothing to send back (a header and no message)
            return Refusal(RefusalForm.NONE, code=code, what=mti)
        return Refusal(RefusalForm.REJECT, wire, code, mti)

    def _rejected(self, frame: Frame) -> Inbound:
        """UnionPay sent one of our messages back with a reject code: a reject of that message, whether or not
        its body can be read back (never a request to route)."""
        code = frame.header[41:46]
        if not (code.isascii() and code.isdigit()):
            raise HeaderError("reject code is not 5 ASCII digits")
        try:
            original: Message | None = self.decode(frame.body)
        except RemoteProtocolError:
            original = None
        if original is not None:
            original.meta.header = frame.header
        return Inbound(_REJECT, original, describe_reject(code.decode("ascii")), self.reject_code)

    # -- bytes <-> canonical ------------------------------------------------------------------------
    def to_canonical(self, mti: str, fields: WireFields) -> Message:
        msg = super().to_canonical(mti, fields)
        if 48 in fields or 63 in fields:
            out = msg.fields
            for number, convert in _FROM_WIRE.items():
                raw = fields.get(number)
                if raw is None:
                    continue
                try:
                    out[number] = convert(bytes.fromhex(raw))
                except ValueError as exc:
                    raise DecodeError(_safe_reason(exc), str(number), 0, mti) from None
        return msg

    def from_canonical(self, msg: Message) -> tuple[str, WireFields]:
        mti, out = super().from_canonical(msg)
        for number, convert in _TO_WIRE.items():
            value = out.get(number)
            if value is None:
                continue
            try:
                out[number] = convert(value).hex().upper()
            except ValueError as exc:
                raise EncodeError(_safe_reason(exc), str(number)) from None
        return mti, out

    # -- rules --------------------------------------------------------------------------------------
    def validate(self, msg: Message) -> None:
        """Raise :class:`FieldError` when a request lacks what UnionPay's requests carry or breaks a format."""
        if not msg.is_request:
            return
        fields = msg.fields
        for number in _MANDATORY.get(msg.mti_class, ()):
            if number not in fields:
                raise FieldError(number, "mandatory field missing")
        if msg.mti_class in "124":
            if msg.pan is None:
                raise FieldError(2, "PAN missing (neither field 2 nor track 2)")
            code = fields.get(3)
            if 4 not in fields and not (isinstance(code, str) and code[:2] in _INQUIRIES):
                raise FieldError(4, "mandatory field missing (only a balance inquiry has no amount)")
        for number, size in _DIGITS.items():
            value = fields.get(number)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) != size or not (value.isascii() and value.isdigit()):
                raise FieldError(number, f"expected {size} digits")

