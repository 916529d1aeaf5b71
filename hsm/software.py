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

import os

from hsm.lmk import Lmk
from hsm.soft_base import FIRMWARE
from hsm.soft_card import CardFunctions
from hsm.soft_keys import ExportedKey, GeneratedKey, KeyFunctions, Tr31Imported
from hsm.soft_mac import MacFunctions
from hsm.soft_pinlmk import PinLmkFunctions

__all__ = ["FIRMWARE", "ExportedKey", "GeneratedKey", "SoftwareHsm", "Tr31Imported"]


class SoftwareHsm(KeyFunctions, PinLmkFunctions, CardFunctions, MacFunctions):
    """A payShield-compatible HSM in software. Holds one :class:`~hsm.lmk.Lmk` and the working keys it has
    decrypted under it (:class:`~hsm.keys.KeyCodec`'s bounded cache); no other state.

    Thread-safe: the only state between calls is that cache, guarded by a lock.
    """

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SoftwareHsm:
        """Load the LMK from ``path`` (see :meth:`Lmk.load`: refused if readable by group or others)."""
        return cls(Lmk.load(path))

    def __repr__(self) -> str:
        return f"SoftwareHsm(lmk_check_value={self.diagnostics().lmk_check_value[:6]})"

