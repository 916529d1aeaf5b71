"""The cell's server: one issuer processor cell serving the node over its internal link (:class:`CellHost`). The
process around it - lock, load, HSM, signals, housekeeping, exit codes - is :mod:`processors.cell.host`.

All of the cell's state is in memory. Per request the engine decides (HSM checks first, then a synchronous
decision that changes the state) and returns the rows it changed; the host hands them to the group-commit
writer (:mod:`processors.storage.writer`) together with the encoded answer, and the answer goes out only once the
batch holding it has committed. Answers are released per committed batch, in submission order, through one
``run_sync_soon`` per batch. The effects are submitted right after ``handle`` returns (no await in between, so
the writer sees the snapshots in the order the state changed); a decision with a follow-up
(``Decision.finish``, the ARPC of a chip answer) is awaited after that, and its answer leaves once both the
commit and the follow-up are done.

Fail-stop: if a commit fails, memory is ahead of the database, so the cell must not answer anything decided
after it. It stops serving at once and exits non-zero; the node's supervisor restarts it and the new process
loads the state the database holds. The node answers the requests that were in flight 91 (and reverses them).
An engine exception is treated the same way (the decision may have changed memory half-way): that request is
answered 96, nothing decided afterwards is written or answered, and the cell stops.

The link is the node's ``cell-NN`` connector: scheme ``generic``, framing ``binary2``, sign-on and echoes
(0800) answered by the engine like any request. One reader per connection handles each received batch
inline, as the issuer simulator does (:mod:`switch.sim.issuer`). A request that needs no HSM check is decided
right there too, through the engine's synchronous ``decide`` when it has one; only a request that waits for the
HSM (PIN, CVV, ARQC) becomes a small task around the engine's ``handle`` coroutine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from processors.cell.config import CELL_NETWORK
from processors.model import Effects
from processors.storage.writer import (
    CommitFailedError,
    EffectsWriter,
    WriteBatch,
    default_write_batch,
)
from switch.contracts.network import Network
from switch.contracts.registry import network
from switch.infra.outbox import Outbox
from switch.infra.reader import READ_SIZE
from switch.model.codes import ResponseCode
from switch.model.errors import BulkheadError, FieldError, FramingError, LocalProtocolError, RemoteProtocolError
from switch.model.message import Message
from switch.wire.framing import Frame, Framer

if TYPE_CHECKING:
    from processors.storage import Engine

log = logging.getLogger("bulkhead.cells.host")
STOP_GRACE_S = 2.0  # an orderly stop waits this long for decisions in flight to commit and be answered
FAILED_FLUSH_S = 0.05  # after an engine failure: time for the 96 already queued to leave before the link closes


class DecisionLike(Protocol):
    @property
    def response(self) -> Message | None: ...

    @property
    def effects(self) -> Effects: ...

    # Optional ``finish: Callable[[], Awaitable[None]] | None`` (processors.engine.Decision.finish): completes the
    # response after the effects were submitted; read with getattr so simple engines may leave it out.
    # Optional ``note: str`` (processors.engine.Decision.note): logged as a warning when not empty.


class EngineLike(Protocol):
    """What the host needs of :class:`processors.engine.CellEngine`."""

    async def handle(self, request: Message) -> DecisionLike: ...

    # Optional ``decide(request) -> DecisionLike | None`` (processors.engine.CellEngine.decide): the decision
    # at once when the request needs no await, else None; read with getattr so simple engines may leave it out.


SyncDecide = Callable[[Message], DecisionLike | None]


class CommandsLike(Protocol):
    """What the host needs of :class:`processors.commands.CellCommands`."""

    async def run(self, name: str, args: dict[str, Any]) -> tuple[Any, Effects]: ...


class CellFailedError(BulkheadError):
    """The cell stopped because its state could not be made durable, or the engine failed in the middle of a
    decision so memory may be half-changed (exit non-zero: fail-stop)."""


class EngineFailedError(BulkheadError):
    """The engine raised while deciding a request: the cell stops and reloads its state from the database."""


class _PendingAnswer:
    """The answer of a decision with a follow-up (``Decision.finish``): it leaves once its batch has committed
    *and* the follow-up has completed the response, whichever comes last."""

    __slots__ = ("code", "committed", "completed", "data", "host", "outbox")

    def __init__(self, host: CellHost, outbox: Outbox) -> None:
        self.host, self.outbox = host, outbox
        self.data: bytes | None = None
        self.code = ""
        self.committed = self.completed = False

    def commit_done(self) -> None:  # the writer ticket
        self.committed = True
        if self.completed:
            self.host._answer(self.outbox, self.data, self.code)

    def complete(self, data: bytes | None, code: str) -> None:
        self.data, self.code, self.completed = data, code, True
        if self.committed:
            self.host._answer(self.outbox, data, code)


# What the host gives the writer with a decision's effects, back on the trio thread once its batch committed:
# a plain answer as ``(connection's outbox, framed response or None, DE 39)``, which _release sends with the
# other answers of the batch to the same connection (one Outbox.put_many, not a call and a put per answer);
# anything else (an answer that also waits for Decision.finish, a commit() waiter) as a callable.
Answer = tuple[Outbox, bytes | None, str]
Ticket = Callable[[], None] | Answer


class CellHost:
    """Serve one cell: the internal link (TCP) and, optionally, the admin socket."""

    def __init__(self, cell: int, engine: EngineLike, db: Engine, *, commands: CommandsLike | None = None,
                 host: str = "127.0.0.1", port: int = 0, admin_socket: Path | None = None,
                 max_batch: int = 500, max_wait: float = 0.0005, write: WriteBatch = default_write_batch,
                 describe_state: Callable[[], dict[str, int]] | None = None, adapter: Network | None = None) -> None:
        self.cell = cell
        self.engine = engine
        self._decide_now: SyncDecide | None = getattr(engine, "decide", None)
        self.commands = commands
        self.db = db
        self.host = host
        self.port = port
        self.admin_socket = admin_socket
        self.writer = EffectsWriter(db, self._on_batch_done, max_batch=max_batch, max_wait=max_wait, write=write)
        self.describe_state = describe_state
        # The internal link's network, the one the node's cell connectors speak (processors.cell.config). Whatever
        # MTI class it decodes reaches the engine (card capture advices are class 6, processors.engine.admin).
        self.adapter = adapter if adapter is not None else network(CELL_NETWORK)
        self._link = self.adapter.link_options(None, None)
        self.failure: BaseException | None = None
        self.started_at = time.time()
        self.connections = 0
        self.received: Counter[str] = Counter()  # per request MTI
        self.answered: Counter[str] = Counter()  # per field 39 released
        self.malformed = 0
        self.errors = 0
        self.in_flight = 0  # requests received and not yet answered (or dropped)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop = trio.Event()
        self._idle = trio.Event()
        self._commit_waiters: set[trio.Event] = set()  # commit() calls waiting for their batch
        # Decisions of the read being handled, submitted together at its end (None outside the reader's loop).
        self._queued: list[tuple[Effects, Ticket]] | None = None

    # -- life cycle ---------------------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop` or cancellation; ``task_status.started(port)`` once listening. Raises
        :class:`CellFailedError` after a failed commit."""
        from processors.cell.admin import serve_cell_admin

        self._token = trio.lowlevel.current_trio_token()
        self.writer.start()
        try:
            async with trio.open_nursery() as nursery:
                listeners = await trio.open_tcp_listeners(self.port, host=self.host)
                self.port = listeners[0].socket.getsockname()[1]
                nursery.start_soon(trio.serve_listeners, self._handle, listeners)
                if self.admin_socket is not None:
                    await nursery.start(serve_cell_admin, self, self.admin_socket)
                log.info("cell %d: serving on %s:%d", self.cell, self.host, self.port)
                task_status.started(self.port)
                await self._stop.wait()
                if self.failure is None:
                    with trio.move_on_after(STOP_GRACE_S):
                        while self.in_flight:
                            self._idle = trio.Event()
                            await self._idle.wait()
                else:
                    await trio.sleep(FAILED_FLUSH_S)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                # Everything submitted is written before the process ends, so the database holds every
                # decision the cell made (answered or not: the node reverses what it answered 91).
                await trio.to_thread.run_sync(self.writer.close)
        if self.failure is not None:
            raise CellFailedError(f"cell {self.cell}: {self.failure}") from self.failure

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Orderly stop: give the requests in flight up to STOP_GRACE_S to commit and be answered, then close
        the link (the node signs off and drains before it stops its cells, so normally nothing is in flight)."""
        self._stop.set()

    # -- committed batches --------------------------------------------------------------------------
    def _on_batch_done(self, tickets: list[Ticket], exc: BaseException | None) -> None:
        """Writer thread: hand the batch back to trio (one wake-up per batch, not per answer)."""
        assert self._token is not None
        # RunFinishedError: the cell is already down; these answers have nobody to go to.
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._release, tickets, exc)

    def _release(self, tickets: list[Ticket], exc: BaseException | None) -> None:
        if exc is not None:
            if self.failure is None:
                log.critical("cell %d: commit failed, stopping without answering (fail-stop): %s", self.cell,
                             exc)
            self._fail(exc)
            return
        if self.failure is not None:
            return
        answered = self.answered
        released = 0  # plain answers released (each was a request in flight)
        outbox: Outbox | None = None
        ready: list[bytes] = []  # consecutive answers to ``outbox``, in submission order
        for ticket in tickets:
            if isinstance(ticket, tuple):
                box, data, code = ticket
                released += 1
                if data is None:
                    continue
                answered[code] += 1
                if box is not outbox:
                    if outbox is not None and ready:
                        outbox.put_many(ready)
                        ready = []
                    outbox = box
                ready.append(data)
            else:
                if outbox is not None and ready:  # what came before it on the connection leaves before it
                    outbox.put_many(ready)
                    ready = []
                ticket()
        if outbox is not None and ready:
            outbox.put_many(ready)
        self.in_flight -= released
        if not self.in_flight:
            self._idle.set()

    def _fail(self, exc: BaseException) -> None:
        """Fail-stop: keep the first failure, stop serving, and wake every :meth:`commit` waiting (it raises)."""
        if self.failure is None:
            self.failure = exc
        self._stop.set()
        for waiter in self._commit_waiters:
            waiter.set()

    async def commit(self, effects: Effects) -> None:
        """Submit ``effects`` and wait until they are committed (admin commands, housekeeping). Raises
        :class:`CommitFailedError` when the cell failed before they were (a failed batch releases no tickets)."""
        if self.failure is not None:
            raise CommitFailedError(f"cell {self.cell} is stopping after a failure: {self.failure}")
        done = trio.Event()
        committed: list[bool] = []

        def ticket() -> None:
            committed.append(True)
            done.set()

        self._commit_waiters.add(done)
        try:
            self.writer.submit(effects, ticket)
            await done.wait()
        finally:
            self._commit_waiters.discard(done)
        if not committed:
            raise CommitFailedError(f"cell {self.cell}: not committed: {self.failure}")

    # -- the internal link --------------------------------------------------------------------------
    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        outbox = Outbox()
        async with stream:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(outbox.run, stream, nursery.cancel_scope)
                    await self._read(stream, self._link.framer(), outbox, nursery)
                    nursery.cancel_scope.cancel()
            except Exception as exc:  # one connection must never take the cell down
                log.warning("cell %d: connection ended by %s", self.cell, type(exc).__name__)

    async def _read(self, stream: trio.SocketStream, framer: Framer, outbox: Outbox, nursery: trio.Nursery) -> None:
        """:func:`switch.infra.reader.read_frames`, plus one writer submission per read: the decisions made from
        one read are queued here and handed to the writer together once the read's frames are handled (no await
        in between, so no other decision can come between them)."""
        try:
            while True:
                try:
                    data = await stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not data:
                    return
                framer.receive_data(data)
                queued: list[tuple[Effects, Ticket]] = []
                self._queued = queued
                try:
                    while (frame := framer.next_frame()) is not None:
                        self._on_frame(frame, framer, outbox, nursery)
                finally:
                    # Also after an error: what was decided changed the state, so it must be written.
                    self._queued = None
                    if queued:
                        self._submit_queued(queued)
        except FramingError as exc:
            self.malformed += 1
            log.warning("cell %d: closing connection: %s", self.cell, exc)

    def _on_frame(self, frame: Frame, framer: Framer, outbox: Outbox, nursery: trio.Nursery) -> None:
        if frame.keepalive:
            reply = framer.keepalive_reply(frame)
            if reply is not None:
                outbox.put(reply)
            return
        try:
            request = self.adapter.decode(frame.body)
        except RemoteProtocolError as exc:
            self.malformed += 1
            log.warning("cell %d: undecodable message skipped: %s", self.cell, exc)
            return
        if not request.is_request:
            return  # a stray response: nothing to answer
        self.received[request.mti] += 1
        self.in_flight += 1
        try:
            self.adapter.validate(request)
        except FieldError as exc:
            log.info("cell %d: %s %s: answering format error", self.cell, request.mti, exc)
            self._submit(Effects(), self.adapter.make_response(request, ResponseCode.FORMAT_ERROR), frame, framer,
                         outbox)
            return
        decide = self._decide_now
        if decide is None:
            nursery.start_soon(self._decide, request, frame, framer, outbox)
            return
        try:
            decision = decide(request)
        except Exception as exc:
            self._engine_failed(request, exc, frame, framer, outbox)
            return
        if decision is None:  # it waits for the HSM: a task of its own, so the reader goes on meanwhile
            nursery.start_soon(self._decide, request, frame, framer, outbox)
        else:
            self._deliver(decision, request, frame, framer, outbox, nursery)

    async def _decide(self, request: Message, frame: Frame, framer: Framer, outbox: Outbox) -> None:
        try:
            decision = await self.engine.handle(request)
        except trio.Cancelled:
            self.in_flight -= 1  # the connection went away before a decision: nothing was applied
            raise
        except Exception as exc:
            self._engine_failed(request, exc, frame, framer, outbox)
            return
        self._log_note(decision, request)
        finish = getattr(decision, "finish", None)
        if finish is None:
            self._submit(decision.effects, decision.response, frame, framer, outbox)
            return
        pending = _PendingAnswer(self, outbox)
        if self._submit_effects(decision.effects, pending.commit_done):
            await self._finish(decision, finish, pending, request, frame, framer)

    def _log_note(self, decision: DecisionLike, request: Message) -> None:
        """Log what the decision noted for the operator (``Decision.note``: never card data), by MTI and STAN."""
        note = getattr(decision, "note", "")
        if note:
            log.warning("cell %d: %s stan %s: %s", self.cell, request.mti, request.stan, note)

    def _deliver(self, decision: DecisionLike, request: Message, frame: Frame, framer: Framer, outbox: Outbox,
                 nursery: trio.Nursery) -> None:
        """Submit a decision made in the reader loop; one with a follow-up finishes in a task of its own."""
        self._log_note(decision, request)
        finish = getattr(decision, "finish", None)
        if finish is None:
            self._submit(decision.effects, decision.response, frame, framer, outbox)
            return
        pending = _PendingAnswer(self, outbox)
        if self._submit_effects(decision.effects, pending.commit_done):
            nursery.start_soon(self._finish, decision, finish, pending, request, frame, framer)

    async def _finish(self, decision: DecisionLike, finish: Callable[[], Awaitable[None]], pending: _PendingAnswer,
                      request: Message, frame: Frame, framer: Framer) -> None:
        """The effects already went to the writer, in the order the decisions changed the state (no await since
        the decision); the follow-up (the ARPC from the HSM) completes the response while the batch commits."""
        data: bytes | None = None
        code = ""
        try:
            await finish()
            data, code = self._encode(decision.response, frame, framer)
        except Exception as exc:  # the decision stands; the answer goes without what finish() would add
            self.errors += 1
            log.error("cell %d: %s stan %s: completing the response failed: %s", self.cell, request.mti,
                      request.stan, type(exc).__name__)
            data, code = self._encode(decision.response, frame, framer)
        finally:
            pending.complete(data, code)  # cancelled (connection gone): nothing to send, in_flight still counts

    def _engine_failed(self, request: Message, exc: Exception, frame: Frame, framer: Framer,
                       outbox: Outbox) -> None:
        """Fail-stop on an engine exception: the decision may have changed memory half-way, so nothing decided
        from now on may be committed or answered. This request gets 96 at once (it claims nothing about the
        state); the cell stops and its restart reloads the state the database holds. The message is not logged
        (it may describe card data); the MTI and STAN are enough."""
        self.errors += 1
        log.critical("cell %d: %s stan %s: engine failed (%s); stopping (fail-stop)\n%s", self.cell, request.mti,
                     request.stan, type(exc).__name__, stack_frames(exc))
        data, code = self._encode(self.adapter.make_response(request, ResponseCode.SYSTEM_MALFUNCTION), frame,
                                  framer)
        self._answer(outbox, data, code)
        failure = EngineFailedError(f"engine failed on {request.mti}: {type(exc).__name__}")
        failure.__cause__ = exc
        self._fail(failure)

    def _submit(self, effects: Effects, response: Message | None, frame: Frame, framer: Framer,
                outbox: Outbox) -> None:
        """Queue the decision's rows; its answer is released after they commit (and after every earlier
        batch, even when this decision changed nothing: it may have read what an earlier one changed)."""
        data, code = self._encode(response, frame, framer)
        self._submit_effects(effects, (outbox, data, code))

    def _encode(self, response: Message | None, frame: Frame, framer: Framer) -> tuple[bytes | None, str]:
        if response is None:
            return None, ""
        if log.isEnabledFor(logging.DEBUG):  # --log-level debug: one line per decision, no card data
            log.debug("cell %d: %s stan %s answered %s", self.cell, response.mti, response.stan,
                      response.response_code or "-")
        try:
            return framer.encode(self.adapter.encode(response), reply_to=frame), response.response_code or ""
        except LocalProtocolError as exc:
            self.errors += 1
            log.error("cell %d: cannot encode %s: %s", self.cell, response.mti, exc)
            return None, ""

    def _submit_effects(self, effects: Effects, ticket: Ticket) -> bool:
        """Queue ``effects`` with ``ticket``; False (and the request no longer in flight) when the cell has
        failed: after an engine failure memory may be half-changed, so later decisions are neither written
        nor answered."""
        if self.failure is not None:
            self.in_flight -= 1
            return False
        if self._queued is not None:  # in the reader's loop: submitted with the rest of the read
            self._queued.append((effects, ticket))
            return True
        try:
            self.writer.submit(effects, ticket)
        except Exception:
            self.in_flight -= 1
            raise
        return True

    def _submit_queued(self, queued: list[tuple[Effects, Ticket]]) -> None:
        try:
            self.writer.submit_many(queued)
        except Exception:
            self.in_flight -= len(queued)
            raise

    def _answer(self, outbox: Outbox, data: bytes | None, code: str) -> None:
        self.in_flight -= 1
        if data is not None:
            self.answered[code] += 1
            outbox.put(data)
        if not self.in_flight:
            self._idle.set()  # an answer completed by Decision.finish leaves outside _release

    # -- admin --------------------------------------------------------------------------------------
    async def run_command(self, name: str, args: dict[str, Any]) -> Any:
        """A lifecycle command through the engine's state; its effects commit before it answers."""
        if self.commands is None:
            raise BulkheadError("this cell runs without commands")
        if self.failure is not None:
            raise CellFailedError(f"cell {self.cell} is stopping after a failed commit")
        result, effects = await self.commands.run(name, args)
        await self.commit(effects)
        if self.failure is not None:
            raise CommitFailedError(f"cell {self.cell}: command {name} not committed: {self.failure}")
        return result

    def stats(self) -> dict[str, Any]:
        w = self.writer
        out: dict[str, Any] = {
            "cell": self.cell, "pid": os.getpid(), "port": self.port,
            "uptime_s": round(time.time() - self.started_at, 1), "connections": self.connections,
            "received": dict(self.received), "answered": dict(self.answered), "in_flight": self.in_flight,
            "malformed": self.malformed, "errors": self.errors,
            "writer": {"batches": w.batches, "decisions": w.items, "rows": w.rows, "largest_batch": w.largest_batch,
                       "queue_depth": w.queue_depth, "commit_seconds": round(w.commit_seconds, 3)},
        }
        if self.describe_state is not None:
            out["state"] = self.describe_state()
        return out


def stack_frames(exc: BaseException) -> str:
    """Where an unexpected exception came from, without its message: an exception's text may quote the values
    it failed on, card data included, and logs never carry card data."""
    return "".join(traceback.format_tb(exc.__traceback__))
