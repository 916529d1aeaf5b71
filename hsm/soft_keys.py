"""Key management functions of the software HSM: A0, A6, A8, BU, NC and TR-31 import/export."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import NamedTuple

from hsm import tr31
from hsm.api import Diagnostics, ImportedKey, KeyUnderZmk
from hsm.cipher import force_odd_parity, has_odd_parity, xor
from hsm.errors import (
    InvalidInputError,
    KeyBlockError,
    KeyComponentError,
    KeyFunctionError,
    KeyLengthError,
    KeyParityError,
    KeySchemeError,
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
from hsm.lmk import key_type as lookup_key_type
from hsm.soft_base import SoftwareCore

_TDES_LENGTH = {"Z": 8, "U": 16, "X": 16, "T": 24, "Y": 24}
MIN_COMPONENTS, MAX_COMPONENTS = 2, 9
"""A4 forms a key from 2 to 9 components (payShield host command manual, A4 "number of components")."""


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


class KeyFunctions(SoftwareCore):
    """Keys: generate, import, export, check values, TR-31 key blocks."""

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

    def form_key_from_components(self, key_type: str, components: Sequence[str], scheme: str = "U") -> GeneratedKey:
        """A key from clear components, as custodians type them from their mailers (the payShield does this at
        its console, FK): each component hex of the scheme's length with odd parity (error 10 otherwise, which
        catches most typing errors); the key is their XOR with odd parity forced, under the LMK as ``key_type``
        in ``scheme``; its KCV (6H) is what the custodians check. Nothing here keeps or logs a component."""
        return self._form_key(key_type, [_clear_component(c) for c in components], scheme)

    def form_key_from_encrypted_components(
        self, key_type: str, components: Sequence[str], scheme: str = "U"
    ) -> GeneratedKey:
        """A4: a key from components encrypted under the LMK as ``key_type`` (error 10 if one fails its parity
        check, which is also what a component of another key type looks like)."""
        parts = []
        for component in components:
            clear = self._key(key_type, component)
            if clear.aes:
                raise KeySchemeError("key components are TDES keys")
            parts.append(clear.value)
        return self._form_key(key_type, parts, scheme)

    def _form_key(self, key_type: str, parts: list[bytes], scheme: str) -> GeneratedKey:
        lookup_key_type(key_type)
        if not MIN_COMPONENTS <= len(parts) <= MAX_COMPONENTS:
            raise KeyComponentError(f"a key is formed from {MIN_COMPONENTS} to {MAX_COMPONENTS} components")
        scheme = scheme.upper()
        length = _TDES_LENGTH.get(scheme)
        if length is None:
            raise KeySchemeError(f"key scheme {scheme!r} cannot hold a key formed from components")
        if any(len(part) != length for part in parts):
            raise InvalidInputError(f"every component must be {2 * length} hex digits for key scheme {scheme}")
        if len({bytes(part) for part in parts}) != len(parts):
            # Two equal components cancel out in the XOR: the key would not depend on them (a copying error).
            raise InvalidInputError("two components are the same")
        key = ClearKey(force_odd_parity(reduce(xor, parts)))
        return GeneratedKey(self._codec.to_lmk(key_type, key, scheme), key.check_value())

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



def _clear_component(component: str) -> bytes:
    if len(component) not in (16, 32, 48) or any(c not in "0123456789ABCDEFabcdef" for c in component):
        raise InvalidInputError("a clear key component is 16, 32 or 48 hex digits")
    value = bytes.fromhex(component)
    if not has_odd_parity(value):
        raise KeyParityError("a key component fails its parity check (odd parity)")
    return value
