"""Typed errors of the ATM processor: one root, and a class per kind of bad input.

As in h11, what a terminal sent (:class:`AtmFieldError`: a field of the ATM interface that does not parse) and
what an operator asked (:class:`TerminalSpecError`: a registry value that breaks a rule, naming the argument) are
different classes, so the engine answers the first with a code and the command line prints the second as one
line. No message carries a key, a key component or card data.
"""

from __future__ import annotations

from switch.model.errors import BulkheadError


class AtmpError(BulkheadError):
    """Root of the ATM processor's errors."""


class AtmFieldError(AtmpError):
    """A field of an ATM interface message that breaks the interface's rules (atm-interface: DE 48, 63, 90, 95,
    the 0500 totals fields). ``field`` is the data element number; the engine answers it as a format error."""

    def __init__(self, field: int, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"DE {field}: {reason}")


class TerminalSpecError(AtmpError):
    """A terminal, cassette or key value that breaks a registry rule. ``argument`` names what was wrong in the
    words the operator used (``--cassette``, ``id``), so the command line prints one line naming it."""

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")


class CashError(AtmpError):
    """Cash figures that cannot be applied to a terminal's cassettes (a position the terminal does not have, a
    negative count, a replenishment that leaves out a cassette)."""

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")


class DispenseError(AtmpError):
    """A dispense report that contradicts itself (more dispensed than approved, notes for a missing cassette)."""


class TerminalNotFoundError(AtmpError):
    """No terminal with that id in the registry."""

    def __init__(self, terminal_id: str) -> None:
        self.terminal_id = terminal_id
        super().__init__(f"unknown terminal {terminal_id!r}")


class TerminalExistsError(AtmpError):
    """A terminal with that id is registered already."""

    def __init__(self, terminal_id: str) -> None:
        self.terminal_id = terminal_id
        super().__init__(f"terminal {terminal_id!r} exists already")


class TerminalStateError(AtmpError):
    """An operator action the terminal's status does not allow (see :data:`atmp.model.STATUS_TRANSITIONS`)."""
