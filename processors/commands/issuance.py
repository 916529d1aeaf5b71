"""Issuing cards: ``card.issue`` (BIN + cell + sequence or vanity digits + Luhn), ``card.issue_check`` (a batch
checked whole before it starts) and ``card.replace`` (same number with a new expiry, or a new number)."""

from __future__ import annotations

from datetime import date
from typing import Any

from processors import cardnumber, installments
from processors.cardnumber import CardNumberError
from processors.catalog import Product
from processors.commands.args import ACCOUNT_TYPES, DEBIT_KINDS, YYMM, Args, CommandError, command
from processors.commands.cards import CardCommands
from processors.model import Card, CardStatus, Customer, Effects, ProductKind
from switch.model.masking import mask_pan


class CardIssuance(CardCommands):
    """Issuing and replacing cards (the full PAN is returned once, for the card bureau)."""

    def _expiry(self, a: Args, product: Product) -> str:
        today = self._now().date()
        current = f"{today.year % 100:02d}{today.month:02d}"
        if a.has("expiry"):
            expiry = a.text("expiry")
            if not YYMM.match(expiry):
                raise a.error("expiry", "expected YYMM")
            if expiry < current:
                raise a.error("expiry", f"{expiry} is in the past")
            return str(expiry)
        end = installments.add_months(today, product.validity_months)
        return f"{end.year % 100:02d}{end.month:02d}"

    def _card_accounts(self, a: Args, customer: Customer, product: Product) -> tuple[str, dict[str, str]]:
        """(default account, DE 3 account type -> account) for a new card of ``product``."""
        kinds = ("credit",) if product.kind is ProductKind.CREDIT else DEBIT_KINDS
        owned = [x for x in self._accounts_of(customer.id)
                 if x.kind in kinds and x.status == "active" and x.currency == product.currency]
        by_type: dict[str, str] = {}
        for account in owned:  # the oldest account of each kind (lowest number) unless one is named
            by_type.setdefault(ACCOUNT_TYPES[account.kind], account.id)
        if a.has("account"):
            chosen = self._account(a)
            if chosen.customer_id != customer.id:
                raise a.error("account", f"account {chosen.id} belongs to customer {chosen.customer_id}")
            if chosen not in owned:
                raise a.error("account", f"account {chosen.id} ({chosen.kind}, {chosen.currency}, {chosen.status}) "
                              f"cannot back a {product.kind.value} card in {product.currency}")
            by_type[ACCOUNT_TYPES[chosen.kind]] = chosen.id
            return chosen.id, by_type
        if not by_type:
            need = "credit account" if product.kind is ProductKind.CREDIT else "checking or savings account"
            raise a.error("customer", f"customer {customer.id} has no active {need} in {product.currency}; "
                          "open one first")
        default = by_type.get("20") or by_type.get("30") or by_type["10"]
        return default, by_type

    def _new_pan(self, a: Args, product: Product, bin_: str) -> tuple[str, int | None]:
        """A free PAN for ``product`` on ``bin_``: the vanity digits asked for, or the next sequence number.
        Returns (pan, the sequence value to store or None)."""
        cell = self.state.cell
        if a.has("vanity"):
            digits = a.text("vanity")
            try:
                pan = cardnumber.vanity_pan(bin_, cell, digits, product.pan_length)
            except CardNumberError as exc:
                raise a.error("vanity", str(exc)) from None
            if self.pan_hash(pan) in self.state.cards_by_hash:
                raise a.error("vanity", f"{mask_pan(pan)} is already issued")
            return pan, None
        seq = self.state.sequences.get(f"pan:{bin_}")
        value = seq.value if seq is not None else 0
        while True:  # skip numbers taken by vanity cards
            value += 1
            try:
                pan = cardnumber.make_pan(bin_, cell, value, product.pan_length)
            except CardNumberError:
                raise CommandError(f"{a.command}: BIN {bin_} has no free card numbers left in cell {cell}") from None
            if self.pan_hash(pan) not in self.state.cards_by_hash:
                return pan, value

    def _bin(self, a: Args, product: Product) -> str:
        bin_ = a.text("bin", product.bins[0])
        if bin_ not in product.bins:
            raise a.error("bin", f"{bin_} is not a BIN of product {product.code!r}")
        return str(bin_)

    def _store_card(self, card: Card, pan_seq: int | None, effects: Effects) -> None:
        if pan_seq is not None:
            seq = self.state.next_value(f"pan:{card.bin}")
            seq.value = pan_seq
            effects.add(seq)
        self.state.put(card)
        effects.add(card)

    def _new_card(self, pan: str, customer_id: str, product: Product, expiry: str, active: bool,
                  default: str, accounts: dict[str, str], effects: Effects) -> Card:
        seq = self.state.next_value("card")
        effects.add(seq)
        return Card(
            id=cardnumber.make_card_id(self.state.cell, seq.value), pan_hash=self.pan_hash(pan), last4=pan[-4:],
            bin=pan[:6], pan_sealed=self.seal(pan.encode("ascii")), customer_id=customer_id, product=product.code,
            account_id=default, accounts=accounts, status=CardStatus.ACTIVE if active else CardStatus.INACTIVE,
            expiry=expiry, service_code=product.service_code, issued_at=self._now(),
        )

    def _issue_plan(self, a: Args) -> tuple[Customer, Product, str, dict[str, str], str, int | None, str, bool]:
        """Every check of ``card.issue``, changing nothing: (customer, product, default account, accounts by
        type, PAN, its sequence value, expiry, activate)."""
        customer = self._customer(a)
        product = self._product(a)
        bin_ = self._bin(a, product)
        default, accounts = self._card_accounts(a, customer, product)
        pan, pan_seq = self._new_pan(a, product, bin_)
        expiry = self._expiry(a, product)
        activate = a.flag("activate", False)
        a.done()
        if customer.status != "active":
            raise a.error("customer", f"customer {customer.id} is {customer.status}")
        return customer, product, default, accounts, pan, pan_seq, expiry, activate

    @command("card.issue_check")
    async def _card_issue_check(self, a: Args, effects: Effects) -> dict[str, Any]:
        rows = a.raw("rows")
        a.done()
        if not isinstance(rows, list):
            raise a.error("rows", f"expected a list, got {type(rows).__name__}")
        problems = []
        for index, row in enumerate(rows):
            try:
                self._issue_plan(Args("card.issue", row))
            except CommandError as exc:
                problems.append({"row": index, "error": str(exc)})
        return {"rows": len(rows), "problems": problems}

    @command("card.issue")
    async def _card_issue(self, a: Args, effects: Effects) -> dict[str, Any]:
        customer, product, default, accounts, pan, pan_seq, expiry, activate = self._issue_plan(a)
        card = self._new_card(pan, customer.id, product, expiry, activate, default, accounts, effects)
        self._store_card(card, pan_seq, effects)
        return {**self._card_view(card), "pan": pan}

    @command("card.replace")
    async def _card_replace(self, a: Args, effects: Effects) -> dict[str, Any]:
        old, given = self._card(a)
        new_number = a.flag("new_number")
        reason = a.text("reason")
        activate = a.flag("activate", False)
        product = self.catalog.products.get(old.product)
        if product is None:
            raise a.error("card", f"card {old.id} has product {old.product!r}, which is not in the catalogue")
        expiry = self._expiry(a, product)
        a.done()
        if old.status == CardStatus.REPLACED:
            raise a.error("card", f"card {old.id} was already replaced")
        self._check_not_closed(a, old)
        if new_number:
            pan, pan_seq = self._new_pan(a, product, old.bin if old.bin in product.bins else product.bins[0])
        else:
            if old.status in (CardStatus.LOST, CardStatus.STOLEN):
                raise a.error("new_number", f"card {old.id} is {old.status.value}: it is replaced with a new number "
                              "(the missing card's stripe and chip data must stop working)")
            pan, pan_seq = self._pan_of(old, given, a), None
            # The same number gets a new expiry, validity counted from today, and never the old card's: the
            # engine declines a track 2 or DE 14 whose expiry is not the card's (54), so the old plastic fails.
            if expiry == old.expiry:
                if a.has("expiry"):
                    raise a.error("expiry", f"{expiry} is the replaced card's expiry; a same-number replacement "
                                  "needs another one")
                later = installments.add_months(date(2000 + int(expiry[:2]), int(expiry[2:]), 1), 1)
                expiry = f"{later.year % 100:02d}{later.month:02d}"
        # Checks done: change state.
        new = self._new_card(pan, old.customer_id, product, expiry, activate, old.account_id, self._open_links(old),
                             effects)
        new.replaces = old.id
        new.limits = {channel: dict(values) for channel, values in old.limits.items()}
        if not new_number:
            # Same PAN: the PVV (a function of PAN and PIN) stays valid; EMV tells the cards apart by the PAN
            # sequence number (EMV 4.3 book 3, tag 5F34).
            new.pan_sealed, new.pvki, new.pvv = old.pan_sealed, old.pvki, old.pvv
            new.psn = f"{(int(old.psn or '0') + 1) % 100:02d}"
        old.status, old.status_reason = CardStatus.REPLACED, reason
        effects.add(old)
        self._store_card(new, pan_seq, effects)
        return {**self._card_view(new), "pan": pan, "replaced": old.id}
