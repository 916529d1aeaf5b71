"""The terminal registry's values: a terminal, its status, its devices, its cassettes and its key set.

Pure values (frozen dataclasses), checked when built: a value that breaks a rule raises
:class:`~atmp.errors.TerminalSpecError` naming what was wrong, so the command line can print one line and the
storage never holds a terminal the engine could not use. Money is integer minor units of the ISO 4217 currency
(numeric code, as DE 49 carries it). Keys are LMK cryptograms in Thales notation, never clear values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from atmp.errors import TerminalSpecError, TerminalStateError

# DE 41 (card acceptor terminal id) is ans 8 in ISO 8583:1987; the bank's ATM ids are letters and digits.
TERMINAL_ID = re.compile(r"[A-Za-z0-9]{8}")
# DE 32 (acquiring institution id) is n..11: the owning institution is named the same way.
INSTITUTION_ID = re.compile(r"[0-9]{1,11}")
CURRENCY = re.compile(r"[0-9]{3}")
# DE 43 carries the terminal's name and location in 40 characters: longer would not reach a cardholder's statement.
MAX_LOCATION = 40
# DE 28 is x+n8: a surcharge above 8 digits cannot be disclosed.
MAX_SURCHARGE = 99_999_999
# DE 63 counts 4 digits per cassette (atm-interface), so no cassette can report more notes than this.
MAX_NOTES = 9999
CASSETTE_POSITIONS = (1, 2, 3, 4)
# Thales notation of a key under the LMK: U/X double and T/Y triple length variant or X9.17, Z or bare single,
# bare double/triple, R + a key block (AES keys, TR-31).
CRYPTOGRAM = re.compile(r"U[0-9A-F]{32}|X[0-9A-F]{32}|T[0-9A-F]{48}|Y[0-9A-F]{48}|Z?[0-9A-F]{16}|[0-9A-F]{32}"
                        r"|[0-9A-F]{48}|R[0-9A-Za-z]{16,}")
KCV = re.compile(r"[0-9A-F]{6}")
# payShield PIN block format codes a terminal may send under its TPK (or DUKPT): ISO 9564 formats 0, 1, 3, 4
# (01, 05, 47, 48) and the legacy ATM formats 02 Docutel, 03 Diebold/IBM 3624, 04 PLUS (issue 13).
PIN_FORMATS = frozenset({"01", "02", "03", "04", "05", "47", "48"})


class TerminalStatus(StrEnum):
    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"
    SUPERVISOR = "supervisor"  # a custodian at the terminal: network management and totals only
    CLOSED = "closed"  # decommissioned: nothing accepted; ``disable`` reopens it (out of service) deliberately


class Owner(StrEnum):
    OWN = "own"
    PARTNER = "partner"  # a partner bank's terminal driven by this host: same rules, its own institution id


# The operator's status actions (``bulkhead atm enable|disable|supervisor|close``) as one table: (current status,
# action) -> new status. A pair that is not here is refused. Repeating the current status is allowed (a no-op),
# so a script may run a command twice. A closed terminal only goes back out of service, never straight into
# service: reopening one is a deliberate second step.
STATUS_TRANSITIONS: dict[tuple[TerminalStatus, str], TerminalStatus] = {
    **{(status, "enable"): TerminalStatus.IN_SERVICE
       for status in (TerminalStatus.IN_SERVICE, TerminalStatus.OUT_OF_SERVICE, TerminalStatus.SUPERVISOR)},
    **{(status, "disable"): TerminalStatus.OUT_OF_SERVICE for status in TerminalStatus},
    **{(status, "supervisor"): TerminalStatus.SUPERVISOR
       for status in (TerminalStatus.IN_SERVICE, TerminalStatus.OUT_OF_SERVICE, TerminalStatus.SUPERVISOR)},
    **{(status, "close"): TerminalStatus.CLOSED for status in TerminalStatus},
}


def next_status(current: TerminalStatus, action: str) -> TerminalStatus:
    """The status ``action`` leads to from ``current``; :class:`TerminalStateError` when the table forbids it."""
    try:
        return STATUS_TRANSITIONS[(current, action)]
    except KeyError:
        if current is TerminalStatus.CLOSED:
            raise TerminalStateError(f"the terminal is closed: `{action}` is refused (`disable` reopens it, out "
                                     f"of service)") from None
        raise TerminalStateError(f"`{action}` is not an action on a terminal {current.value}") from None


class DeviceState(StrEnum):
    OK = "ok"
    WARNING = "warning"  # e.g. low paper: the terminal still serves
    FAULT = "fault"


# DE 48 ``ST`` + one character per device (atm-interface, 0800 code 281).
DEVICE_CODES: dict[str, DeviceState] = {"0": DeviceState.OK, "1": DeviceState.WARNING, "2": DeviceState.FAULT}
_DEVICE_CHARS = {state: code for code, state in DEVICE_CODES.items()}
DEVICES = ("card_reader", "dispenser", "depository", "printer")


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """The last device status a terminal reported, in the order of DE 48 ``ST``."""

    card_reader: DeviceState = DeviceState.OK
    dispenser: DeviceState = DeviceState.OK
    depository: DeviceState = DeviceState.OK
    printer: DeviceState = DeviceState.OK

    @classmethod
    def from_code(cls, code: str) -> DeviceStatus:
        """``"0120"`` -> card reader ok, dispenser warning, depository fault, printer ok."""
        if len(code) != 4 or any(ch not in DEVICE_CODES for ch in code):
            raise TerminalSpecError("device status", f"{code!r} is not 4 characters of 0 (ok), 1 (warning), "
                                    f"2 (fault)")
        return cls(*(DEVICE_CODES[ch] for ch in code))

    @property
    def code(self) -> str:
        return "".join(_DEVICE_CHARS[self.state(name)] for name in DEVICES)

    def state(self, device: str) -> DeviceState:
        state: DeviceState = getattr(self, device)
        return state

    def with_states(self, states: dict[str, DeviceState]) -> DeviceStatus:
        return DeviceStatus(*(states.get(name, self.state(name)) for name in DEVICES))

    @property
    def faults(self) -> tuple[str, ...]:
        return tuple(name for name in DEVICES if self.state(name) is DeviceState.FAULT)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(name for name in DEVICES if self.state(name) is DeviceState.WARNING)


@dataclass(frozen=True, slots=True)
class Cassette:
    """One cassette: its denomination and the host's counts since it was loaded.

    ``rejected`` notes went into the reject bin (double, torn, stuck), ``retracted`` ones were presented, not
    taken and pulled back into the retract bin (atm-interface, 0420 reason RT): both left the cassette, so
    ``remaining`` counts neither. A negative ``remaining`` means the terminal reported more notes than the host
    believed were loaded: a discrepancy the next replenishment settles.
    """

    position: int
    currency: str
    denomination: int  # minor units
    loaded: int
    dispensed: int = 0
    rejected: int = 0
    retracted: int = 0

    def __post_init__(self) -> None:
        where = f"cassette {self.position}"
        if self.position not in CASSETTE_POSITIONS:
            raise TerminalSpecError(where, "position must be 1 to 4 (the four cassettes DE 63 counts)")
        if not CURRENCY.fullmatch(self.currency):
            raise TerminalSpecError(where, f"currency {self.currency!r} is not an ISO 4217 numeric code")
        if self.denomination <= 0:
            raise TerminalSpecError(where, "denomination must be above zero")
        if not 0 <= self.loaded <= MAX_NOTES:
            raise TerminalSpecError(where, f"notes loaded must be 0 to {MAX_NOTES}")
        if min(self.dispensed, self.rejected, self.retracted) < 0:
            raise TerminalSpecError(where, "counts cannot be negative")

    @property
    def remaining(self) -> int:
        return self.loaded - self.dispensed - self.rejected - self.retracted

    @property
    def remaining_value(self) -> int:
        return max(self.remaining, 0) * self.denomination


@dataclass(frozen=True, slots=True)
class WorkingKeys:
    """A terminal's TPK (PIN blocks) and TAK (MACs) under the LMK, with their check values."""

    tpk: str
    tpk_kcv: str
    tak: str
    tak_kcv: str

    def __post_init__(self) -> None:
        for name in ("tpk", "tak"):
            check_cryptogram(name, getattr(self, name))
            check_kcv(f"{name} kcv", getattr(self, f"{name}_kcv"))

    def __repr__(self) -> str:  # cryptograms, but no need to print them whole
        return f"WorkingKeys(tpk kcv {self.tpk_kcv}, tak kcv {self.tak_kcv})"


@dataclass(frozen=True, slots=True)
class KeySet:
    """A terminal's keys. ``pending`` came from a key exchange (0800/161) and is not used until the terminal
    confirms it (162); the confirmed keys become ``current`` and the old ones ``previous``, usable for requests
    received before ``replaced_at`` and for a short window after it (atm-interface: ``key_window_s``)."""

    tmk: str | None = None
    tmk_kcv: str | None = None
    current: WorkingKeys | None = None
    previous: WorkingKeys | None = None
    replaced_at: datetime | None = None
    pending: WorkingKeys | None = None
    dukpt_bdk: str | None = None  # DUKPT terminals: the base derivation key; the KSN comes in DE 53
    pin_format: str = "01"
    mac: bool = False

    def __post_init__(self) -> None:
        if self.tmk is not None:
            check_cryptogram("tmk", self.tmk)
            check_kcv("tmk kcv", self.tmk_kcv or "")
        if self.dukpt_bdk is not None:
            check_cryptogram("dukpt bdk", self.dukpt_bdk)
        if self.pin_format not in PIN_FORMATS:
            raise TerminalSpecError("pin format", f"{self.pin_format!r} is not one of {', '.join(sorted(PIN_FORMATS))}")

    def __repr__(self) -> str:
        return (f"KeySet(tmk kcv {self.tmk_kcv}, current {self.current!r}, pending {self.pending!r}, "
                f"dukpt {self.dukpt_bdk is not None}, pin format {self.pin_format}, mac {self.mac})")

    @property
    def dukpt(self) -> bool:
        return self.dukpt_bdk is not None

    def keys_for(self, received_at: datetime, window_s: float) -> tuple[WorkingKeys, ...]:
        """The working keys to read a request received at ``received_at`` under, in the order to try them: the key
        current at its receive time first; within ``window_s`` after a change the other one too (a request the
        terminal sent just before it installed the new keys, or just after)."""
        if self.current is None:
            return ()
        if self.previous is None or self.replaced_at is None:
            return (self.current,)
        if received_at < self.replaced_at:
            return (self.previous, self.current)
        if received_at - self.replaced_at <= timedelta(seconds=window_s):
            return (self.current, self.previous)
        return (self.current,)


@dataclass(frozen=True, slots=True)
class Terminal:
    """A terminal of the registry."""

    id: str
    location: str
    institution: str
    owner: Owner
    currency: str
    status: TerminalStatus = TerminalStatus.OUT_OF_SERVICE
    device: DeviceStatus = field(default_factory=DeviceStatus)
    keys: KeySet = field(default_factory=KeySet)
    cassettes: tuple[Cassette, ...] = ()
    surcharge: int = 0  # minor units, disclosed in DE 28 to foreign cards (atm-interface, 0200 withdrawal)
    low_cash_notes: int = 0  # a cassette with fewer notes left is low; 0: never
    last_contact: datetime | None = None
    rekey_due: bool = False  # the next 0810 carries DE 48 RK (atm-interface)

    def __post_init__(self) -> None:
        check_terminal_id(self.id)
        if not self.location.strip() or len(self.location) > MAX_LOCATION:
            raise TerminalSpecError("location", f"must be 1 to {MAX_LOCATION} characters (DE 43)")
        if not INSTITUTION_ID.fullmatch(self.institution):
            raise TerminalSpecError("institution", f"{self.institution!r} is not 1 to 11 digits (DE 32)")
        if not CURRENCY.fullmatch(self.currency):
            raise TerminalSpecError("currency", f"{self.currency!r} is not an ISO 4217 numeric code")
        if not 0 <= self.surcharge <= MAX_SURCHARGE:
            raise TerminalSpecError("surcharge", f"must be 0 to {MAX_SURCHARGE} minor units (DE 28: 8 digits)")
        if self.low_cash_notes < 0:
            raise TerminalSpecError("low cash", "cannot be negative")
        positions = [c.position for c in self.cassettes]
        if len(set(positions)) != len(positions):
            raise TerminalSpecError("cassette", "a position appears twice")
        if list(positions) != sorted(positions):
            object.__setattr__(self, "cassettes", tuple(sorted(self.cassettes, key=lambda c: c.position)))

    def cassette(self, position: int) -> Cassette | None:
        return next((c for c in self.cassettes if c.position == position), None)

    @property
    def low_cash(self) -> tuple[int, ...]:
        """Positions of the cassettes with fewer than ``low_cash_notes`` notes left."""
        return tuple(c.position for c in self.cassettes if c.remaining < self.low_cash_notes)

    def cash_remaining(self, currency: str | None = None) -> int:
        """Value of the notes left, in ``currency`` (default: the terminal's)."""
        wanted = currency or self.currency
        return sum(c.remaining_value for c in self.cassettes if c.currency == wanted)


def check_terminal_id(terminal_id: str) -> str:
    if not TERMINAL_ID.fullmatch(terminal_id):
        raise TerminalSpecError("terminal id", f"{terminal_id!r} is not 8 letters or digits (DE 41)")
    return terminal_id


def check_cryptogram(argument: str, value: str) -> str:
    """A key under the LMK in Thales notation; never echoes a value that is not one (it might be a clear key)."""
    if not CRYPTOGRAM.fullmatch(value):
        raise TerminalSpecError(argument, "not a key under the LMK in Thales notation (U + 32 hex, T + 48 hex, ...)")
    return value


def check_kcv(argument: str, value: str) -> str:
    if not KCV.fullmatch(value):
        raise TerminalSpecError(argument, "a key check value is 6 hex digits")
    return value
