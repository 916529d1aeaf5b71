"""A simulated ATM's keys: its terminal master key (TMK), the PIN and MAC keys (TPK, TAK) it gets from the host by
key exchange, the PIN blocks it forms and the MACs it puts on its messages.

Demo and tests only: a real ATM holds its keys in clear inside its encrypting PIN pad; the simulator holds them as
cryptograms under the public Thales test LMK in a software HSM (:mod:`hsm.software`) and forms PIN blocks with the
test PIN pad (:mod:`hsm.testing`), which refuse any other LMK. Keys never reach the simulator's output: only their
check values do.

Key exchange (atm-interface.md, DE 70 161/162): the host answers 0800/161 with a new TPK and TAK under the TMK; the
terminal imports them (payShield A6 with the TMK, key type 002, as the key-encryption key), keeps them pending and
confirms their check values with 0800/162; the host makes them current on 00, and so does the terminal. Until then
the terminal goes on with the keys it had. The MAC is ANSI X9.19 (ISO 9797-1 algorithm 3, padding method 1) under
the TAK, over the message bytes up to the MAC field, which ends the message: DE 64, or DE 128 when the message has a
secondary bitmap (the engine's rule, :mod:`switch.exchange.mac`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hsm.api import ImportedKey
from hsm.errors import HsmError
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import TestPinPad
from switch.contracts.network import Network
from switch.exchange.mac import MAC_FIELDS, mac_field_for, mac_input, mac_of
from switch.model.message import Message
from switch.sim.atmfields import KEY_CONFIRMATION, KEY_EXCHANGE, KeyOffer

TMK_TYPE, TPK_TYPE, TAK_TYPE = "002", "002", "003"  # payShield key type codes (hsm.keys)
_PLACEHOLDER = bytes(8)


def sim_hsm() -> SoftwareHsm:
    """The simulator's HSM: the software HSM under the public test LMK (demo only, module docstring)."""
    return SoftwareHsm(Lmk.thales_test())


def import_under_tmk(hsm: SoftwareHsm, key_type: str, tmk: str, under_tmk: str) -> ImportedKey:
    """A key the host sent under the terminal's TMK, now under the LMK (payShield A6, the TMK as key-encryption key:
    key type 002). The one place the terminal imports a key: the software HSM takes the TMK as the KEK through
    ``zmk_type``, as ``hsm.api.Hsm.import_key`` does once the HSM work of the ATMP issue lands."""
    return hsm.import_key(key_type, tmk, under_tmk, zmk_type=TMK_TYPE)


def tmk_problem(hsm: SoftwareHsm, tmk: str) -> str | None:
    """Why ``tmk`` is no terminal master key under the test LMK, or None."""
    try:
        hsm.key_check_value(TMK_TYPE, tmk)
    except HsmError as exc:
        return f"not a terminal master key under the test LMK ({exc})"
    return None


def load_tmk_file(path: Path) -> dict[str, str]:
    """``ID CRYPTOGRAM`` (or ``ID = CRYPTOGRAM``) a line, ``#`` comments: each terminal's TMK under the test LMK."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    out: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].replace("=", " ").replace('"', " ").strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not 1 <= len(parts[0]) <= 8:
            raise ValueError(f"{path}:{number}: expected a terminal id (up to 8 characters) and its TMK")
        if parts[0] in out:
            raise ValueError(f"{path}:{number}: {parts[0]} given twice")
        out[parts[0]] = parts[1]
    return out


@dataclass(frozen=True)
class _Pending:
    tpk: str
    tpk_kcv: str
    tak: str
    tak_kcv: str


class TerminalKeys:
    """One terminal's keys, as LMK cryptograms. ``tpk``/``tak`` are None until the first key exchange is
    confirmed; the TAK before the last exchange stays usable to check the host's answers sent under it."""

    def __init__(self, tmk: str, hsm: SoftwareHsm, pad: TestPinPad, *, mac: bool = False) -> None:
        self.tmk = tmk
        self.mac = mac
        self.tpk: str | None = None
        self.tak: str | None = None
        self.tpk_kcv = ""
        self.tak_kcv = ""
        self.previous_tak: str | None = None
        self._pending: _Pending | None = None
        self._hsm = hsm
        self._pad = pad

    def __repr__(self) -> str:
        return f"TerminalKeys(tpk kcv {self.tpk_kcv or '-'}, tak kcv {self.tak_kcv or '-'}, mac {self.mac})"

    @property
    def ready(self) -> bool:
        return self.tpk is not None and self.tak is not None

    # -- key exchange ----------------------------------------------------------------------------------------------
    def accept(self, offer: KeyOffer) -> tuple[str, str, bool]:
        """Import the offered keys as pending; their check values as the terminal computes them (what 0800/162
        confirms) and whether they agree with the ones the host sent."""
        tpk = import_under_tmk(self._hsm, TPK_TYPE, self.tmk, offer.tpk)
        tak = import_under_tmk(self._hsm, TAK_TYPE, self.tmk, offer.tak)
        tpk_kcv, tak_kcv = tpk.kcv[:6].upper(), tak.kcv[:6].upper()
        self._pending = _Pending(tpk.under_lmk, tpk_kcv, tak.under_lmk, tak_kcv)
        return tpk_kcv, tak_kcv, (tpk_kcv, tak_kcv) == (offer.tpk_kcv, offer.tak_kcv)

    def confirmed(self) -> None:
        """The host answered the confirmation 00: the pending keys are the terminal's from now on."""
        pending = self._pending
        if pending is None:
            raise ValueError("no key exchange to confirm")
        self.previous_tak = self.tak
        self.tpk, self.tpk_kcv, self.tak, self.tak_kcv = pending.tpk, pending.tpk_kcv, pending.tak, pending.tak_kcv
        self._pending = None

    def refused(self) -> None:
        """The host refused the confirmation: the terminal keeps the keys it had."""
        self._pending = None

    # -- PIN ---------------------------------------------------------------------------------------------------------
    def pin_block(self, pin: str, pan: str) -> bytes:
        """ISO 9564 format 0 PIN block under the terminal's TPK (DE 52; as 16 hex characters, DE 125)."""
        if self.tpk is None:
            raise ValueError("no TPK yet: the terminal has not exchanged keys")
        return self._pad.pin_block("TPK", self.tpk, pin, pan)

    # -- MAC ---------------------------------------------------------------------------------------------------------
    @staticmethod
    def exempt(msg: Message) -> bool:
        """A key exchange request (161) and its answer travel without a MAC (README "ATM interface", MAC): the
        terminal may have no TAK left to make or check one with."""
        return msg.mti[:2] == "08" and msg.get(70) == KEY_EXCHANGE

    def _mac_key(self, msg: Message) -> str | None:
        """The TAK a MAC terminal MACs ``msg`` under: the key confirmation (162) under the new TAK it confirms,
        which proves it holds the TMK; the key exchange request (161) none; everything else its current TAK."""
        if self.exempt(msg):
            return None
        if msg.mti[:2] == "08" and msg.get(70) == KEY_CONFIRMATION and self._pending is not None:
            return self._pending.tak
        return self.tak

    def encode(self, network: Network, msg: Message) -> bytes:
        """``msg`` encoded, with its MAC when the terminal MACs (and has a TAK): the MAC field is set in the bitmap
        first (a placeholder), so the bytes MACed are the bytes sent up to the MAC."""
        fields = msg.fields
        for number in MAC_FIELDS:
            fields.pop(number, None)
        key = self._mac_key(msg) if self.mac else None
        if key is None:
            return network.encode(msg)
        number = mac_field_for(msg, "auto")
        fields[number] = _PLACEHOLDER
        body = network.encode(msg)
        data = mac_input(body, _PLACEHOLDER)
        if data is None:  # the generic layout always ends with the MAC field
            raise ValueError(f"DE {number} does not end the encoded message")
        mac = bytes.fromhex(self._hsm.generate_mac(TAK_TYPE, key, data))
        fields[number] = mac
        return data + mac

    def check(self, body: bytes, msg: Message) -> bool | None:
        """Whether the MAC of an answer verifies under the terminal's TAK (or the one before it); None when the answer
        carries no MAC."""
        mac = mac_of(msg)
        if mac is None:
            return None
        data = mac_input(body, mac)
        if data is None:
            return False
        pending = self._pending.tak if self._pending is not None else None  # the answer to a 162: under the new TAK
        for key in (self.tak, pending, self.previous_tak):
            if key is not None and self._hsm.verify_mac(TAK_TYPE, key, data, mac.hex().upper()):
                return True
        return False
