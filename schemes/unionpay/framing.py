"""UnionPay CUPS framing: the 46-byte message header (:mod:`schemes.unionpay.header`), with or without a leading
4-digit ASCII length.

With ``length_prefix`` (the default) every frame is 4 ASCII digits giving the length of what follows (header and
message, not the digits themselves unless ``length_includes_prefix``), then the header, then the message; ``0000``
is a heartbeat. That is what the public UnionPay member implementation ``com.easy.iso8583`` does (``TestServer``:
``%04d`` of body + 46 before the header; ``AsyncUpiInterceptor``: ``0000`` every 30 s, logged and not answered).
Without it, the header's own total length (F3) delimits the frame (reference section 7.1: a separate prefix was
not confirmed when the reference was written); there is no heartbeat then. With the prefix, F3 must agree with it.

Heartbeats are not echoed unless ``keepalive_echo`` (the public implementation does not answer them, and two
peers that both echo would bounce one heartbeat for ever).

A reply's header is the request's with the ids swapped and no reject code (:meth:`UnionPayFramer.encode` with
``reply_to``); :meth:`UnionPayFramer.reject` sends a message back under its header with a reject code, the only
case in which a member sets one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from schemes.unionpay.header import (
    HEADER_LEN,
    MAX_TOTAL,
    NO_REJECT,
    REJECT_DESTINATION,
    REJECT_HEADER_LENGTH,
    REJECT_MESSAGE_LENGTH,
    REJECT_SOURCE,
    CupsHeader,
    HeaderError,
    pad_id,
)
from switch.model.errors import FramingError, UnknownMtiError
from switch.model.toml import TomlTable
from switch.wire.framing.base import KEEPALIVE, BufferedFramer, Frame, MalformedFrame, check_body
from switch.wire.framing.length import read_ascii_digits
from switch.wire.framing.options import framing_kind

_PREFIX = 4
_HEARTBEAT = b"0000"
# F10 of a malformed message whose header is sound but whose body is not: no public source gives one (CUPS-MH lists
# header codes only), so it is a link option; 00030 echoes DE 39 30, format error.
BODY_REJECT = "00030"


@dataclass(frozen=True)
class RejectCodes:
    """The F10 reject code a malformed inbound message is sent back with, by what is wrong with it (framing table
    ``reject_codes``). The header codes are the ones CUPS itself sends (com.easy.iso8583 ``MsgHead``); ``mti`` (an
    MTI UnionPay does not define) and ``field`` (a field that does not decode) are not public."""

    header_length: str = REJECT_HEADER_LENGTH
    message_length: str = REJECT_MESSAGE_LENGTH
    destination: str = REJECT_DESTINATION
    source: str = REJECT_SOURCE
    mti: str = BODY_REJECT
    field: str = BODY_REJECT

    def __post_init__(self) -> None:
        for item in fields(self):
            code = getattr(self, item.name)
            if len(code) != 5 or not code.isascii() or not code.isdigit() or code == NO_REJECT:
                raise ValueError(f"reject code {item.name} must be 5 digits, not 00000")

    def for_error(self, error: Exception) -> str:
        """The code for ``error`` (a :class:`HeaderError` by the header field it names; an unknown MTI; anything
        else is a field that does not decode)."""
        if isinstance(error, MalformedFrame):
            error = error.error
        if isinstance(error, HeaderError):
            return {REJECT_MESSAGE_LENGTH: self.message_length, REJECT_DESTINATION: self.destination,
                    REJECT_SOURCE: self.source}.get(error.reject_code, self.header_length)
        return self.mti if isinstance(error, UnknownMtiError) else self.field


class UnionPayFramer(BufferedFramer):
    """Frames of one connection (sans-I/O: bytes in, :class:`Frame` out; ``header`` is the 46 bytes)."""

    __slots__ = ("_adjust", "_origin", "_origin_head", "_origin_tail", "length_prefix", "reject_codes")

    def __init__(self, *, length_prefix: bool = True, length_includes_prefix: bool = False,
                 origin: CupsHeader | None = None, max_frame: int = 8192, keepalive_echo: bool = False,
                 reject_codes: RejectCodes | None = None) -> None:
        super().__init__(max_frame, keepalive_echo)
        self.length_prefix = length_prefix
        self.reject_codes = reject_codes if reject_codes is not None else RejectCodes()
        self._adjust = _PREFIX if length_prefix and length_includes_prefix else 0
        self._origin = origin if origin is not None else CupsHeader.originated("", "")
        # The header of what we originate, but for F3: built once, joined around F3 per message.
        template = self._origin.to_bytes(1)
        self._origin_head, self._origin_tail = template[:2], template[6:]

    # -- reading --------------------------------------------------------------------------------------
    def _parse(self) -> Frame | None:
        return self._parse_prefixed() if self.length_prefix else self._parse_bare()

    def _parse_prefixed(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < _PREFIX:
            return None
        length = self._without_prefix(read_ascii_digits(buf, pos, _PREFIX), self._adjust, f"{_PREFIX}-digit")
        start = pos + _PREFIX
        if length == 0:
            self._pos = start
            return KEEPALIVE
        if length <= HEADER_LEN:
            raise HeaderError(f"frame of {length} bytes has no room for the {HEADER_LEN}-byte header and a message")
        end = self._claim(start, length)
        if end is None:
            return None
        frame = Frame(bytes(buf[start + HEADER_LEN:end]), bytes(buf[start:start + HEADER_LEN]))
        # The prefix delimits the frame: a header that breaks its layout leaves the stream in step, and the
        # message is sent back rejected (the network's refuse) rather than the connection closed.
        try:
            total = self._check_start(buf, start)
        except HeaderError as exc:
            raise MalformedFrame(frame, exc) from None
        if total != length:
            raise MalformedFrame(frame, HeaderError(
                f"total length {total} disagrees with the length prefix ({length})", REJECT_MESSAGE_LENGTH))
        return frame

    def _parse_bare(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 6:
            return None
        total = self._check_start(buf, pos)
        self._check_size(total)
        end = pos + total
        if len(buf) < end:
            return None
        self._pos = end
        return Frame(bytes(buf[pos + HEADER_LEN:end]), bytes(buf[pos:pos + HEADER_LEN]))

    @staticmethod
    def _check_start(buf: bytearray, start: int) -> int:
        """Check F1 and F3 at ``start`` (what delimits the frame); return F3."""
        if buf[start] != HEADER_LEN:
            raise HeaderError(f"length byte is {buf[start]}, not {HEADER_LEN}", REJECT_HEADER_LENGTH)
        try:
            total = read_ascii_digits(buf, start + 2, 4)
        except FramingError:
            raise HeaderError("total length is not 4 ASCII digits", REJECT_MESSAGE_LENGTH) from None
        if total <= HEADER_LEN:
            raise HeaderError(f"total length {total} leaves no room for a message", REJECT_MESSAGE_LENGTH)
        return total

    # -- writing --------------------------------------------------------------------------------------
    def encode(self, body: bytes, reply_to: Frame | None = None) -> bytes:
        """``body`` under a header: the reply header of ``reply_to`` when given (ids swapped), else ours."""
        check_body(body, MAX_TOTAL - HEADER_LEN - self._adjust)
        if reply_to is not None and len(reply_to.header) == HEADER_LEN:
            header = reply_header(reply_to.header, len(body))
        else:
            header = b"".join((self._origin_head, b"%04d" % (HEADER_LEN + len(body)), self._origin_tail))
        return self._with_prefix(header, body)

    def reject(self, frame: Frame, code: str) -> bytes:
        """``frame``'s message sent back under its own header with reject code ``code`` (5 digits) and the ids
        swapped: how a malformed message is refused. A header that does not parse gets ours instead."""
        if len(code) != 5 or not code.isdigit() or code == NO_REJECT:
            raise ValueError("a reject code is 5 digits, not 00000")
        check_body(frame.body, MAX_TOTAL - HEADER_LEN - self._adjust)
        try:
            received = CupsHeader.parse(frame.header)
        except HeaderError:
            received = self._origin.reply()  # answered from where we would have sent it
        return self._with_prefix(received.rejecting(code).to_bytes(len(frame.body)), frame.body)

    def _with_prefix(self, header: bytes, body: bytes) -> bytes:
        if not self.length_prefix:
            return header + body
        return b"".join((b"%04d" % (HEADER_LEN + len(body) + self._adjust), header, body))

    def keepalive_probe(self) -> bytes | None:
        return _HEARTBEAT if self.length_prefix else None

    def keepalive_reply(self, frame: Frame) -> bytes | None:
        if not self.keepalive_echo or not frame.keepalive or not self.length_prefix:
            return None
        return _HEARTBEAT


def reply_header(request_header: bytes, body_length: int) -> bytes:
    """The request's header with F4/F5 swapped, F1 = 46, F3 for ``body_length`` and F10 reset to ``00000``; F2 and
    F6-F9 as received (a reply is built on the hot path: byte slices, no parse)."""
    h = bytearray(request_header[:HEADER_LEN])
    h[0] = HEADER_LEN
    h[2:6] = b"%04d" % (HEADER_LEN + body_length)
    h[6:17], h[17:28] = request_header[17:28], request_header[6:17]
    h[41:46] = b"00000"
    return bytes(h)


@dataclass(frozen=True)
class UnionPayFraming:
    """Link options of the ``unionpay`` framing (framing table keys of the same names)."""

    length_prefix: bool = True  # 4 ASCII digits before the header (public member implementation)
    length_includes_prefix: bool = False
    source_id: str = ""  # F5 of what we originate: the bank's CUPS member id, up to 11 characters
    destination_id: str = ""  # F4 of what we originate: CUPS (e.g. 00010000 domestic, 00010344 foreign members)
    test: bool = False  # the test bit of F2 on what we originate
    batch: int = 1  # F7 on what we originate (1 in every public sample)
    transaction_info: str = "00000000"  # F8 on what we originate
    user_info: int = 0  # F9 on what we originate
    max_frame: int = 8192
    keepalive_echo: bool = False  # answer a 0000 heartbeat with one
    reject_codes: RejectCodes = field(default_factory=RejectCodes)  # F10 of a malformed message sent back

    def __post_init__(self) -> None:
        self.origin()  # every value is checked once, here
        if self.length_includes_prefix and not self.length_prefix:
            raise ValueError("length_includes_prefix needs length_prefix")

    def origin(self) -> CupsHeader:
        """The header of messages we originate (F3 set per message)."""
        return CupsHeader.originated(self.destination_id, self.source_id, test=self.test, batch=self.batch,
                                     transaction_info=self.transaction_info.encode("ascii"),
                                     user_info=self.user_info)

    @property
    def framing_kind(self) -> str:
        return "unionpay"

    def framer(self) -> UnionPayFramer:
        return UnionPayFramer(length_prefix=self.length_prefix, length_includes_prefix=self.length_includes_prefix,
                              origin=self.origin(), max_frame=self.max_frame, keepalive_echo=self.keepalive_echo,
                              reject_codes=self.reject_codes)


def unionpay_framing(t: TomlTable, network: str = "unionpay") -> UnionPayFraming:
    """Read a ``framing = { kind = "unionpay", ... }`` table: ``length_prefix`` (default true),
    ``length_includes_prefix``, ``source_id``, ``destination_id`` (up to 11 printable ASCII characters), ``test``,
    ``batch`` and ``user_info`` (0-255), ``transaction_info`` (8 ASCII characters), ``max_frame``,
    ``keepalive_echo`` (default false), ``reject_codes`` (a table of :class:`RejectCodes`' keys, 5 digits each).
    ``done()`` is called."""
    framing_kind(t, ("unionpay",), network)
    # A CUPS frame is at most 9999 bytes (F3), plus the prefix when it counts itself.
    max_frame = t.integer("max_frame", 8192, low=1, high=MAX_TOTAL + _PREFIX)
    echo = bool(t.get("keepalive_echo", bool, False))
    ids = {}
    for key in ("source_id", "destination_id"):
        value = t.get(key, str, "")
        try:
            pad_id(value)
        except ValueError as exc:
            raise t.error(key, str(exc)) from None
        ids[key] = value
    prefix = bool(t.get("length_prefix", bool, True))
    counts = bool(t.get("length_includes_prefix", bool, False))
    if counts and not prefix:
        raise t.error("length_includes_prefix", "needs length_prefix = true")
    info = t.get("transaction_info", str, "00000000")
    if len(info) != 8 or not info.isascii() or not info.isprintable():
        raise t.error("transaction_info", "expected 8 printable ASCII characters (header F8)")
    cfg = UnionPayFraming(length_prefix=prefix, length_includes_prefix=counts, test=bool(t.get("test", bool, False)),
                          batch=t.integer("batch", 1, high=255), transaction_info=info,
                          user_info=t.integer("user_info", 0, high=255), max_frame=max_frame, keepalive_echo=echo,
                          reject_codes=_reject_codes(t), **ids)
    t.done()
    return cfg



def _reject_codes(t: TomlTable) -> RejectCodes:
    table = t.get("reject_codes", dict, {})
    known = {item.name for item in fields(RejectCodes)}
    codes: dict[str, str] = {}
    for key, value in table.items():
        if key not in known:
            raise t.error(f"reject_codes.{key}", f"unknown failure (one of {', '.join(sorted(known))})")
        if not isinstance(value, str) or len(value) != 5 or not value.isdigit() or value == NO_REJECT:
            raise t.error(f"reject_codes.{key}", "expected 5 digits, not 00000 (header F10)")
        codes[key] = value
    return RejectCodes(**codes)
