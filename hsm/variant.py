"""Thales key-scheme notation and variant encryption of keys under a key-encrypting key.

A key cryptogram is written with an optional one-letter scheme tag (payShield host command manual, "Key
scheme"):

=======  ===================  ==============================================================
tag      clear key length     encryption under the KEK (an LMK pair or a ZMK/TMK)
=======  ===================  ==============================================================
(none)   8, 16 or 24 bytes    TDES-ECB of each 8-byte part under the KEK
``Z``    8                    same as none
``X``    16                   same as none (ANSI X9.17)
``Y``    24                   same as none (ANSI X9.17)
``U``    16                   part *i* under the KEK with byte 8 XORed with A6 / 5A
``T``    24                   part *i* under the KEK with byte 8 XORed with 6A / DE / 2B
``R``    AES                  Bulkhead only: TR-31 version D block (see :mod:`hsm.tr31`)
=======  ===================  ==============================================================

The ``U``/``T`` "key scheme variants" bind the parts' order so that halves cannot be swapped or reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hsm.cipher import tdes_decrypt, tdes_encrypt
from hsm.errors import InvalidInputError, KeyLengthError, KeySchemeError

# Key-scheme variants applied to byte 8 (first byte of the right key) of the KEK, one per 8-byte key part.
SCHEME_VARIANTS: dict[str, bytes] = {"U": bytes.fromhex("A65A"), "T": bytes.fromhex("6ADE2B")}

# Clear key length (bytes) each tagged scheme holds.
SCHEME_LENGTH = {"Z": 8, "U": 16, "X": 16, "T": 24, "Y": 24}
TDES_SCHEMES = frozenset("ZUXTY")
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


@dataclass(frozen=True)
class Cryptogram:
    """A parsed key cryptogram: scheme tag (``""`` for none) and its ciphertext (or key block text for R)."""

    scheme: str
    data: bytes
    text: str  # for R: the key block; otherwise the hex

    def __repr__(self) -> str:
        # Cryptograms are not secret, but keep reprs short and uniform.
        return f"Cryptogram(scheme={self.scheme or '-'}, length={len(self.data)})"


def parse_cryptogram(value: str) -> Cryptogram:
    """Split a key field into scheme and ciphertext, checking that the length fits the scheme."""
    if not value:
        raise InvalidInputError("empty key field")
    tag = value[0].upper()
    if tag == "R":
        return Cryptogram("R", b"", value[1:])
    if tag in TDES_SCHEMES:
        body = value[1:]
        if len(body) != 2 * SCHEME_LENGTH[tag]:
            raise KeyLengthError(f"key scheme {tag} needs {2 * SCHEME_LENGTH[tag]} hex digits")
    elif _HEX.match(value):
        tag, body = "", value
        if len(body) not in (16, 32, 48):
            raise KeyLengthError("a key without scheme tag must be 16, 32 or 48 hex digits")
    else:
        raise KeySchemeError(f"unknown key scheme tag {value[0]!r}")
    if not _HEX.match(body):
        raise InvalidInputError("key cryptogram is not hex")
    return Cryptogram(tag, bytes.fromhex(body), body.upper())


def _scheme_kek(kek: bytes, variant: int) -> bytes:
    return kek[:8] + bytes([kek[8] ^ variant]) + kek[9:]


def check_scheme(scheme: str, key_length: int) -> None:
    """Error 26/27 when ``scheme`` cannot hold a key of ``key_length`` bytes."""
    if scheme == "":
        if key_length not in (8, 16, 24):
            raise KeyLengthError("TDES keys are 8, 16 or 24 bytes")
        return
    if scheme not in SCHEME_LENGTH:
        raise KeySchemeError(f"key scheme {scheme!r} cannot hold a DES key")
    if SCHEME_LENGTH[scheme] != key_length:
        raise KeyLengthError(f"key scheme {scheme} holds {SCHEME_LENGTH[scheme]}-byte keys")


def encrypt_key(kek: bytes, key: bytes, scheme: str) -> bytes:
    """Encrypt a clear TDES key under ``kek`` (16 or 24 bytes) in ``scheme``."""
    check_scheme(scheme, len(key))
    variants = SCHEME_VARIANTS.get(scheme)
    if variants is None:
        return tdes_encrypt(kek, key)
    return b"".join(
        tdes_encrypt(_scheme_kek(kek, v), key[8 * i : 8 * i + 8]) for i, v in enumerate(variants)
    )


def decrypt_key(kek: bytes, cryptogram: Cryptogram) -> bytes:
    """Decrypt a parsed TDES cryptogram under ``kek``."""
    data = cryptogram.data
    check_scheme(cryptogram.scheme, len(data))
    variants = SCHEME_VARIANTS.get(cryptogram.scheme)
    if variants is None:
        return tdes_decrypt(kek, data)
    return b"".join(
        tdes_decrypt(_scheme_kek(kek, v), data[8 * i : 8 * i + 8]) for i, v in enumerate(variants)
    )


def format_cryptogram(scheme: str, data: bytes) -> str:
    """Scheme tag + upper-case hex (``Z`` is written for single-length keys only when asked)."""
    return scheme + data.hex().upper()
