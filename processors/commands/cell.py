"""The cell's commands in one object: :class:`CellCommands` is every command group on one cell's state."""

from __future__ import annotations

from processors.commands.accounts import AccountCommands
from processors.commands.credit import CreditCommands
from processors.commands.customers import CustomerCommands
from processors.commands.issuance import CardIssuance
from processors.commands.operations import OperationsCommands


class CellCommands(CustomerCommands, AccountCommands, CardIssuance, CreditCommands, OperationsCommands):
    """Runs lifecycle commands against one cell's state (see :mod:`processors.commands`): :meth:`run` finds the
    handler a command group registered for the command's name."""
