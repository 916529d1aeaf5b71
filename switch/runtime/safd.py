"""The store-and-forward forwarder: delivers queued reversals and advices, in order per destination.

Semantics follow jPOS-EE's SAF: an entry is retried until the destination answers it; a 91/96 (destination
cannot process now) or no answer counts as not delivered; the first retry goes out as the repeat MTI (0401,
0421); retries back off exponentially up to a ceiling; entries past their expiry are marked expired and kept
for the operator. Only the oldest pending entry of a destination is ever in flight, so a destination sees
reversals in the order they were queued.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import trio

from switch.contracts.network import Rejected
from switch.exchange.pipeline import now_utc
from switch.exchange.reversal import from_payload, repeat_mti
from switch.infra.datakey import SealError
from switch.model.errors import EncodeError
from switch.runtime.links.mux import DuplicateKeyError
from switch.runtime.links.outbound import LinkDown, transmission_time

if TYPE_CHECKING:
    from switch.runtime.node import Node
    from switch.storage.saf import SafItem

log = logging.getLogger("bulkhead.saf")

# Answers that mean "not processed, send it again" rather than an acknowledgement.
RETRY_CODES = frozenset({"91", "96"})


class SafForwarder:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.cfg = node.config.saf

    async def run(self) -> None:
        poll = self.cfg.poll_interval_ms / 1000
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a database hiccup must not stop forwarding for good
                log.error("saf: sweep failed: %s", type(exc).__name__)
            with trio.move_on_after(poll):
                await self.node.saf_wake.wait()
            self.node.saf_wake = trio.Event()

    async def sweep(self) -> None:
        store = self.node.saf
        now = now_utc()
        expired = await trio.to_thread.run_sync(store.expire, now)
        if expired:
            log.warning("saf: %d entries expired undelivered", expired)
        self.node.metrics.saf_pending = await trio.to_thread.run_sync(store.pending_count, None)
        destinations = await trio.to_thread.run_sync(store.destinations_with_pending)
        async with trio.open_nursery() as nursery:
            for destination in destinations:
                if self.node.link_is_up(destination):
                    nursery.start_soon(self.drain, destination)

    async def drain(self, destination: str) -> None:
        """Send due entries of one destination, oldest first, until one is not acknowledged."""
        store = self.node.saf
        while self.node.link_is_up(destination):
            now = now_utc()
            item = await trio.to_thread.run_sync(store.next_due, destination, now)
            if item is None:
                return
            if not await self.deliver(item):
                return

    async def deliver(self, item: SafItem) -> bool:
        store = self.node.saf
        link = self.node.outbound[item.destination]
        try:
            msg = from_payload(self.node.keys.open(item.payload, item.destination.encode()))
        except SealError:
            # Another node's key, or tampering: the entry can never be sent; keep it, marked, for the operator.
            log.error("saf: entry #%d cannot be opened with this node's data key; marking failed", item.id)
            await trio.to_thread.run_sync(store.fail, item.id, now_utc(), None)
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
        await trio.to_thread.run_sync(store.record_attempt, item.id, now, now + timedelta(milliseconds=delay_ms))
        response = None
        with trio.move_on_after(self.cfg.send_timeout_ms / 1000):
            try:
                response = await link.request(msg)
            except (LinkDown, DuplicateKeyError):
                response = None
            except EncodeError as exc:
                # The destination's format cannot carry this entry: it never will, and it must not block
                # every entry behind it. Marked failed for the operator.
                log.error("saf: #%d cannot be encoded for %s (%s); marking failed", item.id, item.destination, exc)
                await trio.to_thread.run_sync(store.fail, item.id, now_utc(), None)
                return True
        if isinstance(response, Rejected):
            # The network refused the entry unprocessed: it would refuse it again; marked failed for the operator.
            log.error("saf: #%d %s to %s rejected by the network (%s); marking failed", item.id, msg.mti,
                      item.destination, response.reason or "no reason given")
            await trio.to_thread.run_sync(store.fail, item.id, now_utc(), None)
            return True
        code = response.response_code if response is not None else None
        if code is not None and code not in RETRY_CODES:
            await trio.to_thread.run_sync(store.acknowledge, item.id, code, now_utc())
            log.info("saf: #%d %s to %s acknowledged (%s)", item.id, msg.mti, item.destination, code)
            return True
        log.info("saf: #%d %s to %s not acknowledged (%s); next try in %.1fs", item.id, msg.mti,
                 item.destination, code or "no answer", delay_ms / 1000)
        return False

    async def retry_now(self, destination: str | None) -> int:
        n = await trio.to_thread.run_sync(self.node.saf.retry_now, destination, now_utc())
        self.node.saf_wake.set()
        return n
