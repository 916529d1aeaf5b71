"""ANSI X9 TR-31 key blocks (TR-31:2018; ANSI X9.143), versions A, B, C and D.

A key block is ``header || hex(encrypted key data) || hex(MAC)``. The 16-character header (plus optional
blocks) is authenticated but not encrypted. Key data is ``bit length (2 bytes) || key || random padding``;
the key is padded to the algorithm's longest key so the block does not reveal the key length.

- Versions A and C (key variant binding, TDES): KBEK = KBPK xor 45.., KBMK = KBPK xor 4D..; key data is
  TDES-CBC encrypted with the first 8 header bytes as IV; MAC = 4-byte TDES CBC-MAC over header || ciphertext.
- Version B (key derivation binding, TDES) and D (AES): KBEK and KBMK are derived from the KBPK with CMAC
  over 8-byte derivation data (TR-31:2018 §5.3.2.1 / §5.3.2.3); the MAC is CMAC over header || clear key
  data (8 bytes for B, 16 for D) and doubles as the CBC IV.
"""

from __future__ import annotations

import hmac
import os
import re
from dataclasses import dataclass

from hsm.cipher import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    tdes_cbc_decrypt,
    tdes_cbc_encrypt,
    xor,
)
from hsm.errors import KeyBlockError, KeyBlockMacError, KeyLengthError
from hsm.mac import ALG1, cmac, mac_final, tdes_cmac

HEADER_LEN = 16
_MAX_KEY = {"T": 24, "D": 8, "A": 32}
_HEX = re.compile(r"^[0-9A-F]*$")


@dataclass(frozen=True)
class Header:
    """The fixed TR-31 header fields plus optional blocks (as raw text)."""

    version: str
    usage: str
    algorithm: str
    mode_of_use: str
    key_version: str = "00"
    exportability: str = "E"
    optional_blocks: tuple[tuple[str, str], ...] = ()

    def encode(self, total_length: int) -> str:
        """Header text for a block of ``total_length`` characters."""
        blocks = "".join(f"{bid}{len(data) + 4:02X}{data}" for bid, data in self.optional_blocks)
        return (
            f"{self.version}{total_length:04d}{self.usage}{self.algorithm}{self.mode_of_use}"
            f"{self.key_version}{self.exportability}{len(self.optional_blocks):02d}00{blocks}"
        )

    def encoded_length(self) -> int:
        return HEADER_LEN + sum(len(data) + 4 for _, data in self.optional_blocks)


def parse_header(block: str) -> tuple[Header, int]:
    """Parse the header of a key block; returns it and the offset where the key data starts."""
    if len(block) < HEADER_LEN or not block.isascii():
        raise KeyBlockError("key block shorter than its header")
    if not block[1:5].isdigit() or int(block[1:5]) != len(block):
        raise KeyBlockError("key block length field does not match the block")
    if not block[12:14].isdigit():
        raise KeyBlockError("bad optional block count")
    pos = HEADER_LEN
    blocks: list[tuple[str, str]] = []
    for _ in range(int(block[12:14])):
        try:
            length = int(block[pos + 2 : pos + 4], 16)
        except ValueError:
            raise KeyBlockError("bad optional block length") from None
        if length < 4 or pos + length > len(block):
            raise KeyBlockError("optional block overruns the key block")
        blocks.append((block[pos : pos + 2], block[pos + 4 : pos + length]))
        pos += length
    header = Header(
        version=block[0],
        usage=block[5:7],
        algorithm=block[7],
        mode_of_use=block[8],
        key_version=block[9:11],
        exportability=block[11],
        optional_blocks=tuple(blocks),
    )
    return header, pos


def _derivation_input(counter: int, usage: int, kbpk: bytes, aes: bool) -> bytes:
    if aes:
        algorithm, bits = {16: (2, 128), 24: (3, 192), 32: (4, 256)}[len(kbpk)]
    else:
        algorithm, bits = {16: (0, 128), 24: (1, 192)}[len(kbpk)]
    return bytes([counter]) + usage.to_bytes(2, "big") + b"\x00" + algorithm.to_bytes(2, "big") + (
        bits.to_bytes(2, "big")
    )


def _derive(kbpk: bytes, aes: bool) -> tuple[bytes, bytes]:
    """KBEK, KBMK for versions B (TDES) and D (AES): CMAC counter-mode KDF (NIST SP 800-108)."""
    prf = cmac if aes else tdes_cmac
    step = 16 if aes else 8
    rounds = -(-len(kbpk) // step)
    kbek = b"".join(prf(kbpk, _derivation_input(i, 0, kbpk, aes)) for i in range(1, rounds + 1))
    kbmk = b"".join(prf(kbpk, _derivation_input(i, 1, kbpk, aes)) for i in range(1, rounds + 1))
    return kbek[: len(kbpk)], kbmk[: len(kbpk)]


def _check_kbpk(version: str, kbpk: bytes) -> None:
    allowed = {"A": (8, 16, 24), "B": (16, 24), "C": (8, 16, 24), "D": (16, 24, 32)}.get(version)
    if allowed is None:
        raise KeyBlockError(f"unsupported key block version {version!r}", "BE")
    if len(kbpk) not in allowed:
        raise KeyLengthError(f"KBPK length does not suit key block version {version}")


def wrap(kbpk: bytes, header: Header, key: bytes) -> str:
    """Build a key block carrying ``key`` under ``kbpk``."""
    _check_kbpk(header.version, kbpk)
    block = 16 if header.version == "D" else 8
    masked = max(_MAX_KEY.get(header.algorithm, len(key)), len(key))
    body_len = 2 + masked
    body_len += -body_len % block
    clear = (len(key) * 8).to_bytes(2, "big") + key + os.urandom(body_len - 2 - len(key))
    mac_len = {"A": 4, "B": 8, "C": 4, "D": 16}[header.version]
    total = header.encoded_length() + 2 * body_len + 2 * mac_len
    text = header.encode(total)
    if header.version in "AC":
        kbek, kbmk = xor(kbpk, b"\x45" * len(kbpk)), xor(kbpk, b"\x4d" * len(kbpk))
        enc = tdes_cbc_encrypt(kbek, clear, text.encode()[:8])
        mac = mac_final(kbmk, text.encode() + enc, ALG1, 0)[:4]
    else:
        kbek, kbmk = _derive(kbpk, header.version == "D")
        if header.version == "D":
            mac = cmac(kbmk, text.encode() + clear)
            enc = aes_cbc_encrypt(kbek, clear, mac)
        else:
            mac = tdes_cmac(kbmk, text.encode() + clear)
            enc = tdes_cbc_encrypt(kbek, clear, mac)
    return text + enc.hex().upper() + mac.hex().upper()


def unwrap(kbpk: bytes, block: str) -> tuple[Header, bytes]:
    """Verify and decrypt a key block; returns its header and the clear key.

    MACs are compared in constant time (``hmac.compare_digest``) so that timing tells nothing about how much of
    a forged MAC was right.
    """
    header, start = parse_header(block)
    _check_kbpk(header.version, kbpk)
    mac_len = {"A": 4, "B": 8, "C": 4, "D": 16}[header.version]
    size = 16 if header.version == "D" else 8
    payload = block[start:]
    if not _HEX.match(payload) or len(payload) < 2 * (mac_len + size) or (len(payload) - 2 * mac_len) % (
        2 * size
    ):
        raise KeyBlockError("key block payload is malformed")
    enc = bytes.fromhex(payload[: -2 * mac_len])
    received = bytes.fromhex(payload[-2 * mac_len :])
    header_bytes = block[:start].encode()
    if header.version in "AC":
        kbek, kbmk = xor(kbpk, b"\x45" * len(kbpk)), xor(kbpk, b"\x4d" * len(kbpk))
        if not hmac.compare_digest(mac_final(kbmk, header_bytes + enc, ALG1, 0)[:4], received):
            raise KeyBlockMacError("key block MAC does not verify")
        clear = tdes_cbc_decrypt(kbek, enc, header_bytes[:8])
    else:
        kbek, kbmk = _derive(kbpk, header.version == "D")
        if header.version == "D":
            clear = aes_cbc_decrypt(kbek, enc, received)
            ok = hmac.compare_digest(cmac(kbmk, header_bytes + clear), received)
        else:
            clear = tdes_cbc_decrypt(kbek, enc, received)
            ok = hmac.compare_digest(tdes_cmac(kbmk, header_bytes + clear), received)
        if not ok:
            raise KeyBlockMacError("key block MAC does not verify")
    bits = int.from_bytes(clear[:2], "big")
    if bits % 8 or 2 + bits // 8 > len(clear) or bits == 0:
        raise KeyBlockError("key length inside the key block is invalid")
    return header, clear[2 : 2 + bits // 8]
