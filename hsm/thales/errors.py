"""Typed errors of the payShield host protocol (client, server and codec).

All derive from :class:`hsm.errors.HsmError`, so ``code`` is always the two-digit Thales error code that
describes the failure. As in h11, "the peer sent garbage" (:class:`RemoteThalesError`) and "we were about to
send garbage" (:class:`LocalThalesError`) are different classes: the server answers the first with an error
code, the second is a bug on our side. Texts name fields and positions, never field values.
"""

from __future__ import annotations

from hsm.errors import HsmError
from hsm.errors import HsmUnavailableError as UnavailableError


class ThalesError(HsmError):
    """Root of the host-protocol errors."""


class LocalThalesError(ThalesError):
    """We were about to encode an invalid command or response (a bug or a bad argument). Code 15."""

    code = "15"

    def __init__(self, command: str, field: str, reason: str) -> None:
        self.command = command
        self.field = field
        self.reason = reason
        super().__init__(f"{command} field {field}: {reason}")


class RemoteThalesError(ThalesError):
    """The peer sent bytes that do not follow the host protocol."""


class MalformedCommandError(RemoteThalesError):
    """A request or response body does not match the command's layout: payShield error 15.

    ``position`` is the byte offset within the body (after the header) where decoding failed.
    """

    code = "15"

    def __init__(self, command: str, field: str, position: int, reason: str) -> None:
        self.command = command
        self.field = field
        self.position = position
        self.reason = reason
        super().__init__(f"{command} field {field} at position {position}: {reason}")


class UnsupportedCommandError(RemoteThalesError):
    """The command code is not one this HSM executes (code from the profile: 68 by default)."""

    def __init__(self, command: str, code: str = "68") -> None:
        self.command = command
        super().__init__(f"command {command!r} not supported", code)


class HeaderError(RemoteThalesError):
    """A frame is too short to hold the configured header and a command code: payShield error 51."""

    code = "51"

    def __init__(self, length: int, header_length: int) -> None:
        self.length = length
        self.header_length = header_length
        super().__init__(f"frame of {length} bytes cannot hold a {header_length}-byte header and a command")


class UnexpectedResponseError(RemoteThalesError):
    """A response carries a response code other than the one its request calls for."""

    code = "15"

    def __init__(self, expected: str, received: str) -> None:
        self.expected = expected
        self.received = received
        super().__init__(f"expected response code {expected}, received {received!r}")


class CommandFailedError(ThalesError):
    """The HSM answered a command with a non-zero error code (``code`` is that error code)."""

    def __init__(self, command: str, code: str) -> None:
        self.command = command
        super().__init__(f"{command} answered with error {code}", code)


class HsmUnavailableError(ThalesError, UnavailableError):
    """No answer: the connection dropped with the command in flight, or the per-command timeout fired.

    Code 41 is not sent by any HSM here; it only keeps the :class:`HsmError` contract (``code`` always set).
    """

    code = "41"


class HsmTimeoutError(HsmUnavailableError):
    """The per-command timeout fired before the HSM answered."""
