"""The ATM fleet simulator's pure parts: the interface's own fields as the terminal builds and reads them, its
cassettes and note mix, its store-and-forward queue, its keys and the dispense outcomes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from hsm.testing import TestPinPad
from switch.model.message import Message
from switch.sim.atmcash import Cassettes
from switch.sim.atmfields import (
    AtmAnswerError,
    Kind,
    NoteCounts,
    asks_rekey,
    device_status,
    key_confirmation,
    original_data,
    parse_de63,
    parse_key_offer,
    parse_mix,
    parse_statement,
    replacement_amounts,
)
from switch.sim.atmkeys import TerminalKeys, load_tmk_file, sim_hsm, tmk_problem
from switch.sim.atmmsgs import Card, Numbering, Rates, confirmation, dispense, repeat, request
from switch.sim.atmsaf import Advice, StoreAndForward
from tests.switch.sim.atmhost import HSM, new_tmk

DEMO = Cassettes.parse("1:2000:2000,2:5000:2000,3:1000:2000,4:10000:2000")
CARD = Card("4761730010000019", "4761730010000019=30122010000000000000")


def test_note_counts_round_trip_and_refusals() -> None:
    counts = NoteCounts((1, 0, 12, 9999))
    assert counts.to_de63() == "D0001000000129999" and parse_de63(counts.to_de63()) == counts
    with_rejects = NoteCounts((2, 0, 0, 0), (1, 0, 0, 0))
    assert with_rejects.to_de63() == "D0002000000000000R0001000000000000"
    assert parse_de63(with_rejects.to_de63()) == with_rejects
    for bad in ("", "D000100000012999", "X0001000000129999", "D0001000000129999X0001000000129999",
                "D00010000001299AB"):
        with pytest.raises(AtmAnswerError) as caught:
            parse_de63(bad)
        assert caught.value.field == 63
    with pytest.raises(ValueError):
        NoteCounts((1, 2, 3))
    with pytest.raises(ValueError):
        NoteCounts((10_000, 0, 0, 0))


def test_original_data_and_replacement_amounts() -> None:
    assert original_data("0200", "000123", "1208143015") == "02000001231208143015" + "0" * 22
    assert len(original_data("0200", "000123", "1208143015")) == 42
    assert replacement_amounts(12_345) == "000000012345" + "0" * 30
    with pytest.raises(ValueError):
        original_data("200", "000123", "1208143015")
    with pytest.raises(ValueError):
        replacement_amounts(10**12)


def test_key_offer_parsing() -> None:
    tpk, tak = "U" + "A" * 32, "U" + "B" * 32
    offer = parse_key_offer(Message("0810", {48: f"TPK{tpk}123ABCTAK{tak}00FF00"}))
    assert (offer.tpk, offer.tpk_kcv, offer.tak, offer.tak_kcv) == (tpk, "123ABC", tak, "00FF00")
    assert tpk not in repr(offer)
    for bad in (None, "RK", f"TPK{tpk}123ABC", f"TAK{tpk}123ABCTPK{tak}00FF00", f"TPK{tpk}12345GTAK{tak}00FF00",
                f"TPKX{'A' * 32}123ABCTAK{tak}00FF00"):
        msg = Message("0810", {} if bad is None else {48: bad})
        with pytest.raises(AtmAnswerError):
            parse_key_offer(msg)
    assert key_confirmation("123ABC", "00FF00") == "TPK123ABCTAK00FF00"
    assert asks_rekey(Message("0810", {48: "RK"})) and not asks_rekey(Message("0810", {48: "ST0000"}))
    assert device_status(0, 1, 2, 0) == "ST0120"
    with pytest.raises(ValueError):
        device_status(3)


def test_statement_lines() -> None:
    def line(day: str, description: str, amount: str, sign: str) -> str:
        return f"{day} {description.ljust(20)} {amount.rjust(13)}{sign}"

    text = line("0312", "CASH WITHDRAWAL", "20.00", "-") + line("0112", "SALARY", "1500.00", " ") + \
        line("0212", "BIG", "*" * 13, " ") + line("0112", "YEN", "1000", "-")
    assert len(text) == 160
    lines = parse_statement(text)
    assert [(line.day, line.description, line.amount) for line in lines] == [
        ("0312", "CASH WITHDRAWAL", -2000), ("0112", "SALARY", 150000), ("0212", "BIG", None), ("0112", "YEN", -1000)]
    assert parse_statement("") == []
    for bad in (None, text[:-1], text * 3, "0312-" + text[5:40], line("0312", "X", "20.00", "+"),
                line("03AB", "X", "20.00", "-"), line("0312", "X", "20,00", "-")):
        with pytest.raises(AtmAnswerError):
            parse_statement(bad)


def test_mix() -> None:
    assert parse_mix("withdrawal=3, inquiry=1") == {Kind.WITHDRAWAL: 3, Kind.INQUIRY: 1}
    for bad in ("withdrawal", "cash=1", "withdrawal=x", "withdrawal=1,withdrawal=2", "inquiry=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_cassettes_and_the_note_mix() -> None:
    assert DEMO.mix(6000) == [0, 1, 1, 0]  # 50.00 + 10.00, largest first
    assert DEMO.mix(20000) == [0, 0, 0, 2]
    assert DEMO.mix(2500) is None  # no 5.00 notes
    tens_gone = Cassettes.parse("1:2000:10,2:5000:10")
    assert tens_gone.mix(6000) == [3, 0, 0, 0]  # 50.00 leaves 10.00 no note covers: 3 x 20.00 instead
    assert tens_gone.offers((2000, 6000, 11000, 2500)) == [2000, 6000, 11000]
    tens_gone.take([3, 0, 0, 0])
    tens_gone.take([2, 1, 0, 0], retracted=True)
    first = tens_gone.cassettes[0]
    assert (first.out, first.retracted, first.remaining) == (5, 2, 5)
    with pytest.raises(ValueError):
        tens_gone.take([6, 0, 0, 0])
    assert DEMO.first_notes([0, 1, 1, 2], 3) == [0, 1, 0, 2]  # the dispenser picks 100.00, 100.00, 50.00
    assert DEMO.amount([1, 1, 1, 1]) == 18000
    for bad in ("1:2000", "5:2000:1", "1:0:10", "1:2000:1,1:5000:1", "a:b:c", "1:2000:10000"):
        with pytest.raises(ValueError):
            Cassettes.parse(bad)


def test_dispense_outcomes() -> None:
    notes = [0, 0, 0, 2]
    assert dispense(random.Random(1), Rates(), DEMO, notes).kind == "dispensed"
    outcome = dispense(random.Random(1), Rates(partial=1.0), DEMO, notes)
    assert outcome.kind in ("partial", "none") and outcome.reason == "22"
    assert outcome.amount == DEMO.amount(outcome.notes) < 20000
    retracted = dispense(random.Random(1), Rates(no_take=1.0), DEMO, notes)
    assert (retracted.kind, retracted.amount, retracted.notes, retracted.reason) == ("retracted", 0, notes, "RT")
    captured = dispense(random.Random(1), Rates(capture=1.0, lost_confirm=1.0), DEMO, notes)
    assert captured.captured and captured.lost and captured.reason is None
    with pytest.raises(ValueError):
        Rates(partial=0.7, no_take=0.5)
    with pytest.raises(ValueError):
        Rates(capture=1.5)


def test_store_and_forward_order_repeats_and_retry_codes() -> None:
    now = datetime(2024, 12, 8, 14, 30, 15, tzinfo=UTC)
    original = request(Kind.WITHDRAWAL, "ATM00001", "000010", "343140000101", now, CARD, amount=2000,
                       currency="840", pin_block=bytes(8))
    first = Advice(confirmation(original, "ATM00001", "000011", now, CARD, NoteCounts((1, 0, 0, 0))),
                   lose_first=True)
    second = Advice(confirmation(original, "ATM00001", "000012", now, CARD, NoteCounts((1, 0, 0, 0))))
    saf = StoreAndForward()
    saf.put(first)
    saf.put(second)
    msg, on_wire = first.next_send()
    assert (msg.mti, on_wire) == ("0220", False)  # lost on the way
    msg, on_wire = first.next_send()
    assert (msg.mti, msg[11], on_wire) == ("0221", "000011", True)
    assert not saf.answered("91") and saf.head() is first  # "not now": it stays at the head
    assert saf.answered("25") and saf.head() is second  # answered, even if refused: it leaves
    assert second.next_send()[0].mti == "0220" and saf.answered("00") and len(saf) == 0
    with pytest.raises(ValueError):
        saf.answered("00")
    with pytest.raises(ValueError):
        repeat(original)


def test_numbering() -> None:
    numbering = Numbering(random.Random(3), 42)
    stans = [numbering.stan() for _ in range(3)]
    assert [int(s) for s in stans] == [int(stans[0]) + i for i in range(3)]
    now = datetime(2024, 12, 8, 14, 30, 15, tzinfo=UTC)
    assert numbering.rrn("000123", now) == "343" + "14" + "000123" + "2"
    wrap = Numbering(random.Random(0), 1)
    wrap._next = 999_999
    assert wrap.stan() == "000001"


def test_terminal_keys(tmp_path: object) -> None:
    hsm = sim_hsm()
    tmk = new_tmk()
    keys = TerminalKeys(tmk, hsm, TestPinPad(), mac=True)
    assert not keys.ready and tmk_problem(hsm, tmk) is None and tmk_problem(hsm, "U" + "0" * 32) is not None
    tpk = HSM.generate_key_exported("002", tmk, zmk_type="002")
    tak = HSM.generate_key_exported("003", tmk, zmk_type="002")
    offer_text = f"TPK{tpk.under_zmk}{tpk.kcv[:6]}TAK{tak.under_zmk}{tak.kcv[:6]}"
    tpk_kcv, tak_kcv, agree = keys.accept(parse_key_offer(Message("0810", {48: offer_text})))
    assert (tpk_kcv, tak_kcv, agree) == (tpk.kcv[:6], tak.kcv[:6], True)
    assert not keys.ready  # pending until the host confirms
    keys.confirmed()
    assert keys.ready and keys.tpk_kcv == tpk.kcv[:6] and "U" not in repr(keys)
    wrong = f"TPK{tpk.under_zmk}000000TAK{tak.under_zmk}{tak.kcv[:6]}"
    assert keys.accept(parse_key_offer(Message("0810", {48: wrong})))[2] is False
    keys.refused()
    with pytest.raises(ValueError):
        keys.confirmed()


def test_tmk_file(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    path = tmp_path / "tmks.txt"
    path.write_text('# demo\nATM00001 UAAA\nATM00002 = "UBBB"  # partner\n\n')
    assert load_tmk_file(path) == {"ATM00001": "UAAA", "ATM00002": "UBBB"}
    path.write_text("ATM00001 UAAA\nATM00001 UBBB\n")
    with pytest.raises(ValueError, match="twice"):
        load_tmk_file(path)
    path.write_text("ATM00001\n")
    with pytest.raises(ValueError, match=":1:"):
        load_tmk_file(path)
