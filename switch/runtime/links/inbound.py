"""Listeners: accept connections on a configured port with a connection limit, an IP allow-list, an idle
timeout and optional TLS. Each connection is served in its own task with every error caught there, so one
failing or hostile peer never affects another connection or the node (trio's serve_listeners pattern)."""

from __future__ import annotations

import functools
import ipaddress
import logging
import ssl

import trio

from switch.config import ListenerConfig
from switch.contracts.network import FrameKind, Network
from switch.model.errors import BulkheadError, RemoteProtocolError
from switch.runtime.links.connection import Connection, run_connection
from switch.runtime.links.hooks import LinkHooks
from switch.wire.framing import Frame

log = logging.getLogger("bulkhead.link")


class ListenError(BulkheadError):
    """A listener cannot bind its address (taken by another program, or not this host's)."""


# Frame kinds as module names (the frame path compares every frame's kind; an Enum attribute costs about 0.25 us).
_REQUEST, _RESPONSE, _REJECT = FrameKind.REQUEST, FrameKind.RESPONSE, FrameKind.REJECT
_KEEPALIVE, _SESSION = FrameKind.KEEPALIVE, FrameKind.SESSION


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

    def status(self) -> dict[str, object]:
        return {
            "name": self.name, "kind": "listener", "state": "listening" if self.port else "down",
            "port": self.port, "scheme": self.network.name, "connections": len(self.active),
            "accepted": self.accepted, "refused": self.refused, "received": self.received,
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
        # answer on the connections it has.
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                self._accepting = accepting.cancel_scope
                await accepting.start(functools.partial(trio.serve_listeners, self._handle, wrapped,
                                                        handler_nursery=connections))
                task_status.started(self.port)
            for listener in listeners:  # no longer accepting: free the port for whoever takes over
                listener.socket.close()

    def stop_accepting(self) -> None:
        """Close the listening socket; the connections already accepted go on (the node is draining: with
        SO_REUSEPORT the kernel then sends new connections to the node's other processes only)."""
        if self._accepting is not None:
            self._accepting.cancel()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        peer = _peer(stream)
        try:
            if not self._allowed(peer):
                self.refused += 1
                log.warning("listener %s: refused %s (not in allow-list)", self.name, peer)
                # Forcefully: a graceful TLS close would first complete the handshake with the refused peer.
                await trio.aclose_forcefully(stream)
                return
            if len(self.active) >= self.config.max_connections:
                self.refused += 1
                log.warning("listener %s: refused %s (%d connections open)", self.name, peer, len(self.active))
                await trio.aclose_forcefully(stream)
                return
            self.accepted += 1
            conn = Connection(stream, self.config.options.framer(), link=self.name, peer=peer,
                              idle_timeout=self.config.idle_timeout_s,
                              max_inflight=self.config.max_inflight_per_connection)
            self.active.add(conn)
            log.debug("listener %s: connection from %s (%d open)", self.name, peer, len(self.active))
            try:
                await run_connection(conn, self._on_frame)
            finally:
                self.active.discard(conn)
                log.debug("listener %s: connection from %s closed", self.name, peer)
        except Exception as exc:  # one peer's failure must never reach the node
            log.error("listener %s: connection from %s failed: %s", self.name, peer, type(exc).__name__)
        finally:
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await stream.aclose()

    def _allowed(self, peer: str) -> bool:
        if not self.config.allow:
            return True
        try:
            address = ipaddress.ip_address(peer.rsplit(":", 1)[0].strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.config.allow)

    def _on_frame(self, conn: Connection, frame: Frame) -> None:
        try:
            inbound = self.network.classify(frame)
        except RemoteProtocolError as exc:
            self.received += 1
            self.hooks.on_format_error(self.name, self.network, conn, frame, exc)
            if self.config.on_format_error == "close":
                conn.close()
            return
        kind, msg = inbound.kind, inbound.message
        if kind is _REQUEST and msg is not None:
            self.received += 1
            msg.meta.source_link = self.name
            self.hooks.on_request(self.name, conn, frame, msg)
        elif kind is _KEEPALIVE or kind is _SESSION:
            conn.reply_keepalive(frame)  # answered as the framing says, never routed
        else:
            self.received += 1
            log.warning("listener %s: unsolicited %s %s from %s dropped", self.name, kind.value,
                        msg.mti if msg is not None else "-", conn.peer)


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


def _peer(stream: trio.abc.Stream) -> str:
    inner = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(inner, trio.SocketStream):
        try:
            host, port = inner.socket.getpeername()[:2]
            return f"{host}:{port}"
        except OSError:
            pass
    return "?"
