"""Typed host commands and responses: the base classes every command module builds on.

A command is a frozen dataclass whose fields are named like the specs of its ``LAYOUT``; its response is
another dataclass with its own ``LAYOUT``. ``repr`` shows only fields marked public (modes, formats, key
types, lengths); PIN blocks, keys, PANs, CVVs and MAC data appear as their length only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from hsm.thales.errors import CommandFailedError
from hsm.thales.fields import Layout, Literal, flat


@dataclass(frozen=True, slots=True, repr=False)
class Message:
    """Fields shared by commands and responses: a layout and a masked ``repr``."""

    LAYOUT: ClassVar[Layout] = ()

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        public = {spec.name for spec in flat(self.LAYOUT) if spec.public}
        parts = []
        for name, value in self.values().items():
            if value is None:
                continue
            parts.append(f"{name}={value!r}" if name in public else f"{name}=<{len(value)}>")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True, repr=False)
class Response(Message):
    """Fields after the error code of a response."""


@dataclass(frozen=True, slots=True, repr=False)
class NoFields(Response):
    """The response of a command that answers only with an error code (verifications)."""


R = TypeVar("R", bound=Response)


@dataclass(frozen=True, slots=True, repr=False)
class Command(Message, Generic[R]):
    """A host command. ``CODE`` is the 2-character command code; ``RESPONSE`` the response class.

    ``FIELDS_ON`` lists the error codes whose responses still carry the fields (``00`` and the advisory codes,
    e.g. A6's 01 "parity forced").
    """

    CODE: ClassVar[str] = ""
    RESPONSE: ClassVar[type[Response]] = NoFields
    FIELDS_ON: ClassVar[frozenset[str]] = frozenset({"00"})


_NEXT = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "1234567890BCDEFGHIJKLMNOPQRSTUVWXYZAbcdefghijklmnopqrstuvwxyza",
)


def response_code(command_code: str) -> str:
    """The response code for a command code: its second character incremented (A0 -> A1, CY -> CZ).

    payShield host commands never end in ``9``, ``Z`` or ``z``, but an unknown command the server answers may:
    there the increment wraps within the character's own class (``9`` -> ``0``, ``Z`` -> ``A``, ``z`` -> ``a``;
    Bulkhead's choice) so that a response code is always two alphanumerics, as clients parse it (``ZZ`` ->
    ``ZA``, where plain ASCII arithmetic would give ``Z[``).
    """
    return command_code[0] + command_code[1].translate(_NEXT)


@dataclass(frozen=True, slots=True)
class Reply(Generic[R]):
    """A decoded response: header, response code, error code, and the fields when the error code has them."""

    header: bytes
    response_code: str
    error_code: str
    response: R | None

    @property
    def ok(self) -> bool:
        return self.error_code == "00"

    def result(self) -> R:
        """The response fields; :class:`CommandFailedError` (carrying the error code) if there are none."""
        if self.response is None:
            raise CommandFailedError(self.response_code, self.error_code)
        return self.response


def layout_names(layout: Layout) -> list[str]:
    """The value-carrying field names of a layout, in wire order."""
    return [spec.name for spec in flat(layout) if not isinstance(spec, Literal)]
