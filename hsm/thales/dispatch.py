"""Server side of the host protocol: execute a decoded command on a :class:`~hsm.software.SoftwareHsm`.

Sans-I/O: :func:`execute` takes a message body and returns the response body. Every outcome is an answer:
a malformed request gets 15, an unknown command the profile's 67/68, an :class:`~hsm.errors.HsmError` its own
code, a verification mismatch 01, and anything unexpected 41 (logged with its type only, never its text,
which could quote input). NG (a PIN under the LMK back to the clear PIN, out of the HSM) is executed only by an
HSM holding the public Thales test LMK, and answers like a command not enabled (the profile's 68) otherwise, as a
payShield answers a command its security settings leave disabled. The server holds one LMK, identifier 00: a
request that names another LMK (``%`` + 2N) gets 13 (LMK error).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hsm.errors import HsmError, InvalidInputError, LmkError
from hsm.software import SoftwareHsm
from hsm.thales import cmd_card as card
from hsm.thales import cmd_emv as emv
from hsm.thales import cmd_keys as keys
from hsm.thales import cmd_pin as pin
from hsm.thales import cmd_pinlmk as pinlmk
from hsm.thales.base import Command, NoFields, Response
from hsm.thales.commands import Inbound, Rejected, decode_request, encode_rejection, encode_response
from hsm.thales.errors import UnsupportedCommandError
from hsm.thales.profile import Profile

log = logging.getLogger("bulkhead.hsm.server")

Outcome = tuple[str, Response | None]
Handler = Callable[[SoftwareHsm, Any, Profile], Outcome]

LMK_ID = "00"
"""The identifier of the one LMK this server holds; a request naming another LMK (``%`` + id) gets 13."""
OK = "00"
MISMATCH = "01"
PARITY_FORCED = "01"
EMPTY = NoFields()


def execute(hsm: SoftwareHsm, message: bytes, header_length: int, profile: Profile) -> bytes:
    """Decode one request message, run it, and return the response message (never raises for bad input)."""
    decoded = decode_request(message, header_length, profile)
    if isinstance(decoded, Rejected):
        log.info("rejected request: response %s error %s (%s)", decoded.response_code, decoded.error.code,
                 type(decoded.error).__name__)
        return encode_rejection(decoded)
    error_code, response = run(hsm, decoded, profile)
    return encode_response(decoded, error_code, response, profile)


def run(hsm: SoftwareHsm, inbound: Inbound, profile: Profile) -> Outcome:
    """Execute one command: (error code, response fields or ``None``)."""
    command = inbound.command
    handler = HANDLERS.get(type(command))
    try:
        if inbound.lmk_id not in (None, LMK_ID):
            raise LmkError(f"LMK {inbound.lmk_id} is not loaded (this HSM holds LMK {LMK_ID} only)")
        if handler is None:
            raise UnsupportedCommandError(command.CODE, profile.unsupported_error)
        return handler(hsm, command, profile)
    except HsmError as exc:
        return exc.code, None
    except NotImplementedError:
        return profile.unsupported_error, None
    except Exception as exc:  # one bad request must never stop the server
        log.error("internal error on %s: %s", command.CODE, type(exc).__name__)
        return "41", None


def _verdict(ok: bool) -> Outcome:
    return (OK if ok else MISMATCH), EMPTY


# ------------------------------------------------------------------------------------------------ keys


def _generate_key(hsm: SoftwareHsm, c: keys.GenerateKey, p: Profile) -> Outcome:
    if c.mode == 0:
        made = hsm.generate_key(c.key_type, c.lmk_scheme)
        return OK, keys.KeyGenerated(made.under_lmk, None, made.kcv)
    if c.mode == 1 and c.zmk is not None and c.zmk_scheme is not None:
        zmk_type = "002" if c.zmk_flag == 1 else "000"
        both = hsm.generate_key_exported(c.key_type, c.zmk, c.lmk_scheme, c.zmk_scheme, zmk_type=zmk_type)
        return OK, keys.KeyGenerated(both.under_lmk, both.under_zmk, both.kcv)
    raise InvalidInputError("A0 mode must be 0 or 1")


def _form_key(hsm: SoftwareHsm, c: keys.FormKeyFromComponents, p: Profile) -> Outcome:
    made = hsm.form_key_from_encrypted_components(c.key_type, c.components, c.lmk_scheme)
    return OK, keys.KeyFormed(made.under_lmk, made.kcv)


# Key length flag (BU) -> the scheme letters whose keys have that length.
_LENGTH_FLAG_SCHEMES = {0: "Z", 1: "UX", 2: "TY"}


def _key_check_value(hsm: SoftwareHsm, c: keys.KeyCheckValue, p: Profile) -> Outcome:
    schemes = _LENGTH_FLAG_SCHEMES.get(c.key_length_flag)
    if schemes is None:
        raise HsmError("BU key length flag must be 0, 1 or 2", "05")
    scheme = c.key[:1]  # empty key: no scheme to compare; key_check_value answers 15 for it
    if scheme and scheme in "ZUXTY" and scheme not in schemes:
        raise HsmError("BU key length flag does not match the key", "05")
    return OK, keys.CheckValue(hsm.key_check_value(c.resolved_key_type, c.key, full=c.kcv_type != 1))


def _import_key(hsm: SoftwareHsm, c: keys.ImportKey, p: Profile) -> Outcome:
    if c.key_under_zmk.startswith("R"):
        key_type = None if c.key_type == "FFF" else c.key_type
        done = hsm.tr31_import(c.zmk, c.key_under_zmk[1:], c.lmk_scheme, key_type=key_type)
        return OK, keys.KeyImported(done.under_lmk, done.kcv)
    imported = hsm.import_key(c.key_type, c.zmk, c.key_under_zmk, c.lmk_scheme)
    return (PARITY_FORCED if imported.parity_forced else OK), keys.KeyImported(imported.under_lmk, imported.kcv)


def _export_key(hsm: SoftwareHsm, c: keys.ExportKey, p: Profile) -> Outcome:
    if c.zmk_scheme == "R":
        block = hsm.tr31_export(
            c.key_type, c.key, c.zmk,
            version=c.tr31_version or "D",
            usage=None if c.usage in (None, "**") else c.usage,
            mode_of_use=None if c.mode_of_use in (None, "*") else c.mode_of_use,
            exportability=c.exportability or "E",
            key_version=c.key_version or "00",
        )
        return OK, keys.KeyExported("R" + block, hsm.key_check_value(c.key_type, c.key))
    exported = hsm.export_key(c.key_type, c.zmk, c.key, c.zmk_scheme)
    return OK, keys.KeyExported(exported.under_zmk, exported.kcv)


def _diagnostics(hsm: SoftwareHsm, c: keys.Diagnostics, p: Profile) -> Outcome:
    diag = hsm.diagnostics()
    return OK, keys.DiagnosticsResult(diag.lmk_check_value, diag.firmware)


def _echo(hsm: SoftwareHsm, c: keys.Echo, p: Profile) -> Outcome:
    return OK, keys.Echoed(c.data)


# ------------------------------------------------------------------------------------------------ PINs


def _translated(t: Any) -> Outcome:
    return OK, pin.PinTranslated(t.pin_length, t.pin_block, t.pin_format)


def _tpk_to_zpk(hsm: SoftwareHsm, c: pin.TranslatePinTpkToZpk, p: Profile) -> Outcome:
    return _translated(hsm.translate_pin_tpk_to_zpk(
        c.tpk, c.zpk, c.pin_block, c.source_format, c.destination_format, c.account,
        max_pin_length=c.max_pin_length, pan=c.pan))


def _zpk_to_zpk(hsm: SoftwareHsm, c: pin.TranslatePinZpkToZpk, p: Profile) -> Outcome:
    return _translated(hsm.translate_pin_zpk_to_zpk(
        c.source_zpk, c.destination_zpk, c.pin_block, c.source_format, c.destination_format, c.account,
        max_pin_length=c.max_pin_length, pan=c.pan))


def _dukpt(hsm: SoftwareHsm, c: pin.TranslatePinDukpt, p: Profile) -> Outcome:
    return _translated(hsm.translate_pin_dukpt_to_zpk(
        c.bdk, c.zpk, c.ksn_descriptor, c.ksn, c.pin_block, c.destination_format, c.account, pan=c.pan))


def _dukpt_format(hsm: SoftwareHsm, c: pin.TranslatePinDukptFormat, p: Profile) -> Outcome:
    if c.bdk.startswith("R"):
        if c.pan is None:
            raise InvalidInputError("AES DUKPT needs the PAN (format 48 on one side)")
        return _translated(hsm.translate_pin_aes_dukpt(
            c.bdk, c.zpk, c.ksn, c.pin_block, c.pan, source_format=c.source_format,
            destination_format=c.destination_format, account=c.account))
    return _translated(hsm.translate_pin_dukpt_to_zpk(
        c.bdk, c.zpk, c.ksn_descriptor, c.ksn, c.pin_block, c.destination_format, c.account,
        source_format=c.source_format, pan=c.pan))


def _verify_ibm(key_type: str) -> Handler:
    def handle(hsm: SoftwareHsm, c: Any, p: Profile) -> Outcome:
        key = c.tpk if key_type == "002" else c.zpk
        return _verdict(hsm.verify_pin_ibm(
            key_type, key, c.pvk, c.pin_block, c.pin_format, c.account, c.check_length,
            c.decimalisation_table, c.validation_data, c.offset, max_pin_length=c.max_pin_length, pan=c.pan))
    return handle


def _verify_pvv(key_type: str) -> Handler:
    def handle(hsm: SoftwareHsm, c: Any, p: Profile) -> Outcome:
        key = c.tpk if key_type == "002" else c.zpk
        return _verdict(hsm.verify_pin_pvv(
            key_type, key, c.pvk, c.pin_block, c.pin_format, c.account, c.pvki, c.pvv, pan=c.pan))
    return handle


def _generate_pvv(hsm: SoftwareHsm, c: pin.GeneratePvv, p: Profile) -> Outcome:
    return OK, pin.PvvGenerated(hsm.generate_pvv(
        c.key_type, c.pin_key, c.pvk, c.pin_block, c.pin_format, c.account, c.pvki, pan=c.pan))


def _generate_offset(hsm: SoftwareHsm, c: pin.GenerateIbmOffset, p: Profile) -> Outcome:
    return OK, pin.OffsetGenerated(hsm.generate_ibm_offset(
        c.key_type, c.pin_key, c.pvk, c.pin_block, c.pin_format, c.account, c.check_length,
        c.decimalisation_table, c.validation_data, pan=c.pan))


def _pvv_from_lmk_pin(hsm: SoftwareHsm, c: pin.GeneratePvvFromLmkPin, p: Profile) -> Outcome:
    return OK, pin.PvvGenerated(hsm.generate_pvv_from_lmk_pin(c.pvk, c.pin, c.account, c.pvki))


def _encrypt_pin(hsm: SoftwareHsm, c: pinlmk.EncryptPin, p: Profile) -> Outcome:
    clear = c.pin.rstrip("F")
    if len(c.pin) != len(clear) + 1:
        raise InvalidInputError("BA: the clear PIN is padded with one F to its length plus one")
    return OK, pinlmk.PinUnderLmk(hsm.encrypt_pin(clear, c.account))


def _decrypt_pin(hsm: SoftwareHsm, c: pinlmk.DecryptPin, p: Profile) -> Outcome:
    if not hsm.test_lmk:
        raise UnsupportedCommandError(c.CODE, p.unsupported_error)
    clear = hsm.decrypt_pin_under_lmk(c.pin, c.account)
    return OK, pinlmk.ClearPin(clear.ljust(len(c.pin), "F"), hsm.pin_reference(clear, c.account))


def _to_lmk(key_type: str) -> Handler:
    def handle(hsm: SoftwareHsm, c: Any, p: Profile) -> Outcome:
        key = c.tpk if key_type == "002" else c.zpk
        return OK, pinlmk.PinUnderLmk(hsm.translate_pin_to_lmk(key_type, key, c.pin_block, c.pin_format, c.account))
    return handle


# ------------------------------------------------------------------------------------------ CVV and MAC


def _generate_cvv(hsm: SoftwareHsm, c: card.GenerateCvv, p: Profile) -> Outcome:
    return OK, card.CvvGenerated(hsm.generate_cvv(c.cvk, c.pan, c.expiry, c.service_code))


def _verify_cvv(hsm: SoftwareHsm, c: card.VerifyCvv, p: Profile) -> Outcome:
    return _verdict(hsm.verify_cvv(c.cvk, c.pan, c.expiry, c.service_code, c.cvv))


def _mac_input(c: card.GenerateMac | card.VerifyMac, p: Profile) -> bytes:
    """The bytes to MAC: the message field as sent, hex-decoded for input format 1."""
    if c.input_format == 1:
        try:
            return bytes.fromhex(c.message.decode("ascii"))
        except ValueError:
            raise InvalidInputError("M6/M8 hex input is not hex") from None
    if c.input_format not in (0, 2):
        raise InvalidInputError("input format flag must be 0, 1 or 2")
    if p.m6_mac_size and c.mac_size not in card.MAC_SIZES:
        raise InvalidInputError("MAC size must be 0, 1 or 2")
    return c.message


def _generate_mac(hsm: SoftwareHsm, c: card.GenerateMac, p: Profile) -> Outcome:
    if c.mode not in (0, 1, 2, 3):
        raise InvalidInputError("M6 mode flag must be 0 to 3")
    data = _mac_input(c, p)
    final = c.mode in (0, 3)
    value = hsm.generate_mac(
        c.key_type, c.key, data, algorithm=c.algorithm, padding=c.padding,
        mac_length=card.mac_chars(c.mac_size, p) // 2, iv=c.iv, final=final)
    return OK, card.MacGenerated(value, None) if final else card.MacGenerated(None, value)


def _verify_mac(hsm: SoftwareHsm, c: card.VerifyMac, p: Profile) -> Outcome:
    if c.mode not in (0, 3):
        raise InvalidInputError("M8 verifies whole messages or final blocks (mode 0 or 3)")
    data = _mac_input(c, p)
    return _verdict(hsm.verify_mac(c.key_type, c.key, data, c.mac, algorithm=c.algorithm, padding=c.padding,
                                   iv=c.iv))


def _legacy_algorithm(tak: str) -> int:
    """MA/MC: ANSI X9.9 (ISO 9797-1 algorithm 1) for a single-length TAK, X9.19 (algorithm 3) otherwise."""
    return 1 if tak[0] == "Z" or len(tak) == 16 else 3


def _generate_mac_legacy(hsm: SoftwareHsm, c: card.GenerateMacLegacy, p: Profile) -> Outcome:
    mac = hsm.generate_mac("003", c.tak, c.data, algorithm=_legacy_algorithm(c.tak), padding=1, mac_length=4)
    return OK, card.LegacyMacGenerated(mac)


def _verify_mac_legacy(hsm: SoftwareHsm, c: card.VerifyMacLegacy, p: Profile) -> Outcome:
    return _verdict(hsm.verify_mac("003", c.tak, c.data, c.mac, algorithm=_legacy_algorithm(c.tak), padding=1))


# ------------------------------------------------------------------------------------------------ EMV

_KQ_CVN = {emv.KQ_SCHEME_VISA: 10, emv.KQ_SCHEME_EUROPAY: 16}


def _pan_psn(raw: bytes) -> tuple[str, str]:
    """Split the 8-byte PAN/PSN field into a PAN part and the PSN (option A only uses their concatenation)."""
    digits = raw.hex()
    if not digits.isdigit():
        raise InvalidInputError("PAN/PSN must be BCD digits")
    return digits[:14], digits[14:]


def _arqc(hsm: SoftwareHsm, c: emv.VerifyArqcKq | emv.VerifyArqcKw, cvn: int, un: str | None) -> bool:
    pan, psn = _pan_psn(c.pan_psn)
    return hsm.verify_arqc(c.mk_ac, cvn, pan, psn, c.atc.hex(), c.data, c.arqc.hex(),
                           unpredictable_number=un, padded=True)


def _kq(hsm: SoftwareHsm, c: emv.VerifyArqcKq, p: Profile) -> Outcome:
    cvn = _KQ_CVN.get(c.scheme_id)
    if cvn is None:
        raise HsmError("KQ scheme ID must be 0 or 1", "05")
    if c.mode not in (0, 1, 2):
        raise HsmError("KQ mode must be 0, 1 or 2", "04")
    un = c.unpredictable_number.hex()
    if c.mode in (0, 1) and not _arqc(hsm, c, cvn, un):
        return MISMATCH, None
    if c.mode == 0:
        return OK, emv.ArpcKq(None)
    pan, psn = _pan_psn(c.pan_psn)
    arc = c.arc.hex() if c.arc is not None else None
    arpc = hsm.generate_arpc(c.mk_ac, cvn, pan, psn, c.atc.hex(), c.arqc.hex(), arc=arc, unpredictable_number=un)
    return OK, emv.ArpcKq(bytes.fromhex(arpc))


def _kw(hsm: SoftwareHsm, c: emv.VerifyArqcKw, p: Profile) -> Outcome:
    if c.scheme_id != emv.KW_SCHEME_CSK:
        raise HsmError("KW scheme ID: only 2 (EMV common session key) is offered", "05")
    if c.mode not in (0, 1, 2):
        raise HsmError("KW mode must be 0, 1 or 2", "04")
    cvn = 18
    if c.mode in (0, 1) and not _arqc(hsm, c, cvn, None):
        return MISMATCH, None
    if c.mode == 0:
        return OK, emv.ArpcKw(None)
    pan, psn = _pan_psn(c.pan_psn)
    csu = c.csu.hex() if c.csu is not None else None
    arpc = hsm.generate_arpc(c.mk_ac, cvn, pan, psn, c.atc.hex(), c.arqc.hex(), csu=csu,
                             proprietary_data=c.proprietary_data or b"")
    return OK, emv.ArpcKw(bytes.fromhex(arpc))


HANDLERS: dict[type[Command[Any]], Handler] = {
    keys.GenerateKey: _generate_key,
    keys.FormKeyFromComponents: _form_key,
    keys.KeyCheckValue: _key_check_value,
    keys.ImportKey: _import_key,
    keys.ExportKey: _export_key,
    keys.Diagnostics: _diagnostics,
    keys.Echo: _echo,
    pin.TranslatePinTpkToZpk: _tpk_to_zpk,
    pin.TranslatePinZpkToZpk: _zpk_to_zpk,
    pin.TranslatePinDukpt: _dukpt,
    pin.TranslatePinDukptFormat: _dukpt_format,
    pin.VerifyPinIbmTpk: _verify_ibm("002"),
    pin.VerifyPinIbmZpk: _verify_ibm("001"),
    pin.VerifyPinPvvTpk: _verify_pvv("002"),
    pin.VerifyPinPvvZpk: _verify_pvv("001"),
    pin.GeneratePvv: _generate_pvv,
    pin.GenerateIbmOffset: _generate_offset,
    pin.GeneratePvvFromLmkPin: _pvv_from_lmk_pin,
    pinlmk.EncryptPin: _encrypt_pin,
    pinlmk.DecryptPin: _decrypt_pin,
    pinlmk.TranslatePinTpkToLmk: _to_lmk("002"),
    pinlmk.TranslatePinZpkToLmk: _to_lmk("001"),
    card.GenerateCvv: _generate_cvv,
    card.VerifyCvv: _verify_cvv,
    card.GenerateMac: _generate_mac,
    card.VerifyMac: _verify_mac,
    card.GenerateMacLegacy: _generate_mac_legacy,
    card.VerifyMacLegacy: _verify_mac_legacy,
    emv.VerifyArqcKq: _kq,
    emv.VerifyArqcKw: _kw,
}
"""Command class -> handler."""
