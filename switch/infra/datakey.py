"""The node's data key: the keyed hash of PANs in the journal, and the encryption of store-and-forward payloads.

A reversal in the SAF queue must carry the PAN to the issuer, but a clear PAN must never be stored, so each
payload is sealed with AES-256-GCM. Two independent keys are derived from one 32-byte master with HKDF-SHA256
(RFC 5869) so the hash key and the encryption key never coincide.

The master lives in a file that only the node's user may read (created with mode 0600 on first start, refused
if group or others can read it). A production deployment keeps it under the HSM's LMK instead; that is the
job of the processors' data-key work (issue 4), and this file is the interface it will replace.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from switch.model.errors import BulkheadError, ConfigError
from switch.model.masking import PanHasher

_NONCE = 12


class SealError(BulkheadError):
    """A sealed payload failed authentication: wrong key or tampered data."""


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class DataKeys:
    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the data master key is 32 bytes")
        self._pan_hash = PanHasher(_derive(master, b"bulkhead/pan-hash/v1"))
        self._aead = AESGCM(_derive(master, b"bulkhead/saf-payload/v1"))

    def __repr__(self) -> str:
        return "<DataKeys (hidden)>"

    def pan_hash(self, pan: str) -> str:
        """HMAC-SHA256 of the PAN under the derived hash key (switch.model.masking.pan_hash), hex."""
        return self._pan_hash(pan)

    def seal(self, plaintext: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context)
        except (InvalidTag, ValueError):
            raise SealError("sealed payload failed authentication") from None


def load_or_create(path: Path) -> DataKeys:
    """Read the master key file, creating it (mode 0600) when it does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(32))
        finally:
            os.close(fd)
    return load(path)


def load(path: Path) -> DataKeys:
    """Read the master key file the node created; a missing, unreadable or open-to-others file is a ConfigError
    (a reader such as ``bulkhead journal list --pan`` must not create a key no row was ever hashed with)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(str(path), "hash_key_file", "no data key: the node has not run with this file yet") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(str(path), "hash_key_file",
                          f"readable by group or others (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
    try:
        master = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "hash_key_file", f"cannot read: {exc.strerror or exc}") from None
    if len(master) != 32:
        raise ConfigError(str(path), "hash_key_file", "must hold exactly 32 bytes")
    return DataKeys(master)
