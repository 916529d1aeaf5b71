"""A card's life after issuance: ``card.show``, ``card.activate``, ``card.block``, ``card.unblock``, ``card.set_pin``,
``card.reset_pin``, ``card.set_limits``, ``card.events``; and the checks issuance shares with them."""

from __future__ import annotations

from typing import Any

from hsm.errors import HsmError, HsmUnavailableError
from processors.commands.args import BLOCK_STATUSES, DEAD, HEX16, ISO_FORMAT_0, ZPK, Args, CommandError, command
from processors.commands.base import CommandsBase
from processors.model import CARD_EVENT_SEQUENCE, Card, CardEvent, CardEventKind, CardStatus, Channel, Effects


class CardCommands(CommandsBase):
    """A card's status, PIN and limits, and the checks issuance shares with them."""

    @command("card.show")
    async def _card_show(self, a: Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        return self._card_view(card)

    def _expired(self, card: Card) -> bool:
        today = self._now().date()
        return card.expiry < f"{today.year % 100:02d}{today.month:02d}"

    def _check_not_closed(self, a: Args, card: Card) -> None:
        """Refuse to bring back a card (activate, unblock, replace) whose customer or default account is closed:
        a closed account takes no more card transactions."""
        customer = self.state.customers.get(card.customer_id)
        if customer is not None and customer.status == "closed":
            raise a.error("card", f"card {card.id}: customer {customer.id} is closed")
        account = self.state.accounts.get(card.account_id)
        if account is not None and account.status == "closed":
            raise a.error("card", f"card {card.id}: its account {account.id} is closed")

    def _open_links(self, card: Card) -> dict[str, str]:
        """The card's DE 3 account-type links without the accounts closed since it was issued."""
        accounts = self.state.accounts
        return {kind: x for kind, x in card.accounts.items()
                if x not in accounts or accounts[x].status != "closed"}

    def _update(self, card: Card, effects: Effects, **changes: Any) -> dict[str, Any]:
        for name, value in changes.items():
            setattr(card, name, value)
        effects.add(card)
        return self._card_view(card)

    @command("card.activate")
    async def _card_activate(self, a: Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        if card.status != CardStatus.INACTIVE:
            raise a.error("card", f"card {card.id} is {card.status.value}, only an inactive card is activated")
        if self._expired(card):
            raise a.error("card", f"card {card.id} expired ({card.expiry})")
        self._check_not_closed(a, card)
        return self._update(card, effects, status=CardStatus.ACTIVE, status_reason="")

    @command("card.block")
    async def _card_block(self, a: Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        status = a.text("status")
        reason = a.text("reason")
        a.done()
        if status not in [s.value for s in BLOCK_STATUSES]:
            raise a.error("status", f"must be one of {', '.join(s.value for s in BLOCK_STATUSES)}")
        if card.status in (*DEAD, CardStatus.LOST, CardStatus.STOLEN):
            raise a.error("card", f"card {card.id} is already {card.status.value}")
        # Remember what unblocking returns to (a card blocked before activation stays inactive); a blocked (or
        # captured) card reported lost or stolen keeps the status from before the first block.
        held = (CardStatus.BLOCKED, CardStatus.CAPTURED)
        before = card.status_before_block if card.status in held else card.status.value
        return self._update(card, effects, status=CardStatus(status), status_reason=reason,
                            status_before_block=before)

    @command("card.unblock")
    async def _card_unblock(self, a: Args, effects: Effects) -> dict[str, Any]:
        """A blocked card, or one an ATM captured (the cardholder has it back), returns to what it was."""
        card, _ = self._card(a)
        a.done()
        if card.status not in (CardStatus.BLOCKED, CardStatus.CAPTURED):
            hint = " (lost and stolen cards are replaced)" if card.status in BLOCK_STATUSES else ""
            raise a.error("card", f"card {card.id} is {card.status.value}, not blocked or captured{hint}")
        self._check_not_closed(a, card)
        if card.status == CardStatus.CAPTURED:
            self._event(card, CardEventKind.RELEASED, "captured card unblocked by an operator", effects)
        # Rows blocked before the field existed have no recorded status: they were active (the old rule).
        restored = CardStatus(card.status_before_block) if card.status_before_block else CardStatus.ACTIVE
        return self._update(card, effects, status=restored, status_reason="", status_before_block="")

    def _event(self, card: Card, kind: CardEventKind, detail: str, effects: Effects) -> None:
        """An audit event of ``card`` made by a command (no message: no duplicate key, no terminal)."""
        seq = self.state.next_value(CARD_EVENT_SEQUENCE)
        event = CardEvent(id=f"A{self.state.cell:02d}-{seq.value}", key="", card_id=card.id, kind=kind,
                          created_at=self._now(), detail=detail)
        self.state.put(event)
        effects.add(seq, event)

    @command("card.events")
    async def _card_events(self, a: Args, effects: Effects) -> dict[str, Any]:
        """The card's audit events of the retention window (PIN changes, their reversals, captures, releases),
        newest first. Never the PIN verification values they keep."""
        card, _ = self._card(a)
        a.done()
        events = sorted((e for e in self.state.card_events.values() if e.card_id == card.id),
                        key=lambda e: (e.created_at, e.id), reverse=True)
        return {"card": card.id, "masked_pan": self.masked(card), "status": card.status.value,
                "events": [{"event": e.id, "kind": e.kind.value, "at": e.created_at.isoformat(),
                            "terminal": e.terminal, "txn": e.txn_id, "detail": e.detail} for e in events]}

    @command("card.set_pin")
    async def _card_set_pin(self, a: Args, effects: Effects) -> dict[str, Any]:
        card, given = self._card(a)
        pin_block = a.text("pin_block")
        a.done()
        if not HEX16.match(pin_block):
            raise a.error("pin_block", "expected 16 hex digits (an ISO 9564 format 0 PIN block under the ZPK)")
        self._check_pin_card(a, card)
        product = self.catalog.products.get(card.product)
        keys = self.catalog.keys.get(product.keys) if product is not None else None
        if keys is None:
            raise a.error("card", f"card {card.id}: no key set for product {card.product!r}")
        if self.hsm is None:
            raise CommandError(f"{a.command}: this cell has no HSM configured")
        pan = self._pan_of(card, given, a)
        try:
            pvv = await self.hsm.generate_pvv(ZPK, keys.zpk, keys.pvk, pin_block.upper(), ISO_FORMAT_0, pan,
                                              card.pvki)
        except HsmUnavailableError as exc:
            raise CommandError(f"{a.command}: the HSM is unreachable: {exc}") from None
        except HsmError as exc:  # the HSM's text carries codes and field names only, never the PIN or PAN
            raise CommandError(f"{a.command}: the HSM refused the PIN block: {exc}") from None
        # The engine may have run during the HSM call: look again before changing anything.
        card = self.state.cards.get(card.id, card)
        self._check_pin_card(a, card)
        return self._update(card, effects, pvv=pvv, pin_tries=0, pin_set_by="")

    def _check_pin_card(self, a: Args, card: Card) -> None:
        if card.status in (*DEAD, CardStatus.LOST, CardStatus.STOLEN):
            raise a.error("card", f"card {card.id} is {card.status.value}")

    @command("card.reset_pin")
    async def _card_reset_pin(self, a: Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        self._check_pin_card(a, card)
        return self._update(card, effects, pvv="", pin_tries=0, pin_set_by="")

    @command("card.set_limits")
    async def _card_set_limits(self, a: Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        channel = a.text("channel")
        changes: dict[str, int | None] = {}
        for name in ("per_txn", "daily_amount", "daily_count"):
            if a.has(name):
                changes[name] = a.integer(name, None)
        a.done()
        channels = [c.value for c in Channel]
        if channel not in channels:
            raise a.error("channel", f"must be one of {', '.join(channels)}")
        if not changes:
            raise CommandError(f"{a.command}: give at least one of per_txn, daily_amount, daily_count "
                               "(null removes a card override)")
        limits = {k: dict(v) for k, v in card.limits.items()}
        own = limits.setdefault(channel, {})
        for name, value in changes.items():
            if value is None:
                own.pop(name, None)
            else:
                own[name] = value
        if not own:
            del limits[channel]
        return self._update(card, effects, limits=limits)
