"""PINs encrypted under the LMK: the "PIN under LMK" of payShield commands BA, NG, JC, JE, DG (and DE, PE, ...).

What is public: the payShield manual gives the field as "L N or L+1 N: the PIN encrypted under LMK pair 02-03"
(e.g. its CE page, publicly quoted), i.e. decimal digits, one more than the PIN; the account number is an input
of every command that encrypts or decrypts it, so the encryption is bound to the account. Thales does not publish
the algorithm. The open-source payShield simulators do not implement one either: the Thales simulator
(nickntg/thalessimulatorlibrary, ``ThalesCore/HostCommands/AHostCommand.vb`` ``EncryptPINForHostStorage``, and
its C# ``Cryptography/PIN/Encrypt.cs``, documented there as "currently implementations are dummy") writes ``"0"``
followed by the clear PIN; jPOS's software HSM (``JCESecurityModule.encryptPINImpl``) TDES-encrypts an ISO format 0
block under its PIN LMK (16 hex characters, a different shape), and its ``SMAdapter`` notes that every security
module encodes PINs under its LMK its own way.

Bulkhead's encoding keeps the payShield's shape and really encrypts: ``"1"`` (the encoding's version digit)
followed by the PIN's L digits enciphered with a format-preserving cipher: a 10-round Feistel network over the
two halves of the PIN's digits (modular addition, as in NIST SP 800-38G's FF1), whose round function is TDES under
LMK pair 02-03 with a tweak made from the 12-digit account field and the PIN length. So the same PIN and account
always give the same value (a host may compare two of them, as with a payShield), a different account gives a
different value, and nothing outside the HSM can read the PIN. It is Bulkhead's own, not a payShield's: a value
from a real payShield cannot be read here, nor the reverse.

For test data made by the open-source simulator, an HSM holding the public Thales test LMK (nothing under it is
secret) also reads its ``"0"`` + clear PIN form; any other LMK refuses it (error 14), and Bulkhead never writes it.
"""

from __future__ import annotations

from hsm.cipher import tdes_encrypt, xor
from hsm.errors import HsmError, PinLengthError

VERSION = "1"
"""First digit of Bulkhead's encoding."""
SIMULATOR = "0"
"""First digit of the open-source simulator's unencrypted form (read under the test LMK only)."""
MIN_PIN, MAX_PIN = 4, 12
ROUNDS = 10


class PinUnderLmkError(HsmError):
    """14: the PIN encrypted under LMK pair 02-03 is invalid (not this HSM's encoding, or not digits)."""

    code = "14"


def _tweak(key: bytes, account: str, length: int) -> bytes:
    """8 bytes that bind the cipher to the 12-digit account field and the PIN length."""
    return tdes_encrypt(key, bytes.fromhex(account) + bytes([length, 0]))


def _round(key: bytes, tweak: bytes, index: int, value: int, width: int, out_width: int) -> int:
    block = bytes([index, width]) + value.to_bytes(6, "big")
    modulus: int = 10 ** out_width
    return int.from_bytes(tdes_encrypt(key, xor(tweak, block)), "big") % modulus


def _check_account(account: str) -> None:
    if len(account) != 12 or not account.isdigit():
        raise HsmError("the account field is 12 digits", "22")


def encrypt(key: bytes, pin: str, account: str) -> str:
    """``pin`` (4-12 digits) under ``key`` (LMK pair 02-03), bound to the 12-digit ``account``: L+1 digits."""
    _check_account(account)
    if not pin.isdigit() or not MIN_PIN <= len(pin) <= MAX_PIN:
        raise PinLengthError("PIN must be 4 to 12 digits")
    tweak = _tweak(key, account, len(pin))
    half = len(pin) // 2
    a, wa, b, wb = int(pin[:half]), half, int(pin[half:]), len(pin) - half
    for i in range(ROUNDS):
        c = (a + _round(key, tweak, i, b, wb, wa)) % 10 ** wa
        a, wa, b, wb = b, wb, c, wa
    return VERSION + f"{a:0{wa}d}{b:0{wb}d}"


def decrypt(key: bytes, value: str, account: str, *, accept_simulator: bool = False) -> str:
    """The PIN in ``value`` (error 14 if it is not one). ``accept_simulator``: also read the open-source
    simulator's ``"0"`` + clear PIN (only for an HSM under the public test LMK)."""
    _check_account(account)
    digits = value[1:]
    if not value.isdigit() or not MIN_PIN <= len(digits) <= MAX_PIN:
        raise PinUnderLmkError("a PIN under the LMK is 5 to 13 digits")
    if value[0] == SIMULATOR and accept_simulator:
        return digits
    if value[0] != VERSION:
        raise PinUnderLmkError("not a PIN encrypted under this HSM's LMK")
    tweak = _tweak(key, account, len(digits))
    half = len(digits) // 2
    # After an even number of rounds the halves have their original widths again.
    a, wa, b, wb = int(digits[:half]), half, int(digits[half:]), len(digits) - half
    for i in reversed(range(ROUNDS)):
        previous_b, previous_wb, previous_wa = a, wa, wb
        previous_a = (b - _round(key, tweak, i, previous_b, previous_wb, previous_wa)) % 10 ** previous_wa
        a, wa, b, wb = previous_a, previous_wa, previous_b, previous_wb
    return f"{a:0{wa}d}{b:0{wb}d}"
