"""ISO 8583:1987: the network contract's default behaviour, which every network here builds on.

:class:`Iso87Network` implements :class:`switch.contracts.network.Network` for an ISO 8583:1987 host over one
codec: length-prefix framing, MTIs 0xxx, two-character response codes (the core's own), network management
by DE 70 codes. A network that differs overrides what it does differently (its spec, framing, MTIs, response
codes, reject form, network management, secret fields). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Protocol

import iso8583

from switch.contracts.codes import ISO87_CODES, CodeTable
from switch.contracts.network import (
    KEEPALIVE,
    SESSION_CONTROL,
    FrameKind,
    Inbound,
    KeyChange,
    LinkOptions,
    NetMgmt,
    NetworkEvent,
    NetworkSession,
    Refusal,
    RefusalForm,
)
from switch.model.codes import ResponseCode
from switch.model.errors import (
    DecodeError,
    EncodeError,
    FieldError,
    ProtocolError,
    RemoteProtocolError,
    UnknownMtiError,
)
from switch.model.masking import DEFAULT_MASKING, Masking
from switch.model.message import DEFAULT_ECHO_FIELDS, FieldValue, Message, match_mti
from switch.model.toml import TomlTable
from switch.wire.codec import Codec, WireFields
from switch.wire.framing.base import Frame, Framer
from switch.wire.framing.options import LENGTH_KINDS, LengthFraming, length_framing

# Network management information codes, ISO 8583:1987 DE 70, by what they ask: sign-on, sign-off and echo are the
# ISO values every public implementation uses. Key change and cutover have no ISO value: 161 and 201 are what two
# public host implementations use (the reference's network-management table), so a link acts on them only when
# its ``options`` name them (``key_exchange_code``, ``cutover_code``); until then an 0800 with either code is
# answered 00 like any other, as generic hosts always were.
DEFAULT_NETMGMT_CODES: Mapping[NetMgmt, str] = {NetMgmt.SIGN_ON: "001", NetMgmt.SIGN_OFF: "002", NetMgmt.ECHO: "301"}
SUGGESTED_CODES: Mapping[NetMgmt, str] = {NetMgmt.KEY_EXCHANGE: "161", NetMgmt.CUTOVER: "201"}
# Where a key change carries its key (this network's layout, documented in the README): DE 125 (private use, and
# secret in every log and journal row) holds the new zone PIN key under the link's zone master key in Thales
# notation followed by its 6-digit check value.
KEY_FIELD = 125
_KCV_LEN = 6
# Group sign-on and sign-off: one request per institution id of the link, the id in this field (DE 33, forwarding
# institution identification code; configurable as ``institution_field``).
INSTITUTION_FIELD = 33
# Frame kinds as module names: classify runs for every frame, and an Enum attribute costs about 0.25 us on CPython
# 3.11 (a module global a fifth of that).
_REQUEST, _RESPONSE = FrameKind.REQUEST, FrameKind.RESPONSE
_KEY_EXCHANGE, _CUTOVER = NetMgmt.KEY_EXCHANGE, NetMgmt.CUTOVER
_ANSWERS = "1357"  # MTI function digits of responses and acknowledgements: their DE 39 is a response code


@dataclass(frozen=True)
class FieldRule:
    """What a field must look like after decoding (checked by :meth:`Iso87Network.validate`)."""

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


@dataclass(frozen=True)
class Iso87Link:
    """An ISO 8583:1987 link's options: its framing and its network management (``options`` table:
    ``signon_code``, ``signoff_code``, ``echo_code`` (defaults 001, 002, 301), ``key_exchange_code``,
    ``cutover_code`` (off unless given; 161 and 201 are the usual values), 3 digits each; ``institutions``, the
    institution ids a group sign-on and sign-off is sent for, one request each; ``institution_field``, where the
    id goes, default 33)."""

    framing: LengthFraming = field(default_factory=LengthFraming)
    netmgmt: Mapping[NetMgmt, str] = field(default_factory=lambda: dict(DEFAULT_NETMGMT_CODES))
    institutions: tuple[str, ...] = ()
    institution_field: int = INSTITUTION_FIELD
    # DE 70 of a key change that carries the zone MAC key (ZAK) instead of the PIN key: off unless given (160 is
    # the "MAC working key" code of the reference's network-management table).
    mac_key_code: str | None = None

    @property
    def framing_kind(self) -> str:
        return self.framing.kind

    def framer(self) -> Framer:
        return self.framing.framer()


@dataclass
class Iso87Network:
    """ISO 8583:1987 over one codec.

    ``binary_fields`` are carried as hex text by the codec and as ``bytes`` in the canonical message.
    ``match_fields`` (with the folded MTI) form the key that pairs a response with its request.
    """

    name: str
    codec: Codec
    binary_fields: frozenset[int] = frozenset({52, 55, 64, 65, 96, 128})
    match_fields: tuple[int, ...] = (11, 41)
    echo_fields: tuple[int, ...] = DEFAULT_ECHO_FIELDS
    # MTI classes this network accepts; anything else is an unknown MTI (dropped and logged).
    mti_classes: frozenset[str] = frozenset({"1", "2", "4", "8"})
    description: str = ""
    masking: Masking = DEFAULT_MASKING
    codes: CodeTable = ISO87_CODES
    framings: Sequence[str] = LENGTH_KINDS
    # MAC on a link of this network (a link's ``mac = true``, switch.exchange.mac): DE 64 with a primary bitmap only,
    # DE 128 with a secondary; a request whose MAC fails is answered 63 (security violation): ISO 8583:1987 has no
    # code of its own for a MAC failure, and 63 is what ISO 87 hosts answer. Links may override both.
    mac_field: str = "auto"
    mac_failure_code: str = "63"
    # A link to an ISO 8583:1987 host keeps the acquirer's STAN by default (a link's own_stan turns the switch's
    # own numbering on); the card networks' links number their own (switch.exchange.identity).
    own_identity: bool = False
    acquirer_fee: bool = True  # DE 28, amount transaction fee (x+n 8)

    # -- link options -------------------------------------------------------------------------------
    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        link_framing = LengthFraming() if framing is None else length_framing(framing, self.framings, self.name)
        if options is None:
            return Iso87Link(link_framing)
        codes = self._netmgmt_codes(options)
        institutions = options.get("institutions", list, [])
        for i, institution in enumerate(institutions):
            if not isinstance(institution, str) or not institution.isdigit() or not 1 <= len(institution) <= 11:
                raise options.error(f"institutions[{i}]", "expected an institution id of 1 to 11 digits")
        field_number = options.integer("institution_field", INSTITUTION_FIELD, low=2, high=128)
        mac_code = options.get("mac_key_exchange_code", str, None)
        if mac_code is not None and (len(mac_code) != 3 or not mac_code.isdigit() or mac_code in codes.values()):
            raise options.error("mac_key_exchange_code", "expected 3 digits (DE 70) not used by another code")
        options.done()
        return Iso87Link(link_framing, codes, tuple(institutions), field_number, mac_code)

    @staticmethod
    def _netmgmt_codes(options: TomlTable) -> dict[NetMgmt, str]:
        codes = dict(DEFAULT_NETMGMT_CODES)
        seen: dict[str, str] = {}
        for kind in NetMgmt:
            key = f"{kind.value}_code"
            value = options.get(key, str, codes.get(kind))
            if value is None:
                continue
            if len(value) != 3 or not value.isdigit():
                raise options.error(key, "expected 3 digits (ISO 8583:1987 DE 70)")
            if value in seen:
                raise options.error(key, f"{value} is already the {seen[value]}")
            seen[value] = key
            codes[kind] = value
        return codes

    # -- frames ---------------------------------------------------------------------------------------
    def classify(self, frame: Frame) -> Inbound:
        if frame.keepalive:
            return SESSION_CONTROL if frame.body else KEEPALIVE
        msg = self.decode(frame.body)
        msg.meta.header = frame.header or None
        return Inbound(_RESPONSE if msg.is_response else _REQUEST, msg)

    def unframe(self, data: bytes) -> Frame:
        """ISO 8583:1987 hosts send no header (a TPDU, where a link has one, is the link's: pass ``--body``)."""
        return Frame(bytes(data))

    def header_fields(self, header: bytes) -> list[tuple[str, str]]:
        return [("header", header.hex().upper())] if header else []

    # -- bytes <-> canonical ------------------------------------------------------------------------
    def decode(self, body: bytes) -> Message:
        mti, fields = self.codec.decode(body)
        self._check_mti(mti)
        msg = self.to_canonical(mti, fields)
        meta = msg.meta
        meta.scheme = self.name
        meta.masking = self.masking
        return msg

    def encode(self, msg: Message) -> bytes:
        mti, fields = self.from_canonical(msg)
        return self.codec.encode(mti, fields)

    def to_canonical(self, mti: str, fields: WireFields) -> Message:
        # Text fields go across as they are (one C-level dict copy); only the binary ones present are
        # converted. A loop over every field was 3-4% of the node's event loop (fin-sim profile).
        out: dict[int, FieldValue] = dict(fields)
        code = fields.get(39)
        if code is not None:
            if mti[2] in _ANSWERS:  # a response: its code, or the table's default for a code it does not know
                if not (self.codes.identity and self.codes.knows(code)):
                    out[39] = self.codes.core(code)
            elif not self.codes.identity:  # a request's or advice's code (a reversal's reason) is translated or
                out[39] = self.codes.core_or_same(code)  # kept: never replaced by a default
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
        if not self.codes.identity:
            code = fields.get(39)
            if isinstance(code, str):
                out[39] = self.codes.wire(code) if msg.mti[2] in _ANSWERS else self.codes.wire_or_same(code)
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
        # Only a request of a class this network defines is answered 30: an MTI it does not define (another
        # version such as 1200 or 9200, class 0, 6 or 9, a reserved function) has no response MTI the peer
        # expects, so it is dropped and logged like any other unknown MTI.
        if not isinstance(mti, str) or not self.defines(mti) or mti[2] not in "024":
            return None
        fields = {int(k): v for k, v in doc.items() if k not in ("h", "t", "p", "1") and k.isdigit()}
        try:
            msg = self.to_canonical(mti, fields)
        except RemoteProtocolError:
            msg = Message(mti, {k: v for k, v in fields.items() if k not in self.binary_fields})
        msg.meta.scheme = self.name
        msg.meta.masking = self.masking
        return msg

    def refuse(self, frame: Frame, error: Exception, framer: Framer) -> Refusal:
        """ISO 8583:1987 has no reject form: a request whose MTI and identifying fields can be read back
        (:meth:`salvage`) is answered 30 under the reply framing; anything else (an answer, an MTI the network
        does not define, a body too broken to read) gets nothing and is only logged."""
        salvaged = self.salvage(frame.body)
        if salvaged is None or not salvaged.is_request:
            return Refusal(RefusalForm.NONE, what=salvaged.mti if salvaged is not None else "")
        try:
            wire = framer.encode(self.encode(self.make_response(salvaged, ResponseCode.FORMAT_ERROR)),
                                 reply_to=frame)
        except (ProtocolError, ValueError):  # what was salvaged may itself not re-encode: nothing is sent
            return Refusal(RefusalForm.NONE, what=salvaged.mti)
        return Refusal(RefusalForm.FORMAT_ERROR, wire, ResponseCode.FORMAT_ERROR.value, salvaged.mti)

    def defines(self, mti: str) -> bool:
        """Whether ``mti`` is one this network defines: version 0 (ISO 8583:1987), one of its message classes,
        and a message function of 0-5 (request, response, advice, its response, notification, its
        acknowledgement); 6-9 are reserved for ISO use and have no response MTI to answer with."""
        return len(mti) == 4 and mti.isdigit() and mti[0] == "0" and mti[1] in self.mti_classes and mti[2] <= "5"

    def _check_mti(self, mti: str) -> None:
        if not self.defines(mti):
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

    def match_key(self, msg: Message, match_fields: tuple[int, ...] | None = None) -> tuple[str, ...]:
        """Default: folded MTI + STAN (11) + terminal id (41), as jPOS QMUX does."""
        key = [match_mti(msg.mti)]
        for number in match_fields or self.match_fields:
            value = msg.fields.get(number)
            key.append(value if isinstance(value, str) else "")
        return tuple(key)

    def matcher(self, match_fields: tuple[int, ...] | None) -> Callable[[Message], Hashable]:
        if match_fields is None or match_fields == self.match_fields:
            return self.match_key
        return lambda msg: self.match_key(msg, match_fields)

    @cached_property
    def _echo_set(self) -> frozenset[int]:
        return frozenset(self.echo_fields)

    def make_response(self, request: Message, code: ResponseCode | str) -> Message:
        return request.make_response(code, self._echo_set)

    # -- network management ---------------------------------------------------------------------------
    def session(self, options: LinkOptions) -> NetworkSession:
        return Iso87Session(self.make_response, options if isinstance(options, Iso87Link) else Iso87Link())


_GROUPED = frozenset({NetMgmt.SIGN_ON, NetMgmt.SIGN_OFF})


class ManagedLink(Protocol):
    """What network management reads of a link's options (Iso87Link, and the options of networks built on it)."""

    @property
    def netmgmt(self) -> Mapping[NetMgmt, str]: ...

    @property
    def institutions(self) -> tuple[str, ...]: ...

    @property
    def institution_field(self) -> int: ...


class Iso87Session:
    """ISO 8583:1987 network management: 0800/0810 with the link's DE 70 codes; a request is accepted by 00. A
    link with institution ids signs on and off once per institution (group sign-on). A key change carries the new
    zone PIN key in ``key_field`` (cryptogram + 6-digit check value). ``respond`` builds the network's response
    to a request. Networks that manage links the 1987 way (VISA) use it with their own link options."""

    def __init__(self, respond: Callable[[Message, ResponseCode], Message], link: ManagedLink,
                 key_field: int = KEY_FIELD) -> None:
        self.respond = respond
        self.key_field = key_field
        self.link = link
        self.codes = dict(link.netmgmt)
        self._kinds = {code: kind for kind, code in self.codes.items()}
        # The events of requests that carry nothing but their code, made once (an echo every few seconds per
        # connection, thousands a second under a network-management load).
        self._plain = {code: NetworkEvent(kind) for code, kind in self._kinds.items()
                       if kind is not _KEY_EXCHANGE and kind is not _CUTOVER
                       and not (kind in _GROUPED and link.institutions)}
        self._unknown = NetworkEvent(None)
        self.mac_key_code: str | None = getattr(link, "mac_key_code", None)

    def key_requests(self, which: str, stan: Callable[[], str], now: datetime) -> list[Message]:
        """A key change for the zone PIN key (``"pin"``, the key-exchange code) or the zone MAC key (``"mac"``,
        ``mac_key_exchange_code``); none when the link has no code for it."""
        if which != "mac":
            return self.requests(_KEY_EXCHANGE, stan, now)
        if self.mac_key_code is None:
            return []
        return [Message("0800", {7: now.strftime("%m%d%H%M%S"), 11: stan(), 70: self.mac_key_code})]

    def requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime) -> list[Message]:
        code = self.codes.get(kind)
        if code is None:  # a kind this link does not do (key exchange, cutover: off unless configured)
            return []
        when = now.strftime("%m%d%H%M%S")
        if kind in _GROUPED and self.link.institutions:
            return [Message("0800", {7: when, 11: stan(), self.link.institution_field: institution, 70: code})
                    for institution in self.link.institutions]
        return [Message("0800", {7: when, 11: stan(), 70: code})]

    def accepted(self, kind: NetMgmt, response: Message) -> bool:
        return response.response_code == ResponseCode.APPROVED

    def key_change(self, response: Message) -> KeyChange | None:
        mac = self.mac_key_code is not None and response.get(70) == self.mac_key_code
        return _key_in(response, self.key_field, "ZAK" if mac else "ZPK")

    def inbound(self, request: Message) -> NetworkEvent:
        code = request.text(70) or ""
        plain = self._plain.get(code)
        if plain is not None:
            return plain
        if code == self.mac_key_code:
            return NetworkEvent(_KEY_EXCHANGE, key=_key_in(request, self.key_field, "ZAK"))
        kind = self._kinds.get(code)
        if kind is _KEY_EXCHANGE:
            return NetworkEvent(kind, key=_key_in(request, self.key_field))
        if kind is _CUTOVER:
            return NetworkEvent(kind, business_date=request.text(15))
        if kind is not None:  # a group sign-on or sign-off from the peer: which institution it is for
            institution = request.get(self.link.institution_field)
            return NetworkEvent(kind, institution=institution if isinstance(institution, str) else None)
        return self._unknown

    def answer(self, request: Message, event: NetworkEvent, code: ResponseCode) -> Message:
        if event.institution is not None and self.link.institutions and event.institution not in \
                self.link.institutions:
            # A group sign-on or sign-off for an institution this link does not serve: 15, no such issuer.
            code = ResponseCode.NO_SUCH_ISSUER
        return self.respond(request, code)


def _key_in(msg: Message, key_field: int, key_type: str = "ZPK") -> KeyChange | None:
    """The new zone key of a key change: ``key_field`` (DE 125 by default) = cryptogram (Thales notation) +
    6-digit check value."""
    value = msg.get(key_field)
    if not isinstance(value, str) or len(value) <= _KCV_LEN:
        return None
    return KeyChange(key_type, value[:-_KCV_LEN], value[-_KCV_LEN:])
