"""What a PIN pad does, for the simulators, the demo seed and tests: form an ISO PIN block and encrypt it
under the terminal's (or zone's) key.

A real PIN pad holds its key in clear inside its tamper-responsive module; Bulkhead's simulators only have
the key as an LMK cryptogram, so this module recovers the clear key through the LMK, and for that reason it
refuses every LMK but the public Thales test LMK: it exists for test data and demos, never for production.
"""

from __future__ import annotations

from hsm import pinblock
from hsm.cipher import tdes_encrypt
from hsm.errors import HsmError
from hsm.keys import KeyCodec
from hsm.lmk import Lmk

_PIN_KEY_TYPES = {"TPK": "002", "ZPK": "001", "002": "002", "001": "001"}
_ISO_CODES = {0: "01", 1: "05", 2: "34", 3: "47"}


class NotTestLmkError(HsmError):
    """Refused: PIN blocks are only formed outside an HSM under the public test LMK."""


class TestPinPad:
    """Encrypts PIN blocks under a TPK or ZPK given as a cryptogram under the Thales test LMK."""

    __test__ = False  # not a pytest test class

    def __init__(self, lmk: Lmk | None = None) -> None:
        test = Lmk.thales_test()
        lmk = lmk if lmk is not None else test
        if lmk.check_value() != test.check_value():
            raise NotTestLmkError("a PIN pad simulator runs only under the Thales test LMK")
        self._codec = KeyCodec(lmk)

    def __repr__(self) -> str:
        return "TestPinPad(test LMK)"

    def pin_block(self, key_type: str, key: str, pin: str, pan: str, fmt: int | str = 0) -> bytes:
        """The encrypted PIN block of ``pin`` for card ``pan`` under ``key`` (a ``key_type`` "TPK"/"002" or
        "ZPK"/"001" cryptogram), as the 8 bytes that go in DE 52.

        ``fmt``: an ISO 9564 format number (0, 1, 2 or 3), or a payShield format code: ``"01"``, ``"05"``, ``"34"``,
        ``"47"``, and the legacy ATM formats ``"02"`` (Docutel), ``"03"`` (Diebold / IBM 3624) and ``"04"`` (PLUS,
        which needs the full PAN) that older ATM fleets send (see :mod:`hsm.pinblock`)."""
        code = _PIN_KEY_TYPES.get(key_type)
        if code is None:
            raise HsmError(f"PIN blocks are encrypted under a TPK or ZPK, not {key_type!r}")
        clear = self._codec.from_lmk(code, key)
        fmt_code = _ISO_CODES.get(fmt) if isinstance(fmt, int) else fmt
        if fmt_code is None:
            raise HsmError(f"no 64-bit PIN block format {fmt!r}")
        return tdes_encrypt(clear.value, pinblock.encode_code(fmt_code, pin, pan))
