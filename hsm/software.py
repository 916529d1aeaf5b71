"""The software HSM: every payment-crypto function of a payShield, keys only ever under a variant LMK.

Synchronous and pure (no I/O except reading the LMK file in :meth:`SoftwareHsm.from_file`). Each method is the
computation behind one payShield host command; the command is named in its docstring. The async interface and
the payShield-compatible server (``hsm/inprocess.py``, ``hsm/thales/``) call these methods.

Conventions (payShield host command manual, as quoted in public clients):

- Keys enter and leave only as cryptograms in Thales notation: ``"U" + 32H`` (double length, variant scheme),
  ``"T" + 48H`` (triple length, variant), ``"X" + 32H`` / ``"Y" + 48H`` (plain TDES-ECB under the LMK or a
  ZMK, ANSI X9.17), ``"Z" + 16H`` or bare 16H / 32H / 48H (no scheme), together with the 3-digit key type
  code (``"000"`` ZMK, ``"001"`` ZPK, ``"002"`` TPK/TMK/PVK, ``"402"`` CVK, ``"003"`` TAK, ``"008"`` ZAK,
  ``"009"`` BDK, ``"109"`` MK-AC).
- AES keys cannot be held under a variant LMK on a real payShield (it needs a key-block LMK). Bulkhead stores
  them as ``"R"`` + a TR-31 version D key block under an AES key derived from the LMK (see :mod:`hsm.lmk`):
  self-delimiting, integrity-protected, but specific to Bulkhead.
- PIN block format codes are the Thales ones: ``"01"`` ISO 9564 format 0, ``"05"`` format 1, ``"34"`` format 2,
  ``"47"`` format 3, ``"48"`` format 4 (AES). ``account`` is the Thales 12-digit account field (12 right-most
  PAN digits excluding the check digit); format 4 needs the full PAN as ``pan``.
- Hex results are upper case. Verification methods return ``False`` on mismatch (payShield error 01) and raise
  :class:`hsm.errors.HsmError` subclasses (carrying the Thales error code) for everything else.
"""

from __future__ import annotations

import hmac
import os
from typing import NamedTuple

from hsm import dukpt, emv, pinblock, pinverify, tr31
from hsm.api import Diagnostics, ImportedKey, KeyUnderZmk, PinTranslation
from hsm.cipher import force_odd_parity, tdes_decrypt, tdes_encrypt
from hsm.cvv import visa_cvv
from hsm.errors import (
    AccountError,
    InvalidInputError,
    KeyBlockError,
    KeyFunctionError,
    KeyLengthError,
    KeySchemeError,
    KeyTypeError,
    PinBlockFormatError,
    PinLengthError,
)
from hsm.keys import (
    TR31_EXPORTABILITY,
    TR31_IMPORT_MODES,
    TR31_KEY_TYPE,
    TR31_KEY_TYPES,
    TR31_MODES,
    TR31_USAGE,
    TR31_USAGES,
    ClearKey,
    KeyCodec,
    random_tdes,
)
from hsm.lmk import Lmk
from hsm.lmk import key_type as lookup_key_type
from hsm.mac import CMAC, mac_chain, mac_final

FIRMWARE = "0007-E000"
"""Firmware number reported by NC (9 characters). Bulkhead's own; payShield hosts only display it."""

_TDES_LENGTH = {"Z": 8, "U": 16, "X": 16, "T": 24, "Y": 24}
_MAC_KEY_TYPES = frozenset({"003", "008"})


class GeneratedKey(NamedTuple):
    """A0 mode 0 result."""

    under_lmk: str
    kcv: str


class ExportedKey(NamedTuple):
    """A0 mode 1 result: the same key under the LMK and under the ZMK/TMK."""

    under_lmk: str
    under_zmk: str
    kcv: str


class Tr31Imported(NamedTuple):
    """TR-31 import result: the key type the block's usage maps to, the key under the LMK, its KCV."""

    key_type: str
    under_lmk: str
    kcv: str



class SoftwareHsm:
    """A payShield-compatible HSM in software. Holds one :class:`~hsm.lmk.Lmk` and the working keys it has
    decrypted under it (:class:`~hsm.keys.KeyCodec`'s bounded cache); no other state.

    Thread-safe: the only state between calls is that cache, guarded by a lock.
    """

    def __init__(self, lmk: Lmk, *, firmware: str = FIRMWARE, tr31_legacy_versions: bool = False) -> None:
        """``tr31_legacy_versions``: also import TR-31 versions A and C (key variant binding), which TR-31:2018
        deprecates; off by default."""
        self._lmk = lmk
        self._codec = KeyCodec(lmk)
        self._firmware = firmware
        self._tr31_legacy_versions = tr31_legacy_versions

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SoftwareHsm:
        """Load the LMK from ``path`` (see :meth:`Lmk.load`: refused if readable by group or others)."""
        return cls(Lmk.load(path))

    def __repr__(self) -> str:
        return f"SoftwareHsm(lmk_check_value={self.diagnostics().lmk_check_value[:6]})"

    # ----------------------------------------------------------------------------------------------- keys

    def generate_key(self, key_type: str, scheme: str = "U", *, aes_length: int = 16) -> GeneratedKey:
        """A0 mode 0: a fresh random key of ``key_type`` under the LMK in ``scheme``.

        ``scheme``: ``"Z"`` single, ``"U"``/``"X"`` double, ``"T"``/``"Y"`` triple length TDES, or ``"R"`` for
        an AES key of ``aes_length`` bytes (16, 24, 32). TDES keys have odd parity. KCV is 6H.
        """
        scheme = scheme.upper()
        lookup_key_type(key_type)
        if scheme == "R":
            key = KeyCodec.aes_random(aes_length)
        elif scheme in _TDES_LENGTH:
            key = random_tdes(_TDES_LENGTH[scheme])
        else:
            raise KeySchemeError(f"key scheme {scheme!r} cannot be generated under the LMK")
        return GeneratedKey(self._codec.to_lmk(key_type, key, scheme), key.check_value())

    def generate_key_exported(
        self,
        key_type: str,
        zmk: str,
        lmk_scheme: str = "U",
        zmk_scheme: str = "U",
        *,
        zmk_type: str = "000",
    ) -> ExportedKey:
        """A0 mode 1: generate a key and also return it under ``zmk`` (``zmk_type`` ``"000"`` ZMK or ``"002"`` TMK).

        ``zmk_scheme``: ``"U"``/``"T"`` variant under the ZMK, ``"X"``/``"Y"``/``"Z"`` ANSI X9.17.
        """
        kek = self._key(zmk_type, zmk)
        generated = self.generate_key(key_type, lmk_scheme)
        key = self._key(key_type, generated.under_lmk)
        under_zmk = KeyCodec.to_kek(kek, key, zmk_scheme)
        return ExportedKey(generated.under_lmk, under_zmk, generated.kcv)

    def key_check_value(self, key_type: str, key: str, *, full: bool = False) -> str:
        """BU: check value of a key under the LMK: TDES-encrypt 8 zero bytes (AES: CMAC of a zero block).

        Returns 6H, or 16H when ``full``.
        """
        return self._key(key_type, key).check_value(full)

    def import_key(
        self,
        key_type: str,
        zmk: str,
        key_under_zmk: str,
        lmk_scheme: str = "U",
        *,
        zmk_type: str = "000",
    ) -> ImportedKey:
        """A6: translate a key from under a ZMK (variant scheme by its letter, or X9.17) to under the LMK."""
        kek = self._key(zmk_type, zmk)
        lookup_key_type(key_type)
        key, forced = KeyCodec.from_kek(kek, key_under_zmk)
        under_lmk = self._codec.to_lmk(key_type, key, lmk_scheme)
        return ImportedKey(under_lmk, key.check_value(), forced)

    def export_key(
        self,
        key_type: str,
        zmk: str,
        key_under_lmk: str,
        zmk_scheme: str = "U",
        *,
        zmk_type: str = "000",
    ) -> KeyUnderZmk:
        """A8: translate a key from under the LMK to under a ZMK (or TMK with ``zmk_type="002"``)."""
        kek = self._key(zmk_type, zmk)
        key = self._key(key_type, key_under_lmk, destination=True)
        _check_exportable(key)
        return KeyUnderZmk(KeyCodec.to_kek(kek, key, zmk_scheme), key.check_value())

    def diagnostics(self) -> Diagnostics:
        """NC: LMK check value (16H) and firmware number."""
        return Diagnostics(self._lmk.check_value(), self._firmware)

    def tr31_export(
        self,
        key_type: str,
        key: str,
        kbpk: str,
        *,
        version: str = "D",
        kbpk_type: str = "000",
        usage: str | None = None,
        mode_of_use: str | None = None,
        exportability: str = "E",
        key_version: str = "00",
    ) -> str:
        """Export a key under the LMK as an ANSI TR-31 key block protected by ``kbpk`` (a ZMK or TMK).

        ``version`` ``"B"`` (TDES KBPK, key derivation binding) or ``"D"`` (AES KBPK); the variant-binding
        versions A and C are never produced (error BE). ``usage`` must be one of the key type's own (ZPK ``P0``;
        PVK ``P0``/``V0``-``V2``; see :data:`hsm.keys.TR31_USAGES`; error A6) and ``mode_of_use`` one defined
        for that usage (A8); both default from ``key_type`` (e.g. ZPK -> ``P0``/``B``). ``exportability`` E, N
        or S (AA). A key that arrived as non-exportable is refused (29). Returns the key block text.
        """
        protector = self._key(kbpk_type, kbpk)
        clear = self._key(key_type, key, destination=True)
        _check_exportable(clear)
        version = version.upper()
        if version not in ("B", "D"):
            raise KeyBlockError(f"key block version {version!r} is not exported (B or D)", "BE")
        if (version == "D") != protector.aes:
            raise KeyLengthError(f"key block version {version} needs {'an AES' if version == 'D' else 'a TDES'} KBPK")
        default_usage, default_mode = TR31_USAGE.get(key_type, ("K0", "B"))
        if clear.aes and default_usage == "M3":
            default_usage = "M6"  # AES MAC keys are CMAC keys (ANSI X9.143 usage M6)
        header = tr31.Header(
            version,
            usage or default_usage,
            "A" if clear.aes else ("D" if len(clear.value) == 8 else "T"),
            mode_of_use or default_mode,
            key_version,
            exportability,
        )
        _check_export_header(key_type, header)
        return tr31.wrap(protector.value, header, clear.value)

    def tr31_import(
        self,
        kbpk: str,
        key_block: str,
        lmk_scheme: str = "U",
        *,
        kbpk_type: str = "000",
        key_type: str | None = None,
    ) -> Tr31Imported:
        """Import a TR-31 key block protected by ``kbpk`` to under the LMK.

        Versions B and D; A and C (key variant binding, deprecated by TR-31:2018) only if this HSM was built
        with ``tr31_legacy_versions`` (error BE otherwise). The key type comes from the block's usage unless
        ``key_type`` says otherwise, and must be one that usage allows (:data:`hsm.keys.TR31_KEY_TYPES`: ``P0``
        is a ZPK by default, pass ``"002"`` for a TPK; error A6). The mode of use must grant everything the key
        type does here, since the LMK cryptogram will not remember a narrower one (A8). A non-exportable block
        (``N``) imports only as an AES key, whose key block under the LMK keeps the attribute (AA otherwise).
        AES keys come out as scheme ``"R"``.
        """
        header, _ = tr31.parse_header(key_block)
        if header.version in ("A", "C") and not self._tr31_legacy_versions:
            raise KeyBlockError(f"key block version {header.version} is not accepted (B or D)", "BE")
        code = self._tr31_import_type(header, key_type)
        protector = self._key(kbpk_type, kbpk)
        header, value = tr31.unwrap(protector.value, key_block)
        if (header.version == "D") != protector.aes:
            raise KeyLengthError(f"key block version {header.version} does not suit this KBPK")
        exportable = header.exportability != "N"
        if header.algorithm == "A":
            key = ClearKey(value, aes=True, exportable=exportable)
            scheme = "R"
        else:
            # Parity bits carry no key material (DES ignores them), so fix them as A6 does.
            key = ClearKey(force_odd_parity(value), exportable=exportable)
            scheme = lmk_scheme
        return Tr31Imported(code, self._codec.to_lmk(code, key, scheme), key.check_value())

    @staticmethod
    def _tr31_import_type(header: tr31.Header, key_type: str | None) -> str:
        """The key type a block imports as, once its usage, mode of use and exportability allow it."""
        allowed = TR31_KEY_TYPES.get(header.usage)
        if allowed is None:
            raise KeyBlockError(f"TR-31 key usage {header.usage!r} has no key type in this HSM", "A6")
        code = TR31_KEY_TYPE[header.usage] if key_type is None else lookup_key_type(key_type).code
        if code not in allowed:
            raise KeyBlockError(f"key usage {header.usage} cannot be imported as key type {code}", "A6")
        if header.mode_of_use not in TR31_IMPORT_MODES[header.usage]:
            raise KeyBlockError(f"mode of use {header.mode_of_use!r} is narrower than key type {code} allows "
                                f"(the LMK cryptogram could not enforce it)", "A8")
        if header.exportability not in TR31_EXPORTABILITY:
            raise KeyBlockError(f"exportability {header.exportability!r} is not E, N or S", "AA")
        if header.exportability == "N" and header.algorithm != "A":
            raise KeyBlockError("a non-exportable TDES key cannot be held under a variant LMK", "AA")
        return code

    # ----------------------------------------------------------------------------------------------- PINs

    def translate_pin_tpk_to_zpk(
        self,
        tpk: str,
        zpk: str,
        pin_block: str,
        source_format: str,
        destination_format: str,
        account: str,
        *,
        max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        """CA: decrypt a PIN block under a TPK (``"002"``), re-encrypt it under a ZPK (``"001"``)."""
        return self._translate(
            self._key("002", tpk),
            self._key("001", zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account,
            pan,
            max_pin_length,
        )

    def translate_pin_zpk_to_zpk(
        self,
        source_zpk: str,
        destination_zpk: str,
        pin_block: str,
        source_format: str,
        destination_format: str,
        account: str,
        *,
        max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        """CC: translate a PIN block from one ZPK to another, optionally changing its format."""
        return self._translate(
            self._key("001", source_zpk),
            self._key("001", destination_zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account,
            pan,
            max_pin_length,
        )

    def translate_pin_dukpt_to_zpk(
        self,
        bdk: str,
        zpk: str,
        ksn_descriptor: str,
        ksn: str,
        pin_block: str,
        destination_format: str,
        account: str,
        *,
        source_format: str = "01",
        pan: str | None = None,
    ) -> PinTranslation:
        """CI / G0: TDES DUKPT (ANSI X9.24-1) PIN block to a ZPK.

        ``ksn_descriptor`` is the Thales 3H descriptor (BDK ID length, sub-key ID length, device ID length,
        e.g. ``"605"``); ``ksn`` the KSN in hex, left-padded with F to 20H if shorter. CI always has source
        format 01; G0 passes ``source_format``.
        """
        base = self._key("009", bdk)
        if base.aes or len(base.value) != 16:
            raise KeyLengthError("TDES DUKPT needs a double-length TDES BDK")
        pin_key = ClearKey(dukpt.tdes_pin_key(base.value, dukpt.expand_ksn(ksn_descriptor, ksn)))
        return self._translate(
            pin_key,
            self._key("001", zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account,
            pan,
            pinblock.MAX_PIN,
        )

    def translate_pin_aes_dukpt(
        self,
        bdk: str,
        zpk: str,
        ksn: str,
        pin_block: str,
        pan: str,
        *,
        working_key: str = "AES128",
        source_format: str = "48",
        destination_format: str = "48",
        account: str | None = None,
    ) -> PinTranslation:
        """AES DUKPT (ANSI X9.24-3): PIN block under the transaction's PIN key to a zone key.

        ``bdk`` is an AES BDK (``"R"`` scheme, type ``"009"``); ``ksn`` 24H (initial key ID 16H + counter 8H).
        ``working_key``: ``"AES128"``, ``"AES192"``, ``"AES256"``, ``"2TDEA"`` or ``"3TDEA"``. Format 4
        needs AES keys on both sides; the destination ZPK may be TDES with formats 01/05/34/47.
        """
        base = self._key("009", bdk)
        if not base.aes:
            raise KeyLengthError("AES DUKPT needs an AES BDK")
        ksn_raw = _hex("KSN", ksn, dukpt.AES_KSN_LEN)
        pin_key = dukpt.aes_working_key(base.value, ksn_raw, dukpt.USAGE_PIN, working_key.upper())
        source = ClearKey(pin_key, aes=working_key.upper().startswith("AES"))
        return self._translate(
            source,
            self._key("001", zpk, destination=True),
            pin_block,
            source_format,
            destination_format,
            account if account is not None else pinblock.account_field(pan),
            pan,
            pinblock.MAX_PIN,
        )

    # ------------------------------------------------------------------------------- PIN verification

    def verify_pin_ibm(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        check_length: int,
        decimalisation_table: str,
        validation_data: str,
        offset: str,
        *,
        max_pin_length: int = 12,
        pan: str | None = None,
    ) -> bool:
        """DA (TPK, ``pin_key_type="002"``) / EA (ZPK, ``"001"``): verify a PIN by IBM 3624 offset.

        ``validation_data`` 12A: the letter ``N`` stands for the last 5 account digits. ``offset`` 12H
        left-justified, F-padded (or just ``check_length`` digits).
        """
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, max_pin_length)
        pvk_key = self._pvk(pvk)
        block = pinverify.validation_block(validation_data, pinblock.account_field(account))
        return pinverify.ibm_verify(pvk_key, block, decimalisation_table, pin, check_length, offset)

    def generate_ibm_offset(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        check_length: int,
        decimalisation_table: str,
        validation_data: str,
        *,
        pan: str | None = None,
    ) -> str:
        """BK: IBM 3624 offset of the PIN in a PIN block (PIN issuance / change). 12H, F-padded."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        pvk_key = self._pvk(pvk)
        block = pinverify.validation_block(validation_data, pinblock.account_field(account))
        return pinverify.ibm_offset(pvk_key, block, decimalisation_table, pin, check_length)

    def verify_pin_pvv(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        pvki: int,
        pvv: str,
        *,
        pan: str | None = None,
    ) -> bool:
        """DC (TPK) / EC (ZPK): verify a PIN by VISA PVV. ``pvk`` is the PVK pair (double length, ``"002"``)."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        if len(pvv) != 4 or not pvv.isdigit():
            raise InvalidInputError("PVV must be 4 digits")
        expected = pinverify.visa_pvv(self._pvk(pvk, pair=True), pinblock.account_field(account), pvki, pin)
        return hmac.compare_digest(expected, pvv)

    def generate_pvv(
        self,
        pin_key_type: str,
        pin_key: str,
        pvk: str,
        pin_block: str,
        pin_format: str,
        account: str,
        pvki: int,
        *,
        pan: str | None = None,
    ) -> str:
        """FW: VISA PVV (4N) of the PIN in a PIN block under a TPK or ZPK."""
        pin = self._pin_under(pin_key_type, pin_key, pin_block, pin_format, account, pan, pinblock.MAX_PIN)
        return pinverify.visa_pvv(self._pvk(pvk, pair=True), pinblock.account_field(account), pvki, pin)

    # ---------------------------------------------------------------------------------------- CVV

    def generate_cvv(self, cvk: str, pan: str, expiry: str, service_code: str) -> str:
        """CW: VISA CVV (3N). ``cvk`` is the CVK A/B pair (type ``"402"``); expiry YYMM.

        CVV2 is service code ``"000"``, iCVV ``"999"``.
        """
        cvk_key = self._key("402", cvk)
        if cvk_key.aes or len(cvk_key.value) != 16:
            raise KeyLengthError("CVK must be a double-length TDES key (CVK A || CVK B)")
        _check_card_data(pan, expiry, service_code)
        return visa_cvv(cvk_key.value, pan, expiry, service_code)

    def verify_cvv(self, cvk: str, pan: str, expiry: str, service_code: str, cvv: str) -> bool:
        """CY: verify a CVV / CVV2 / iCVV."""
        if len(cvv) != 3 or not cvv.isdigit():
            raise InvalidInputError("CVV must be 3 digits")
        return hmac.compare_digest(self.generate_cvv(cvk, pan, expiry, service_code), cvv)

    # ---------------------------------------------------------------------------------------- MAC

    def generate_mac(
        self,
        key_type: str,
        key: str,
        data: bytes,
        *,
        algorithm: int = 3,
        padding: int = 1,
        mac_length: int = 8,
        iv: str | None = None,
        final: bool = True,
    ) -> str:
        """M6 / MA: MAC ``data`` with a TAK (``"003"``) or ZAK (``"008"``).

        ``algorithm``: 1 ISO 9797-1 algorithm 1 (CBC-MAC; DES or TDES), 3 algorithm 3 (retail MAC, X9.19),
        5 CMAC (ISO 9797-1 algorithm 5; AES key, or TDES). ``padding`` 0 none, 1-3 ISO 9797-1 methods (ignored
        by CMAC). ``mac_length`` in bytes (4..16). For multi-part messages (M6 mode flags 1-3) pass
        ``final=False`` to get the 16H/32H chaining value to send back as ``iv``; padding applies to the final
        part only.
        """
        if key_type not in _MAC_KEY_TYPES:
            raise KeyTypeError(f"key type {key_type} cannot generate MACs", "28")
        mac_key = self._key(key_type, key)
        chain = _hex("IV", iv, 16 if mac_key.aes and algorithm == CMAC else 8) if iv is not None else None
        if not final:
            return mac_chain(mac_key.value, data, algorithm, aes=mac_key.aes, iv=chain).hex().upper()
        full = mac_final(mac_key.value, data, algorithm, padding, aes=mac_key.aes, iv=chain)
        if not 4 <= mac_length <= len(full):
            raise InvalidInputError(f"MAC length must be 4 to {len(full)} bytes")
        return full[:mac_length].hex().upper()

    def verify_mac(
        self,
        key_type: str,
        key: str,
        data: bytes,
        mac: str,
        *,
        algorithm: int = 3,
        padding: int = 1,
        iv: str | None = None,
    ) -> bool:
        """M8 / MC: verify a MAC (its length, len(mac) // 2 bytes, is the length compared)."""
        if len(mac) % 2 or not 8 <= len(mac) <= 32:
            raise InvalidInputError("MAC must be 8 to 32 hex digits")
        expected = self.generate_mac(
            key_type, key, data, algorithm=algorithm, padding=padding, mac_length=len(mac) // 2, iv=iv
        )
        return hmac.compare_digest(expected, mac.upper())

    # ---------------------------------------------------------------------------------------- EMV

    def verify_arqc(
        self,
        mk_ac: str,
        cvn: int,
        pan: str,
        psn: str,
        atc: str,
        data: bytes,
        arqc: str,
        *,
        unpredictable_number: str | None = None,
        padded: bool = False,
    ) -> bool:
        """KQ / KW mode 0: verify an ARQC (or TC/AAC).

        ``cvn`` 10 (Visa: ICC MK as AC key, zero padding), 18 (Visa: EMV common session key), 16 or 17
        (Mastercard M/Chip: session key from ATC and ``unpredictable_number``). ICC master key by EMV option A
        from ``mk_ac`` (type ``"109"``) and PAN || PSN. ``atc`` 4H; ``data`` the CDOL data the card MACed; when
        ``padded`` the host already added the scheme padding (as KQ sends it).
        """
        prof = emv.profile(cvn)
        icc_mk = emv.icc_master_key(self._mk_ac(mk_ac), pan, psn)
        session = emv.ac_session_key(cvn, icc_mk, atc, unpredictable_number)
        expected = emv.application_cryptogram(session, data, 0 if padded else prof.padding)
        return hmac.compare_digest(expected, _hex("ARQC", arqc, 8))

    def generate_arpc(
        self,
        mk_ac: str,
        cvn: int,
        pan: str,
        psn: str,
        atc: str,
        arqc: str,
        *,
        arc: str | None = None,
        csu: str | None = None,
        proprietary_data: bytes = b"",
        unpredictable_number: str | None = None,
    ) -> str:
        """KQ / KW modes 1-2: ARPC.

        Method 1 (CVN 10, 16, 17; ``arc`` 4H): 8-byte ARPC = TDES(key, ARQC xor ARC||00..), key = ICC MK.
        Method 2 (CVN 18; ``csu`` 8H, ``proprietary_data`` 0-8 bytes): 4-byte ARPC, alg-3 MAC under the
        session key.
        """
        prof = emv.profile(cvn)
        icc_mk = emv.icc_master_key(self._mk_ac(mk_ac), pan, psn)
        arqc_raw = _hex("ARQC", arqc, 8)
        if prof.arpc_method == 1:
            if arc is None:
                raise InvalidInputError("ARPC method 1 needs the authorisation response code")
            return emv.arpc_method1(icc_mk, arqc_raw, _hex("ARC", arc, 2)).hex().upper()
        if csu is None:
            raise InvalidInputError("ARPC method 2 needs the card status update")
        session = emv.ac_session_key(cvn, icc_mk, atc, unpredictable_number)
        return emv.arpc_method2(session, arqc_raw, _hex("CSU", csu, 4), proprietary_data).hex().upper()

    # ------------------------------------------------------------------------------------- internals

    def _key(self, code: str, cryptogram: str, *, destination: bool = False) -> ClearKey:
        return self._codec.from_lmk(code, cryptogram, destination=destination)

    def _pvk(self, pvk: str, *, pair: bool = False) -> bytes:
        key = self._key("002", pvk)
        if key.aes or (pair and len(key.value) != 16):
            raise KeyLengthError("PVK must be a double-length TDES key (PVK A || PVK B)")
        return key.value

    def _mk_ac(self, mk_ac: str) -> bytes:
        key = self._key("109", mk_ac)
        if key.aes or len(key.value) != 16:
            raise KeyLengthError("MK-AC must be a double-length TDES key")
        return key.value

    def _pin_under(
        self,
        code: str,
        cryptogram: str,
        pin_block: str,
        pin_format: str,
        account: str,
        pan: str | None,
        max_pin_length: int,
    ) -> str:
        if code not in ("001", "002"):
            raise KeyTypeError(f"key type {code} does not encrypt PIN blocks", "28")
        return _decrypt_pin(self._key(code, cryptogram), pin_block, pin_format, account, pan, max_pin_length)

    @staticmethod
    def _translate(
        source: ClearKey,
        destination: ClearKey,
        pin_block: str,
        source_format: str,
        destination_format: str,
        account: str,
        pan: str | None,
        max_pin_length: int,
    ) -> PinTranslation:
        pin = _decrypt_pin(source, pin_block, source_format, account, pan, max_pin_length)
        block = _encrypt_pin(destination, pin, destination_format, account, pan)
        return PinTranslation(len(pin), block, destination_format)


def _check_exportable(key: ClearKey) -> None:
    if not key.exportable:
        raise KeyFunctionError("the key was imported as non-exportable (TR-31 exportability N)")


def _check_export_header(key_type: str, header: tr31.Header) -> None:
    """Refuse a key block header that would re-type the key or carry an undefined attribute."""
    if header.usage not in TR31_USAGES.get(key_type, frozenset()):
        raise KeyBlockError(f"key type {key_type} cannot be exported with key usage {header.usage!r}", "A6")
    if header.mode_of_use not in TR31_MODES[header.usage]:
        raise KeyBlockError(f"mode of use {header.mode_of_use!r} is not defined for key usage {header.usage}",
                            "A8")
    if header.exportability not in TR31_EXPORTABILITY:
        raise KeyBlockError(f"exportability {header.exportability!r} is not E, N or S", "AA")


def _hex(name: str, value: str, length: int) -> bytes:
    """Decode a hex field of exactly ``length`` bytes (error 15 otherwise)."""
    if len(value) != 2 * length:
        raise InvalidInputError(f"{name} must be {2 * length} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be hex") from None


def _format4_pan(account: str, pan: str | None) -> str:
    if pan is not None:
        return pan
    if len(account) >= 13:
        return account
    raise AccountError("PIN block format 48 needs the full PAN")


def _decrypt_pin(
    key: ClearKey, pin_block: str, fmt_code: str, account: str, pan: str | None, max_pin_length: int
) -> str:
    """The clear PIN inside an encrypted PIN block (stays inside the HSM)."""
    fmt = pinblock.iso_format(fmt_code)
    if not 4 <= max_pin_length <= pinblock.MAX_PIN:
        raise PinLengthError("maximum PIN length must be 4 to 12")
    if fmt == 4:
        if not key.aes:
            raise PinBlockFormatError("format 48 needs an AES key")
        raw = _hex("PIN block", pin_block, 16)
        return pinblock.decrypt_format4(key.value, raw, _format4_pan(account, pan), max_pin_length)
    if key.aes:
        raise PinBlockFormatError("an AES key encrypts format 48 PIN blocks only")
    clear = tdes_decrypt(key.value, _hex("PIN block", pin_block, 8))
    return pinblock.decode(fmt, clear, account, max_pin_length)


def _encrypt_pin(key: ClearKey, pin: str, fmt_code: str, account: str, pan: str | None) -> str:
    fmt = pinblock.iso_format(fmt_code)
    if fmt == 4:
        if not key.aes:
            raise PinBlockFormatError("format 48 needs an AES key")
        return pinblock.encrypt_format4(key.value, pin, _format4_pan(account, pan)).hex().upper()
    if key.aes:
        raise PinBlockFormatError("an AES key encrypts format 48 PIN blocks only")
    return tdes_encrypt(key.value, pinblock.encode(fmt, pin, account)).hex().upper()


def _check_card_data(pan: str, expiry: str, service_code: str) -> None:
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise AccountError("PAN must be 12 to 19 digits")
    if len(expiry) != 4 or not expiry.isdigit():
        raise InvalidInputError("expiry date must be 4 digits")
    if len(service_code) != 3 or not service_code.isdigit():
        raise InvalidInputError("service code must be 3 digits")
