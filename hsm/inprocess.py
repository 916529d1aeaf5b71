"""The in-process backend of :class:`hsm.api.Hsm`: the software HSM in this process, driven from trio."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from hsm.api import (
    Diagnostics,
    ImportedKey,
    KeyUnderZmk,
    NewKey,
    PinKey,
    PinTranslation,
    check_dual_control,
    default_ksn_descriptor,
)
from hsm.errors import InvalidInputError
from hsm.software import SoftwareHsm

T = TypeVar("T")


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

    async def translate_pin_to_lmk(
        self, pin_key_type: str, pin_key: str, pin_block: str, pin_format: str, account: str,
    ) -> str:
        return await self._run(lambda: self.hsm.translate_pin_to_lmk(
            pin_key_type, pin_key, pin_block, pin_format, account))

    async def generate_pvv_from_lmk_pin(self, pvk: str, pin_under_lmk: str, account: str, pvki: int) -> str:
        return await self._run(lambda: self.hsm.generate_pvv_from_lmk_pin(pvk, pin_under_lmk, account, pvki))

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

    async def import_key(
        self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U", *, zmk_type: str = "000",
    ) -> ImportedKey:
        if key_under_zmk.startswith("R"):
            done = await self._run(lambda: self.hsm.tr31_import(
                zmk, key_under_zmk[1:], scheme, kbpk_type=zmk_type, key_type=key_type))
            return ImportedKey(done.under_lmk, done.kcv, False)
        return await self._run(lambda: self.hsm.import_key(key_type, zmk, key_under_zmk, scheme, zmk_type=zmk_type))

    async def form_key_from_components(
        self, key_type: str, components: Sequence[str], scheme: str = "U",
    ) -> NewKey:
        """Clear components (hex), or components under the LMK (scheme-tagged cryptograms, as A4 takes them):
        all of one kind. See :meth:`hsm.api.Hsm.form_key_from_components`."""
        parts = list(components)
        check_dual_control(parts)
        if all(_is_clear(c) for c in parts):
            made = await self._run(lambda: self.hsm.form_key_from_components(key_type, parts, scheme))
        elif not any(_is_clear(c) for c in parts):
            made = await self._run(lambda: self.hsm.form_key_from_encrypted_components(key_type, parts, scheme))
        else:
            raise InvalidInputError("components are all clear or all under the LMK")
        return NewKey(made.under_lmk, made.kcv)

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

    @property
    def inline(self) -> bool:
        """Whether the node may call :meth:`translate_pin_now` on its event loop (``use_thread=False``)."""
        return not self.use_thread

    def translate_pin_now(self, source: PinKey, destination: PinKey, pin_block: str,
                          account: str) -> PinTranslation:
        """:func:`hsm.api.translate_pin` without awaiting: CA from a TPK, CC from a ZPK, CI/G0 from a DUKPT BDK, to
        ISO format 0."""
        if source.type == "TPK":
            return self.hsm.translate_pin_tpk_to_zpk(source.key, destination.key, pin_block, source.format, "01",
                                                     account)
        if source.type == "BDK":
            if source.ksn is None:
                raise InvalidInputError("a DUKPT PIN block needs its KSN")
            return self.hsm.translate_pin_dukpt_to_zpk(source.key, destination.key, default_ksn_descriptor(source.ksn),
                                                       source.ksn, pin_block, "01", account,
                                                       source_format=source.format)
        return self.hsm.translate_pin_zpk_to_zpk(source.key, destination.key, pin_block, source.format, "01",
                                                 account)

    async def echo(self, data: bytes) -> bytes:
        await trio.lowlevel.checkpoint()
        return data





def _is_clear(component: str) -> bool:
    """A clear component is bare hex; a component under the LMK starts with its key scheme letter."""
    return bool(component) and all(c in "0123456789ABCDEFabcdef" for c in component)
