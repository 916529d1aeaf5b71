"""Typed errors of the switch engine.

One root (:class:`BulkheadError`). As in h11, "the peer sent garbage" (:class:`RemoteProtocolError`) and
"we built garbage" (:class:`LocalProtocolError`) are different classes, so a link can answer the first with
a format error and treat the second as a bug. No message text ever carries clear card data: callers pass
masked values only, and :mod:`switch.model.masking` does the masking.
"""

from __future__ import annotations


class BulkheadError(Exception):
    """Root of every error raised by Bulkhead's own code."""


class ConfigError(BulkheadError):
    """A configuration file is invalid. Names the file, the key and the reason."""

    def __init__(self, file: str, key: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


class ConfigErrors(ConfigError):
    """Several problems found in one file (a routing table is checked whole, so an operator fixes them all in
    one go). Its file, key, reason and line are the first problem's; ``errors`` holds every one, in the
    order they were found, and the message lists them one per line."""

    def __init__(self, errors: list[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        first = errors[0]
        super().__init__(first.file, first.key, first.reason, first.line)
        self.errors = tuple(errors)
        self.args = ("\n".join(str(error) for error in errors),)


class ProtocolError(BulkheadError):
    """Something on the wire is wrong."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes we cannot accept (bad length, bad bitmap, bad field)."""


class LocalProtocolError(ProtocolError):
    """We were about to send something invalid: a bug or a bad mapping on our side."""


class FramingError(RemoteProtocolError):
    """A frame cannot be delimited: bad length prefix, oversized frame, bad header."""


class DecodeError(RemoteProtocolError):
    """A message body cannot be decoded. Carries the field number and byte position.

    ``field`` is the ISO 8583 field number as pyiso8583 names it ("t" for the MTI, "p"/"s"/"t" bitmaps, or a
    number as a string); ``position`` is the byte offset in the message body where decoding failed. The text
    never contains field data: only what went wrong and where.
    """

    def __init__(self, reason: str, field: str, position: int, mti: str | None = None) -> None:
        self.reason = reason
        self.field = field
        self.position = position
        self.mti = mti
        super().__init__(f"field {field}: {reason} (position {position})")


class EncodeError(LocalProtocolError):
    """A message cannot be encoded with the link's spec. Carries the field number."""

    def __init__(self, reason: str, field: str) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"field {field}: {reason}")


class FieldError(RemoteProtocolError):
    """A decoded message lacks a mandatory field or carries a value that breaks the field's rule."""

    def __init__(self, field_number: int, reason: str) -> None:
        self.field = field_number
        self.reason = reason
        super().__init__(f"field {field_number}: {reason}")


class UnknownMtiError(RemoteProtocolError):
    """The MTI is well-formed but not one this adapter handles."""

    def __init__(self, mti: str) -> None:
        self.mti = mti
        super().__init__(f"unsupported MTI {mti!r}")
