"""The :class:`hsm.api.Hsm` interface over payShield host commands (a real payShield or our server).

Each method builds one command (M6/M8 may take several for long messages), sends it through a
:class:`~hsm.thales.client.ThalesClient` under a per-command timeout, and turns the answer into the same
value :class:`hsm.inprocess.SoftwareBackend` returns: error 00 is the result, 01 on a verification is
``False``, any other error code raises :class:`~hsm.thales.errors.CommandFailedError` carrying that code, and
no answer in time raises :class:`~hsm.thales.errors.HsmTimeoutError`.

Inputs are checked here the way the software HSM checks them wherever the host protocol cannot carry the
input (a PAN longer than option A allows, an ATC that is not 2 bytes of hex, a MAC length with no MAC-size
code), so that both backends fail the same way with the same error code.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import trio

from hsm import emv
from hsm.api import (
    Diagnostics,
    ImportedKey,
    KeyUnderZmk,
    NewKey,
    PinTranslation,
    check_dual_control,
    default_ksn_descriptor,
)
from hsm.errors import InvalidInputError, KeyFunctionError, KeyTypeError
from hsm.mac import pad
from hsm.pinblock import PLUS, account_field, plus_account_field
from hsm.thales import cmd_card as card
from hsm.thales import cmd_emv as kemv
from hsm.thales import cmd_keys as keys
from hsm.thales import cmd_pin as pin
from hsm.thales import cmd_pinlmk as pin_lmk
from hsm.thales.base import Command, Reply, Response
from hsm.thales.errors import CommandFailedError, HsmTimeoutError
from hsm.thales.profile import Profile

R = TypeVar("R", bound=Response)

# Largest message sent in one M6/M8; longer data goes as M6 first/middle/final parts (a multiple of the AES
# block, so of the DES block too).
MAC_PART = 32 * 1024
MAX_KQ_DATA = 0xFF


class Caller(Protocol):
    """What the backend needs from a client: :meth:`hsm.thales.client.ThalesClient.call`."""

    async def call(self, command: Command[R]) -> Reply[R]: ...


class ThalesBackend:
    """:class:`hsm.api.Hsm` through a payShield host-command client."""

    def __init__(self, client: Caller, profile: Profile, *, timeout: float = 2.0) -> None:
        self.client = client
        self.profile = profile
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ThalesBackend(profile={self.profile.name}, timeout={self.timeout})"

    # ------------------------------------------------------------------------------------------ plumbing

    async def _call(self, command: Command[R]) -> Reply[R]:
        with trio.move_on_after(self.timeout):
            return await self.client.call(command)
        raise HsmTimeoutError(f"{command.CODE}: no answer within {self.timeout}s")

    async def _result(self, command: Command[R]) -> R:
        return (await self._call(command)).result()

    async def _verify(self, command: Command[Any]) -> bool:
        reply = await self._call(command)
        if reply.error_code in ("00", "01"):
            return reply.error_code == "00"
        raise CommandFailedError(command.CODE, reply.error_code)

    # ------------------------------------------------------------------------------------------ PINs

    async def translate_pin_tpk_to_zpk(
        self, tpk: str, zpk: str, pin_block: str, account: str, *, source_format: str = "01",
        destination_format: str = "01", max_pin_length: int = 12, pan: str | None = None,
    ) -> PinTranslation:
        return _translation(await self._result(pin.TranslatePinTpkToZpk(
            tpk, zpk, max_pin_length, pin_block, source_format, destination_format,
            _wire_account(account, pan, source_format, destination_format),
            pan)))

    async def translate_pin_zpk_to_zpk(
        self, source_zpk: str, destination_zpk: str, pin_block: str, account: str, *,
        source_format: str = "01", destination_format: str = "01", max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        return _translation(await self._result(pin.TranslatePinZpkToZpk(
            source_zpk, destination_zpk, max_pin_length, pin_block, source_format, destination_format,
            _wire_account(account, pan, source_format, destination_format), pan)))

    async def translate_pin_dukpt_to_zpk(
        self, bdk: str, zpk: str, ksn: str, pin_block: str, account: str, *, source_format: str = "01",
        destination_format: str = "01", pan: str | None = None, ksn_descriptor: str | None = None,
    ) -> PinTranslation:
        descriptor = ksn_descriptor or default_ksn_descriptor(ksn)
        if bdk.startswith("R") and pan is None:
            raise InvalidInputError("AES DUKPT needs the PAN")
        if source_format == "01" and not bdk.startswith("R"):
            return _translation(await self._result(pin.TranslatePinDukpt(
                bdk, zpk, descriptor, ksn, pin_block, destination_format, account_field(account), pan)))
        return _translation(await self._result(pin.TranslatePinDukptFormat(
            bdk, zpk, descriptor, ksn, pin_block, source_format, destination_format, account_field(account),
            pan)))

    async def verify_pin_ibm(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        check_length: int, decimalisation_table: str, validation_data: str, offset: str, *,
        max_pin_length: int = 12, pan: str | None = None,
    ) -> bool:
        cls = pin.VerifyPinIbmTpk if _pin_key(pin_key_type) == "002" else pin.VerifyPinIbmZpk
        return await self._verify(cls(
            pin_key, pvk, max_pin_length, pin_block, pin_format, check_length, _wire_account(account, pan, pin_format),
            decimalisation_table, _validation_data(validation_data), _f_padded("offset", offset), pan))

    async def verify_pin_pvv(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        pvki: int, pvv: str, *, pan: str | None = None,
    ) -> bool:
        cls = pin.VerifyPinPvvTpk if _pin_key(pin_key_type) == "002" else pin.VerifyPinPvvZpk
        return await self._verify(cls(
            pin_key, pvk, pin_block, pin_format, _wire_account(account, pan, pin_format), pvki, pvv, pan))

    async def generate_pvv(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        pvki: int, *, pan: str | None = None,
    ) -> str:
        return (await self._result(pin.GeneratePvv(
            _pin_key(pin_key_type), pin_key, pvk, pin_block, pin_format, _wire_account(account, pan, pin_format), pvki,
            pan))).pvv

    async def translate_pin_to_lmk(
        self, pin_key_type: str, pin_key: str, pin_block: str, pin_format: str, account: str,
    ) -> str:
        cls = pin_lmk.TranslatePinTpkToLmk if _pin_key(pin_key_type) == "002" else pin_lmk.TranslatePinZpkToLmk
        return (await self._result(cls(pin_key, pin_block, pin_format, _wire_account(account, None, pin_format)))).pin

    async def generate_pvv_from_lmk_pin(self, pvk: str, pin_under_lmk: str, account: str, pvki: int) -> str:
        return (await self._result(pin.GeneratePvvFromLmkPin(pvk, pin_under_lmk, account_field(account), pvki))).pvv

    async def generate_ibm_offset(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        check_length: int, decimalisation_table: str, validation_data: str, *, pan: str | None = None,
    ) -> str:
        return (await self._result(pin.GenerateIbmOffset(
            _pin_key(pin_key_type), pin_key, pvk, pin_block, pin_format, check_length,
            _wire_account(account, pan, pin_format),
            decimalisation_table, _validation_data(validation_data), pan))).offset

    # ------------------------------------------------------------------------------------------ CVV, MAC

    async def generate_cvv(self, cvk: str, pan: str, expiry: str, service_code: str) -> str:
        return (await self._result(card.GenerateCvv(cvk, pan, expiry, service_code))).cvv

    async def verify_cvv(self, cvk: str, pan: str, expiry: str, service_code: str, cvv: str) -> bool:
        return await self._verify(card.VerifyCvv(cvk, cvv, pan, expiry, service_code))

    async def generate_mac(
        self, key_type: str, key: str, data: bytes, *, algorithm: int = 3, padding: int = 1,
        mac_length: int = 8,
    ) -> str:
        if not 4 <= mac_length <= 16:
            raise InvalidInputError("MAC length must be 4 to 16 bytes")
        size = _mac_size_for(2 * mac_length, self.profile)
        if len(data) > MAC_PART and padding == 3 and algorithm != 5:
            # Method 3 puts the length block first, so it cannot be applied to the last part only: pad here
            # (the MAC of the padded data without padding is the same MAC) and send the parts unpadded.
            data, padding = pad(data, 3, 16 if key.startswith("R") else 8), 0
        iv: str | None = None
        parts = [data[i:i + MAC_PART] for i in range(0, len(data), MAC_PART)] or [b""]
        for index, part in enumerate(parts):
            mode = 0 if len(parts) == 1 else (1 if index == 0 else 3 if index == len(parts) - 1 else 2)
            made = await self._result(card.GenerateMac(
                mode, 0, size, algorithm, padding, key_type, key, part, iv))
            iv = made.iv
        assert made.mac is not None
        return made.mac[:2 * mac_length]

    async def verify_mac(
        self, key_type: str, key: str, data: bytes, mac: str, *, algorithm: int = 3, padding: int = 1,
    ) -> bool:
        if len(mac) % 2 or not 8 <= len(mac) <= 32:
            raise InvalidInputError("MAC must be 8 to 32 hex digits")
        if len(data) <= MAC_PART and len(mac) in (8, 16, 32) and (len(mac) == 8 or self.profile.m6_mac_size):
            return await self._verify(card.VerifyMac(
                0, 0, card.mac_size_code(len(mac)), algorithm, padding, key_type, key, data, mac.upper()))
        # No M8 form for this MAC length or message size: compute it (M6) and compare here.
        expected = await self.generate_mac(key_type, key, data, algorithm=algorithm, padding=padding,
                                           mac_length=len(mac) // 2)
        return hmac.compare_digest(expected, mac.upper())

    # ------------------------------------------------------------------------------------------ EMV

    async def verify_arqc(
        self, mk_ac: str, cvn: int, pan: str, psn: str, atc: str, data: bytes, arqc: str, *,
        unpredictable_number: str | None = None,
    ) -> bool:
        padded = pad(data, emv.profile(cvn).padding)
        fields = _EmvFields(cvn, mk_ac, pan, psn, atc, arqc, unpredictable_number)
        if cvn == 18:
            return await self._verify(self._kw(0, fields, padded))
        return await self._verify(self._kq(0, fields, padded))

    async def generate_arpc(
        self, mk_ac: str, cvn: int, pan: str, psn: str, atc: str, arqc: str, *, arc: str | None = None,
        csu: str | None = None, proprietary_data: bytes = b"", unpredictable_number: str | None = None,
    ) -> str:
        method = emv.profile(cvn).arpc_method
        fields = _EmvFields(cvn, mk_ac, pan, psn, atc, arqc, unpredictable_number)
        if method == 1:
            if arc is None:
                raise InvalidInputError("ARPC method 1 needs the authorisation response code")
            arpc = (await self._result(self._kq(2, fields, b"", arc=emv.hex_bytes("ARC", arc, 2)))).arpc
        else:
            if csu is None:
                raise InvalidInputError("ARPC method 2 needs the card status update")
            if len(proprietary_data) > 8:
                raise InvalidInputError("proprietary authentication data is at most 8 bytes")
            command = self._kw(2, fields, b"", csu=emv.hex_bytes("CSU", csu, 4), proprietary=proprietary_data)
            arpc = (await self._result(command)).arpc
        assert arpc is not None
        return arpc.hex().upper()

    def _kq(self, mode: int, f: _EmvFields, data: bytes, *, arc: bytes | None = None) -> kemv.VerifyArqcKq:
        if len(data) > MAX_KQ_DATA:
            raise InvalidInputError(f"KQ carries at most {MAX_KQ_DATA} bytes of transaction data")
        scheme = kemv.KQ_SCHEME_VISA if f.cvn == 10 else kemv.KQ_SCHEME_EUROPAY
        return kemv.VerifyArqcKq(mode, scheme, f.mk_ac, f.pan_psn, f.atc, f.un, data, f.arqc, arc)

    def _kw(self, mode: int, f: _EmvFields, data: bytes, *, csu: bytes | None = None,
            proprietary: bytes | None = None) -> kemv.VerifyArqcKw:
        if len(data) > MAX_KQ_DATA:
            raise InvalidInputError(f"KW carries at most {MAX_KQ_DATA} bytes of transaction data")
        iv = bytes(16) if self.profile.kw_iv else None
        return kemv.VerifyArqcKw(mode, kemv.KW_SCHEME_CSK, f.mk_ac, f.pan_psn, f.atc, data, f.arqc, iv=iv,
                                 csu=csu, proprietary_data=proprietary)

    # ------------------------------------------------------------------------------------------ keys

    async def generate_key(
        self, key_type: str, scheme: str = "U", *, zmk: str | None = None, zmk_scheme: str = "U",
        zmk_type: str = "000",
    ) -> NewKey:
        if zmk is None:
            made = await self._result(keys.GenerateKey(0, key_type, scheme))
        else:
            flag = 1 if zmk_type == "002" else 0
            made = await self._result(keys.GenerateKey(1, key_type, scheme, flag, zmk, zmk_scheme))
        return NewKey(made.key, made.kcv, made.key_under_zmk)

    async def import_key(
        self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U", *, zmk_type: str = "000",
    ) -> ImportedKey:
        if zmk_type != "000":
            # A6 carries a ZMK only (A0 has a ZMK/TMK flag, A6 has none): under a TMK, the terminal imports.
            raise KeyFunctionError("a payShield imports keys under a ZMK only (A6); keys under a TMK are the "
                                   "terminal's to import")
        reply = await self._call(keys.ImportKey(key_type, zmk, key_under_zmk, scheme))
        done = reply.result()
        return ImportedKey(done.key, done.kcv, reply.error_code == "01")

    async def export_key(
        self, key_type: str, zmk: str, key: str, scheme: str = "U", *, tr31_version: str = "D",
        usage: str | None = None, mode_of_use: str | None = None, exportability: str = "E",
        key_version: str = "00",
    ) -> KeyUnderZmk:
        if scheme == "R":
            command = keys.ExportKey(key_type, zmk, key, scheme, tr31_version, usage or "**",
                                     mode_of_use or "*", key_version, exportability)
        else:
            command = keys.ExportKey(key_type, zmk, key, scheme)
        done = await self._result(command)
        return KeyUnderZmk(done.key_under_zmk, done.kcv)

    async def form_key_from_components(
        self, key_type: str, components: Sequence[str], scheme: str = "U",
    ) -> NewKey:
        """A4: components encrypted under the LMK (scheme-tagged cryptograms of ``key_type``). Clear components
        are refused (15): a payShield forms keys from clear components only at its console."""
        parts = tuple(components)
        check_dual_control(parts)
        if any(not c or c[0] not in "ZUXTY" for c in parts):
            raise InvalidInputError("the payShield forms keys from components under the LMK (A4), not from clear "
                                    "components")
        done = await self._result(keys.FormKeyFromComponents(len(parts), key_type, scheme, parts))
        return NewKey(done.key, done.kcv)

    async def key_check_value(self, key_type: str, key: str, *, full: bool = False) -> str:
        return (await self._result(keys.KeyCheckValue(
            "FF", _length_flag(key), key, key_type, "00", 0 if full else 1))).kcv

    async def diagnostics(self) -> Diagnostics:
        done = await self._result(keys.Diagnostics())
        return Diagnostics(done.lmk_check_value, done.firmware)

    async def echo(self, data: bytes) -> bytes:
        return (await self._result(keys.Echo(data))).data


class _EmvFields:
    """KQ/KW binary fields from the interface's hex strings, checked as :mod:`hsm.emv` checks them."""

    def __init__(self, cvn: int, mk_ac: str, pan: str, psn: str, atc: str, arqc: str, un: str | None) -> None:
        emv.profile(cvn)  # unsupported CVN: error 15, as the software HSM
        self.cvn = cvn
        self.mk_ac = mk_ac
        self.pan_psn = emv.option_a_input(pan, psn)
        self.atc = emv.hex_bytes("ATC", atc, 2)
        self.arqc = emv.hex_bytes("ARQC", arqc, 8)
        if un is None and cvn in (16, 17):
            raise InvalidInputError("Mastercard session keys need the unpredictable number")
        self.un = emv.hex_bytes("UN", un, 4) if un is not None else bytes(4)


def _f_padded(name: str, value: str, width: int = 12) -> str:
    """A left-justified field of up to ``width`` characters, F-padded as the payShield layout wants it."""
    if len(value) > width:
        raise InvalidInputError(f"{name} is at most {width} characters")
    return value.upper().ljust(width, "F")


def _validation_data(value: str) -> str:
    """PIN validation data 12A; the software HSM F-pads shorter data after inserting the account digits,
    which gives the same validation block as F-padding it here."""
    return _f_padded("PIN validation data", value)


def _wire_account(account: str, pan: str | None, *formats: str) -> str:
    """The account field to send: the 12 digits, or for a format 04 (PLUS) the full account number, which the
    codec writes in 18 characters (the format binds the number's left-most digits)."""
    if PLUS not in formats:
        return account_field(account)
    number = pan if pan is not None else account
    plus_account_field(number)  # 22 unless it is a full account number of 13 to 18 digits
    return number


def _pin_key(code: str) -> str:
    if code not in ("001", "002"):
        raise KeyTypeError(f"key type {code} does not encrypt PIN blocks", "28")
    return code


def _length_flag(key: str) -> int:
    """BU key length flag for a key: 0 single, 1 double, 2 triple (AES ``R`` keys: 1, ignored)."""
    if key[:1] in ("Z",) or len(key) == 16:
        return 0
    if key[:1] in ("T", "Y") or len(key) == 48:
        return 2
    return 1


def _mac_size_for(hex_chars: int, profile: Profile) -> int | None:
    """The smallest MAC size code giving at least ``hex_chars``; firmware without the field gives 8H."""
    if not profile.m6_mac_size:
        if hex_chars > 8:
            raise InvalidInputError(f"profile {profile.name} generates 8H MACs only")
        return None
    for code, chars in sorted(card.MAC_SIZES.items()):
        if chars >= hex_chars:
            return code
    raise InvalidInputError("MAC longer than 16 bytes")


def _translation(done: pin.PinTranslated) -> PinTranslation:
    return PinTranslation(done.pin_length, done.pin_block, done.pin_format)
