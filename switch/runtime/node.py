"""The switch node: one trio process owning the listeners, the outbound links, the journal writer, the
store-and-forward forwarder and the admin socket.

Request tasks run in the node's work nursery, not in the connection that brought them, so an acquirer that
disconnects mid-transaction does not cancel its upstream leg: the exchange completes, is journaled, and an
approval that cannot be delivered is reversed.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from atmp.keys import TerminalKeys
from hsm.api import Hsm, InlinePinTranslation, PinKey
from hsm.errors import HsmError
from hsm.open import open_hsm
from switch.config import NodeConfig
from switch.contracts.network import KeyChange, Network, NetworkSession
from switch.contracts.registry import network
from switch.contracts.section import Service
from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.pipeline import (
    Exchange,
    Job,
    abandoned_reversal,
    lost_reversal,
    needs_reversal,
    now_utc,
    reverse_abandoned,
    start,
)
from switch.exchange.reversal import to_payload
from switch.infra.datakey import DataKeys, load_or_create
from switch.infra.db.engine import make_engine
from switch.model.codes import ResponseCode
from switch.model.message import Message
from switch.ops.metrics import Metrics, registry_for
from switch.routing import PoolSelector, RoutingTable, load_routes
from switch.runtime.links.connection import Connection, ConnectionClosed
from switch.runtime.links.hooks import LinkHooks
from switch.runtime.links.inbound import Listener
from switch.runtime.links.outbound import OutboundLink
from switch.runtime.links.waiter import Continuation, Slot, Timer
from switch.storage.db import upgrade
from switch.storage.journal import JournalRecord, JournalWriter
from switch.storage.saf import SafStore
from switch.wire.framing import Frame

if TYPE_CHECKING:
    from switch.runtime.workers import WorkerSupervisor

log = logging.getLogger("bulkhead.node")

ZPK_TYPE = "001"  # payShield key type code of a zone PIN key


class JournalUnavailable(Exception):
    pass


class Node:
    JOURNAL_TIMEOUT_S = 5.0
    # Parked workers kept beyond this many exit (the peak of exchanges in flight decides how many there are).
    MAX_IDLE_WORKERS = 1024
    LINKS_UP_WAIT_S = 10.0  # see _links_up

    def __init__(self, config: NodeConfig, *, process: int = 0, listener_ports: Mapping[str, int] | None = None,
                 routes: Path | None = None) -> None:
        """``process`` 0 is the node ``bulkhead run`` starts (the primary); with ``[node] processes`` > 1 it
        starts processes 1 .. N-1 (switch.runtime.workers), which bind the primary's ``listener_ports`` and load the
        routing table the primary runs on (``routes``)."""
        self.config = config
        self.process = process
        # Deadlines of the exchanges' waits (upstream answer, journal commit); runs for the node's lifetime.
        self.timer = Timer()
        # Journal commits reported by the writer thread, handed to their exchanges on the event loop.
        self._committed: deque[tuple[Slot[BaseException], BaseException | None]] = deque()
        self._commit_wake_pending = False
        # Parked exchange workers (see _worker), most recently parked last.
        self._idle_workers: list[Slot[tuple[Exchange, Job]]] = []
        # Exchanges sent upstream on the common path (no task) and not answered yet, by id(): a node that is
        # stopped hard reverses them, as a cancelled task reverses its own (pipeline.reverse_abandoned).
        self.awaiting_upstream: dict[int, Exchange] = {}
        self._workers_closed = False
        self.name = config.name if process == 0 else f"{config.name}/{process}"
        self.table: RoutingTable = load_routes(routes or config.routes, known_links=self._known_links())
        self.selector = PoolSelector()
        self.outbound: dict[str, OutboundLink] = {}
        self.listeners: dict[str, Listener] = {}
        hooks = LinkHooks(self.on_request, self.on_format_error, self.on_late_response, self.install_key)
        for c in config.connectors:
            self.outbound[c.name] = OutboundLink(c, network(c.scheme), hooks, self.timer)
        ports = listener_ports or {}
        for lc in config.listeners:
            self.listeners[lc.name] = Listener(lc, network(lc.scheme), hooks, reuse_port=config.processes > 1,
                                               port=ports.get(lc.name))
        self.keys: DataKeys = load_or_create(config.hash_key_file)
        self.engine = make_engine(config.database_url)
        self.journal = JournalWriter(self.engine, max_batch=config.journal.max_batch,
                                     max_wait=config.journal.max_wait_ms / 1000)
        self.saf = SafStore(self.engine)
        self.started_at = time.time()
        self.in_flight = 0
        self.late_responses = 0
        self.lost_reversals = 0
        self.exchanges = 0
        self._trace = itertools.count(1)
        self._trace_prefix = f"{int(self.started_at):x}{os.getpid() % 0x10000:04x}"
        self._work: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self.saf_wake = trio.Event()
        self._stop = trio.Event()
        self.reload_lock = trio.Lock()
        self.draining = False
        self.metrics = Metrics()
        self.metrics_port: int | None = None
        # Keys DE 52 arrives under, per source link (listeners and connectors that carry issuer traffic in).
        # The PIN key each link's DE 52 travels under now (configured, then changed by the link's key exchange);
        # a terminal's key comes through the ATMP's seam (atmp.keys), today the key of its listener.
        self.link_keys: dict[str, PinKey] = {x.name: x.pin_key for x in config.listeners if x.pin_key is not None}
        self.link_keys.update({c.name: c.pin_key for c in config.connectors if c.pin_key is not None})
        self.terminal_keys = TerminalKeys(self.link_keys.get)
        self.business_dates: dict[str, str] = {}  # per link, from its network's last cutover (MMDD)
        self.zmks: dict[str, str] = {x.name: x.zmk for x in config.listeners if x.zmk}
        self.zmks.update({c.name: c.zmk for c in config.connectors if c.zmk})
        self.hsm: Hsm | None = None  # opened in run() when [hsm] is configured
        self.inline_hsm: InlinePinTranslation | None = None  # the same, when it is the software HSM run in process
        self.card_status = CardStatusCache()  # card-level declines seen from stand-in destinations
        # What other packages' node.toml sections run beside the node (the cells' supervisor, demo simulators):
        # in the primary only.
        self.services: list[Service] = [s for section in config.sections.values() for s in section.services()] \
            if process == 0 else []
        self.workers: WorkerSupervisor | None = None  # the other node processes, started once listening

    def _known_links(self) -> frozenset[str]:
        return frozenset(c.name for c in self.config.connectors)

    def session_of(self, name: str) -> NetworkSession:
        """The network-management session of link ``name`` (listener or connector)."""
        link = self.listeners.get(name) or self.outbound[name]
        return link.session

    async def install_key(self, link: str, change: KeyChange) -> bool:
        """A new zone PIN key for ``link`` from its key exchange: imported from under the link's zone master key
        through the HSM, its check value confirmed, and used from the next message on (requests already sent
        keep the key they were translated under). False, and the old key stays, when any of it fails."""
        zmk = self.zmks.get(link)
        if self.hsm is None or zmk is None or change.key_type != "ZPK":
            log.warning("link %s: key exchange refused (%s)", link,
                        "no zmk on the link" if zmk is None else "no HSM" if self.hsm is None
                        else f"key type {change.key_type}")
            return False
        try:
            imported = await self.hsm.import_key(ZPK_TYPE, zmk, change.under_zmk)
        except HsmError as exc:
            log.error("link %s: new key not imported (HSM error %s)", link, exc.code)
            return False
        if imported.kcv[:6].upper() != change.check_value[:6].upper():
            log.error("link %s: new key refused: check value %s, the network says %s", link, imported.kcv[:6],
                      change.check_value[:6])
            return False
        self.link_keys[link] = PinKey("ZPK", imported.under_lmk)
        log.info("link %s: new zone PIN key in use (kcv %s)", link, imported.kcv[:6])
        return True

    def cutover(self, link: str, business_date: str | None) -> None:
        """A network's cutover: its settlement date moves on (kept per link for status; settlement reads it)."""
        self.business_dates[link] = business_date or ""
        log.info("link %s: cutover, business date now %s", link, business_date or "(not given)")

    def link_is_up(self, name: str) -> bool:
        link = self.outbound.get(name)
        return link is not None and link.is_up()

    # -- inbound requests ---------------------------------------------------------------------------
    def on_request(self, source: str, conn: Connection, frame: Frame, msg: Message) -> None:
        """Called inline by a link's reader for every decoded request."""
        assert self._work is not None
        msg.meta.received_ns = time.perf_counter_ns()
        msg.meta.trace_id = f"{self._trace_prefix}{next(self._trace):010x}"
        link = self.listeners.get(source) or self.outbound[source]
        x = Exchange(request=msg, source=source, scheme=link.network, conn=conn, frame=frame, table=self.table,
                     received_at=now_utc(), t0=time.perf_counter())
        self.in_flight += 1
        conn.exchange_started()
        start(self, x)

    def spawn(self, x: Exchange, job: Job) -> None:
        """Continue ``x`` in a task: ``job`` runs the rest of the exchange (pipeline.start hands over whatever
        needs to wait for something other than its upstream answer and its journal row)."""
        while self._idle_workers:
            if self._idle_workers.pop().set((x, job)):
                return
        try:
            assert self._work is not None
            if self._work.cancel_scope.cancel_called:  # stopping hard: a new task would be cancelled at once
                raise RuntimeError("work nursery cancelled")
            self._work.start_soon(self._worker, x, job)
        except RuntimeError:
            # The node is stopping and its work nursery is closed (a link dropping its requests as it is torn
            # down): nothing may start any more. The source gets no answer, as when a task is cancelled
            # mid-exchange, and what was sent upstream is reversed when the node stops (Node.run).
            if needs_reversal(x):
                log.warning("exchange %s: node stopping, not continued; it will be reversed",
                            x.request.meta.trace_id)
                self.awaiting_upstream[id(x)] = x
            else:  # say a 91 answered while draining whose connection closed first: nothing to undo
                log.info("exchange %s: node stopping, not continued (nothing to reverse)", x.request.meta.trace_id)
            self.exchange_done(x)

    async def _worker(self, x: Exchange | None, job: Job | None) -> None:
        """Run exchanges' jobs one after another, parking in between.

        Waking a parked worker costs one reschedule; spawning a task per job (task, coroutine, nursery
        bookkeeping, and the same again at exit) was about 8% of the event loop's samples in fin-sim
        (DESIGN §9: no task per message). Workers live in the work nursery, so a stopping node cancels them
        exactly as it cancelled the per-exchange tasks.
        """
        while x is not None and job is not None:
            await self._run_exchange(x, job)
            # Let the finished exchange go before parking: it holds the clear request (track 2, PIN block) and
            # its connection, which must not outlive the exchange (card data kept no longer than needed).
            x = job = None
            if self._workers_closed or len(self._idle_workers) >= self.MAX_IDLE_WORKERS:
                return
            slot: Slot[tuple[Exchange, Job]] = Slot()
            self._idle_workers.append(slot)
            await slot.wait()  # woken with the next exchange, or with None when the node stops
            x, job = slot.take() or (None, None)

    def _close_workers(self) -> None:
        self._workers_closed = True
        while self._idle_workers:
            self._idle_workers.pop().set(None)

    async def _run_exchange(self, x: Exchange, job: Job) -> None:
        try:
            await job()
        except trio.Cancelled:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await reverse_abandoned(self, x)
            raise
        except Exception as exc:  # last line of defence: one exchange never takes the node down
            log.error("exchange %s: unhandled %s", x.request.meta.trace_id, type(exc).__name__)
        finally:
            self.exchange_done(x)

    def exchange_done(self, x: Exchange) -> None:
        """The exchange is over (answered, or given up): free its place and count it. Once per exchange."""
        x.conn.exchange_done()
        self.in_flight -= 1
        self.exchanges += 1
        resp = x.response
        self.metrics.record(x.source, x.link.name if x.link else "", x.request.mti, x.outcome,
                            (resp.response_code or "") if resp else "", time.perf_counter() - x.t0)

    def on_format_error(self, source: str, scheme: Network, conn: Connection, frame: Frame,
                        exc: Exception) -> None:
        """A frame that does not decode: answer 30 when enough of it is readable to build a response."""
        salvaged = scheme.salvage(frame.body)
        if salvaged is None or not salvaged.is_request:
            log.warning("link %s peer %s: undecodable frame of %d bytes dropped: %s", source, conn.peer,
                        len(frame.body), exc)
            return
        log.warning("link %s peer %s: format error in %s: %s; answering 30", source, conn.peer, salvaged.mti,
                    exc)
        try:
            conn.send_frame(scheme.encode(scheme.make_response(salvaged, ResponseCode.FORMAT_ERROR)),
                            reply_to=frame)
        except ConnectionClosed:
            pass
        except Exception as exc2:  # what we salvaged may itself not re-encode; then the frame is dropped
            log.warning("link %s: cannot answer the malformed frame (%s)", source, type(exc2).__name__)

    def on_late_response(self, link: str, msg: Message) -> None:
        """A response nobody waits for: its request timed out (and was reversed) or was never sent."""
        self.late_responses += 1
        log.warning("link %s: late or unmatched response %s stan %s rc %s pan %s", link, msg.mti, msg.stan,
                    msg.response_code, msg.masked_pan)

    # -- durability ---------------------------------------------------------------------------------
    def _commit_report(self, slot: Slot[BaseException]) -> Callable[[BaseException | None], None]:
        """The journal writer's ``done`` callback for one row: settles ``slot`` on the event loop."""
        token = self._token
        assert token is not None

        def callback(exc: BaseException | None) -> None:  # runs on the writer thread
            # One wake-up of the event loop per batch, not per row: run_sync_soon writes to the loop's wake-up
            # socket on every call (2-3% of the event loop in a fin-sim profile at one call per exchange).
            self._committed.append((slot, exc))
            if not self._commit_wake_pending:
                self._commit_wake_pending = True
                token.run_sync_soon(self._wake_committed)

        return callback

    def _wake_committed(self) -> None:
        """On the event loop: wake the exchanges whose journal rows the writer reported."""
        # Cleared before draining: a report appended after this line schedules another call, one appended
        # before it is drained here (the writer thread appends first, then reads the flag).
        self._commit_wake_pending = False
        committed = self._committed
        while committed:
            slot, exc = committed.popleft()
            slot.set(exc)

    def _journal_record(self, x: Exchange) -> JournalRecord:
        req, resp = x.request, x.response
        return JournalRecord(
            trace_id=req.meta.trace_id, node=self.name, source_link=x.source,
            destination=x.link.name if x.link else None,
            route=x.decision.route if x.decision else None,
            mti_in=req.mti, mti_out=resp.mti if resp else None, processing_code=req.processing_code,
            stan=req.stan, rrn=req.rrn, terminal_id=req.terminal_id,
            pan_masked=req.masked_pan, pan_hash=x.pan_hash(self.keys),
            amount=req.amount, currency=req.currency, response_code=resp.response_code if resp else None,
            outcome=x.outcome, received_at=x.received_at, responded_at=now_utc(),
            latency_us=int((time.perf_counter() - x.t0) * 1e6), upstream_us=x.upstream_us,
            request=req.masked(), response=resp.masked() if resp else None,
        )

    async def journal_exchange(self, x: Exchange) -> None:
        """Journal ``x`` and wait until its row is committed; JournalUnavailable if it fails or takes longer
        than JOURNAL_TIMEOUT_S."""
        slot: Slot[BaseException] = Slot()
        self.journal.submit(self._journal_record(x), self._commit_report(slot))
        # A database that hangs (rather than fails) must not hold the answer forever: after the timeout the
        # exchange is answered 96 (and reversed if approved), even if the row commits later.
        if not await slot.wait(self.timer, self.JOURNAL_TIMEOUT_S):
            raise JournalUnavailable("journal commit timed out")
        if slot.value is not None:
            raise JournalUnavailable(type(slot.value).__name__)

    def journal_submit(self, x: Exchange, on_done: Callable[[BaseException | None], None]) -> None:
        """Journal ``x`` without waiting (the common path): ``on_done(None)`` runs on the event loop once its
        row is committed, ``on_done(error)`` if the write failed or did not finish within JOURNAL_TIMEOUT_S.
        Raises (and ``on_done`` is not called) when the record cannot be submitted at all."""

        def timed_out() -> None:
            on_done(JournalUnavailable("journal commit timed out"))

        slot: Continuation[BaseException] = Continuation(on_done, timed_out)
        self.journal.submit(self._journal_record(x), self._commit_report(slot))
        self.timer.add(trio.current_time() + self.JOURNAL_TIMEOUT_S, slot)

    # -- store and forward --------------------------------------------------------------------------
    async def saf_enqueue(self, destination: str, msg: Message, trace_id: str) -> None:
        await self.saf_enqueue_many([(destination, msg, trace_id)])

    async def saf_enqueue_many(self, items: list[tuple[str, Message, str]]) -> None:
        """Queue (destination, message, original trace id) entries in one transaction: all or none."""
        entries = [self._saf_entry(*item) for item in items]
        ids = await trio.to_thread.run_sync(self.saf.enqueue_many, entries)
        for item_id, (destination, msg, _) in zip(ids, items, strict=True):
            log.info("saf: queued %s #%d for %s (stan %s, pan %s)", msg.mti, item_id, destination, msg.stan,
                     msg.masked_pan)
        self.saf_wake.set()

    def _saf_entry(self, destination: str, msg: Message, trace_id: str) -> dict[str, Any]:
        now = now_utc()
        return dict(
            destination=destination, mti=msg.mti, stan=msg.stan, rrn=msg.rrn, pan_masked=msg.masked_pan,
            amount=msg.amount, currency=msg.currency, payload=self.keys.seal(to_payload(msg), destination.encode()),
            original_trace_id=trace_id, now=now, expires_at=now + timedelta(seconds=self.config.saf.expire_after_s),
            # jPOS-EE's initial-delay: give the destination time to finish the original before the reversal.
            due_at=now + timedelta(milliseconds=self.config.saf.initial_delay_ms),
        )

    # -- lifecycle ----------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        if self.process == 0:  # the others start after the primary has migrated and is listening
            await trio.to_thread.run_sync(upgrade, self.config.database_url)
        self._token = trio.lowlevel.current_trio_token()
        self.journal.start()
        httpd = self._start_metrics()
        try:
            async with AsyncExitStack() as stack:
                if self.config.hsm is not None:
                    self.hsm = await stack.enter_async_context(open_hsm(self.config.hsm))
                    if isinstance(self.hsm, InlinePinTranslation) and self.hsm.inline:
                        self.inline_hsm = self.hsm  # pipeline.start translates PINs without a task
                await self._serve(task_status)
        finally:
            if httpd is not None:
                httpd.shutdown()
            with trio.CancelScope(shield=True):
                # The journal first: commit reports it still delivers may find their sources gone and add to
                # what is abandoned.
                await trio.to_thread.run_sync(self.journal.close)
                await self._reverse_abandoned()
            self.engine.dispose()

    async def _links_up(self, seconds: float) -> None:
        """Give the connectors up to ``seconds`` to connect before listening: a process that joins a running
        node (switch.runtime.workers) gets connections from the kernel as soon as it listens, and would answer them
        91 until its own links are up."""
        with trio.move_on_after(seconds):
            while not all(link.is_up() for link in self.outbound.values()):
                await trio.sleep(0.05)

    async def _reverse_abandoned(self) -> None:
        """Stopped hard while requests sent on the common path wait for their answers (or were answered and
        not delivered): reverse them, as a cancelled exchange task does (pipeline.reverse_abandoned), in one
        transaction within two seconds. What cannot be queued is counted and logged as critical."""
        abandoned = [x for x in self.awaiting_upstream.values() if needs_reversal(x)]
        self.awaiting_upstream = {}
        if not abandoned:
            return
        queued = False
        with trio.move_on_after(2):
            try:
                await self.saf_enqueue_many([abandoned_reversal(x) for x in abandoned])
                queued = True
            except Exception as exc:
                log.error("node %s: reversals of %d abandoned exchanges not queued: %s", self.name, len(abandoned),
                          type(exc).__name__)
        if not queued:
            for x in abandoned:
                lost_reversal(self, x, "node stopped")

    async def _serve(self, task_status: trio.TaskStatus[Node]) -> None:
        async with trio.open_nursery() as timers:
            # Outside the work nursery: exchanges still finishing after the services stop keep their deadlines.
            timers.start_soon(self.timer.run)
            await self._serve_with_timer(task_status)
            timers.cancel_scope.cancel()

    async def _serve_with_timer(self, task_status: trio.TaskStatus[Node]) -> None:
        from switch.ops.admin import serve_admin
        from switch.runtime.safd import SafForwarder

        async with trio.open_nursery() as services, trio.open_nursery() as work:
            self._work = work
            primary = self.process == 0
            for service in self.services:  # before the links: the cell links find their cells sooner
                await services.start(service.run)
            for link in self.outbound.values():
                await services.start(link.run)
            if not primary:
                await self._links_up(self.LINKS_UP_WAIT_S)
            for listener in self.listeners.values():
                await services.start(listener.run)
            if primary:
                services.start_soon(SafForwarder(self).run)
                await services.start(serve_admin, self)
                if self.config.processes > 1:
                    from switch.runtime.workers import WorkerSupervisor

                    ports = {name: lst.port for name, lst in self.listeners.items() if lst.port is not None}
                    self.workers = WorkerSupervisor(self, ports)
                    await services.start(self.workers.run)
            log.info("node %s: up (%d listeners, %d connectors)", self.name, len(self.listeners),
                     len(self.outbound))
            task_status.started(self)
            await self._stop.wait()
            await self._drain()
            services.cancel_scope.cancel()
            self._close_workers()

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
            while self.in_flight:
                await trio.sleep(0.01)
        if self.in_flight:
            log.warning("node %s: stopping with %d exchanges still in flight", self.name, self.in_flight)
        async with trio.open_nursery() as nursery:
            for link in self.outbound.values():
                nursery.start_soon(link.shutdown)

    def status(self) -> dict[str, Any]:
        links = [link.status() for link in self.outbound.values()]
        # A link served by a child process (a cell) also says how the process is doing (pid, restarts, exit code).
        processes = {p["name"]: p for service in self.services for p in service.status()}
        for entry in links:
            process = processes.get(str(entry["name"]))
            if process is not None:
                entry.update({k: v for k, v in process.items() if k not in ("name", "cell")})
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
            "routes": {"source": self.table.source, "digest": self.table.digest},
            "journal": {"batches": self.journal.batches, "rows": self.journal.rows},
            "links": links + [lst.status() for lst in self.listeners.values()],
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
        }
