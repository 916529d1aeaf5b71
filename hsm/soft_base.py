"""The software HSM's core: the LMK, the working-key cache, and the helpers every function module shares.

:class:`SoftwareCore` is the base of the function modules (:mod:`hsm.soft_keys`, :mod:`hsm.soft_pin`,
:mod:`hsm.soft_pinlmk`, :mod:`hsm.soft_card`, :mod:`hsm.soft_mac`), which :class:`hsm.software.SoftwareHsm`
assembles; it holds the only state (see :class:`hsm.software.SoftwareHsm`).
"""

from __future__ import annotations

from hsm.errors import InvalidInputError, KeyLengthError
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk

FIRMWARE = "0007-E000"
"""Firmware number reported by NC (9 characters). Bulkhead's own; payShield hosts only display it."""


class SoftwareCore:
    """The LMK and the working keys decrypted under it; every software HSM function module derives from it."""

    def __init__(self, lmk: Lmk, *, firmware: str = FIRMWARE, tr31_legacy_versions: bool = False) -> None:
        """``tr31_legacy_versions``: also import TR-31 versions A and C (key variant binding), which TR-31:2018
        deprecates; off by default."""
        self._lmk = lmk
        self._codec = KeyCodec(lmk)
        self._firmware = firmware
        self._tr31_legacy_versions = tr31_legacy_versions
        self._test_lmk = lmk.is_thales_test()

    def _key(self, code: str, cryptogram: str, *, destination: bool = False) -> ClearKey:
        return self._codec.from_lmk(code, cryptogram, destination=destination)

    def _pvk(self, pvk: str, *, pair: bool = False) -> bytes:
        key = self._key("002", pvk)
        if key.aes or (pair and len(key.value) != 16):
            raise KeyLengthError("PVK must be a double-length TDES key (PVK A || PVK B)")
        return key.value



def hex_field(name: str, value: str, length: int) -> bytes:
    """Decode a hex field of exactly ``length`` bytes (error 15 otherwise)."""
    if len(value) != 2 * length:
        raise InvalidInputError(f"{name} must be {2 * length} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be hex") from None
