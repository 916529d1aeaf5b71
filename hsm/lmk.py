"""The Local Master Key (variant LMK): loading, key-type table, and keys encrypted under the LMK.

A variant LMK is 20 double-length TDES keys, the "pairs" 00-01, 02-03, ... 38-39. A key of a given type is
encrypted under one pair, with a key-type variant XORed into the pair's first byte, and (schemes U and T) a
key-scheme variant XORed into the first byte of the pair's right half, per 8-byte part of the key
(payShield host command manual, "Variant LMK"; see :mod:`hsm.variant` for the arithmetic).

The LMK file is text: ``#`` comments, then one line per pair, optionally prefixed with its number
(``04-05``), 32 hex digits with optional spaces. It must be a regular file (not a symbolic link, FIFO or
device) owned by the user the node runs as, readable by its owner only: anything else is refused with
:class:`~hsm.errors.LmkFileError` naming the file and the reason (and the mode, for permission refusals).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hsm.cipher import aes_encrypt, force_odd_parity, tdes_encrypt
from hsm.errors import KeyTypeError, LmkError, LmkFileError

PAIR_COUNT = 20

TEST_LMK_RESOURCE = "thales-test-lmk.txt"
"""The public Thales test LMK shipped in ``hsm/data`` for demos and tests only."""


@dataclass(frozen=True)
class KeyType:
    """One row of the payShield key-type table (variant LMK, non-PCI table)."""

    code: str
    name: str
    pair: int  # the lower number of the LMK pair, e.g. 14 for 14-15
    variant: int  # key-type variant 0..9


# Key-type code -> LMK pair and variant (payShield 9000 host command manual, key type table, as quoted in
# hsm.md §3). TPK, TMK and PVK share 002; CVK is 402 (pair 14-15, variant 4).
KEY_TYPES: dict[str, KeyType] = {
    kt.code: kt
    for kt in (
        KeyType("000", "ZMK", 4, 0),
        KeyType("001", "ZPK", 6, 0),
        KeyType("002", "TPK/TMK/PVK", 14, 0),
        KeyType("402", "CVK", 14, 4),
        KeyType("003", "TAK", 16, 0),
        KeyType("008", "ZAK", 26, 0),
        KeyType("009", "BDK", 28, 0),
        KeyType("109", "MK-AC", 28, 1),
    )
}

# Key-type variants 1..9, XORed into byte 0 of the LMK pair (payShield manual, "LMK variants").
TYPE_VARIANTS = bytes.fromhex("A65A6ADE2B50749CFA")

_PAIR_LINE = re.compile(r"^(?:(\d\d)\s*-\s*(\d\d)\s*[:=]?)?\s*([0-9A-Fa-f\s]+)$")


def key_type(code: str) -> KeyType:
    """The table row for a key-type code; error 04 if unknown."""
    try:
        return KEY_TYPES[code.upper()]
    except KeyError:
        raise KeyTypeError(f"unknown key type code {code!r}") from None


class Lmk:
    """A loaded variant LMK. Its repr shows only the check value."""

    __slots__ = ("_aes_storage_key", "_aes_type_keys", "_pairs", "_type_keys")

    def __init__(self, pairs: list[bytes]) -> None:
        if len(pairs) != PAIR_COUNT or any(len(p) != 16 for p in pairs):
            raise LmkError(f"a variant LMK is {PAIR_COUNT} double-length keys")
        self._pairs = tuple(pairs)
        self._type_keys: dict[str, bytes] = {}
        self._aes_type_keys: dict[str, bytes] = {}
        # Bulkhead extension for AES keys (a real payShield needs a key-block LMK for those): an AES-256
        # storage key made by encrypting fixed blocks under LMK pairs 38-39 and 36-37, so it changes with the
        # LMK and is never stored.
        seed = tdes_encrypt(self._pairs[19], b"BULKHEAD" + b"AESKBPK1")
        seed += tdes_encrypt(self._pairs[18], b"BULKHEAD" + b"AESKBPK2")
        self._aes_storage_key = seed

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Lmk:
        """Read an LMK file, refusing it unless it is a regular file of this user that only this user can use.

        See :func:`read_owner_only` for the checks; errors name the file and the reason, never its content.
        """
        name = os.fspath(path)
        return cls.parse(read_owner_only(name), source=name)

    @classmethod
    def parse(cls, text: str, *, source: str = "<text>") -> Lmk:
        """Parse LMK file text (see module docstring). Errors name the line, never its content."""
        pairs: list[bytes] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = _PAIR_LINE.match(line)
            digits = re.sub(r"\s", "", match.group(3)) if match else ""
            if not match or len(digits) != 32:
                raise LmkFileError(source, f"line {lineno}: expected an LMK pair of 32 hex digits")
            if match.group(1) is not None:
                lo, hi = int(match.group(1)), int(match.group(2))
                if lo != 2 * len(pairs) or hi != lo + 1:
                    raise LmkFileError(source, f"line {lineno}: pairs must be listed in order 00-01 .. 38-39")
            pairs.append(bytes.fromhex(digits))
        if len(pairs) != PAIR_COUNT:
            raise LmkFileError(source, f"found {len(pairs)} LMK pairs, expected {PAIR_COUNT}")
        return cls(pairs)

    @classmethod
    def thales_test(cls) -> Lmk:
        """The public Thales test LMK (shipped in ``hsm/data``): for tests and demos only, never production.

        Loaded from package data without the permission check, since it is public knowledge.
        """
        text = resources.files("hsm.data").joinpath(TEST_LMK_RESOURCE).read_text(encoding="ascii")
        return cls.parse(text, source=TEST_LMK_RESOURCE)

    # ------------------------------------------------------------------------------------------ keys

    def type_key(self, code: str) -> bytes:
        """The LMK pair for a key type with the key-type variant applied (clear; stays inside the HSM)."""
        cached = self._type_keys.get(code)
        if cached is not None:
            return cached
        kt = key_type(code)
        pair = self._pairs[kt.pair // 2]
        if kt.variant:
            pair = bytes([pair[0] ^ TYPE_VARIANTS[kt.variant - 1]]) + pair[1:]
        self._type_keys[code] = pair
        return pair

    def pin_pair(self) -> bytes:
        """LMK pair 02-03, under which payShield commands encrypt PINs (see :mod:`hsm.pinlmk`); stays inside."""
        return self._pairs[1]

    def is_thales_test(self) -> bool:
        """Whether this is the public Thales test LMK (nothing under it is secret)."""
        return self.check_value() == Lmk.thales_test().check_value()

    @property
    def aes_storage_key(self) -> bytes:
        """AES-256 key protecting Bulkhead's ``R``-scheme AES keys (see class comment)."""
        return self._aes_storage_key

    def aes_type_key(self, code: str) -> bytes:
        """AES-256 key block protection key for AES keys of one key type (Bulkhead ``R`` scheme).

        One KBPK per key type, so that an AES key stored for one type does not verify as another, just as a
        variant cryptogram decrypted with the wrong type fails its parity check.
        """
        cached = self._aes_type_keys.get(code)
        if cached is None:
            key_type(code)
            label = f"BULKHEAD-AES-KT-{code.upper()}".encode().ljust(32, b"\x00")
            cached = self._aes_type_keys[code] = aes_encrypt(self._aes_storage_key, label)
        return cached

    def check_value(self) -> str:
        """16H LMK check value: TDES encryption of zeros under pair 00-01 (parity-adjusted).

        Thales does not publish how the payShield derives the value its console shows, so this is Bulkhead's
        own definition; hosts only compare it between nodes loaded with the same LMK.
        """
        return tdes_encrypt(force_odd_parity(self._pairs[0]), bytes(8)).hex().upper()

    def aes_check(self) -> str:
        """Check value of the AES storage key (6H), for operators comparing nodes."""
        return aes_encrypt(self._aes_storage_key, bytes(16))[:3].hex().upper()

    def __repr__(self) -> str:
        return f"Lmk(check_value={self.check_value()[:6]})"


LMK_FILE_MAX = 64 * 1024
"""An LMK file is about 1 KiB; anything much larger is not one (and is not read into memory)."""


def read_owner_only(name: str) -> str:
    """The text of the LMK file ``name``, read from one descriptor after checking that descriptor.

    Checking the path and then reopening it would let the file be swapped in between (a symlink flipped to a
    world-readable copy), so the file is opened once with ``O_NOFOLLOW`` (a symbolic link is refused) and
    ``O_NONBLOCK`` (a FIFO cannot block the open), and the open descriptor is checked with ``fstat``: a
    regular file, owned by the effective user, with no group or other permission bits. The text is then read
    from that same descriptor.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LmkFileError(name, "is a symbolic link; give the path of the file itself") from None
        raise LmkFileError(name, f"cannot open: {exc.strerror}") from None
    try:
        _check_descriptor(name, fd)
        data = _read_limited(name, fd)
    except OSError as exc:
        raise LmkFileError(name, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise LmkFileError(name, "not an ASCII text file") from None


def _check_descriptor(name: str, fd: int) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise LmkFileError(name, f"is not a regular file ({_file_kind(st.st_mode)})")
    euid = os.geteuid()
    if st.st_uid != euid:
        raise LmkFileError(name, f"is owned by uid {st.st_uid}, not by this process's user (uid {euid})")
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LmkFileError(name, "must be readable by its owner only (chmod 600)", mode)


def _read_limited(name: str, fd: int) -> bytes:
    os.set_blocking(fd, True)
    data = b""
    while chunk := os.read(fd, 8192):
        data += chunk
        if len(data) > LMK_FILE_MAX:
            raise LmkFileError(name, f"is larger than {LMK_FILE_MAX} bytes: not an LMK file")
    return data


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "unknown file type"


def write_test_lmk(path: str | os.PathLike[str]) -> Path:
    """Write the public Thales test LMK to ``path`` with mode 0600 (for demos and tests only)."""
    text = resources.files("hsm.data").joinpath(TEST_LMK_RESOURCE).read_text(encoding="ascii")
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
    os.chmod(target, 0o600)
    return target
