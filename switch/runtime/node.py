"""The switch node: the composition root. It builds the parts from the configuration and wires them together:
the links (and through them the networks, found by name in the registry), the exchange pipeline, the journal,
the store-and-forward queue and forwarder, the HSM, the admin channel, metrics, the node's other processes and
the services that other packages' node.toml sections run beside it (the cells' supervisor, demo simulators).

Each part receives the narrow interface it uses, which the node implements (structural protocols):
:class:`switch.exchange.ports.NodePorts` for the pipeline, :class:`switch.ops.admin.AdminTarget` for the admin
channel, :class:`switch.ops.metrics.NodeStats` for metrics, :class:`switch.runtime.workers.WorkerNode` for an
extra process's control loop; the links get their hooks (:class:`switch.runtime.links.hooks.LinkHooks`) and
the forwarder its queue and a link lookup. None of them imports the node.

Exchanges continue in the node's work nursery, not in the connection that brought them, so an acquirer that
disconnects mid-transaction does not cancel its upstream leg: the exchange completes, is journaled, and an
approval that cannot be delivered is reversed.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from hsm.api import Hsm, InlinePinTranslation, PinKey
from hsm.open import open_hsm
from switch.config import NodeConfig
from switch.contracts.network import KeyChange, Network, NetworkSession, Refusal, RefusalForm
from switch.contracts.registry import network
from switch.contracts.section import Service
from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.compensation import abandoned_reversal, lost_reversal, needs_reversal
from switch.exchange.context import Exchange
from switch.exchange.identity import IdentityMemory, Lookup, SentAs
from switch.exchange.inflight import InFlightOriginals
from switch.exchange.journal import now_utc
from switch.exchange.lifecycle import Outcome
from switch.exchange.pipeline import Pipeline
from switch.exchange.ports import ConnectionClosed, TerminalGate, Upstream
from switch.exchange.services import JournalSubmit, Spawn
from switch.infra.datakey import DataKeys, load_or_create
from switch.infra.db.engine import make_engine
from switch.infra.lockfile import LockHeldError, ProcessLock
from switch.model.codes import ResponseCode
from switch.model.errors import BulkheadError
from switch.model.message import Message
from switch.ops.admin import serve_admin
from switch.ops.metrics import ListenerEvents, Metrics, TerminalStats, registry_for
from switch.ops.status import atm_overview, config_digest, overview
from switch.routing import Destination, PoolSelector, RouteQuery, RoutingTable, load_routes
from switch.runtime.atmhost import AtmHost
from switch.runtime.journaling import JournalPort
from switch.runtime.keyring import Keyring, MacSafLink
from switch.runtime.links.connection import Connection
from switch.runtime.links.hooks import LinkHooks
from switch.runtime.links.inbound import Listener
from switch.runtime.links.outbound import OutboundLink
from switch.runtime.links.waiter import Timer
from switch.runtime.routereload import RouteReloads
from switch.runtime.safd import SafForwarder, SafLink, SafQueue
from switch.runtime.tasks import ExchangeTasks
from switch.runtime.workers import WorkerSupervisor
from switch.storage.db import upgrade
from switch.storage.errors import StorageError
from switch.storage.journal import JournalWriter, find_upstream, last_upstream_stan
from switch.storage.saf import DestinationSummary, SafStore
from switch.wire.framing import Frame

log = logging.getLogger("bulkhead.node")

NODE_LOCK = "node.lock"  # in var_dir: held by the running node's primary process


class NodeRunningError(BulkheadError):
    """Another node runs on this var_dir already."""




class Node(RouteReloads):
    JOURNAL_TIMEOUT_S = 5.0
    LINKS_UP_WAIT_S = 10.0  # see _links_up

    def __init__(self, config: NodeConfig, *, process: int = 0, listener_ports: Mapping[str, int] | None = None,
                 routes: Path | None = None) -> None:
        """``process`` 0 is the node ``bulkhead run`` starts (the primary); with ``[node] processes`` > 1 it
        starts processes 1 .. N-1 (switch.runtime.workers), which bind the primary's ``listener_ports`` and load
        the routing table the primary runs on (``routes``)."""
        self.config = config
        self.process = process
        self.name = config.name if process == 0 else f"{config.name}/{process}"
        # Deadlines of the exchanges' waits (upstream answer, journal commit); runs for the node's lifetime.
        self.timer = Timer()
        self.table: RoutingTable = load_routes(routes or config.routes,
                                               known_links=frozenset(c.name for c in config.connectors))
        self.selector = PoolSelector()
        hooks = LinkHooks(self.on_request, self.on_format_error, self.on_late_response, self.install_key,
                          self.on_shed, on_key_changing=self.key_changing, on_key_done=self.key_done)
        self.peer_log = hooks.log  # format errors: rate-limited per link and peer address (issue 11)
        self.outbound = {c.name: OutboundLink(c, network(c.scheme), hooks, self.timer, process=process,
                                              processes=config.processes) for c in config.connectors}
        ports = listener_ports or {}
        self.listeners = {lc.name: Listener(lc, network(lc.scheme), hooks, reuse_port=config.processes > 1,
                                            port=ports.get(lc.name)) for lc in config.listeners}
        self.keys: DataKeys = load_or_create(config.hash_key_file)
        self.engine = make_engine(config.database_url)
        self.journal_writer = JournalWriter(self.engine, max_batch=config.journal.max_batch,
                                            max_wait=config.journal.max_wait_ms / 1000)
        self.journal_port = JournalPort(self.journal_writer, self.timer, self.JOURNAL_TIMEOUT_S)
        self.saf = SafStore(self.engine)
        self.saf_queue = SafQueue(self.saf, self.keys, config.saf)
        self.started_at = time.time()
        self.config_digest = config_digest(config.file)
        self.in_flight = 0
        self.late_responses = 0
        self.lost_reversals = 0
        self.exchanges = 0
        self.malformed: Counter[tuple[str, str]] = Counter()  # (link, RefusalForm value): malformed frames
        self._trace = itertools.count(1)
        self._trace_prefix = f"{int(self.started_at):x}{os.getpid() % 0x10000:04x}"
        self._stop = trio.Event()
        self.reload_lock = trio.Lock()
        self.draining = False
        self.metrics = Metrics()
        self.metrics_port: int | None = None
        # The PIN key each link's DE 52 travels under now (configured, then changed by the link's key exchange);
        # a terminal's key comes through the ATMP's seam (atmp.keys), today the key of its listener.
        # The links' keys: zone PIN and MAC keys with their two-key windows, MAC settings (switch.runtime.keyring);
        # its tables are the node's too (status, tests).
        self.keyring = Keyring(config)
        self.link_keys, self.macs = self.keyring.link_keys, self.keyring.macs
        self.mac_windows, self.mac_failures = self.keyring.mac_windows, self.keyring.mac_failures
        self.mac_failure_codes = self.keyring.mac_failure_codes
        self.business_dates: dict[str, str] = {}  # per link, from its network's last cutover (MMDD)
        self.hsm: Hsm | None = None  # opened in run() when [hsm] is configured
        self.inline_hsm: InlinePinTranslation | None = None  # the same, when it translates without waiting
        self.card_status = CardStatusCache()  # card-level declines seen from stand-in destinations
        self.pipeline = Pipeline(self, self.card_status, self.keys.pan_hash)
        self.tasks = ExchangeTasks(self.pipeline.strand)
        # The pipeline's per-exchange services, bound straight to what provides them (switch.exchange.services).
        self.journal: JournalSubmit = self.journal_port.submit
        self.spawn: Spawn = self.tasks.spawn
        # Exchanges sent upstream and not answered yet (and those refused a task while stopping), by id(): a node
        # stopped hard reverses them.
        self.awaiting_upstream: dict[int, Exchange] = {}
        # Of those, the ones that may leave an advice behind, by original: a reversal for the same original waits.
        self.upstream_originals = InFlightOriginals()
        # What recent originals were sent upstream under, for their repeats and reversals (switch.exchange.identity).
        self.upstream_identity = IdentityMemory()
        # What other packages' node.toml sections run beside the node (the cells' supervisor, demo simulators):
        # in the primary only.
        self.services: list[Service] = [s for section in config.sections.values() for s in section.services()] \
            if process == 0 else []
        self.workers: WorkerSupervisor | None = None  # the other node processes, started once listening
        # The link predicates the pool selector takes, bound once (not a new bound method per routed request).
        self._is_up, self._is_degraded = self.link_is_up, self.link_is_degraded
        self._forwarder: SafForwarder | None = None  # the primary's store-and-forward forwarder
        # The ATM processor's gates, by listener (atmp = true), once run() has opened the HSM (switch.runtime.atmhost).
        self.gates: dict[str, TerminalGate] = {}
        self.atmp: AtmHost | None = None

    # -- what the pipeline uses (switch.exchange.ports.NodePorts) -------------------------------------------
    def choose_link(self, destination: Destination) -> Upstream | None:
        # A pool prefers its links that answer (switch.routing.pool): a degraded one only when no other is up.
        name = self.selector.choose(destination, self._is_up, self._is_degraded)
        return self.outbound.get(name) if name else None

    def upstream(self, name: str) -> Upstream | None:
        return self.outbound.get(name)

    def session_of(self, link: str) -> NetworkSession:
        """The network-management session of link ``link`` (listener or connector)."""
        found = self.listeners.get(link) or self.outbound[link]
        return found.session

    def terminal_gate(self, source: str) -> TerminalGate | None:
        return self.gates.get(source)

    # The keys (switch.runtime.keyring): the node's ports delegate.
    def source_key(self, source: str, request: Message) -> PinKey | None:
        if source in self.gates and self.atmp is not None:  # a terminal's own key (switch.runtime.atmhost)
            return self.atmp.pin_key(request)
        return self.keyring.source_key(source, request)

    def key_pending(self, link: str, received_ns: int) -> bool:
        return self.keyring.key_pending(link, received_ns)

    async def key_settled(self, link: str) -> None:
        await self.keyring.key_settled(link)

    def key_changing(self, link: str, since_ns: int, key_type: str | None = None) -> None:
        self.keyring.key_changing(link, since_ns, key_type)

    def key_done(self, link: str, key_type: str | None = None) -> None:
        self.keyring.key_done(link, key_type)

    def mac_keys(self, link: str, received_ns: int) -> tuple[str, ...]:
        return self.keyring.mac_keys(link, received_ns)

    def mac_key(self, link: str) -> str:
        return self.keyring.mac_key(link)

    def mac_failed(self, link: str) -> None:
        self.keyring.mac_failed(link)

    def link_key(self, link: str) -> PinKey | None:
        return self.keyring.link_key(link)

    async def install_key(self, link: str, change: KeyChange, carrier: Message | None = None) -> bool:
        return await self.keyring.install_key(self.hsm, link, change, carrier)

    def cutover(self, link: str, business_date: str | None) -> None:
        """A network's cutover: its settlement date moves on (kept per link for status; settlement reads it)."""
        self.business_dates[link] = business_date or ""
        log.info("link %s: cutover, business date now %s", link, business_date or "(not given)")

    async def find_upstream(self, source: str, lookup: Lookup) -> SentAs | None:
        found = await trio.to_thread.run_sync(functools.partial(
            find_upstream, self.engine, source_link=source, mti_kind=lookup.kind, stan=lookup.stan,
            terminal_id=lookup.terminal))
        return SentAs(*found) if found is not None else None

    async def saf_enqueue(self, items: list[tuple[str, Message, str]]) -> None:
        await self.saf_queue.enqueue(items)

    async def saf_holder(self, links: tuple[str, ...], original_key: str) -> str | None:
        return await trio.to_thread.run_sync(self.saf.holder, links, original_key)

    def finished(self, x: Exchange) -> None:
        """The exchange is over (answered, or given up): free its place and count it."""
        x.conn.exchange_done()
        self.in_flight -= 1
        self.exchanges += 1
        resp = x.response
        now = time.perf_counter()
        self.metrics.record(x.source, x.link.name if x.link else "", x.request.mti, x.outcome,
                            (resp.response_code or "") if resp else "", now - x.t0, now)

    def lost_reversal(self) -> None:
        self.lost_reversals += 1

    # -- the links' hooks -----------------------------------------------------------------------------------
    def link_is_up(self, name: str) -> bool:
        link = self.outbound.get(name)
        return link is not None and link.is_up()

    def link_is_degraded(self, name: str) -> bool:
        link = self.outbound.get(name)
        return link is not None and link.is_degraded()

    def on_request(self, source: str, conn: Connection, frame: Frame, msg: Message) -> None:
        """Called inline by a link's reader for every decoded request."""
        msg.meta.received_ns = time.perf_counter_ns()
        msg.meta.trace_id = f"{self._trace_prefix}{next(self._trace):010x}"
        link = self.listeners.get(source) or self.outbound[source]
        x = Exchange(request=msg, source=source, network=link.network, conn=conn, frame=frame, table=self.table,
                     received_at=now_utc(), t0=time.perf_counter())
        self.in_flight += 1
        conn.exchange_started()
        self.pipeline.start(x)

    def on_shed(self, source: str, msg: Message) -> None:
        """A request a listener answered 91 at once (admission control): in the rates and code mix like any
        answer, with outcome ``shed``; no exchange, no journal row."""
        self.metrics.record(source, "", msg.mti, Outcome.SHED, ResponseCode.ISSUER_INOPERATIVE.value, None,
                            time.perf_counter())

    def on_format_error(self, source: str, network: Network, conn: Connection, frame: Frame,
                        exc: Exception) -> None:
        """A frame that does not decode: answered as its network says (:meth:`Network.refuse`: its reject form, a
        30, or nothing), and counted per link and form."""
        key = (source, conn.peer.rsplit(":", 1)[0])
        try:
            refusal = network.refuse(frame, exc, conn.framer)
        except Exception as exc2:  # a network's bug must not end the link's reader: the frame is dropped
            log.warning("link %s: cannot answer the malformed frame (%s)", source, type(exc2).__name__)
            refusal = Refusal(RefusalForm.NONE)
        self.malformed[(source, refusal.form.value)] += 1
        if refusal.wire is None:
            self.peer_log.note(key, "link %s peer %s: undecodable frame of %d bytes (%s) dropped: %s", source,
                               conn.peer, len(frame.body), refusal.what or "-", exc)
            return
        self.peer_log.note(key, "link %s peer %s: format error in %s: %s; answering %s %s", source, conn.peer,
                           refusal.what or "-", exc, refusal.form.value, refusal.code)
        with suppress(ConnectionClosed):
            conn.send_nowait(refusal.wire)

    def on_late_response(self, link: str, msg: Message) -> None:
        """A response nobody waits for: its request timed out (and was reversed) or was never sent."""
        self.late_responses += 1
        log.warning("link %s: late or unmatched response %s stan %s rc %s pan %s", link, msg.mti, msg.stan,
                    msg.response_code, msg.masked_pan)

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        # One node per var_dir: the lock is taken before anything is touched (a second `bulkhead run` beside a
        # running node must not migrate its live database, nor start its cells). The node's other processes run
        # under the primary's lock.
        lock = ProcessLock(self.config.var_dir / NODE_LOCK, f"node {self.name}")
        if self.process == 0:
            try:
                lock.acquire()
            except LockHeldError as exc:
                raise NodeRunningError(f"node {self.name!r} is already running ({exc}); not started") from None
        try:
            await self._run(task_status)
        finally:
            lock.release()
            log.info("node %s%s: stopped", self.name, f" process {self.process}" if self.process else "")

    async def _run(self, task_status: trio.TaskStatus[Node]) -> None:
        if self.process == 0:  # the others start after the primary has migrated and is listening
            await trio.to_thread.run_sync(upgrade, self.config.database_url)
        await self._continue_stans()
        self.journal_port.start()
        httpd = self._start_metrics()
        try:
            async with AsyncExitStack() as stack:
                if self.config.hsm is not None:
                    self.hsm = await stack.enter_async_context(open_hsm(self.config.hsm))
                    if isinstance(self.hsm, InlinePinTranslation) and self.hsm.inline:
                        self.inline_hsm = self.hsm  # the pipeline translates PINs without a task
                await self._serve(task_status)
        finally:
            if httpd is not None:
                httpd.shutdown()
            with trio.CancelScope(shield=True):
                # The journal first: commit reports it still delivers may find their sources gone and add to
                # what is abandoned. The reversals whatever the journal's close says.
                try:
                    await trio.to_thread.run_sync(self.journal_writer.close)
                finally:
                    # What the writer reported goes to its exchanges; a row it never reported (a database that
                    # hung) fails, as would its timeout: those exchanges answer nothing now and owe their
                    # reversals like the rest. Then every other wait still open expires the same way.
                    self.journal_port.deliver_reports()
                    self.timer.expire_all()
                    await self._reverse_abandoned()
            self.engine.dispose()

    async def _continue_stans(self) -> None:
        """Each link that numbers its own requests goes on after the last STAN it sent (switch.exchange.identity):
        a restart does not start the day's STANs again at 000001. A journal that cannot be read leaves it at 1."""
        for link in self.outbound.values():
            if link.identity is None or not link.identity.own_stan:
                continue
            try:
                last = await trio.to_thread.run_sync(last_upstream_stan, self.engine, link.name)
            except StorageError as exc:
                log.warning("link %s: last STAN not read (%s); numbering from 000001", link.name, exc)
                continue
            if last is not None:
                link.continue_after(last)

    async def _serve(self, task_status: trio.TaskStatus[Node]) -> None:
        async with trio.open_nursery() as timers:
            # Outside the work nursery: exchanges still finishing after the services stop keep their deadlines.
            timers.start_soon(self.timer.run)
            await self._serve_with_timer(task_status)
            timers.cancel_scope.cancel()

    async def _serve_with_timer(self, task_status: trio.TaskStatus[Node]) -> None:
        async with trio.open_nursery() as services, trio.open_nursery() as work:
            self.tasks.nursery = work
            primary = self.process == 0
            for service in self.services:  # before the links: the cell links find their cells sooner
                await services.start(service.run)
            for link in self.outbound.values():
                await services.start(link.run)
            await self._start_atmp(services)
            if not primary:
                await self._links_up(self.LINKS_UP_WAIT_S)
            for listener in self.listeners.values():
                await services.start(listener.run)
            if primary:
                forwarder = SafForwarder(self.saf_queue, self._saf_link, self._saf_depth)
                services.start_soon(forwarder.run)
                self._forwarder = forwarder
                await services.start(serve_admin, self, self.config.admin_socket)
                if self.config.processes > 1:
                    ports = {name: lst.port for name, lst in self.listeners.items() if lst.port is not None}
                    self.workers = WorkerSupervisor(self.config, ports, lambda: self.table, self.drain_seconds())
                    await services.start(self.workers.run)
            log.info("node %s: up (%d listeners, %d connectors)", self.name, len(self.listeners),
                     len(self.outbound))
            task_status.started(self)
            await self._stop.wait()
            await self._drain()
            services.cancel_scope.cancel()
            self.tasks.close()

    async def _start_atmp(self, services: trio.Nursery) -> None:
        """The ATM processor, for listeners of the bank's terminals (atmp = true): its registry read before they
        listen, refreshed (and, in the primary, swept) in the background."""
        listeners = {x.name: self.listeners[x.name].network for x in self.config.listeners if x.atmp}
        if not listeners:
            return
        self.atmp = AtmHost(self.config.atmp, self.engine, self.hsm, listeners=listeners,
                            own_destinations=self.config.section_links, primary=self.process == 0,
                            route_of=self._route_of, saf_enqueue=self.saf_enqueue)
        await self.atmp.load()
        self.gates = dict(self.atmp.gates)
        services.start_soon(self.atmp.run)

    def _route_of(self, msg: Message) -> str | None:
        """The link the routing table sends ``msg`` to (the ATMP's notices to a card's issuer)."""
        destination = self.table.route(RouteQuery(
            pan=msg.pan, processing_code=msg.processing_code, mti=msg.mti, source_link="",
            currency=msg.currency, amount=msg.amount)).destination
        return destination.links[0] if destination is not None and destination.links else None

    async def atm_reload(self) -> dict[str, Any]:
        """Read the terminal registry again (after `bulkhead atm ...` changed it)."""
        if self.atmp is None:
            return {"terminals": 0, "atmp": False}
        await self.atmp.load()
        return {"terminals": len(self.atmp.terminals), "atmp": True}

    async def _links_up(self, seconds: float) -> None:
        """Give the connectors up to ``seconds`` to connect before listening: a process that joins a running
        node (switch.runtime.workers) gets connections from the kernel as soon as it listens, and would answer
        them 91 until its own links are up."""
        with trio.move_on_after(seconds):
            while not all(link.is_up() for link in self.outbound.values()):
                await trio.sleep(0.05)

    async def _reverse_abandoned(self) -> None:
        """Stopped hard while requests sent upstream wait for their answers (or were answered and not
        delivered): reverse them, as a cancelled exchange task does, in one transaction within two seconds. What
        cannot be queued is counted and logged as critical."""
        waiting, self.awaiting_upstream = list(self.awaiting_upstream.values()), {}
        abandoned = [x for x in waiting if needs_reversal(x)]
        queued = False
        if abandoned:
            with trio.move_on_after(2):
                try:
                    await self.saf_queue.enqueue([abandoned_reversal(x) for x in abandoned])
                    queued = True
                except Exception as exc:
                    log.error("node %s: reversals of %d abandoned exchanges not queued: %s", self.name,
                              len(abandoned), type(exc).__name__)
            if not queued:
                for x in abandoned:
                    lost_reversal(self, x, "node stopped")
        reversed_ = {id(x) for x in abandoned} if queued else set()
        for x in waiting:
            self.pipeline.drop(x, reversed_=id(x) in reversed_)

    def _start_metrics(self) -> Any:
        cfg = self.config.metrics
        if cfg.port is None:
            return None
        from prometheus_client import start_http_server

        # The other node processes serve theirs on the next ports (port + process number).
        port = cfg.port + self.process if cfg.port else cfg.port
        httpd, _thread = start_http_server(port, cfg.host, registry_for(self))
        self.metrics_port = int(httpd.server_port)
        log.info("node %s: metrics on http://%s:%d/metrics", self.name, cfg.host, self.metrics_port)
        return httpd

    def drain_seconds(self) -> float:
        """Long enough for every exchange in flight to reach its own timeout and be answered."""
        timeouts = [c.timeout_ms for c in self.config.connectors]
        timeouts += [d.timeout_ms or 0 for d in self.table.destinations.values()]
        return max(timeouts, default=0) / 1000 + 2.0

    def stop(self) -> None:
        """Ask for an orderly stop: new requests get 91, in-flight ones finish, links sign off."""
        self._stop.set()

    async def _drain(self) -> None:
        self.draining = True
        # New connections go elsewhere (the node's other processes, or nowhere): the ones open get 91 now.
        for listener in self.listeners.values():
            listener.stop_accepting()
        if self.workers is not None:  # they drain beside this one, not after it
            self.workers.terminate()
        with trio.move_on_after(self.drain_seconds()):
            # What the listeners' backlogs still hold is answered too (91 now, as the node is draining).
            while self.in_flight or any(len(lst.backlog) for lst in self.listeners.values()):
                await trio.sleep(0.01)
        if self.in_flight:
            log.warning("node %s: stopping with %d exchanges still in flight", self.name, self.in_flight)
        queued = sum(len(lst.backlog) for lst in self.listeners.values())
        if queued:  # never started: the acquirers repeat what matters (reversals, advices) after the restart
            log.warning("node %s: stopping with %d frames still in the listeners' backlogs, not processed",
                        self.name, queued)
        async with trio.open_nursery() as nursery:
            for link in self.outbound.values():
                nursery.start_soon(link.shutdown)

    # -- store and forward ----------------------------------------------------------------------------------
    def _saf_link(self, name: str) -> SafLink | None:
        link = self.outbound.get(name)
        if link is None or not link.is_up():
            return None
        return MacSafLink(link, self.keyring, self.hsm) if name in self.keyring.macs else link

    def _saf_depth(self, summary: list[DestinationSummary]) -> None:
        # Every link the routing table sends to is reported, at 0 when nothing waits for it.
        known = {link for destination in self.table.destinations.values() for link in destination.links}
        self.metrics.saf_state({s.destination: (s.pending, s.exceptions, s.oldest_created_at.timestamp())
                                for s in summary}, known)

    # -- what the admin channel and metrics read ------------------------------------------------------------
    def connector(self, name: str) -> OutboundLink | None:
        return self.outbound.get(name)

    def connector_names(self) -> list[str]:
        return list(self.outbound)

    async def saf_pending(self) -> int:
        return await trio.to_thread.run_sync(self.saf.pending_count, None)

    async def saf_summary(self) -> list[DestinationSummary]:
        return await trio.to_thread.run_sync(self.saf.summary)

    async def saf_retry(self, destination: str | None) -> int:
        forwarder = self._forwarder or SafForwarder(self.saf_queue, self._saf_link, self._saf_depth)
        return await forwarder.retry_now(destination)

    def journal_counts(self) -> tuple[int, int]:
        return self.journal_writer.rows, self.journal_writer.batches

    def link_counts(self) -> list[tuple[str, bool, bool, int, int]]:
        return [(link.name, link.is_up(), link.is_degraded(), len(link.mux), link.timeouts)
                for link in list(self.outbound.values())]

    def listener_connections(self) -> list[tuple[str, int]]:
        return [(lst.name, len(lst.active)) for lst in list(self.listeners.values())]

    def listener_events(self) -> list[ListenerEvents]:
        return [ListenerEvents(lst.name, dict(lst.refusals), dict(lst.closes), lst.format_errors,
                               dict(lst.backlog.shed), len(lst.backlog))
                for lst in list(self.listeners.values())]

    def children(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [(service.what, service.status()) for service in self.services]

    def unknown_codes(self) -> list[tuple[str, str, int]]:
        networks = {link.network.name: link.network for link in self.outbound.values()}
        networks.update({lst.network.name: lst.network for lst in self.listeners.values()})
        return [(name, code, count) for name, net in sorted(networks.items())
                for code, count in sorted(net.codes.unknown.items())]

    def malformed_frames(self) -> list[tuple[str, str, int]]:
        return [(link, form, count) for (link, form), count in sorted(self.malformed.items())]

    def mac_failure_counts(self) -> list[tuple[str, int]]:
        return [(link, self.mac_failures[link]) for link in sorted(self.macs)]

    def atm_terminals(self) -> list[TerminalStats]:
        return self.atmp.stats() if self.atmp is not None else []

    def status(self) -> dict[str, Any]:
        links = [link.status() for link in self.outbound.values()]
        # A link served by a child process (a cell) also says how the process is doing (pid, restarts, exit code).
        processes = {p["name"]: p for service in self.services for p in service.status()}
        for entry in links:
            process = processes.get(str(entry["name"]))
            if process is not None:
                entry.update({k: v for k, v in process.items() if k not in ("name", "cell")})
        for entry in links:
            if entry["name"] in self.business_dates:
                entry["business_date"] = self.business_dates[str(entry["name"])]
            if entry["name"] in self.macs:
                entry["mac_failures"] = self.mac_failures[str(entry["name"])]
        return {
            "node": self.name,
            "processes": [{"name": self.name, "state": "running", "pid": os.getpid(), "restarts": 0}]
            + [{"name": p["name"], "state": p["process"], "pid": p["pid"], "restarts": p["restarts"],
                "last_exit": p["last_exit"]} for p in (self.workers.status() if self.workers else [])],
            "uptime_s": round(time.time() - self.started_at, 1),
            "in_flight": self.in_flight,
            "exchanges": self.exchanges,
            "late_responses": self.late_responses,
            "lost_reversals": self.lost_reversals,
            "malformed": [{"link": link, "answer": form, "count": count}
                          for link, form, count in self.malformed_frames()],
            "unknown_response_codes": [{"network": net, "code": code, "count": count}
                                       for net, code, count in self.unknown_codes()],
            "mac_failures": [{"link": link, "count": count} for link, count in self.mac_failure_counts()],
            "atm": atm_overview(self.atm_terminals()),
            "routes": {"source": self.table.source, "digest": self.table.digest},
            "links": links + [lst.status() for lst in self.listeners.values()],
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            **overview(config_file=self.config.file, config_digest=self.config_digest, window=self.metrics.window,
                       uptime_s=time.time() - self.started_at, journal=self.journal_writer,
                       children=self.children(),
                       link_states={name: link.state_name for name, link in self.outbound.items()}),
        }
