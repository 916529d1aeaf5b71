"""The ATM processor in a running node (switch.runtime.atmhost, switch.exchange.terminals): a terminal from the
registry gets its own keys by key exchange, its PIN blocks are read under them, its withdrawals are confirmed or
reversed with the notes counted in its cassettes, and an unknown or disabled terminal never reaches the issuer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from prometheus_client import generate_latest

from atmp.interface import (
    KeyExchangeAnswer,
    NoteCounts,
    build_key_confirmation,
    build_note_counts,
    build_original,
    parse_key_exchange_answer,
)
from atmp.model import Cassette, KeySet, Owner, Terminal
from atmp.storage import AtmStore
from hsm import dukpt, pinblock
from hsm.cipher import tdes_encrypt
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import TestPinPad
from schemes.atm import SCHEME as ATM
from switch.model.message import Message
from switch.ops.metrics import registry_for
from switch.runtime.node import Node
from switch.storage.db import make_engine, upgrade
from switch.storage.journal import find_exchanges
from tests.integration.harness import Client, Recorder, client, recording_issuer, running_node, write_config

HSM = SoftwareHsm(Lmk.thales_test())
TMK = HSM.generate_key("002")
ISSUER_ZPK = HSM.generate_key("001").under_lmk
PVK = HSM.generate_key("002").under_lmk
PAN = "4761739001010010"
TRACK2 = f"{PAN}=30121011000012345678"

EXTRA = """
[hsm]
kind = "software"
test_lmk = true

[atmp]
confirm_timeout_s = 600

[[listeners]]
name = "terminals"
port = 0
scheme = "atm"
framing = {{ kind = "binary2" }}
atmp = true

[[connectors]]
name = "issuer"
hosts = ["127.0.0.1:{port}"]
scheme = "generic"
framing = {{ kind = "binary2" }}
timeout_ms = 2000
own_stan = true
pin_key = {{ type = "ZPK", key = "{zpk}" }}
"""
ROUTES = """
default = "issuer"
[destinations.issuer]
links = ["issuer"]
"""
CASSETTES = (Cassette(1, "840", 2000, 500), Cassette(2, "840", 5000, 500), Cassette(3, "840", 1000, 500),
             Cassette(4, "840", 10000, 500))


def _terminal(terminal_id: str, *, mac: bool = False, surcharge: int = 0) -> Terminal:
    return Terminal(id=terminal_id, location="Main St 1", institution="412345", owner=Owner.OWN, currency="840",
                    keys=KeySet(tmk=TMK.under_lmk, tmk_kcv=TMK.kcv, mac=mac), cassettes=CASSETTES,
                    surcharge=surcharge)


@dataclass
class Atm:
    """A terminal on the wire: its keys under the test LMK (as its own secure module holds them)."""

    id: str
    conn: Client
    stan: int = 0
    tpk: str = ""
    tak: str = ""
    mac: bool = False  # a MAC terminal MACs its key exchange too (but its very first 161)

    def next_stan(self) -> str:
        self.stan += 1
        return f"{self.stan:06d}"

    async def call(self, mti: str, fields: dict[int, str | bytes]) -> Message:
        return await self.conn.call(Message(mti, {**fields, 11: self.next_stan(), 41: self.id}))

    async def maced(self, mti: str, fields: dict[int, str | bytes], tak: str) -> Message:
        """``mti`` with ``fields``, MACed under ``tak`` (X9.19, DE 128: DE 70 needs the secondary bitmap)."""
        msg = Message(mti, {**fields, 11: self.next_stan(), 41: self.id, 128: bytes(8)})
        msg[128] = bytes.fromhex(HSM.generate_mac("003", tak, ATM.encode(msg)[:-8], algorithm=3, padding=1))
        return await self.conn.call(msg)

    async def key_exchange(self) -> Message:
        answer = await self.call("0800", {7: _now(), 70: "161"})  # bare: the terminal may have no TAK left
        assert answer[39] == "00", answer
        keys: KeyExchangeAnswer = parse_key_exchange_answer(str(answer[48]))
        tpk = HSM.import_key("002", TMK.under_lmk, keys.tpk_under_tmk, zmk_type="002")
        tak = HSM.import_key("003", TMK.under_lmk, keys.tak_under_tmk, zmk_type="002")
        assert (tpk.kcv, tak.kcv) == (keys.tpk_kcv, keys.tak_kcv)
        confirm = {7: _now(), 70: "162", 48: build_key_confirmation(tpk.kcv, tak.kcv)}
        confirmed = await (self.maced("0800", confirm, tak.under_lmk) if self.mac else self.call("0800", confirm))
        if confirmed[39] == "00":
            self.tpk, self.tak = tpk.under_lmk, tak.under_lmk
        return confirmed

    def withdrawal(self, amount: int, pin: str = "1234") -> dict[int, str | bytes]:
        fields: dict[int, str | bytes] = {
            3: "011000", 4: f"{amount:012d}", 7: _now(), 12: "101010", 13: "1207", 22: "051", 35: TRACK2,
            37: f"{self.stan + 1:012d}", 49: "840"}
        if self.tpk:  # a DUKPT terminal forms its PIN block itself
            fields[52] = TestPinPad().pin_block("TPK", self.tpk, pin, PAN)
        return fields


def _now() -> str:
    return datetime.now(UTC).strftime("%m%d%H%M%S")


@asynccontextmanager
async def _atmp_node(tmp_path: Path, db_url: str, terminals: list[Terminal],
                     ) -> AsyncIterator[tuple[Node, Recorder, AtmStore]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    store = AtmStore(engine)
    now = datetime.now(UTC)
    for t in terminals:
        store.add_terminal(t, at=now, actor="test")
        store.set_status(t.id, "enable", at=now, actor="test")
    try:
        async with recording_issuer() as rec:
            conf = write_config(tmp_path, db_url, {}, ROUTES, extra=EXTRA.format(port=rec.port, zpk=ISSUER_ZPK))
            async with running_node(conf) as node:
                yield node, rec, store
    finally:
        engine.dispose()


@asynccontextmanager
async def _atm(node: Node, terminal_id: str, *, mac: bool = False) -> AsyncIterator[Atm]:
    port = node.listeners["terminals"].port
    assert port is not None
    async with client(port, ATM) as conn:
        yield Atm(terminal_id, conn, mac=mac)


def _pvv(block: bytes) -> str:
    return HSM.generate_pvv("001", ISSUER_ZPK, PVK, block.hex().upper(), "01", PAN[-13:-1], 1)


def _remaining(store: AtmStore, terminal_id: str) -> list[int]:
    terminal = store.terminal(terminal_id)
    assert terminal is not None
    return [c.remaining for c in terminal.cassettes]


async def test_a_terminal_gets_its_keys_then_withdraws_and_confirms_and_the_cassettes_count_the_notes(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00001")]) as (node, rec, store), \
            _atm(node, "ATM00001") as atm:
        assert (await atm.key_exchange())[39] == "00"
        request = atm.withdrawal(6000)
        answer = await atm.call("0200", request)
        assert answer[39] == "00"
        forwarded = [m for m in rec.received if m.mti == "0200"]
        assert len(forwarded) == 1
        # the PIN reached the issuer under its own zone key: the same PIN as a fresh block under the ZPK
        assert _pvv(forwarded[0][52]) == _pvv(TestPinPad().pin_block("ZPK", ISSUER_ZPK, "1234", PAN))
        original = build_original("0200", f"{atm.stan:06d}", str(request[7]))
        notes = build_note_counts(NoteCounts((3, 0, 0, 0)))  # three notes of 20.00
        confirm = {3: "011000", 4: "000000006000", 7: _now(), 90: original, 63: notes}
        assert (await atm.call("0220", confirm))[39] == "00"
        assert (await atm.call("0221", confirm))[39] == "00"  # the terminal did not see the first answer
        assert _remaining(store, "ATM00001") == [497, 500, 500, 500]  # counted once
        # the confirmation never went to the issuer: it is the terminal's business with its host
        assert not [m for m in rec.received if m.mti.startswith("022")]
        outcomes = store.dispenses("ATM00001")
        assert [(o.outcome.kind.value, o.outcome.dispensed_amount) for o in outcomes] == [("dispensed", 6000)]
        # what monitoring sees: cash per cassette, outcomes, the fleet in `bulkhead status`
        text = generate_latest(registry_for(node)).decode()
        assert ('bulkhead_atm_cash_notes{cassette="1",currency="840",denomination="2000",terminal="ATM00001"} 497.0'
                in text)
        assert 'bulkhead_atm_outcomes_total{outcome="dispensed",terminal="ATM00001"} 1.0' in text
        assert 'bulkhead_atm_outcomes_total{outcome="duplicate",terminal="ATM00001"} 1.0' in text
        assert node.status()["atm"] == {"terminals": 1, "in_service": 1, "low_cash": [], "faults": {}}


async def test_a_partial_dispense_reverses_the_rest_and_counts_only_the_notes_that_went_out(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00002")]) as (node, rec, store), \
            _atm(node, "ATM00002") as atm:
        await atm.key_exchange()
        request = atm.withdrawal(10000)
        assert (await atm.call("0200", request))[39] == "00"
        original = build_original("0200", f"{atm.stan:06d}", str(request[7]))
        reversal = {2: PAN, 3: "011000", 4: "000000010000", 7: _now(), 39: "22", 90: original,
                    95: f"{4000:012d}" + "0" * 30, 63: build_note_counts(NoteCounts((2, 0, 0, 0), (0, 1, 0, 0)))}
        assert (await atm.call("0420", reversal))[39] == "00"
        assert (await atm.call("0421", reversal))[39] == "00"
        upstream = [m for m in rec.received if m.mti.startswith("042")]
        assert upstream and str(upstream[0][95])[:12] == "000000004000"  # the issuer reverses the other 60.00
        # the note counts are the terminal's business: not sent on; its DE 90 named its own 0200, and went upstream
        # naming the 0200 as the issuer got it (the switch's own STAN on this link)
        assert 63 not in upstream[0].fields
        assert str(upstream[0][90])[4:10] == str(next(m for m in rec.received if m.mti == "0200")[11])
        terminal = store.terminal("ATM00002")
        assert terminal is not None
        assert [(c.remaining, c.rejected) for c in terminal.cassettes] == [(498, 0), (499, 1), (500, 0), (500, 0)]
        [outcome] = store.dispenses("ATM00002")
        assert (outcome.outcome.kind.value, outcome.outcome.dispensed_amount) == ("partial", 4000)


async def test_an_unknown_or_disabled_terminal_is_answered_58_and_nothing_reaches_the_issuer(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00003")]) as (node, rec, store):
        store.set_status("ATM00003", "disable", at=datetime.now(UTC), actor="test")
        await node.atm_reload()
        for terminal_id in ("ATM00099", "ATM00003"):
            async with _atm(node, terminal_id) as atm:
                fields = {3: "011000", 4: "000000001000", 7: _now(), 12: "101010", 13: "1207", 22: "020",
                          35: TRACK2, 37: "000000000001", 49: "840"}
                assert (await atm.call("0200", fields))[39] == "58"
        assert not [m for m in rec.received if m.mti == "0200"]


async def test_a_mac_terminal_is_refused_63_without_its_mac_and_answered_with_one(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00004", mac=True)]) as (node, rec, _store), \
            _atm(node, "ATM00004", mac=True) as atm:
        assert (await atm.key_exchange())[39] == "00"
        assert (await atm.key_exchange())[39] == "00"  # again, now under the TAK it has
        fields = {**atm.withdrawal(1000), 64: bytes(8)}
        assert (await atm.call("0200", fields))[39] == "63"
        assert not [m for m in rec.received if m.mti == "0200"]
        # an echo with the right MAC is answered, MACed under the same TAK (in DE 128: DE 70 needs the secondary
        # bitmap, and the MAC ends the message)
        echo = Message("0800", {7: _now(), 11: atm.next_stan(), 41: atm.id, 70: "301", 128: bytes(8)})
        body = ATM.encode(echo)[:-8]
        echo[128] = bytes.fromhex(HSM.generate_mac("003", atm.tak, body, algorithm=3, padding=1))
        answer = await atm.conn.call(echo)
        assert answer[39] == "00"
        mac = answer[128]
        assert isinstance(mac, bytes)
        assert HSM.verify_mac("003", atm.tak, ATM.encode(answer)[:-8], mac.hex().upper(), algorithm=3, padding=1)


async def test_a_withdrawal_on_a_foreign_card_carries_the_terminals_surcharge(tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00005", surcharge=250)]) as (node, rec, _store), \
            _atm(node, "ATM00005") as atm:
        await atm.key_exchange()
        assert (await atm.call("0200", atm.withdrawal(2000)))[39] == "00"
        [forwarded] = [m for m in rec.received if m.mti == "0200"]
        assert forwarded[28] == "D00000250"


@pytest.mark.parametrize("confirmed", [True, False], ids=["confirmed-late", "silent"])
async def test_a_withdrawal_the_terminal_never_speaks_of_is_taken_as_dispensed_and_a_late_word_corrects_it(
        tmp_path: Path, db_url: str, confirmed: bool) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00006")]) as (node, _rec, store), \
            _atm(node, "ATM00006") as atm:
        await atm.key_exchange()
        request = atm.withdrawal(5000)
        assert (await atm.call("0200", request))[39] == "00"
        assert node.atmp is not None
        later = datetime.now(UTC) + timedelta(seconds=601)  # the sweep, confirm_timeout_s after the approval
        assert await node.atmp.sweep(now=later) == 1
        assert await node.atmp.sweep(now=later) == 0  # once
        # the host's own mix: largest denomination first that the cassettes can make 50.00 with
        assert _remaining(store, "ATM00006") == [500, 499, 500, 500]
        if confirmed:  # the terminal's own word (a partial dispense) replaces the host's assumption
            original = build_original("0200", f"{atm.stan:06d}", str(request[7]))
            reversal = {2: PAN, 3: "011000", 4: "000000005000", 7: _now(), 39: "22", 90: original,
                        95: f"{2000:012d}" + "0" * 30, 63: build_note_counts(NoteCounts((1, 0, 0, 0)))}
            assert (await atm.call("0420", reversal))[39] == "00"
            assert _remaining(store, "ATM00006") == [499, 500, 500, 500]
        [outcome] = store.dispenses("ATM00006")
        assert outcome.outcome.kind.value == ("partial" if confirmed else "assumed")



async def test_a_card_captured_at_the_terminal_is_told_to_its_issuer(tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00007")]) as (node, rec, store), \
            _atm(node, "ATM00007") as atm:
        await atm.key_exchange()
        request = atm.withdrawal(2000)
        assert (await atm.call("0200", request))[39] == "00"
        original = build_original("0200", f"{atm.stan:06d}", str(request[7]))
        confirm = {2: PAN, 3: "011000", 4: "000000002000", 7: _now(), 60: "C", 90: original,
                   63: build_note_counts(NoteCounts((1, 0, 0, 0)))}
        assert (await atm.call("0220", confirm))[39] == "00"
        assert (await atm.call("0221", confirm))[39] == "00"
        with trio.fail_after(10):  # the notice waits in the store-and-forward queue until the issuer takes it
            while not [m for m in rec.received if m.mti == "0620"]:
                await trio.sleep(0.05)
        [notice] = [m for m in rec.received if m.mti == "0620"]
        assert (notice[2], notice[41], notice[60]) == (PAN, "ATM00007", "CAPTURED")
        assert [e.kind for e in store.events("ATM00007", kinds=("card_captured",))] == ["card_captured"]


async def test_a_dukpt_terminals_pin_block_is_read_under_its_key_sets_bdk_and_the_ksn_of_de_53(
        tmp_path: Path, db_url: str) -> None:
    bdk = HSM.generate_key("009")
    terminal = _terminal("ATM00008")
    terminal = replace(terminal, keys=replace(terminal.keys, dukpt_bdk=bdk.under_lmk))
    ksn = "FFFF9876543210E00008"  # 20 hex characters, as terminals send it
    pin_key = dukpt.tdes_pin_key(HSM._key("009", bdk.under_lmk).value, dukpt.expand_ksn("A05", ksn))
    block = tdes_encrypt(pin_key, pinblock.encode(0, "1234", PAN[-13:-1]))
    async with _atmp_node(tmp_path, db_url, [terminal]) as (node, rec, _store), _atm(node, "ATM00008") as atm:
        fields = {**atm.withdrawal(2000), 52: block, 53: ksn}
        assert (await atm.call("0200", fields))[39] == "00"
        [forwarded] = [m for m in rec.received if m.mti == "0200"]
        assert 53 not in forwarded.fields  # the KSN is the terminal's: it went no further than the translation
        # the journal keeps what the terminal sent, its KSN hidden like any security field
        with trio.fail_after(5):
            while not (rows := find_exchanges(node.engine, terminal_id="ATM00008")):
                await trio.sleep(0.05)
        assert rows[0].request["53"] == "<20 chars hidden>"
        assert _pvv(forwarded[52]) == _pvv(
            TestPinPad().pin_block("ZPK", ISSUER_ZPK, "1234", PAN))
        # under another KSN the same block is read under another key: not 1234 at the issuer (or not a PIN at all)
        other = {**atm.withdrawal(2000), 52: block, 53: "FFFF9876543210E00009"}
        answer = await atm.call("0200", other)
        later = [m for m in rec.received if m.mti == "0200"][1:]
        assert answer[39] == "55" or _pvv(later[0][52]) != _pvv(TestPinPad().pin_block("ZPK", ISSUER_ZPK, "1234", PAN))


async def test_terminal_totals_agree_or_are_answered_95(tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00009")]) as (node, _rec, store), \
            _atm(node, "ATM00009") as atm:
        await atm.key_exchange()
        request = atm.withdrawal(6000)
        assert (await atm.call("0200", request))[39] == "00"
        original = build_original("0200", f"{atm.stan:06d}", str(request[7]))
        assert (await atm.call("0220", {3: "011000", 4: "000000006000", 7: _now(), 90: original}))[39] == "00"
        today = datetime.now(UTC).strftime("%m%d")
        totals = {15: today, 49: "840", 74: "0" * 10, 76: "0000000001", 86: "0" * 16, 88: f"{6000:016d}"}
        assert (await atm.call("0500", totals))[39] == "00"
        assert (await atm.call("0500", {**totals, 88: f"{8000:016d}"}))[39] == "95"
        record = store.totals_for("ATM00009", datetime.now(UTC).date())
        assert record is not None and not record.comparison.agree
        assert record.comparison.difference.withdrawal_amount == 2000
