"""What the ATMP answers itself on the ATM host interface (README "ATM interface"): a terminal's dispense
confirmation (0220), network management with key exchange and device status (0800), terminal totals (0500); and
what a terminal's routed messages mean for its cash and totals (a reversal advice's dispense outcome, an approved
deposit and its later counts).

Every effect is in the database before the answer is built: the terminal sends its confirmation or reversal again
until it is answered, and the ATMP's records are idempotent by the withdrawal (terminal, STAN, DE 7; judged by
:func:`atmp.dispense.judge`), so a crash anywhere in between leaves nothing half done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import trio

from atmp import dispense, interface
from atmp.dispense import Action, DispenseOutcome
from atmp.errors import AtmFieldError, AtmpError
from atmp.interface import KeyExchangeAnswer, NoteCounts
from atmp.model import Cassette, DeviceStatus, Terminal
from atmp.records import Recorded
from atmp.storage import AtmStore
from hsm.api import Hsm
from hsm.errors import HsmError
from switch.contracts.network import Network
from switch.model.codes import ResponseCode, is_approval
from switch.model.masking import mask_pan
from switch.model.message import Message
from switch.storage.atmjournal import Withdrawal

log = logging.getLogger("bulkhead.atmp")

CONFIRMATIONS = frozenset({"0220", "0221"})
TOTALS = frozenset({"0500", "0501"})
WITHDRAWAL, DEPOSIT = "01", "21"  # DE 3 transaction types whose cash the ATMP follows
TPK_TYPE, TAK_TYPE, TMK_TYPE = "002", "003", "002"  # payShield key type codes (a TPK and a TMK share 002)


class Host(Protocol):
    """The ATMP of a node process as these answers use it (switch.runtime.atmhost.AtmHost)."""

    @property
    def store(self) -> AtmStore: ...

    @property
    def hsm(self) -> Hsm | None: ...

    @property
    def route_of(self) -> Callable[[Message], str | None]: ...

    @property
    def saf_enqueue(self) -> Callable[[list[tuple[str, Message, str]]], Awaitable[None]]: ...

    def terminal(self, request: Message) -> Terminal | None: ...

    def counted(self, terminal_id: str, kind: str) -> None: ...

    async def load(self, *, activated_ns: int | None = None) -> None: ...

    def cash_changed(self, terminal_id: str, cassettes: tuple[Cassette, ...]) -> None: ...

    def device_changed(self, terminal_id: str, device: DeviceStatus) -> None: ...

    async def withdrawal(self, listener: str, terminal_id: str, stan: str, transmitted: str) -> Withdrawal | None:
        ...


class AtmGate(Protocol):
    """The gate of one listener of terminals (switch.runtime.atmhost.AtmGate)."""

    @property
    def host(self) -> Host: ...

    @property
    def listener(self) -> str: ...

    @property
    def network(self) -> Network: ...


def is_local(request: Message) -> bool:
    """Whether the ATMP answers ``request`` itself: network management, terminal totals, and the confirmation of a
    withdrawal (a deposit's 0220, the advice of a higher count, goes to the card's issuer)."""
    if request.is_network or request.mti in TOTALS:
        return True
    return request.mti in CONFIRMATIONS and request.transaction_type != DEPOSIT


async def answer(gate: AtmGate, request: Message) -> Message:
    """The answer to a request the ATMP handles itself (its effects durable first)."""
    terminal = gate.host.terminal(request)
    if terminal is None:  # removed from the registry since it was admitted
        return gate.network.make_response(request, ResponseCode.NOT_PERMITTED_TERMINAL)
    try:
        if request.is_network:
            return await _network(gate, terminal, request)
        if request.mti in CONFIRMATIONS:
            return await _confirmation(gate, terminal, request)
        return await _totals(gate, terminal, request)
    except AtmpError as exc:
        log.info("terminal %s: %s refused: %s", terminal.id, request.mti, exc)
        return gate.network.make_response(request, ResponseCode.FORMAT_ERROR)


# -- dispense outcomes -------------------------------------------------------------------------------------
async def _withdrawal(gate: AtmGate, terminal: Terminal, request: Message) -> Withdrawal | None:
    """The approved withdrawal DE 90 of ``request`` names (AtmFieldError: no usable DE 90)."""
    text = request.text(90)
    if text is None:
        raise AtmFieldError(90, "an advice must name its original")
    original = interface.parse_original(text)
    return await gate.host.withdrawal(gate.listener, terminal.id, original.stan, original.transmission)


def _notes(request: Message) -> NoteCounts | None:
    text = request.text(63)
    return interface.parse_note_counts(text) if text else None


async def _confirmation(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0220/0221: the notes went out and were taken. 0230 00 recorded (again for a repeat), 25 no such approved
    withdrawal."""
    withdrawal = await _withdrawal(gate, terminal, request)
    if withdrawal is None:
        log.warning("terminal %s: a confirmation names no approved withdrawal (%s)", terminal.id,
                    request.text(90))
        return gate.network.make_response(request, ResponseCode.UNABLE_TO_LOCATE)
    outcome = dispense.confirmation(withdrawal.amount, _notes(request),
                                    captured=interface.card_captured(request.text(60)))
    recorded = await record(gate, terminal, withdrawal, outcome)
    if recorded.newly_captured:
        await _captured(gate, terminal, request)
    return gate.network.make_response(request, ResponseCode.APPROVED)


def follows(request: Message, response: Message) -> bool:
    """Whether a routed exchange of a terminal changes its cash or totals: a withdrawal's or deposit's reversal, an
    approved deposit, a deposit's advice of a higher count."""
    kind = request.transaction_type
    if kind not in (WITHDRAWAL, DEPOSIT) or request.is_network:
        return False
    if request.is_reversal:
        return True
    return kind == DEPOSIT and is_approval(response.response_code or "")


async def routed(gate: AtmGate, request: Message, response: Message) -> None:
    """Record what a routed exchange of :func:`follows` did to the terminal's cash or totals."""
    terminal = gate.host.terminal(request)
    if terminal is None:
        return
    try:
        if request.transaction_type == DEPOSIT:
            await _deposit(gate, terminal, request, response)
        else:
            await _reversal(gate, terminal, request)
    except AtmpError as exc:
        log.warning("terminal %s: %s not recorded for its cash: %s", terminal.id, request.mti, exc)


async def _reversal(gate: AtmGate, terminal: Terminal, request: Message) -> None:
    """A withdrawal's reversal advice: what actually went out of the cassettes. A reversal of a withdrawal that was
    never approved moved no cash."""
    withdrawal = await _withdrawal(gate, terminal, request)
    if withdrawal is None:
        return
    dispensed = min(interface.dispensed_amount(request.text(95)), withdrawal.amount)
    outcome = dispense.reversal(withdrawal.amount, dispensed, request.text(39), _notes(request),
                                captured=interface.card_captured(request.text(60)))
    recorded = await record(gate, terminal, withdrawal, outcome)
    if recorded.newly_captured:
        await _captured(gate, terminal, request)


async def _deposit(gate: AtmGate, terminal: Terminal, request: Message, response: Message) -> None:
    """A deposit approved (0200), counted lower (0420, DE 95: the final count) or higher (0220 advice, DE 4: the
    difference): the host's side of the terminal's deposit totals, at the amount counted last."""
    host = gate.host
    now = datetime.now(UTC)
    store = host.store
    if request.mti in ("0200", "0201"):
        if not is_approval(response.response_code or ""):
            return
        key, amount = interface.request_key(request), request.amount or 0
        await trio.to_thread.run_sync(lambda: store.record_deposit(
            terminal.id, key, amount, business_date=now.date(), at=now, currency=request.currency))
        return
    named = interface.advice_key(request)  # the message DE 90 names
    if not request.is_reversal:  # a higher count: DE 4 is what the first count missed, added once per advice
        advice = interface.request_key(request)
        added = await trio.to_thread.run_sync(lambda: store.adjust_deposit(
            terminal.id, named, advice, request.amount or 0, at=now))
        if not added:
            log.info("terminal %s: deposit count advice %s: a repeat, or no such deposit", terminal.id, advice)
        return
    text = request.text(90) or ""
    if interface.parse_original(text).mti.startswith("022"):  # the terminal takes back its higher-count advice
        await trio.to_thread.run_sync(lambda: store.unadjust_deposit(terminal.id, named, at=now))
        return
    # A lower count: DE 95 is the deposit's final amount.
    final = interface.dispensed_amount(request.text(95))
    stored = await trio.to_thread.run_sync(lambda: store.deposit_amount(terminal.id, named))
    if stored is None:
        log.warning("terminal %s: %s names no recorded deposit", terminal.id, request.mti)
        return
    await trio.to_thread.run_sync(lambda: store.record_deposit(
        terminal.id, named, final, business_date=now.date(), at=now, currency=request.currency))


async def record(gate: AtmGate, terminal: Terminal, withdrawal: Withdrawal, outcome: DispenseOutcome, *,
                 now: datetime | None = None) -> Recorded:
    """Record a withdrawal's outcome with the cassettes it moves (one transaction), then alert and refresh."""
    host = gate.host
    at = now or datetime.now(UTC)
    recorded = await trio.to_thread.run_sync(lambda: host.store.record_outcome(
        terminal.id, withdrawal.key, outcome, business_date=withdrawal.received_at.date(), at=at,
        currency=withdrawal.currency, approved_at=withdrawal.received_at))
    host.counted(terminal.id, recorded.stored.outcome.kind.value if recorded.action in (
        Action.NEW, Action.REPLACED) else recorded.action.value)
    log.info("terminal %s: withdrawal STAN %s: %s %s (%s)", terminal.id, withdrawal.stan, recorded.action.value,
             recorded.stored.outcome.kind.value, recorded.why)
    if not recorded.mix_found:
        log.warning("ALERT terminal %s: the notes of STAN %s could not be worked out from its cassettes",
                    terminal.id, withdrawal.stan)
    if recorded.became_low:
        log.warning("ALERT terminal %s: low cash in cassette %s", terminal.id,
                    ", ".join(str(p) for p in recorded.became_low))
    host.cash_changed(terminal.id, recorded.cassettes)  # status, metrics and admission read the copy
    return recorded


async def _captured(gate: AtmGate, terminal: Terminal, request: Message) -> None:
    """The terminal retained the card: an alert, the terminal's event, and a notice (0620) to the card's issuer so
    that the card is blocked there (queued until the issuer acknowledges it)."""
    host = gate.host
    pan = request.pan
    shown = mask_pan(pan) if pan else "unknown card"
    log.warning("ALERT terminal %s: card %s captured", terminal.id, shown)
    host.counted(terminal.id, "captured")
    await trio.to_thread.run_sync(lambda: host.store.record_event(
        terminal.id, "card_captured", shown, at=datetime.now(UTC)))
    if not pan:
        return
    fields: dict[int, str | bytes] = {2: pan, 3: "000000", 7: request.text(7) or "", 11: request.text(11) or "",
                                      41: terminal.id, 60: "CAPTURED"}
    notice = Message("0620", fields)
    destination = host.route_of(notice)
    if destination is None:
        log.warning("terminal %s: no route for the capture notice of card %s", terminal.id, shown)
        return
    await host.saf_enqueue([(destination, notice, request.meta.trace_id)])


# -- network management ------------------------------------------------------------------------------------
async def _network(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    code = request.network_code
    respond = gate.network.make_response
    if code == interface.KEY_EXCHANGE:
        return await _new_keys(gate, terminal, request)
    if code == interface.KEY_CONFIRMATION:
        return await _confirm_keys(gate, terminal, request)
    if code == interface.DEVICE_STATUS:
        status = interface.parse_device_status(request.text(48) or "")
        host = gate.host
        await trio.to_thread.run_sync(lambda: host.store.set_device_status(terminal.id, status, datetime.now(UTC)))
        if status.faults:
            log.warning("ALERT terminal %s: device fault: %s", terminal.id, ", ".join(status.faults))
        host.device_changed(terminal.id, status)
        response = respond(request, ResponseCode.APPROVED)
    elif code in (interface.SIGN_ON, interface.SIGN_OFF, interface.ECHO):
        response = respond(request, ResponseCode.APPROVED)
    else:
        return respond(request, ResponseCode.INVALID_TRANSACTION)
    if terminal.rekey_due:  # an operator asked for new keys (bulkhead atm rekey): the terminal asks with 161
        response.fields[48] = interface.REKEY
    return response


async def _new_keys(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0800/161: a new TPK and TAK from the HSM, under the terminal's TMK; pending until the terminal confirms."""
    host, respond = gate.host, gate.network.make_response
    hsm, tmk = host.hsm, terminal.keys.tmk
    if hsm is None or not tmk:
        log.warning("terminal %s: key exchange refused: %s", terminal.id,
                    "no HSM" if hsm is None else "no terminal master key loaded (bulkhead atm load-tmk)")
        return respond(request, ResponseCode.SECURITY_VIOLATION if hsm else ResponseCode.SYSTEM_MALFUNCTION)
    try:
        tpk = await hsm.generate_key(TPK_TYPE, zmk=tmk, zmk_type=TMK_TYPE)
        tak = await hsm.generate_key(TAK_TYPE, zmk=tmk, zmk_type=TMK_TYPE)
    except HsmError as exc:
        log.error("terminal %s: key generation failed (HSM error %s)", terminal.id, exc.code)
        return respond(request, ResponseCode.SYSTEM_MALFUNCTION)
    if tpk.under_zmk is None or tak.under_zmk is None:
        log.error("terminal %s: the HSM gave no key under the TMK", terminal.id)
        return respond(request, ResponseCode.SYSTEM_MALFUNCTION)
    await trio.to_thread.run_sync(lambda: host.store.set_pending_keys(
        terminal.id, tpk.under_lmk, tak.under_lmk, (tpk.kcv, tak.kcv)))
    await host.load()  # the pending TAK: the terminal MACs its confirmation (162) under it
    log.info("terminal %s: new keys sent (TPK kcv %s, TAK kcv %s), pending its confirmation", terminal.id,
             tpk.kcv, tak.kcv)
    response = respond(request, ResponseCode.APPROVED)
    response.fields[48] = interface.build_key_exchange_answer(
        KeyExchangeAnswer(tpk.under_zmk, tpk.kcv, tak.under_zmk, tak.kcv))
    return response


async def _confirm_keys(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0800/162: the terminal installed the keys whose check values it sends; they become current from this
    message on (what it sent before is read under the previous ones for the key window)."""
    tpk_kcv, tak_kcv = interface.parse_key_confirmation(request.text(48) or "")
    host = gate.host
    confirmed = await trio.to_thread.run_sync(lambda: host.store.confirm_keys(
        terminal.id, tpk_kcv, tak_kcv, datetime.now(UTC)))
    if not confirmed:
        log.warning("terminal %s: key confirmation does not match the keys sent; keys unchanged", terminal.id)
        return gate.network.make_response(request, ResponseCode.FORMAT_ERROR)
    await host.load(activated_ns=request.meta.received_ns)
    log.info("terminal %s: new keys in use (TPK kcv %s, TAK kcv %s)", terminal.id, tpk_kcv, tak_kcv)
    return gate.network.make_response(request, ResponseCode.APPROVED)


# -- terminal totals ------------------------------------------------------------------------------------------
async def _totals(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0500: the terminal's totals for a business day against the host's: 0510 00 they agree, 95 they do not."""
    reported = interface.parse_totals(request)
    now = datetime.now(UTC)
    day = interface.business_date(reported.business_day, now.date())
    host = gate.host
    totals = await trio.to_thread.run_sync(lambda: host.store.record_terminal_totals(
        terminal.id, day, reported.totals, at=now, currency=reported.currency))
    comparison = totals.comparison
    if not comparison.agree:
        log.warning("ALERT terminal %s: totals of %s do not agree with the host's:\n%s", terminal.id, day,
                    comparison.report())
    return gate.network.make_response(
        request, ResponseCode.APPROVED if comparison.agree else ResponseCode.RECONCILIATION_ERROR)
