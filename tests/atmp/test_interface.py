"""The ATM interface's own fields, both ways, and what a bad value is answered with; and the totals report."""

from __future__ import annotations

from datetime import date

import iso8583
import pytest

from atmp.errors import AtmFieldError
from atmp.interface import (
    KeyExchangeAnswer,
    NoteCounts,
    ReportedTotals,
    advice_key,
    build_device_status,
    build_key_confirmation,
    build_key_exchange_answer,
    build_note_counts,
    build_original,
    build_replacement,
    build_surcharge,
    business_date,
    card_captured,
    dispensed_amount,
    is_rekey_request,
    parse_device_status,
    parse_key_confirmation,
    parse_key_exchange_answer,
    parse_note_counts,
    parse_original,
    parse_surcharge,
    parse_totals,
    request_key,
    totals_fields,
)
from atmp.model import DeviceState
from atmp.totals import Totals, compare
from schemes.atm import SCHEME as ATM
from schemes.generic import SPEC
from switch.model.message import Message

TPK_UNDER_TMK = "U" + "0123456789ABCDEF" * 2
TAK_UNDER_TMK = "U" + "FEDCBA9876543210" * 2


def test_note_counts_both_ways() -> None:
    counts = parse_note_counts("D0003000100000002R0001000000000000")
    assert counts == NoteCounts((3, 1, 0, 2), (1, 0, 0, 0))
    assert build_note_counts(counts) == "D0003000100000002R0001000000000000"
    assert parse_note_counts("D0000000000000005") == NoteCounts((0, 0, 0, 5))
    assert build_note_counts(NoteCounts((0, 0, 0, 5))) == "D0000000000000005"  # no R part without rejects


@pytest.mark.parametrize("text", ["D000300010000000", "X0003000100000002", "D0003000100000002R00", "D000A000100000002"])
def test_bad_note_counts_name_de_63(text: str) -> None:
    with pytest.raises(AtmFieldError) as info:
        parse_note_counts(text)
    assert info.value.field == 63


def test_original_data_and_the_withdrawal_key() -> None:
    de90 = build_original("0200", "000123", "1208101010")
    assert de90 == "0200" + "000123" + "1208101010" + "0" * 22 and len(de90) == 42
    assert parse_original(de90).key("ATM00001") == "ATM00001:000123:1208101010"
    with pytest.raises(AtmFieldError) as info:
        parse_original("0200000123120810101")
    assert info.value.field == 90


def test_a_0200_and_its_advices_share_the_key_through_the_wire() -> None:
    request = Message("0200", {3: "011000", 4: "000000006000", 7: "1208101010", 11: "000123", 41: "ATM00001"})
    advice = Message("0220", {3: "011000", 4: "000000006000", 7: "1208101112", 11: "000124", 41: "ATM00001",
                              63: "D0003000000000000", 90: build_original("0200", "000123", "1208101010")})
    decoded = ATM.decode(ATM.encode(advice))  # DE 63 and 90 survive the atm network's codec
    assert request_key(request) == advice_key(decoded) == "ATM00001:000123:1208101010"
    assert parse_note_counts(str(decoded.text(63))) == NoteCounts((3, 0, 0, 0))
    with pytest.raises(AtmFieldError) as info:
        advice_key(Message("0420", {41: "ATM00001"}))
    assert info.value.field == 90
    with pytest.raises(AtmFieldError) as info:
        request_key(Message("0200", {7: "1208101010", 11: "123", 41: "ATM00001"}))
    assert info.value.field == 11


def test_replacement_amounts() -> None:
    assert dispensed_amount(None) == 0
    assert dispensed_amount(build_replacement(4000)) == 4000
    assert dispensed_amount("000000004000" + "0" * 30) == 4000
    with pytest.raises(AtmFieldError) as info:
        dispensed_amount("4000")
    assert info.value.field == 95


def test_key_exchange_answer_and_confirmation() -> None:
    answer = KeyExchangeAnswer(TPK_UNDER_TMK, "AB12CD", TAK_UNDER_TMK, "0F0F0F")
    text = build_key_exchange_answer(answer)
    assert text == f"TPK{TPK_UNDER_TMK}AB12CDTAK{TAK_UNDER_TMK}0F0F0F" and len(text) == 84
    assert parse_key_exchange_answer(text) == answer
    assert "0123456789" not in repr(answer)
    assert parse_key_confirmation(build_key_confirmation("AB12CD", "0F0F0F")) == ("AB12CD", "0F0F0F")
    for bad in ("TPKAB12CDTAK0F0F0", "TAKAB12CDTPK0F0F0F", "TPK" + TPK_UNDER_TMK):
        with pytest.raises(AtmFieldError) as info:
            parse_key_confirmation(bad)
        assert info.value.field == 48
    with pytest.raises(AtmFieldError):
        parse_key_exchange_answer(text[:-1])


def test_device_status_rekey_capture_and_surcharge() -> None:
    status = parse_device_status("ST0021")
    assert status.printer is DeviceState.WARNING and status.depository is DeviceState.FAULT
    assert build_device_status(status) == "ST0021"
    with pytest.raises(AtmFieldError):
        parse_device_status("ST003")
    with pytest.raises(AtmFieldError):
        parse_device_status("XX0000")
    assert is_rekey_request("RK") and not is_rekey_request(None) and not is_rekey_request("ST0000")
    assert card_captured("C") and not card_captured(None) and not card_captured("")
    assert build_surcharge(250) == "D00000250" and parse_surcharge("D00000250") == 250
    with pytest.raises(AtmFieldError) as info:
        build_surcharge(100_000_000)
    assert info.value.field == 28


def test_terminal_totals_fields_both_ways() -> None:
    reported = ReportedTotals("1208", "840", Totals(withdrawals=12, withdrawal_amount=180000, deposits=2,
                                                    deposit_amount=35000))
    fields = totals_fields(reported)
    assert fields == {15: "1208", 49: "840", 74: "0000000002", 76: "0000000012", 86: "0000000000035000",
                      88: "0000000000180000"}
    # Through the atm network's wire layout (the generic spec; the network takes MTI class 5 with the host side).
    raw, _ = iso8583.encode({"t": "0500", **{str(k): v for k, v in fields.items()}, "11": "000001"}, SPEC)
    decoded, _ = iso8583.decode(bytes(raw), SPEC)
    wire = Message("0500", {int(k): v for k, v in decoded.items() if k.isdigit() and k not in ("1",)})
    assert parse_totals(wire) == reported
    for field, value in ((15, "1340"), (76, "12"), (88, "x" * 16), (49, "USD")):
        with pytest.raises(AtmFieldError) as info:
            parse_totals(Message("0500", {**fields, field: value}))
        assert info.value.field == field
    with pytest.raises(AtmFieldError) as info:
        parse_totals(Message("0500", {k: v for k, v in fields.items() if k != 86}))
    assert info.value.field == 86


@pytest.mark.parametrize(("mmdd", "today", "day"), [
    ("1208", date(2026, 12, 8), date(2026, 12, 8)),
    ("1231", date(2027, 1, 2), date(2026, 12, 31)),  # yesterday, last year
    ("0101", date(2026, 12, 31), date(2027, 1, 1)),  # a terminal a little ahead
    ("0229", date(2028, 3, 1), date(2028, 2, 29)),
])
def test_the_business_date_is_the_mmdd_nearest_today(mmdd: str, today: date, day: date) -> None:
    assert business_date(mmdd, today) == day


def test_february_29_needs_a_leap_year_near() -> None:
    with pytest.raises(AtmFieldError):
        business_date("0229", date(2026, 12, 8))


def test_totals_agree_or_show_the_difference() -> None:
    host = Totals(withdrawals=12, withdrawal_amount=180000, deposits=2, deposit_amount=35000)
    assert compare("ATM00001", date(2026, 12, 8), "840", host, host).agree
    short = compare("ATM00001", date(2026, 12, 8), "840", Totals(11, 174000, 2, 35000), host)
    assert not short.agree and short.difference == Totals(-1, -6000, 0, 0)
    report = short.report(lambda minor: f"{minor / 100:,.2f} USD")
    assert "terminal ATM00001  business day 2026-12-08" in report
    assert "-60.00 USD" in report and "1,800.00 USD" in report
    assert report.splitlines()[-1] == "DISCREPANCY: the terminal counts -1 withdrawal(s), -60.00 USD against the host"
