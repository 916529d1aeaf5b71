"""Clear keys inside the HSM and their cryptograms under the LMK or a key-encrypting key.

:class:`ClearKey` is the only holder of clear key material; its repr shows the algorithm and length only.
:class:`KeyCodec` turns Thales-notation cryptograms into clear keys and back, checking parity (errors 10/11)
and scheme/length compatibility (26/27) the way a payShield does.
"""

from __future__ import annotations

import os
import threading

from hsm import tr31
from hsm.cipher import force_odd_parity, has_odd_parity, tdes_encrypt
from hsm.errors import KeyBlockError, KeyLengthError, KeyParityError, KeySchemeError
from hsm.lmk import Lmk, key_type
from hsm.mac import cmac
from hsm.variant import SCHEME_LENGTH, decrypt_key, encrypt_key, format_cryptogram, parse_cryptogram

# TR-31 key usage and mode of use for each key type (ANSI X9.143 Table 6 / Table 8), TDES and AES: what a key
# leaves as when the caller does not say.
TR31_USAGE: dict[str, tuple[str, str]] = {
    "000": ("K0", "B"),
    "001": ("P0", "B"),
    "002": ("P0", "B"),
    "402": ("C0", "C"),
    "003": ("M3", "C"),
    "008": ("M3", "C"),
    "009": ("B0", "X"),
    "109": ("E0", "X"),
}
# Key usage -> key type on import, when the caller does not say (002 covers TPK, TMK and PVK).
TR31_KEY_TYPE: dict[str, str] = {
    "K0": "000",
    "K1": "000",
    "P0": "001",
    "V0": "002",
    "V1": "002",
    "V2": "002",
    "C0": "402",
    "M0": "003",
    "M1": "003",
    "M3": "003",
    "M6": "003",
    "B0": "009",
    "E0": "109",
}
# Key usage -> the key types a block of that usage may become (and, inverted, the usages a key type may leave
# as). A key is never re-typed across functions: a PIN key (P0) cannot become a ZMK, nor a KEK (K0) a PIN key.
# P0 is a ZPK (001) or a TPK (002); V0-V2 (PIN verification) a PVK (002); MAC usages a TAK or ZAK. Under the
# variant LMK 002 also means TMK, but a TMK is imported as such with A6, never from a K0 block.
TR31_KEY_TYPES: dict[str, frozenset[str]] = {
    "K0": frozenset({"000"}),
    "K1": frozenset({"000"}),
    "P0": frozenset({"001", "002"}),
    "V0": frozenset({"002"}),
    "V1": frozenset({"002"}),
    "V2": frozenset({"002"}),
    "C0": frozenset({"402"}),
    "M0": frozenset({"003", "008"}),
    "M1": frozenset({"003", "008"}),
    "M3": frozenset({"003", "008"}),
    "M6": frozenset({"003", "008"}),
    "B0": frozenset({"009"}),
    "E0": frozenset({"109"}),
}
TR31_USAGES: dict[str, frozenset[str]] = {
    code: frozenset(usage for usage, codes in TR31_KEY_TYPES.items() if code in codes) for code in TR31_USAGE
}
# Modes of use defined for each usage (X9.143 Table 8: B both, D decrypt/unwrap only, E encrypt/wrap only, C
# generate and verify, G generate only, V verify only, X key derivation, N no special restriction). A key may
# leave with any of them (a narrower mode only restricts the receiver).
_ENCRYPTING, _CHECKING, _DERIVING = ("K0", "K1", "P0"), ("V0", "V1", "V2", "C0", "M0", "M1", "M3", "M6"), ("B0", "E0")
TR31_MODES: dict[str, frozenset[str]] = {
    **{usage: frozenset("BDEN") for usage in _ENCRYPTING},
    **{usage: frozenset("CGVN") for usage in _CHECKING},
    **{usage: frozenset("XN") for usage in _DERIVING},
}
# Modes a block must have to be imported. A key under a variant LMK carries no attributes: once imported it
# can do everything its key type does here (a ZPK both encrypts and decrypts PIN blocks, a CVK generates and
# verifies), so a block restricted to less (E, D, G, V) is refused rather than silently widened.
TR31_IMPORT_MODES: dict[str, frozenset[str]] = {
    **{usage: frozenset("BN") for usage in _ENCRYPTING},
    **{usage: frozenset("CN") for usage in _CHECKING},
    **{usage: frozenset("XN") for usage in _DERIVING},
}
TR31_EXPORTABILITY = frozenset("ENS")
"""X9.143 exportability: E exportable under a KEK, N non-exportable, S sensitive (exportable, any KEK)."""


class ClearKey:
    """A clear key held inside the HSM. Never formatted: repr shows only algorithm and length.

    ``exportable`` is ``False`` for a key that arrived in a TR-31 block with exportability ``N``: it may be used
    but never leave the HSM (only AES keys, held as key blocks, can carry that attribute under the LMK).
    """

    __slots__ = ("aes", "exportable", "value")

    def __init__(self, value: bytes, *, aes: bool = False, exportable: bool = True) -> None:
        self.value = value
        self.aes = aes
        self.exportable = exportable

    def __repr__(self) -> str:
        extra = "" if self.exportable else ", non-exportable"
        return f"ClearKey({'AES' if self.aes else 'TDES'}, {len(self.value)} bytes{extra})"

    def check_value(self, full: bool = False) -> str:
        """KCV: TDES of 8 zero bytes, or (AES) CMAC of a zero block; 6H or 16H."""
        raw = cmac(self.value, bytes(16)) if self.aes else tdes_encrypt(self.value, bytes(8))
        return raw[: 8 if full else 3].hex().upper()


def random_tdes(length: int) -> ClearKey:
    """A random odd-parity DES/TDES key of 8, 16 or 24 bytes."""
    return ClearKey(force_odd_parity(os.urandom(length)))


class KeyCodec:
    """Encrypts and decrypts keys under the LMK (by key type) and under ZMKs/TMKs (by scheme)."""

    # Working keys decrypted from under the LMK, by (key type, cryptogram). A switch uses a handful of keys for
    # millions of operations (the same TPK and ZPK for every ATM PIN): decrypting them each time was 60% of a
    # CA translation. The clear keys stay inside this object, as in a hardware HSM's memory, next to the LMK
    # that would decrypt them anyway; only successful decryptions are kept, so a bad cryptogram fails every time.
    CACHE_SIZE = 4096

    def __init__(self, lmk: Lmk) -> None:
        self._lmk = lmk
        self._clear: dict[tuple[str, str], ClearKey] = {}
        self._clear_lock = threading.Lock()  # SoftwareBackend(use_thread=True) calls from several threads

    # -------------------------------------------------------------------------------------- the LMK

    def from_lmk(self, code: str, cryptogram: str, *, destination: bool = False) -> ClearKey:
        """Decrypt a key of type ``code`` from under the LMK; error 10 (11 for a destination key) on parity."""
        cached = self._clear.get((code, cryptogram))
        if cached is not None:
            return cached
        key = self._from_lmk(code, cryptogram, destination)
        with self._clear_lock:
            while len(self._clear) >= self.CACHE_SIZE:
                self._clear.pop(next(iter(self._clear)))  # the oldest entry: dicts keep insertion order
            self._clear[code, cryptogram] = key
        return key

    def _from_lmk(self, code: str, cryptogram: str, destination: bool) -> ClearKey:
        parsed = parse_cryptogram(cryptogram)
        if parsed.scheme == "R":
            try:
                header, value = tr31.unwrap(self._lmk.aes_type_key(code), parsed.text)
            except KeyBlockError:
                raise KeyParityError(
                    f"AES key does not verify under the LMK as key type {code}", destination=destination
                ) from None
            return ClearKey(value, aes=True, exportable=header.exportability != "N")
        value = decrypt_key(self._lmk.type_key(code), parsed)
        if not has_odd_parity(value):
            raise KeyParityError(f"key of type {code} fails its parity check", destination=destination)
        return ClearKey(value)

    def to_lmk(self, code: str, key: ClearKey, scheme: str) -> str:
        """Encrypt a clear key of type ``code`` under the LMK in ``scheme``."""
        scheme = scheme.upper()
        if key.aes or scheme == "R":
            if not key.aes:
                raise KeySchemeError("scheme R holds AES keys only")
            usage, mode = TR31_USAGE.get(code, ("K0", "B"))
            header = tr31.Header("D", usage, "A", mode, "00", "E" if key.exportable else "N")
            return "R" + tr31.wrap(self._lmk.aes_type_key(code), header, key.value)
        if not key.exportable:
            # A variant cryptogram cannot record "non-exportable": refuse rather than lose the attribute.
            raise KeyBlockError("a non-exportable TDES key cannot be held under a variant LMK", "AA")
        key_type(code)
        lmk_scheme = "" if scheme == "Z" else scheme
        return format_cryptogram(lmk_scheme, encrypt_key(self._lmk.type_key(code), key.value, lmk_scheme))

    # ---------------------------------------------------------------------------------- a ZMK / TMK

    @staticmethod
    def from_kek(kek: ClearKey, cryptogram: str) -> tuple[ClearKey, bool]:
        """Decrypt a key from under a ZMK/TMK; returns it with parity forced and whether that changed it."""
        if kek.aes:
            raise KeySchemeError("AES key-encrypting keys exchange keys as TR-31 blocks only")
        parsed = parse_cryptogram(cryptogram)
        if parsed.scheme == "R":
            raise KeySchemeError("TR-31 blocks are imported with the TR-31 function")
        value = decrypt_key(kek.value if len(kek.value) > 8 else kek.value * 2, parsed)
        fixed = force_odd_parity(value)
        return ClearKey(fixed), fixed != value

    @staticmethod
    def to_kek(kek: ClearKey, key: ClearKey, scheme: str) -> str:
        """Encrypt a clear TDES key under a ZMK/TMK in ``scheme`` (U/T variant, X/Y/Z X9.17)."""
        scheme = scheme.upper()
        if kek.aes or key.aes:
            raise KeySchemeError("AES keys are exchanged as TR-31 blocks only")
        if scheme not in SCHEME_LENGTH and scheme != "":
            raise KeySchemeError(f"key scheme {scheme!r} is not a ZMK scheme")
        # A single-length KEK works as TDES with equal halves, i.e. single DES (X9.17 with a DES ZMK).
        kek_value = kek.value if len(kek.value) > 8 else kek.value * 2
        out_scheme = "" if scheme == "Z" else scheme
        return format_cryptogram(out_scheme, encrypt_key(kek_value, key.value, out_scheme))

    @staticmethod
    def aes_random(length: int) -> ClearKey:
        """A random AES key of 16, 24 or 32 bytes."""
        if length not in (16, 24, 32):
            raise KeyLengthError("AES keys are 16, 24 or 32 bytes")
        return ClearKey(os.urandom(length), aes=True)

