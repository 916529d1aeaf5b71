"""Accounts: ``account.open``, ``account.show``, ``account.deposit`` (cash at a branch), ``account.post`` (a posted
purchase), ``account.set_pricing`` (negotiated terms), ``account.close``."""

from __future__ import annotations

from typing import Any

from processors import cardnumber, installments, ledger, money, pricing
from processors.commands.args import ACCOUNT_KINDS, DEBIT_KINDS, Args, command
from processors.commands.base import CommandsBase
from processors.model import Account, CardStatus, CreditLine, Effects, ProductKind, TxnType


class AccountCommands(CommandsBase):
    """Opening, funding, pricing, showing and closing accounts."""

    @command("account.open")
    async def _account_open(self, a: Args, effects: Effects) -> dict[str, Any]:
        customer = self._customer(a)
        kind = a.text("kind")
        product = self._product(a)
        currency = a.text("currency", product.currency)
        a.done()
        if customer.status != "active":
            raise a.error("customer", f"customer {customer.id} is {customer.status}")
        if kind not in ACCOUNT_KINDS:
            raise a.error("kind", f"must be one of {', '.join(ACCOUNT_KINDS)}, not {kind!r}")
        if (kind == "credit") != (product.kind is ProductKind.CREDIT):
            raise a.error("kind", f"a {kind} account cannot have the {product.kind.value} product {product.code!r}")
        if currency not in money.ISO_4217:
            raise a.error("currency", f"unknown ISO 4217 currency {currency!r}")
        line = self._line_of(customer.id) if kind == "credit" else None
        if kind == "credit":
            if currency != product.currency:
                raise a.error("currency", f"credit product {product.code!r} is in {product.currency}")
            if line is not None and line.currency != currency:
                raise a.error("currency", f"the customer's credit line {line.id} is in {line.currency}")
        # Checks done: change state.
        now = self._now()
        if kind == "credit" and line is None:
            line_seq = self.state.next_value("credit_line")
            line = CreditLine(cardnumber.make_id(self.state.cell, line_seq.value), customer.id, currency,
                              product.credit_limit, product.cash_limit)
            self.state.put(line)
            effects.add(line_seq, line)
        seq = self.state.next_value("account")
        account = Account(cardnumber.make_id(self.state.cell, seq.value), customer.id, kind, currency, product.code,
                          credit_line_id=line.id if line is not None else None, opened_at=now)
        self.state.put(account)
        effects.add(seq, account)
        return self._account_view(account)

    @command("account.show")
    async def _account_show(self, a: Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        a.done()
        return self._account_view(account)

    @command("account.deposit")
    async def _account_deposit(self, a: Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        amount = a.integer("amount", low=1)
        currency = a.text("currency", account.currency)
        reference = self._reference(a, "deposit")
        a.done()
        if account.kind not in DEBIT_KINDS:
            raise a.error("account", f"account {account.id} is a {account.kind} account; deposits go to "
                          "checking or savings accounts")
        if account.status == "closed":
            raise a.error("account", f"account {account.id} is closed")
        if currency != account.currency:
            raise a.error("currency", f"account {account.id} is in {account.currency}, not {currency}")
        txn = self._manual_txn("deposit", reference, TxnType.DEPOSIT, account, amount, effects)
        posting = installments.new_posting(self.state, effects, txn.id, txn.created_at, f"cash deposit {reference}",
                                           account.currency, [(account.id, amount), (ledger.GL_CASH, -amount)])
        txn.posting_id = posting.id
        self._record(txn, effects)
        return {**self._account_view(account), "txn": txn.id, "posting": posting.id}

    @command("account.post")
    async def _account_post(self, a: Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        amount = a.integer("amount", low=1)
        reference = self._reference(a, "post")
        description = a.text("description", f"purchase {reference}")
        a.done()
        if account.status != "active":
            raise a.error("account", f"account {account.id} is {account.status}")
        line = self.state.credit_lines.get(account.credit_line_id or "")
        if account.kind == "credit":
            if line is None:
                raise a.error("account", f"credit account {account.id} has no credit line")
            if amount > line.open_to_buy:
                raise a.error("amount", f"{amount} exceeds the open-to-buy {line.open_to_buy}")
        elif amount > account.available + self._overdraft(account):
            raise a.error("amount", f"{amount} exceeds the available balance {account.available}")
        txn = self._manual_txn("post", reference, TxnType.PURCHASE, account, amount, effects)
        posting = installments.new_posting(self.state, effects, txn.id, txn.created_at, description,
                                           account.currency, [(account.id, -amount), (ledger.GL_SETTLEMENT, amount)])
        txn.posting_id = posting.id  # the line's owed followed the posting (installments.new_posting)
        self._record(txn, effects)
        return {**self._account_view(account), "txn": txn.id, "posting": posting.id}

    @command("account.set_pricing")
    async def _account_set_pricing(self, a: Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        item = a.text("item")
        if not a.has("value"):
            raise a.error("value", "is required (null removes the account's override)")
        value = a.raw("value", None)
        a.done()
        stored: Any = None
        if value is not None:
            try:
                typed = pricing.validate_item(item, value)
            except pricing.PricingError as exc:
                raise a.error("value", str(exc)) from None
            stored = typed if isinstance(typed, int) else pricing.fee_to_json(typed)
        elif item not in account.pricing:
            raise a.error("item", f"account {account.id} has no override of {item!r}")
        if stored is None:
            del account.pricing[item]
        else:
            account.pricing[item] = stored
        effects.add(account)
        return self._account_view(account)

    @command("account.close")
    async def _account_close(self, a: Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        a.done()
        if account.status == "closed":
            raise a.error("account", f"account {account.id} is already closed")
        problems = self._close_problems(account)
        if problems:
            raise a.error("account", f"account {account.id} cannot be closed: {'; '.join(problems)}")
        account.status = "closed"
        effects.add(account)
        return self._account_view(account)

    def _close_problems(self, account: Account) -> list[str]:
        """Why ``account`` cannot be closed now (empty: it can)."""
        problems = []
        if account.ledger_balance:
            what = ("withdraw or transfer it" if account.kind in DEBIT_KINDS else
                    "pay it" if account.ledger_balance < 0 else "refund it")
            problems.append(f"its ledger balance is {account.ledger_balance} {account.currency} ({what} first)")
        holds = [h for h in self.state.holds.values() if h.account_id == account.id]
        if holds or account.held:
            problems.append(f"{len(holds)} open hold(s) of {account.held} {account.currency} (wait for their "
                            "completion, reversal or expiry)")
        # A plan still to bill posts its installments to this account (processors.installments).
        plans = sorted(p.id for p in self.state.plans.values() if p.account_id == account.id and p.status == "active")
        if plans:
            problems.append(f"installment plan(s) {', '.join(plans)} still to be billed")
        cards = sorted(c.id for c in self.state.cards.values() if c.status == CardStatus.ACTIVE
                       and (c.account_id == account.id or account.id in c.accounts.values()))
        if cards:
            problems.append(f"active card(s) {', '.join(cards)} use it (block them first)")
        return problems
