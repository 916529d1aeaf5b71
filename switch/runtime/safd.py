"""The store-and-forward forwarder: delivers queued reversals and advices.

Semantics follow jPOS-EE's SAF: an entry is retried until the destination answers it; a 91/96 (destination
cannot process now) or no answer counts as not delivered; the first retry goes out as the repeat MTI (0401,
0421); retries back off exponentially up to a ceiling, per entry. Order is kept only where it matters (issue
11): entries for the same original (an advice, its reversal, their repeats) go in the order they were queued
(switch.storage.saf), while an entry its destination does not answer waits for its own next attempt and the
entries behind it that concern other originals go on. An entry out of attempts (``[saf] max_attempts``) or past
its expiry (``expire_after_s``) becomes an exception: not retried any more, logged at error, counted in
``bulkhead_saf_exceptions``, listed first by ``bulkhead saf show``, until an operator resends, cancels or
expires it. One entry of a destination is in flight at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import trio

from switch.config import SafConfig
from switch.contracts.network import Rejected
from switch.exchange.journal import now_utc
from switch.exchange.ports import Answer, DuplicateKeyError, LinkDown
from switch.exchange.reversal import from_payload, original_key, repeat_mti, to_payload
from switch.infra.datakey import DataKeys, SealError
from switch.model.errors import EncodeError
from switch.model.message import Message, transmission_time
from switch.storage.errors import SafStateError
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


# Unanswered entries in a row after which a drain stops: the destination, not the entry, looks silent; the next
# sweep goes on with the entries not yet tried (each unanswered one waits for its own next attempt).
_SILENT_IN_A_ROW = 3


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
        """Send the due entries of one destination, oldest first. An unanswered entry waits for its own next
        attempt (its attempt was recorded, so it is not due again in this drain) and the others go on, until
        several in a row go unanswered."""
        store = self.store
        silent = 0
        while (link := self.link(destination)) is not None and silent < _SILENT_IN_A_ROW:
            now = now_utc()
            item = await trio.to_thread.run_sync(store.next_due, destination, now)
            if item is None:
                return
            silent = 0 if await self.deliver(item, link) else silent + 1

    async def deliver(self, item: SafItem, link: SafLink) -> bool:
        store = self.store
        try:
            msg = from_payload(self.queue.keys.open(item.payload, item.destination.encode()))
        except SealError:
            # Another node's key, or tampering: the entry can never be sent; keep it, marked, for the operator.
            log.error("saf: entry #%d cannot be opened with this node's data key; marking failed", item.id)
            await self._fail(item)
            return True
        if item.attempts > 0:
            msg.mti = repeat_mti(msg.mti)
        # A repeat is the original message with only the MTI changed (ISO 8583 repeat messages): DE 7 stays as
        # it was queued, so the receiver's duplicate check (DE 11 + 7 + 41 + 32) recognises the repeat and does
        # not apply an advice or reversal twice when only its answer was lost.
        msg.fields.setdefault(7, transmission_time())
        # The attempt is recorded before the send: if the node stops while it is in flight, the next life
        # sends the repeat MTI, as the destination may already have seen the original.
        now = now_utc()
        delay_ms = min(self.cfg.retry_interval_ms * 2 ** min(item.attempts, 16), self.cfg.max_interval_ms)
        try:
            await trio.to_thread.run_sync(store.record_attempt, item.id, now, now + timedelta(milliseconds=delay_ms))
        except SafStateError:
            return True  # an operator cancelled or expired it since it was read: not sent

        response: Answer = None
        with trio.move_on_after(self.cfg.send_timeout_ms / 1000):
            try:
                response = await link.request(msg)
            except (LinkDown, DuplicateKeyError):
                response = None
            except EncodeError as exc:
                # The destination's format cannot carry this entry: it never will, and it must not block
                # every entry behind it. Marked failed for the operator.
                log.error("saf: #%d cannot be encoded for %s (%s); marking failed", item.id, item.destination, exc)
                await self._fail(item)
                return True
        if isinstance(response, Rejected):
            # The network refused the entry unprocessed: it would refuse it again; marked failed for the operator.
            log.error("saf: #%d %s to %s rejected by the network (%s); marking failed", item.id, msg.mti,
                      item.destination, response.reason or "no reason given")
            await self._fail(item)
            return True
        code = response.response_code if response is not None else None
        if code is not None and code not in RETRY_CODES:
            await trio.to_thread.run_sync(store.acknowledge, item.id, code, now_utc())
            log.info("saf: #%d %s to %s acknowledged (%s)", item.id, msg.mti, item.destination, code)
            return True
        log.info("saf: #%d %s to %s not acknowledged (%s); next try in %.1fs", item.id, msg.mti,
                 item.destination, code or "no answer", delay_ms / 1000)
        return False

    async def _fail(self, item: SafItem) -> None:
        with contextlib.suppress(SafStateError):  # an operator settled it meanwhile: their decision stands
            await trio.to_thread.run_sync(self.store.fail, item.id, now_utc(), None)

    async def retry_now(self, destination: str | None) -> int:
        n = await trio.to_thread.run_sync(self.store.retry_now, destination, now_utc())
        self.queue.wake()
        return n
