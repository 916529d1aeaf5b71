"""VISA BASE I / V.I.P. behind the network contract: what it does differently from ISO 8583:1987.

- Framing: VMLH and the BASE I header (:mod:`schemes.visa.framing`); a frame under a reject header is the network
  sending one of our messages back unprocessed, classified as a REJECT of that message (never routed);
  session-control heartbeats are answered by the framing and never routed. A malformed message from the network
  (a header chain that breaks its layout in a frame the VMLH delimits, an MTI the network does not define, a field
  that does not decode) is sent back under a reject header with the link's reject code (``reject_codes``): not an
  answer we cannot read (its request times out), and never a frame that is itself a reject.
- Body: BCD numerics, EBCDIC text, binary lengths (:mod:`schemes.visa.spec`), on the compiled codec. A link whose
  dialect differs from the reference has its framer translate (:mod:`schemes.visa.dialect`).
- Canonical form: ISO 8583:1987 numbering and values. DE 52, 55, 64, 96 and 128 are bytes; every other field the
  wire carries as bytes (DE 48, 60, 62, 63, 118, 124, 126, 127, the third bitmap's) is the upper-case hex of those
  bytes, text that other networks' text fields carry and that comes back byte for byte; :mod:`schemes.visa.fields`
  reads their structure (62.2, the transaction identifier, for settlement). DE 28-31 and 97 are x+n text ("D00000150");
  track 2 carries "D" as its separator ("=" from other networks becomes "D").
- Response codes: :mod:`schemes.visa.codes`. Secret fields: the defaults, plus the chip cryptograms of the third
  bitmap and the secondary PIN block, with DE 126 shown subfield by subfield and 126.10 (CVV2) hidden.
- Network management: ISO 8583:1987's (:class:`schemes.iso87.Iso87Session`) with the link's DE 70 codes and key
  field (:mod:`schemes.visa.link`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from schemes.iso87 import Iso87Network, Iso87Session
from schemes.visa.fields import mask_de62, mask_de63, mask_de126
from schemes.visa.framing import RejectCodes, VisaFramer, VisaFraming
from schemes.visa.header import REJECT_HEADER_LEN, Base1Header, is_reject, original_header, reject_code
from schemes.visa.link import VisaLink, read_link
from schemes.visa.spec import AMOUNT_DIGITS, amount_from_wire, amount_to_wire
from switch.contracts.network import (
    KEEPALIVE,
    SESSION_CONTROL,
    FrameKind,
    Inbound,
    LinkOptions,
    NetworkSession,
    Refusal,
    RefusalForm,
)
from switch.model.codes import ResponseCode
from switch.model.errors import DecodeError, EncodeError, FramingError, RemoteProtocolError
from switch.model.masking import PAN_FIELDS, SECRET_FIELDS, Masking
from switch.model.message import DEFAULT_ECHO_FIELDS, Message
from switch.model.toml import TomlTable
from switch.wire.codec import WireFields
from switch.wire.framing.base import Frame, FrameEncodeError, Framer, MalformedFrame

_REQUEST, _RESPONSE, _REJECT = FrameKind.REQUEST, FrameKind.RESPONSE, FrameKind.REJECT
_AMOUNTS = frozenset(AMOUNT_DIGITS)
_TRACK2 = 35
_DE48 = 48

# DE 126 is shown subfield by subfield (126.10 hidden) instead of whole; the third bitmap's cryptogram (136), ARPC
# (139), issuer authentication data (140) and the secondary PIN block (152) are hidden like DE 55 and 52.
MASKING = Masking(
    secret_fields=(SECRET_FIELDS - {126}) | {136, 139, 140, 152},
    pan_fields=PAN_FIELDS,
    subfields={62: mask_de62, 63: mask_de63, 126: mask_de126},
)
# A response echoes the ISO 8583:1987 identifying fields and, for the network to route and match it, DE 62 (the
# transaction identifier V.I.P. assigned) and DE 63 (its network id). Which fields VISA requires back is not
# public: this is what the README lists.
ECHO_FIELDS = (*DEFAULT_ECHO_FIELDS, 62, 63)


@dataclass
class VisaNetwork(Iso87Network):
    """VISA over the BASE I spec (see the module docstring). ``reject_answer``: what the acquirer of a request
    the network rejected is told (96: the network refused it unprocessed; the public sources do not map reject
    codes to response codes)."""

    reject_answer: ResponseCode = ResponseCode.SYSTEM_MALFUNCTION
    # The switch numbers what it sends to the network itself (its own STAN, DE 7; switch.exchange.identity).
    own_identity: bool = True

    # -- link options and network management -------------------------------------------------------------
    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        return read_link(framing, options, self.name)

    def session(self, options: LinkOptions) -> NetworkSession:
        link = options if isinstance(options, VisaLink) else VisaLink()
        return Iso87Session(self.make_response, link, key_field=link.key_field)

    # -- frames ---------------------------------------------------------------------------------------------
    def classify(self, frame: Frame) -> Inbound:
        if frame.keepalive:
            return SESSION_CONTROL if frame.body else KEEPALIVE
        header = frame.header
        if len(header) >= REJECT_HEADER_LEN and is_reject(header):
            return self._rejected(frame)
        msg = self.decode(frame.body)
        msg.meta.header = header or None
        return Inbound(_RESPONSE if msg.is_response else _REQUEST, msg)

    def unframe(self, data: bytes) -> Frame:
        """The header chain (a BASE I header, or a reject header and the original's) and the body, cut as a link's
        framer cuts them once the VMLH is read: the capture is given one of its own length."""
        framer = VisaFraming().framer()
        framer.receive_data(len(data).to_bytes(2, "big") + bytes(2) + bytes(data))
        frame = framer.next_frame()
        if frame is None or framer.buffered:
            raise FramingError(f"{len(data)} bytes are not one BASE I frame")
        return frame

    def header_fields(self, header: bytes) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if is_reject(header):
            out += [("reject header", header[:header[0]].hex().upper()), ("reject code (H14)", reject_code(header))]
            header = original_header(header)
        if header:
            parsed = Base1Header.parse(header)
            out += [(f"{name}", value.hex().upper() if isinstance(value, bytes) else str(value))
                    for name, value in dataclasses.asdict(parsed).items()]
        return out

    def refuse(self, frame: Frame, error: Exception, framer: Framer) -> Refusal:
        """A malformed message back under a reject header with the link's code for what is wrong (see the module
        docstring); nothing for a reject or an answer."""
        header, body = frame.header, frame.body
        # A reject (whose header chain may be what did not parse: the "body" then starts with it) is never
        # rejected back.
        if is_reject(header) or (isinstance(error, MalformedFrame) and is_reject(body)):
            return Refusal(RefusalForm.NONE, what="reject")
        mti = ""
        if not isinstance(error, MalformedFrame):  # else the "body" starts with the header that did not parse
            mti = body[:2].hex()
            if len(mti) == 4 and mti.isdigit() and mti[2] in "13579":
                return Refusal(RefusalForm.NONE, what=mti)
        codes = framer.reject_codes if isinstance(framer, VisaFramer) else RejectCodes()
        code = codes.for_error(error)
        if not isinstance(framer, VisaFramer):
            return Refusal(RefusalForm.NONE, code=code, what=mti)
        try:
            wire = framer.reject(frame, code)
        except (FrameEncodeError, ValueError):
            return Refusal(RefusalForm.NONE, code=code, what=mti)
        return Refusal(RefusalForm.REJECT, wire, code, mti)

    def _rejected(self, frame: Frame) -> Inbound:
        """A message the network sent back under a reject header. Told by the header, so a body that does not decode
        is still a reject (with no message), never a request to answer."""
        header = frame.header
        code = header[24:26].hex().upper()  # H14: 4 BCD digits; shown as received even when they are not
        reason = f"BASE I reject code {code}"
        try:
            original: Message | None = self.decode(frame.body)
        except RemoteProtocolError:
            original = None
        if original is not None and original.is_response:
            # One of our answers came back rejected: there is no request of ours waiting for it, and its key must
            # not match one of ours that happens to share the STAN and terminal.
            reason = f"{reason} for our {original.mti} stan {original.stan}"
            original = None
        elif original is not None:
            original.meta.header = original_header(header) or None
        return Inbound(_REJECT, original, reason, self.reject_answer)

    # -- wire values <-> canonical ----------------------------------------------------------------------------
    def to_canonical(self, mti: str, fields: WireFields) -> Message:
        if not _AMOUNTS.isdisjoint(fields):
            fields = dict(fields)
            for number in sorted(_AMOUNTS.intersection(fields)):
                try:
                    fields[number] = amount_from_wire(number, fields[number])
                except DecodeError as exc:
                    raise DecodeError(exc.reason, exc.field, exc.position, mti) from None
        return super().to_canonical(mti, fields)

    def from_canonical(self, msg: Message) -> tuple[str, WireFields]:
        if _DE48 in msg.fields and msg.meta.scheme not in ("", self.name):
            # DE 48 is private use: its layout is each network's (VISA's is bytes, carried as their hex). Another
            # network's DE 48 means nothing here, and may be taken for hex: refused (the sender is answered 30).
            raise EncodeError(f"DE 48 from {msg.meta.scheme} is not in VISA's format", str(_DE48))
        mti, out = super().from_canonical(msg)
        track2 = out.get(_TRACK2)
        if track2 is not None and ("=" in track2 or "d" in track2):
            out[_TRACK2] = track2.replace("=", "D").replace("d", "D")
        if not _AMOUNTS.isdisjoint(out):
            for number in _AMOUNTS.intersection(out):
                out[number] = amount_to_wire(number, out[number])
        return mti, out
