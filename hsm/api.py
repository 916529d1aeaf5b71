"""The one HSM interface every package uses (no trio here: the sans-I/O processors import it).

:class:`Hsm` is an async protocol with one method per payment-crypto function. Two backends implement it and
give the same answers for the same inputs:

- :class:`hsm.inprocess.SoftwareBackend` wraps a :class:`~hsm.software.SoftwareHsm` in this process.
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
- PIN block formats are the Thales codes: 01 ISO 0, 05 ISO 1, 34 ISO 2, 47 ISO 3, 48 ISO 4, and the legacy ATM
  formats 02 Docutel, 03 Diebold / IBM 3624, 04 PLUS (which needs the full PAN as ``account`` or ``pan``).
- A PIN under the LMK (JC, JE, DG) is L+1 digits, bound to the account (:mod:`hsm.pinlmk`).
- ``pin_key_type`` is ``"002"`` for a TPK, ``"001"`` for a ZPK.
- EMV ``data`` is the transaction data as the card MACed it, without padding: each backend applies the CVN's
  padding (the Thales backend before sending KQ/KW, which expect padded data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from hsm.errors import InvalidInputError, KeyComponentError


@dataclass(frozen=True)
class PinKey:
    """The key PIN blocks travel under: a TPK (terminals) or a ZPK (zone), as an LMK cryptogram; or, for a DUKPT
    terminal, the base derivation key ("BDK") with the request's key serial number (``ksn``). ``format`` is the
    PIN block's payShield format code at the source (01: ISO 9564 format 0; older ATM fleets send 03 and others)."""

    type: str  # "TPK" | "ZPK" | "BDK"
    key: str
    ksn: str | None = None
    format: str = "01"

    def __repr__(self) -> str:
        return f"PinKey({self.type}, {self.key[:5]}...)"  # a cryptogram, but no need to print it whole


class ImportedKey(NamedTuple):
    """A6 result. ``parity_forced`` means the key arrived with even parity and was corrected (advisory 01)."""

    under_lmk: str
    kcv: str
    parity_forced: bool


class KeyUnderZmk(NamedTuple):
    """A8 result."""

    under_zmk: str
    kcv: str


class PinTranslation(NamedTuple):
    """CA / CC / CI / G0 result: PIN length, the destination PIN block (hex) and its format code.

    Its repr (and so its str) shows the PIN block's length only: an encrypted PIN block is still PIN data
    (PCI PIN) and must not reach logs through a formatted result.
    """

    pin_length: int
    pin_block: str
    pin_format: str

    def __repr__(self) -> str:
        return (f"PinTranslation(pin_length={self.pin_length}, pin_block=<{len(self.pin_block)}>, "
                f"pin_format={self.pin_format!r})")


class Diagnostics(NamedTuple):
    """NC result."""

    lmk_check_value: str
    firmware: str


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

    async def translate_pin_to_lmk(
        self, pin_key_type: str, pin_key: str, pin_block: str, pin_format: str, account: str,
    ) -> str:
        """JC (TPK, ``pin_key_type="002"``) / JE (ZPK, ``"001"``): the PIN of a PIN block, encrypted under the
        LMK (LMK pair 02-03, bound to ``account``; L+1 digits, see :mod:`hsm.pinlmk`), e.g. for DG."""
        ...

    async def generate_pvv_from_lmk_pin(self, pvk: str, pin_under_lmk: str, account: str, pvki: int) -> str:
        """DG: VISA PVV (4N) of a PIN under the LMK (from :meth:`translate_pin_to_lmk` for the same account);
        ``pvk`` the PVK pair (``"002"``, double length)."""
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

    async def import_key(
        self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U", *, zmk_type: str = "000",
    ) -> ImportedKey:
        """A6: a key from under a ZMK (variant, X9.17, or ``R`` + TR-31 key block) to under the LMK. With
        ``zmk_type="002"`` the key-encrypting key is a TMK (a terminal installing the TPK / TAK its host sent
        under its TMK); the Thales backend refuses that (29): a payShield's A6 imports under a ZMK only."""
        ...

    async def form_key_from_components(
        self, key_type: str, components: Sequence[str], scheme: str = "U",
    ) -> NewKey:
        """A key (e.g. a TMK, ``"002"``) formed from 2 or 3 components under dual control: their XOR, odd parity
        forced, under the LMK in ``scheme``, with its KCV. Components are never stored or logged.

        The software backend takes clear components (hex, odd parity, as custodians type them from their
        mailers); both backends take components encrypted under the LMK as key type ``key_type`` (``U`` + 32H,
        ...), which the Thales backend sends as A4 (a payShield forms keys from clear components only at its
        console, never from the host). Errors: 03 not 2 or 3 components, 10 a component's parity, 15 lengths
        that differ or do not suit ``scheme``, or a clear component given to the Thales backend."""
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


DUAL_CONTROL = (2, 3)
"""How many components :meth:`Hsm.form_key_from_components` takes: two or three custodians, each with one
(issue 13, "Keys per terminal"); the payShield's A4 itself takes 2 to 9."""


def check_dual_control(components: Sequence[str]) -> None:
    """Error 03 unless there are 2 or 3 components."""
    if len(components) not in DUAL_CONTROL:
        raise KeyComponentError("a key is formed from 2 or 3 components (one per custodian)")


def default_ksn_descriptor(ksn: str) -> str:
    """The Thales KSN descriptor matching a KSN's length (device ID 5H, no sub-key ID): 20H -> ``A05``."""
    bdk_id = len(ksn) - 10
    if not 1 <= bdk_id <= 15:
        raise InvalidInputError(f"a KSN of {len(ksn)} hex characters has no descriptor")
    return f"{bdk_id:X}05"


@runtime_checkable
class InlinePinTranslation(Protocol):
    """An HSM that translates a PIN block without waiting (the software HSM in this process, tens of
    microseconds of CPU): the node's common path calls it inline instead of handing the exchange to a task.
    ``inline`` is False for a backend that prefers its calls off the event loop (then it is awaited in a task)."""

    @property
    def inline(self) -> bool: ...

    def translate_pin_now(self, source: PinKey, destination: PinKey, pin_block: str,
                          account: str) -> PinTranslation:
        """CA (from a TPK) or CC (from a ZPK) to the destination ZPK, ISO format 0 both sides."""
        ...


async def translate_pin(hsm: Hsm, source: PinKey, destination: PinKey, pin_block: str,
                        account: str) -> PinTranslation:
    """A PIN block from ``source`` (a terminal's TPK: CA; a zone's ZPK: CC; a DUKPT terminal's BDK and KSN: CI/G0)
    to the ``destination`` zone key, in ISO format 0 there, from the source's format."""
    if source.type == "TPK":
        return await hsm.translate_pin_tpk_to_zpk(source.key, destination.key, pin_block, account,
                                                  source_format=source.format)
    if source.type == "BDK":
        if source.ksn is None:
            raise InvalidInputError("a DUKPT PIN block needs its KSN")
        return await hsm.translate_pin_dukpt_to_zpk(source.key, destination.key, source.ksn, pin_block, account,
                                                    source_format=source.format)
    return await hsm.translate_pin_zpk_to_zpk(source.key, destination.key, pin_block, account,
                                              source_format=source.format)
