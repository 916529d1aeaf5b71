"""The ATM fleet simulator's terminals against a small fake host (tests/switch/sim/atmhost.py) over in-memory
streams, on trio's autojump clock: key exchange and sign-on, customers, the store-and-forward queue (a lost
confirmation, unanswered advices, a dropped connection), the 0420/68 path, a rekey the host asks for, refusals."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing

from switch.sim.atmfields import Kind
from switch.sim.atmfleet import Fleet, FleetConfig, FleetError, terminal_ids
from switch.sim.atmmsgs import Card, Rates
from switch.sim.atmshared import SimCard, TerminalSettings
from switch.sim.atmterminal import TRANSITIONS
from tests.switch.sim.atmhost import FakeHost, new_tmk

PAN = "4761730010000019"
PAN2 = "4761730110000026"
ONLY_WITHDRAWALS = {Kind.WITHDRAWAL: 1}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def cards(*pans: str) -> tuple[SimCard, ...]:
    return tuple(SimCard(Card(pan, f"{pan}=30122010000000000000"), "1234", "1234") for pan in pans)


def config(tmks: dict[str, str], *, settings: TerminalSettings | None = None, **kwargs: Any) -> FleetConfig:
    defaults: dict[str, Any] = {"port": 1, "cards": cards(PAN, PAN2), "terminals": len(tmks), "seed": 7,
                                "tmks": tmks, "drain_s": 60.0}
    defaults.update(kwargs)
    return FleetConfig(settings=settings or TerminalSettings(echo_every_s=0), **defaults)


def fleet_tmks(count: int) -> dict[str, str]:
    return {tid: new_tmk() for tid in terminal_ids("ATM", 1, count)}


async def run(host: FakeHost, cfg: FleetConfig) -> Fleet:
    async with host.serving():
        fleet = Fleet(cfg, connect=host.connect)
        await fleet.run()
    return fleet


async def test_terminals_exchange_keys_sign_on_and_serve_customers(autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(2)
    host = FakeHost(tmks)
    fleet = await run(host, config(tmks, count=40))
    report = fleet.report
    # Each terminal: 161, 162 (installed), 001, 281 in that order before its first customer, 002 at the end.
    for tid in tmks:
        codes = [m.get(70) for m in host.of("0800") if m[41] == tid]
        assert codes == ["161", "162", "001", "281", "002"]
        assert host.keys[tid].tpk is not None and fleet.terminals[0].keys.ready
    assert report.key_exchanges == Counter({"installed": 2})
    assert sum(report.requests.values()) == 40 and set(c for _, c in report.requests) == {"00"}
    assert {kind for kind, _ in report.requests} <= {k.value for k in Kind}
    withdrawals = report.requests[("withdrawal", "00")]
    assert withdrawals == len(host.approved) > 0
    # Every approved withdrawal is confirmed once with its notes (DE 63), and the host recorded each.
    assert report.dispense == Counter({"dispensed": withdrawals})
    assert sorted(host.advices) == sorted(host.approved)
    assert all(len(v) == 1 and v[0].mti == "0220" for v in host.advices.values())
    assert report.advice_answers == Counter({("0230", "00"): withdrawals}) and report.saf_left == 0
    # The terminals' own cash agrees with the notes they reported.
    for tid, cash in report.cash.items():
        reported = [0, 0, 0, 0]
        for key, advices in host.advices.items():
            if key[0] == tid:
                counts = str(advices[0][63])
                for i in range(4):
                    reported[i] += int(counts[1 + 4 * i:5 + 4 * i])
        assert [c.out for c in cash.cassettes.cassettes] == reported
    assert report.timeouts == Counter() and report.late == report.unmatched == 0


async def test_a_lost_confirmation_is_sent_again_as_0221_until_answered(
        autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks, silent_advices=2)  # the first two transmissions that reach the host go unanswered
    settings = TerminalSettings(echo_every_s=0, mix=ONLY_WITHDRAWALS, rates=Rates(lost_confirm=1.0),
                                advice_timeout_s=5.0)
    fleet = await run(host, config(tmks, count=1, settings=settings))
    report = fleet.report
    (key, advices), = host.advices.items()
    # The 0220 never reached the host (lost); the first 0221 and the second went unanswered: both still reached
    # it (the host does not record what it does not answer), the third 0221 was answered 00.
    assert [m.mti for _, m in host.received if m.mti[:2] == "02" and m.mti != "0200"] == ["0221", "0221", "0221"]
    assert [m.mti for m in advices] == ["0221"] and key in host.approved
    assert len({str(m[11]) for _, m in host.received if m.mti == "0221"}) == 1  # a repeat keeps its STAN
    assert report.advices_lost == 1 and report.advice_timeouts == 3
    assert report.advices_sent == Counter({"0221": 3}) and report.advice_answers == Counter({("0230", "00"): 1})
    assert report.saf_left == 0


async def test_a_withdrawal_without_answer_is_reversed_with_reason_68(autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks, silent_requests=1, silent_advices=1)
    settings = TerminalSettings(echo_every_s=0, mix=ONLY_WITHDRAWALS, timeout_s=30.0, advice_timeout_s=5.0)
    fleet = await run(host, config(tmks, count=1, settings=settings))
    report = fleet.report
    assert report.timeouts == Counter({"withdrawal": 1}) and report.dispense == Counter({"no_answer": 1})
    request = host.of("0200")[0]
    reversals = [m for _, m in host.received if m.mti[:3] == "042"]
    assert [m.mti for m in reversals] == ["0420", "0421"]  # the 0420 went unanswered: repeated as 0421 until 0430
    for msg in reversals:
        assert msg[39] == "68" and 95 not in msg and 63 not in msg
        assert msg[90] == "0200" + str(request[11]) + str(request[7]) + "0" * 22
        assert msg[2] == PAN or msg[2] == PAN2
    assert report.advice_answers == Counter({("0430", "00"): 1}) and report.saf_left == 0
    assert report.cash["ATM00001"].dispensed_amount == 0  # nothing went out
    assert all(c.out == 0 for c in report.cash["ATM00001"].cassettes.cassettes)


async def test_partial_dispense_and_retract_are_reported_with_0420(autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks)
    settings = TerminalSettings(echo_every_s=0, mix=ONLY_WITHDRAWALS, rates=Rates(partial=0.5, no_take=0.5),
                                amounts=(20000,))
    fleet = await run(host, config(tmks, count=30, settings=settings))
    report = fleet.report
    reversals = host.of("0420")
    assert len(reversals) == 30 and report.dispense["partial"] + report.dispense["none"] + \
        report.dispense["retracted"] == 30
    out = report.cash["ATM00001"]
    by_reason = Counter(str(m[39]) for m in reversals)
    assert by_reason["RT"] == report.dispense["retracted"] > 0 and by_reason["22"] > 0
    for msg in reversals:
        notes = str(msg[63])
        dispensed = int(str(msg.get(95, "0" * 12))[:12])
        if msg[39] == "RT":  # presented, not taken: nothing dispensed, every note of 200.00 counted as out
            assert 95 not in msg and notes == "D0000000000000002"  # 2 x 100.00 from position 4
        else:
            assert 0 <= dispensed < 20000
            assert dispensed == sum(int(notes[1 + 4 * i:5 + 4 * i]) * d
                                    for i, d in enumerate((2000, 5000, 1000, 10000)))
    assert out.dispensed_amount == sum(int(str(m.get(95, "0" * 12))[:12]) for m in reversals)
    retracted = sum(c.retracted for c in out.cassettes.cassettes)
    assert retracted == 2 * report.dispense["retracted"]


async def test_a_dropped_connection_is_reopened_and_owed_advices_go_again(
        autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    # Frames: 161, 162, 001, 281, the first 0200 (answered); the host drops the line on the next frame, which is
    # the first 0220 or the second customer's 0200, whichever the terminal sent first.
    host = FakeHost(tmks, drop_after=6)
    settings = TerminalSettings(echo_every_s=0, mix=ONLY_WITHDRAWALS)
    fleet = await run(host, config(tmks, count=3, settings=settings))
    report = fleet.report
    assert host.connections == 2 and report.drops == 1 and report.connects == 2
    codes = [m.get(70) or m.mti for _, m in host.received]
    assert codes[:5] == ["161", "162", "001", "281", "0200"]
    # After the drop: sign-on again (the keys stay: no second key exchange), then what the terminal owes.
    assert codes[6:8] == ["001", "281"] and report.key_exchanges == Counter({"installed": 1})
    # The frame the host dropped the line on (and any behind it) was never answered: a confirmation goes again as a
    # repeat with its STAN, a request is reversed (0420 reason 68, naming it).
    if host.received[5][1].mti == "0220":
        first = host.received[5][1]
        assert [(m.mti, m[11]) for m in host.advices[next(iter(host.approved))]] == [("0221", first[11])]
    reversals = host.of("0420")
    assert len(reversals) == report.dropped["withdrawal"] and all(m[39] == "68" for m in reversals)
    assert "0221" in codes or reversals
    # Every approved withdrawal ended with exactly one recorded confirmation; nothing is owed at the end.
    assert len(host.approved) + report.dropped["withdrawal"] == 3
    assert all([m.mti[:3] for m in host.advices[key]] == ["022"] for key in host.approved)
    assert report.saf_left == 0


async def test_a_host_killed_between_approval_and_confirmation_gets_every_advice_after_its_restart(
        autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(2)
    # The host goes away on the first advice it receives (its answer never leaves) and refuses connections for 20 s,
    # as a node killed with kill -9 and restarted; what it recorded (its database) stays.
    host = FakeHost(tmks, down_for=20.0)
    settings = TerminalSettings(echo_every_s=0, mix=ONLY_WITHDRAWALS, rates=Rates(partial=0.3, no_take=0.2),
                                reconnect_max_s=2.0)
    cfg = config(tmks, count=30, settings=settings)
    async with host.serving():
        fleet = Fleet(cfg, connect=host.connect)
        host.drop_after = 10  # both terminals' 161, 162, 001, 281 (8 frames), then the first 0200s and advices
        await fleet.run()
    report = fleet.report
    assert host.refused > 2 and report.drops == 2 and report.connects == 4  # each terminal: backoff, then back
    # Every customer's withdrawal ended one way: approved and its cash reported (0220, or 0420 22/RT), or reversed
    # for want of an answer (0420 68), which the host may have approved and answered into the void when it went.
    no_answer = {(str(m[41]), str(m[90])[4:10], str(m[90])[10:20])
                 for m in host.of("0420") + host.of("0421") if m[39] == "68"}
    assert len(set(host.approved) | no_answer) == 30
    for key in set(host.approved) - no_answer:
        assert len({(m.mti[:3], m.get(39)) for m in host.advices[key]}) == 1
    for key in no_answer:
        assert all(m.mti[:3] == "042" and m[39] == "68" for m in host.advices[key])
    assert report.saf_left == 0 and report.advice_answers[("0230", "25")] == 0
    # The terminals' notes are exactly what the host was told (a partial dispense's and a retract's too).
    for tid, cash in report.cash.items():
        told = [0, 0, 0, 0]
        for (owner, _, _), advices in host.advices.items():
            if owner == tid and 63 in advices[0]:
                for i in range(4):
                    told[i] += int(str(advices[0][63])[1 + 4 * i:5 + 4 * i])
        assert [c.out for c in cash.cassettes.cassettes] == told


async def test_the_host_asks_for_new_keys_and_the_terminal_exchanges_them(
        autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks, rekey={"ATM00001"})
    settings = TerminalSettings(echo_every_s=10.0, mix=ONLY_WITHDRAWALS)
    cfg = config(tmks, settings=settings, duration_s=25.0, rate=1.0, mac=True)
    host.mac = frozenset(tmks)
    fleet = await run(host, cfg)
    report = fleet.report
    # The sign-on's answer already carries RK (the host's next 0800 answer): a second key exchange follows.
    codes = [m.get(70) for m in host.of("0800")]
    assert codes[:4] == ["161", "162", "001", "281"] and codes.count("161") == 2 and codes.count("162") == 2
    assert report.rekeys_asked == 1 and report.key_exchanges == Counter({"installed": 2})
    assert fleet.terminals[0].keys.tpk == host.keys["ATM00001"].tpk
    # Every request after the exchange was MACed and verified by the host under the keys of the moment.
    assert report.requests and set(code for _, code in report.requests) == {"00"}
    assert report.mac["bad"] == report.mac["missing"] == 0 and report.mac["verified"] > 0


async def test_answers_with_a_bad_mac_are_counted(autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks, mac=frozenset(tmks), bad_mac=True)
    fleet = await run(host, config(tmks, count=2, mac=True, settings=TerminalSettings(
        echo_every_s=0, mix={Kind.INQUIRY: 1})))
    # 001 and 281 answers, 2 inquiries, 002: every MACed answer failed the terminal's check.
    assert fleet.report.mac == Counter({"bad": 5})


async def test_a_refused_terminal_stays_out_and_the_others_serve(autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(2)
    host = FakeHost(tmks, refuse=frozenset({"ATM00002"}))
    fleet = await run(host, config(tmks, count=5))
    assert fleet.report.refused_terminals == 1
    assert [t.state for t in fleet.terminals] == ["stopped", "refused"]
    assert "58" in fleet.terminals[1].refusal
    assert {str(m[41]) for m in host.of("0200")} == {"ATM00001"} and len(host.of("0200")) == 5


async def test_a_host_without_atmp_leaves_the_fleet_without_keys(autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks, no_keys=True)
    async with host.serving():
        fleet = Fleet(config(tmks, count=1), connect=host.connect)
        with pytest.raises(FleetError, match="without keys"):
            await fleet.run()
    assert fleet.report.key_exchanges == Counter({"no_keys": 1}) and fleet.report.refused_terminals == 1
    assert host.of("0200") == []


async def test_pin_change_alternates_and_the_next_request_uses_the_new_pin(
        autojump_clock: trio.testing.MockClock) -> None:
    tmks = fleet_tmks(1)
    host = FakeHost(tmks)
    settings = TerminalSettings(echo_every_s=0, mix={Kind.PINCHANGE: 1, Kind.INQUIRY: 1}, new_pin="4321")
    fleet = await run(host, config(tmks, count=12, cards=cards(PAN), settings=settings))
    report = fleet.report
    assert set(code for _, code in report.requests) == {"00"}  # never a 55: the terminal follows the card's PIN
    changes = report.requests[("pinchange", "00")]
    assert report.pin_changes == changes > 1
    assert host.pins[PAN] == ("4321" if changes % 2 else "1234")


def test_terminal_ids_and_the_session_table() -> None:
    assert terminal_ids("ATM", 1, 3) == ["ATM00001", "ATM00002", "ATM00003"]
    assert terminal_ids("BNK1", 998, 2) == ["BNK10998", "BNK10999"]
    with pytest.raises(ValueError):
        terminal_ids("ATM", 99_999, 2)
    with pytest.raises(ValueError):
        terminal_ids("ATM-", 1, 1)
    # Every state is reachable and every state handles a drop and a stop.
    states = {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values())
    assert states == {"down", "connected", "in_service", "refused", "stopped"}
    for state in states:
        assert (state, "stop") in TRANSITIONS
