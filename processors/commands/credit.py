"""Credit lines: ``credit.set_limit``, ``credit.show``, ``credit.payment`` (the cardholder pays),
``credit.installments`` (a posted purchase into monthly installments), ``credit.bill_installments``."""

from __future__ import annotations

from datetime import date
from typing import Any

from processors import credit, installments
from processors.commands.args import GL_PAYMENTS, Args, CommandError, command
from processors.commands.base import CommandsBase, plan_view
from processors.model import Effects, TxnType


class CreditCommands(CommandsBase):
    """Credit lines, cardholder payments and installment plans."""

    @command("credit.set_limit")
    async def _credit_set_limit(self, a: Args, effects: Effects) -> dict[str, Any]:
        line = self._line(a)
        limit = a.integer("limit", line.limit)
        cash_limit = a.integer("cash_limit", line.cash_limit)
        a.done()
        if limit == line.limit and cash_limit == line.cash_limit:
            raise CommandError(f"{a.command}: give a new limit or cash_limit")
        used = max(line.owed, 0) + line.held  # a line in credit (owed < 0) uses nothing (processors.credit)
        if limit < used:
            raise a.error("limit", f"{limit} is below what is owed and held ({used})")
        if cash_limit > limit:
            raise a.error("cash_limit", f"{cash_limit} is above the limit {limit}")
        if cash_limit < line.cash_owed + line.cash_held:
            raise a.error("cash_limit", f"{cash_limit} is below the cash owed and held "
                          f"({line.cash_owed + line.cash_held})")
        line.limit, line.cash_limit = limit, cash_limit
        effects.add(line)
        return self._line_view(line)

    @command("credit.show")
    async def _credit_show(self, a: Args, effects: Effects) -> dict[str, Any]:
        line = self._line(a)
        a.done()
        return self._line_view(line)

    @command("credit.payment")
    async def _credit_payment(self, a: Args, effects: Effects) -> dict[str, Any]:
        """The cardholder pays money into a card account: the account's balance rises, and the line's ``owed``
        falls through the one rule of :func:`processors.credit.line_posted` (``installments.new_posting``).

        A payment above what is owed is accepted and leaves the line in credit (``owed`` negative; no extra
        open-to-buy, :mod:`processors.credit`). ``cash_owed`` falls by the part of the payment the product's
        ``payment_allocation`` gives to cash advances (:func:`processors.credit.payment_cash_part`; cash first
        by default), which frees the cash-advance sub-limit."""
        account = self._account(a)
        amount = a.integer("amount", low=1)
        reference = self._reference(a, "payment")
        a.done()
        if account.kind != "credit":
            raise a.error("account", f"account {account.id} is a {account.kind} account; payments go to credit "
                          "card accounts (deposits to checking or savings)")
        if account.status == "closed":
            raise a.error("account", f"account {account.id} is closed")
        line = self.state.credit_lines.get(account.credit_line_id or "")
        if line is None:
            raise a.error("account", f"credit account {account.id} has no credit line")
        rule = self.catalog.products[account.product].payment_allocation if account.product in \
            self.catalog.products else credit.PAYMENT_ALLOCATIONS[0]
        cash_before, cash_part = line.cash_owed, credit.payment_cash_part(line, amount, rule)
        # Checks done: change state. A frozen account or suspended line still takes payments.
        txn = self._manual_txn("payment", reference, TxnType.DEPOSIT, account, amount, effects)
        posting = installments.new_posting(self.state, effects, txn.id, txn.created_at, f"payment {reference}",
                                           account.currency, [(account.id, amount), (GL_PAYMENTS, -amount)])
        credit.payment_applied(line, cash_before, cash_part)  # the line is in effects already (new_posting)
        txn.posting_id = posting.id
        txn.cash_part = cash_part  # kept with every payment-like Txn (a reversal owes that cash again)
        self._record(txn, effects)
        return {**self._account_view(account), "txn": txn.id, "posting": posting.id, "line": line.id,
                "owed": line.owed, "cash_owed": line.cash_owed, "open_to_buy": line.open_to_buy,
                "cash_open_to_buy": line.cash_open_to_buy}

    @command("credit.installments")
    async def _credit_installments(self, a: Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        txn_id: str = a.text("txn")
        if txn_id.startswith("ref:"):  # a purchase posted by account.post, by its reference
            posted = self.state.txns_by_dup_key.get(f"cmd:post:{txn_id[4:]}")
            if posted is None:
                raise a.error("txn", f"no purchase posted with reference {txn_id[4:]!r}")
            txn_id = posted.id
        count = a.integer("count", low=2, high=999)
        rate_bp = a.integer("rate_bp", None, high=installments.MAX_RATE_BP)
        a.done()
        try:
            q = installments.quote(self.state, self.catalog, account.id, txn_id, count, rate_bp)
        except installments.InstallmentError as exc:
            raise CommandError(f"{a.command}: {exc}") from None
        plan = installments.convert(self.state, q, self._now(), effects)
        return {**plan_view(plan), "open_to_buy": q.line.open_to_buy}

    @command("credit.bill_installments")
    async def _credit_bill(self, a: Args, effects: Effects) -> dict[str, Any]:
        text = a.text("day", None)
        a.done()
        try:
            day = date.fromisoformat(text) if text is not None else self._now().date()
        except ValueError:
            raise a.error("day", "expected a date YYYY-MM-DD") from None
        try:
            installments.due(self.state, day)  # validates every plan before the first posting
        except installments.InstallmentError as exc:
            raise CommandError(f"{a.command}: {exc}") from None
        billed = installments.bill_due(self.state, day, self._now(), effects)
        return {"day": day.isoformat(), "billed": billed, "count": len(billed)}
