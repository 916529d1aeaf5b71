"""The issuer simulator: an ISO 8583 host that answers requests by rules (:mod:`switch.sim.rules`).

One reader per connection handles each received batch inline and queues the answers on the connection's
:class:`~switch.infra.outbox.Outbox`; only delayed answers get a task of their own. Nothing a peer sends can
stop the server: undecodable messages are counted and skipped, a framing error closes that one connection.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import trio

from switch.contracts.network import LinkOptions, Network
from switch.contracts.registry import network
from switch.infra.outbox import Outbox
from switch.infra.reader import read_frames
from switch.model.codes import ResponseCode
from switch.model.errors import FieldError, FramingError, LocalProtocolError, RemoteProtocolError
from switch.model.message import Message
from switch.sim.rules import Approver, Decision, IssuerRules
from switch.wire.framing import Frame, Framer

log = logging.getLogger("bulkhead.sim.issuer")


@dataclass(frozen=True)
class IssuerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: let the system pick; serve_issuer reports the port through task_status
    scheme: str = "generic"
    framing: LinkOptions | None = None  # None: the network's default framing
    rules: IssuerRules = field(default_factory=IssuerRules)
    approve_all: bool = False


@dataclass
class IssuerStats:
    """What the simulator saw, for tests and the CLI's exit summary."""

    received: Counter[str] = field(default_factory=Counter)  # per request MTI
    answered: Counter[str] = field(default_factory=Counter)  # per field 39 sent
    dropped: int = 0
    malformed: int = 0  # undecodable messages and framing errors
    connections: int = 0
    keepalives: int = 0


async def serve_issuer(
    config: IssuerConfig,
    *,
    stats: IssuerStats | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen and answer until cancelled. ``task_status.started(port)`` once listening."""
    adapter = network(config.scheme)
    link = config.framing if config.framing is not None else adapter.link_options(None, None)
    issuer = _Issuer(config, adapter, link, stats if stats is not None else IssuerStats())
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    port: int = listeners[0].socket.getsockname()[1]
    log.info("issuer simulator listening on %s:%d (%s, %s)", config.host, port, config.scheme,
             link.framing_kind)
    task_status.started(port)
    await trio.serve_listeners(issuer.handle, listeners)


class _Issuer:
    def __init__(self, config: IssuerConfig, adapter: Network, link: LinkOptions, stats: IssuerStats) -> None:
        self.link = link
        self.config = config
        self.adapter = adapter
        self.stats = stats
        self.approver = Approver(config.rules, config.approve_all)

    async def handle(self, stream: trio.SocketStream) -> None:
        self.stats.connections += 1
        outbox = Outbox()
        async with stream:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(outbox.run, stream, nursery.cancel_scope)
                    await self._read(stream, self.link.framer(), outbox, nursery)
                    nursery.cancel_scope.cancel()
            except Exception as exc:  # one peer must never take the server down
                log.warning("issuer simulator: connection ended by %s", type(exc).__name__)

    async def _read(self, stream: trio.SocketStream, framer: Framer, outbox: Outbox,
                    nursery: trio.Nursery) -> None:
        try:
            await read_frames(stream, framer, lambda frame: self._on_frame(frame, framer, outbox, nursery))
        except FramingError as exc:
            self.stats.malformed += 1
            log.warning("issuer simulator: closing connection: %s", exc)

    def _on_frame(self, frame: Frame, framer: Framer, outbox: Outbox, nursery: trio.Nursery) -> None:
        if frame.keepalive:
            self.stats.keepalives += 1
            reply = framer.keepalive_reply(frame)
            if reply is not None:
                outbox.put(reply)
            return
        try:
            request = self.adapter.decode(frame.body)
        except RemoteProtocolError as exc:
            self.stats.malformed += 1
            log.warning("issuer simulator: undecodable message skipped: %s", exc)
            return
        self.stats.received[request.mti] += 1
        if not request.is_request:
            return  # a stray response: nothing to answer
        try:
            self.adapter.validate(request)
        except FieldError as exc:
            log.info("issuer simulator: %s %s: answering format error", request.mti, exc)
            self._send(self.adapter.make_response(request, ResponseCode.FORMAT_ERROR), frame, framer, outbox)
            return
        decision = self.approver.decide(request)
        if decision.code is None:
            self.stats.dropped += 1
            return
        response = self._response(request, decision)
        if decision.delay_ms > 0:
            nursery.start_soon(self._send_later, decision.delay_ms, response, frame, framer, outbox)
        else:
            self._send(response, frame, framer, outbox)

    def _response(self, request: Message, decision: Decision) -> Message:
        assert decision.code is not None
        response = self.adapter.make_response(request, decision.code)
        if decision.code == ResponseCode.APPROVED.value and request.mti_class in "12" and not request.is_advice:
            response[38] = self.approver.approval_code()
            if decision.balances:
                response[54] = self.approver.balance_field(request)
        return response

    async def _send_later(self, delay_ms: float, response: Message, frame: Frame, framer: Framer,
                          outbox: Outbox) -> None:
        await trio.sleep(delay_ms / 1000)
        self._send(response, frame, framer, outbox)

    def _send(self, response: Message, frame: Frame, framer: Framer, outbox: Outbox) -> None:
        try:
            data = framer.encode(self.adapter.encode(response), reply_to=frame)
        except LocalProtocolError as exc:
            log.warning("issuer simulator: cannot encode %s: %s", response.mti, exc)
            return
        self.stats.answered[response.response_code or ""] += 1
        outbox.put(data)
