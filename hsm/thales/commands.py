"""Sans-I/O codec of the payShield host protocol: requests and responses, client side and server side.

Message layout (the 2-byte length is added by :mod:`hsm.thales.framing`)::

    request : HEADER (m chars, echoed) | COMMAND (2) | fields | [% LMK id 2N] | [X'19' trailer <= 32]
    response: HEADER (echoed)          | RESPONSE (2) | ERROR (2N) | fields | [X'19' trailer echoed]

The response code is the command code with its second character incremented (A0 -> A1). Field layouts are
in the command modules (:mod:`~hsm.thales.cmd_keys`, :mod:`~hsm.thales.cmd_pin`, :mod:`~hsm.thales.cmd_card`,
:mod:`~hsm.thales.cmd_emv`, :mod:`~hsm.thales.cmd_pinlmk`), each citing its source. Commands: A0 A4 BU A6 A8
NC B2 CA CC CI G0 DA EA DC EC DG FW BK BA NG JC JE CW CY M6 M8 MA MC KQ KW.

Firmware-dependent layouts go through :class:`~hsm.thales.profile.Profile`: M6 / M8 (MAC size field,
1- or 2-digit MAC algorithm), KW (IV-AC field), and the error for an unknown command (68 by default).

Error handling on the server side (:func:`decode_request` returns a :class:`Rejected` instead of raising):

- a frame shorter than the header plus a command code, or whose command code is not two letters/digits (the
  usual symptom of a client configured with another header length): error 51 (invalid message header),
  answered with what there is of the header (space-padded to the configured length) and response code
  ``ZZ``;
- a command code this HSM does not execute: the profile's error (68 "command disabled", as a payShield 9000
  v2+ answers any host command not enabled in its security settings; 67 "not licensed" on request), with
  the usual response code (second character incremented, wrapping 9 -> 0, Z -> A, z -> a so that it is
  always two alphanumerics: see :func:`~hsm.thales.base.response_code`);
- a field that does not match the layout, or bytes left after the last field that are neither ``%`` + LMK
  id nor a trailer: error 15 (invalid input data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from hsm.thales import cmd_card, cmd_emv, cmd_keys, cmd_pin, cmd_pinlmk
from hsm.thales.base import Command, NoFields, Reply, Response, response_code
from hsm.thales.errors import (
    HeaderError,
    LocalThalesError,
    MalformedCommandError,
    RemoteThalesError,
    ThalesError,
    UnexpectedResponseError,
    UnsupportedCommandError,
)
from hsm.thales.fields import DIGITS, LMK_MARK, TRAILER_MARK, Ctx, Reader, read_layout, write_layout
from hsm.thales.profile import Profile

R = TypeVar("R", bound=Response)

COMMANDS: dict[str, type[Command[Any]]] = {
    cls.CODE: cls
    for cls in (
        cmd_keys.GenerateKey, cmd_keys.FormKeyFromComponents, cmd_keys.KeyCheckValue, cmd_keys.ImportKey,
        cmd_keys.ExportKey,
        cmd_keys.Diagnostics, cmd_keys.Echo,
        cmd_pin.TranslatePinTpkToZpk, cmd_pin.TranslatePinZpkToZpk, cmd_pin.TranslatePinDukpt,
        cmd_pin.TranslatePinDukptFormat, cmd_pin.VerifyPinIbmTpk, cmd_pin.VerifyPinIbmZpk,
        cmd_pin.VerifyPinPvvTpk, cmd_pin.VerifyPinPvvZpk, cmd_pin.GeneratePvvFromLmkPin, cmd_pin.GeneratePvv,
        cmd_pin.GenerateIbmOffset,
        cmd_pinlmk.EncryptPin, cmd_pinlmk.DecryptPin, cmd_pinlmk.TranslatePinTpkToLmk, cmd_pinlmk.TranslatePinZpkToLmk,
        cmd_card.GenerateCvv, cmd_card.VerifyCvv, cmd_card.GenerateMac, cmd_card.VerifyMac,
        cmd_card.GenerateMacLegacy, cmd_card.VerifyMacLegacy,
        cmd_emv.VerifyArqcKq, cmd_emv.VerifyArqcKw,
    )
}
"""Command code -> command class, for every command this codec knows."""

HEADER_ERROR_RESPONSE = "ZZ"


@dataclass(frozen=True, slots=True)
class Inbound:
    """A request as the server decoded it."""

    header: bytes
    command: Command[Any]
    lmk_id: str | None = None
    trailer: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A request the server cannot execute, and what to answer: ``error.code`` under ``header``."""

    header: bytes
    response_code: str
    error: ThalesError
    trailer: bytes | None = None


# ------------------------------------------------------------------------------------------ client side


def encode_request(command: Command[Any], header: bytes, profile: Profile, *, lmk_id: str | None = None,
                   trailer: bytes | None = None) -> bytes:
    """The message for ``command`` (without the 2-byte length): header, code, fields, [%LMK id], [trailer]."""
    ctx = Ctx(command.CODE, profile, {})
    body = write_layout(command.LAYOUT, command.values(), ctx)
    out = header + command.CODE.encode("ascii") + body
    if lmk_id is not None:
        if len(lmk_id) != 2 or not lmk_id.isdigit():
            raise LocalThalesError(command.CODE, "LMK identifier", "must be 2 digits")
        out += LMK_MARK + lmk_id.encode("ascii")
    if trailer is not None:
        out += _checked_trailer(command.CODE, trailer)
    return out


def message_header(message: bytes, header_length: int) -> bytes:
    """The header of a received message (what the client matches responses by)."""
    return message[:header_length]


def decode_response(message: bytes, header_length: int, request: Command[R], profile: Profile) -> Reply[R]:
    """Decode the response to ``request``.

    Bytes after the last known field are ignored: newer firmware may append fields this codec does not model.
    """
    expected = response_code(request.CODE)
    if len(message) < header_length + 4:
        raise MalformedCommandError(expected, "error code", len(message) - header_length, "response too short")
    header = message[:header_length]
    code = message[header_length:header_length + 2].decode("ascii", "replace")
    if code != expected:
        raise UnexpectedResponseError(expected, code)
    r = Reader(expected, message, header_length + 2)
    error = r.take(2, "error code")
    if not (error.isascii() and error.isalnum()):
        r.pos -= 2
        raise r.fail("error code", "not two alphanumeric characters")
    error_code = error.decode("ascii")
    if error_code not in request.FIELDS_ON:
        return Reply(header, code, error_code, None)
    values = read_layout(request.RESPONSE.LAYOUT, r, Ctx(expected, profile, {}, request))
    response: Any = request.RESPONSE(**values)
    return Reply(header, code, error_code, response)


# ------------------------------------------------------------------------------------------ server side


def decode_request(message: bytes, header_length: int, profile: Profile) -> Inbound | Rejected:
    """Decode a request; anything that cannot be executed comes back as :class:`Rejected`."""
    if len(message) < header_length + 2:
        header = message[:header_length].ljust(header_length, b" ")
        return Rejected(header, HEADER_ERROR_RESPONSE, HeaderError(len(message), header_length))
    header = message[:header_length]
    raw_code = message[header_length:header_length + 2]
    code = raw_code.decode("ascii", "replace")
    cls = COMMANDS.get(code)
    if not (raw_code.isascii() and raw_code.isalnum()):
        # Not a command code at all: most likely a header of the wrong length shifted the fields.
        return Rejected(header, HEADER_ERROR_RESPONSE, HeaderError(len(message), header_length))
    if cls is None:
        return Rejected(header, response_code(code), UnsupportedCommandError(code, profile.unsupported_error))
    r = Reader(code, message, header_length + 2)
    try:
        values = read_layout(cls.LAYOUT, r, Ctx(code, profile, {}))
        lmk_id, trailer = _read_suffix(r)
    except RemoteThalesError as exc:
        return Rejected(header, response_code(code), exc, _trailer_of(message, header_length))
    command: Any = cls(**values)
    return Inbound(header, command, lmk_id, trailer)


def encode_response(inbound: Inbound, error_code: str, response: Response | None, profile: Profile) -> bytes:
    """The answer to ``inbound``: fields only when ``error_code`` is one that carries them."""
    command = inbound.command
    code = response_code(command.CODE)
    out = inbound.header + code.encode("ascii") + _checked_error_code(code, error_code)
    if error_code in command.FIELDS_ON and response is not None and not isinstance(response, NoFields):
        out += write_layout(response.LAYOUT, response.values(), Ctx(code, profile, {}, command))
    return out + _trailer_suffix(inbound.trailer)


def encode_rejection(rejected: Rejected) -> bytes:
    """The answer to a request that could not be executed: header, response code, error code."""
    return (rejected.header + rejected.response_code.encode("ascii") + rejected.error.code.encode("ascii")
            + _trailer_suffix(rejected.trailer))


# ------------------------------------------------------------------------------------------ helpers


def _read_suffix(r: Reader) -> tuple[str | None, bytes | None]:
    """After the last field: optional ``%`` + 2N LMK id, optional X'19' + trailer, then nothing."""
    lmk_id: str | None = None
    if r.startswith(LMK_MARK):
        r.pos += 1
        raw = r.take(2, "LMK identifier")
        if not all(b in DIGITS for b in raw):
            r.pos -= 2
            raise r.fail("LMK identifier", "not 2 digits")
        lmk_id = raw.decode("ascii")
    trailer: bytes | None = None
    if r.startswith(TRAILER_MARK):
        r.pos += 1
        trailer = r.take(r.remaining, "trailer")
        if len(trailer) > 32:
            raise r.fail("trailer", "longer than 32 characters")
        if TRAILER_MARK in trailer:
            # The client side refuses to send such a trailer (_checked_trailer): one X'19' delimits it.
            raise r.fail("trailer", "contains a second X'19'")
    if r.remaining:
        raise r.fail("end of message", f"{r.remaining} unexpected bytes after the last field")
    return lmk_id, trailer


def _trailer_of(message: bytes, header_length: int) -> bytes | None:
    """Best effort for rejections: a trailer is echoed if the message visibly ends with one."""
    at = message.rfind(TRAILER_MARK, header_length + 2)
    return message[at + 1:] if at >= 0 and len(message) - at - 1 <= 32 else None


def _trailer_suffix(trailer: bytes | None) -> bytes:
    return b"" if trailer is None else TRAILER_MARK + trailer


def _checked_trailer(code: str, trailer: bytes) -> bytes:
    if len(trailer) > 32 or TRAILER_MARK in trailer:
        raise LocalThalesError(code, "trailer", "at most 32 bytes, without X'19'")
    return TRAILER_MARK + trailer


def _checked_error_code(code: str, error_code: str) -> bytes:
    if len(error_code) != 2 or not error_code.isascii() or not error_code.isalnum():
        raise LocalThalesError(code, "error code", "must be 2 characters")
    return error_code.encode("ascii")


__all__ = [
    "COMMANDS",
    "Command",
    "Inbound",
    "Rejected",
    "Reply",
    "Response",
    "decode_request",
    "decode_response",
    "encode_rejection",
    "encode_request",
    "encode_response",
    "message_header",
    "response_code",
]
