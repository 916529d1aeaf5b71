"""The ATMP around its key exchange and its sweep: a MAC terminal that lost its working keys gets new ones, a key
confirmation reaches another node process, the sweep finds a withdrawal whose journal row committed late, and the
journal keeps the surcharge that went to the issuer."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from atmp.interface import build_key_confirmation, parse_key_exchange_answer
from atmp.model import Cassette
from atmp.storage import AtmStore
from schemes.atm import SCHEME as ATM
from switch.config import AtmpConfig
from switch.model.message import Message
from switch.runtime.atmhost import AtmHost
from switch.storage.models import JOURNAL
from tests.integration.test_atmp_node import HSM, Atm, _atm, _atmp_node, _now, _terminal
from tests.switch.storage.test_atmjournal import _row
from tests.switch.storage.test_journal import _store


async def _no_saf(_entries: list[tuple[str, Message, str]]) -> None:
    return None


# -- R2-1: a MAC terminal that lost its working keys can never get new ones ------------------------------------
async def test_a_mac_terminal_with_a_new_tmk_and_no_working_keys_gets_keys_again(
        tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00021", mac=True)]) as (node, _rec, store), \
            _atm(node, "ATM00021", mac=True) as atm:
        assert (await atm.key_exchange())[39] == "00"
        # The terminal's PIN pad is replaced: the new one holds only the TMK the custodians load now (README
        # "ATM processing (ATMP)": "A new TMK drops pending keys and makes a key exchange due ... the terminal sends
        # 161"). It has no TAK to MAC anything with.
        tmk2 = HSM.generate_key("002")
        store.load_tmk("ATM00021", tmk2.under_lmk, tmk2.kcv, at=datetime.now(UTC), actor="ops", how="components")
        assert node.atmp is not None
        await node.atmp.load()
        fresh = Atm("ATM00021", atm.conn, stan=atm.stan, mac=True)  # no tpk/tak
        exchange = await fresh.call("0800", {7: _now(), 70: "161"})  # bare: it has no TAK to MAC with
        assert exchange[39] == "00"
        keys = parse_key_exchange_answer(str(exchange[48]))
        tak = HSM.import_key("003", tmk2.under_lmk, keys.tak_under_tmk, zmk_type="002")
        tpk = HSM.import_key("002", tmk2.under_lmk, keys.tpk_under_tmk, zmk_type="002")
        confirm = {7: _now(), 70: "162", 48: build_key_confirmation(tpk.kcv, tak.kcv)}
        assert (await fresh.maced("0800", confirm, tak.under_lmk))[39] == "00"
        assert (await fresh.maced("0800", {7: _now(), 70: "001"}, tak.under_lmk))[39] == "00"  # signs on, MACed


# -- R2-2: the sweep's watermark passes a withdrawal whose journal row committed after a later one's ----------
async def test_the_sweep_assumes_a_silent_withdrawal_whose_row_committed_after_a_later_ones(db_engine: Engine) -> None:
    store = AtmStore(db_engine)
    now = datetime.now(UTC)
    terminal = replace(_terminal("ATM00001"), cassettes=(Cassette(1, "840", 2000, 500),))
    store.add_terminal(terminal, at=now - timedelta(hours=1), actor="test")
    store.set_status("ATM00001", "enable", at=now - timedelta(hours=1), actor="test")
    host = AtmHost(AtmpConfig(confirm_timeout_s=60), db_engine, None, listeners={"atm": ATM},
                   own_destinations=frozenset(), primary=True, route_of=lambda _m: None, saf_enqueue=_no_saf)
    await host.load()
    # withdrawal 2 (received at now-70 s) was answered at once; withdrawal 1 (received at now-90 s) waited on a slow
    # issuer and its row is not committed yet when the sweep runs
    _store(db_engine, [_row(2, now - timedelta(seconds=70), amount="000000002000")])
    assert await host.sweep(now=now) == 1
    _store(db_engine, [_row(1, now - timedelta(seconds=90), amount="000000002000")])  # committed now: approved
    assert await host.sweep(now=now + timedelta(seconds=30)) == 1, "withdrawal 1 is never taken as dispensed"


# -- R2-3: the journal row of a MAC terminal's withdrawal shows the terminal's DE 28, not what was sent -------
async def test_the_journal_keeps_the_surcharge_that_went_to_the_issuer(tmp_path: Path, db_url: str) -> None:
    async with _atmp_node(tmp_path, db_url, [_terminal("ATM00023", mac=True, surcharge=250)]) as (node, rec, store), \
            _atm(node, "ATM00023", mac=True) as atm:
        assert (await atm.key_exchange())[39] == "00"
        answer = await atm.maced("0200", {**atm.withdrawal(2000), 28: "C00000000"}, atm.tak)
        assert answer[39] == "00"
        [forwarded] = [m for m in rec.received if m.mti == "0200"]
        assert forwarded[28] == "D00000250"
        with store._engine.connect() as connection:
            request = connection.execute(select(JOURNAL.c.request).where(JOURNAL.c.mti_in == "0200")).scalar_one()
        request = json.loads(request) if isinstance(request, str) else request
        assert request.get("28") == "D00000250", request.get("28")


# -- R2-4: several node processes: the 162 reaches a process whose copy has no pending keys -------------------
async def test_a_key_confirmation_on_another_node_process_is_not_refused_63(db_engine: Engine) -> None:
    from hsm.inprocess import SoftwareBackend
    from switch.runtime import atmlocal
    from tests.integration.test_atmp_node import TMK

    store = AtmStore(db_engine)
    now = datetime.now(UTC)
    store.add_terminal(_terminal("ATM00024", mac=True), at=now, actor="test")
    store.set_status("ATM00024", "enable", at=now, actor="test")
    k1_tpk, k1_tak = HSM.generate_key("002"), HSM.generate_key("003")
    store.set_pending_keys("ATM00024", k1_tpk.under_lmk, k1_tak.under_lmk, (k1_tpk.kcv, k1_tak.kcv))
    assert store.confirm_keys("ATM00024", k1_tpk.kcv, k1_tak.kcv, now)

    def process() -> AtmHost:
        return AtmHost(AtmpConfig(), db_engine, SoftwareBackend(HSM), listeners={"atm": ATM},
                       own_destinations=frozenset(), primary=False, route_of=lambda _m: None, saf_enqueue=_no_saf)

    a, b = process(), process()
    await a.load()
    await b.load()

    def maced(fields: dict[int, str | bytes], tak: str) -> tuple[Message, bytes]:
        msg = Message("0800", {**fields, 11: "000001", 41: "ATM00024", 128: bytes(8)})
        msg[128] = bytes.fromhex(HSM.generate_mac("003", tak, ATM.encode(msg)[:-8], algorithm=3, padding=1))
        body = ATM.encode(msg)
        return ATM.decode(body), body

    # the 161 on process A's connection, MACed under the current TAK: the new keys come back under the TMK
    request, body = maced({7: _now(), 70: "161"}, k1_tak.under_lmk)
    assert await a.gates["atm"].verify_mac(request, body)
    answer = await atmlocal.answer(a.gates["atm"], request)
    keys = parse_key_exchange_answer(str(answer[48]))
    tak = HSM.import_key("003", TMK.under_lmk, keys.tak_under_tmk, zmk_type="002")
    # the line drops; the terminal reconnects and its 162, MACed under the new TAK, lands on process B
    confirm, body = maced({7: _now(), 70: "162", 48: build_key_confirmation(keys.tpk_kcv, keys.tak_kcv)},
                          tak.under_lmk)
    assert await b.gates["atm"].verify_mac(confirm, body), "a genuine key confirmation refused 63 on process B"
