"""The ATMP under the orderings and faults a review found wrong (issue 13): a reversal held while the issuer is
down, a busy day before the sweep, repeated advices, repeated key confirmations, a rogue key exchange, a terminal's
own DE 28, a PIN block with no terminal key, a withdrawal assumed after a replenishment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from atmp import dispense
from atmp.interface import (
    NoteCounts,
    build_key_confirmation,
    build_note_counts,
    build_original,
    parse_key_exchange_answer,
)
from atmp.model import Cassette, Terminal
from atmp.storage import AtmStore
from schemes.atm import SCHEME as ATM
from switch.config import AtmpConfig
from switch.model.message import Message
from switch.runtime.atmhost import AtmHost
from switch.runtime.node import Node
from switch.storage.db import make_engine, upgrade
from tests.integration.harness import recording_issuer, running_node, write_config
from tests.integration.test_atmp_node import (
    EXTRA,
    ISSUER_ZPK,
    PAN,
    ROUTES,
    Atm,
    _atm,
    _atmp_node,
    _now,
    _terminal,
)
from tests.switch.storage.test_atmjournal import _row
from tests.switch.storage.test_journal import _store

# The module's connector, with the harness's short reconnect backoff (a stopped issuer comes back quickly).
EXTRA_FAST = EXTRA.replace("own_stan = true", "own_stan = true\nbackoff_initial_ms = 50\nbackoff_max_ms = 200")


@asynccontextmanager
async def _node(tmp_path: Path, db_url: str, terminals: list[Terminal], port: int,
                ) -> AsyncIterator[tuple[Node, AtmStore]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    store = AtmStore(engine)
    now = datetime.now(UTC)
    for t in terminals:
        store.add_terminal(t, at=now, actor="test")
        store.set_status(t.id, "enable", at=now, actor="test")
    try:
        conf = write_config(tmp_path, db_url, {}, ROUTES, extra=EXTRA_FAST.format(port=port, zpk=ISSUER_ZPK))
        async with running_node(conf) as node:
            yield node, store
    finally:
        engine.dispose()


# -- 1. a reversal held while the issuer's link is down keeps the terminal's own fields -----------------------
async def test_a_reversal_held_while_the_issuer_is_down_reaches_it_without_the_terminals_note_counts(
        tmp_path: Path, db_url: str) -> None:
    async with recording_issuer() as rec, \
            _node(tmp_path, db_url, [_terminal("ATM00011")], rec.port) as (node, _), _atm(node, "ATM00011") as atm:
            await atm.key_exchange()
            request = atm.withdrawal(10000)
            assert (await atm.call("0200", request))[39] == "00"
            rec.cancel.cancel()  # the issuer goes away
            with trio.fail_after(10):
                while node.outbound["issuer"].is_up():
                    await trio.sleep(0.02)
            original = build_original("0200", f"{atm.stan:06d}", str(request[7]))
            reversal = {2: PAN, 3: "011000", 4: "000000010000", 7: _now(), 39: "22", 90: original, 60: "C",
                        95: f"{4000:012d}" + "0" * 30, 63: build_note_counts(NoteCounts((2, 0, 0, 0)))}
            assert (await atm.call("0420", reversal))[39] == "00"  # held for the issuer
            async with recording_issuer(port=rec.port) as back:
                with trio.fail_after(15):
                    while not [m for m in back.received if m.mti.startswith("042")]:
                        await trio.sleep(0.05)
                [held] = [m for m in back.received if m.mti.startswith("042")]
                # The same rule as for a reversal sent at once (test_atmp_node): the terminal's DE 60 / DE 63 are
                # the ATMP's business (VISA reads DE 63 as its network data and answers 30).
                assert 63 not in held.fields
                assert 60 not in held.fields


# -- 2. the sweep never reaches the newest silent withdrawals once 1000 older ones are in the window ----------
async def test_the_sweep_takes_a_silent_withdrawal_as_dispensed_even_after_a_busy_day(db_engine) -> None:  # type: ignore[no-untyped-def]
    store = AtmStore(db_engine)
    now = datetime.now(UTC)
    terminal = replace(_terminal("ATM00001"), cassettes=(Cassette(1, "840", 2000, 5000),))
    store.add_terminal(terminal, at=now, actor="test")
    store.set_status("ATM00001", "enable", at=now, actor="test")
    start = now - timedelta(hours=20)
    # a busy day: 1000 withdrawals, each confirmed by the terminal; then one it never spoke of
    rows = [_row(n, start + timedelta(seconds=n), amount="000000002000") for n in range(1, 1002)]
    _store(db_engine, rows)
    confirmed = dispense.confirmation(2000, NoteCounts((1, 0, 0, 0)))
    for row in rows[:-1]:
        store.record_outcome("ATM00001", f"ATM00001:{row.stan}:0314092653", confirmed,
                             business_date=now.date(), at=now)
    host = AtmHost(AtmpConfig(confirm_timeout_s=300), db_engine, None, listeners={"atm": ATM},
                   own_destinations=frozenset(), primary=True, route_of=lambda _m: None,
                   saf_enqueue=_no_saf)
    await host.load()
    assert await host.sweep(now=now) == 1  # the silent one (stan 001001) is taken as dispensed
    assert store.terminal("ATM00001").cassettes[0].remaining == 5000 - 1001  # type: ignore[union-attr]


async def _no_saf(_entries: list[tuple[str, Message, str]]) -> None:
    return None


# -- 3. a repeated deposit count advice (0221) is added to the host's deposit total twice ---------------------
async def test_a_repeated_higher_count_advice_of_a_deposit_counts_once_in_the_hosts_totals(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00012")]) as (node, _rec, store), \
            _atm(node, "ATM00012") as atm:
        await atm.key_exchange()
        deposit = {**atm.withdrawal(10000), 3: "210000"}  # a cash deposit the recycler counted at 100.00
        assert (await atm.call("0200", deposit))[39] == "00"
        original = build_original("0200", f"{atm.stan:06d}", str(deposit[7]))
        advice = {2: PAN, 3: "210000", 4: "000000002000", 7: _now(), 90: original}  # the recount found 20.00 more
        assert (await atm.call("0220", advice))[39] == "00"
        # the terminal did not get the 0230: it sends the same advice again (same DE 11), as 0221
        repeat = Message("0221", {**advice, 11: f"{atm.stan:06d}", 41: atm.id})
        await atm.conn.send(repeat)
        key = atm.conn.key(repeat)
        with trio.fail_after(5):  # the harness's client matches by STAN: wait for the second 0230
            while len(atm.conn.responses.get(key, [])) < 2:
                await trio.sleep(0.01)
        assert atm.conn.responses[key][1][39] == "00"
        host = store.host_totals("ATM00012", datetime.now(UTC).date(), "840")
        assert (host.deposits, host.deposit_amount) == (1, 12000)


# -- 4. a repeated key confirmation (162) is refused although the keys it confirms are current ----------------
async def test_a_repeated_key_confirmation_is_answered_00_when_its_keys_are_the_current_ones(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00013")]) as (node, _rec, store), \
            _atm(node, "ATM00013") as atm:
        from tests.integration.test_atmp_node import HSM, TMK
        answer = await atm.call("0800", {7: _now(), 70: "161"})
        keys = parse_key_exchange_answer(str(answer[48]))
        confirmation = {7: _now(), 70: "162", 48: build_key_confirmation(keys.tpk_kcv, keys.tak_kcv)}
        assert (await atm.call("0800", confirmation))[39] == "00"
        # the 0810 was lost on the line: the terminal sends its 162 again (the simulator keeps its old keys on
        # anything but 00: switch.sim.atmkeys)
        assert (await atm.call("0800", confirmation))[39] == "00"
        tpk = HSM.import_key("002", TMK.under_lmk, keys.tpk_under_tmk, zmk_type="002")
        terminal = store.terminal("ATM00013")
        assert terminal is not None and terminal.keys.current is not None
        assert terminal.keys.current.tpk == tpk.under_lmk


# -- 5. anyone on the ATM listener can change a MAC terminal's keys (161/162 carry no MAC) --------------------
async def test_a_key_exchange_from_another_connection_cannot_take_a_mac_terminal_off_its_keys(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00014", mac=True)]) as (node, _rec, _store), \
            _atm(node, "ATM00014", mac=True) as atm:
        assert (await atm.key_exchange())[39] == "00"
        # a device that knows only the terminal id: its key exchange request gets keys under the TMK it does not
        # have (pending only), and its confirmation of them, with no MAC under the new TAK, is refused 63
        async with _atm(node, "ATM00014") as rogue:
            rogue.stan = 500
            offer = parse_key_exchange_answer(str((await rogue.call("0800", {7: _now(), 70: "161"}))[48]))
            confirm = await rogue.call("0800", {7: _now(), 70: "162", 48: build_key_confirmation(offer.tpk_kcv,
                                                                                                  offer.tak_kcv)})
            assert confirm[39] == "63"
        # the real terminal, a moment later, with its keys and a correct MAC
        await trio.sleep(0.05)
        from tests.integration.test_atmp_node import HSM
        echo = Message("0800", {7: _now(), 11: atm.next_stan(), 41: atm.id, 70: "301", 128: bytes(8)})
        body = ATM.encode(echo)[:-8]
        echo[128] = bytes.fromhex(HSM.generate_mac("003", atm.tak, body, algorithm=3, padding=1))
        assert (await atm.conn.call(echo))[39] == "00"
        fields = atm.withdrawal(2000)
        withdrawal = Message("0200", {**fields, 11: atm.next_stan(), 41: atm.id, 64: bytes(8)})
        body = ATM.encode(withdrawal)[:-8]
        withdrawal[64] = bytes.fromhex(HSM.generate_mac("003", atm.tak, body, algorithm=3, padding=1))
        assert (await atm.conn.call(withdrawal))[39] == "00"


# -- 6. a terminal's own DE 28 goes to the issuer instead of the host's surcharge --------------------------------
async def test_the_surcharge_on_a_foreign_card_is_the_terminals_configured_one_not_what_the_terminal_sent(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00015", surcharge=250)]) as (node, rec, _store), \
            _atm(node, "ATM00015") as atm:
        await atm.key_exchange()
        assert (await atm.call("0200", {**atm.withdrawal(2000), 28: "C00000000"}))[39] == "00"
        [forwarded] = [m for m in rec.received if m.mti == "0200"]
        assert forwarded[28] == "D00000250"


async def test_an_on_us_card_carries_no_surcharge_whatever_the_terminal_sent(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00016", surcharge=250)]) as (node, rec, _store), \
            _atm(node, "ATM00016") as atm:
        assert node.atmp is not None
        node.atmp.own_destinations = frozenset({"issuer"})  # the issuer is the bank's own cell here
        await atm.key_exchange()
        assert (await atm.call("0200", {**atm.withdrawal(2000), 28: "D00000900"}))[39] == "00"
        [forwarded] = [m for m in rec.received if m.mti == "0200"]
        assert 28 not in forwarded.fields  # the cell would charge it in place of the product's fee


# -- 7. a terminal with no working key: its DE 52 goes to the issuer as it came ------------------------------
async def test_a_pin_block_from_a_terminal_without_a_pin_key_is_never_forwarded_as_it_came(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00017")]) as (node, rec, _store), \
            _atm(node, "ATM00017") as atm:
        block = bytes.fromhex("0123456789ABCDEF")
        answer = await atm.call("0200", {**atm.withdrawal(2000), 52: block})
        forwarded = [m for m in rec.received if m.mti == "0200"]
        assert not forwarded or forwarded[0].fields.get(52) != block, "DE 52 passed through untranslated"
        assert answer[39] != "00"


_ = Atm  # re-exported helper type (for readers of these tests)


# -- 8. the sweep's assumption after a replenishment takes the notes out of the new load ----------------------
async def test_a_withdrawal_assumed_after_the_replenishment_does_not_take_notes_from_the_new_load(
        db_engine) -> None:  # type: ignore[no-untyped-def]
    store = AtmStore(db_engine)
    now = datetime.now(UTC)
    terminal = replace(_terminal("ATM00001"), cassettes=(Cassette(1, "840", 2000, 500),))
    store.add_terminal(terminal, at=now - timedelta(hours=1), actor="test")
    store.set_status("ATM00001", "enable", at=now - timedelta(hours=1), actor="test")
    approved_at = now - timedelta(minutes=10)
    _store(db_engine, [_row(1, approved_at, amount="000000002000")])  # one note of 20.00 went out, unconfirmed
    # the custodian replenishes 2 minutes later: 499 notes come out of the cassette, 500 go in
    record = store.replenish("ATM00001", {1: 499}, {1: 500}, at=approved_at + timedelta(minutes=2), actor="cit")
    assert not record.replenishment.balanced  # the host did not know of the note yet: a 1-note shortage
    host = AtmHost(AtmpConfig(confirm_timeout_s=300), db_engine, None, listeners={"atm": ATM},
                   own_destinations=frozenset(), primary=True, route_of=lambda _m: None, saf_enqueue=_no_saf)
    await host.load()
    assert await host.sweep(now=now) == 1
    # the note left with the previous load; the fresh 500 are untouched
    assert store.terminal("ATM00001").cassettes[0].remaining == 500  # type: ignore[union-attr]
