"""What the switch does when an exchange cannot end the simple way (jPOS: the abort participants): hold what the
receiver must accept, stand in for the issuer, answer 91, and reverse what may have been approved and did not
reach its acquirer. Each of these is written once; the pipeline calls them from wherever the exchange is.

Every request gets exactly one response:
- no usable link, or no answer within the destination's timeout, gets 91; a financial request that was sent and
  not answered is reversed through the store-and-forward queue (0400, repeated as 0401);
- unless the destination's stand-in policy covers the request: then the switch approves it (00, its own approval
  code) and queues an advice (0120/0220, or 0121/0221 if the original was sent) instead of a reversal;
- advices and reversals (which the receiver must accept, ISO 8583 MTI rules) that cannot be delivered now are
  accepted by the switch (00) and queued for delivery; so is one for an original the queue still holds an
  earlier advice or reversal of on one of the destination's links, and it is queued on that link (issue 11: a
  reversal must not overtake the stand-in advice it reverses, or the destination answers 25 and then posts the
  advice). One for an original still upstream waits first (switch.exchange.inflight, in the pipeline).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.context import Exchange
from switch.exchange.lifecycle import HOLD, QUEUED, REVERSAL_QUEUED, Outcome
from switch.exchange.reversal import (
    REASON_TIMEOUT,
    REASON_UNDELIVERED,
    build_reversal,
    build_stand_in_advice,
    original_key,
    repeat_mti,
)
from switch.exchange.services import NodePorts
from switch.model.codes import ResponseCode
from switch.model.message import Message, transmission_time
from switch.routing import StandIn

log = logging.getLogger("bulkhead.pipeline")


def is_must_accept(msg: Message) -> bool:
    """Advices (xx2x) and reversals are accepted by their receiver; the switch holds them if it must."""
    return msg.is_advice or msg.is_reversal


async def fallback(node: NodePorts, x: Exchange, card_status: CardStatusCache,
                   pan_hash: Callable[[str], str]) -> tuple[Message, Outcome]:
    """No answer (link down, timeout, connection lost): hold what the receiver must accept, stand in where the
    destination's policy covers the request, otherwise 91 (and a reversal when it was sent and money may move)."""
    msg = x.request
    destination = x.link.name if x.link else None
    if is_must_accept(msg) and destination is not None:
        return await hold(node, x, await _holder_or(node, x, destination))
    # Only here, after the destination failed: the hot path never looks at the stand-in policy.
    policy = _stand_in_policy(x)
    covered = policy is not None and policy.covers(msg.mti, msg.processing_code, msg.currency, msg.amount,
                                                   52 in msg.fields)
    if covered and msg.pan and card_status.declined(x.pan_hash(pan_hash) or "") is not None:
        covered = False  # the issuer declined this card itself (lost, blocked, ...): no stand-in for it
        x.notes.append("no stand-in: card declined by its issuer")
    if covered and destination is not None:
        approved = await _stand_in(node, x, destination)
        if approved is not None:
            return approved, Outcome.STAND_IN
    answer = x.network.make_response(msg, ResponseCode.ISSUER_INOPERATIVE)
    if x.sent_upstream and destination is not None and msg.mti_class in "12":
        # The destination may have approved it: reverse so the cardholder is not charged for a 91.
        await queue_reversal(node, x, build_reversal(msg, REASON_TIMEOUT, transmission_time=transmission_time()))
    return answer, Outcome.TIMEOUT if x.sent_upstream else Outcome.UNAVAILABLE


async def hold(node: NodePorts, x: Exchange, destination: str) -> tuple[Message, Outcome]:
    """Accept an advice or reversal for ``destination`` by queueing it (00), or 91 when it cannot be stored."""
    msg = x.request
    held = msg.copy()
    if x.sent_upstream:
        held.mti = repeat_mti(held.mti)  # the destination may have seen it: the next send is a repeat
    try:
        await node.saf_enqueue([(destination, held, x.trace_id)])
    except Exception as exc:
        # Not stored, so not accepted: the acquirer keeps it and sends it again.
        log.error("exchange %s: could not hold %s for %s: %s", x.trace_id, msg.mti, destination,
                  type(exc).__name__)
        return x.network.make_response(msg, ResponseCode.ISSUER_INOPERATIVE), Outcome.UNAVAILABLE
    x.advance(QUEUED)
    x.notes.append("held in store-and-forward")
    return x.network.make_response(msg, ResponseCode.APPROVED), Outcome.STORED


async def held_back(node: NodePorts, x: Exchange) -> tuple[Message, Outcome] | None:
    """An advice or reversal routed to a live link: None when it may be sent now; otherwise the answer, because
    the queue still holds an earlier advice or reversal for the same original on one of the destination's links
    (it is queued behind it, on that link: a pool's advice may wait on another link than the one chosen now), or
    the queue cannot be read (91: the acquirer sends it again; forwarding it blind could let a reversal overtake
    its advice)."""
    assert x.link is not None
    key = original_key(x.request)
    if key is None:
        return None
    try:
        holder = await node.saf_holder(_links(x), key)
    except Exception as exc:
        log.error("exchange %s: store-and-forward queue unreadable (%s); %s answered 91", x.trace_id,
                  type(exc).__name__, x.request.mti)
        x.advance(HOLD)
        return x.network.make_response(x.request, ResponseCode.ISSUER_INOPERATIVE), Outcome.UNAVAILABLE
    if holder is None:
        return None
    x.advance(HOLD)
    log.info("exchange %s: %s queued behind an earlier entry for the same original to %s", x.trace_id,
             x.request.mti, holder)
    return await hold(node, x, holder)


def _links(x: Exchange) -> tuple[str, ...]:
    """The links of the exchange's routed destination (a pool's), or its own link alone."""
    assert x.link is not None
    routed = x.decision.destination if x.decision is not None else None
    return routed.links if routed is not None and x.link.name in routed.links else (x.link.name,)


async def _holder_or(node: NodePorts, x: Exchange, destination: str) -> str:
    """Where to hold an advice or reversal no link can take now: on the link of its destination that already holds
    an entry for the same original, if any (a pool wholly down puts ``x`` on its first link, while the advice it
    must follow may wait on another: issue 11), else ``destination``. The queue keeps the order across links
    anyway (switch.storage.saf); holding both on one link also lets them go out in one drain."""
    key = original_key(x.request)
    if key is None:
        return destination
    try:
        holder = await node.saf_holder(_links(x), key)
    except Exception as exc:  # the queue's own order still holds; the enqueue that follows reports a dead database
        log.warning("exchange %s: store-and-forward holder not read (%s); held on %s", x.trace_id,
                    type(exc).__name__, destination)
        return destination
    return holder or destination


def _stand_in_policy(x: Exchange) -> StandIn | None:
    destination = x.decision.destination if x.decision is not None else None
    return destination.stand_in if destination is not None else None


def stand_in_approval_code() -> str:
    """Field 38 (an6) of a stand-in approval: "S" and five random digits, so the acquirer, the journal and the
    issuer's advice all show at a glance that the switch approved it, not the issuer."""
    return f"S{secrets.randbelow(100_000):05d}"


async def _stand_in(node: NodePorts, x: Exchange, destination: str) -> Message | None:
    """Approve ``x`` on the issuer's behalf (DESIGN.md section 5, stand-in): queue the advice, then answer 00.

    The advice is durable before the approval is decided, so the issuer always hears of what the switch
    approved; if it cannot be queued, the switch does not approve (None: 91 and a reversal as without stand-in).
    If the original was sent and went unanswered, the issuer may have processed it: the advice is the repeat
    (0121/0221) and no reversal is sent, because the advice is authoritative (ISO 8583:1987) and the issuer
    recognises the original it already approved by field 90 (original MTI, STAN, transmission time), so it
    does not apply the amount twice, and applies it if it declined or never saw the original.
    """
    msg = x.request
    code = stand_in_approval_code()
    advice = build_stand_in_advice(msg, code, repeat=x.sent_upstream)
    try:
        await node.saf_enqueue([(destination, advice, x.trace_id)])
    except Exception as exc:
        log.error("exchange %s: stand-in advice not queued for %s (%s); answering 91", x.trace_id, destination,
                  type(exc).__name__)
        return None
    x.advance(QUEUED)
    response = x.network.make_response(msg, ResponseCode.APPROVED)
    response.fields[38] = code
    x.notes.append(f"stand-in: approved by the switch, {advice.mti} queued")
    log.info("exchange %s: stand-in approval %s for %s (pan %s, amount %s), %s queued", x.trace_id, code,
             destination, msg.masked_pan, msg.amount, advice.mti)
    return response


async def queue_reversal(node: NodePorts, x: Exchange, reversal: Message) -> None:
    """Queue ``reversal`` for the exchange's destination. Never raises (the database may be the very thing that
    failed): a reversal that cannot be queued is logged as critical and counted for the operator."""
    assert x.link is not None
    try:
        await node.saf_enqueue([(x.link.name, reversal, x.trace_id)])
    except Exception as exc:
        lost_reversal(node, x, type(exc).__name__)
        return
    x.advance(REVERSAL_QUEUED)
    x.notes.append("reversal queued")


async def reverse_if_approved(node: NodePorts, x: Exchange, reason: str = REASON_UNDELIVERED) -> None:
    """Reverse an approval the acquirer will not see (the issuer's, or the switch's own in stand-in: its advice is
    already queued ahead of the reversal, so the issuer applies one and then undoes it)."""
    if x.outcome not in (Outcome.APPROVED, Outcome.STAND_IN) or x.link is None or x.request.mti_class not in "12":
        return
    approval = x.response.text(38) if x.response else None
    await queue_reversal(node, x, build_reversal(x.request, reason, approval, transmission_time()))


def lost_reversal(node: NodePorts, x: Exchange, why: str) -> None:
    """A reversal that could not be queued: counted for the operator and logged as critical."""
    node.lost_reversal()
    log.critical("exchange %s: REVERSAL NOT QUEUED for %s (stan %s, pan %s, amount %s): %s", x.trace_id,
                 x.link.name if x.link else "-", x.request.stan, x.request.masked_pan, x.request.amount, why)


def needs_reversal(x: Exchange) -> bool:
    """Whether ``x``, abandoned now, leaves an approval its acquirer will not see: sent upstream (or stood in for)
    with no answer yet, an approval, or a timeout whose reversal is not queued yet; and not delivered."""
    if x.reversal_queued or x.link is None:
        return False
    if x.owed_reversal is not None:
        return True
    if x.delivered or x.request.mti_class not in "12":
        return False
    if x.request.mti[2] == "2":
        # An advice (xx20/xx21) is the acquirer's to repeat until answered: reversing the one caught upstream would
        # cancel what its repeat then finds applied already (a duplicate), and the sale would never be charged.
        return False
    if not (x.sent_upstream or x.outcome is Outcome.STAND_IN):
        return False
    return x.response is None or x.outcome in (Outcome.APPROVED, Outcome.STAND_IN, Outcome.TIMEOUT)


def abandoned_reversal(x: Exchange) -> tuple[str, Message, str]:
    """(destination, reversal, original trace id) for an exchange :func:`needs_reversal` said yes to."""
    assert x.link is not None
    if x.owed_reversal is not None:
        return x.link.name, x.owed_reversal, x.trace_id
    approved = x.response is not None and x.outcome in (Outcome.APPROVED, Outcome.STAND_IN)
    reversal = build_reversal(x.request, REASON_UNDELIVERED if approved else REASON_TIMEOUT,
                              x.response.text(38) if approved and x.response else None, transmission_time())
    return x.link.name, reversal, x.trace_id
