"""The ATM processor (ATMP) on a node: the bank's own terminals, from the registry in the node's database.

For each listener with ``atmp = true`` the node's pipeline asks an :class:`AtmGate` (the
:class:`~switch.exchange.ports.TerminalGate` protocol, steps in :mod:`switch.exchange.terminals`):

- **admission**: a request from a terminal the registry does not know, or that is out of service, closed or in
  supervisor mode, is answered 58 and never routed (:func:`atmp.admission.admit`);
- **keys**: the terminal's own TPK (or DUKPT BDK with the request's KSN, DE 53) for its PIN blocks, and its TAK
  for MACs, each with a two-key window across the terminal's key exchange (:mod:`switch.exchange.keywindow`);
- **its own messages** (:mod:`switch.runtime.atmlocal`): dispense confirmations (0220), key exchange, device
  status and echo (0800), terminal totals (0500);
- **dispense outcomes**: a terminal's reversal advice (0420) goes to the card's issuer like any reversal, and its
  meaning for the cash (notes dispensed, retracted, none) is recorded before the terminal is answered;
- **surcharge**: a withdrawal on a card that is not the bank's own (its route leaves the cells) carries the
  terminal's surcharge in DE 28.

The node keeps a copy of the registry in memory (refreshed every ``[atmp] sweep_interval_s``, and at once by
``bulkhead atm ...`` through the admin channel); every write goes to the database first, in a worker thread. The
primary process also sweeps: an approved withdrawal the terminal has said nothing about for ``confirm_timeout_s``
is taken as dispensed (``[atmp]``, switch.config.node.AtmpConfig).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from atmp import dispense, interface
from atmp.admission import Refusal, admit
from atmp.dispense import Action
from atmp.model import Cassette, DeviceStatus, Terminal, TerminalStatus
from atmp.storage import AtmStore
from hsm.api import Hsm, PinKey
from switch.config import AtmpConfig
from switch.config.links import MacConfig
from switch.contracts.network import Network
from switch.exchange import mac
from switch.exchange.keywindow import KeyWindow
from switch.exchange.mac import TAK_TYPE
from switch.exchange.ports import Upstream
from switch.model.codes import ResponseCode
from switch.model.message import FieldValue, Message
from switch.ops.metrics import TerminalStats
from switch.runtime import atmlocal
from switch.storage.atmjournal import LOOKUP_WINDOW, Position, Withdrawal, approved_withdrawals, find_withdrawal

log = logging.getLogger("bulkhead.atmp")

# How far before the last sweep's end the next one reads again: far beyond the longest exchange (a destination's
# timeout, an HSM call, the journal's commit timeout) so that a row committed late is never passed over.
SWEEP_MARGIN = timedelta(minutes=10)

# The terminals' MAC: ANSI X9.19 (ISO 9797-1 algorithm 3, padding 1) under the TAK, in DE 64 (DE 128 with a
# secondary bitmap), over the message up to the MAC field: the engine's MAC rule (switch.exchange.mac).
TERMINAL_MAC = MacConfig(key="", algorithm=3, padding=1, field="auto")
# The terminal's own fields on a routed message (README "ATM interface"): its KSN (DE 53), its device events (DE 60:
# a capture) and its note counts (DE 63). They are the ATMP's business: another network's DE 60 and 63 mean
# something else (VISA's DE 63 is its network data), and the issuer has no use for them. DE 28 is the host's to set
# (the terminal's configured surcharge, on a card of another bank only): whatever a terminal put there is dropped,
# or it could waive the bank's own ATM fee at a cell (C00000000) or charge any fee it liked.
_TERMINAL_FIELDS = (53, 60, 63)
# DE 53 of a DUKPT terminal is its key serial number: it says which key its PIN block is under, and goes no further
# than the PIN translation (kept in the message's metadata under this name until then).
KSN = "atm.ksn"


@dataclass
class TerminalKeys:
    """A terminal's working keys in the node: PIN and MAC key windows (current and previous)."""

    tpk: KeyWindow | None
    tak: KeyWindow | None


class AtmHost:
    """The ATMP of one node process; see the module docstring."""

    def __init__(self, config: AtmpConfig, engine: Any, hsm: Hsm | None, *, listeners: Mapping[str, Network],
                 own_destinations: frozenset[str], primary: bool,
                 route_of: Callable[[Message], str | None],
                 saf_enqueue: Callable[[list[tuple[str, Message, str]]], Awaitable[None]]) -> None:
        self.config = config
        self.store = AtmStore(engine)
        self.engine = engine  # the node's SQLAlchemy engine (named in storage modules only)
        self.hsm = hsm
        self.listeners = dict(listeners)
        self.own_destinations = own_destinations  # the bank's cells: a card routed there is not foreign
        self.primary = primary
        self.route_of = route_of  # the destination the routing table gives a message (a captured card's notice)
        self.saf_enqueue = saf_enqueue  # the node's store-and-forward queue (that notice waits there until taken)
        self.terminals: dict[str, Terminal] = {}
        self.keys: dict[str, TerminalKeys] = {}
        self.contacts: dict[str, datetime] = {}  # last contact per terminal, written with the next refresh
        # What this process recorded per terminal, by outcome (dispensed, partial, none, retracted, assumed,
        # duplicate, ignored, captured): the metrics' counters.
        self.outcomes: dict[tuple[str, str], int] = {}
        self.gates = {name: AtmGate(self, name, net) for name, net in self.listeners.items()}
        self._swept: Position | None = None  # where the last sweep's window ended (the journal's order)
        self._window_ns = int(config.key_window_s * 1e9)

    # -- the registry copy ------------------------------------------------------------------------------
    async def load(self, *, activated_ns: int | None = None) -> None:
        """Read the registry into memory (at start, on ``atm.reload``, every sweep interval, after a write).
        ``activated_ns``: the receive time of the message that made new keys current (a terminal's 162)."""
        contacts, self.contacts = self.contacts, {}
        if contacts:
            await trio.to_thread.run_sync(self.store.touch_many, contacts)
        terminals = await trio.to_thread.run_sync(self.store.terminals)
        self.terminals = {t.id: t for t in terminals}
        activated = time.perf_counter_ns() if activated_ns is None else activated_ns
        for t in terminals:
            self._sync_keys(t, activated)
        for gone in set(self.keys) - set(self.terminals):
            del self.keys[gone]

    def _sync_keys(self, t: Terminal, activated_ns: int) -> None:
        """The terminal's key windows follow the registry: a key changed there (its key exchange, in this or
        another node process; a TMK reload by the operator) becomes current, the old one previous for the window."""
        current = t.keys.current
        tpk, tak = (current.tpk, current.tak) if current is not None else (None, None)
        keys = self.keys.get(t.id)
        if keys is None:
            self.keys[t.id] = TerminalKeys(
                KeyWindow(tpk, self._window_ns) if tpk else None,
                KeyWindow(tak, self._window_ns) if tak else None)
            return
        for attr, value in (("tpk", tpk), ("tak", tak)):
            window: KeyWindow | None = getattr(keys, attr)
            if not value:
                setattr(keys, attr, None)
            elif window is None:
                setattr(keys, attr, KeyWindow(value, self._window_ns))
            else:
                window.install(value, activated_ns)

    def cash_changed(self, terminal_id: str, cassettes: tuple[Cassette, ...]) -> None:
        """A recorded outcome moved the terminal's cassettes (as written): the copy follows without a read."""
        terminal = self.terminals.get(terminal_id)
        if terminal is not None:
            self.terminals[terminal_id] = replace(terminal, cassettes=cassettes)

    def device_changed(self, terminal_id: str, device: DeviceStatus) -> None:
        terminal = self.terminals.get(terminal_id)
        if terminal is not None:
            self.terminals[terminal_id] = replace(terminal, device=device)

    def terminal(self, request: Message) -> Terminal | None:
        tid = request.text(41)
        return self.terminals.get(tid.strip()) if tid else None

    def touch(self, terminal: Terminal, at: datetime) -> None:
        self.contacts[terminal.id] = at

    # -- keys ---------------------------------------------------------------------------------------------
    def pin_key(self, request: Message) -> PinKey | None:
        """The key of the request's PIN blocks: its terminal's TPK at the request's receive time, or, for a DUKPT
        terminal, its BDK with the KSN of DE 53."""
        terminal = self.terminal(request)
        if terminal is None:
            return None
        if terminal.keys.dukpt_bdk:
            ksn = request.text(53) or request.meta.extra.get(KSN)
            return PinKey("BDK", terminal.keys.dukpt_bdk, ksn=ksn, format=terminal.keys.pin_format)
        keys = self.keys.get(terminal.id)
        if keys is None or keys.tpk is None:
            return None
        return PinKey("TPK", keys.tpk.at(request.meta.received_ns), format=terminal.keys.pin_format)

    def mac_keys(self, terminal: Terminal, received_ns: int) -> tuple[str, ...]:
        keys = self.keys.get(terminal.id)
        if keys is None or keys.tak is None:
            return ()
        return keys.tak.candidates(received_ns, time.perf_counter_ns())

    # -- the sweep ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Refresh the registry copy and, in the primary, give silent withdrawals their assumed outcome."""
        while True:
            await trio.sleep(self.config.sweep_interval_s)
            try:
                await self.load()
                if self.primary:
                    await self.sweep()
            except Exception as exc:  # a database hiccup: the next round tries again
                log.error("ATMP refresh failed (%s): %s", type(exc).__name__, exc)

    async def sweep(self, now: datetime | None = None) -> int:
        """Withdrawals approved more than ``confirm_timeout_s`` ago with no word from their terminal: recorded as
        dispensed in full by the host's note mix ("assumed"; a later word from the terminal replaces it). Returns
        how many."""
        now = now or datetime.now(UTC)
        until = now - timedelta(seconds=self.config.confirm_timeout_s)
        since = now - LOOKUP_WINDOW
        count = 0
        # Page by page through the window, from where the last sweep left off: every withdrawal before that point
        # has an outcome (the terminal's, or the one this sweep assumed), so a busy day never hides a silent one.
        # The journal's rows commit in the order their exchanges are answered, not received: a sweep starts again a
        # margin before where the last one ended, longer than any exchange (the outcomes read filter out the rest).
        after = None
        if self._swept is not None:
            since = max(since, self._swept[0] - SWEEP_MARGIN)
        while True:
            page, end = await trio.to_thread.run_sync(functools.partial(
                approved_withdrawals, self.engine, list(self.listeners), since, until, after=after))
            count += await self._assume(page, now)
            if page:
                last = max(page, key=lambda w: (w.received_at, w.row_id))
                self._swept = (last.received_at, last.row_id)
            if end is None:
                return count
            after = end

    async def _assume(self, withdrawals: list[Withdrawal], now: datetime) -> int:
        by_terminal: dict[str, list[Withdrawal]] = {}
        for w in withdrawals:
            if w.terminal_id in self.terminals:
                by_terminal.setdefault(w.terminal_id, []).append(w)
        count = 0
        for terminal_id, silent in by_terminal.items():
            keys = [w.key for w in silent]
            known = await trio.to_thread.run_sync(self.store.outcomes_for, terminal_id, keys)
            for w in silent:
                if w.key in known:
                    continue
                recorded = await atmlocal.record(self.gate_of(w.source_link), self.terminals[terminal_id], w,
                                                 dispense.assumed(w.amount), now=now)
                if recorded.action is Action.NEW:
                    count += 1
                    log.warning("terminal %s: withdrawal STAN %s approved at %s: no word from the terminal after "
                                "%d s, taken as dispensed", terminal_id, w.stan,
                                w.received_at.isoformat(timespec="seconds"), self.config.confirm_timeout_s)
        return count

    async def withdrawal(self, listener: str, terminal_id: str, stan: str, transmitted: str) -> Withdrawal | None:
        """The approved withdrawal a terminal's confirmation or reversal names (the journal's record of it)."""
        return await trio.to_thread.run_sync(lambda: find_withdrawal(
            self.engine, source_link=listener, terminal_id=terminal_id, stan=stan, transmitted=transmitted))

    def gate_of(self, listener: str) -> AtmGate:
        return self.gates.get(listener) or next(iter(self.gates.values()))

    def stats(self) -> list[TerminalStats]:
        """Each terminal for the metrics and `bulkhead status` (read on the metrics thread: copies only)."""
        outcomes: dict[str, dict[str, int]] = {}
        for (terminal_id, kind), count in list(self.outcomes.items()):
            outcomes.setdefault(terminal_id, {})[kind] = count
        out = []
        for t in list(self.terminals.values()):
            contact = self.contacts.get(t.id) or t.last_contact
            out.append(TerminalStats(
                terminal=t.id, in_service=t.status is TerminalStatus.IN_SERVICE,
                cassettes=[(c.position, c.denomination, c.currency, c.remaining) for c in t.cassettes],
                low_cash=bool(t.low_cash), faults=t.device.faults,
                last_contact=contact.timestamp() if contact is not None else None,
                outcomes=outcomes.get(t.id, {})))
        return out

    def counted(self, terminal_id: str, kind: str) -> None:
        key = (terminal_id, kind)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


class AtmGate:
    """The ATMP's gate for one listener of terminals (switch.exchange.ports.TerminalGate)."""

    def __init__(self, host: AtmHost, listener: str, network: Network) -> None:
        self.host = host
        self.listener = listener
        self.network = network

    def admit(self, request: Message) -> Refusal | None:
        terminal = self.host.terminal(request)
        refusal = admit(terminal, request.mti, request.processing_code)
        if refusal is None and terminal is not None:
            self.host.touch(terminal, datetime.now(UTC))
            if 52 in request.fields and self.host.pin_key(request) is None:
                # A terminal's PIN block is under its own key, never a zone key shared with the issuer: with no key
                # to read it under (no key exchange yet, a DUKPT request without its KSN) it goes nowhere.
                return Refusal(ResponseCode.SYSTEM_MALFUNCTION.value,
                               "a PIN block but no PIN key for the terminal (no key exchange yet, or no KSN)")
        return refusal

    def checks_mac(self, request: Message) -> bool:
        """A MAC terminal MACs everything (README "ATM interface", MAC) but its key exchange request (161): a terminal
        whose working keys were lost or whose TMK was reloaded has no TAK to MAC it with, and what the answer gives
        away (keys under the TMK, their check values) takes nothing from anyone. Its key confirmation (162) is MACed
        under the new TAK it confirms: only the holder of its TMK can make new keys current."""
        terminal = self.host.terminal(request)
        if terminal is None or not terminal.keys.mac:
            return False
        return not (request.is_network and request.network_code == interface.KEY_EXCHANGE)

    async def verify_mac(self, request: Message, body: bytes) -> bool:
        terminal, hsm = self.host.terminal(request), self.host.hsm
        if terminal is None or hsm is None:
            return False
        if request.is_network and request.network_code == interface.KEY_CONFIRMATION:
            keys = await self._confirmation_keys(terminal, request)
        else:
            keys = self.host.mac_keys(terminal, request.meta.received_ns)
        if not keys:
            return False
        good = await mac.verify(hsm, TERMINAL_MAC, keys, request, body, key_type=TAK_TYPE)
        if good:
            mac.strip(request)  # its MAC belongs to the terminal's line, not to where the request goes next
        return good

    async def _confirmation_keys(self, terminal: Terminal, request: Message) -> tuple[str, ...]:
        """The TAK a key confirmation (162) is MACed under: the pending one, read from the registry when this
        process's copy has none (the 161 was answered by another node process, or before a reconnection); the
        current one for a repeat of a confirmation already applied."""
        pending = terminal.keys.pending
        if pending is None:
            fresh = await trio.to_thread.run_sync(self.host.store.terminal, terminal.id)
            pending = fresh.keys.pending if fresh is not None else None
        if pending is not None:
            return (pending.tak,)
        return self.host.mac_keys(terminal, request.meta.received_ns)

    def local(self, request: Message) -> bool:
        return atmlocal.is_local(request)

    async def answer(self, request: Message) -> Message:
        return await atmlocal.answer(self, request)

    def prepare(self, request: Message, destination: Upstream) -> dict[int, FieldValue]:
        fields = request.fields
        fields.pop(28, None)  # the host's to set (below): a terminal's own is dropped, in the journal too
        own = {number: fields.pop(number) for number in _TERMINAL_FIELDS if number in fields}
        ksn = own.get(53)
        if isinstance(ksn, str):
            request.meta.extra[KSN] = ksn
        terminal = self.host.terminal(request)
        if terminal is None or not terminal.surcharge or destination.name in self.host.own_destinations \
                or not destination.network.acquirer_fee:
            return own
        if request.mti in ("0200", "0201") and request.transaction_type == atmlocal.WITHDRAWAL:
            # The fee the terminal disclosed to the holder of a card that is not the bank's own (README "ATM
            # processing (ATMP)"): x+n 8, D = a debit to the cardholder, in DE 49's currency.
            request.fields[28] = interface.build_surcharge(terminal.surcharge)
        return own

    def follows(self, request: Message, response: Message) -> bool:
        return atmlocal.follows(request, response)

    async def after(self, request: Message, response: Message) -> None:
        await atmlocal.routed(self, request, response)

    def signs(self, request: Message) -> bool:
        """Every answer to a MAC terminal is MACed under its current TAK (to a 162: the TAK just confirmed) but the
        answer to a key exchange request (161), which it may have no TAK to check."""
        terminal = self.host.terminal(request)
        return terminal is not None and terminal.keys.mac and not (
            request.is_network and request.network_code == interface.KEY_EXCHANGE)

    async def sign(self, response: Message, request: Message) -> bytes:
        terminal, hsm = self.host.terminal(request), self.host.hsm
        keys = self.host.keys.get(terminal.id) if terminal is not None else None
        if hsm is None or keys is None or keys.tak is None:
            return self.network.encode(response)
        return await mac.sign(hsm, TERMINAL_MAC, keys.tak.current, self.network, response, key_type=TAK_TYPE)
