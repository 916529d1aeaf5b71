"""The back office's and the operator's view of a cell: ``exception.list`` and ``exception.resolve`` (advices posted
on an assumption or not posted, processors.model.ExceptionItem), ``cell.stats``."""

from __future__ import annotations

from typing import Any, Final

from processors.commands.args import DEBIT_KINDS, Args, command
from processors.commands.base import CommandsBase, iso
from processors.model import Effects, ExceptionItem


class OperationsCommands(CommandsBase):
    """Exceptions for the back office, and the cell's counts."""

    @command("exception.list")
    async def _exception_list(self, a: Args, effects: Effects) -> dict[str, Any]:
        status = a.text("status", "open")
        a.done()
        if status not in EXCEPTION_STATUSES:
            raise a.error("status", f"must be one of {', '.join(EXCEPTION_STATUSES)}, not {status!r}")
        items = sorted((x for x in self.state.exceptions.values() if status in ("all", x.status)),
                       key=lambda x: (x.created_at, _number(x.id)))
        return {"cell": self.state.cell, "status": status, "count": len(items),
                "exceptions": [_exception_view(x) for x in items]}

    @command("exception.resolve")
    async def _exception_resolve(self, a: Args, effects: Effects) -> dict[str, Any]:
        ref = a.text("exception")
        note = a.text("note")
        a.done()
        item = self.state.exceptions.get(ref)
        if item is None:
            raise a.error("exception", f"unknown exception {ref}{self._elsewhere(ref)}")
        if item.status == "resolved":
            raise a.error("exception", f"exception {item.id} was already resolved ({item.resolution})")
        item.status, item.resolved_at, item.resolution = "resolved", self._now(), note
        effects.add(item)
        return _exception_view(item)

    @command("cell.stats")
    async def _cell_stats(self, a: Args, effects: Effects) -> dict[str, Any]:
        a.done()
        s = self.state
        cards: dict[str, int] = {}
        for card in s.cards.values():
            cards[card.status.value] = cards.get(card.status.value, 0) + 1
        deposits: dict[str, int] = {}
        for account in s.accounts.values():
            if account.kind in DEBIT_KINDS:
                deposits[account.currency] = deposits.get(account.currency, 0) + account.ledger_balance
        owed: dict[str, int] = {}
        for line in s.credit_lines.values():
            owed[line.currency] = owed.get(line.currency, 0) + line.owed
        return {
            "cell": s.cell, "cell_count": self.cell_count, "customers": len(s.customers),
            "accounts": len(s.accounts), "credit_lines": len(s.credit_lines), "cards": cards,
            "open_holds": len(s.holds), "txns": len(s.txns), "early_reversals": len(s.early_reversals),
            "active_plans": sum(1 for p in s.plans.values() if p.status == "active"),
            "open_exceptions": sum(1 for x in s.exceptions.values() if x.status == "open"),
            "deposits": deposits, "credit_owed": owed,
        }


EXCEPTION_STATUSES: Final = ("open", "resolved", "all")


def _exception_view(item: ExceptionItem) -> dict[str, Any]:
    return {
        "exception": item.id, "kind": item.kind.value, "status": item.status, "txn": item.txn_id,
        "card": item.card_id, "account": item.account_id, "mti": item.mti, "stan": item.stan, "rrn": item.rrn,
        "amount": item.amount, "currency": item.currency, "detail": item.detail, "created_at": iso(item.created_at),
        "resolved_at": iso(item.resolved_at), "resolution": item.resolution,
    }


def _number(identifier: str) -> int:
    """The sequence number at the end of an id like ``E01-12`` (so E01-10 sorts after E01-9)."""
    tail = identifier.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0
