"""An outbound link (connector): keeps a connection to one of its hosts, signs on, echoes when idle,
carries many requests in flight matched by key, and signs off on shutdown.

Network management is the network's (switch.contracts.network.NetworkSession): the link schedules sign-on, echo,
key exchange and sign-off and sends what the session builds; whether an answer accepts a request is the
session's call. Every frame is classified by the link's network: responses go to the pending table, a reject of
one of our requests to its waiter (never routed as a new request), keep-alives and session control are answered
at the framing level.

Requests may also arrive on an outbound link (a network sends issuer traffic down the connection the bank
opened): those go to the node's request handler exactly like requests on a listener.

A link that stays connected but stops answering is shown degraded (switch.runtime.links.state.LinkHealth): after
``degrade_after_timeouts`` requests in a row unanswered, or an unanswered echo, until the first answer. Its state
then reads "degraded"; the link still carries requests (a pool prefers its other links, switch.routing.pool).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import trio

from switch.config import ConnectorConfig
from switch.contracts.network import FrameKind, NetMgmt, Network, Rejected
from switch.exchange.identity import LinkIdentity
from switch.exchange.ports import Answer, ConnectionClosed, LinkDown
from switch.model.errors import BulkheadError, EncodeError, RemoteProtocolError
from switch.model.message import Message
from switch.runtime.links.connection import Connection, run_connection
from switch.runtime.links.hooks import LinkHooks
from switch.runtime.links.mux import Mux
from switch.runtime.links.state import LinkEvent, LinkHealth, LinkState, next_state
from switch.runtime.links.waiter import Continuation, Timer
from switch.wire.framing import Frame, FrameEncodeError, MalformedFrame

log = logging.getLogger("bulkhead.link")
# Frame kinds as module names (the frame path compares every frame's kind; an Enum attribute costs about 0.25 us).
_REQUEST, _RESPONSE, _REJECT = FrameKind.REQUEST, FrameKind.RESPONSE, FrameKind.REJECT
_KEEPALIVE, _SESSION = FrameKind.KEEPALIVE, FrameKind.SESSION

def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class OutboundLink:
    def __init__(self, config: ConnectorConfig, network: Network, hooks: LinkHooks,
                 timer: Timer | None = None, *, process: int = 0, processes: int = 1) -> None:
        self.config = config
        # Serves request(timeout=...); a link without one bounds such a request with a cancel scope instead.
        self.timer = timer
        self.name = config.name
        self.network = network
        self.hooks = hooks
        # Network management by the network's rules with this link's options: the link only schedules it.
        self.session = network.session(config.options)
        self.state = LinkState.DOWN
        self.conn: Connection | None = None
        self.peer: str | None = None
        self.mux = Mux(self.name, network.matcher(config.match_fields), lambda m: hooks.on_late(self.name, m))
        # The link's STANs (its requests under its own identity and its network management). A node of several
        # processes gives each its own residue class, so that two never send the same STAN on one network.
        self._stan = itertools.count(1)
        self._stan_stride, self._stan_offset = processes, process
        self._stan_cycle = 1_000_000 // processes
        identity = LinkIdentity(self.next_stan, own_stan=config.own_stan, own_rrn=config.own_rrn,
                                acquirer=config.acquiring_institution, forwarder=config.forwarding_institution)
        self.identity: LinkIdentity | None = identity if identity.rewrites else None
        # A response's frame body (and receive time) is kept on links that check MACs over it, and on any link
        # while a key exchange the node started is under way (the answer's receive time activates the new key).
        self.mac = config.mac
        self._keying = False
        self._wanted_signed_on = config.signon
        self.sent = 0
        self.received = 0
        self.rejected = 0
        self.timeouts = 0
        self.connects = 0
        self.session_frames = 0
        # What `bulkhead status` shows of the link: wall-clock times (epoch seconds), for operators.
        self.state_since = time.time()
        self.health = LinkHealth(config.degrade_after_timeouts)
        self.last_echo: tuple[float, str | None, float] | None = None  # (at, DE 39 or None: unanswered, ms)
        self.last_error: tuple[float, str] | None = None  # (at, what went wrong); never card data
        # Moving average of the time to a timely answer, seconds (-1: none yet); from the reader's receive time,
        # so the hot path takes no extra clock reading.
        self.latency_s = -1.0

    # -- state --------------------------------------------------------------------------------------
    def _event(self, event: LinkEvent) -> None:
        new, legal = next_state(self.state, event)
        if not legal:
            log.debug("link %s: event %s ignored in state %s", self.name, event.value, self.state.value)
        elif new is not self.state:
            log.info("link %s: %s -> %s", self.name, self.state.value, new.value)
            self.state_since = time.time()
        self.state = new

    def _fault(self, what: str) -> None:
        """Log ``what`` went wrong and keep it as the link's last error (shown by `bulkhead status`)."""
        self.last_error = (time.time(), what)
        log.warning("link %s: %s", self.name, what)

    def _timed_out(self) -> None:
        if self.health.timed_out(time.time()):
            self._fault(f"degraded: {self.health.reason}")

    def _heard(self, sent_at: float, conn: Connection) -> None:
        """A request sent at ``sent_at`` was answered in time (on ``conn``, whose reader just received it)."""
        sample = conn.last_activity - sent_at
        latency = self.latency_s
        self.latency_s = sample if latency < 0 else latency + (sample - latency) * 0.125
        health = self.health
        if health.in_a_row or health.reason is not None:
            since = health.since
            if health.answered() and since is not None:
                log.info("link %s: answering again, no longer degraded (after %.1fs)", self.name,
                         time.time() - since)

    def is_degraded(self) -> bool:
        return self.health.reason is not None

    def is_up(self) -> bool:
        if self.conn is None or self.conn.closed:
            return False
        if self.config.signon:
            return self.state is LinkState.SIGNED_ON
        return self.state in (LinkState.CONNECTED, LinkState.SIGNED_ON)

    @property
    def timeout_ms(self) -> int:
        return self.config.timeout_ms

    @property
    def state_name(self) -> str:
        """The state table's state, or "degraded" while a link that is otherwise up does not answer."""
        if self.health.reason is not None and self.state in (LinkState.CONNECTED, LinkState.SIGNED_ON):
            return "degraded"
        return self.state.value

    def status(self) -> dict[str, object]:
        health = self.health
        state = self.state_name
        # "since" goes with the state shown: a degraded link's is when it stopped answering.
        since = health.since if state == "degraded" and health.since is not None else self.state_since
        return {
            "name": self.name, "kind": "connector", "state": state, "peer": self.peer,
            "scheme": self.network.name, "in_flight": len(self.mux), "sent": self.sent,
            "received": self.received, "rejected": self.rejected, "timeouts": self.timeouts,
            "connects": self.connects, "since": _iso(since),
            "degraded": None if health.since is None else {"reason": health.reason, "since": _iso(health.since)},
            "unanswered_in_a_row": health.in_a_row,
            "latency_ms": None if self.latency_s < 0 else round(self.latency_s * 1000, 2),
            "last_echo": None if self.last_echo is None else
            {"at": _iso(self.last_echo[0]), "response_code": self.last_echo[1], "ms": self.last_echo[2]},
            "last_error": None if self.last_error is None else
            {"at": _iso(self.last_error[0]), "error": self.last_error[1]},
        }

    def continue_after(self, stan: str) -> None:
        """Go on numbering after ``stan`` (the last one this link sent before a restart, from the journal), so a
        restarted node does not send the day's first STANs again."""
        if stan.isdigit():
            self._stan = itertools.count(int(stan) // self._stan_stride + 1)

    def next_stan(self) -> str:
        n = next(self._stan) % self._stan_cycle * self._stan_stride + self._stan_offset
        if n == 0:  # 000000 is not a STAN some networks accept
            n = next(self._stan) % self._stan_cycle * self._stan_stride + self._stan_offset
        return f"{n:06d}"

    # -- requests -----------------------------------------------------------------------------------
    async def request(self, msg: Message, timeout: float | None = None) -> Answer:
        """Send ``msg`` and wait for its response (or the network's rejection of it); None when the connection
        drops first or, with ``timeout``, when no response came within that many seconds.

        The caller decides what an unanswered request means (a 91 and a reversal, decided where the timeout
        is chosen); it may also bound the wait with its own cancel scope. Either way the pending entry is
        forgotten, and a response that comes after goes to the late handler.
        """
        if timeout is not None and self.timer is None:
            with trio.move_on_after(timeout):
                return await self.request(msg)
            self._timed_out()
            return None
        conn, wire = self._ready(msg)
        pending = self.mux.register(msg)
        response: Answer = None
        try:
            try:
                conn.send_nowait(wire)
            except ConnectionClosed:
                raise LinkDown(f"link {self.name}: connection closed") from None
            self.sent += 1
            sent_at = trio.current_time()
            # A Slot, not an Event in a cancel scope: see switch.runtime.links.waiter. Once the slot is settled by
            # the deadline or a cancellation, Mux.deliver hands a response that still comes to the late handler.
            if await pending.slot.wait(self.timer, math.inf if timeout is None else timeout):
                response = pending.slot.take()
                if response is not None:
                    self._heard(sent_at, conn)
            else:  # the deadline passed (a dropped connection settles the slot with None instead)
                self._timed_out()
            return response
        finally:
            if response is None:
                self.timeouts += 1
            self.mux.forget(pending)

    def send(self, msg: Message, timeout: float, on_answer: Callable[[Answer], None]) -> None:
        """Send ``msg`` without waiting: ``on_answer`` is called with its response (or its rejection), or with
        None when no response came within ``timeout`` seconds or the connection dropped first.

        The node's common path: the exchange continues from the link reader, not from a task parked on
        :meth:`request`. Raises what :meth:`request` raises before anything is sent (LinkDown, DuplicateKeyError,
        EncodeError); ``on_answer`` is then never called. ``on_answer`` runs inside the link reader or the node's
        timer and must not raise.
        """
        timer = self.timer
        assert timer is not None, "send() needs the node's timer"
        conn, wire = self._ready(msg)

        def answered(response: Answer) -> None:
            if response is None:  # the connection dropped (Mux.fail_all)
                self.timeouts += 1
            else:
                self._heard(sent_at, conn)
            on_answer(response)

        def expired() -> None:
            self.timeouts += 1
            self._timed_out()
            self.mux.forget(pending)
            on_answer(None)

        slot: Continuation[Message | Rejected] = Continuation(answered, expired)
        pending = self.mux.register(msg, slot)
        sent_at = trio.current_time()
        try:
            conn.send_nowait(wire)
        except ConnectionClosed:
            slot.close()
            self.mux.forget(pending)
            raise LinkDown(f"link {self.name}: connection closed") from None
        self.sent += 1
        timer.add(sent_at + timeout, slot)

    def _ready(self, msg: Message) -> tuple[Connection, bytes]:
        """The connection to send ``msg`` on and its bytes for the wire, or LinkDown / EncodeError (the network's
        format, or the link's framing and dialect, cannot carry it: raised before anything is registered or sent,
        so its sender answers 30 and the SAF marks its entry failed, never a pending entry left behind)."""
        conn = self.conn
        if conn is None or (not self.is_up() and not msg.is_network):
            raise LinkDown(f"link {self.name} is {self.state.value}")
        if len(self.mux) >= self.config.max_inflight and not msg.is_network:
            # Back-pressure: a destination that stopped answering must not collect unbounded work. Network
            # management (echo, sign-on) is exempt: it is how the link finds out the destination is gone.
            raise LinkDown(f"{self.name}: {len(self.mux)} requests in flight (max_inflight)")
        body = self.network.encode(msg)
        try:
            return conn, conn.framer.encode(body)
        except FrameEncodeError as exc:  # too long for the framing, or not expressible in the link's dialect
            raise EncodeError(str(exc), "-") from None

    # -- network management -------------------------------------------------------------------------
    async def manage(self, kind: NetMgmt, timeout: float | None = None, *,
                     key: str | None = None) -> tuple[bool, str | None]:
        """Perform network management ``kind`` by the network's rules: send the requests its session builds (a
        group sign-on is one per institution, all sent at once, each with its own ``timeout``, default the
        link's) and return whether every answer accepts it, with the DE 39 of the first request (in the
        session's order) that did not: its refusal, its reject code, or None when it went unanswered; or the last
        answer's DE 39 when all accepted. A key exchange is accepted only once the node has installed the key the
        answer carries (``hooks.on_key``); ``key`` (``"pin"`` or ``"mac"``) asks for that key where the network's
        session can say which (``key_requests``), else the session's own choice."""
        key_requests = getattr(self.session, "key_requests", None)
        if kind is NetMgmt.KEY_EXCHANGE and key is not None and key_requests is not None:
            requests: list[Message] = key_requests(key, self.next_stan, datetime.now(UTC))
        else:
            requests = self.session.requests(kind, self.next_stan, datetime.now(UTC))
        if kind is NetMgmt.KEY_EXCHANGE:
            self._keying = True
            try:
                return await self._manage(kind, requests, timeout)
            finally:
                self._keying = False
                self.hooks.on_key_done(self.name)
        return await self._manage(kind, requests, timeout)

    async def _manage(self, kind: NetMgmt, requests: list[Message], timeout: float | None) -> tuple[bool, str | None]:
        wait = timeout if timeout is not None else self.config.timeout_ms / 1000
        answers: list[Answer] = [None] * len(requests)

        async def ask(i: int, msg: Message) -> None:
            try:
                answers[i] = await self.request(msg, wait)
            except BulkheadError as exc:  # not sent (the connection went away): unanswered, the others go on
                log.warning("link %s: %s request %d of %d not sent (%s)", self.name, kind.value, i + 1,
                            len(requests), exc)

        if len(requests) == 1:
            answers[0] = await self.request(requests[0], wait)
        else:
            async with trio.open_nursery() as nursery:
                for i, msg in enumerate(requests):
                    nursery.start_soon(ask, i, msg)
        refusal: tuple[str | None] | None = None
        code = None
        for response in answers:
            if isinstance(response, Message):
                code = response.response_code
                ok = self.session.accepted(kind, response)
                if ok and kind is NetMgmt.KEY_EXCHANGE:
                    change = self.session.key_change(response)
                    ok = change is not None and await self.hooks.on_key(self.name, change, response)
            else:
                code, ok = (response.code.value if isinstance(response, Rejected) else None), False
            if not ok and refusal is None:
                refusal = (code,)
        if refusal is not None or not requests:
            return False, refusal[0] if refusal is not None else None
        return True, code

    async def signon(self) -> str | None:
        accepted, code = await self.manage(NetMgmt.SIGN_ON)
        if accepted:
            self._wanted_signed_on = True
            self._event(LinkEvent.SIGNED_ON)
        return code

    async def signoff(self) -> str | None:
        _accepted, code = await self.manage(NetMgmt.SIGN_OFF)
        self._wanted_signed_on = False
        self._event(LinkEvent.SIGNED_OFF)
        return code

    async def echo(self) -> str | None:
        start = trio.current_time()
        accepted, code = await self.manage(NetMgmt.ECHO)
        self.last_echo = (time.time(), code, round((trio.current_time() - start) * 1000, 2))
        if not accepted and code is None and self.health.echo_missed(time.time()):  # unanswered, not refused
            self._fault(f"degraded: {self.health.reason}")
        return code

    async def rekey(self, key: str | None = None) -> tuple[bool, str | None]:
        """A key exchange the node starts, by the network's rules, for the zone PIN key (``key="pin"``) or the
        zone MAC key (``"mac"``; None: the link's own choice); :class:`BulkheadError` when the link does none (its
        network has none, or the link's options do not enable it), which an unanswered one is not."""
        key_requests = getattr(self.session, "key_requests", None)
        if key is not None and key_requests is not None:
            probe: list[Message] = key_requests(key, lambda: "000000", datetime.now(UTC))
        else:
            probe = self.session.requests(NetMgmt.KEY_EXCHANGE, lambda: "000000", datetime.now(UTC))
        if not probe:
            what = f"a {key} key exchange" if key is not None else "key exchange"
            raise BulkheadError(f"link {self.name} does no {what} (its network's options do not enable it)")
        return await self.manage(NetMgmt.KEY_EXCHANGE, key=key)

    # -- the connection loop ------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backoff = self.config.backoff_initial_ms / 1000
        for attempt in itertools.count():
            host, port = self.config.hosts[attempt % len(self.config.hosts)]
            self._event(LinkEvent.CONNECTING)
            try:
                with trio.fail_after(self.config.connect_timeout_s):
                    stream = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError) as exc:
                self._event(LinkEvent.LOST)
                self._fault(f"cannot connect to {host}:{port} ({type(exc).__name__}); retry in {backoff:.1f}s")
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_ms / 1000)
                continue
            backoff = self.config.backoff_initial_ms / 1000
            try:
                await self._session(stream, f"{host}:{port}")
            except Exception as exc:  # a bug in one session must not take the node down: log, reconnect
                self.last_error = (time.time(), f"session with {host}:{port} failed: {type(exc).__name__}")
                log.error("link %s: session with %s:%d failed: %s", self.name, host, port, type(exc).__name__)
            await trio.sleep(backoff)

    async def _session(self, stream: trio.SocketStream, peer: str) -> None:
        conn = Connection(stream, self.config.options.framer(), link=self.name, peer=peer)
        conn.on_malformed = self._malformed
        self.conn, self.peer = conn, peer
        self.connects += 1
        self._event(LinkEvent.CONNECTED)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keeper, conn)
                await run_connection(conn, self._on_frame)
                nursery.cancel_scope.cancel()
        finally:
            self.conn = None
            self._event(LinkEvent.LOST)
            lost = self.mux.fail_all()
            if lost:
                self._fault(f"connection to {peer} lost with {lost} requests in flight")

    async def _keeper(self, conn: Connection) -> None:
        """Sign on after connecting, then send an echo whenever the link has been idle too long."""
        if self.config.signon:
            while not conn.closed and self.state is not LinkState.SIGNED_ON:
                if self._wanted_signed_on:
                    try:
                        code = await self.signon()
                    except BulkheadError as exc:
                        self._fault(f"sign-on could not be sent ({exc})")
                        conn.close()
                        return
                    if self.is_up():  # signon() moved the state (mypy cannot see it change)
                        break
                    self._fault(f"sign-on answered {code}")
                await trio.sleep(self.config.backoff_initial_ms / 1000 * 5)
        interval = self.config.echo_interval_s
        while not conn.closed:
            idle = trio.current_time() - conn.last_activity
            if idle < interval:
                await trio.sleep(interval - idle)
                continue
            try:
                code = await self.echo()
            except BulkheadError as exc:
                self._fault(f"echo could not be sent ({exc}), reconnecting")
                conn.close()
                return
            if code is None:  # echo() has marked the link degraded
                self._fault("echo unanswered, reconnecting")
                conn.close()
                return
            conn.last_activity = trio.current_time()

    def _malformed(self, conn: Connection, exc: MalformedFrame) -> None:
        """A frame the framer delimited but whose header it could not read: answered like any format error."""
        self.hooks.on_format_error(self.name, self.network, conn, exc.frame, exc)

    def _on_frame(self, conn: Connection, frame: Frame) -> None:
        try:
            inbound = self.network.classify(frame)
        except RemoteProtocolError as exc:
            self.hooks.on_format_error(self.name, self.network, conn, frame, exc)
            return
        kind, msg = inbound.kind, inbound.message
        if kind is _RESPONSE and msg is not None:
            self.received += 1
            meta = msg.meta
            meta.source_link = self.name
            if self.mac is not None or self._keying:
                meta.wire = frame.body
                meta.received_ns = time.perf_counter_ns()
                if self._keying and msg.mti[1] == "8":  # maybe the answer with the new key: requests wait for it
                    self.hooks.on_key_changing(self.name, meta.received_ns)
            self.mux.deliver(msg)
        elif kind is _REQUEST and msg is not None:
            msg.meta.source_link = self.name
            self.hooks.on_request(self.name, conn, frame, msg)
        elif kind is _REJECT:
            # The network refused one of our requests: its waiter hears so (no reversal: it was not processed).
            self.rejected += 1
            reason = inbound.reason or "no reason given"
            if msg is None:  # the rejected request itself does not decode: its exchange times out and is reversed
                log.warning("link %s: a request rejected by the network (%s) could not be read back", self.name,
                            reason)
            elif self.mux.reject(msg, Rejected(inbound.code, inbound.reason)):
                log.warning("link %s: %s stan %s rejected by the network (%s)", self.name, msg.mti, msg.stan, reason)
            else:
                log.warning("link %s: %s stan %s rejected by the network (%s) after it stopped waiting", self.name,
                            msg.mti, msg.stan, reason)
        else:  # keep-alive or session control: answered as the framing says, never routed
            if kind is _SESSION:
                self.session_frames += 1
            conn.reply_keepalive(frame)

    async def shutdown(self) -> None:
        """Sign off (when signed on) before the node stops; bounded so shutdown cannot hang."""
        if self.state is LinkState.SIGNED_ON and self.conn is not None:
            with trio.move_on_after(2) as scope:
                scope.shield = True
                try:
                    await self.signoff()
                except LinkDown:  # the connection went away meanwhile: there is nothing to sign off from
                    log.info("link %s: connection gone before the sign-off", self.name)
        self._event(LinkEvent.DRAINING)
