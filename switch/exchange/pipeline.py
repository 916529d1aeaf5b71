"""Request processing: small steps over a per-exchange context (jPOS TransactionManager participants).

validate -> network management | route -> security (PIN translation) -> send -> answer -> respond (journal,
then deliver). A step that fails decides the response code; the response leaves only once the outcome is final
and its journal row has committed. Per-exchange state lives in :class:`~switch.exchange.context.Exchange`; the
phases it may go through are one table (:mod:`switch.exchange.lifecycle`).

Each step exists once. A step is a plain function of the exchange that returns the next step, or None when the
exchange is parked: waiting for its upstream answer or its journal commit (a continuation, called later from
the link's reader, the node's timer or the commit report), or handed to a task. The common path (validate,
route, send, answer, journal, deliver) therefore runs without a task of its own, inline in the link readers and
the commit report (DESIGN section 9: parking and waking a task per wait was about a quarter of the node's event
loop in a fin-sim profile). What must wait on something else (a remote HSM, a database write for the fallback
or a compensation) is an async action: it runs in a task and hands back the step to continue with, and the same
steps then run in that task. So the inline path and the task path run the same steps.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from switch.contracts.network import NetMgmt, NetworkEvent, Rejected
from switch.exchange import compensation, identity, mac
from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.context import Exchange
from switch.exchange.journal import journal_record
from switch.exchange.lifecycle import (
    ABANDON,
    ANSWERED,
    DECIDE,
    DECIDED,
    DELIVER,
    FALLBACK,
    FINAL,
    JOURNAL,
    JOURNAL_FAILED,
    LINK_DOWN,
    NO_ANSWER,
    RECEIVED,
    REDECIDE,
    REJECTED,
    RESOLVED,
    REVERSAL_QUEUED,
    ROUTE,
    ROUTED,
    SEND,
    SENT,
    SOURCE_GONE,
    IllegalTransition,
    Outcome,
)
from switch.exchange.linksteps import Action, LinkSteps, Step
from switch.exchange.pinsteps import PinSteps
from switch.exchange.ports import Answer, ConnectionClosed, DuplicateKeyError, LinkDown
from switch.exchange.reversal import original_key
from switch.exchange.services import NodePorts
from switch.exchange.terminals import TerminalSteps
from switch.model.codes import ResponseCode, is_approval
from switch.model.errors import EncodeError, FieldError
from switch.model.masking import mask_pan
from switch.model.message import Message
from switch.routing import RouteQuery

log = logging.getLogger("bulkhead.pipeline")


# Fields of the upstream response that belong to the request's identity: the source gets its own values back,
# whatever the destination echoed.
_IDENTITY_FIELDS = frozenset({2, 3, 4, 7, 11, 12, 13, 32, 33, 37, 41, 42, 49, 90})
# The MAC fields belong to the link a message travelled on: never copied from the destination's answer.
_LINK_FIELDS = frozenset(mac.MAC_FIELDS)
# Outcomes named on the hot path, as module names (an Enum attribute costs about 0.25 us on CPython 3.11).
_APPROVED, _DECLINED, _NETWORK = Outcome.APPROVED, Outcome.DECLINED, Outcome.NETWORK
_OK, _APPROVED_PARTIAL = ResponseCode.APPROVED, ResponseCode.APPROVED_PARTIAL
_KEY_EXCHANGE, _CUTOVER = NetMgmt.KEY_EXCHANGE, NetMgmt.CUTOVER
# How an exchange in each phase takes a 96 after a bug in one of its steps.
_ERROR_EVENT = {RECEIVED: DECIDE, ROUTED: DECIDE, SENT: ANSWERED,
                FALLBACK: RESOLVED, DECIDED: REDECIDE}


class Pipeline(LinkSteps, PinSteps, TerminalSteps):
    def __init__(self, node: NodePorts, card_status: CardStatusCache, pan_hash: Callable[[str], str]) -> None:
        self.node = node
        self.card_status = card_status  # card-level declines seen from stand-in destinations
        self.pan_hash = pan_hash

    def start(self, x: Exchange) -> None:
        """Run ``x`` from its request, inline in the link reader that decoded it. Never raises."""
        self._run(x, self._validate)

    # -- the driver -----------------------------------------------------------------------------------
    def _run(self, x: Exchange, step: Step | None) -> None:
        """Run steps until one parks the exchange or ends it. Never raises: it runs inside link readers, the
        timer and the commit report, which serve everyone."""
        try:
            while step is not None:
                step = step(x)
        except Exception as exc:
            self._failed(x, exc)

    def _later(self, x: Exchange, action: Action) -> None:
        """Continue ``x`` in a task: ``action``, then the steps it hands back."""
        self.node.spawn(x, lambda: self._resume(x, action))

    async def _resume(self, x: Exchange, action: Action) -> None:
        try:
            step = await action(x)
        except Exception as exc:  # trio.Cancelled is not an Exception: a node stopping hard gets it (abandon)
            self._failed(x, exc)
            return
        self._run(x, step)

    def _failed(self, x: Exchange, exc: Exception) -> None:
        """A bug in one exchange must not take the node down: answer 96 where the exchange can still answer,
        and reverse what it sent or approved that its acquirer will not see approved."""
        if isinstance(exc, IllegalTransition):
            # A step out of order (a stray continuation): the exchange is still in the hands of whatever owns it
            # in this phase, which goes on with it; acting here would answer or close it twice.
            log.error("exchange %s: %s", x.trace_id, exc)
            return
        log.error("exchange %s: internal error %s in phase %s", x.trace_id, type(exc).__name__, x.phase.label,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        reversal = None
        event = _ERROR_EVENT.get(x.phase)
        try:
            # Built before the 96 replaces what was decided (the approval code it reverses), and kept on the
            # exchange: a node stopped before it is queued still owes it (compensation.needs_reversal).
            if compensation.needs_reversal(x):
                reversal = x.owed_reversal = compensation.abandoned_reversal(x)[1]
            if event is None:  # journaling or delivering: the exchange cannot be answered again
                raise exc
            x.decide(event, x.network.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION), Outcome.ERROR)
        except Exception as exc2:  # not even a 96 can be built for this request: it is dropped, and said so
            log.critical("exchange %s: unanswerable (%s, then %s)", x.trace_id, type(exc).__name__,
                         type(exc2).__name__)
            if x.closed:
                return
            if x.phase not in FINAL:
                x.advance(ABANDON)
            if reversal is None:
                self._close(x)
            else:
                self._later(x, functools.partial(self._reverse_and_close, reversal=reversal))
            return
        if reversal is not None:
            self._later(x, functools.partial(self._reverse_then_respond, reversal=reversal))
            return
        self._run(x, self._respond)

    async def _reverse_then_respond(self, x: Exchange, reversal: Message) -> Step | None:
        await compensation.queue_reversal(self.node, x, reversal)
        return self._respond

    async def _reverse_and_close(self, x: Exchange, reversal: Message) -> Step | None:
        await compensation.queue_reversal(self.node, x, reversal)
        self._close(x)
        return None

    def _close(self, x: Exchange) -> None:
        if x.inflight_key is not None:  # ended before its outcome settled (an internal error, a hard stop)
            self._settled(x)
        x.close()
        self.node.finished(x)
        if log.isEnabledFor(logging.DEBUG):  # --log-level debug: one line per exchange (a cached check otherwise)
            _debug_line(x)

    # -- validate, route -----------------------------------------------------------------------------
    def _validate(self, x: Exchange) -> Step | None:
        msg = x.request
        try:
            x.network.validate(msg)
        except FieldError as exc:
            log.info("exchange %s from %s: format error in field %d: %s", x.trace_id, x.source, exc.field,
                     exc.reason)
            x.decide(DECIDE, x.network.make_response(msg, ResponseCode.FORMAT_ERROR), Outcome.FORMAT_ERROR)
            return self._respond
        if self.node.draining:
            # The node is stopping: say so at once rather than start an exchange it may not finish.
            x.decide(DECIDE, x.network.make_response(msg, ResponseCode.ISSUER_INOPERATIVE),
                     Outcome.UNAVAILABLE)
            return self._respond
        gate = self.node.terminal_gate(x.source)
        if gate is not None:  # one of the bank's terminals: the ATMP admits it first (switch.exchange.terminals)
            x.gate = gate
            return self._terminal
        if msg.is_network:
            return self._network
        macs = self.node.macs
        if macs and x.source in macs:  # a MAC link: its requests are verified before anything else (an HSM call)
            self._later(x, self._verify_request_mac)
            return None
        return self._route

    def _network(self, x: Exchange) -> Step | None:
        """Network management from a peer, answered by the switch itself as the link's network says."""
        session = self.node.session_of(x.source)
        event = session.inbound(x.request)
        if event.kind is _KEY_EXCHANGE:
            if event.key is not None:
                # From this request on, the link's requests wait for the new key (switch.exchange.keywindow).
                self.node.key_changing(x.source, x.request.meta.received_ns, event.key.key_type)
            self._later(x, functools.partial(self._install_key, event=event))  # the key goes through the HSM
            return None
        if event.kind is _CUTOVER:
            self.node.cutover(x.source, event.business_date)
        x.decide(DECIDE, session.answer(x.request, event, _OK), _NETWORK)
        return self._respond

    async def _install_key(self, x: Exchange, event: NetworkEvent) -> Step | None:
        session = self.node.session_of(x.source)
        x.request.meta.wire = x.frame.body  # a key proved by the message's own MAC (UnionPay) is checked over it
        installed = event.key is not None and await self.node.install_key(x.source, event.key, x.request)
        code = ResponseCode.APPROVED if installed else ResponseCode.SYSTEM_MALFUNCTION
        x.decide(DECIDE, session.answer(x.request, event, code), Outcome.NETWORK)
        return self._respond

    def _route(self, x: Exchange) -> Step | None:
        msg = x.request
        x.decision = decision = x.table.route(RouteQuery(
            pan=msg.pan, processing_code=msg.processing_code, mti=msg.mti, source_link=x.source,
            currency=msg.currency, amount=msg.amount,
        ))
        destination = decision.destination
        if destination is None:
            x.decide(DECIDE, x.network.make_response(msg, decision.response_code or ResponseCode.NO_ROUTE),
                     Outcome.NO_ROUTE)
            return self._respond
        x.advance(ROUTE)
        must_accept = msg.is_advice or msg.is_reversal
        if must_accept or destination.stand_in is not None:
            # Entered before anything is awaited, so that the order under an original is the order of arrival
            # (switch.exchange.inflight): a purchase to a destination without stand-in does not come here.
            self._enter(x, must_accept)
        link = self.node.choose_link(destination)
        if x.gate is not None and x.terminal_fields is None:
            # Before anything is sent or held for later: a terminal's own fields never go upstream.
            planned = link or self.node.upstream(destination.links[0])
            if planned is not None:
                x.terminal_fields = x.gate.prepare(msg, planned)
        if link is None:
            x.link = self.node.upstream(destination.links[0])
            x.advance(LINK_DOWN)
            if x.link is not None and x.link.identity is not None:
                self._identify(x, x.link.identity)  # held or stood in, it is sent later under the link's identity
            self._later(x, self._fallback)
            return None
        x.link = link
        ident = link.identity
        if ident is not None:
            self._identify(x, ident)
        if must_accept:
            # It must not overtake an earlier advice or reversal for the same original still queued for this
            # destination: a database read, so in a task (advices and reversals are the rare messages).
            self._later(x, self._behind_queue)
            return None
        if x.identity_lookups:
            self._later(x, self._identified)
            return None
        if 52 in msg.fields and self.node.source_key(x.source, msg) is not None:
            return self._pin
        return self._send

    async def _behind_queue(self, x: Exchange) -> Step | None:
        if self._waits(x, self._behind_queue):
            return None
        if x.identity_lookups:
            await self._lookup_identity(x)
        held = await compensation.held_back(self.node, x)
        if held is None:
            msg = x.request
            return self._pin if 52 in msg.fields and self.node.source_key(x.source, msg) is not None else self._send
        x.decide(RESOLVED, *held)
        if x.inflight_key is not None:  # held (durable) or refused: the next one for its original may look
            self._settled(x)
        return self._respond

    def _waits(self, x: Exchange, then: Action) -> bool:
        """Whether the advice or reversal ``x`` is parked behind an exchange for the same original that arrived
        before it and whose outcome is unsettled (an advice that may yet be queued as its repeat, an original that
        may yet be stood in for, a reversal not answered yet): ``then`` continues it once those have settled, when
        whatever they queued is in the queue to hold ``x`` back there (switch.exchange.inflight)."""
        if not self.node.upstream_originals.follow(x, functools.partial(self._later, x, then)):
            return False
        x.notes.append("waited for a message upstream for the same original")
        log.info("exchange %s: %s waits for a message upstream for the same original", x.trace_id, x.request.mti)
        return True

    # -- upstream -------------------------------------------------------------------------------------
    def _send(self, x: Exchange) -> Step | None:
        macs = self.node.macs
        if macs and x.link is not None and x.link.name in macs:
            self._later(x, self._sign_request)
            return None
        return self._send_now(x)

    def _send_now(self, x: Exchange) -> Step | None:
        link, msg = x.link, x.request
        assert link is not None
        destination = x.decision.destination if x.decision is not None else None
        timeout = ((destination.timeout_ms if destination is not None else None) or link.timeout_ms) / 1000
        x.t1 = time.perf_counter()
        try:
            link.send(msg, timeout, functools.partial(self._on_answer, x))
        except LinkDown:
            x.advance(LINK_DOWN)
            self._later(x, self._fallback)
            return None
        except DuplicateKeyError:
            x.decide(DECIDE, x.network.make_response(msg, ResponseCode.DUPLICATE), Outcome.DECLINED)
            return self._respond
        except EncodeError as exc:
            # The destination's format cannot carry this request (a field too long for its spec).
            log.warning("exchange %s: cannot encode for %s: %s", x.trace_id, link.name, exc)
            x.decide(DECIDE, x.network.make_response(msg, ResponseCode.FORMAT_ERROR), Outcome.FORMAT_ERROR)
            return self._respond
        x.advance(SEND)
        self.node.awaiting_upstream[id(x)] = x
        return None

    def _enter(self, x: Exchange, must_accept: bool) -> None:
        """``x`` may leave something behind for its original (an advice or reversal held or queued as its repeat;
        a stand-in's advice for an 0100/0200): an advice or reversal for the same original that arrives later waits
        until ``x`` settles, and ``x`` waits for those that arrived before it (switch.exchange.inflight)."""
        msg = x.request
        if not must_accept and msg.mti_class not in "12":
            return
        key = original_key(msg)
        if key is not None:
            self.node.upstream_originals.enter(key, x)

    def _on_answer(self, x: Exchange, answer: Answer) -> None:
        """The destination answered, rejected the request, or did not answer (None): from its link's reader or
        the node's timer. Never raises."""
        try:  # _run's loop, entered here directly: one call fewer on every exchange
            step = self._answered(x, answer)
            while step is not None:
                step = step(x)
        except Exception as exc:
            self._failed(x, exc)

    def _answered(self, x: Exchange, answer: Answer) -> Step | None:
        if x.phase is not SENT:  # a stray answer: the exchange is in other hands (and maybe in the stop's set)
            raise IllegalTransition(f"an upstream answer in phase {x.phase.label}")
        self.node.awaiting_upstream.pop(id(x), None)
        x.upstream_us = int((time.perf_counter() - x.t1) * 1e6)
        if answer is None:
            x.advance(NO_ANSWER)
            self._later(x, self._fallback)  # settled once the fallback has queued what it queues
            return None
        macs = self.node.macs
        if macs and isinstance(answer, Message) and x.link is not None and x.link.name in macs:
            self._later(x, functools.partial(self._verify_answer_mac, answer=answer))
            return None
        return self._take_answer(x, answer)

    def _take_answer(self, x: Exchange, answer: Message | Rejected) -> Step | None:
        if x.inflight_key is not None:
            self._settled(x)
        if isinstance(answer, Rejected):
            # The network refused the request unprocessed: nothing was approved, so nothing is reversed.
            log.warning("exchange %s: rejected by %s's network (%s); answering %s", x.trace_id,
                        x.link.name if x.link else "-", answer.reason or "no reason", answer.code.value)
            x.decide(REJECTED, x.network.make_response(x.request, answer.code), Outcome.REJECTED)
            return self._respond
        response = self._answer_from_upstream(x, answer)
        x.decide(ANSWERED, response,
                 _APPROVED if is_approval(response.response_code) else _DECLINED)
        destination = x.decision.destination if x.decision is not None else None
        if destination is not None and destination.stand_in and x.request.pan:
            # Only destinations that may be stood in for feed the card status cache.
            self.card_status.record(x.pan_hash(self.pan_hash) or "", response.response_code)
        return self._respond

    @staticmethod
    def _answer_from_upstream(x: Exchange, upstream: Message) -> Message:
        code = upstream.response_code or ResponseCode.SYSTEM_MALFUNCTION
        answer = x.network.make_response(x.request, code)
        # A partial approval (10) carries the approved amount in field 4 (and 6): the issuer's, not the request's.
        identity = _IDENTITY_FIELDS - {4, 6} if code == _APPROVED_PARTIAL else _IDENTITY_FIELDS
        identity = identity | _LINK_FIELDS if 64 in upstream.fields or 128 in upstream.fields else identity
        for number, value in upstream.fields.items():
            if number not in identity:
                answer.fields[number] = value
        return answer

    async def _fallback(self, x: Exchange) -> Step | None:
        if compensation.is_must_accept(x.request) and self._waits(x, self._fallback):
            # Held now, it must not be queued ahead of what an earlier message for its original may yet queue.
            return None
        if x.identity_lookups:
            await self._lookup_identity(x)
        response, outcome = await compensation.fallback(self.node, x, self.card_status, self.pan_hash)
        x.decide(RESOLVED, response, outcome)
        if x.inflight_key is not None:  # its advice (or reversal) is durable now: what waited for it may go on
            self._settled(x)
        return self._respond

    def _settled(self, x: Exchange) -> None:
        """``x``'s outcome is settled: resume the next exchange that waited behind its original, if it has nothing
        else before it (switch.exchange.inflight)."""
        for resume in self.node.upstream_originals.leave(x):
            resume()

    # -- respond: journal first, then deliver ----------------------------------------------------------
    def _respond(self, x: Exchange) -> Step | None:
        assert x.response is not None
        if x.source_ids:  # the answer goes back under the source's identity, not the one sent upstream
            identity.restore(x.response, x.source_ids)
        gate = x.gate
        if x.terminal_fields:  # the terminal's own fields, back for the ATMP's record and the journal row
            x.request.fields.update(x.terminal_fields)
            x.terminal_fields = {}
        if gate is not None and (gate.signs(x.request) or gate.follows(x.request, x.response)):
            self._later(x, self._terminal_respond)  # the ATMP's record, the terminal's MAC (switch.exchange.terminals)
            return None
        macs = self.node.macs
        if macs and x.source in macs and not x.request.is_network:
            # A MAC link: the answer carries its MAC (an HSM call); network management is neither MACed nor checked.
            self._later(x, self._sign_response)
            return None
        try:
            x.body = x.network.encode(x.response)
        except Exception as exc:  # an answer the source's format cannot carry
            log.warning("exchange %s: response not encodable (%s); answering 96", x.trace_id, type(exc).__name__)
            self._later(x, self._unencodable)
            return None
        return self._journal

    def _journal(self, x: Exchange) -> Step | None:
        x.advance(JOURNAL)

        def committed(failure: BaseException | None) -> None:
            # From the commit report or the timer (or here, when the row cannot be submitted at all). Both steps
            # end the inline path (they return None), so they are called directly, guarded as _run guards.
            try:
                if failure is None:
                    self._deliver(x)
                else:
                    self._journal_failed(x, failure)
            except Exception as exc:
                self._failed(x, exc)

        try:
            record = journal_record(x, self.node.name, self.pan_hash, self.node.business_dates)
            self.node.journal(record, committed)
        except Exception as exc:
            committed(exc)
        return None

    async def _unencodable(self, x: Exchange) -> Step | None:
        """The destination approved something the source's format cannot carry: reverse it, answer 96. A 96 that
        cannot be encoded either (a network whose decoder accepts what its encoder refuses) drops the exchange:
        trying again would loop."""
        await compensation.reverse_if_approved(self.node, x)
        response = x.network.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION)
        if x.source_ids:
            identity.restore(response, x.source_ids)
        x.decide(REDECIDE, response, Outcome.ERROR)
        try:
            x.body = await self._signed(x, response)
        except Exception as exc:
            log.critical("exchange %s: unanswerable: not even a 96 encodes (%s)", x.trace_id, type(exc).__name__)
            x.advance(ABANDON)
            self._close(x)
            return None
        return self._journal

    def _journal_failed(self, x: Exchange, failure: BaseException) -> Step | None:
        """Durable-before-response failed: do not tell the acquirer "approved" for something we cannot prove."""
        log.error("exchange %s: journal write failed (%s); answering 96", x.trace_id, type(failure).__name__)
        x.advance(JOURNAL_FAILED)
        self._later(x, self._unjournaled)
        return None

    async def _unjournaled(self, x: Exchange) -> Step | None:
        await compensation.reverse_if_approved(self.node, x)
        # The acquirer is told 96 and what was approved is reversed: the metrics count an error, not an approval.
        x.response, x.outcome = x.network.make_response(x.request, ResponseCode.SYSTEM_MALFUNCTION), Outcome.ERROR
        if x.source_ids:
            identity.restore(x.response, x.source_ids)
        x.body = await self._signed(x, x.response)
        return self._deliver

    def _deliver(self, x: Exchange) -> Step | None:
        try:
            x.conn.send_frame(x.body, reply_to=x.frame)
        except Exception as exc:  # gone, or the frame cannot be written: either way the acquirer did not get it
            if not isinstance(exc, ConnectionClosed):
                log.error("exchange %s: response not sent (%s)", x.trace_id, type(exc).__name__)
            x.advance(SOURCE_GONE)
            self._later(x, self._undelivered)
            return None
        x.advance(DELIVER)
        self._close(x)
        return None

    async def _undelivered(self, x: Exchange) -> Step | None:
        log.warning("exchange %s: source %s gone before the response", x.trace_id, x.source)
        await compensation.reverse_if_approved(self.node, x)
        self._close(x)
        return None

    # -- a node stopping hard ----------------------------------------------------------------------------
    def strand(self, x: Exchange) -> None:
        """``x`` cannot go on in a task (switch.runtime.tasks): the node is stopping hard (its task was cancelled,
        or the work nursery is closed), or a bug ended its task. The source gets no answer, and what was sent
        upstream or approved is reversed when the node stops, with the others, in one transaction (the node's
        stop reads ``awaiting_upstream``). Either way ``x`` leaves the index of originals now: what waited behind
        it goes on (or is stranded in turn), rather than waiting for a resume that would never come and holding
        a drain up to its deadline."""
        if x.closed:
            return
        if x.inflight_key is not None:
            self._settled(x)
        if compensation.needs_reversal(x):
            log.warning("exchange %s: not continued; reversed when the node stops", x.trace_id)
            self.node.awaiting_upstream[id(x)] = x
        else:  # say a 91 answered while draining whose connection closed first: nothing to undo
            log.info("exchange %s: not continued (nothing to reverse)", x.trace_id)
            self.drop(x)

    def drop(self, x: Exchange, *, reversed_: bool = False) -> None:
        """End ``x`` without an answer (the node is stopping and nothing more may start); ``reversed_``: its
        reversal was queued on its behalf (with others, in one transaction)."""
        if x.closed:
            return
        if x.phase not in FINAL:
            x.advance(ABANDON)
        if reversed_:
            x.advance(REVERSAL_QUEUED)
        self._close(x)


def _debug_line(x: Exchange) -> None:
    """The exchange in one masked line: the card as first 6 / last 4, no other card data."""
    msg, resp = x.request, x.response
    pan = msg.pan
    # The source's STAN (the one its acquirer knows), then the one sent upstream when the link numbers its own.
    stan = msg.stan
    if x.source_ids and 11 in x.source_ids:
        stan = f"{x.source_ids[11]!s} (upstream {msg.stan})"
    log.debug("exchange %s: %s stan %s card %s from %s via %s to %s: %s %s, %s in %d us", x.trace_id, msg.mti,
              stan, mask_pan(pan) if pan else "-", x.source, x.decision.route if x.decision else "-",
              x.link.name if x.link else "-", resp.mti if resp else "-", (resp.response_code if resp else None) or "-",
              x.outcome.value, int((time.perf_counter() - x.t0) * 1e6))
