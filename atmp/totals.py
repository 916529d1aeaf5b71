"""A terminal's totals for a business day against the host's, and the report an operator reads.

The host's totals come from its own records (:meth:`atmp.storage.AtmStore.host_totals`): withdrawals are the
withdrawals whose outcome paid out something, counted once each, with the amount actually dispensed (the approved
amount minus what was reversed); deposits are the approved deposits at their final counted amount. A terminal
counts the same way (ATM journals total what left or entered the machine), so any difference is a discrepancy to
investigate: a withdrawal the host never heard the end of, a reversal the terminal did not journal, a miscount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Totals:
    withdrawals: int = 0
    withdrawal_amount: int = 0  # minor units
    deposits: int = 0
    deposit_amount: int = 0

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.withdrawals - other.withdrawals, self.withdrawal_amount - other.withdrawal_amount,
                      self.deposits - other.deposits, self.deposit_amount - other.deposit_amount)

    @property
    def is_zero(self) -> bool:
        return self == Totals()


@dataclass(frozen=True, slots=True)
class Comparison:
    """The terminal's totals of a day beside the host's. ``difference`` is terminal minus host."""

    terminal_id: str
    day: date
    currency: str
    terminal: Totals
    host: Totals

    @property
    def difference(self) -> Totals:
        return self.terminal - self.host

    @property
    def agree(self) -> bool:
        return self.difference.is_zero

    def report(self, money: Callable[[int], str] = str) -> str:
        """A readable report; ``money`` formats an amount in minor units (the command line passes one that knows
        the currency's exponent)."""
        d = self.difference
        rows = [
            ("withdrawals", str(self.terminal.withdrawals), str(self.host.withdrawals), _signed(d.withdrawals, str)),
            ("withdrawn", money(self.terminal.withdrawal_amount), money(self.host.withdrawal_amount),
             _signed(d.withdrawal_amount, money)),
            ("deposits", str(self.terminal.deposits), str(self.host.deposits), _signed(d.deposits, str)),
            ("deposited", money(self.terminal.deposit_amount), money(self.host.deposit_amount),
             _signed(d.deposit_amount, money)),
        ]
        widths = [max(len(r[i]) for r in [("", "terminal", "host", "difference"), *rows]) for i in range(4)]
        lines = [f"terminal {self.terminal_id}  business day {self.day.isoformat()}  currency {self.currency}"]
        for row in [("", "terminal", "host", "difference"), *rows]:
            lines.append("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                                   for i, cell in enumerate(row)).rstrip())
        lines.append("totals agree" if self.agree else "DISCREPANCY: " + _describe(d, money))
        return "\n".join(lines)


def compare(terminal_id: str, day: date, currency: str, terminal: Totals, host: Totals) -> Comparison:
    return Comparison(terminal_id, day, currency, terminal, host)


def _signed(value: int, fmt: Callable[[int], str]) -> str:
    if value == 0:
        return "-"
    return ("+" if value > 0 else "") + fmt(value)


def _describe(d: Totals, money: Callable[[int], str]) -> str:
    parts = []
    if d.withdrawals or d.withdrawal_amount:
        parts.append(f"the terminal counts {d.withdrawals:+d} withdrawal(s), {_signed(d.withdrawal_amount, money)} "
                     f"against the host")
    if d.deposits or d.deposit_amount:
        parts.append(f"{d.deposits:+d} deposit(s), {_signed(d.deposit_amount, money)}")
    return "; ".join(parts)
