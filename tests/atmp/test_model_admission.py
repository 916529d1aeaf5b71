"""The registry's values and terminal admission: what a terminal may be, and which messages it may send."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from atmp.admission import Refusal, admit
from atmp.errors import TerminalSpecError, TerminalStateError
from atmp.model import (
    Cassette,
    DeviceState,
    DeviceStatus,
    KeySet,
    Owner,
    Terminal,
    TerminalStatus,
    WorkingKeys,
    next_status,
)

TPK = "U" + "1" * 32
TAK = "U" + "2" * 32
OLD = WorkingKeys("U" + "3" * 32, "AAAAAA", "U" + "4" * 32, "BBBBBB")
NEW = WorkingKeys(TPK, "CCCCCC", TAK, "DDDDDD")


def terminal(**changes: object) -> Terminal:
    base = Terminal(id="ATM00001", location="Main St 1", institution="412345", owner=Owner.OWN, currency="840",
                    status=TerminalStatus.IN_SERVICE,
                    cassettes=(Cassette(1, "840", 2000, 100), Cassette(2, "840", 5000, 50)), low_cash_notes=60)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "argument"), [
    ({"id": "ATM0001"}, "terminal id"),
    ({"id": "ATM-0001"}, "terminal id"),
    ({"location": ""}, "location"),
    ({"location": "x" * 41}, "location"),
    ({"institution": "12ab"}, "institution"),
    ({"currency": "USD"}, "currency"),
    ({"surcharge": 100_000_000}, "surcharge"),
    ({"low_cash_notes": -1}, "low cash"),
    ({"cassettes": (Cassette(1, "840", 2000, 1), Cassette(1, "840", 5000, 1))}, "cassette"),
])
def test_a_terminal_that_breaks_a_rule_names_what_is_wrong(changes: dict[str, object], argument: str) -> None:
    with pytest.raises(TerminalSpecError) as info:
        terminal(**changes)
    assert info.value.argument == argument


@pytest.mark.parametrize(("args", "reason"), [
    ((5, "840", 2000, 1), "position must be 1 to 4"),
    ((1, "840", 0, 1), "denomination must be above zero"),
    ((1, "840", 2000, 10_000), "notes loaded must be 0 to 9999"),
    ((1, "84", 2000, 1), "ISO 4217"),
])
def test_a_bad_cassette_is_refused(args: tuple[int, str, int, int], reason: str) -> None:
    with pytest.raises(TerminalSpecError, match=reason):
        Cassette(*args)


def test_cassettes_come_sorted_and_count_what_left_them() -> None:
    t = terminal(cassettes=(Cassette(2, "840", 5000, 50, dispensed=5, rejected=1, retracted=2),
                            Cassette(1, "840", 2000, 100, dispensed=50)))
    assert [c.position for c in t.cassettes] == [1, 2]
    assert t.cassette(2) is not None and t.cassette(2).remaining == 42  # type: ignore[union-attr]
    assert t.cash_remaining() == 50 * 2000 + 42 * 5000
    assert t.low_cash == (1, 2)  # both under 60 notes


def test_keys_are_cryptograms_and_a_clear_key_is_never_echoed() -> None:
    clear = "0123456789ABCDEFFEDCBA9876543210x"
    with pytest.raises(TerminalSpecError) as info:
        KeySet(tmk=clear, tmk_kcv="123456")
    assert clear not in str(info.value)
    with pytest.raises(TerminalSpecError, match="pin format"):
        KeySet(pin_format="99")
    assert "U111" not in repr(KeySet(current=NEW))


def test_the_key_current_at_receive_time_comes_first_and_the_other_within_the_window() -> None:
    changed = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    keys = KeySet(current=NEW, previous=OLD, replaced_at=changed)
    assert keys.keys_for(changed - timedelta(seconds=1), 60) == (OLD, NEW)
    assert keys.keys_for(changed + timedelta(seconds=30), 60) == (NEW, OLD)
    assert keys.keys_for(changed + timedelta(seconds=61), 60) == (NEW,)
    assert KeySet().keys_for(changed, 60) == ()


def test_device_status_round_trips_its_code() -> None:
    status = DeviceStatus.from_code("0120")
    assert (status.card_reader, status.dispenser, status.depository, status.printer) == (
        DeviceState.OK, DeviceState.WARNING, DeviceState.FAULT, DeviceState.OK)
    assert status.code == "0120" and status.faults == ("depository",) and status.warnings == ("dispenser",)
    with pytest.raises(TerminalSpecError):
        DeviceStatus.from_code("0130")


@pytest.mark.parametrize(("current", "action", "after"), [
    (TerminalStatus.OUT_OF_SERVICE, "enable", TerminalStatus.IN_SERVICE),
    (TerminalStatus.IN_SERVICE, "disable", TerminalStatus.OUT_OF_SERVICE),
    (TerminalStatus.IN_SERVICE, "supervisor", TerminalStatus.SUPERVISOR),
    (TerminalStatus.SUPERVISOR, "enable", TerminalStatus.IN_SERVICE),
    (TerminalStatus.IN_SERVICE, "enable", TerminalStatus.IN_SERVICE),
    (TerminalStatus.SUPERVISOR, "close", TerminalStatus.CLOSED),
    (TerminalStatus.CLOSED, "disable", TerminalStatus.OUT_OF_SERVICE),
])
def test_status_transitions(current: TerminalStatus, action: str, after: TerminalStatus) -> None:
    assert next_status(current, action) is after


@pytest.mark.parametrize("action", ["enable", "supervisor"])
def test_a_closed_terminal_is_not_put_back_in_service_in_one_step(action: str) -> None:
    with pytest.raises(TerminalStateError, match="closed"):
        next_status(TerminalStatus.CLOSED, action)
    with pytest.raises(TerminalStateError):
        next_status(TerminalStatus.IN_SERVICE, "explode")


WITHDRAWAL = ("0200", "011000")


@pytest.mark.parametrize(("status", "mti", "code", "refusal"), [
    (TerminalStatus.IN_SERVICE, "0200", "011000", None),
    (TerminalStatus.IN_SERVICE, "0800", None, None),
    (TerminalStatus.OUT_OF_SERVICE, "0200", "011000", "terminal out of service"),
    (TerminalStatus.OUT_OF_SERVICE, "0800", None, "terminal out of service"),
    (TerminalStatus.CLOSED, "0500", None, "terminal closed"),
    (TerminalStatus.SUPERVISOR, "0200", "301000", "terminal in supervisor mode"),
    (TerminalStatus.SUPERVISOR, "0800", None, None),
    (TerminalStatus.SUPERVISOR, "0500", None, None),
    # Advices report what already happened to cash: admitted whatever the status.
    (TerminalStatus.CLOSED, "0420", "011000", None),
    (TerminalStatus.OUT_OF_SERVICE, "0221", "011000", None),
    (TerminalStatus.SUPERVISOR, "0421", "011000", None),
])
def test_admission_by_status(status: TerminalStatus, mti: str, code: str | None, refusal: str | None) -> None:
    decision = admit(terminal(status=status), mti, code)
    assert decision == (None if refusal is None else Refusal("58", refusal))


def test_an_unknown_terminal_is_refused_even_its_advices() -> None:
    assert admit(None, "0200", "011000") == Refusal("58", "unknown terminal")
    assert admit(None, "0420", "011000") == Refusal("58", "unknown terminal")


def test_a_faulty_dispenser_refuses_withdrawals_and_a_faulty_depository_deposits() -> None:
    broken = terminal(device=DeviceStatus.from_code("0220"))
    assert admit(broken, "0200", "011000") == Refusal("58", "dispenser fault")
    assert admit(broken, "0200", "210010") == Refusal("58", "depository fault")
    assert admit(broken, "0200", "301000") is None  # a balance inquiry needs neither
    assert admit(terminal(device=DeviceStatus.from_code("0100")), "0200", "011000") is None  # a warning still serves
