"""UnionPay network management, and a UnionPay link's options.

Public UnionPay member traffic (com.easy.iso8583's test vectors: ``tests/schemes/unionpay/vectors.py``) shows:

- sign-on, sign-off and echo as 0820/0830 with DE 70 = 001, 002, 301, and DE 7, 11, 33 (the member's institution
  id) and 100; the answer's DE 39 = 00 accepts;
- a key reset sent by UnionPay as 0800 with DE 70 = 101 and DE 53 saying which key and how long it is: 53.1 = 1
  for the PIN key, 2 for the MAC key; 53.2 = 0 for a single-length key, carried in DE 96 (8 bytes), 6 for a
  double-length key, carried in DE 48 usage ``NK`` (16 bytes); the key is encrypted under the zone master key
  with plain triple DES (ANSI X9.17, Thales notation ``X`` + 32 hex digits). No check value travels with it in
  public samples: UnionPay's message MAC under the new key is the proof. The engine accepts a new MAC key by that
  proof (the key reset's DE 128 verified under the imported key: switch.runtime.node.Node.install_key); a new PIN
  key needs its check value: a link sets ``nk_check_value_bytes`` (the NK content's last bytes are the key's check
  value) where the member's agreement with UnionPay provides one; without it the PIN key reset is refused
  (answered 96) and the key in use stays.

What no public source confirms is a link option (the ``options`` table), with these defaults:

==========================  ================  ====================================================================
option                      default           what
==========================  ================  ====================================================================
``signon_code``             ``001``           DE 70 of a sign-on (public samples)
``signoff_code``            ``002``           DE 70 of a sign-off
``echo_code``               ``301``           DE 70 of an echo (public samples)
``key_exchange_code``       ``101``           DE 70 of a key reset (public samples)
``cutover_code``            ``201``           DE 70 of UnionPay's cutover notification (the new settlement date in
                                              DE 15); 201 is what ISO hosts use (reference section 9)
``request_mti``             ``0820``          MTI of network management the node starts (``0800`` or ``0820``)
``institution``             none              the bank's member id: DE 33 of what the node starts and answers
``key_scheme``              ``X``             Thales notation of a double-length key from DE 48 (``X`` X9.17,
                                              ``U`` variant)
``nk_check_value_bytes``    ``0``             trailing bytes of the NK content that are the key's check value
                                              (0, or 3 to 8)
``rekey_key``               ``pin``           the key a key exchange the node starts asks for (``pin``, ``mac``)
==========================  ================  ====================================================================

The node never starts a cutover on a UnionPay link (UnionPay notifies its members). A network-management request
whose DE 70 the link does not know is answered 40 (function not supported) and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from schemes.unionpay.fields import AdditionalData, SecurityControl, parse_additional_data
from schemes.unionpay.framing import UnionPayFraming
from switch.contracts.network import KeyChange, NetMgmt, NetworkEvent
from switch.model.codes import ResponseCode
from switch.model.errors import FieldError
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.framing.base import Framer

# The network's make_response (the session gets the function, not the network: no import cycle).
Respond = Callable[[Message, ResponseCode], Message]

DEFAULT_CODES: Mapping[NetMgmt, str] = {
    NetMgmt.SIGN_ON: "001", NetMgmt.SIGN_OFF: "002", NetMgmt.ECHO: "301", NetMgmt.KEY_EXCHANGE: "101",
    NetMgmt.CUTOVER: "201",
}
PIN_KEY, MAC_KEY = "1", "2"  # DE 53.1 in a key reset
SINGLE_LENGTH, DOUBLE_LENGTH = "0", "6"  # DE 53.2 in a key reset
_KEY_TYPES = {PIN_KEY: "ZPK", MAC_KEY: "ZAK"}
_DOUBLE_KEY_BYTES = 16
_SINGLE_KEY_BYTES = 8


@dataclass(frozen=True)
class UnionPayLink:
    """A UnionPay link's framing and network-management options (see the module docstring)."""

    framing: UnionPayFraming = field(default_factory=UnionPayFraming)
    netmgmt: Mapping[NetMgmt, str] = field(default_factory=lambda: dict(DEFAULT_CODES))
    request_mti: str = "0820"
    institution: str = ""
    key_scheme: str = "X"
    nk_check_value_bytes: int = 0
    rekey_key: str = "pin"

    @property
    def framing_kind(self) -> str:
        return self.framing.framing_kind

    def framer(self) -> Framer:
        return self.framing.framer()


def read_options(framing: UnionPayFraming, t: TomlTable) -> UnionPayLink:
    """Read a UnionPay link's ``options`` table; ``done()`` is called (an unknown key is an error)."""
    codes: dict[NetMgmt, str] = {}
    seen: dict[str, str] = {}
    for kind in NetMgmt:
        key = f"{kind.value}_code"
        value = t.get(key, str, DEFAULT_CODES[kind])
        if len(value) != 3 or not (value.isascii() and value.isdigit()):
            raise t.error(key, "expected 3 digits (DE 70)")
        if value in seen:
            raise t.error(key, f"{value} is already the {seen[value]}")
        seen[value] = key
        codes[kind] = value
    mti = t.get("request_mti", str, "0820")
    if mti not in ("0800", "0820"):
        raise t.error("request_mti", "expected 0800 or 0820")
    institution = t.get("institution", str, "")
    if institution and not (institution.isascii() and institution.isdigit() and len(institution) <= 11):
        raise t.error("institution", "expected an institution id of 1 to 11 digits")
    scheme = t.get("key_scheme", str, "X")
    if scheme not in ("X", "U"):
        raise t.error("key_scheme", "expected X (ANSI X9.17) or U (variant)")
    kcv_bytes = t.integer("nk_check_value_bytes", 0, high=8)
    if 0 < kcv_bytes < 3:
        raise t.error("nk_check_value_bytes", "expected 0 (none) or 3 to 8 (a check value is 6 hex digits or more)")
    rekey = t.get("rekey_key", str, "pin")
    if rekey not in ("pin", "mac"):
        raise t.error("rekey_key", "expected pin or mac")
    t.done()
    return UnionPayLink(framing, codes, mti, institution, scheme, kcv_bytes, rekey)


class UnionPaySession:
    """Network management with one link's options (sans-I/O: the link sends what this builds)."""

    def __init__(self, respond: Respond, link: UnionPayLink) -> None:
        self.respond = respond
        self.link = link
        self._kinds = {code: kind for kind, code in link.netmgmt.items()}

    def key_requests(self, which: str, stan: Callable[[], str], now: datetime) -> list[Message]:
        """A key reset request for the PIN key (``"pin"``) or the MAC key (``"mac"``), whatever ``rekey_key`` says."""
        return self._requests(NetMgmt.KEY_EXCHANGE, stan, now, which)

    def requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime) -> list[Message]:
        return self._requests(kind, stan, now, self.link.rekey_key)

    def _requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime, which: str) -> list[Message]:
        if kind is NetMgmt.CUTOVER:  # UnionPay notifies its members of a cutover; a member starts none
            return []
        fields: dict[int, str | bytes] = {7: now.strftime("%m%d%H%M%S"), 11: stan(), 70: self.link.netmgmt[kind]}
        if self.link.institution:
            fields[33] = self.link.institution
        if kind is NetMgmt.KEY_EXCHANGE:
            fields[53] = str(SecurityControl(PIN_KEY if which == "pin" else MAC_KEY, DOUBLE_LENGTH))
        return [Message(self.link.request_mti, fields)]

    def accepted(self, kind: NetMgmt, response: Message) -> bool:
        return response.response_code == ResponseCode.APPROVED

    def key_change(self, response: Message) -> KeyChange | None:
        return key_in(response, self.link)

    def inbound(self, request: Message) -> NetworkEvent:
        kind = self._kinds.get(request.text(70) or "")
        if kind is NetMgmt.KEY_EXCHANGE:
            return NetworkEvent(kind, key=key_in(request, self.link))
        if kind is NetMgmt.CUTOVER:
            return NetworkEvent(kind, business_date=request.text(15))
        return NetworkEvent(kind)

    def answer(self, request: Message, event: NetworkEvent, code: ResponseCode) -> Message:
        if event.kind is None:
            code = ResponseCode.FUNCTION_NOT_SUPPORTED
        response = self.respond(request, code)
        if self.link.institution:
            response[33] = self.link.institution
        return response


def key_in(msg: Message, link: UnionPayLink) -> KeyChange | None:
    """The new key a key reset carries (DE 53 says which and where), or None when it carries none readable."""
    control_text = msg.get(53)
    if not isinstance(control_text, str):
        return None
    try:
        control = SecurityControl.parse(control_text)
    except FieldError:
        return None
    key_type = _KEY_TYPES.get(control.key_type)
    if key_type is None:
        return None
    if control.method == SINGLE_LENGTH:
        single = msg.get(96)
        if not isinstance(single, bytes) or len(single) != _SINGLE_KEY_BYTES:
            return None
        return KeyChange(key_type, single.hex().upper(), "")
    if control.method != DOUBLE_LENGTH:
        return None
    carried = _new_key(msg)
    if carried is None or len(carried) != _DOUBLE_KEY_BYTES + link.nk_check_value_bytes:
        return None
    key, kcv = carried[:_DOUBLE_KEY_BYTES], carried[_DOUBLE_KEY_BYTES:]
    return KeyChange(key_type, link.key_scheme + key.hex().upper(), kcv.hex().upper())


def _new_key(msg: Message) -> bytes | None:
    text = msg.get(48)
    if not isinstance(text, str):
        return None
    try:
        data: AdditionalData = parse_additional_data(text)
        return data.key_bytes
    except (FieldError, ValueError):
        return None
