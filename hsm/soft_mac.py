"""MAC functions of the software HSM: M6, M8 (and the legacy MA, MC through the same computation)."""

from __future__ import annotations

import hmac

from hsm.errors import InvalidInputError, KeyTypeError
from hsm.mac import CMAC, mac_chain, mac_final
from hsm.soft_base import SoftwareCore, hex_field

_MAC_KEY_TYPES = frozenset({"003", "008"})


class MacFunctions(SoftwareCore):
    """MACs with a TAK or ZAK: ISO 9797-1 algorithms 1 and 3, CMAC."""

    def generate_mac(
        self,
        key_type: str,
        key: str,
        data: bytes,
        *,
        algorithm: int = 3,
        padding: int = 1,
        mac_length: int = 8,
        iv: str | None = None,
        final: bool = True,
    ) -> str:
        """M6 / MA: MAC ``data`` with a TAK (``"003"``) or ZAK (``"008"``).

        ``algorithm``: 1 ISO 9797-1 algorithm 1 (CBC-MAC; DES or TDES), 3 algorithm 3 (retail MAC, X9.19),
        5 CMAC (ISO 9797-1 algorithm 5; AES key, or TDES). ``padding`` 0 none, 1-3 ISO 9797-1 methods (ignored
        by CMAC). ``mac_length`` in bytes (4..16). For multi-part messages (M6 mode flags 1-3) pass
        ``final=False`` to get the 16H/32H chaining value to send back as ``iv``; padding applies to the final
        part only.
        """
        if key_type not in _MAC_KEY_TYPES:
            raise KeyTypeError(f"key type {key_type} cannot generate MACs", "28")
        mac_key = self._key(key_type, key)
        chain = hex_field("IV", iv, 16 if mac_key.aes and algorithm == CMAC else 8) if iv is not None else None
        if not final:
            return mac_chain(mac_key.value, data, algorithm, aes=mac_key.aes, iv=chain).hex().upper()
        full = mac_final(mac_key.value, data, algorithm, padding, aes=mac_key.aes, iv=chain)
        if not 4 <= mac_length <= len(full):
            raise InvalidInputError(f"MAC length must be 4 to {len(full)} bytes")
        return full[:mac_length].hex().upper()

    def verify_mac(
        self,
        key_type: str,
        key: str,
        data: bytes,
        mac: str,
        *,
        algorithm: int = 3,
        padding: int = 1,
        iv: str | None = None,
    ) -> bool:
        """M8 / MC: verify a MAC (its length, len(mac) // 2 bytes, is the length compared)."""
        if len(mac) % 2 or not 8 <= len(mac) <= 32:
            raise InvalidInputError("MAC must be 8 to 32 hex digits")
        expected = self.generate_mac(
            key_type, key, data, algorithm=algorithm, padding=padding, mac_length=len(mac) // 2, iv=iv
        )
        return hmac.compare_digest(expected, mac.upper())

