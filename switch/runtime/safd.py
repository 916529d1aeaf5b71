"""The store-and-forward forwarder: delivers queued reversals and advices.

Semantics follow jPOS-EE's SAF: an entry is retried until the destination answers it; a 91/96 (destination
cannot process now) or no answer counts as not delivered; the first retry goes out as the repeat MTI (0401,
0421); retries back off exponentially up to a ceiling, per entry. Order is kept only where it matters (issue
11): entries for the same original (an advice, its reversal, their repeats) go in the order they were queued
(switch.storage.saf), while an entry its destination does not answer waits for its own next attempt and the
entries behind it that concern other originals go on. An entry out of attempts (``[saf] max_attempts``) or past
its expiry (``expire_after_s``) becomes an exception: not retried any more, logged at error, counted in
``bulkhead_saf_exceptions``, listed first by ``bulkhead saf show``, until an operator resends, cancels or
expires it.

Pipelining (``[saf] window``, default 32): up to that many entries of one destination are in flight at once,
so a backlog after an outage drains in about one round trip per window rather than one per entry. The window
never carries two entries for the same original: the queue offers an entry only once every earlier entry for
its original is finished, and an answer is written to the queue before the drain claims anything more, so an
advice's reversal (or repeat) leaves strictly after the advice was answered and recorded. Entries for
different originals overlap. Each entry's attempt is recorded, in one transaction for the batch claimed,
before it is sent: a node that dies with a window in flight loses nothing, and its next life sends those
entries again as repeats (0221/0421, which the destination recognises by DE 11 + 7 + 41 + 32), what any
unanswered entry would get. Answers are written in batches (one transaction for the answers that came while
the previous batch was being written). ``window = 1`` is the former behaviour.

The rules, by what a send says about the destination:

- **No answer** (the send timed out, or the connection dropped with it on the wire) is the only sign that the
  destination is gone: the window (:class:`SendWindow`, per destination) closes to one entry, so a silent
  destination is probed one entry at a time rather than sent a window to time out on, and three unanswered in a
  row end the drain's claims until the next sweep. The entry waits for its own next attempt.
- **Any answer** opens the window again (it doubles, up to ``window``), whatever it says. A prompt 91/96 refuses
  that one entry (a cell that cannot price one advice answers 96 at once), not the destination: the entry waits
  for its own next attempt and the others go on; a run of them at the head of the queue holds back nothing
  behind it. Entries never sent are claimed before retries, so a few entries a destination keeps refusing
  cannot take the window from the rest.
- **Refused by the link before anything left** (LinkDown: the link is at its ``max_inflight``, shared with live
  traffic, or it went down between claim and send; or DuplicateKeyError, a request with the same match key in
  flight on it): nothing about the destination, the window stays as it was, and the entry gets its attempt
  back (:meth:`SafStore.settle`, unless an operator acted on it meanwhile), so it neither nears an exception nor
  goes next time as a repeat. The drain claims no more until the next sweep (the link is full or gone).
- **An original with a message on the wire** gets nothing else claimed until that message's outcome is
  recorded, on any link (:attr:`SafForwarder.on_wire`, forwarder-wide; only the primary node process runs the
  forwarder): an advice an operator cancels or expires while it is in flight no longer blocks its reversal in
  the queue, and the reversal would otherwise overtake it on the wire.
- **A database error** in one destination's drain stays in that drain: it claims no more, still awaits what it
  has on the wire, and writes the outcomes once the database takes them (at the latest as it ends); it is
  logged at error with the destination, and every other destination's window goes on untouched. Whatever ends
  a drain (an error, or the node stopping), the answers it already received are written (shielded) before it
  lets go: otherwise they would go again as repeats, each using an attempt. A send that fails in an
  unexpected way is logged at error and its entry waits for its backoff (whether it left is not known, so its
  attempt stands).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

import trio

from switch.config import SafConfig
from switch.contracts.network import Rejected
from switch.exchange.journal import now_utc
from switch.exchange.ports import Answer, DuplicateKeyError, LinkDown
from switch.exchange.reversal import from_payload, original_key, repeat_mti, to_payload
from switch.infra.datakey import DataKeys, SealError
from switch.model.errors import BulkheadError, EncodeError
from switch.model.message import Message, transmission_time
from switch.storage.errors import StorageError
from switch.storage.saf import DestinationSummary, SafItem, SafStore

log = logging.getLogger("bulkhead.saf")

# Answers that mean "not processed, send it again" rather than an acknowledgement.
RETRY_CODES = frozenset({"91", "96"})


class SafLink(Protocol):
    """What the forwarder needs of a destination's link."""

    async def request(self, msg: Message, timeout: float | None = None) -> Answer: ...


class SafQueue:
    """Queueing reversals and advices: sealed under the node's data key (no clear PAN is stored), durable in
    one transaction per call, and the forwarder woken."""

    def __init__(self, store: SafStore, keys: DataKeys, cfg: SafConfig) -> None:
        self.store = store
        self.keys = keys
        self.cfg = cfg
        self.woken = trio.Event()

    async def enqueue(self, items: list[tuple[str, Message, str]]) -> None:
        """Queue (destination, message, original trace id) entries in one transaction: all or none."""
        entries = [self._entry(*item) for item in items]
        ids = await trio.to_thread.run_sync(self.store.enqueue_many, entries)
        for item_id, (destination, msg, _) in zip(ids, items, strict=True):
            log.info("saf: queued %s #%d for %s (stan %s, pan %s)", msg.mti, item_id, destination, msg.stan,
                     msg.masked_pan)
        self.wake()

    def wake(self) -> None:
        self.woken.set()

    def _entry(self, destination: str, msg: Message, trace_id: str) -> dict[str, Any]:
        now = now_utc()
        return dict(
            destination=destination, mti=msg.mti, stan=msg.stan, rrn=msg.rrn, pan_masked=msg.masked_pan,
            amount=msg.amount, currency=msg.currency, payload=self.keys.seal(to_payload(msg), destination.encode()),
            original_trace_id=trace_id, now=now, expires_at=now + timedelta(seconds=self.cfg.expire_after_s),
            original_key=original_key(msg),
            # jPOS-EE's initial-delay: give the destination time to finish the original before the reversal.
            due_at=now + timedelta(milliseconds=self.cfg.initial_delay_ms),
        )


# Sends in a row that went unanswered (timed out) after which a drain claims no more: the destination, not the
# entry, looks gone; the next sweep goes on (each unanswered entry waits for its own next attempt).
_SILENT_IN_A_ROW = 3


class SendWindow:
    """How many entries of one destination may be in flight at once: at most ``limit`` (``[saf] window``).

    It opens while the destination answers and closes when it does not, so that a destination that stopped
    answering is probed one entry at a time (as the forwarder did before it had a window) instead of being sent
    a whole window to time out on: an answer, whatever it says (00, a decline, a 91/96 refusing that one entry,
    a network reject), doubles it up to ``limit``; a send not answered at all closes it to one; a send that
    never left (refused by the link, or the entry could not be opened or encoded) leaves it as it was. Kept per
    destination across sweeps."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = limit

    def after(self, outcome: Outcome) -> None:
        if outcome.answered is None:
            return  # it says nothing about the destination
        self.size = min(self.limit, self.size * 2) if outcome.answered else 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one send: ``acked`` (with the destination's code), ``failed`` (it can never be sent, or the
    network rejected it: for the operator), ``undelivered`` (no answer, or 91/96: it waits for its next attempt)
    or ``unsent`` (the link refused it before anything left: its attempt is given back). ``answered``: whether
    the destination said anything (None: nothing is known of the destination, say nothing was sent)."""

    item: SafItem
    mti: str  # as sent (the repeat MTI after the first attempt)
    status: Literal["acked", "failed", "undelivered", "unsent"]
    code: str | None = None
    answered: bool | None = True


class _Flight:
    """One destination's drain: the entries it claimed and has not settled yet, the outcomes their send tasks
    reported since the drain last looked, and those it could not write yet."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.items: dict[int, SafItem] = {}
        self.done: list[Outcome] = []
        self.unsettled: list[Outcome] = []
        self.changed = trio.Event()

    def report(self, outcome: Outcome) -> None:
        self.done.append(outcome)
        self.changed.set()

    def on_the_wire(self) -> int:
        """Sends not reported yet."""
        return len(self.items) - len(self.done) - len(self.unsettled)


class SafForwarder:
    """Delivers what the queue holds. ``link(name)`` is the destination's link when it is up, else None;
    ``on_depth`` hears the queue's state per destination after each sweep (metrics). Only the primary node
    process runs one, so what it knows is on the wire is all that is."""

    def __init__(self, queue: SafQueue, link: Callable[[str], SafLink | None],
                 on_depth: Callable[[list[DestinationSummary]], None]) -> None:
        self.queue = queue
        self.store = queue.store
        self.cfg = queue.cfg
        self.link = link
        self.on_depth = on_depth
        self.windows: dict[str, SendWindow] = {}
        # The originals with a message on the wire, on any link, from when it is claimed until its outcome is
        # recorded: nothing else for them is claimed meanwhile, even once an operator cancelled or expired it.
        self.on_wire: set[str] = set()

    async def run(self) -> None:
        poll = self.cfg.poll_interval_ms / 1000
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a database hiccup must not stop forwarding for good
                log.error("saf: sweep failed: %s", _reason(exc))
            with trio.move_on_after(poll):
                await self.queue.woken.wait()
            self.queue.woken = trio.Event()

    async def sweep(self) -> None:
        store = self.store
        now = now_utc()
        escalated = await trio.to_thread.run_sync(store.escalate, now, self.cfg.max_attempts or None)
        for item in escalated:
            log.error("saf: #%d %s for %s (stan %s, pan %s, amount %s) undelivered after %d attempts: an exception "
                      "for the operator (bulkhead saf show %d; resend, cancel or expire it)", item.id, item.mti,
                      item.destination, item.stan, item.pan_masked, item.amount, item.attempts, item.id)
        self.on_depth(await trio.to_thread.run_sync(store.summary))
        destinations = await trio.to_thread.run_sync(store.destinations_with_pending)
        async with trio.open_nursery() as nursery:
            for destination in destinations:
                if self.link(destination) is not None:
                    nursery.start_soon(self._drain_apart, destination)

    async def _drain_apart(self, destination: str) -> None:
        # One destination's failure stays its own: escaping, it would cancel every other destination's window.
        try:
            await self.drain(destination)
        except Exception as exc:
            log.error("saf: drain of %s failed: %s", destination, _reason(exc))

    async def drain(self, destination: str) -> None:
        """Send the due entries of one destination, never sent first, then oldest first, up to its window at a
        time.

        One task per entry in flight; this loop alone talks to the database: it claims due entries in one
        transaction (their attempts recorded before they leave), and writes the outcomes that came meanwhile in
        one transaction, before it claims more. An entry's successor for the same original is only offered once
        that answer is written, so it leaves strictly after its predecessor was answered. An undelivered entry
        waits for its own next attempt and the others go on, until several in a row go unanswered, or the link
        refuses a send (it is gone, or full: the next sweep tries again), or the database fails (what is on the
        wire is still awaited, and its outcomes written at the end). Outcomes already received are written even
        when the drain is cancelled (the node stopping): otherwise they would go again as repeats."""
        flight = _Flight(destination)
        try:
            async with trio.open_nursery() as nursery:
                await self._pump(flight, nursery)
        finally:
            with trio.CancelScope(shield=True):
                await self._close(flight)

    async def _pump(self, flight: _Flight, nursery: trio.Nursery) -> None:
        destination = flight.destination
        window = self.windows.setdefault(destination, SendWindow(self.cfg.window))
        silent = 0
        claiming = True
        while True:
            flight.changed = trio.Event()
            fresh, flight.done = flight.done, []
            for outcome in fresh:
                window.after(outcome)
                if outcome.answered is not None:
                    silent = 0 if outcome.answered else silent + 1
                if outcome.status == "unsent":
                    claiming = False
            flight.unsettled.extend(fresh)
            if flight.unsettled and not await self._settle(flight):
                claiming = False
            link = self.link(destination)
            room = window.size - len(flight.items)
            if claiming and link is not None and silent < _SILENT_IN_A_ROW and room > 0:
                try:
                    taken = await trio.to_thread.run_sync(self._take, destination, room, frozenset(flight.items),
                                                          frozenset(self.on_wire))
                except StorageError as exc:
                    log.error("saf: %s: entries not claimed (%s); the next sweep tries again", destination, exc)
                    claiming, taken = False, []
                for item in taken:
                    flight.items[item.id] = item
                    if item.original_key is not None:
                        self.on_wire.add(item.original_key)
                    nursery.start_soon(self._send, item, link, flight)
            if flight.done:
                continue  # answers that came while the database was busy: written before anything else
            if not flight.on_the_wire():
                return
            await flight.changed.wait()

    def _take(self, destination: str, room: int, busy: frozenset[int], originals: frozenset[str]) -> list[SafItem]:
        now = now_utc()
        return self.store.take_due(destination, now, room, lambda attempts: now + self._backoff(attempts),
                                   busy=busy, busy_originals=originals, max_attempts=self.cfg.max_attempts or None)

    def _backoff(self, attempts: int) -> timedelta:
        """How long an entry sent ``attempts`` times before waits, if this send goes unanswered: exponential,
        per entry, up to ``max_interval_ms``."""
        return timedelta(milliseconds=min(self.cfg.retry_interval_ms * 2 ** min(attempts, 16),
                                          self.cfg.max_interval_ms))

    async def _send(self, item: SafItem, link: SafLink, flight: _Flight) -> None:
        try:
            outcome = await self.deliver(item, link)
        except Exception as exc:
            # Whether it left is not known: its attempt stands (it goes again as a repeat after its backoff), and
            # the drain's other sends go on.
            log.error("saf: #%d to %s: send failed: %s", item.id, item.destination, _reason(exc))
            outcome = Outcome(item, item.mti, "undelivered", answered=None)
        flight.report(outcome)

    async def deliver(self, item: SafItem, link: SafLink) -> Outcome:
        """Send one claimed entry (its attempt already recorded) and say what became of it; nothing is written
        here (the drain settles outcomes in batches)."""
        try:
            msg = from_payload(self.queue.keys.open(item.payload, item.destination.encode()))
        except SealError:
            # Another node's key, or tampering: the entry can never be sent; keep it, marked, for the operator.
            log.error("saf: entry #%d cannot be opened with this node's data key; marking failed", item.id)
            return Outcome(item, item.mti, "failed", answered=None)
        if item.attempts > 0:
            msg.mti = repeat_mti(msg.mti)
        # A repeat is the original message with only the MTI changed (ISO 8583 repeat messages): DE 7 stays as
        # it was queued, so the receiver's duplicate check (DE 11 + 7 + 41 + 32) recognises the repeat and does
        # not apply an advice or reversal twice when only its answer was lost.
        msg.fields.setdefault(7, transmission_time())
        response: Answer = None
        with trio.move_on_after(self.cfg.send_timeout_ms / 1000):
            try:
                response = await link.request(msg)
            except (LinkDown, DuplicateKeyError) as exc:
                # Refused before anything left: the link is down or dropped since the claim, it is at its
                # max_inflight (shared with live traffic), or a request with the same match key (say DE 11 + 41)
                # is in flight on it. Nothing about the destination; the entry gets its attempt back.
                log.info("saf: #%d %s to %s not sent (%s); the next sweep tries again", item.id, msg.mti,
                         item.destination, exc)
                return Outcome(item, msg.mti, "unsent", answered=None)
            except EncodeError as exc:
                # The destination's format cannot carry this entry: it never will, and it must not block
                # every entry behind it. Marked failed for the operator.
                log.error("saf: #%d cannot be encoded for %s (%s); marking failed", item.id, item.destination, exc)
                return Outcome(item, msg.mti, "failed", answered=None)
        if isinstance(response, Rejected):
            # The network refused the entry unprocessed: it would refuse it again; marked failed for the operator.
            log.error("saf: #%d %s to %s rejected by the network (%s); marking failed", item.id, msg.mti,
                      item.destination, response.reason or "no reason given")
            return Outcome(item, msg.mti, "failed")
        code = response.response_code if response is not None else None
        if code is not None and code not in RETRY_CODES:
            return Outcome(item, msg.mti, "acked", code)
        log.info("saf: #%d %s to %s not acknowledged (%s); next try in %.1fs", item.id, msg.mti,
                 item.destination, code or "no answer", self._backoff(item.attempts).total_seconds())
        return Outcome(item, msg.mti, "undelivered", code, answered=response is not None)

    async def _settle(self, flight: _Flight) -> bool:
        """Write the outcomes the drain holds, in one transaction; on success the entries leave the flight (and
        their originals the wire). False when the database refused: they stay, to be written later."""
        done = flight.unsettled
        acked = [(o.item.id, o.code or "") for o in done if o.status == "acked"]
        failed = [o.item.id for o in done if o.status == "failed"]
        unsent = [o.item for o in done if o.status == "unsent"]
        try:
            await trio.to_thread.run_sync(self.store.settle, now_utc(), acked, failed, unsent)
        except StorageError as exc:
            log.error("saf: %s: outcomes of %d entries not recorded yet (%s); it claims no more this sweep",
                      flight.destination, len(done), exc)
            return False
        flight.unsettled = []
        for o in done:
            self._land(flight, o.item)
            if o.status == "acked":
                log.info("saf: #%d %s to %s acknowledged (%s)", o.item.id, o.mti, o.item.destination, o.code)
        return True

    async def _close(self, flight: _Flight) -> None:
        """The end of a drain, however it ended (shielded by the caller): write what is still unwritten, then
        forget the flight. An outcome the database still refuses is lost; its entry, attempt recorded, goes
        again as a repeat."""
        flight.unsettled.extend(flight.done)
        flight.done = []
        if flight.unsettled and not await self._settle(flight):
            log.error("saf: %s: outcomes of %d entries lost; they go again (as repeats)", flight.destination,
                      len(flight.unsettled))
        for item in list(flight.items.values()):
            self._land(flight, item)

    def _land(self, flight: _Flight, item: SafItem) -> None:
        flight.items.pop(item.id, None)
        if item.original_key is not None:
            self.on_wire.discard(item.original_key)

    async def retry_now(self, destination: str | None) -> int:
        n = await trio.to_thread.run_sync(self.store.retry_now, destination, now_utc())
        self.queue.wake()
        return n


def _reason(exc: Exception) -> str:
    """An error for the log: the project's own errors carry no card data (their message is safe); of anything
    else, only its type."""
    return str(exc) if isinstance(exc, BulkheadError) else type(exc).__name__
