"""``testnet``: a network that exists only in the test suite, to prove the network contract.

It differs from the built-in ones in every way the contract covers, and is registered through the
``bulkhead.schemes`` entry-point group from inside the test suite (test_network_contract.py), so the engine runs it
with no change in ``switch/``:

- its own framing (``tn2``): a 2-byte length, then a 3-byte header: a flag byte (0x80: the frame rejects the
  request that follows it) and a 2-digit reject reason;
- ISO 8583:1993 on the wire: MTIs 1xxx (network management 1804/1814), three-digit action codes in DE 39 (mapped
  to and from the core's codes), network-management function codes in DE 24 (801 sign-on, 802 sign-off, 831
  echo, 811 key change, 821 cutover) instead of DE 70;
- a key exchange that carries the new zone PIN key under the zone master key in DE 96 (key management data);
- DE 48 as tag-length-value sub-elements (2-character tag, 2-digit length), of which ``CV`` is secret.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from iso8583 import specs

from schemes.iso87 import Iso87Network
from switch.contracts.codes import ISO93_ACTION_CODES
from switch.contracts.network import (
    KEEPALIVE,
    FrameKind,
    Inbound,
    KeyChange,
    LinkOptions,
    NetMgmt,
    NetworkEvent,
    NetworkSession,
)
from switch.model.codes import ResponseCode
from switch.model.errors import FramingError, RemoteProtocolError, UnknownMtiError
from switch.model.masking import DEFAULT_MASKING
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.codec import WireFields
from switch.wire.compiled import compile_codec
from switch.wire.framing.base import BufferedFramer, Frame, Framer, check_body
from switch.wire.framing.options import framing_kind, limits

SPEC = copy.deepcopy(specs.default)
SPEC["39"] = {**SPEC["39"], "max_len": 3, "desc": "Action Code"}
SPEC["24"] = {**SPEC["24"], "desc": "Function Code"}
SPEC["96"] = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 3, "max_len": 999, "desc": "Key Management Data"}

# DE 24 function codes (ISO 8583:1993) <-> canonical DE 70 network-management codes (ISO 8583:1987).
FUNCTION_CODES = {"801": "001", "802": "002", "831": "301", "811": "161", "821": "201"}
NETMGMT = {NetMgmt.SIGN_ON: "001", NetMgmt.SIGN_OFF: "002", NetMgmt.ECHO: "301", NetMgmt.KEY_EXCHANGE: "161",
           NetMgmt.CUTOVER: "201"}
_KIND = {code: kind for kind, code in NETMGMT.items()}
HEADER_LEN = 3
REJECT_FLAG = 0x80


def _mask_tlv(value: str | bytes) -> str:
    """DE 48 sub-elements shown tag by tag, the value of ``CV`` (a card verification value) hidden."""
    assert isinstance(value, str)
    out, pos = [], 0
    while pos < len(value):
        tag, size = value[pos:pos + 2], int(value[pos + 2:pos + 4])
        data = value[pos + 4:pos + 4 + size]
        if len(data) != size:
            raise ValueError("truncated sub-element")
        out.append(f"{tag}={'*' * size if tag == 'CV' else data}")
        pos += 4 + size
    return " ".join(out)


class TestnetFramer(BufferedFramer):
    """2-byte length, then the 3-byte header, then the message; a zero length is a keep-alive."""

    __slots__ = ()
    __test__ = False

    def _parse(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 2:
            return None
        length = (buf[pos] << 8) | buf[pos + 1]
        start = pos + 2
        if length == 0:
            self._pos = start
            return KEEPALIVE_FRAME
        end = self._claim(start, length)
        if end is None:
            return None
        if length <= HEADER_LEN:
            raise FramingError("testnet frame too short for its header and a message")
        return Frame(bytes(buf[start + HEADER_LEN:end]), bytes(buf[start:start + HEADER_LEN]))

    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        return self.frame(body, b"\x0000")

    def frame(self, body: bytes, header: bytes) -> bytes:
        check_body(body, 0xFFFF - HEADER_LEN)
        return (len(body) + HEADER_LEN).to_bytes(2, "big") + header + body

    def reject(self, body: bytes, reason: str) -> bytes:
        """The frame rejecting a request: its body sent back under a reject header."""
        return self.frame(body, bytes((REJECT_FLAG,)) + reason.encode("ascii"))

    def keepalive_probe(self) -> bytes | None:
        return b"\x00\x00"

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        return b"\x00\x00" if frame.keepalive and self.keepalive_echo else None


KEEPALIVE_FRAME = Frame(b"", b"", True)


@dataclass(frozen=True)
class TestnetLink:
    max_frame: int = 8192
    keepalive_echo: bool = True
    key_field: int = 96

    __test__ = False

    @property
    def framing_kind(self) -> str:
        return "tn2"

    def framer(self) -> Framer:
        return TestnetFramer(self.max_frame, self.keepalive_echo)


class TestnetSession:
    __test__ = False

    def __init__(self, network: Testnet, link: TestnetLink) -> None:
        self.network = network
        self.link = link

    def requests(self, kind: NetMgmt, stan: Callable[[], str], now: datetime) -> list[Message]:
        return [Message("0800", {7: now.strftime("%m%d%H%M%S"), 11: stan(), 70: NETMGMT[kind]})]

    def accepted(self, kind: NetMgmt, response: Message) -> bool:
        return response.response_code == ResponseCode.APPROVED

    def key_change(self, response: Message) -> KeyChange | None:
        value = response.get(self.link.key_field)
        if not isinstance(value, str) or len(value) <= 6:
            return None
        return KeyChange("ZPK", value[:-6], value[-6:])

    def inbound(self, request: Message) -> NetworkEvent:
        kind = _KIND.get(request.text(70) or "")
        if kind is NetMgmt.KEY_EXCHANGE:
            return NetworkEvent(kind, key=self.key_change(request))
        if kind is NetMgmt.CUTOVER:
            return NetworkEvent(kind, business_date=request.text(15))
        return NetworkEvent(kind)

    def answer(self, request: Message, event: NetworkEvent, code: ResponseCode) -> Message:
        return self.network.make_response(request, code)


@dataclass
class Testnet(Iso87Network):
    """The ISO 8583:1987 base with what this network does differently overridden."""

    __test__ = False

    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        link = TestnetLink()
        if framing is not None:
            framing_kind(framing, ("tn2",), self.name)
            max_frame, echo = limits(framing)
            framing.done()
            link = TestnetLink(max_frame, echo)
        if options is not None:
            link = TestnetLink(link.max_frame, link.keepalive_echo, options.integer("key_field", 96, low=2, high=128))
            options.done()
        return link

    def session(self, options: LinkOptions) -> NetworkSession:
        assert isinstance(options, TestnetLink)
        return TestnetSession(self, options)

    def classify(self, frame: Frame) -> Inbound:
        if frame.keepalive:
            return KEEPALIVE
        if frame.header and frame.header[0] & REJECT_FLAG:
            # The network sends one of our requests back: rejected, with its reason (told by the header, so a body
            # that does not decode is still a reject, never a request to answer).
            reason = frame.header[1:].decode("ascii", "replace")
            try:
                original: Message | None = self.decode(frame.body)
            except RemoteProtocolError:
                original = None
            return Inbound(FrameKind.REJECT, original, reason, ResponseCode.SYSTEM_MALFUNCTION)
        msg = self.decode(frame.body)
        return Inbound(FrameKind.RESPONSE if msg.is_response else FrameKind.REQUEST, msg)

    def _check_mti(self, mti: str) -> None:
        if len(mti) != 4 or not mti.isdigit() or mti[0] != "1" or mti[1] not in "1248" or mti[2] > "5":
            raise UnknownMtiError(mti)

    def to_canonical(self, mti: str, fields: WireFields) -> Message:
        out = dict(fields)
        function = out.pop(24, None)
        if mti[1] == "8" and function is not None:  # network management: the function code says what
            out[70] = FUNCTION_CODES.get(function, "999")
            mti = "08" + ("1" if mti[2] in "13" else "0") + "0"  # 1804 -> 0800, 1814 -> 0810
        else:
            mti = "0" + mti[1:]
        return super().to_canonical(mti, out)

    def from_canonical(self, msg: Message) -> tuple[str, WireFields]:
        mti, fields = super().from_canonical(msg)
        if mti[1] == "8":
            code = fields.pop(70, None)
            functions = {v: k for k, v in FUNCTION_CODES.items()}
            if code is not None:
                fields[24] = functions.get(code, "899")
            return "18" + ("1" if mti[2] in "13" else "0") + "4", fields
        return "1" + mti[1:], fields



MASKING = DEFAULT_MASKING.with_secret(subfields={48: _mask_tlv})
NETWORK = Testnet(
    name="testnet",
    codec=compile_codec("testnet", SPEC),
    binary_fields=frozenset({52, 55, 64, 128}),
    description="a test-only ISO 8583:1993-style network",
    masking=MASKING,
    codes=ISO93_ACTION_CODES,
    framings=("tn2",),
)


def key_change_fields(under_zmk: str, kcv: str) -> Mapping[int, str]:
    """DE 96 of a key change carrying ``under_zmk`` with its check value."""
    return {96: under_zmk + kcv}
