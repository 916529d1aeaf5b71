"""Block-cipher primitives on top of pycryptodome: TDES that accepts degenerate keys, AES, DES key parity.

pycryptodome refuses a TDES key whose halves are equal ("degenerates to single DES"), but Thales test data and
old single-length keys written as double length use exactly such keys. TDES-EDE with K1 == K2 (or K2 == K3)
collapses to single DES under the remaining key, so those keys are run as single DES. Everything else goes
to pycryptodome's DES3.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from Crypto.Cipher import AES, DES, DES3

DES_BLOCK = 8
AES_BLOCK = 16


def _odd(byte: int) -> int:
    return (byte & 0xFE) | ((bin(byte >> 1).count("1") + 1) & 1)


_ODD_PARITY = bytes(_odd(b) for b in range(256))


def has_odd_parity(key: bytes) -> bool:
    """True when every byte of a DES/TDES key has an odd number of set bits (FIPS 46-3)."""
    return all(_ODD_PARITY[b] == b for b in key)


def force_odd_parity(key: bytes) -> bytes:
    """Set the low bit of each byte so that the byte has odd parity."""
    return bytes(_ODD_PARITY[b] for b in key)


def _effective_des_key(key: bytes) -> bytes:
    """The key pycryptodome should get: 8 bytes when TDES degenerates to single DES, else 24 (or 16) bytes."""
    if len(key) == 8:
        return key
    if len(key) == 16:
        key = key + key[:8]
    if len(key) != 24:
        raise ValueError("DES key must be 8, 16 or 24 bytes")
    k1, k2, k3 = key[:8], key[8:16], key[16:]
    # Compare with parity bits ignored: DES ignores them too.
    if force_odd_parity(k1) == force_odd_parity(k2):
        return k3
    if force_odd_parity(k2) == force_odd_parity(k3):
        return k1
    return key


@lru_cache(maxsize=4096)
def _tdes_cipher(key: bytes) -> Any:
    """An ECB cipher object for a single, double or triple length DES key (cached: LMK keys repeat)."""
    effective = _effective_des_key(key)
    if len(effective) == 8:
        return DES.new(effective, DES.MODE_ECB)
    return DES3.new(effective, DES3.MODE_ECB)


def _tdes_cbc(key: bytes, iv: bytes) -> Any:
    effective = _effective_des_key(key)
    if len(effective) == 8:
        return DES.new(effective, DES.MODE_CBC, iv=iv)
    return DES3.new(effective, DES3.MODE_CBC, iv=iv)


def tdes_encrypt(key: bytes, data: bytes) -> bytes:
    """TDES (or DES for an 8-byte key) ECB encryption of whole 8-byte blocks."""
    return bytes(_tdes_cipher(key).encrypt(data))


def tdes_decrypt(key: bytes, data: bytes) -> bytes:
    """TDES (or DES) ECB decryption of whole 8-byte blocks."""
    return bytes(_tdes_cipher(key).decrypt(data))


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def tdes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """TDES (or DES) CBC encryption of whole blocks, without padding."""
    return bytes(_tdes_cbc(key, iv).encrypt(data))


def tdes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """TDES (or DES) CBC decryption of whole blocks, without padding."""
    return bytes(_tdes_cbc(key, iv).decrypt(data))


@lru_cache(maxsize=1024)
def _aes_cipher(key: bytes) -> Any:
    return AES.new(key, AES.MODE_ECB)


def aes_encrypt(key: bytes, data: bytes) -> bytes:
    """AES ECB encryption of whole 16-byte blocks."""
    return bytes(_aes_cipher(key).encrypt(data))


def aes_decrypt(key: bytes, data: bytes) -> bytes:
    """AES ECB decryption of whole 16-byte blocks."""
    return bytes(_aes_cipher(key).decrypt(data))


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """AES CBC encryption without padding."""
    return bytes(AES.new(key, AES.MODE_CBC, iv=iv).encrypt(data))


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """AES CBC decryption without padding."""
    return bytes(AES.new(key, AES.MODE_CBC, iv=iv).decrypt(data))
