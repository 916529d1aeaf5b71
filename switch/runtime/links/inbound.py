"""Listeners: accept connections on a configured port with a connection limit, a per-address cap, an IP
allow-list, first-frame, frame and idle timeouts and optional TLS. Each connection is served in its own task with
every error caught there, so one failing or hostile peer never affects another connection or the node (trio's
serve_listeners pattern). What the connections read goes through the listener's backlog, which sheds what cannot
be answered in time (:mod:`switch.runtime.links.admission`).

A hostile peer must not be able to multiply log lines either (issue 11): refusals, timeouts and format errors
are counted (``status()``, Prometheus) and logged through :class:`switch.infra.ratelog.SummaryLog`, one line
per reason (per peer address for format errors) per interval, with the count of those not written.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import ssl

import trio

from switch.config import ListenerConfig
from switch.contracts.network import FrameKind, Network
from switch.exchange.ports import ConnectionClosed
from switch.infra.ratelog import SummaryLog
from switch.model.codes import ResponseCode
from switch.model.errors import BulkheadError, RemoteProtocolError
from switch.model.message import Message
from switch.runtime.links.admission import WAITED, Backlog, sheddable
from switch.runtime.links.connection import Connection, run_connection
from switch.runtime.links.hooks import LinkHooks
from switch.wire.framing import Frame, MalformedFrame

log = logging.getLogger("bulkhead.link")


class ListenError(BulkheadError):
    """A listener cannot bind its address (taken by another program, or not this host's)."""


# Frame kinds as module names (the frame path compares every frame's kind; an Enum attribute costs about 0.25 us).
_REQUEST, _RESPONSE, _REJECT = FrameKind.REQUEST, FrameKind.RESPONSE, FrameKind.REJECT
_KEEPALIVE, _SESSION = FrameKind.KEEPALIVE, FrameKind.SESSION
# Refusal reasons (status "refusals", metric bulkhead_listener_refused{reason}).
ALLOW_LIST, LIMIT, PER_PEER = "allow-list", "limit", "per-peer"
FORMAT_ERRORS = "format-error budget"  # a close reason beside the connection's timeouts, and a refusal reason
LOG_INTERVAL_S = 10.0  # one summary line per reason per this many seconds
MAX_BANNED = 4096  # addresses refused for the format-error budget at once (memory bound)


class Listener:
    def __init__(self, config: ListenerConfig, network: Network, hooks: LinkHooks, *, reuse_port: bool = False,
                 port: int | None = None) -> None:
        self.config = config
        # Several node processes accept on the same port (switch.runtime.workers): the kernel spreads connections.
        self.reuse_port = reuse_port
        self.bind_port = config.port if port is None else port
        self.name = config.name
        self.network = network
        self.hooks = hooks
        # Network management by the network's rules (the peer's sign-on, echo, key exchange, cutover).
        self.session = network.session(config.options)
        self.active: set[Connection] = set()
        self.port: int | None = None
        self._accepting: trio.CancelScope | None = None
        self.accepted = 0
        self.refused = 0
        self.received = 0
        self.refusals: dict[str, int] = {}  # by reason
        self.closes: dict[str, int] = {}  # connections the listener gave up on, by reason
        self.format_errors = 0
        self._per_peer: dict[str, int] = {}  # open connections by peer address (IPv6: by /64), without the port
        self._budget_closes: dict[str, list[float]] = {}  # by peer group: when its connections were closed for it
        self._banned: dict[str, float] = {}  # peer group -> refused until (trio time)
        self._refusal_log = SummaryLog(log, interval=LOG_INTERVAL_S)
        self._close_log = SummaryLog(log, level=logging.INFO, interval=LOG_INTERVAL_S)
        # A connection may have four times its in-flight limit waiting before its reader pauses: enough that its
        # frames wait (and age, and are shed) in the backlog rather than unread in the kernel, bounded all the same.
        self.backlog = Backlog(self.name, max_wait_s=config.max_wait_ms / 1000, limit=config.max_backlog,
                               per_connection=4 * config.max_inflight_per_connection)

    def status(self) -> dict[str, object]:
        return {
            "name": self.name, "kind": "listener", "state": "listening" if self.port else "down",
            "port": self.port, "scheme": self.network.name, "connections": len(self.active),
            "accepted": self.accepted, "refused": self.refused, "received": self.received,
            "refusals": dict(self.refusals), "closes": dict(self.closes), "format_errors": self.format_errors,
            **self.backlog.status(),
        }

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.tls is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.config.tls.cert), str(self.config.tls.key))
        return ctx

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        ctx = self._ssl_context()
        try:
            if self.reuse_port:
                listeners = await _reuse_port_listeners(self.config.host, self.bind_port)
            else:
                listeners = await trio.open_tcp_listeners(self.bind_port, host=self.config.host)
        except OSError as exc:  # say which listener and address: a bare "Address already in use" names neither
            raise ListenError(f"listener {self.name}: cannot listen on {self.config.host}:{self.bind_port}: "
                              f"{exc.strerror or exc}") from None
        self.port = listeners[0].socket.getsockname()[1]
        log.info("listener %s: %s:%d scheme %s framing %s", self.name, self.config.host, self.port,
                 self.network.name, self.config.framing_kind)
        wrapped: list[trio.abc.Listener[trio.abc.Stream]] = (
            [trio.SSLListener(lst, ctx, https_compatible=False) for lst in listeners] if ctx else
            list(listeners)
        )
        # Connections live in their own nursery, so the node can stop accepting (stop_accepting) and still
        # answer on the connections it has; the backlog is worked off beside them until the last one is gone.
        async with trio.open_nursery() as backlog:
            backlog.start_soon(self.backlog.run, self._on_frame)
            backlog.start_soon(self._flush_logs)
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as accepting:
                    self._accepting = accepting.cancel_scope
                    await accepting.start(functools.partial(trio.serve_listeners, self._handle, wrapped,
                                                            handler_nursery=connections))
                    task_status.started(self.port)
                for listener in listeners:  # no longer accepting: free the port for whoever takes over
                    listener.socket.close()
            backlog.cancel_scope.cancel()

    async def _flush_logs(self) -> None:
        """Write the counts of bursts that have stopped (a summary line is otherwise written only when the next
        event of its kind arrives)."""
        while True:
            await trio.sleep(LOG_INTERVAL_S)
            self._refusal_log.flush()
            self._close_log.flush()
            self.hooks.log.flush()
            self.backlog.poll()
            self._forget_budget_closes()

    def _forget_budget_closes(self) -> None:
        """Drop budget closes older than the window and bans that have run out: addresses that flooded once and
        went away must not stay in memory for ever."""
        now = trio.current_time()
        window = self.config.format_error_window_s
        self._banned = {group: until for group, until in self._banned.items() if until > now}
        self._budget_closes = {group: recent for group, times in self._budget_closes.items()
                               if (recent := [t for t in times if t > now - window])}

    def stop_accepting(self) -> None:
        """Close the listening socket; the connections already accepted go on (the node is draining: with
        SO_REUSEPORT the kernel then sends new connections to the node's other processes only)."""
        if self._accepting is not None:
            self._accepting.cancel()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        peer = _peer(stream)
        address = _address(peer)
        group = _peer_group(address)
        try:
            refusal = self._refusal(address, group)
            if refusal is not None:
                self.refused += 1
                self.refusals[refusal] = self.refusals.get(refusal, 0) + 1
                self._refusal_log.note(refusal, "listener %s: refused %s (%s; %d connections open)", self.name,
                                       peer, refusal, len(self.active))
                # Forcefully: a graceful TLS close would first complete the handshake with the refused peer.
                await trio.aclose_forcefully(stream)
                return
            self.accepted += 1
            cfg = self.config
            conn = Connection(stream, cfg.options.framer(), link=self.name, peer=peer,
                              idle_timeout=cfg.idle_timeout_s, first_frame_timeout=cfg.first_frame_timeout_ms / 1000,
                              frame_timeout=cfg.frame_timeout_ms / 1000, max_inflight=cfg.max_inflight_per_connection)
            conn.on_malformed = self._malformed
            self.backlog.attach(conn)
            self.active.add(conn)
            log.debug("listener %s: connection from %s (%d open)", self.name, peer, len(self.active))
            self._per_peer[group] = self._per_peer.get(group, 0) + 1
            try:
                await run_connection(conn, self._receive)
            finally:
                self.active.discard(conn)
                log.debug("listener %s: connection from %s closed", self.name, peer)
                left = self._per_peer.pop(group) - 1
                if left:
                    self._per_peer[group] = left
            if conn.end_reason is not None:
                self._closed(conn, conn.end_reason, conn.timeout_text())
        except Exception as exc:  # one peer's failure must never reach the node
            log.error("listener %s: connection from %s failed: %s", self.name, peer, type(exc).__name__)
        finally:
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await stream.aclose()

    def _refusal(self, address: str, group: str) -> str | None:
        """Why a new connection from ``address`` (in per-peer ``group``) is refused, or None to serve it."""
        if not self._allowed(address):
            return ALLOW_LIST
        if len(self.active) >= self.config.max_connections:
            return LIMIT
        if self._per_peer.get(group, 0) >= self.config.max_connections_per_peer:
            return PER_PEER
        if self._banned:
            until = self._banned.get(group)
            if until is not None:
                if trio.current_time() < until:
                    return FORMAT_ERRORS
                del self._banned[group]
                self._budget_closes.pop(group, None)
        return None

    def _closed(self, conn: Connection, reason: str, text: str) -> None:
        self.closes[reason] = self.closes.get(reason, 0) + 1
        self._close_log.note(reason, "listener %s: closed %s: %s", self.name, conn.peer, text)

    def _allowed(self, address: str) -> bool:
        if not self.config.allow:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.config.allow)

    def _receive(self, conn: Connection, frame: Frame) -> None:
        """A frame as its connection's reader cut it: into the backlog, stamped with the time it was read (the
        reader's ``last_activity``). Keep-alives are answered at once: they cost nothing and must not wait behind
        a backlog, or a busy node would look dead to its peers."""
        if frame.keepalive:
            self._on_frame(conn, frame)
            return
        backlog = self.backlog
        refusal = backlog.refuses(conn)
        if refusal is not None:
            msg = self._sheddable(frame)
            if msg is not None:
                self.received += 1
                self._shed(conn, frame, msg, refusal)
                return
        backlog.put(conn, frame, conn.last_activity)

    def _sheddable(self, frame: Frame) -> Message | None:
        """The request in ``frame`` if it may be shed; None for anything else (it is queued, and decoded again
        when its turn comes: only while shedding, and only for what is not a request)."""
        try:
            inbound = self.network.classify(frame)
        except RemoteProtocolError:
            return None
        msg = inbound.message
        return msg if inbound.kind is _REQUEST and msg is not None and sheddable(msg.mti) else None

    def _on_frame(self, conn: Connection, frame: Frame, shed: str | bool | None = None) -> None:
        """One frame, from the backlog (``shed`` True when it waited too long there) or refused by it (``shed``
        names why): a request that may be shed is then answered 91 at once; everything else is processed."""
        try:
            inbound = self.network.classify(frame)
        except RemoteProtocolError as exc:
            self._format_error(conn, frame, exc)
            return
        kind, msg = inbound.kind, inbound.message
        if kind is _REQUEST and msg is not None:
            self.received += 1
            if shed and sheddable(msg.mti):
                self._shed(conn, frame, msg, WAITED if shed is True else shed)
                return
            if conn.closed and sheddable(msg.mti):
                self.backlog.dropped += 1  # its peer has gone: an exchange would only be reversed
                return
            msg.meta.source_link = self.name
            self.hooks.on_request(self.name, conn, frame, msg)
        elif kind is _KEEPALIVE or kind is _SESSION:
            conn.reply_keepalive(frame)  # answered as the framing says, never routed
        else:
            self.received += 1
            if kind is _RESPONSE and not conn.closed:  # an answer nobody asked for counts like garbage (a reject
                self._budget(conn)  # is a network refusing what we sent: not the peer's fault)
            self.hooks.log.note((self.name, _address(conn.peer), "unsolicited"),
                                "listener %s: unsolicited %s %s from %s dropped", self.name, kind.value,
                                msg.mti if msg is not None else "-", conn.peer)

    def _malformed(self, conn: Connection, exc: MalformedFrame) -> None:
        """A frame the framer delimited but whose header it could not read: a format error like one whose body
        does not decode (answered in the network's form, counted against the peer's budget), handled at once: it
        cannot be classified, so it has no place in the backlog."""
        self._format_error(conn, exc.frame, exc)

    def _format_error(self, conn: Connection, frame: Frame, exc: Exception) -> None:
        if conn.closed:
            return  # read before the connection was given up (say for this very budget): nobody to answer
        self.received += 1
        self.format_errors += 1
        self.hooks.on_format_error(self.name, self.network, conn, frame, exc)
        if self.config.on_format_error == "close":
            conn.close()
        else:
            self._budget(conn)

    def _shed(self, conn: Connection, frame: Frame, msg: Message, reason: str) -> None:
        """Answer ``msg`` 91 at once without an exchange: it cannot be answered in time (admission)."""
        if conn.closed:
            self.backlog.dropped += 1  # nobody to answer
            return
        try:
            body = self.network.encode(self.network.make_response(msg, ResponseCode.ISSUER_INOPERATIVE))
        except Exception:  # its 91 does not encode (a field too long to echo): the pipeline answers it as usual
            msg.meta.source_link = self.name
            self.hooks.on_request(self.name, conn, frame, msg)
            return
        self.backlog.count_shed(reason)
        self.hooks.on_shed(self.name, msg)
        with contextlib.suppress(ConnectionClosed):
            conn.send_frame(body, reply_to=frame)

    def _budget(self, conn: Connection) -> None:
        """One more frame from ``conn`` the node could not use: past the budget the connection is closed, and
        an address whose connections were closed for it ``format_error_ban_after`` times within the window may
        not connect again until the window has passed (a flooder that reconnects after every close would
        otherwise cost the node a budget's worth of salvaging per connection, for ever)."""
        if not self._over_budget(conn):
            return
        cfg = self.config
        conn.close()
        self._closed(conn, FORMAT_ERRORS, f"over {cfg.format_error_budget} format errors or unsolicited frames "
                                          f"in {cfg.format_error_window_s:g}s")
        if not cfg.format_error_ban_after:
            return
        group = _peer_group(_address(conn.peer))
        now = trio.current_time()
        closes = [t for t in self._budget_closes.get(group, []) if t > now - cfg.format_error_window_s]
        closes.append(now)
        self._budget_closes[group] = closes
        if len(closes) >= cfg.format_error_ban_after:
            if len(self._banned) >= MAX_BANNED:  # a flood from ever-new addresses: forget the oldest ban
                del self._banned[next(iter(self._banned))]
            self._banned[group] = now + cfg.format_error_window_s
            self._refusal_log.note("ban", "listener %s: %s refused for %gs: %d connections closed for format errors "
                                   "in %gs", self.name, group, cfg.format_error_window_s, len(closes),
                                   cfg.format_error_window_s)

    def _over_budget(self, conn: Connection) -> bool:
        """Whether ``conn`` has now sent more than format_error_budget undecodable frames within the window: a
        peer that cannot frame a message right does not get to cost the node a salvage per frame forever."""
        now = trio.current_time()
        recent = conn.format_errors
        recent.append(now)
        cutoff = now - self.config.format_error_window_s
        if recent[0] < cutoff:
            recent[:] = [t for t in recent if t >= cutoff]
        return len(recent) > self.config.format_error_budget


async def _reuse_port_listeners(host: str, port: int, backlog: int = 1024) -> list[trio.SocketListener]:
    """trio.open_tcp_listeners with SO_REUSEPORT set before bind (it has no option for it): every node process
    binds the same address and the kernel hands each new connection to one of them (Linux 3.9+)."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM, flags=trio.socket.AI_PASSIVE)
    listeners = []
    try:
        for family, kind, proto, _, address in infos:
            sock = trio.socket.socket(family, kind, proto)
            try:
                sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
                sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEPORT, 1)
                if family == trio.socket.AF_INET6:
                    sock.setsockopt(trio.socket.IPPROTO_IPV6, trio.socket.IPV6_V6ONLY, 1)
                await sock.bind(address)
                sock.listen(backlog)
            except OSError:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except OSError:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners


def _address(peer: str) -> str:
    """The address of a "host:port" peer (IPv6 without its brackets)."""
    return peer.rsplit(":", 1)[0].strip("[]")


def _peer_group(address: str) -> str:
    """What the per-peer cap counts: the address, or for IPv6 its /64 (one host is usually given a whole /64,
    so counting single IPv6 addresses would cap nobody)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    except ValueError:
        return address


def _peer(stream: trio.abc.Stream) -> str:
    inner = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(inner, trio.SocketStream):
        try:
            host, port = inner.socket.getpeername()[:2]
            return f"{host}:{port}"
        except OSError:
            pass
    return "?"
