"""One simulated ATM: its session with the host and its customers, one at a time, as a real ATM serves them.

The session (:data:`TRANSITIONS`): the terminal connects (``down`` -> ``connected``), exchanges keys when it has none
or the host asked for new ones (0800/161, 0800/162), signs on (0800/001) and reports its devices (0800/281): it is then
``in_service``. A connection that goes down takes it back to ``down``, and it reconnects with backoff and signs on
again (its keys stay). A host that refuses it (sign-on or key exchange answered with anything but 00, or a key
exchange answered without keys: a host without an ATMP) makes it ``refused`` for the rest of the run. ``stopped``
once the run is over and it signed off.

A customer (one :meth:`Terminal._customer`): a card from the fleet's pool, a transaction drawn from the mix, its
0200 with the PIN block under the terminal's TPK, the answer. An approved withdrawal goes to the dispenser
(:func:`switch.sim.atmmsgs.dispense`), its notes leave the cassettes and its advice goes into the store-and-forward
queue: a 0220 confirmation, or a 0420 for a partial dispense (22), a dispenser fault before the first note (22) or
cash retracted (RT). A financial request whose answer never comes (timeout, or the connection went down) is
reversed: 0420 reason 68, nothing dispensed. Beside the customers, the forwarder sends the queue's advices one at a
time until each is answered (0221/0421 repeats), the echo task sends 0800/301 every ``echo_every_s`` and any 0810
carrying DE 48 ``RK`` has the terminal exchange keys again.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import trio

from switch.contracts.network import Network
from switch.model.message import Message
from switch.sim.atmcash import Cassettes, note_counts
from switch.sim.atmconn import Connection, Dropped
from switch.sim.atmfields import (
    DEVICE_STATUS,
    ECHO,
    KEY_CONFIRMATION,
    KEY_EXCHANGE,
    REASON_NO_ANSWER,
    SIGN_OFF,
    SIGN_ON,
    AtmAnswerError,
    Kind,
    asks_rekey,
    device_status,
    key_confirmation,
    parse_key_offer,
    parse_statement,
)
from switch.sim.atmkeys import TerminalKeys
from switch.sim.atmmsgs import Card, Numbering, confirmation, dispense, network_management, request, reversal
from switch.sim.atmreport import FleetReport, TerminalCash
from switch.sim.atmsaf import Advice, StoreAndForward
from switch.sim.atmshared import (
    DEPOSIT_AMOUNTS,
    TRANSFER_AMOUNTS,
    CardPool,
    Customers,
    SimCard,
    TerminalSettings,
    Window,
)
from switch.wire.framing import Framer

log = logging.getLogger("bulkhead.sim.atm")

# The session's states and what moves it: (state, event) -> next state; anything else is a bug (ValueError).
TRANSITIONS: Mapping[tuple[str, str], str] = {
    ("down", "connected"): "connected",
    ("down", "refused"): "refused",
    ("down", "stop"): "stopped",
    ("connected", "in_service"): "in_service",
    ("connected", "refused"): "refused",
    ("connected", "dropped"): "down",
    ("connected", "stop"): "stopped",
    ("in_service", "dropped"): "down",
    ("in_service", "stop"): "stopped",
    ("refused", "stop"): "refused",
    ("refused", "dropped"): "refused",
    ("stopped", "dropped"): "stopped",
    ("stopped", "stop"): "stopped",
}


Connect = Callable[[], Awaitable[trio.abc.Stream]]


class Terminal:
    def __init__(self, terminal_id: str, number: int, keys: TerminalKeys, cassettes: Cassettes,
                 settings: TerminalSettings, network: Network, framer: Callable[[], Framer], connect: Connect,
                 report: FleetReport, cards: CardPool, window: Window, rng: random.Random) -> None:
        self.id = terminal_id
        self.keys = keys
        self.settings = settings
        self.network = network
        self.framer = framer
        self.connect = connect
        self.report = report
        self.cards = cards
        self.window = window
        self.rng = rng
        self.numbering = Numbering(rng, number)
        self.cash = TerminalCash(cassettes)
        report.cash[terminal_id] = self.cash
        self.saf = StoreAndForward()
        self.state = "down"
        self.conn: Connection | None = None
        self.rekey_due = False
        self.refusal = ""  # why the host refused the terminal
        self._up = trio.Event()  # set while in service, and once refused or stopped (waiters then look at state)
        self._saf_wakeup = trio.Event()  # an advice was queued, or the terminal came back in service
        self._drained = trio.Event()  # the queue went empty
        self._rekey = trio.Event()
        self._kinds = [kind for kind in settings.mix if settings.mix[kind] > 0]
        self._weights = [settings.mix[kind] for kind in self._kinds]

    def __repr__(self) -> str:
        return f"Terminal({self.id}, {self.state})"

    # -- the session -------------------------------------------------------------------------------------------------
    def _move(self, event: str) -> None:
        found = TRANSITIONS.get((self.state, event))
        if found is None:
            raise ValueError(f"terminal {self.id}: {event!r} in state {self.state!r}")
        self.state = found
        if found in ("in_service", "refused", "stopped"):
            self._up.set()
        elif self._up.is_set():
            self._up = trio.Event()

    async def _connection(self) -> Connection | None:
        """The connection once in service; None once the terminal is refused or stopped."""
        while True:
            conn = self.conn
            if self.state == "in_service" and conn is not None:
                if not conn.closed.is_set():
                    return conn
                await trio.lowlevel.checkpoint()  # it just went down: _keep_connected is about to say so
                continue
            if self.state in ("refused", "stopped"):
                return None
            await self._up.wait()

    async def up(self) -> bool:
        """Wait until the terminal is in service (True) or refused (False)."""
        return await self._connection() is not None

    async def run(self, customers: Customers, *, drain_s: float) -> None:
        """The terminal's life: keep connected, serve customers until ``customers`` says the run is over, forward what
        it owes for up to ``drain_s`` seconds more, sign off."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_connected)
            nursery.start_soon(self._forward)
            nursery.start_soon(self._echo)
            nursery.start_soon(self._rekeyer)
            try:
                while await self._connection() is not None and await customers.next():
                    await self._customer()
                with trio.move_on_after(drain_s):
                    while len(self.saf) and self.state != "refused":
                        self._drained = trio.Event()
                        await self._drained.wait()
            finally:
                self.report.saf_left += len(self.saf)
                with trio.move_on_after(min(2.0, self.settings.timeout_s)) as scope:
                    scope.shield = True
                    await self._sign_off()
                self._move("stop")
                self._drained.set()
                nursery.cancel_scope.cancel()

    async def _keep_connected(self) -> None:
        backoff = 0.05
        while self.state not in ("refused", "stopped"):
            try:
                stream = await self.connect()
            except OSError as exc:
                log.debug("terminal %s: cannot connect: %s", self.id, exc)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)
                continue
            if self.state == "stopped":  # the run ended while the terminal was connecting
                await stream.aclose()
                return
            self.report.connects += 1
            conn = Connection(stream, self.framer(), self.network, self.keys, self.report, self._answered)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.run)
                self._move("connected")
                try:
                    up = await self._bring_up(conn)
                    if self.state == "stopped":  # the run ended while the terminal was signing on
                        nursery.cancel_scope.cancel()
                        return
                    if up:
                        backoff = 0.05
                        self.conn = conn
                        self._move("in_service")
                        self._saf_wakeup.set()
                    else:
                        self._move("refused")
                        self._drained.set()
                        log.warning("terminal %s refused by the host: %s", self.id, self.refusal)
                        self.report.refused_terminals += 1
                except Dropped:
                    pass
                if self.state == "in_service":
                    await conn.closed.wait()
                nursery.cancel_scope.cancel()
            self.conn = None
            if self.state in ("connected", "in_service"):
                self.report.drops += 1
                self._move("dropped")
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)

    async def _bring_up(self, conn: Connection) -> bool:
        """Keys (when it has none, or the host asked), sign-on, device status: True once in service."""
        if (not self.keys.ready or self.rekey_due) and not await self._exchange_keys(conn) and not self.keys.ready:
            return False
        answer = await self._netmgmt(conn, SIGN_ON)
        if answer is None or answer.response_code != "00":
            self.refusal = f"sign-on answered {answer.response_code if answer else 'nothing in time'}"
            return False
        await self._netmgmt(conn, DEVICE_STATUS, device_status())
        return True

    async def _netmgmt(self, conn: Connection, code: str, de48: str | None = None) -> Message | None:
        msg = network_management(code, self.id, self.numbering.stan(), datetime.now(UTC), de48)
        answer = await conn.exchange(msg, self.settings.timeout_s)
        self.report.netmgmt[(code, "timeout" if answer is None else answer.response_code or "??")] += 1
        return answer

    async def _exchange_keys(self, conn: Connection) -> bool:
        """0800/161, import the keys under the TMK, 0800/162 with their check values; True once installed."""
        self.rekey_due = False
        answer = await self._netmgmt(conn, KEY_EXCHANGE)
        if answer is None or answer.response_code != "00":
            self.refusal = f"key exchange answered {answer.response_code if answer else 'nothing in time'}"
            self.report.key_exchanges["refused" if answer is not None else "timeout"] += 1
            return False
        try:
            offer = parse_key_offer(answer)
        except AtmAnswerError as exc:
            self.refusal = f"key exchange answered 00 without keys (a host without an ATMP?): {exc}"
            self.report.key_exchanges["no_keys"] += 1
            return False
        tpk_kcv, tak_kcv, agree = self.keys.accept(offer)
        if not agree:
            self.report.key_exchanges["kcv_mismatch"] += 1
        confirmed = await self._netmgmt(conn, KEY_CONFIRMATION, key_confirmation(tpk_kcv, tak_kcv))
        if confirmed is None or confirmed.response_code != "00":
            self.keys.refused()
            self.refusal = f"key confirmation answered {confirmed.response_code if confirmed else 'nothing in time'}"
            self.report.key_exchanges["refused"] += 1
            return False
        self.keys.confirmed()
        self.report.key_exchanges["installed"] += 1
        log.info("terminal %s: new keys installed (TPK kcv %s, TAK kcv %s)", self.id, tpk_kcv, tak_kcv)
        return True

    def _answered(self, answer: Message) -> None:
        if asks_rekey(answer) and not self.rekey_due:
            self.report.rekeys_asked += 1
            self.rekey_due = True
            self._rekey.set()

    async def _rekeyer(self) -> None:
        """A key exchange whenever the host asks for one (DE 48 RK), between the terminal's other messages."""
        while True:
            await self._rekey.wait()
            self._rekey = trio.Event()
            conn = await self._connection()
            if conn is None:
                return
            if self.rekey_due:
                try:
                    await self._exchange_keys(conn)
                except Dropped:
                    self.rekey_due = True  # the next sign-on exchanges keys first

    async def _echo(self) -> None:
        if self.settings.echo_every_s <= 0:
            return
        while True:
            await trio.sleep(self.settings.echo_every_s)
            conn = await self._connection()
            if conn is None:
                return
            try:
                await self._netmgmt(conn, ECHO)
            except Dropped:
                continue

    async def _sign_off(self) -> None:
        conn = self.conn
        if self.state == "in_service" and conn is not None:
            with contextlib.suppress(Dropped):
                await self._netmgmt(conn, SIGN_OFF)

    # -- store and forward -------------------------------------------------------------------------------------------
    def _owe(self, advice: Advice) -> None:
        self.saf.put(advice)
        self._saf_wakeup.set()

    async def _forward(self) -> None:
        settings = self.settings
        while True:
            advice = self.saf.head()
            if advice is None:
                await self._saf_wakeup.wait()
                self._saf_wakeup = trio.Event()
                continue
            conn = await self._connection()
            if conn is None:
                return
            msg, on_wire = advice.next_send()
            if not on_wire:  # lost on the way: the terminal waits for an answer that cannot come
                self.report.advices_lost += 1
                await trio.sleep(settings.advice_timeout_s)
                self.report.advice_timeouts += 1
                continue
            self.report.advices_sent[msg.mti] += 1
            try:
                answer = await conn.exchange(msg, settings.advice_timeout_s)
            except Dropped:
                continue  # sent again (as a repeat) once the terminal is back in service
            if answer is None:
                self.report.advice_timeouts += 1
                continue
            code = answer.response_code or "??"
            self.report.advice_answers[(answer.mti, code)] += 1
            if self.saf.answered(code):
                if not len(self.saf):
                    self._drained.set()
            else:
                await trio.sleep(settings.retry_s)

    # -- customers ---------------------------------------------------------------------------------------------------
    async def _customer(self) -> None:
        card = await self.cards.take()
        if card is None:
            self.report.no_card += 1
            await trio.sleep(1.0)  # every card captured or retired: nothing left to do but wait for the run's end
            return
        captured, retired = False, False
        try:
            captured, retired = await self._transaction(card)
        finally:
            self.cards.give_back(card, captured=captured, retired=retired)

    def _pick(self) -> tuple[Kind, int]:
        kind = self.rng.choices(self._kinds, self._weights)[0]
        if kind is Kind.WITHDRAWAL:
            offers = self.cash.cassettes.offers(self.settings.amounts)
            if offers:
                return kind, self.rng.choice(offers)
            self.report.out_of_cash += 1  # an ATM offers only what its cassettes make: an inquiry instead
            return Kind.INQUIRY, 0
        if kind is Kind.DEPOSIT:
            return kind, self.rng.choice(DEPOSIT_AMOUNTS)
        if kind is Kind.TRANSFER:
            return kind, self.rng.choice(TRANSFER_AMOUNTS)
        return kind, 0

    async def _transaction(self, sim: SimCard) -> tuple[bool, bool]:
        """One customer's transaction; (card captured, card retired)."""
        conn = await self._connection()
        if conn is None:
            return False, False
        kind, amount = self._pick()
        card = sim.card
        new_pin = None
        if kind is Kind.PINCHANGE:
            new_pin = self.settings.new_pin if self.settings.new_pin and sim.pin == sim.original_pin \
                else sim.original_pin
        now = datetime.now(UTC)
        stan = self.numbering.stan()
        msg = request(kind, self.id, stan, self.numbering.rrn(stan, now), now, card, amount=amount,
                      currency=self.settings.currency, pin_block=self.keys.pin_block(sim.pin, card.pan),
                      new_pin_block=self.keys.pin_block(new_pin, card.pan) if new_pin is not None else None)
        sent_at = trio.current_time()
        try:
            answer = await conn.exchange(msg, self.settings.timeout_s)
        except Dropped:
            self.report.dropped[kind.value] += 1
            answer = None
        else:
            if answer is None:
                self.report.timeouts[kind.value] += 1
        if answer is None:
            if kind.reversible:  # the terminal never dispensed (or finished): the issuer undoes it
                self._owe(Advice(reversal(msg, self.id, self.numbering.stan(), datetime.now(UTC), card,
                                          reason=REASON_NO_ANSWER)))
                if kind is Kind.WITHDRAWAL:
                    self.report.dispense["no_answer"] += 1
            return False, kind is Kind.PINCHANGE and new_pin != sim.pin
        code = answer.response_code or "??"
        self.report.requests[(kind.value, code)] += 1
        if self.window.inside(sent_at):
            self.report.measured[code] += 1
            self.report.latency(kind, trio.current_time() - sent_at)
        if code != "00":
            return False, False
        return self._approved(kind, msg, answer, sim, amount, new_pin), False

    def _approved(self, kind: Kind, msg: Message, answer: Message, sim: SimCard, amount: int,
                  new_pin: str | None) -> bool:
        """What the terminal does with an approved answer; True when it captured the card."""
        if kind is Kind.WITHDRAWAL:
            return self._dispense(msg, sim.card, amount)
        if kind is Kind.DEPOSIT:
            self.cash.deposits += 1
            self.cash.deposited_amount += amount
        elif kind is Kind.PINCHANGE and new_pin is not None:
            sim.pin = new_pin
            self.report.pin_changes += 1
        elif kind is Kind.STATEMENT:
            try:
                self.report.statements["lines"] += len(parse_statement(answer.text(48)))
            except AtmAnswerError as exc:
                self.report.statements["malformed"] += 1
                log.warning("terminal %s: mini statement: %s", self.id, exc)
        return False

    def _dispense(self, msg: Message, card: Card, amount: int) -> bool:
        cassettes = self.cash.cassettes
        notes = cassettes.mix(amount)
        if notes is None:  # the terminal offered only amounts it can make: nothing took notes meanwhile
            raise AssertionError(f"terminal {self.id}: cannot make {amount} any more")
        outcome = dispense(self.rng, self.settings.rates, cassettes, notes)
        cassettes.take(outcome.notes, retracted=outcome.kind == "retracted")
        self.cash.dispensed_amount += outcome.amount
        self.report.dispense[outcome.kind] += 1
        now, stan = datetime.now(UTC), self.numbering.stan()
        reason = outcome.reason
        if reason is None:
            advice = confirmation(msg, self.id, stan, now, card, note_counts(outcome.notes), captured=outcome.captured)
        else:
            advice = reversal(msg, self.id, stan, now, card, reason=reason, dispensed=outcome.amount,
                              notes=note_counts(outcome.notes))
        self.report.captured += outcome.captured
        self._owe(Advice(advice, lose_first=outcome.lost))
        return outcome.captured
