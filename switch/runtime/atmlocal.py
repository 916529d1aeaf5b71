"""What the ATMP answers itself on the ATM host interface (README "ATM interface"): a terminal's dispense
confirmation (0220), network management with key exchange and device status (0800), terminal totals (0500); and
what a terminal's reversal advice (0420, routed to the card's issuer) means for its cash.

Every effect is in the database before the answer is built: the terminal sends its confirmation or reversal again
until it is answered, and the ATMP's records are idempotent by the withdrawal (terminal, STAN, DE 7), so a crash
anywhere in between leaves nothing half done.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import trio

from atmp import interface
from atmp.errors import AtmFieldError
from atmp.model import Terminal
from hsm.errors import HsmError
from switch.model.codes import ResponseCode
from switch.model.masking import mask_pan
from switch.model.message import Message
from switch.storage.atmjournal import Withdrawal, find_withdrawal, host_deposits

if TYPE_CHECKING:
    from switch.runtime.atmhost import AtmGate

log = logging.getLogger("bulkhead.atmp")

LOCAL_MTIS = frozenset({"0220", "0221", "0500", "0501"})
SIGN_ON, SIGN_OFF, ECHO = "001", "002", "301"
KEY_REQUEST, KEY_CONFIRM, DEVICE_STATUS = "161", "162", "281"
TPK_TYPE, TAK_TYPE, TMK_TYPE = "002", "003", "002"  # payShield key type codes (TPK and TMK share 002)
CAPTURED = "C"  # DE 60 of a confirmation: the card was retained


async def answer(gate: AtmGate, request: Message) -> Message:
    """The answer to a request the ATMP handles itself (its effects durable first)."""
    terminal = gate.host.terminal(request)
    if terminal is None:  # removed from the registry since it was admitted
        return gate.network.make_response(request, ResponseCode.NOT_PERMITTED_TERMINAL)
    try:
        if request.is_network:
            return await _network(gate, terminal, request)
        if request.mti in ("0220", "0221"):
            return await _confirmation(gate, terminal, request)
        return await _totals(gate, terminal, request)
    except AtmFieldError as exc:
        log.info("terminal %s: %s %s", terminal.id, request.mti, exc)
        return gate.network.make_response(request, ResponseCode.FORMAT_ERROR)


# -- dispense outcomes -------------------------------------------------------------------------------------
async def _withdrawal(gate: AtmGate, terminal: Terminal, request: Message) -> Withdrawal | None:
    original = interface.original_of(request)
    host = gate.host
    return await trio.to_thread.run_sync(lambda: find_withdrawal(
        host.engine, source_link=gate.listener, terminal_id=terminal.id, stan=original.stan,
        transmitted=original.transmitted))


async def _confirmation(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0220/0221: the notes went out and were taken. 0230 00 recorded (again for a repeat), 25 no such approved
    withdrawal."""
    withdrawal = await _withdrawal(gate, terminal, request)
    if withdrawal is None:
        log.warning("terminal %s: confirmation of STAN %s names no approved withdrawal", terminal.id,
                    interface.original_of(request).stan)
        return gate.network.make_response(request, ResponseCode.UNABLE_TO_LOCATE)
    notes = interface.note_counts(request)
    await _record(gate, terminal, withdrawal, "dispensed", withdrawal.amount, notes, None)
    if CAPTURED in (request.text(60) or ""):
        await _captured(gate, terminal, request)
    return gate.network.make_response(request, ResponseCode.APPROVED)


async def reversal_outcome(gate: AtmGate, request: Message, response: Message) -> None:
    """A terminal's reversal advice of a withdrawal, answered (or queued) upstream: what went out of the cassettes,
    recorded before the terminal is answered. A reversal of a withdrawal that was never approved moved no cash."""
    terminal = gate.host.terminal(request)
    if terminal is None:
        return
    try:
        withdrawal = await _withdrawal(gate, terminal, request)
        notes = interface.note_counts(request)
        dispensed = interface.dispensed_amount(request)
    except AtmFieldError as exc:
        log.warning("terminal %s: reversal advice not recorded for its cash: %s", terminal.id, exc)
        return
    if withdrawal is None:
        return
    reason = request.text(39)
    if reason == interface.RETRACTED:
        kind = "retracted"
    elif dispensed:
        kind = "partial"
    else:
        kind = "none"
    await _record(gate, terminal, withdrawal, kind, min(dispensed, withdrawal.amount), notes, reason)


async def _record(gate: AtmGate, terminal: Terminal, withdrawal: Withdrawal, kind: str, dispensed: int,
                  notes: interface.NoteCounts | None, reason: str | None) -> None:
    host = gate.host
    now = datetime.now(UTC)
    recorded = await trio.to_thread.run_sync(lambda: host.store.record_outcome(
        terminal_id=terminal.id, key=withdrawal.key, kind=kind, approved=withdrawal.amount, dispensed=dispensed,
        currency=withdrawal.currency, notes=notes.dispensed if notes else None,
        rejected=notes.rejected if notes else None, reason=reason, at=now, approved_at=withdrawal.received_at))
    if recorded.new:
        host.counted(kind)
        log.info("terminal %s: withdrawal STAN %s %s (%s)", terminal.id, withdrawal.stan, kind, recorded.describe())
    await host.load()  # the cassettes changed: status, metrics and the low-cash alert read the copy


async def _captured(gate: AtmGate, terminal: Terminal, request: Message) -> None:
    """The terminal retained the card: an alert, the terminal's event, and a notice (0620) to the card's issuer so
    that the card is blocked there (queued until the issuer acknowledges it)."""
    host = gate.host
    pan = request.pan
    shown = mask_pan(pan) if pan else "unknown card"
    log.warning("ALERT terminal %s: card %s captured", terminal.id, shown)
    host.counted("captured")
    await trio.to_thread.run_sync(lambda: host.store.record_event(
        terminal.id, "card_captured", shown, datetime.now(UTC)))
    if not pan:
        return
    notice = Message("0620", {2: pan, 7: request.text(7) or "", 11: request.text(11) or "", 41: terminal.id,
                              60: "CAPTURED"})
    destination = host.route_of(notice)
    if destination is None:
        log.warning("terminal %s: no route for the capture notice of card %s", terminal.id, shown)
        return
    await host.saf_enqueue([(destination, notice, request.meta.trace_id)])


# -- network management ------------------------------------------------------------------------------------
async def _network(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    code = request.network_code
    respond = gate.network.make_response
    if code == KEY_REQUEST:
        return await _new_keys(gate, terminal, request)
    if code == KEY_CONFIRM:
        return await _confirm_keys(gate, terminal, request)
    if code == DEVICE_STATUS:
        status = interface.device_status(request)
        await trio.to_thread.run_sync(lambda: gate.host.store.set_device_status(
            terminal.id, status, datetime.now(UTC)))
        if status.faults():
            log.warning("ALERT terminal %s: device fault: %s", terminal.id, ", ".join(status.faults()))
        await gate.host.load()
        response = respond(request, ResponseCode.APPROVED)
    elif code in (SIGN_ON, SIGN_OFF, ECHO):
        response = respond(request, ResponseCode.APPROVED)
    else:
        return respond(request, ResponseCode.INVALID_TRANSACTION)
    if terminal.rekey_due:  # an operator asked for new keys (bulkhead atm rekey): the terminal asks with 161
        response.fields[48] = interface.REKEY
    return response


async def _new_keys(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0800/161: a new TPK and TAK from the HSM, under the terminal's TMK; pending until the terminal confirms."""
    hsm, respond = gate.host.hsm, gate.network.make_response
    if hsm is None or not terminal.keys.tmk:
        log.warning("terminal %s: key exchange refused: %s", terminal.id,
                    "no HSM" if hsm is None else "no terminal master key loaded (bulkhead atm load-tmk)")
        return respond(request, ResponseCode.SECURITY_VIOLATION if hsm else ResponseCode.SYSTEM_MALFUNCTION)
    try:
        tpk = await hsm.generate_key(TPK_TYPE, zmk=terminal.keys.tmk, zmk_type=TMK_TYPE)
        tak = await hsm.generate_key(TAK_TYPE, zmk=terminal.keys.tmk, zmk_type=TMK_TYPE)
    except HsmError as exc:
        log.error("terminal %s: key generation failed (HSM error %s)", terminal.id, exc.code)
        return respond(request, ResponseCode.SYSTEM_MALFUNCTION)
    assert tpk.under_zmk is not None and tak.under_zmk is not None
    await trio.to_thread.run_sync(lambda: gate.host.store.set_pending_keys(
        terminal.id, tpk.under_lmk, tpk.kcv, tak.under_lmk, tak.kcv))
    log.info("terminal %s: new keys sent (TPK kcv %s, TAK kcv %s), pending its confirmation", terminal.id,
             tpk.kcv, tak.kcv)
    response = respond(request, ResponseCode.APPROVED)
    response.fields[48] = interface.key_exchange_answer(tpk.under_zmk, tpk.kcv, tak.under_zmk, tak.kcv)
    return response


async def _confirm_keys(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0800/162: the terminal installed the keys whose check values it sends; they become current from this
    message on (requests it sent before are read under the previous ones for the key window)."""
    tpk_kcv, tak_kcv = interface.key_confirmation(request)
    host = gate.host
    confirmed = await trio.to_thread.run_sync(lambda: host.store.confirm_keys(
        terminal.id, tpk_kcv, tak_kcv, datetime.now(UTC)))
    if not confirmed:
        log.warning("terminal %s: key confirmation does not match the keys sent; keys unchanged", terminal.id)
        return gate.network.make_response(request, ResponseCode.FORMAT_ERROR)
    await host.load()
    fresh = host.terminals.get(terminal.id)
    if fresh is not None and fresh.keys.tpk and fresh.keys.tak:
        host.keys_confirmed(fresh, fresh.keys.tpk, fresh.keys.tak, request.meta.received_ns)
    log.info("terminal %s: new keys in use (TPK kcv %s, TAK kcv %s)", terminal.id, tpk_kcv, tak_kcv)
    return gate.network.make_response(request, ResponseCode.APPROVED)


# -- terminal totals ------------------------------------------------------------------------------------------
async def _totals(gate: AtmGate, terminal: Terminal, request: Message) -> Message:
    """0500: the terminal's totals for a business day against the host's: 0510 00 they agree, 95 they do not."""
    reported = interface.terminal_totals(request, today=datetime.now(UTC).date())
    day: date = reported.day
    host = gate.host
    deposits = await trio.to_thread.run_sync(lambda: host_deposits(
        host.engine, gate.listener, terminal.id, day))
    report = await trio.to_thread.run_sync(lambda: host.store.record_terminal_totals(
        terminal.id, reported, deposits, datetime.now(UTC)))
    if not report.agrees:
        log.warning("ALERT terminal %s: totals for %s do not agree with the host's: %s", terminal.id, day,
                    report.describe())
    return gate.network.make_response(request, ResponseCode.APPROVED if report.agrees else
                                      ResponseCode.RECONCILIATION_ERROR)
