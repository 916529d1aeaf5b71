"""What every cell command shares: its error (:class:`CommandError`), the registry of handlers by command name, the
reader of its arguments (:class:`Args`: types checked, unknown arguments refused with a hint), and the constants of
the card and account rules."""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from processors import money
from processors.model import CardStatus
from switch.model.errors import BulkheadError


def utcnow() -> datetime:
    return datetime.now(UTC)


class CommandError(BulkheadError):
    """A command was refused: bad input or a business rule. Nothing was changed. No card data in the text."""


# A command's handler: a method of CellCommands (of one of its command groups), called with the command's arguments
# and the effects to record its changes in; it returns the command's result.
Handler = Callable[..., Awaitable[dict[str, Any]]]
H = TypeVar("H", bound=Handler)
_COMMANDS: dict[str, Handler] = {}

DEBIT_KINDS: Final = ("checking", "savings")
ACCOUNT_KINDS: Final = (*DEBIT_KINDS, "credit")
# DE 3 positions 3-4 / 5-6, account type (ISO 8583:1987): 10 savings, 20 checking, 30 credit.
ACCOUNT_TYPES: Final = {"savings": "10", "checking": "20", "credit": "30"}
BLOCK_STATUSES: Final = (CardStatus.BLOCKED, CardStatus.LOST, CardStatus.STOLEN)
DEAD: Final = (CardStatus.REPLACED, CardStatus.EXPIRED)
_MAX_TEXT = 200
HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")
YYMM = re.compile(r"^\d{2}(0[1-9]|1[0-2])$")
# Cardholder payments received (bank transfer, direct debit, a branch counter): a clearing account of its own,
# reconciled against the bank's incoming payments, apart from GL:CASH (deposits of cash into deposit accounts).
GL_PAYMENTS: Final = "GL:PAYMENTS"
ZPK: Final = "001"  # payShield key type code of a zone PIN key (hsm.api: pin_key_type)
ISO_FORMAT_0: Final = "01"  # Thales PIN block format code of ISO 9564-1 format 0


def command(name: str) -> Callable[[H], H]:
    """Register the decorated method as the handler of command ``name`` (:meth:`CellCommands.run` finds it here)."""
    def register(handler: H) -> H:
        _COMMANDS[name] = handler
        return handler
    return register


def handler_of(name: str) -> Handler | None:
    return _COMMANDS.get(name)


def command_names() -> list[str]:
    """Every command :meth:`CellCommands.run` accepts."""
    return sorted(_COMMANDS)


class Args:
    """A command's arguments being read: types checked, leftovers are errors."""

    def __init__(self, command: str, args: Mapping[str, Any]) -> None:
        if not isinstance(args, Mapping):
            raise CommandError(f"{command}: arguments must be an object, got {type(args).__name__}")
        self.command = command
        self.data = args
        self.used: set[str] = set()

    def error(self, name: str, reason: str) -> CommandError:
        return CommandError(f"{self.command}: {name}: {reason}")

    def has(self, name: str) -> bool:
        self.used.add(name)
        return name in self.data

    def raw(self, name: str, default: Any = ...) -> Any:
        """The value as given; ``default`` when absent or null (required when no default)."""
        self.used.add(name)
        if name not in self.data or (self.data[name] is None and default is not ...):
            if default is ...:
                raise self.error(name, "is required")
            return default
        return self.data[name]

    def _given(self, name: str, default: Any) -> bool:
        return not (default is not ... and (name not in self.data or self.data[name] is None))

    def text(self, name: str, default: Any = ...) -> Any:
        value = self.raw(name, default)
        if not self._given(name, default):
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, "expected a non-empty string")
        if len(value) > _MAX_TEXT:
            raise self.error(name, f"longer than {_MAX_TEXT} characters")
        return value.strip()

    def integer(self, name: str, default: Any = ..., *, low: int = 0, high: int = money.MAX_AMOUNT) -> Any:
        value = self.raw(name, default)
        if not self._given(name, default):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise self.error(name, f"must be {low}..{high}, got {value}")
        return value

    def flag(self, name: str, default: Any = ...) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {type(value).__name__}")
        return value

    def done(self) -> None:
        for extra in sorted(set(self.data) - self.used):
            hint = difflib.get_close_matches(extra, sorted(self.used), n=1)
            raise self.error(extra, "unknown argument" + (f" (did you mean {hint[0]!r}?)" if hint else ""))

