"""Applying an approved request or advice: a hold for a pre-authorization of spending, a posting otherwise (with
what a payment into a credit line repays), the limits' usage, and the reversals that came before it."""

from __future__ import annotations

import functools

from processors import early
from processors.booking import add_usage, payment_split, place_hold, post
from processors.credit import PAYMENT_ALLOCATIONS, payment_applied
from processors.engine.context import RC, Ctx, Decision, Parts
from processors.engine.reversals import reverse
from processors.engine.steps import approved, cash_amount, new_txn
from processors.fields import SPENDING
from processors.model import Account, Hold, Txn, TxnStatus, TxnType


def approve_request(eng: Parts, ctx: Ctx) -> Decision:
    """Apply an approved 0100 / 0200: a hold for a pre-authorization of spending, a posting otherwise."""
    n, txn = new_txn(eng, ctx, RC.APPROVED, TxnStatus.APPROVED)
    if ctx.txn_type in (TxnType.BALANCE, TxnType.STATEMENT):
        if ctx.fee:  # an inquiry or a mini statement moves no money but may pay a fee
            post_txn(eng, ctx, n, txn)
    elif ctx.request.mti[1] == "1":
        if ctx.txn_type in SPENDING:
            hold_funds(eng, ctx, n, txn)
    else:
        post_txn(eng, ctx, n, txn)
    count_usage(eng, ctx, txn)
    if ctx.early:
        apply_early(eng, ctx, txn)
    return approved(eng, ctx, txn)


def apply_early(eng: Parts, ctx: Ctx, txn: Txn) -> None:
    """Apply the remembered reversals of ``ctx`` (processors.early) to ``txn``, just approved, in the same
    decision: the strongest of them is applied as if it arrived now, under its own duplicate key (so its
    repeats find it), and every one of them is marked applied."""
    rows = ctx.early
    assert rows
    row = early.strongest(rows)
    # Its own context on the decision's changes: the reversal's Txn records the reversal's DE 11/7/41/32/37,
    # and the rows it changes commit with the original's or advice's (one decision, one batch).
    rctx = Ctx(early.reversal_message(row), ctx.now, row.id, ctx.changes)
    rctx.pc, rctx.acquirer = txn.processing_code, row.acquirer
    reverse(eng, rctx, txn, row.replacement)  # card, account and channel: the transaction's own
    for remembered in rows:
        remembered.applied_to = txn.id
        eng.state.put(remembered)
        ctx.changes.add(remembered)


def hold_funds(eng: Parts, ctx: Ctx, n: int, txn: Txn) -> None:
    """Hold the amount of an approved pre-authorization (0100) until completed, reversed or expired."""
    account, card = ctx.account, ctx.card
    assert account is not None and card is not None
    hold = Hold(f"H{eng.prefix}{n}", card.id, account.id, account.credit_line_id, txn.id, ctx.amount,
                account.currency, cash_amount(ctx) > 0, ctx.now, ctx.now + eng.hold_period)
    place_hold(eng.state, hold, ctx.changes)
    eng.expiry.push(hold)
    txn.hold_id = hold.id


def post_txn(eng: Parts, ctx: Ctx, n: int, txn: Txn) -> None:
    """Post the amount and fee of ``ctx`` (a balanced posting), and what a payment into a credit line repays."""
    account = ctx.account
    assert account is not None and ctx.txn_type is not None
    payment = payment_split(eng.state, ctx.txn_type, account, ctx.to_account, ctx.amount,
                            functools.partial(payment_rule, eng))
    posting = post(eng.state, ctx.changes, posting_id=f"P{eng.prefix}T{n}", txn_id=txn.id, now=ctx.now,
                   description=f"{ctx.txn_type} {ctx.request.mti}", txn_type=ctx.txn_type,
                   account=account, to_account=ctx.to_account, amount=ctx.amount, fee=ctx.fee,
                   cash=cash_amount(ctx) > 0)
    txn.posting_id = posting.id
    if payment is not None:  # a payment into a credit line: the cash owed falls by the product's rule, once
        line, cash_before, txn.cash_part = payment
        payment_applied(line, cash_before, txn.cash_part)  # the line is in the changes already (post)


def payment_rule(eng: Parts, account: Account) -> str:
    """The ``payment_allocation`` of a credit card account's product (cash first when it has none)."""
    product = eng.catalog.products.get(account.product)
    return product.payment_allocation if product is not None else PAYMENT_ALLOCATIONS[0]


def count_usage(eng: Parts, ctx: Ctx, txn: Txn) -> None:
    """Count spending on the card's limits of the channel (and cross-border)."""
    if ctx.txn_type in SPENDING and ctx.card is not None:
        add_usage(eng.state, ctx.changes, ctx.card.id, ctx.now.date(), txn.channel, ctx.amount, 1)
