"""The state every command group works on, and what they share: finding a command's customer, account, card and
credit line from the references it is given (with "it belongs to cell N" when it names another cell), the views
the commands answer with, and the manual transactions (deposits, posted purchases, payments) commands record."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from hsm.api import Hsm
from processors import cardnumber, installments, pricing
from processors.cardnumber import CardNumberError
from processors.catalog import Catalog, Product
from processors.commands.args import DEBIT_KINDS, Args, CommandError, command_names, handler_of, utcnow
from processors.model import Account, Card, CreditLine, Customer, Effects, InstallmentPlan, Txn, TxnStatus, TxnType
from processors.state import CellState
from switch.model.masking import mask_pan


class CommandsBase:
    """One cell's state, catalogue and keys, and the lookups and views of every command group
    (:class:`~processors.commands.CellCommands` is all the groups on top of it).

    ``unseal`` (optional) opens ``Card.pan_sealed``; without it, ``card.set_pin`` and a same-number
    ``card.replace`` need the card named by its PAN, because both need the PAN and the cell keeps only its
    keyed hash and its sealed form.
    """

    def __init__(self, state: CellState, catalog: Catalog, *, cell_count: int, hsm: Hsm | None,
                 pan_hash: Callable[[str], str], seal: Callable[[bytes], bytes],
                 clock: Callable[[], datetime] = utcnow, unseal: Callable[[bytes], bytes] | None = None) -> None:
        if not 1 <= cell_count <= cardnumber.MAX_CELLS or not 0 <= state.cell < cell_count:
            raise ValueError(f"cell {state.cell} is not one of {cell_count} cells")
        self.state = state
        self.catalog = catalog
        self.cell_count = cell_count
        self.hsm = hsm
        self.pan_hash = pan_hash
        self.seal = seal
        self.unseal = unseal
        self.clock = clock

    async def run(self, name: str, args: Mapping[str, Any]) -> tuple[dict[str, Any], Effects]:
        """Run command ``name``; returns (JSON-able result, effects). Raises :class:`CommandError`."""
        handler = handler_of(name)
        if handler is None:
            hint = difflib.get_close_matches(name, command_names(), n=1)
            raise CommandError(f"unknown command {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        effects = Effects()
        result = await handler(self, Args(name, args), effects)
        return result, effects

    # -- lookups -------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock()

    def _product(self, a: Args, name: str = "product") -> Product:
        code = a.text(name)
        product = self.catalog.products.get(code)
        if product is None:
            raise a.error(name, f"unknown product {code!r} (known: {', '.join(sorted(self.catalog.products))})")
        return product

    def _customer(self, a: Args, name: str = "customer") -> Customer:
        ref = a.text(name)
        if ref.startswith("ref:"):
            return self._customer_by_ref(a, name, ref[4:])
        customer = self.state.customers.get(ref)
        if customer is None:
            raise a.error(name, f"unknown customer {ref}{self._elsewhere(ref)}")
        return customer

    def _customer_by_ref(self, a: Args, name: str, external_ref: str) -> Customer:
        for customer in self.state.customers.values():
            if customer.external_ref == external_ref:
                return customer
        cell = cardnumber.cell_for_external_ref(external_ref, self.cell_count) if external_ref else self.state.cell
        where = f" (it belongs to cell {cell})" if cell != self.state.cell else ""
        raise a.error(name, f"no customer with external_ref {external_ref!r}{where}")

    def _elsewhere(self, identifier: str) -> str:
        try:
            cell = cardnumber.cell_of_id(identifier)
        except CardNumberError:
            return ""
        return f" (the number belongs to cell {cell})" if cell != self.state.cell else ""

    def _account(self, a: Args, name: str = "account") -> Account:
        ref = a.text(name)
        if "/" in ref:
            customer_ref, _, kind = ref.rpartition("/")
            customer = self._customer(Args(a.command, {name: customer_ref}), name)
            found = [x for x in self._accounts_of(customer.id) if x.kind == kind and x.status == "active"]
            if len(found) != 1:
                raise a.error(name, f"customer {customer.id} has {len(found)} active {kind!r} accounts, not one")
            return found[0]
        account = self.state.accounts.get(ref)
        if account is None:
            raise a.error(name, f"unknown account {ref}{self._elsewhere(ref)}")
        return account

    def _accounts_of(self, customer_id: str) -> list[Account]:
        return sorted((x for x in self.state.accounts.values() if x.customer_id == customer_id), key=lambda x: x.id)

    def _card(self, a: Args, name: str = "card") -> tuple[Card, str | None]:
        """The card and, when it was named by its PAN, the PAN."""
        ref = a.text(name)
        if cardnumber.is_pan(ref):
            card = self.state.cards_by_hash.get(self.pan_hash(ref))
            if card is None:
                cell = cardnumber.cell_of_pan(ref)
                where = f" (its number says cell {cell})" if cell != self.state.cell else ""
                raise a.error(name, f"unknown card {mask_pan(ref)}{where}")
            return card, ref
        if ref.isdigit():
            raise a.error(name, "not a valid PAN (Luhn check failed) nor a card id")
        found = self.state.cards.get(ref)
        if found is None:
            raise a.error(name, f"unknown card {ref}{self._elsewhere(ref)}")
        return found, None

    def _line(self, a: Args) -> CreditLine:
        if a.has("line") == a.has("customer"):
            raise CommandError(f"{a.command}: give exactly one of line or customer")
        if a.has("line"):
            ref = a.text("line")
            line = self.state.credit_lines.get(ref)
            if line is None:
                raise a.error("line", f"unknown credit line {ref}{self._elsewhere(ref)}")
            return line
        customer = self._customer(a)
        found = self._line_of(customer.id)
        if found is None:
            raise a.error("customer", f"customer {customer.id} has no credit line")
        return found

    def _line_of(self, customer_id: str) -> CreditLine | None:
        return next((x for x in self.state.credit_lines.values() if x.customer_id == customer_id), None)

    def _pan_of(self, card: Card, given: str | None, a: Args) -> str:
        if given is not None:
            return given
        if self.unseal is None:
            raise a.error("card", "name the card by its PAN for this command (this cell cannot unseal PANs)")
        return self.unseal(card.pan_sealed).decode("ascii")

    # -- views ---------------------------------------------------------------------------------------------

    def masked(self, card: Card) -> str:
        """First six and last four digits of the card's PAN, from the stored BIN and last four."""
        product = self.catalog.products.get(card.product)
        length = product.pan_length if product is not None else 16
        return card.bin + "*" * (length - 10) + card.last4

    def _customer_view(self, customer: Customer) -> dict[str, Any]:
        line = self._line_of(customer.id)
        cards = sorted((c for c in self.state.cards.values() if c.customer_id == customer.id), key=lambda c: c.id)
        return {
            "customer": customer.id, "cell": customer.cell, "name": customer.name,
            "external_ref": customer.external_ref, "status": customer.status, "created_at": iso(customer.created_at),
            "accounts": [self._account_view(x) for x in self._accounts_of(customer.id)],
            "cards": [{"card": c.id, "masked_pan": self.masked(c), "status": c.status.value, "product": c.product}
                      for c in cards],
            "credit_line": line.id if line is not None else None,
        }

    def _account_view(self, account: Account) -> dict[str, Any]:
        line = self.state.credit_lines.get(account.credit_line_id or "")
        return {
            "account": account.id, "customer": account.customer_id, "kind": account.kind,
            "product": account.product, "currency": account.currency, "ledger_balance": account.ledger_balance,
            "held": account.held,
            "available": line.open_to_buy if line is not None else account.available + self._overdraft(account),
            "status": account.status, "credit_line": account.credit_line_id, "pricing": dict(account.pricing),
            "opened_at": iso(account.opened_at),
        }

    def _card_view(self, card: Card) -> dict[str, Any]:
        product = self.catalog.products.get(card.product)
        return {
            "card": card.id, "masked_pan": self.masked(card), "customer": card.customer_id, "product": card.product,
            # The currency of the card's limits: they are set and checked in the product's (processors.booking).
            "currency": product.currency if product is not None else None,
            "account": card.account_id, "accounts": dict(card.accounts), "status": card.status.value,
            "status_reason": card.status_reason, "expiry": card.expiry, "psn": card.psn,
            "service_code": card.service_code, "pin_set": bool(card.pvv), "pin_tries": card.pin_tries,
            "limits": {k: dict(v) for k, v in card.limits.items()}, "replaces": card.replaces,
            "issued_at": iso(card.issued_at),
        }

    def _line_view(self, line: CreditLine) -> dict[str, Any]:
        plans = sorted((p for p in self.state.plans.values() if p.credit_line_id == line.id), key=lambda p: p.id)
        return {
            "line": line.id, "customer": line.customer_id, "currency": line.currency, "limit": line.limit,
            "cash_limit": line.cash_limit, "owed": line.owed, "cash_owed": line.cash_owed, "held": line.held,
            "cash_held": line.cash_held, "open_to_buy": line.open_to_buy,
            "cash_open_to_buy": line.cash_open_to_buy, "status": line.status,
            "plans": [plan_view(p) for p in plans],
        }

    def _overdraft(self, account: Account) -> int:
        product = self.catalog.products.get(account.product)
        if product is None or account.kind not in DEBIT_KINDS:
            return 0
        return pricing.get_int("overdraft", product, account, default=0)

    # -- manual transactions (deposits, posted purchases, payments) ----------------------------------------

    def _reference(self, a: Args, command: str) -> str:
        reference: str = a.text("reference")
        if f"cmd:{command}:{reference}" in self.state.txns_by_dup_key:
            raise a.error("reference", f"{reference!r} was already used for a {command}")
        return reference

    def _manual_txn(self, command: str, reference: str, txn_type: TxnType, account: Account, amount: int,
                    effects: Effects) -> Txn:
        seq = self.state.next_value("txn")
        txn = Txn(
            id=f"M{self.state.cell:02d}-{seq.value}", dup_key=f"cmd:{command}:{reference}", mti="",
            processing_code="", txn_type=txn_type.value, channel="manual", card_id=None, account_id=account.id,
            amount=amount, currency=account.currency, fee=0, response_code="00", approval_code="", stan="",
            rrn="", terminal="", acquirer="", created_at=self._now(), status=TxnStatus.APPROVED,
        )
        effects.add(seq)
        return txn

    def _record(self, txn: Txn, effects: Effects) -> None:
        self.state.put(txn)
        effects.add(txn)


def plan_view(plan: InstallmentPlan) -> dict[str, Any]:
    schedule = [{"installment": k, "due": installments.due_date(plan, k).isoformat(),
                 "amount": installments.installment_amount(plan, k), "billed": k <= plan.billed}
                for k in range(1, plan.count + 1)] if plan.created_at is not None else []
    return {
        "plan": plan.id, "account": plan.account_id, "line": plan.credit_line_id, "txn": plan.source_txn_id,
        "currency": plan.currency, "principal": plan.principal, "fee": plan.fee, "rate_bp": plan.rate_bp,
        "count": plan.count, "billed": plan.billed, "status": plan.status, "schedule": schedule,
    }


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
