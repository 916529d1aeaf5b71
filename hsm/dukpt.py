"""Derived Unique Key Per Transaction, host side: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3:2017).

TDES DUKPT: the KSN is 10 bytes, its right-most 21 bits the transaction counter. The initial key (IPEK) is
the BDK and the BDK xor ``C0C0C0C000000000C0C0C0C000000000`` each encrypting the left 8 KSN bytes with the
counter cleared. The transaction key follows the counter's set bits from the most significant one, applying
the non-reversible key generation process once per bit; usage variants are XORed into it.

AES DUKPT: the KSN is 12 bytes, an 8-byte initial key ID and a 32-bit counter. Every key is AES-ECB of a
16-byte derivation data block (version, block counter, key usage, algorithm, length, then the initial key ID
or the derivation ID || counter) under its parent key (X9.24-3:2017 §6.3).
"""

from __future__ import annotations

from hsm.cipher import aes_encrypt, tdes_encrypt, xor
from hsm.errors import InvalidInputError, KeyLengthError

# --------------------------------------------------------------------------------------------- TDES

TDES_KSN_LEN = 10
COUNTER_BITS = 21
_KEY_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")

# Variants XORed into the transaction key (X9.24-1:2009 Annex A).
PIN_VARIANT = bytes.fromhex("00000000000000FF00000000000000FF")
MAC_REQUEST_VARIANT = bytes.fromhex("000000000000FF00000000000000FF00")
MAC_RESPONSE_VARIANT = bytes.fromhex("00000000FF00000000000000FF000000")
DATA_REQUEST_VARIANT = bytes.fromhex("0000000000FF00000000000000FF0000")
DATA_RESPONSE_VARIANT = bytes.fromhex("000000FF00000000000000FF00000000")


def _counter(ksn: bytes) -> int:
    return int.from_bytes(ksn[-3:], "big") & ((1 << COUNTER_BITS) - 1)


def tdes_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """Initial PIN encryption key for the device that owns ``ksn``."""
    if len(bdk) != 16:
        raise KeyLengthError("TDES DUKPT needs a double-length BDK")
    if len(ksn) != TDES_KSN_LEN:
        raise InvalidInputError("TDES DUKPT KSN must be 10 bytes")
    base = (int.from_bytes(ksn, "big") & ~((1 << COUNTER_BITS) - 1)).to_bytes(TDES_KSN_LEN, "big")[:8]
    return tdes_encrypt(bdk, base) + tdes_encrypt(xor(bdk, _KEY_MASK), base)


def _non_reversible(key: bytes, register: bytes) -> bytes:
    def half(k: bytes) -> bytes:
        left, right = k[:8], k[8:]
        return xor(tdes_encrypt(left, xor(register, right)), right)

    return half(xor(key, _KEY_MASK)) + half(key)


def tdes_transaction_key(bdk: bytes, ksn: bytes) -> bytes:
    """The transaction ("current") key for ``ksn``, before any usage variant."""
    key = tdes_ipek(bdk, ksn)
    counter = _counter(ksn)
    if bin(counter).count("1") > 10:
        raise InvalidInputError("KSN counter has more than 10 bits set")
    register = int.from_bytes(ksn[-8:], "big") & ~((1 << COUNTER_BITS) - 1)
    for bit in reversed(range(COUNTER_BITS)):
        if counter & (1 << bit):
            register |= 1 << bit
            key = _non_reversible(key, register.to_bytes(8, "big"))
    return key


def tdes_pin_key(bdk: bytes, ksn: bytes) -> bytes:
    """PIN encryption key of the transaction (transaction key xor the PIN variant)."""
    return xor(tdes_transaction_key(bdk, ksn), PIN_VARIANT)


def expand_ksn(descriptor: str, ksn: str) -> bytes:
    """A Thales KSN field as 10 bytes.

    The 3H descriptor gives the base derivation key ID length, sub-key ID length and device ID length (hex
    digits); the KSN field holds those plus the 5-digit counter part and is left-padded with F to 20 digits.
    A KSN given already padded to 20 digits (as host-command builders send it, see
    :mod:`hsm.thales.cmd_pin`) is used by its right-most descriptor-length digits, padded again with F the
    way the HSM pads: whatever the sender padded with cannot change the derived keys.
    """
    if len(descriptor) != 3 or not all(c in "0123456789ABCDEF" for c in descriptor.upper()):
        raise InvalidInputError("KSN descriptor must be 3 hex digits")
    expected = sum(int(c, 16) for c in descriptor) + 5
    if expected > 20:
        raise InvalidInputError("KSN descriptor describes a KSN longer than 20 hex digits")
    text = ksn.upper()
    if len(text) not in (expected, 20) or not all(c in "0123456789ABCDEF" for c in text):
        raise InvalidInputError("KSN does not match its descriptor")
    return bytes.fromhex(text[-expected:].rjust(20, "F"))


# ---------------------------------------------------------------------------------------------- AES

AES_KSN_LEN = 12

# Key usage indicators (X9.24-3:2017 Table 2).
USAGE_KEY_DERIVATION = 0x8000
USAGE_INITIAL_KEY = 0x8001
USAGE_PIN = 0x1000
USAGE_MAC_GENERATE = 0x2000
USAGE_MAC_VERIFY = 0x2001
USAGE_MAC_BOTH = 0x2002
USAGE_DATA_ENCRYPT = 0x3000
USAGE_DATA_DECRYPT = 0x3001
USAGE_DATA_BOTH = 0x3002

# Working key types: name -> (algorithm indicator, length in bytes) (X9.24-3:2017 Table 3).
KEY_TYPES: dict[str, tuple[int, int]] = {
    "2TDEA": (0, 16),
    "3TDEA": (1, 24),
    "AES128": (2, 16),
    "AES192": (3, 24),
    "AES256": (4, 32),
}
_AES_BY_LENGTH = {16: "AES128", 24: "AES192", 32: "AES256"}


def _derive(parent: bytes, usage: int, key_type: str, tail: bytes) -> bytes:
    algorithm, length = KEY_TYPES[key_type]
    blocks = []
    for counter in range(1, -(-length // 16) + 1):
        data = bytes([1, counter]) + usage.to_bytes(2, "big") + algorithm.to_bytes(2, "big")
        data += (length * 8).to_bytes(2, "big") + tail
        blocks.append(aes_encrypt(parent, data))
    return b"".join(blocks)[:length]


def aes_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """Initial key of the device with ``initial_key_id`` (8 bytes), same type as the BDK."""
    key_type = _AES_BY_LENGTH.get(len(bdk))
    if key_type is None:
        raise KeyLengthError("AES DUKPT BDK must be AES-128, -192 or -256")
    if len(initial_key_id) != 8:
        raise InvalidInputError("initial key ID must be 8 bytes")
    return _derive(bdk, USAGE_INITIAL_KEY, key_type, initial_key_id)


def aes_transaction_key(bdk: bytes, ksn: bytes) -> bytes:
    """The derivation key of the transaction (the "intermediate" key at the KSN's counter)."""
    if len(ksn) != AES_KSN_LEN:
        raise InvalidInputError("AES DUKPT KSN must be 12 bytes")
    key = aes_initial_key(bdk, ksn[:8])
    key_type = _AES_BY_LENGTH[len(bdk)]
    counter = int.from_bytes(ksn[8:], "big")
    if bin(counter).count("1") > 16:
        raise InvalidInputError("KSN counter has more than 16 bits set")
    working = 0
    for bit in reversed(range(32)):
        if counter & (1 << bit):
            working |= 1 << bit
            key = _derive(key, USAGE_KEY_DERIVATION, key_type, ksn[4:8] + working.to_bytes(4, "big"))
    return key


def aes_working_key(bdk: bytes, ksn: bytes, usage: int, key_type: str = "AES128") -> bytes:
    """A working key (PIN, MAC, data) of the transaction identified by ``ksn``."""
    if key_type not in KEY_TYPES:
        raise InvalidInputError(f"unknown AES DUKPT working key type {key_type!r}")
    if KEY_TYPES[key_type][1] > len(bdk):
        raise KeyLengthError("working key is stronger than the BDK")
    return _derive(aes_transaction_key(bdk, ksn), usage, key_type, ksn[4:12])
