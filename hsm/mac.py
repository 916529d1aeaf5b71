"""Message authentication codes: ISO/IEC 9797-1 algorithms 1, 3 and 5 (CMAC) and padding methods 1-3.

- Algorithm 1: CBC-MAC under the whole key (DES for 8-byte keys, TDES otherwise).
- Algorithm 3 ("retail MAC", ANSI X9.19): CBC-MAC under single DES with the left key K, then the last block
  is decrypted under K' and encrypted under K again (K'' for a triple-length key).
- Algorithm 5 (CMAC, NIST SP 800-38B / RFC 4493) with DES/TDES (64-bit, Rb = 0x1B) or AES (Rb = 0x87).

Multi-part messages (payShield M6 mode flags): parts before the last are whole blocks and produce a chaining
value (:func:`mac_chain`); the last part continues from it (:func:`mac_final`). Padding applies to the last
part only, so method 3 (whose length block comes first) works only for single-part messages.
"""

from __future__ import annotations

from hsm.cipher import (
    AES_BLOCK,
    DES_BLOCK,
    aes_cbc_encrypt,
    aes_encrypt,
    tdes_cbc_encrypt,
    tdes_encrypt,
    xor,
)
from hsm.errors import DataLengthError, InvalidInputError, KeyLengthError

ALG1 = 1
ALG3 = 3
CMAC = 5


def pad(data: bytes, method: int, block: int = DES_BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding: 0 none, 1 zeros, 2 ``80`` then zeros, 3 length block first then zeros."""
    if method == 0:
        if not data or len(data) % block:
            raise DataLengthError("without padding the data must be a non-empty whole number of blocks")
        return data
    if method == 1:
        # Method 1 pads an empty message to one block of zeros (ISO/IEC 9797-1:2011 §6.3.1).
        return data + bytes(-len(data) % block) if data else bytes(block)
    if method == 2:
        data += b"\x80"
        return data + bytes(-len(data) % block)
    if method == 3:
        # §6.3.3: D is zero-padded to a multiple of n (possibly zero blocks), then the length block L goes
        # first; so the empty message is L alone.
        length = (len(data) * 8).to_bytes(block, "big")
        return length + data + bytes(-len(data) % block)
    raise InvalidInputError(f"unknown padding method {method}")


def _encrypt_block(key: bytes, block: bytes) -> bytes:
    return aes_encrypt(key, block) if len(block) == AES_BLOCK else tdes_encrypt(key, block)


def _cbc(key: bytes, data: bytes, iv: bytes) -> bytes:
    """CBC chaining value (last ciphertext block) of whole blocks under the key's cipher."""
    if not data:
        return iv
    size = len(iv)
    encrypt = aes_cbc_encrypt if size == AES_BLOCK else tdes_cbc_encrypt
    return encrypt(key, data, iv)[-size:]


def block_size(key: bytes, algorithm: int, aes: bool) -> int:
    """8 for DES/TDES MACs, 16 for AES-CMAC."""
    return AES_BLOCK if aes and algorithm == CMAC else DES_BLOCK


def _check_key(key: bytes, algorithm: int, aes: bool) -> None:
    if algorithm == ALG3 and (aes or len(key) not in (16, 24)):
        raise KeyLengthError("ISO 9797-1 algorithm 3 needs a double or triple length DES key")
    if algorithm == ALG1 and aes:
        raise KeyLengthError("ISO 9797-1 algorithm 1 is defined here for DES/TDES keys only")
    if algorithm not in (ALG1, ALG3, CMAC):
        raise InvalidInputError(f"unknown MAC algorithm {algorithm}")


def mac_chain(key: bytes, data: bytes, algorithm: int, *, aes: bool = False, iv: bytes | None = None) -> bytes:
    """Chaining value after a non-final part (whole blocks, no padding)."""
    _check_key(key, algorithm, aes)
    size = block_size(key, algorithm, aes)
    if not data or len(data) % size:
        raise DataLengthError("a non-final MAC part must be a non-empty whole number of blocks")
    chain_key = key[:8] if algorithm == ALG3 else key
    return _cbc(chain_key, data, iv if iv is not None else bytes(size))


def mac_final(
    key: bytes,
    data: bytes,
    algorithm: int,
    padding: int,
    *,
    aes: bool = False,
    iv: bytes | None = None,
) -> bytes:
    """Full-length MAC (one block) of the final part, continuing from ``iv`` (zeros for a one-part message)."""
    _check_key(key, algorithm, aes)
    size = block_size(key, algorithm, aes)
    start = iv if iv is not None else bytes(size)
    if len(start) != size:
        raise InvalidInputError("MAC chaining value has the wrong length")
    if algorithm == CMAC:
        return _cmac(key, data, start, size)
    padded = pad(data, padding, size)
    if algorithm == ALG1:
        return _cbc(key, padded, start)
    # Algorithm 3: single DES with K over all blocks, then the output transform D_K' / E_K(''), which is a
    # TDES encryption of the last block's input (so tdes_encrypt(key, last xor chain) does both at once).
    chain = _cbc(key[:8], padded[:-size], start)
    return tdes_encrypt(key, xor(chain, padded[-size:]))


def _shift_left(block: bytes) -> bytes:
    value = int.from_bytes(block, "big") << 1
    return (value & ((1 << (8 * len(block))) - 1)).to_bytes(len(block), "big")


def cmac_subkeys(key: bytes, size: int) -> tuple[bytes, bytes]:
    """CMAC subkeys K1, K2 (NIST SP 800-38B §6.1)."""
    rb = 0x87 if size == AES_BLOCK else 0x1B
    subkeys = []
    value = _encrypt_block(key, bytes(size))
    for _ in range(2):
        carry = value[0] & 0x80
        value = _shift_left(value)
        if carry:
            value = value[:-1] + bytes([value[-1] ^ rb])
        subkeys.append(value)
    return subkeys[0], subkeys[1]


def _cmac(key: bytes, data: bytes, iv: bytes, size: int) -> bytes:
    k1, k2 = cmac_subkeys(key, size)
    if data and len(data) % size == 0:
        last = xor(data[-size:], k1)
        body = data[:-size]
    else:
        tail_len = len(data) % size
        tail = data[len(data) - tail_len :] + b"\x80" + bytes(size - tail_len - 1)
        last = xor(tail, k2)
        body = data[: len(data) - tail_len]
    chain = _cbc(key, body, iv)
    return _encrypt_block(key, xor(chain, last))


def cmac(key: bytes, data: bytes) -> bytes:
    """CMAC under an AES key (16/24/32 bytes)."""
    return _cmac(key, data, bytes(AES_BLOCK), AES_BLOCK)


def tdes_cmac(key: bytes, data: bytes) -> bytes:
    """CMAC under a DES/TDES key (64-bit block)."""
    return _cmac(key, data, bytes(DES_BLOCK), DES_BLOCK)


def retail_mac(key: bytes, data: bytes, padding: int = 1) -> bytes:
    """ISO 9797-1 algorithm 3 (X9.19) MAC, 8 bytes."""
    return mac_final(key, data, ALG3, padding)


__all__ = [
    "ALG1",
    "ALG3",
    "CMAC",
    "cmac",
    "cmac_subkeys",
    "mac_chain",
    "mac_final",
    "pad",
    "retail_mac",
    "tdes_cmac",
]
