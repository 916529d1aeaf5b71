"""Request processing: small steps over a per-transaction context (jPOS TransactionManager participants).

validate -> route -> security (PIN translation) -> forward -> respond, journaled before the response leaves.
A step that fails decides the response code; the response is sent only once the outcome is final.
Per-transaction state lives in :class:`Exchange`, never on the node.

Every request gets exactly one response:
- a request that fails validation gets 30 (format error);
- no route (or a reject rule) gets 92;
- a PIN block that the HSM cannot decipher under the source's key gets 55; no HSM answer, 96;
- no usable link, or no answer within the destination's timeout, gets 91; a financial request that was sent
  and not answered is reversed through the store-and-forward queue (0400, repeated as 0401);
- unless the destination's stand-in policy covers the request: then the switch approves it (00, its own
  approval code) and queues an advice (0120/0220, or 0121/0221 if the original was sent) instead of a reversal;
- advices and reversals (which the receiver must accept, ISO 8583 MTI rules) that cannot be delivered now are
  accepted by the switch (00) and queued for delivery.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import trio

from hsm.api import InlinePinTranslation, PinKey, translate_pin
from hsm.errors import HsmError
from switch.contracts.network import NetMgmt, Network, Rejected
from switch.exchange.reversal import (
    REASON_TIMEOUT,
    REASON_UNDELIVERED,
    build_reversal,
    build_stand_in_advice,
    repeat_mti,
)
from switch.model.codes import ResponseCode, is_approval
from switch.model.errors import EncodeError, FieldError, RemoteProtocolError
from switch.model.message import Message
from switch.routing import RouteDecision, RouteQuery, RoutingTable, StandIn
from switch.runtime.links.connection import Connection, ConnectionClosed
from switch.runtime.links.mux import DuplicateKeyError
from switch.runtime.links.outbound import Answer, LinkDown, OutboundLink, transmission_time
from switch.wire.framing import Frame

if TYPE_CHECKING:
    from switch.infra.datakey import DataKeys
    from switch.runtime.node import Node

log = logging.getLogger("bulkhead.pipeline")

# Fields of the upstream response that belong to the request's identity: the source gets its own values
# back, whatever the destination echoed.
_IDENTITY_FIELDS = frozenset({2, 3, 4, 7, 11, 12, 13, 32, 33, 37, 41, 42, 49, 90})


@dataclass(slots=True)
class Exchange:
    request: Message
    source: str
    scheme: Network
    conn: Connection
    frame: Frame
    table: RoutingTable
    received_at: datetime
    t0: float
    decision: RouteDecision | None = None
    link: OutboundLink | None = None
    upstream_us: int | None = None
    t1: float = 0.0  # perf_counter when the request went upstream
    response: Message | None = None
    outcome: str = "error"
    sent_upstream: bool = False
    delivered: bool = False  # the response went to the source's connection
    reversal_queued: bool = False
    notes: list[str] = field(default_factory=list)
    _pan_hash: str | None = None

    def pan_hash(self, keys: DataKeys) -> str | None:
        """The request PAN's keyed hash, computed once per exchange (the journal and the stand-in card status
        cache both need it)."""
        if self._pan_hash is None and self.request.pan:
            self._pan_hash = keys.pan_hash(self.request.pan)
        return self._pan_hash


def _is_must_accept(msg: Message) -> bool:
    """Advices (xx2x) and reversals are accepted by their receiver; the switch holds them if it must."""
    return msg.is_advice or msg.is_reversal


class Step(enum.Enum):
    """Where the synchronous steps of an exchange (:func:`prepare`) leave it."""

    ANSWERED = "answered"  # x.response is decided
    FORWARD = "forward"  # x.link is chosen and up: send the request
    PIN = "pin"  # as FORWARD, after the PIN block is translated (an HSM round trip)
    UNAVAILABLE = "unavailable"  # no usable link: 91, hold it, or stand in (may write to the database)
    NETWORK = "network"  # a peer's key exchange: the new key goes through the HSM before the answer


Job = Callable[[], Awaitable[None]]


async def process(node: Node, x: Exchange, step: Step | None = None) -> None:
    """Decide ``x`` (from ``step`` when :func:`start` already took the synchronous steps), then answer it."""
    try:
        await _decide(node, x, prepare(node, x) if step is None else step)
    except trio.Cancelled:
        raise
    except Exception as exc:  # a bug in one exchange must not take the node down; answer 96
        _internal_error(x, exc)
    await _finish(node, x)


def _internal_error(x: Exchange, exc: Exception) -> None:
    log.error("exchange %s: internal error %s", x.request.meta.trace_id, type(exc).__name__,
              exc_info=log.isEnabledFor(logging.DEBUG))
    x.response = x.scheme.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION)
    x.outcome = "error"


def prepare(node: Node, x: Exchange) -> Step:
    """The steps that need no waiting: validate, network management, route, choose the link."""
    msg = x.request
    try:
        x.scheme.validate(msg)
    except FieldError as exc:
        log.info("exchange %s from %s: format error in field %d: %s", msg.meta.trace_id, x.source,
                 exc.field, exc.reason)
        x.response = x.scheme.make_response(msg, ResponseCode.FORMAT_ERROR)
        x.outcome = "format_error"
        return Step.ANSWERED
    if node.draining:
        # The node is stopping: say so at once rather than start an exchange it may not finish.
        x.response = x.scheme.make_response(msg, ResponseCode.ISSUER_INOPERATIVE)
        x.outcome = "unavailable"
        return Step.ANSWERED
    if msg.is_network:
        # Network management from a peer, answered by the switch itself as the link's network says.
        session = node.session_of(x.source)
        event = session.inbound(msg)
        if event.kind is NetMgmt.KEY_EXCHANGE:
            return Step.NETWORK  # the new key goes through the HSM first
        if event.kind is NetMgmt.CUTOVER:
            node.cutover(x.source, event.business_date)
        x.response = session.answer(msg, event, ResponseCode.APPROVED)
        x.outcome = "network"
        return Step.ANSWERED
    x.decision = decision = x.table.route(RouteQuery(
        pan=msg.pan, processing_code=msg.processing_code, mti=msg.mti, source_link=x.source,
        currency=msg.currency, amount=msg.amount,
    ))
    if decision.destination is None:
        x.response = x.scheme.make_response(msg, decision.response_code or ResponseCode.NO_ROUTE)
        x.outcome = "no_route"
        return Step.ANSWERED
    link_name = node.selector.choose(decision.destination, node.link_is_up)
    link = node.outbound.get(link_name) if link_name else None
    if link is None:
        x.link = node.outbound.get(decision.destination.links[0])
        return Step.UNAVAILABLE
    x.link = link
    if 52 in msg.fields and node.terminal_keys.key_for(x.source, msg) is not None:
        return Step.PIN
    return Step.FORWARD


async def _decide(node: Node, x: Exchange, step: Step) -> None:
    if step is Step.ANSWERED:
        return
    if step is Step.NETWORK:
        await _key_exchange(node, x)
        return
    if step is Step.UNAVAILABLE:
        await _unavailable(node, x)
        return
    link = x.link
    assert link is not None
    if step is Step.PIN and not await _translate_pin(node, x, link):
        return
    await _forward(node, x, link, _timeout(x, link))


async def _key_exchange(node: Node, x: Exchange) -> None:
    """A peer's key exchange: the new key imported through the HSM and checked before the answer says so."""
    session = node.session_of(x.source)
    event = session.inbound(x.request)
    installed = event.key is not None and await node.install_key(x.source, event.key)
    x.response = session.answer(x.request, event,
                                ResponseCode.APPROVED if installed else ResponseCode.SYSTEM_MALFUNCTION)
    x.outcome = "network"


def _timeout(x: Exchange, link: OutboundLink) -> float:
    destination = x.decision.destination if x.decision is not None else None
    return ((destination.timeout_ms if destination is not None else None) or link.config.timeout_ms) / 1000


# -- the common path, without a task ------------------------------------------------------------------
# An exchange that needs no HSM and no database write besides its journal row (the common case: validate,
# route, forward, answer) runs as continuations: :func:`start` inline in the source's link reader, then
# :func:`_on_upstream` in the destination's link reader, then the journal commit report. Parking a task twice
# per exchange (upstream answer, journal commit) and waking it again cost about a quarter of the node's event
# loop in a fin-sim profile. Anything else (PIN translation, no link, no answer, a failed journal write or
# send) continues in a task from where the continuation stopped, with exactly the semantics of :func:`process`.

def start(node: Node, x: Exchange) -> None:
    """Run ``x`` from its request, inline in the link reader that decoded it. Never raises."""
    try:
        step = prepare(node, x)
        if step is Step.PIN and node.inline_hsm is not None:
            assert x.link is not None
            step = Step.FORWARD if _translate_pin_now(node, x, x.link, node.inline_hsm) else Step.ANSWERED
        if step is Step.FORWARD:
            _send(node, x)
            return
    except Exception as exc:
        try:
            _internal_error(x, exc)
        except Exception as exc2:  # not even a 96 can be built for this request: it is dropped, and said so
            log.critical("exchange %s: unanswerable (%s, then %s)", x.request.meta.trace_id,
                         type(exc).__name__, type(exc2).__name__)
            node.exchange_done(x)
            return
        step = Step.ANSWERED
    if step is Step.ANSWERED:
        _respond(node, x)
    else:
        node.spawn(x, lambda: process(node, x, step))


def _send(node: Node, x: Exchange) -> None:
    link, msg = x.link, x.request
    assert link is not None
    x.sent_upstream = True
    x.t1 = time.perf_counter()
    try:
        link.send(msg, _timeout(x, link), lambda response: _on_upstream(node, x, response))
    except LinkDown:
        x.sent_upstream = False
        node.spawn(x, lambda: _after_no_answer(node, x))
        return
    except DuplicateKeyError:
        x.sent_upstream = False
        _duplicate(x)
    except EncodeError as exc:
        x.sent_upstream = False
        _not_encodable(x, link, exc)
    else:
        node.awaiting_upstream[id(x)] = x
        return
    _respond(node, x)


def _on_upstream(node: Node, x: Exchange, response: Answer) -> None:
    """The destination answered (or did not, ``None``): called by its link reader or the node's timer."""
    node.awaiting_upstream.pop(id(x), None)
    x.upstream_us = int((time.perf_counter() - x.t1) * 1e6)
    if response is None:
        node.spawn(x, lambda: _after_no_answer(node, x))
        return
    try:
        if isinstance(response, Rejected):
            _rejected(x, response)
        else:
            _answered(node, x, response)
    except Exception as exc:
        _internal_error(x, exc)
    _respond(node, x)


async def _after_no_answer(node: Node, x: Exchange) -> None:
    try:
        await _unavailable(node, x)
    except Exception as exc:
        _internal_error(x, exc)
    await _finish(node, x)


def _respond(node: Node, x: Exchange) -> None:
    """Journal ``x``, then send its response when the row is committed (from the commit report)."""
    assert x.response is not None
    try:
        body = x.scheme.encode(x.response)
    except Exception:
        node.spawn(x, lambda: _finish(node, x))  # the task path reverses what cannot be answered
        return

    def committed(failure: BaseException | None) -> None:
        # Runs in the event loop's callback runner (the commit report) or the timer: nothing may escape.
        if failure is not None:
            node.spawn(x, lambda: _after_journal_failure(node, x, failure))
            return
        try:
            x.conn.send_frame(body, reply_to=x.frame)
            x.delivered = True
        except ConnectionClosed:
            node.spawn(x, lambda: _undelivered(node, x))
            return
        except Exception as exc:  # a bug: the exchange is lost to its source, the node goes on
            log.critical("exchange %s: response not sent: %s", x.request.meta.trace_id, type(exc).__name__)
        node.exchange_done(x)

    try:
        node.journal_submit(x, committed)
    except Exception as exc:
        committed(exc)


async def _after_journal_failure(node: Node, x: Exchange, failure: BaseException) -> None:
    await _deliver(node, x, await _journal_failed(node, x, failure))


# HSM error codes that mean the PIN block itself is bad (the cardholder's or terminal's data, not the switch):
# 20 PIN block does not contain valid values, 24 PIN length out of range (payShield host command manual).
_PIN_DATA_ERRORS = frozenset({"20", "24"})


_PinArgs = tuple[PinKey, PinKey, str, str]  # source key, destination key, PIN block (hex), account


def _pin_args(node: Node, x: Exchange, link: OutboundLink) -> bool | _PinArgs:
    """What translating DE 52 from the source's key (terminal TPK: CA, zone ZPK: CC) to the destination's
    ZPK takes; True when there is nothing to translate (a source without a configured key forwards DE 52 as it
    came: source and destination share the zone key), False with ``x.response`` set when it cannot be done."""
    msg = x.request
    source_key = node.terminal_keys.key_for(x.source, msg)
    if source_key is None:
        return True
    destination_key = node.link_keys.get(link.name)
    block = msg.fields[52]
    pan = msg.pan
    if destination_key is None or node.hsm is None or not isinstance(block, bytes) or not pan or len(pan) < 13:
        why = ("no pin_key on " + link.name) if destination_key is None else "no PAN or PIN block to translate"
        log.warning("exchange %s: PIN cannot be translated (%s)", msg.meta.trace_id, why)
        x.response = x.scheme.make_response(msg, ResponseCode.SYSTEM_MALFUNCTION if destination_key is None
                                            else ResponseCode.FORMAT_ERROR)
        x.outcome = "error"
        return False
    account = pan[-13:-1]  # 12 right-most digits without the check digit (ISO 9564-1 format 0)
    return source_key, destination_key, block.hex().upper(), account


async def _translate_pin(node: Node, x: Exchange, link: OutboundLink) -> bool:
    """Translate DE 52 for ``link`` through the node's HSM. Returns False with ``x.response`` set when the
    exchange ends here."""
    args = _pin_args(node, x, link)
    if isinstance(args, bool):
        return args
    source, destination, block, account = args
    assert node.hsm is not None
    try:
        result = await translate_pin(node.hsm, source, destination, block, account)
    except HsmError as exc:
        return _pin_failed(x, exc)
    x.request.fields[52] = bytes.fromhex(result.pin_block)
    return True


def _translate_pin_now(node: Node, x: Exchange, link: OutboundLink, hsm: InlinePinTranslation) -> bool:
    """:func:`_translate_pin` with the in-process software HSM, without a task (its operations are
    synchronous: tens of microseconds of CPU, less than handing the exchange to a task)."""
    args = _pin_args(node, x, link)
    if isinstance(args, bool):
        return args
    source, destination, block, account = args
    try:
        result = hsm.translate_pin_now(source, destination, block, account)
    except HsmError as exc:
        return _pin_failed(x, exc)
    x.request.fields[52] = bytes.fromhex(result.pin_block)
    return True


def _pin_failed(x: Exchange, exc: HsmError) -> bool:
    bad_block = exc.code in _PIN_DATA_ERRORS
    log.info("exchange %s: PIN translation failed (HSM error %s)", x.request.meta.trace_id, exc.code)
    x.response = x.scheme.make_response(
        x.request, ResponseCode.INCORRECT_PIN if bad_block else ResponseCode.SYSTEM_MALFUNCTION)
    x.outcome = "declined" if bad_block else "error"
    x.notes.append(f"PIN translation failed: HSM error {exc.code}")
    return False


async def _forward(node: Node, x: Exchange, link: OutboundLink, timeout: float) -> None:
    msg = x.request
    response: Answer = None
    t1 = time.perf_counter()
    try:
        x.sent_upstream = True
        # None when the destination does not answer within ``timeout`` (or the connection drops): 91 below.
        # The deadline is served by the node's timer, not a cancel scope per exchange (switch.runtime.links.waiter).
        response = await link.request(msg, timeout)  # the destination's own framing header, not the source's
    except LinkDown:
        x.sent_upstream = False
    except DuplicateKeyError:
        x.sent_upstream = False
        _duplicate(x)
        return
    except EncodeError as exc:
        x.sent_upstream = False
        _not_encodable(x, link, exc)
        return
    x.upstream_us = int((time.perf_counter() - t1) * 1e6)
    if response is None:
        await _unavailable(node, x)
        return
    if isinstance(response, Rejected):
        _rejected(x, response)
        return
    _answered(node, x, response)


def _rejected(x: Exchange, rejection: Rejected) -> None:
    """The destination's network refused the request unprocessed: the acquirer gets the network's code for it
    (nothing was approved, so nothing is reversed)."""
    log.warning("exchange %s: rejected by %s's network (%s); answering %s", x.request.meta.trace_id,
                x.link.name if x.link else "-", rejection.reason or "no reason", rejection.code.value)
    x.response = x.scheme.make_response(x.request, rejection.code)
    x.outcome = "rejected"


def _duplicate(x: Exchange) -> None:
    x.response = x.scheme.make_response(x.request, ResponseCode.DUPLICATE)
    x.outcome = "declined"


def _not_encodable(x: Exchange, link: OutboundLink, exc: EncodeError) -> None:
    # The destination's format cannot carry this request (a field too long for its spec).
    log.warning("exchange %s: cannot encode for %s: %s", x.request.meta.trace_id, link.name, exc)
    x.response = x.scheme.make_response(x.request, ResponseCode.FORMAT_ERROR)
    x.outcome = "format_error"


def _answered(node: Node, x: Exchange, response: Message) -> None:
    x.response = _answer_from_upstream(x, response)
    x.outcome = "approved" if is_approval(x.response.response_code) else "declined"
    if x.decision is not None and x.decision.destination is not None and x.decision.destination.stand_in \
            and x.request.pan:
        # Only destinations that may be stood in for feed the card status cache.
        node.card_status.record(x.pan_hash(node.keys) or "", x.response.response_code)


def _answer_from_upstream(x: Exchange, upstream: Message) -> Message:
    code = upstream.response_code or ResponseCode.SYSTEM_MALFUNCTION
    answer = x.scheme.make_response(x.request, code)
    # A partial approval (10) carries the approved amount in field 4 (and 6): the issuer's, not the request's.
    identity = _IDENTITY_FIELDS - {4, 6} if code == ResponseCode.APPROVED_PARTIAL else _IDENTITY_FIELDS
    for number, value in upstream.fields.items():
        if number not in identity:
            answer.fields[number] = value
    return answer


async def _unavailable(node: Node, x: Exchange) -> None:
    """No answer (link down, timeout, connection lost): 91, or hold what the receiver must accept."""
    msg = x.request
    destination = x.link.name if x.link else None
    if _is_must_accept(msg) and destination is not None:
        held = msg.copy()
        if x.sent_upstream:
            held.mti = repeat_mti(held.mti)  # the destination may have seen it: the next send is a repeat
        try:
            await node.saf_enqueue(destination, held, x.request.meta.trace_id)
        except Exception as exc:
            # Not stored, so not accepted: the acquirer keeps it and sends it again.
            log.error("exchange %s: could not hold %s for %s: %s", msg.meta.trace_id, msg.mti, destination,
                      type(exc).__name__)
            x.response = x.scheme.make_response(msg, ResponseCode.ISSUER_INOPERATIVE)
            x.outcome = "unavailable"
            return
        x.response = x.scheme.make_response(msg, ResponseCode.APPROVED)
        x.outcome = "stored"
        x.notes.append("held in store-and-forward")
        return
    # Only here, after the destination failed: the hot path never looks at the stand-in policy.
    stand_in = _stand_in_policy(x)
    covered = stand_in is not None and stand_in.covers(msg.mti, msg.processing_code, msg.currency, msg.amount,
                                                       52 in msg.fields)
    if covered and msg.pan and node.card_status.declined(x.pan_hash(node.keys) or "") is not None:
        covered = False  # the issuer declined this card itself (lost, blocked, ...): no stand-in for it
        x.notes.append("no stand-in: card declined by its issuer")
    if covered and destination is not None and await _stand_in(node, x, destination):
        return
    x.response = x.scheme.make_response(msg, ResponseCode.ISSUER_INOPERATIVE)
    x.outcome = "timeout" if x.sent_upstream else "unavailable"
    if x.sent_upstream and destination is not None and msg.mti_class in "12":
        # The destination may have approved it: reverse so the cardholder is not charged for a 91.
        await _queue_reversal(node, x, build_reversal(msg, REASON_TIMEOUT, transmission_time=transmission_time()))


def _stand_in_policy(x: Exchange) -> StandIn | None:
    destination = x.decision.destination if x.decision is not None else None
    return destination.stand_in if destination is not None else None


def stand_in_approval_code() -> str:
    """Field 38 (an6) of a stand-in approval: "S" and five random digits, so the acquirer, the journal and the
    issuer's advice all show at a glance that the switch approved it, not the issuer."""
    return f"S{secrets.randbelow(100_000):05d}"


async def _stand_in(node: Node, x: Exchange, destination: str) -> bool:
    """Approve ``x`` on the issuer's behalf (DESIGN.md section 5, stand-in): queue the advice, then answer 00.

    The advice is durable before the approval is decided, so the issuer always hears of what the switch
    approved; if it cannot be queued, the switch does not approve (False: 91 and a reversal as without
    stand-in). If the original was sent and went unanswered, the issuer may have processed it: the advice is
    the repeat (0121/0221) and no reversal is sent, because the advice is authoritative (ISO 8583:1987) and
    the issuer recognises the original it already approved by field 90 (original MTI, STAN, transmission
    time), so it does not apply the amount twice, and applies it if it declined or never saw the original.
    """
    msg = x.request
    code = stand_in_approval_code()
    advice = build_stand_in_advice(msg, code, repeat=x.sent_upstream)
    try:
        await node.saf_enqueue(destination, advice, msg.meta.trace_id)
    except Exception as exc:
        log.error("exchange %s: stand-in advice not queued for %s (%s); answering 91", msg.meta.trace_id,
                  destination, type(exc).__name__)
        return False
    x.response = x.scheme.make_response(msg, ResponseCode.APPROVED)
    x.response.fields[38] = code
    x.outcome = "stand_in"
    x.notes.append(f"stand-in: approved by the switch, {advice.mti} queued")
    log.info("exchange %s: stand-in approval %s for %s (pan %s, amount %s), %s queued", msg.meta.trace_id,
             code, destination, msg.masked_pan, msg.amount, advice.mti)
    return True


async def _queue_reversal(node: Node, x: Exchange, reversal: Message) -> None:
    """Queue ``reversal`` for the exchange's destination. Never raises (the database may be the very thing
    that failed): a reversal that cannot be queued is logged as critical and counted for the operator."""
    assert x.link is not None
    try:
        await node.saf_enqueue(x.link.name, reversal, x.request.meta.trace_id)
        x.reversal_queued = True
        x.notes.append("reversal queued")
    except Exception as exc:
        lost_reversal(node, x, type(exc).__name__)


def lost_reversal(node: Node, x: Exchange, why: str) -> None:
    """A reversal that could not be queued: counted for the operator and logged as critical."""
    node.lost_reversals += 1
    log.critical("exchange %s: REVERSAL NOT QUEUED for %s (stan %s, pan %s, amount %s): %s",
                 x.request.meta.trace_id, x.link.name if x.link else "-", x.request.stan, x.request.masked_pan,
                 x.request.amount, why)


async def _finish(node: Node, x: Exchange) -> None:
    """Journal (durable first), then send the response to the source. Never raises: whatever fails here,
    the source still gets its one answer, and an approval it cannot get is reversed."""
    assert x.response is not None
    response = x.response
    try:
        body = x.scheme.encode(response)
    except (EncodeError, RemoteProtocolError) as exc:
        # The destination approved something the source's format cannot carry: reverse it, answer 96.
        log.warning("exchange %s: response not encodable (%s); answering 96", x.request.meta.trace_id, exc)
        await _reverse_if_approved(node, x, REASON_UNDELIVERED)
        response = x.scheme.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION)
        x.response, x.outcome = response, "error"
        body = x.scheme.encode(response)
    try:
        await node.journal_exchange(x)
    except Exception as exc:
        body = await _journal_failed(node, x, exc)
    await _deliver(node, x, body)


async def _journal_failed(node: Node, x: Exchange, exc: BaseException) -> bytes:
    """Durable-before-response failed: do not tell the acquirer "approved" for something we cannot prove.
    Returns the 96 to send instead."""
    log.error("exchange %s: journal write failed (%s); answering 96", x.request.meta.trace_id,
              type(exc).__name__)
    await _reverse_if_approved(node, x, REASON_UNDELIVERED)
    return x.scheme.encode(x.scheme.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION))


async def _deliver(node: Node, x: Exchange, body: bytes) -> None:
    try:
        x.conn.send_frame(body, reply_to=x.frame)
        x.delivered = True
    except ConnectionClosed:
        await _undelivered(node, x)


async def _undelivered(node: Node, x: Exchange) -> None:
    log.warning("exchange %s: source %s gone before the response", x.request.meta.trace_id, x.source)
    await _reverse_if_approved(node, x, REASON_UNDELIVERED)


async def _reverse_if_approved(node: Node, x: Exchange, reason: str) -> None:
    """Reverse an approval the acquirer will not see (the issuer's, or the switch's own in stand-in: its
    advice is already queued ahead of the reversal, so the issuer applies one and then undoes it)."""
    if x.outcome not in ("approved", "stand_in") or x.link is None or x.request.mti_class not in "12":
        return
    approval = x.response.text(38) if x.response else None
    await _queue_reversal(node, x, build_reversal(x.request, reason, approval, transmission_time()))


async def reverse_abandoned(node: Node, x: Exchange) -> None:
    """The node is stopping hard in the middle of ``x``: reverse what may have been approved and did not reach
    the acquirer. Called shielded and time-bounded from the exchange's cancellation path."""
    if needs_reversal(x):
        await _queue_reversal(node, x, abandoned_reversal(x)[1])


def needs_reversal(x: Exchange) -> bool:
    """Whether ``x``, abandoned now, leaves an approval its acquirer will not see: sent upstream (or stood in
    for) with no answer yet, an approval, or a timeout whose reversal is not queued yet; and not delivered."""
    if x.delivered or x.reversal_queued or x.link is None or x.request.mti_class not in "12":
        return False
    if not (x.sent_upstream or x.outcome == "stand_in"):
        return False
    return x.response is None or x.outcome in ("approved", "stand_in", "timeout")


def abandoned_reversal(x: Exchange) -> tuple[str, Message, str]:
    """(destination, reversal, original trace id) for an exchange :func:`needs_reversal` said yes to."""
    assert x.link is not None
    approved = x.response is not None and x.outcome in ("approved", "stand_in")
    reversal = build_reversal(x.request, REASON_UNDELIVERED if approved else REASON_TIMEOUT,
                              x.response.text(38) if approved and x.response else None, transmission_time())
    return x.link.name, reversal, x.request.meta.trace_id


def now_utc() -> datetime:
    return datetime.now(UTC)
