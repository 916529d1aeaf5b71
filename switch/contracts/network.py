"""The network contract: the one protocol every card network implements (``schemes/<network>``), and the only
thing the engine knows about networks (DESIGN section 2).

A network is data plus small functions, sans-I/O: the engine's links hand it frames and messages, and it hands
back classifications, messages and bytes. It provides

- the link options it accepts (:meth:`Network.link_options`): its framing and its own options, validated when
  the configuration is loaded, each error naming the file, the key and the reason; framing that does not belong
  to the network is such an error;
- the classification of every frame (:meth:`Network.classify`): request, response, reject (the network refused
  one of our requests; the :class:`Inbound` carries the rejected original, which is matched to its exchange and
  never routed as a new request), keep-alive, session control;
- the match key that pairs a response with its request, validation, and conversion between its wire form and
  the canonical :class:`~switch.model.message.Message` (ISO 8583:1987 numbering and MTIs);
- its response codes mapped to and from the core's enum (:class:`~switch.contracts.codes.CodeTable`; action
  codes for 1993-style networks), an unknown code to a documented default;
- network management built and accepted by its rules with the link's parameters (:class:`NetworkSession`:
  sign-on and off, group sign-on, echo, dynamic key exchange, cutover), so the engine's links only schedule
  them;
- how a malformed inbound frame is answered (:meth:`Network.refuse`): the network's reject form (UnionPay: the
  message back under its header with a reject code; VISA: a reject header before the original's), a format-error
  (30) response, or nothing; the switch sends a reject nowhere else;
- the fields and sub-fields it declares secret (:class:`~switch.model.masking.Masking`), which every message it
  decodes carries, so logs and the journal follow the network.

Networks are registered by name in the ``bulkhead.schemes`` entry-point group (switch.contracts.registry).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from switch.contracts.codes import CodeTable
from switch.model.codes import ResponseCode
from switch.model.masking import Masking
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.framing.base import Frame, Framer


class FrameKind(enum.Enum):
    """What a frame is, as its network says (:meth:`Network.classify`)."""

    REQUEST = "request"  # a request, advice or notification: the exchange pipeline takes it
    RESPONSE = "response"  # the answer to one of our requests: matched in the link's pending table
    REJECT = "reject"  # the network refused one of our requests unprocessed; ``message`` is that request
    KEEPALIVE = "keepalive"  # below ISO 8583 (a zero-length frame): echoed as the framing says, nothing more
    SESSION = "session"  # session control below ISO 8583 (VISA heartbeats): never routed


class Inbound:
    """One classified frame. ``message`` is the decoded message (for a reject: the request it rejects);
    ``reason`` the network's reject code, ``code`` what the rejected request's acquirer is answered.

    A plain class rather than a frozen dataclass: one is made per frame, and a frozen dataclass's ``__init__``
    goes through ``object.__setattr__`` per field (about 1 us more per frame)."""

    __slots__ = ("code", "kind", "message", "reason")

    def __init__(self, kind: FrameKind, message: Message | None = None, reason: str = "",
                 code: ResponseCode = ResponseCode.SYSTEM_MALFUNCTION) -> None:
        self.kind = kind
        self.message = message
        self.reason = reason
        self.code = code

    def __repr__(self) -> str:
        return f"Inbound({self.kind.value}, {self.message!r}, reason={self.reason!r})"


KEEPALIVE = Inbound(FrameKind.KEEPALIVE)
SESSION_CONTROL = Inbound(FrameKind.SESSION)


@dataclass(frozen=True, slots=True)
class Rejected:
    """What a request's waiter is given when the network rejected the request instead of answering it: the code
    its acquirer gets and the network's reason. The request was not processed, so nothing is reversed."""

    code: ResponseCode
    reason: str


class RefusalForm(enum.StrEnum):
    """How a malformed inbound frame was answered (:class:`Refusal`; counted per link by the node)."""

    REJECT = "reject"  # the network's reject form: the message sent back unprocessed with a reject code
    FORMAT_ERROR = "format_error"  # a response with DE 39 30
    NONE = "none"  # nothing: nothing readable to answer, an answer to nobody's request, or a reject itself


@dataclass(frozen=True, slots=True)
class Refusal:
    """What :meth:`Network.refuse` made of a malformed frame: ``wire`` the whole frame to send (None: nothing),
    ``code`` the reject code or DE 39 it carries, ``what`` the frame's MTI where it could be read (for the log)."""

    form: RefusalForm
    wire: bytes | None = None
    code: str = ""
    what: str = ""


class NetMgmt(enum.StrEnum):
    """Network management a link schedules or a peer asks for."""

    SIGN_ON = "signon"
    SIGN_OFF = "signoff"
    ECHO = "echo"
    KEY_EXCHANGE = "key_exchange"
    CUTOVER = "cutover"


@dataclass(frozen=True)
class KeyChange:
    """A new working key as a network sends it: ``under_zmk`` in Thales notation, encrypted under the link's zone
    master key, with its check value. The engine imports it through the HSM and checks the value."""

    key_type: str  # "ZPK" (PIN) or "ZAK" (MAC)
    under_zmk: str
    check_value: str

    def __repr__(self) -> str:
        return f"KeyChange({self.key_type}, kcv {self.check_value})"  # a cryptogram, still not printed


@dataclass(frozen=True, slots=True)
class NetworkEvent:
    """What a network-management request from the peer asks (:meth:`NetworkSession.inbound`). ``kind`` None: a
    code the network does not define (answered as the network says, nothing done)."""

    kind: NetMgmt | None
    key: KeyChange | None = None
    business_date: str | None = None  # cutover: the new settlement date, MMDD (ISO 8583:1987 DE 15)
    institution: str | None = None  # group sign-on and sign-off: the institution id


class LinkOptions(Protocol):
    """What a network made of one link's ``framing`` and ``options`` tables (immutable)."""

    @property
    def framing_kind(self) -> str:
        """The framing's name, for status lines and the banner."""
        ...

    def framer(self) -> Framer:
        """A fresh framer for one connection (framers hold per-connection receive state)."""
        ...


class NetworkSession(Protocol):
    """Network management by the network's rules with one link's parameters. Sans-I/O: the link builds nothing
    itself; it sends what :meth:`requests` returns and asks :meth:`accepted` about the answers."""

    def requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime) -> list[Message]:
        """The requests that perform ``kind`` (several for a group sign-on: one per institution)."""
        ...

    def accepted(self, kind: NetMgmt, response: Message) -> bool:
        """Whether ``response`` accepts a ``kind`` request (a sign-on is up only when this says so)."""
        ...

    def key_change(self, response: Message) -> KeyChange | None:
        """The new key a key-exchange response carries, if any."""
        ...

    def inbound(self, request: Message) -> NetworkEvent:
        """What a network-management request from the peer asks."""
        ...

    def answer(self, request: Message, event: NetworkEvent, code: ResponseCode) -> Message:
        """The response to a peer's network-management request, once the engine has done what it asks
        (``code``: APPROVED, or why it could not)."""
        ...


@runtime_checkable
class Network(Protocol):
    """A card network (or the bank's own ATM interface, or a generic ISO 8583 host). See the module docstring."""

    name: str
    description: str
    masking: Masking
    codes: CodeTable
    binary_fields: frozenset[int]  # canonical fields carried as bytes (PIN block, ICC data, MACs)
    # Whether a link to this network numbers the requests it sends itself by default (the switch's own STAN, DE 7
    # and RRN: switch.exchange.identity): the card networks do; a host of the bank's own keeps the acquirer's.
    own_identity: bool
    mac_field: str  # where a MAC goes on a MAC link by default: "64", "128" or "auto" (64 without a secondary bitmap)
    mac_failure_code: str  # what a request whose MAC fails is answered by default
    # Whether the network carries an acquirer's fee to the issuer in DE 28 (an ATM's surcharge on a card of another
    # bank, added by the ATMP: switch.runtime.atmhost); a network without a counterpart gets no surcharge.
    acquirer_fee: bool

    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        """Validate a link's framing table (None: the network's default framing) and options table; raise
        :class:`~switch.model.errors.ConfigError` naming the file, the key and the reason."""
        ...

    def classify(self, frame: Frame) -> Inbound:
        """What ``frame`` is. A reject is told by its framing (a reject header), before its body is decoded: when
        the rejected request cannot be read back, the Inbound is a REJECT with no message (never a format error
        answered to the network). Otherwise raises :class:`~switch.model.errors.RemoteProtocolError` when the body
        cannot be decoded (the link then answers a format error where :meth:`salvage` allows)."""
        ...

    def decode(self, body: bytes) -> Message:
        ...

    def unframe(self, data: bytes) -> Frame:
        """One frame as captured from the network, without its TCP length prefix (the network's header, if it has
        one, then the body), cut into its header and body as the network's default framing would; raises
        :class:`~switch.model.errors.FramingError` when the header cannot be read (``bulkhead wire decode``)."""
        ...

    def header_fields(self, header: bytes) -> list[tuple[str, str]]:
        """A frame's header field by field, for a person reading a capture (empty for a network without one)."""
        ...

    def encode(self, msg: Message) -> bytes:
        """The wire body of a canonical message; :class:`~switch.model.errors.EncodeError` when it cannot be."""
        ...

    def salvage(self, body: bytes) -> Message | None:
        """What can be read of a body that failed to decode, to answer it with a format error."""
        ...

    def refuse(self, frame: Frame, error: Exception, framer: Framer) -> Refusal:
        """How ``frame``, which did not decode (``error``: the :class:`~switch.model.errors.RemoteProtocolError`
        :meth:`classify` raised, or the :class:`~switch.wire.framing.base.MalformedFrame` its framer raised), is
        answered on the connection whose framer is ``framer``: the bytes to send in the network's form, or
        nothing. Never raises for what the peer sent."""
        ...

    def validate(self, msg: Message) -> None:
        """Raise :class:`~switch.model.errors.FieldError` when a request breaks the network's rules."""
        ...

    def matcher(self, match_fields: tuple[int, ...] | None) -> Callable[[Message], Hashable]:
        """The key pairing a response with its request on a link (``match_fields``: the link's override)."""
        ...

    def make_response(self, request: Message, code: ResponseCode | str) -> Message:
        """The canonical response to ``request`` with core code ``code`` and the fields the network echoes."""
        ...

    def session(self, options: LinkOptions) -> NetworkSession:
        """Network management for a link with these options."""
        ...
