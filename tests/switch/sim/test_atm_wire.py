"""Bytes on the wire of every message the ATM fleet simulator sends, field by field as the ATM interface lays them
out (README "ATM interface"), read back with the reference decoder (pyiso8583, the ``generic`` layout's spec) from
what the fake host received: the exact set of fields, their values, the PIN blocks under the terminal's TPK, the MAC
under its TAK in DE 64 or DE 128."""

from __future__ import annotations

import re
from typing import Any

import iso8583
import pytest
import trio
import trio.testing
from iso8583 import specs

from hsm.cipher import tdes_decrypt
from hsm.keys import KeyCodec
from hsm.pinblock import account_field, decode
from switch.sim.atmfields import Kind
from switch.sim.atmfleet import Fleet
from switch.sim.atmmsgs import Rates
from switch.sim.atmshared import TerminalSettings
from tests.switch.sim.atmhost import HSM, LMK, FakeHost
from tests.switch.sim.test_atm_fleet import PAN, cards, config, fleet_tmks

HEADER_FIELDS = {"t", "p", "1"}  # MTI, primary and secondary bitmap in pyiso8583's decoded document
DE7 = re.compile(r"(0[1-9]|1[0-2])[0-3][0-9][0-2][0-9][0-5][0-9][0-5][0-9]")


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def wire(body: bytes) -> dict[str, Any]:
    doc, _ = iso8583.decode(bytearray(body), specs.default)
    return doc


def fields(doc: dict[str, Any]) -> set[int]:
    return {int(k) for k in doc if k not in HEADER_FIELDS}


async def drive(settings: TerminalSettings, count: int, *, mac: bool = False, **host_kwargs: Any) -> FakeHost:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks, mac=frozenset(tmks) if mac else frozenset(), **host_kwargs)
    async with host.serving():
        await Fleet(config(tmks, count=count, mac=mac, cards=cards(PAN), settings=settings),
                    connect=host.connect).run()
    return host


def sent(host: FakeHost, mti: str, code: str | None = None) -> list[dict[str, Any]]:
    return [wire(body) for body, msg in host.received if msg.mti == mti and (code is None or msg.get(70) == code)]


def pin_in(host: FakeHost, block_hex: str) -> str:
    tpk = host.keys["ATM00001"].tpk
    assert tpk is not None
    clear = tdes_decrypt(KeyCodec(LMK).from_lmk("002", tpk).value, bytes.fromhex(block_hex))
    return decode(0, clear, account_field(PAN))


async def test_network_management_on_the_wire(autojump_clock: trio.testing.MockClock) -> None:
    host = await drive(TerminalSettings(echo_every_s=5.0, mix={Kind.INQUIRY: 1}, new_pin=None), 0)
    (exchange,) = sent(host, "0800", "161")
    assert fields(exchange) == {7, 11, 41, 70} and exchange["41"] == "ATM00001" and DE7.fullmatch(exchange["7"])
    assert re.fullmatch(r"[0-9]{6}", exchange["11"])
    (confirm,) = sent(host, "0800", "162")
    assert fields(confirm) == {7, 11, 41, 48, 70}
    keys = host.keys["ATM00001"]
    assert keys.tpk is not None and keys.tak is not None
    assert confirm["48"] == f"TPK{HSM.key_check_value('002', keys.tpk)}TAK{HSM.key_check_value('003', keys.tak)}"
    (signon,) = sent(host, "0800", "001")
    assert fields(signon) == {7, 11, 41, 70}
    (status,) = sent(host, "0800", "281")
    assert fields(status) == {7, 11, 41, 48, 70} and status["48"] == "ST0000"
    (signoff,) = sent(host, "0800", "002")
    assert fields(signoff) == {7, 11, 41, 70}
    stans = [int(d["11"]) for d in (exchange, confirm, signon, status)]
    assert stans == [stans[0] + i for i in range(4)]  # the terminal's own STAN, one per message


@pytest.mark.parametrize(("kind", "code", "amounts"), [
    (Kind.WITHDRAWAL, "010000", True), (Kind.INQUIRY, "300000", False), (Kind.TRANSFER, "402010", True),
    (Kind.DEPOSIT, "210020", True), (Kind.PINCHANGE, "920000", False), (Kind.STATEMENT, "380000", False),
], ids=lambda v: v.value if isinstance(v, Kind) else None)
async def test_each_request_on_the_wire(autojump_clock: trio.testing.MockClock, kind: Kind, code: str,
                                        amounts: bool) -> None:
    host = await drive(TerminalSettings(echo_every_s=0, mix={kind: 1}, new_pin="4321"), 1)
    (request,) = sent(host, "0200")
    expected = {3, 4, 7, 11, 12, 13, 18, 22, 35, 37, 41, 49, 52} | ({125} if kind is Kind.PINCHANGE else set())
    assert fields(request) == expected
    assert request["3"] == code and request["18"] == "6011" and request["22"] == "021"
    assert request["41"] == "ATM00001" and request["49"] == "840"
    assert request["35"] == f"{PAN}=30122010000000000000" and DE7.fullmatch(request["7"])
    assert re.fullmatch(r"[0-9]{6}", request["12"]) and re.fullmatch(r"[0-9]{4}", request["13"])
    assert re.fullmatch(r"[0-9]{12}", request["37"]) and request["37"][5:11] == request["11"]
    amount = int(request["4"])
    assert (amount > 0) == amounts and len(request["4"]) == 12
    assert pin_in(host, request["52"]) == "1234"  # DE 52: ISO format 0 under the terminal's TPK
    if kind is Kind.PINCHANGE:  # DE 125: the new PIN block as 16 hex characters, same key
        assert re.fullmatch(r"[0-9A-F]{16}", request["125"]) and pin_in(host, request["125"]) == "4321"


async def test_confirmation_on_the_wire(autojump_clock: trio.testing.MockClock) -> None:
    settings = TerminalSettings(echo_every_s=0, mix={Kind.WITHDRAWAL: 1}, amounts=(6000,),
                                rates=Rates(capture=1.0))
    host = await drive(settings, 1)
    (request,) = sent(host, "0200")
    (advice,) = sent(host, "0220")
    assert fields(advice) == {2, 3, 4, 7, 11, 12, 13, 37, 41, 49, 60, 63, 90}
    assert advice["2"] == PAN and advice["3"] == "010000" and advice["4"] == "000000006000"
    for same in ("12", "13", "37", "41", "49"):
        assert advice[same] == request[same]
    assert advice["11"] != request["11"]  # an advice is a message of its own: the terminal's next STAN
    assert advice["90"] == "0200" + request["11"] + request["7"] + "0" * 22
    # 60.00 from 20.00/50.00/10.00/100.00 cassettes, largest first: 50.00 + 10.00.
    assert advice["63"] == "D0000000100010000" and advice["60"] == "C"


async def test_reversals_on_the_wire(autojump_clock: trio.testing.MockClock) -> None:
    settings = TerminalSettings(echo_every_s=0, mix={Kind.WITHDRAWAL: 1}, amounts=(20000,),
                                rates=Rates(partial=0.5, no_take=0.5))
    host = await drive(settings, 12)
    requests = {d["11"]: d for d in sent(host, "0200")}
    reasons = set()
    for advice in sent(host, "0420"):
        request = requests[advice["90"][4:10]]
        reasons.add(advice["39"])
        base = {2, 3, 4, 7, 11, 12, 13, 37, 39, 41, 49, 63, 90}
        assert advice["90"] == "0200" + request["11"] + request["7"] + "0" * 22 and advice["4"] == "000000020000"
        if advice["39"] == "RT":  # retracted: nothing dispensed, the two 100.00 notes counted as out
            assert fields(advice) == base and advice["63"] == "D0000000000000002"
        elif "95" in advice:  # partial: the first of the two notes went out
            assert advice["39"] == "22" and fields(advice) == base | {95}
            assert advice["95"] == "000000010000" + "0" * 30 and advice["63"] == "D0000000000000001"
        else:  # the dispenser failed before the first note
            assert advice["39"] == "22" and fields(advice) == base and advice["63"] == "D0000000000000000"
    assert reasons == {"RT", "22"}


async def test_no_answer_reversal_and_repeats_on_the_wire(autojump_clock: trio.testing.MockClock) -> None:
    settings = TerminalSettings(echo_every_s=0, mix={Kind.WITHDRAWAL: 1})
    host = await drive(settings, 1, silent_requests=1, silent_advices=1)
    (request,) = sent(host, "0200")
    first, again = sent(host, "0420") + sent(host, "0421")
    assert fields(first) == {2, 3, 4, 7, 11, 12, 13, 37, 39, 41, 49, 90} and first["39"] == "68"
    assert first["90"] == "0200" + request["11"] + request["7"] + "0" * 22
    # The repeat is the same message under 0421: same STAN, same fields.
    assert {k: v for k, v in again.items() if k != "t"} == {k: v for k, v in first.items() if k != "t"}


async def test_mac_in_de64_or_de128_under_the_terminals_tak(autojump_clock: trio.testing.MockClock) -> None:
    settings = TerminalSettings(echo_every_s=0, mix={Kind.WITHDRAWAL: 1, Kind.PINCHANGE: 1})
    host = await drive(settings, 6, mac=True)
    keys = host.keys["ATM00001"]
    assert keys.tak is not None
    seen = set()
    for body, msg in host.received:
        doc = wire(body)
        if msg.mti == "0800" and msg[70] == "161":  # the first key exchange: no TAK yet, no MAC
            assert fields(doc) & {64, 128} == set()
            continue
        number = 128 if any(n > 64 for n in fields(doc) if n != 128) else 64
        assert number in fields(doc) and ({64, 128} - {number}).isdisjoint(fields(doc)), msg.mti
        mac = bytes.fromhex(doc[str(number)])
        assert body.endswith(mac)
        assert HSM.verify_mac("003", keys.tak, body[:-8], mac.hex().upper())  # X9.19 over the bytes before it
        seen.add((msg.mti, number))
    # Primary bitmap only (the withdrawal's 0200): DE 64; with DE 70, DE 90 or DE 125 (0800, 0220, the PIN change's
    # 0200): DE 128.
    assert {("0800", 128), ("0200", 64), ("0220", 128), ("0200", 128)} <= seen
    assert host.answered["021063"] == 0
