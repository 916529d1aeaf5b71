"""The issuer simulator: an ISO 8583 host that answers requests by rules (:mod:`switch.sim.rules`), and the
network simulator built on it (``bulkhead sim network``): the same server, which also originates requests towards
the bank down the connection the bank opened (:mod:`switch.sim.originate`) and rejects a malformed message in the
network's reject form.

One reader per connection handles each received batch inline and queues the answers on the connection's
:class:`~switch.infra.outbox.Outbox`; only delayed answers and the originator get a task of their own. Nothing a
peer sends can stop the server: undecodable messages are counted and skipped (or, with ``reject``, sent back in
the network's reject form), a framing error closes that one connection.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import trio

from hsm.software import ExportedKey
from switch.contracts.network import FrameKind, LinkOptions, Network
from switch.contracts.registry import network
from switch.infra.outbox import Outbox
from switch.infra.reader import read_frames
from switch.model.codes import ResponseCode
from switch.model.errors import FieldError, FramingError, LocalProtocolError, RemoteProtocolError
from switch.model.message import Message
from switch.sim.originate import LoadWindow, OriginateConfig, OriginateStats, Originator
from switch.sim.rules import Approver, Decision, IssuerRules
from switch.sim.simkeys import SimKeys
from switch.wire.framing import Frame, Framer

if TYPE_CHECKING:
    pass

log = logging.getLogger("bulkhead.sim.issuer")


@dataclass(frozen=True)
class IssuerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: let the system pick; serve_issuer reports the port through task_status
    scheme: str = "generic"
    framing: LinkOptions | None = None  # None: the network's default framing
    rules: IssuerRules = field(default_factory=IssuerRules)
    approve_all: bool = False
    originate: OriginateConfig | None = None  # None: answer only (the issuer simulator)
    # Send a message that does not decode back in the network's reject form (a framer with ``reject``): with this
    # code, or the one the error names (a CUPS header's); None: skip it, as the issuer simulator does.
    reject_code: str | None = None
    # A network simulator whose network has no reject form answers a malformed request as its network refuses one
    # (Network.refuse: Mastercard and American Express answer 30); the issuer simulator skips it.
    refuse: bool = False
    start_after_s: float = 1.0  # originate once the bank has signed on, or after this long without a sign-on
    # The zone master key shared with the bank (a cryptogram under the public test LMK, switch.sim.simkeys): a key
    # exchange is answered with a new key under it (None: answered 96); every ``key_every_s`` seconds (0: never)
    # the simulator starts a key change itself.
    zmk: str | None = None
    key_every_s: float = 0.0

    def __post_init__(self) -> None:
        if self.key_every_s < 0 or (self.key_every_s and self.zmk is None):
            raise ValueError("key_every: a positive number of seconds, and it needs the zmk")


# The reject code of a message whose body does not decode. Neither network publishes one for it: VISA's reject
# codes (BASE I header H14) are not public, and the public CUPS codes only name header faults (00015-00055, the
# closest being 00035 message length). Each is a `--reject-code` of `bulkhead sim network`, listed in the README.
REJECT_CODES = {"visa": "0001", "unionpay": "00035"}


@runtime_checkable
class RejectingFramer(Protocol):
    """A framer that can send a frame back in its network's reject form (VISA's, UnionPay's)."""

    def reject(self, frame: Frame, code: str, /) -> bytes: ...


@dataclass
class IssuerStats:
    """What the simulator saw, for tests and the CLI's exit summary."""

    received: Counter[str] = field(default_factory=Counter)  # per request MTI
    answered: Counter[str] = field(default_factory=Counter)  # per field 39 sent
    dropped: int = 0
    malformed: int = 0  # undecodable messages and framing errors
    connections: int = 0
    keepalives: int = 0
    rejected: int = 0  # malformed messages sent back in the network's reject form
    keys_given: int = 0  # zone keys the bank has (its key exchanges answered 00, our key changes answered 00)
    key_kcvs: list[str] = field(default_factory=list)  # their check values, in order (6 hex: never a key)
    originated: OriginateStats = field(default_factory=OriginateStats)


async def serve_issuer(
    config: IssuerConfig,
    *,
    stats: IssuerStats | None = None,
    on_done: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen and answer (and originate) until cancelled. ``task_status.started(port)`` once listening; ``on_done``
    is called when the originating connections have sent their ``count`` (or a timed run's window is over) and
    have their answers or timeouts."""
    adapter = network(config.scheme)
    stats = stats if stats is not None else IssuerStats()
    originate = config.originate
    if originate is not None and originate.duration_s is not None and stats.originated.window is None:
        stats.originated.window = LoadWindow(originate.warmup_s, originate.duration_s)
    link = config.framing if config.framing is not None else adapter.link_options(None, None)
    issuer = _Issuer(config, adapter, link, stats, on_done)
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    port: int = listeners[0].socket.getsockname()[1]
    log.info("issuer simulator listening on %s:%d (%s, %s)", config.host, port, config.scheme,
             link.framing_kind)
    task_status.started(port)
    await trio.serve_listeners(issuer.handle, listeners)


@dataclass(eq=False)
class _Conn:
    """One connection of the server: its framer, writer, nursery and (network simulators) originator."""

    framer: Framer
    outbox: Outbox
    nursery: trio.Nursery
    originator: Originator | None = None
    signed_on: trio.Event = field(default_factory=trio.Event)
    finished: bool = False
    # Our key change awaiting the bank's answer: its STAN, the key, and the key in use before it.
    key_change: tuple[str, ExportedKey, str | None] | None = None


class _Issuer:
    def __init__(self, config: IssuerConfig, adapter: Network, link: LinkOptions, stats: IssuerStats,
                 on_done: Callable[[], None] | None = None) -> None:
        self.on_done = on_done  # the originators have sent their count and have their answers (or timeouts)
        self._originating: set[_Conn] = set()  # connections whose originator has not finished
        self.link = link
        self.config = config
        self.adapter = adapter
        self.stats = stats
        self.approver = Approver(config.rules, config.approve_all)
        self.keys = SimKeys(config.scheme, adapter.session(link), adapter.make_response, zmk=config.zmk,
                            zpk=config.originate.zpk if config.originate is not None else None)
        self._stans = count(900_001)  # our key changes' STANs when we originate nothing else

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stats.connections += 1
        outbox = Outbox()
        async with stream:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(outbox.run, stream, nursery.cancel_scope)
                    conn = _Conn(self.link.framer(), outbox, nursery)
                    if self.config.originate is not None:
                        conn.originator = Originator(
                            self.config.scheme, self.config.originate, self.stats.originated,
                            self.adapter.matcher(None), lambda msg: self._send(msg, None, conn, count=False),
                            stan_start=(self.stats.connections - 1) * 100_000, zpk=lambda: self.keys.zpk)
                        self._originating.add(conn)
                        nursery.start_soon(self._originate, conn)
                    if self.config.key_every_s:
                        nursery.start_soon(self._change_keys, conn)
                    await self._read(stream, conn)
                    if conn.originator is not None and (conn.originator.exhausted
                                                        or self.stats.originated.window is not None):
                        # The bank closed after answering (or during a timed run, which goes on with the other
                        # connections): what is unanswered timed out.
                        self._finished(conn)
                    nursery.cancel_scope.cancel()
            except Exception as exc:  # one peer must never take the server down
                log.warning("issuer simulator: connection ended by %s", type(exc).__name__)

    async def _read(self, stream: trio.SocketStream, conn: _Conn) -> None:
        try:
            await read_frames(stream, conn.framer, lambda frame: self._on_frame(frame, conn))
        except FramingError as exc:
            self.stats.malformed += 1
            log.warning("issuer simulator: closing connection: %s", exc)

    async def _originate(self, conn: _Conn) -> None:
        """Originate at the configured rate (or one at a time) once the bank has signed on, until the count is
        reached; count what was not answered in time."""
        originator = conn.originator
        assert originator is not None
        config = originator.config
        with trio.move_on_after(self.config.start_after_s):
            await conn.signed_on.wait()
        window = self.stats.originated.window
        if window is not None and originator.start_clock():  # a timed run: its clock starts with the first one
            conn.nursery.start_soon(self._announce, window)
        if config.inflight:
            await self._closed_loop(conn)
            return
        # At a rate, the first request waits one interval after the sign-on: a node signs on to the network
        # before its own processors are up (the demo's cells start beside it).
        interval = 1 / config.rate if config.rate > 0 else 0.01
        while not originator.exhausted:
            if config.rate > 0:
                await trio.sleep(interval)
            originator.expire()
            if config.rate > 0 or originator.idle:
                originator.originate()
            if config.rate == 0:
                await trio.sleep(interval)
        await self._drain(conn)

    async def _closed_loop(self, conn: _Conn) -> None:
        """``inflight`` requests outstanding, each answer sending the next (Originator.on_answer), until the count
        or the timed run's window is over; every 50 ms what waited past the timeout is counted and its slot refilled."""
        originator = conn.originator
        assert originator is not None
        while True:
            originator.expire()
            originator.fill()
            if originator.exhausted:
                break
            await trio.sleep(0.05)
        await self._drain(conn)

    async def _change_keys(self, conn: _Conn) -> None:
        """Every ``key_every_s`` seconds once the bank has signed on: a key change of our own (a new ZPK), used for
        what we send after it (the bank's node reads keys by receive time), given up if the bank refuses it
        (:meth:`_key_answer`); one at a time."""
        await conn.signed_on.wait()
        while True:
            await trio.sleep(self.config.key_every_s)
            if conn.key_change is not None:  # the last one is still unanswered: it is forgotten, a new one goes
                log.warning("network simulator: key change stan %s unanswered", conn.key_change[0])
            stan = conn.originator.next_stan() if conn.originator is not None else f"{next(self._stans) % 10**6:06d}"
            change = self.keys.change(stan)
            if change is None:
                log.warning("network simulator: its options give no key exchange: key_every does nothing")
                return
            request, key = change
            self._send(request, None, conn, count=False)
            conn.key_change = (stan, key, self.keys.sent(key))

    def _key_answer(self, answer: Message, conn: _Conn) -> bool:
        """The bank's answer to our key change (True), or not ours (False)."""
        pending = conn.key_change
        if pending is None or answer.stan != pending[0]:
            return False
        conn.key_change = None
        if answer.response_code == ResponseCode.APPROVED.value:
            self._count_key()
        else:
            self.keys.refused(pending[1], pending[2])
            log.warning("network simulator: the bank refused our key change (%s): back to the key it has",
                        answer.response_code)
        return True

    def _count_key(self) -> None:
        self.stats.keys_given += 1
        self.stats.key_kcvs.append(self.keys.last_kcv)

    @staticmethod
    async def _announce(window: LoadWindow) -> None:
        await trio.sleep(window.warmup)
        # bench/harness.py samples the processes' CPU from this line to the window's end.
        log.info("network simulator: measuring for %g s", window.duration)

    async def _drain(self, conn: _Conn) -> None:
        """Wait up to the timeout for the answers still owed, then count the rest as timed out."""
        originator = conn.originator
        assert originator is not None
        with trio.move_on_after(originator.config.timeout_s + 0.1):
            while originator.pending:
                await trio.sleep(0.01)
        self._finished(conn)

    def _finished(self, conn: _Conn) -> None:
        """A connection's originator has sent its count: count what is still unanswered, say so once, and call
        ``on_done`` when no other connection is still originating."""
        if conn.finished or conn.originator is None:
            return
        conn.finished = True
        conn.originator.expire(everything=True)
        self._originating.discard(conn)
        if self.on_done is not None and not self._originating:
            self.on_done()

    def _on_frame(self, frame: Frame, conn: _Conn) -> None:
        if frame.keepalive:
            self.stats.keepalives += 1
            reply = conn.framer.keepalive_reply(frame)
            if reply is not None:
                conn.outbox.put(reply)
            return
        try:
            inbound = self.adapter.classify(frame)
        except RemoteProtocolError as exc:
            self.stats.malformed += 1
            self._reject(frame, conn, exc)
            return
        request = inbound.message
        if inbound.kind is FrameKind.REJECT:
            if conn.originator is not None:
                conn.originator.on_rejected(request)
            return
        if request is None:
            return
        self.stats.received[request.mti] += 1
        if not request.is_request:
            if request.is_network and self._key_answer(request, conn):
                return
            if conn.originator is not None:
                conn.originator.on_answer(request)
            return
        if request.is_network:
            conn.signed_on.set()
            if self.keys.is_key_exchange(request):
                response = self.keys.answer(request)
                if response.response_code == ResponseCode.APPROVED.value:
                    self._count_key()
                self._send(response, frame, conn)
                return
        try:
            self.adapter.validate(request)
        except FieldError as exc:
            log.info("issuer simulator: %s %s: answering format error", request.mti, exc)
            self._send(self.adapter.make_response(request, ResponseCode.FORMAT_ERROR), frame, conn)
            return
        decision = self.approver.decide(request)
        if decision.code is None:
            self.stats.dropped += 1
            return
        response = self._response(request, decision)
        if decision.delay_ms > 0:
            conn.nursery.start_soon(self._send_later, decision.delay_ms, response, frame, conn)
        else:
            self._send(response, frame, conn)

    def _reject(self, frame: Frame, conn: _Conn, exc: RemoteProtocolError) -> None:
        """A message that does not decode: sent back in the network's reject form, or answered as the network
        refuses one (Mastercard, American Express: a request answered 30), or skipped."""
        framer = conn.framer
        code = getattr(exc, "reject_code", "") or self.config.reject_code
        if not code or not isinstance(framer, RejectingFramer):
            refusal = self.adapter.refuse(frame, exc, framer) if self.config.refuse else None
            if refusal is not None and refusal.wire is not None:
                conn.outbox.put(refusal.wire)
                self.stats.rejected += 1
                log.info("issuer simulator: malformed message answered %s: %s", refusal.code, exc)
                return
            log.warning("issuer simulator: undecodable message skipped: %s", exc)
            return
        try:
            conn.outbox.put(framer.reject(frame, code))
        except (ValueError, LocalProtocolError) as exc2:
            log.warning("issuer simulator: cannot reject the malformed message (%s)", exc2)
            return
        self.stats.rejected += 1
        log.info("issuer simulator: malformed message rejected with code %s: %s", code, exc)

    def _response(self, request: Message, decision: Decision) -> Message:
        assert decision.code is not None
        response = self.adapter.make_response(request, decision.code)
        if decision.code == ResponseCode.APPROVED.value and request.mti_class in "12" and not request.is_advice:
            response[38] = self.approver.approval_code()
            if decision.balances:
                response[54] = self.approver.balance_field(request)
        return response

    async def _send_later(self, delay_ms: float, response: Message, frame: Frame, conn: _Conn) -> None:
        await trio.sleep(delay_ms / 1000)
        self._send(response, frame, conn)

    def _send(self, msg: Message, frame: Frame | None, conn: _Conn, *, count: bool = True) -> None:
        """Encode and queue ``msg``: a reply on ``frame``'s header, or (``frame`` None) under our own."""
        try:
            data = conn.framer.encode(self.adapter.encode(msg), reply_to=frame)
        except LocalProtocolError as exc:
            log.warning("issuer simulator: cannot encode %s: %s", msg.mti, exc)
            return
        if count:
            self.stats.answered[msg.response_code or ""] += 1
        conn.outbox.put(data)
