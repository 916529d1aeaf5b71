"""The cell's authorization engine: :class:`CellEngine`, which takes each request to its steps (see
:mod:`processors.engine` for the messages and the rules of a decision)."""

from __future__ import annotations

import functools
from datetime import timedelta

from processors import early
from processors.booking import Changes
from processors.engine.admin import administrative
from processors.engine.advices import advice
from processors.engine.approval import approve_request
from processors.engine.checks import add_arpc, card_needing_checks, run_checks, verify
from processors.engine.context import RC, Checks, Ctx, Decision, Declined, Parts
from processors.engine.pinchange import change_pin
from processors.engine.reversals import in_account_currency, reversal
from processors.engine.rules import limits_and_funds, pin_required, validate
from processors.engine.steps import advised, begin, decline, replay
from processors.model import Card, Effects, TxnStatus, TxnType
from switch.model.message import Message


class CellEngine(Parts):
    """Decides every card request of one cell against its in-memory :class:`~processors.state.CellState`.

    The entry points are here; the steps of a decision are functions of the engine's :class:`Parts` and the
    request's :class:`Ctx`, one module per concern (:mod:`~processors.engine.rules`, ``checks``, ``approval``,
    ``advices``, ``reversals``, ``steps``)."""

    # DE 95 in the account's currency by the original's rate (processors.engine.reversals), kept on the class
    _in_account_currency = staticmethod(in_account_currency)

    # -- entry points -----------------------------------------------------------------------------------
    async def handle(self, request: Message) -> Decision:
        """Decide one request (see :mod:`processors.engine` for the messages handled)."""
        started = self._start(request)
        if isinstance(started, Decision):
            return started
        pan, hashed, card = started
        checks = await run_checks(self, request, card, pan)
        # From here to the return: no await (the decision and its snapshots are one synchronous step).
        decision, ctx = self._authorize(request, hashed, checks)
        if (checks.arqc and checks.arqc_request is not None and ctx.card is not None and ctx.product is not None
                and decision.response is not None):
            decision.finish = functools.partial(add_arpc, self, decision.response, ctx.product, ctx.card.psn, pan,
                                                checks.arqc_request)
        return decision

    def decide(self, request: Message) -> Decision | None:
        """:meth:`handle` without the event loop for a request that needs no HSM check (most of them: no PIN,
        track 2 or chip data, or a duplicate or a card that is not active); None when it needs the HSM, and then
        nothing has changed: call :meth:`handle`. The host decides in its reader loop this way, without a task
        per request (trio task setup was ~10 us of the ~100 us a cell spent per 0200, issue #5)."""
        started = self._start(request)
        return started if isinstance(started, Decision) else None

    def _start(self, request: Message) -> Decision | tuple[str, str, Card]:
        """The decision of a request that needs no HSM check, else what the checks need: (PAN, PAN hash, card).
        Changes nothing in the second case."""
        mti = request.mti
        if len(mti) != 4 or not mti.isdigit() or int(mti[2]) % 2:
            return Decision(None, Effects())  # a stray response: nothing to answer
        cls, function = mti[1], mti[2]
        if cls == "8":
            return Decision(request.make_response(RC.APPROVED), Effects())
        if cls == "4" and function in "02":
            return reversal(self, request)
        if cls == "6":
            return administrative(self, request)
        if cls not in "12" or function not in "02":
            return Decision(request.make_response(RC.INVALID_TRANSACTION), Effects())
        if function == "2":
            return advice(self, request)
        pan = request.pan
        hashed = self.pan_hash(pan) if pan else ""
        card = card_needing_checks(self, request, hashed)
        if card is not None and pan:
            return pan, hashed, card
        return self._authorize(request, hashed, None)[0]

    # -- housekeeping -----------------------------------------------------------------------------------
    def expire_holds(self) -> Effects:
        """Release every hold past its expiry (the host calls this now and then; requests also do it)."""
        changes = Changes()
        self.expiry.expire(self.state, self.clock(), changes)
        return changes.effects()

    def prune(self) -> int:
        """Forget decided transactions older than the bank's retention (memory only: the rows stay in the
        database). Returns how many were dropped."""
        cutoff = self.clock() - timedelta(days=self.bank.txn_retention_days)
        state = self.state
        old = [txn for txn in state.txns.values() if txn.created_at < cutoff]
        drop = {txn.id for txn in old}
        for txn in old:
            del state.txns[txn.id]
            if state.txns_by_dup_key.get(txn.dup_key) is txn:
                del state.txns_by_dup_key[txn.dup_key]
        for key in [k for k, t in state.txns_by_original.items() if t.id in drop]:
            del state.txns_by_original[key]
        # Cards' audit events go with the transactions they belong to (a PIN change's reversal needs its event).
        for event in [e for e in state.card_events.values() if e.created_at < cutoff]:
            state.forget_card_event(event)
        return len(old)

    def forget_expired_reversals(self) -> int:
        """Forget remembered early reversals past ``reversal_retention_days`` (memory only: the host then
        deletes their rows, :func:`processors.storage.purge_early_reversals`). Returns how many."""
        return early.forget_expired(self.state, self.clock())

    def early_counts(self) -> dict[str, int]:
        """Remembered early reversals (in memory) and those refused by a cap since the start (cell stats)."""
        return {"early_reversals": len(self.state.early_reversals), "early_reversals_refused": self.early_caps.refused}

    def flush_logs(self) -> None:
        """Report the counts of rate-limited warnings whose interval has ended (the host calls this now and then)."""
        self.early_caps.log.flush()

    # -- authorization (0100) and financial request (0200) ---------------------------------------------
    def _authorize(self, request: Message, hashed: str, checks: Checks | None) -> tuple[Decision, Ctx]:
        ctx = begin(self, request)
        dup = self.state.txns_by_dup_key.get(ctx.key)
        if dup is not None:
            if request.mti[3] in "13":
                return replay(self, ctx, dup), ctx
            return Decision(request.make_response(RC.DUPLICATE), ctx.changes.effects()), ctx
        if self.state.early_by_original:
            remembered = early.reversals_of(self.state, request, hashed, ctx.now)
            # A PIN change has no amount to reduce: any reversal of it is a whole one.
            if remembered and (early.is_full(remembered) or ctx.txn_type == TxnType.PIN_CHANGE):
                return self._reversed_before(ctx, hashed), ctx
            ctx.early = [row for row in remembered if row.applied_to is None]
        stood_in = advised(self, request, hashed)
        if stood_in is not None:
            if stood_in.status == TxnStatus.REVERSED:
                # Its stand-in advice came first and was reversed since: declined like an original that comes
                # after its reversal (processors.early), whichever of them the reversal found.
                return self._reversed_before(ctx, hashed), ctx
            # The switch stood in for this very request while the cell was away, and its advice (same STAN,
            # DE 7 and acquirer) has been applied: the late original gets the same answer, applied once.
            return replay(self, ctx, stood_in), ctx
        try:
            validate(self, ctx, hashed)
            pin_required(self, ctx)
            if checks is not None:
                verify(self, ctx, checks)
            if ctx.txn_type == TxnType.PIN_CHANGE:
                return change_pin(self, ctx, checks), ctx
            limits_and_funds(self, ctx)
        except Declined as declined:
            if declined.code == RC.SYSTEM_MALFUNCTION:
                return Decision(request.make_response(declined.code), ctx.changes.effects()), ctx
            return decline(self, ctx, declined.code, declined.reason), ctx
        return approve_request(self, ctx), ctx

    def _reversed_before(self, ctx: Ctx, hashed: str) -> Decision:
        """05 for an original whose reversal came first (processors.early): nothing posted, held or counted. The
        declined transaction names its card, so that a repeat of the reversal finds it (and acknowledges it)."""
        ctx.card = self.state.cards_by_hash.get(hashed) if hashed else None
        return decline(self, ctx, RC.DO_NOT_HONOUR, "reversed before it arrived")
