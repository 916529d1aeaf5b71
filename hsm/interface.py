"""The one HSM interface the switch uses, and its in-process backend.

:class:`Hsm` is an async protocol with one method per payment-crypto function. Two backends implement it and
give the same answers for the same inputs:

- :class:`SoftwareBackend` wraps a :class:`~hsm.software.SoftwareHsm` in this process.
- :class:`hsm.thales.backend.ThalesBackend` sends payShield host commands through a
  :class:`~hsm.thales.client.ThalesClient` (to a real payShield, or to ``bulkhead hsm serve``).

Keys are always cryptograms in Thales notation (``U`` + 32H, ``T`` + 48H, ``X``/``Y``/``Z``, bare hex, or
``R`` + key block for AES keys and TR-31 blocks), together with their 3-digit key type code; no method takes
or returns a clear key. Errors are :class:`~hsm.errors.HsmError` whose ``code`` is the payShield error code,
whichever backend raised it (the Thales backend raises
:class:`~hsm.thales.errors.CommandFailedError` with the HSM's code, the software backend the matching
subclass). A PIN, CVV, MAC or cryptogram that does not verify is ``False``, not an error.

Conventions shared by both backends:

- ``account`` is the payShield 12-digit account field, or a full 13-19 digit PAN from which it is taken
  (the 12 right-most digits without the check digit). Format 48 (ISO 9564 format 4, AES) also needs ``pan``.
- PIN block formats are the Thales codes: 01 ISO 0, 05 ISO 1, 34 ISO 2, 47 ISO 3, 48 ISO 4.
- ``pin_key_type`` is ``"002"`` for a TPK, ``"001"`` for a ZPK.
- EMV ``data`` is the transaction data as the card MACed it, without padding: each backend applies the CVN's
  padding (the Thales backend before sending KQ/KW, which expect padded data).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, TypeVar, runtime_checkable

import trio

from hsm.errors import InvalidInputError
from hsm.software import Diagnostics, ImportedKey, KeyUnderZmk, PinTranslation, SoftwareHsm

T = TypeVar("T")


class NewKey(NamedTuple):
    """A generated key: under the LMK, its KCV (6H), and under the ZMK/TMK when one was given."""

    under_lmk: str
    kcv: str
    under_zmk: str | None = None


@runtime_checkable
class Hsm(Protocol):
    """Every HSM function the switch needs. See the module docstring for conventions."""

    async def translate_pin_tpk_to_zpk(
        self, tpk: str, zpk: str, pin_block: str, account: str, *, source_format: str = "01",
        destination_format: str = "01", max_pin_length: int = 12, pan: str | None = None,
    ) -> PinTranslation:
        """CA: PIN block from a terminal key to a zone key."""
        ...

    async def translate_pin_zpk_to_zpk(
        self, source_zpk: str, destination_zpk: str, pin_block: str, account: str, *,
        source_format: str = "01", destination_format: str = "01", max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        """CC: PIN block from one zone key to another, optionally changing the format."""
        ...

    async def translate_pin_dukpt_to_zpk(
        self, bdk: str, zpk: str, ksn: str, pin_block: str, account: str, *, source_format: str = "01",
        destination_format: str = "01", pan: str | None = None, ksn_descriptor: str | None = None,
    ) -> PinTranslation:
        """CI / G0: DUKPT PIN block to a zone key. TDES DUKPT (X9.24-1) for a TDES BDK; AES DUKPT
        (X9.24-3, AES-128 PIN working key, ``ksn`` 24H, ``pan`` required) for an AES BDK (``R``).
        ``ksn_descriptor`` defaults to the one matching the KSN's length (``A05`` for 20H)."""
        ...

    async def verify_pin_ibm(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        check_length: int, decimalisation_table: str, validation_data: str, offset: str, *,
        max_pin_length: int = 12, pan: str | None = None,
    ) -> bool:
        """DA (TPK) / EA (ZPK): IBM 3624 offset verification."""
        ...

    async def verify_pin_pvv(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        pvki: int, pvv: str, *, pan: str | None = None,
    ) -> bool:
        """DC (TPK) / EC (ZPK): VISA PVV verification."""
        ...

    async def generate_pvv(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        pvki: int, *, pan: str | None = None,
    ) -> str:
        """FW: VISA PVV of the PIN in a PIN block (issuance, PIN change)."""
        ...

    async def generate_ibm_offset(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        check_length: int, decimalisation_table: str, validation_data: str, *, pan: str | None = None,
    ) -> str:
        """BK: IBM 3624 offset (12H, F-padded) of the PIN in a PIN block."""
        ...

    async def generate_cvv(self, cvk: str, pan: str, expiry: str, service_code: str) -> str:
        """CW: CVV (service code as on the track), CVV2 (``000``) or iCVV (``999``)."""
        ...

    async def verify_cvv(self, cvk: str, pan: str, expiry: str, service_code: str, cvv: str) -> bool:
        """CY: verify a CVV / CVV2 / iCVV."""
        ...

    async def generate_mac(
        self, key_type: str, key: str, data: bytes, *, algorithm: int = 3, padding: int = 1,
        mac_length: int = 8,
    ) -> str:
        """M6: MAC (hex) with a TAK (003) or ZAK (008); ISO 9797-1 algorithm 1, 3 or 5 (CMAC)."""
        ...

    async def verify_mac(
        self, key_type: str, key: str, data: bytes, mac: str, *, algorithm: int = 3, padding: int = 1,
    ) -> bool:
        """M8: verify a MAC of ``len(mac) // 2`` bytes."""
        ...

    async def verify_arqc(
        self, mk_ac: str, cvn: int, pan: str, psn: str, atc: str, data: bytes, arqc: str, *,
        unpredictable_number: str | None = None,
    ) -> bool:
        """KQ (CVN 10, 16, 17) / KW (CVN 18): verify an ARQC, TC or AAC."""
        ...

    async def generate_arpc(
        self, mk_ac: str, cvn: int, pan: str, psn: str, atc: str, arqc: str, *, arc: str | None = None,
        csu: str | None = None, proprietary_data: bytes = b"", unpredictable_number: str | None = None,
    ) -> str:
        """KQ / KW: ARPC (method 1 with ``arc`` for CVN 10/16/17, method 2 with ``csu`` for CVN 18)."""
        ...

    async def generate_key(
        self, key_type: str, scheme: str = "U", *, zmk: str | None = None, zmk_scheme: str = "U",
        zmk_type: str = "000",
    ) -> NewKey:
        """A0: a new key under the LMK, and under ``zmk`` (a ZMK, or a TMK with ``zmk_type="002"``)."""
        ...

    async def import_key(self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U") -> ImportedKey:
        """A6: a key from under a ZMK (variant, X9.17, or ``R`` + TR-31 key block) to under the LMK."""
        ...

    async def export_key(
        self, key_type: str, zmk: str, key: str, scheme: str = "U", *, tr31_version: str = "D",
        usage: str | None = None, mode_of_use: str | None = None, exportability: str = "E",
        key_version: str = "00",
    ) -> KeyUnderZmk:
        """A8: a key from under the LMK to under a ZMK; scheme ``R`` gives ``R`` + a TR-31 key block."""
        ...

    async def key_check_value(self, key_type: str, key: str, *, full: bool = False) -> str:
        """BU: KCV, 6H (16H with ``full``)."""
        ...

    async def diagnostics(self) -> Diagnostics:
        """NC: LMK check value and firmware number."""
        ...

    async def echo(self, data: bytes) -> bytes:
        """B2: the same bytes back (a liveness check)."""
        ...


def default_ksn_descriptor(ksn: str) -> str:
    """The Thales KSN descriptor matching a KSN's length (device ID 5H, no sub-key ID): 20H -> ``A05``."""
    bdk_id = len(ksn) - 10
    if not 1 <= bdk_id <= 15:
        raise InvalidInputError(f"a KSN of {len(ksn)} hex characters has no descriptor")
    return f"{bdk_id:X}05"


class SoftwareBackend:
    """:class:`Hsm` over an in-process :class:`SoftwareHsm`.

    Calls run inline on the trio thread by default: each operation costs tens of microseconds of CPU, less
    than a thread hop, and the GIL would serialise worker threads anyway. ``use_thread=True`` moves each call
    to ``trio.to_thread`` for deployments that prefer a responsive event loop over throughput. Either way each
    call is a checkpoint (cancellable, yields to other tasks).
    """

    def __init__(self, hsm: SoftwareHsm, *, use_thread: bool = False) -> None:
        self.hsm = hsm
        self.use_thread = use_thread

    def __repr__(self) -> str:
        return f"SoftwareBackend({self.hsm!r}, use_thread={self.use_thread})"

    async def _run(self, fn: Callable[[], T]) -> T:
        if self.use_thread:
            return await trio.to_thread.run_sync(fn)
        await trio.lowlevel.checkpoint()
        return fn()

    async def translate_pin_tpk_to_zpk(
        self, tpk: str, zpk: str, pin_block: str, account: str, *, source_format: str = "01",
        destination_format: str = "01", max_pin_length: int = 12, pan: str | None = None,
    ) -> PinTranslation:
        return await self._run(lambda: self.hsm.translate_pin_tpk_to_zpk(
            tpk, zpk, pin_block, source_format, destination_format, account, max_pin_length=max_pin_length,
            pan=pan))

    async def translate_pin_zpk_to_zpk(
        self, source_zpk: str, destination_zpk: str, pin_block: str, account: str, *,
        source_format: str = "01", destination_format: str = "01", max_pin_length: int = 12,
        pan: str | None = None,
    ) -> PinTranslation:
        return await self._run(lambda: self.hsm.translate_pin_zpk_to_zpk(
            source_zpk, destination_zpk, pin_block, source_format, destination_format, account,
            max_pin_length=max_pin_length, pan=pan))

    async def translate_pin_dukpt_to_zpk(
        self, bdk: str, zpk: str, ksn: str, pin_block: str, account: str, *, source_format: str = "01",
        destination_format: str = "01", pan: str | None = None, ksn_descriptor: str | None = None,
    ) -> PinTranslation:
        if bdk.startswith("R"):
            if pan is None:
                raise InvalidInputError("AES DUKPT needs the PAN")
            aes_pan = pan
            return await self._run(lambda: self.hsm.translate_pin_aes_dukpt(
                bdk, zpk, ksn, pin_block, aes_pan, source_format=source_format,
                destination_format=destination_format, account=account))
        descriptor = ksn_descriptor or default_ksn_descriptor(ksn)
        return await self._run(lambda: self.hsm.translate_pin_dukpt_to_zpk(
            bdk, zpk, descriptor, ksn, pin_block, destination_format, account, source_format=source_format,
            pan=pan))

    async def verify_pin_ibm(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        check_length: int, decimalisation_table: str, validation_data: str, offset: str, *,
        max_pin_length: int = 12, pan: str | None = None,
    ) -> bool:
        return await self._run(lambda: self.hsm.verify_pin_ibm(
            pin_key_type, pin_key, pvk, pin_block, pin_format, account, check_length, decimalisation_table,
            validation_data, offset, max_pin_length=max_pin_length, pan=pan))

    async def verify_pin_pvv(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        pvki: int, pvv: str, *, pan: str | None = None,
    ) -> bool:
        return await self._run(lambda: self.hsm.verify_pin_pvv(
            pin_key_type, pin_key, pvk, pin_block, pin_format, account, pvki, pvv, pan=pan))

    async def generate_pvv(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        pvki: int, *, pan: str | None = None,
    ) -> str:
        return await self._run(lambda: self.hsm.generate_pvv(
            pin_key_type, pin_key, pvk, pin_block, pin_format, account, pvki, pan=pan))

    async def generate_ibm_offset(
        self, pin_key_type: str, pin_key: str, pvk: str, pin_block: str, pin_format: str, account: str,
        check_length: int, decimalisation_table: str, validation_data: str, *, pan: str | None = None,
    ) -> str:
        return await self._run(lambda: self.hsm.generate_ibm_offset(
            pin_key_type, pin_key, pvk, pin_block, pin_format, account, check_length, decimalisation_table,
            validation_data, pan=pan))

    async def generate_cvv(self, cvk: str, pan: str, expiry: str, service_code: str) -> str:
        return await self._run(lambda: self.hsm.generate_cvv(cvk, pan, expiry, service_code))

    async def verify_cvv(self, cvk: str, pan: str, expiry: str, service_code: str, cvv: str) -> bool:
        return await self._run(lambda: self.hsm.verify_cvv(cvk, pan, expiry, service_code, cvv))

    async def generate_mac(
        self, key_type: str, key: str, data: bytes, *, algorithm: int = 3, padding: int = 1,
        mac_length: int = 8,
    ) -> str:
        return await self._run(lambda: self.hsm.generate_mac(
            key_type, key, data, algorithm=algorithm, padding=padding, mac_length=mac_length))

    async def verify_mac(
        self, key_type: str, key: str, data: bytes, mac: str, *, algorithm: int = 3, padding: int = 1,
    ) -> bool:
        return await self._run(lambda: self.hsm.verify_mac(
            key_type, key, data, mac, algorithm=algorithm, padding=padding))

    async def verify_arqc(
        self, mk_ac: str, cvn: int, pan: str, psn: str, atc: str, data: bytes, arqc: str, *,
        unpredictable_number: str | None = None,
    ) -> bool:
        return await self._run(lambda: self.hsm.verify_arqc(
            mk_ac, cvn, pan, psn, atc, data, arqc, unpredictable_number=unpredictable_number))

    async def generate_arpc(
        self, mk_ac: str, cvn: int, pan: str, psn: str, atc: str, arqc: str, *, arc: str | None = None,
        csu: str | None = None, proprietary_data: bytes = b"", unpredictable_number: str | None = None,
    ) -> str:
        return await self._run(lambda: self.hsm.generate_arpc(
            mk_ac, cvn, pan, psn, atc, arqc, arc=arc, csu=csu, proprietary_data=proprietary_data,
            unpredictable_number=unpredictable_number))

    async def generate_key(
        self, key_type: str, scheme: str = "U", *, zmk: str | None = None, zmk_scheme: str = "U",
        zmk_type: str = "000",
    ) -> NewKey:
        if zmk is None:
            made = await self._run(lambda: self.hsm.generate_key(key_type, scheme))
            return NewKey(made.under_lmk, made.kcv)
        kek = zmk
        both = await self._run(lambda: self.hsm.generate_key_exported(
            key_type, kek, scheme, zmk_scheme, zmk_type=zmk_type))
        return NewKey(both.under_lmk, both.kcv, both.under_zmk)

    async def import_key(self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U") -> ImportedKey:
        if key_under_zmk.startswith("R"):
            done = await self._run(lambda: self.hsm.tr31_import(
                zmk, key_under_zmk[1:], scheme, key_type=key_type))
            return ImportedKey(done.under_lmk, done.kcv, False)
        return await self._run(lambda: self.hsm.import_key(key_type, zmk, key_under_zmk, scheme))

    async def export_key(
        self, key_type: str, zmk: str, key: str, scheme: str = "U", *, tr31_version: str = "D",
        usage: str | None = None, mode_of_use: str | None = None, exportability: str = "E",
        key_version: str = "00",
    ) -> KeyUnderZmk:
        if scheme == "R":
            block = await self._run(lambda: self.hsm.tr31_export(
                key_type, key, zmk, version=tr31_version, usage=usage, mode_of_use=mode_of_use,
                exportability=exportability, key_version=key_version))
            kcv = await self._run(lambda: self.hsm.key_check_value(key_type, key))
            return KeyUnderZmk("R" + block, kcv)
        return await self._run(lambda: self.hsm.export_key(key_type, zmk, key, scheme))

    async def key_check_value(self, key_type: str, key: str, *, full: bool = False) -> str:
        return await self._run(lambda: self.hsm.key_check_value(key_type, key, full=full))

    async def diagnostics(self) -> Diagnostics:
        return await self._run(self.hsm.diagnostics)

    async def echo(self, data: bytes) -> bytes:
        await trio.lowlevel.checkpoint()
        return data


__all__ = ["Diagnostics", "Hsm", "ImportedKey", "KeyUnderZmk", "NewKey", "PinTranslation", "SoftwareBackend",
           "default_ksn_descriptor"]
