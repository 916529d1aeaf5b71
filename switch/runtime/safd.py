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
the previous batch was being written). The window is per destination and adapts (:class:`SendWindow`): it
closes to one entry when an entry goes unanswered, so a destination that went silent is probed one entry at a
time, as when one entry was in flight, not sent a window to time out on. ``window = 1`` is the former
behaviour.
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
from switch.model.errors import EncodeError
from switch.model.message import Message, transmission_time
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


# Undelivered entries in a row (no answer, or 91/96) after which a drain takes no more: the destination, not the
# entry, looks unable to take them; the next sweep goes on with the entries not yet tried (each undelivered one
# waits for its own next attempt).
_SILENT_IN_A_ROW = 3


class SendWindow:
    """How many entries of one destination may be in flight at once: at most ``limit`` (``[saf] window``).

    It opens while the destination takes entries and closes when it does not, so that a destination that stopped
    answering is probed one entry at a time (as the forwarder did before it had a window) instead of being sent
    a whole window to time out on: a delivered entry doubles it (up to ``limit``); an entry answered 91/96
    halves it; an entry not answered at all closes it to one. Kept per destination across sweeps."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = limit

    def after(self, outcome: Outcome) -> None:
        if outcome.answered is None:
            return  # nothing was sent: it says nothing about the destination
        if not outcome.answered:
            self.size = 1
        elif outcome.status == "undelivered":
            self.size = max(1, self.size // 2)
        else:
            self.size = min(self.limit, self.size * 2)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one send: ``acked`` (with the destination's code), ``failed`` (it can never be sent, or the
    network rejected it: for the operator) or ``undelivered`` (no answer, or 91/96: it waits for its next
    attempt). ``answered``: whether the destination said anything (None: nothing was sent)."""

    item: SafItem
    mti: str  # as sent (the repeat MTI after the first attempt)
    status: Literal["acked", "failed", "undelivered"]
    code: str | None = None
    answered: bool | None = True


class _Flight:
    """The entries of one destination's drain that are claimed and not yet settled, and the outcomes their send
    tasks have reported since the drain last looked."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.done: list[Outcome] = []
        self.changed = trio.Event()

    def report(self, outcome: Outcome) -> None:
        self.done.append(outcome)
        self.changed.set()


class SafForwarder:
    """Delivers what the queue holds. ``link(name)`` is the destination's link when it is up, else None;
    ``on_depth`` hears the queue's state per destination after each sweep (metrics)."""

    def __init__(self, queue: SafQueue, link: Callable[[str], SafLink | None],
                 on_depth: Callable[[list[DestinationSummary]], None]) -> None:
        self.queue = queue
        self.store = queue.store
        self.cfg = queue.cfg
        self.link = link
        self.on_depth = on_depth
        self.windows: dict[str, SendWindow] = {}

    async def run(self) -> None:
        poll = self.cfg.poll_interval_ms / 1000
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a database hiccup must not stop forwarding for good
                log.error("saf: sweep failed: %s", type(exc).__name__)
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
                    nursery.start_soon(self.drain, destination)

    async def drain(self, destination: str) -> None:
        """Send the due entries of one destination, oldest first, up to its window at a time.

        One task per entry in flight; this loop alone talks to the database: it claims due entries in one
        transaction (their attempts recorded before they leave), and writes the answers that came meanwhile in
        one transaction, before it claims more. An entry's successor for the same original is only offered once
        that answer is written, so it leaves strictly after its predecessor was answered. An undelivered entry
        waits for its own next attempt and the others go on, until several in a row go undelivered."""
        window = self.windows.setdefault(destination, SendWindow(self.cfg.window))
        flight = _Flight()
        silent = 0
        async with trio.open_nursery() as nursery:
            while True:
                flight.changed = trio.Event()
                done, flight.done = flight.done, []
                if done:
                    await self._settle(done)
                    for outcome in done:
                        flight.ids.discard(outcome.item.id)
                        window.after(outcome)
                        if outcome.status != "undelivered":
                            silent = 0
                        elif outcome.answered is not None:  # not a send refused by the link itself
                            silent += 1
                link = self.link(destination)
                room = window.size - len(flight.ids)
                if link is not None and silent < _SILENT_IN_A_ROW and room > 0:
                    for item in await trio.to_thread.run_sync(self._take, destination, room, frozenset(flight.ids)):
                        flight.ids.add(item.id)
                        nursery.start_soon(self._send, item, link, flight)
                if not flight.ids:
                    return
                await flight.changed.wait()

    def _take(self, destination: str, room: int, busy: frozenset[int]) -> list[SafItem]:
        now = now_utc()
        return self.store.take_due(destination, now, room, lambda attempts: now + self._backoff(attempts),
                                   busy=busy, max_attempts=self.cfg.max_attempts or None)

    def _backoff(self, attempts: int) -> timedelta:
        """How long an entry sent ``attempts`` times before waits, if this send goes unanswered: exponential,
        per entry, up to ``max_interval_ms``."""
        return timedelta(milliseconds=min(self.cfg.retry_interval_ms * 2 ** min(attempts, 16),
                                          self.cfg.max_interval_ms))

    async def _send(self, item: SafItem, link: SafLink, flight: _Flight) -> None:
        flight.report(await self.deliver(item, link))

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
            except LinkDown:
                response = None
            except DuplicateKeyError:
                # Another request with the same match key (say DE 11 + 41) is in flight on the link, perhaps
                # another entry of the window: this says nothing about the destination; it goes at its next try.
                log.info("saf: #%d %s to %s not sent (same match key in flight); next try in %.1fs", item.id,
                         msg.mti, item.destination, self._backoff(item.attempts).total_seconds())
                return Outcome(item, msg.mti, "undelivered", answered=None)
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

    async def _settle(self, done: list[Outcome]) -> None:
        acked = [(o.item.id, o.code or "") for o in done if o.status == "acked"]
        failed = [o.item.id for o in done if o.status == "failed"]
        await trio.to_thread.run_sync(self.store.settle, now_utc(), acked, failed)
        for o in done:
            if o.status == "acked":
                log.info("saf: #%d %s to %s acknowledged (%s)", o.item.id, o.mti, o.item.destination, o.code)

    async def retry_now(self, destination: str | None) -> int:
        n = await trio.to_thread.run_sync(self.store.retry_now, destination, now_utc())
        self.queue.wake()
        return n
