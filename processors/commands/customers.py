"""Customers: ``customer.open`` (in the cell its bank reference maps to), ``customer.show``, ``customer.close``."""

from __future__ import annotations

from typing import Any

from processors import cardnumber
from processors.commands.args import Args, command
from processors.commands.base import CommandsBase
from processors.model import CardStatus, Customer, Effects


class CustomerCommands(CommandsBase):
    """Opening, showing and closing customers."""

    @command("customer.open")
    async def _customer_open(self, a: Args, effects: Effects) -> dict[str, Any]:
        name = a.text("name")
        external_ref = a.text("external_ref")
        a.done()
        cell = cardnumber.cell_for_external_ref(external_ref, self.cell_count)
        if cell != self.state.cell:
            raise a.error("external_ref", f"belongs to cell {cell} (crc32 % {self.cell_count}), not this cell "
                          f"{self.state.cell}")
        for other in self.state.customers.values():
            if other.external_ref == external_ref:
                raise a.error("external_ref", f"already customer {other.id}")
        seq = self.state.next_value("customer")
        customer = Customer(cardnumber.make_id(self.state.cell, seq.value), self.state.cell, name, external_ref,
                            created_at=self._now())
        self.state.put(customer)
        effects.add(seq, customer)
        return self._customer_view(customer)

    @command("customer.show")
    async def _customer_show(self, a: Args, effects: Effects) -> dict[str, Any]:
        customer = self._customer(a)
        a.done()
        return self._customer_view(customer)

    @command("customer.close")
    async def _customer_close(self, a: Args, effects: Effects) -> dict[str, Any]:
        customer = self._customer(a)
        a.done()
        if customer.status == "closed":
            raise a.error("customer", f"customer {customer.id} is already closed")
        problems = []
        open_accounts = [f"{x.id} ({x.kind})" for x in self._accounts_of(customer.id) if x.status != "closed"]
        if open_accounts:
            problems.append(f"open account(s) {', '.join(open_accounts)}: close them first")
        active = sorted(c.id for c in self.state.cards.values()
                        if c.customer_id == customer.id and c.status == CardStatus.ACTIVE)
        if active:
            problems.append(f"active card(s) {', '.join(active)}: block them first")
        line = self._line_of(customer.id)
        # With every card account closed at a zero balance the line owes nothing; a reversal that reached a
        # closed account since would show here, and the money must be settled before the line closes.
        if line is not None and (line.owed or line.held):
            problems.append(f"credit line {line.id} has {line.owed} owed and {line.held} held {line.currency}")
        if problems:
            raise a.error("customer", f"customer {customer.id} cannot be closed: {'; '.join(problems)}")
        customer.status = "closed"
        effects.add(customer)
        if line is not None and line.status != "closed":
            line.status = "closed"
            effects.add(line)
        return self._customer_view(customer)
