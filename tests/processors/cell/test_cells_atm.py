"""The cell host with its real engine on a real socket: a card capture advice (0620, MTI class 6) is answered 0630
once its event and the card's new status are committed, and a PIN change's answer leaves after its new PVV is.

The node's cell link speaks the ``generic`` network (processors.cell.config), whose MTI classes are today 1, 2, 4 and
8 (schemes.iso87): it does not decode class 6 yet. The host takes the network it serves as a parameter; here it is
given the generic network with class 6, as the link will be once schemes/ defines it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from sqlalchemy import Engine

from processors.cell.host import CellHost
from processors.model import CardEventKind, CardStatus, Effects
from processors.storage import load_state, make_engine, upgrade, write_batch
from schemes.generic import SCHEME
from switch.model.message import Message
from switch.wire.framing import LengthFraming
from tests.processors.engine_kit import CATALOG, DEBIT_PAN, PIN, SOFT_HSM, World, atm, make_world, pan_hash, pin_block

WITH_CLASS_6 = dataclasses.replace(SCHEME, mti_classes=SCHEME.mti_classes | {"6"})


@asynccontextmanager
async def serving(db_url: str) -> AsyncIterator[tuple[CellHost, Engine, World]]:
    await trio.to_thread.run_sync(upgrade, db_url)
    db = make_engine(db_url)
    world = make_world(hsm=True)
    state = world.state
    rows = Effects()
    rows.add(*state.customers.values(), *state.credit_lines.values(), *state.accounts.values(), *state.cards.values())
    with db.begin() as connection:
        write_batch(connection, [rows])
    host = CellHost(1, world.engine, db, max_wait=0.001, adapter=WITH_CLASS_6)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(host.serve)
            yield host, db, world
            host.stop()
    finally:
        db.dispose()


async def call(port: int, request: Message) -> Message:
    framer = LengthFraming("binary2").framer()
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(framer.encode(WITH_CLASS_6.encode(request)))
            while True:
                framer.receive_data(await stream.receive_some(4096))
                frame = framer.next_frame()
                if frame is not None:
                    return WITH_CLASS_6.decode(frame.body)


def loaded(db: Engine, world: World) -> tuple[CardStatus, list[CardEventKind]]:
    state = load_state(db, 1, world.clock.now, CATALOG.bank.txn_retention_days)
    card = state.cards_by_hash[pan_hash(DEBIT_PAN)]
    return card.status, [e.kind for e in state.card_events.values()]


async def test_a_capture_advice_is_answered_0630_after_it_is_committed(db_url: str) -> None:
    async with serving(db_url) as (host, db, world):
        capture = Message("0620", {2: DEBIT_PAN, 7: "0615120500", 11: "000901", 41: "ATM00001", 60: "CAPTURED"})
        response = await call(host.port, capture)
        assert (response.mti, response[39], response[11], response[41]) == ("0630", "00", "000901", "ATM00001")
        assert await trio.to_thread.run_sync(loaded, db, world) == (CardStatus.CAPTURED, [CardEventKind.CAPTURED])
        repeat = await call(host.port, Message("0621", dict(capture.fields)))
        assert (repeat.mti, repeat[39]) == ("0630", "00")
        withdrawal = await call(host.port, atm("012000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
        assert withdrawal[39] == "04"
        assert host.stats()["received"] == {"0620": 1, "0621": 1, "0200": 1}


async def test_a_pin_change_is_answered_after_its_new_pvv_is_committed(db_url: str) -> None:
    async with serving(db_url) as (host, db, world):
        card = world.card(DEBIT_PAN)
        card.pvv = SOFT_HSM.generate_pvv("001", CATALOG.keys["test"].zpk, CATALOG.keys["test"].pvk,
                                         pin_block(PIN, DEBIT_PAN).hex().upper(), "01", DEBIT_PAN, card.pvki)
        change = atm("920000", 0, f52=pin_block(PIN, DEBIT_PAN), f125=pin_block("2468", DEBIT_PAN).hex().upper())
        response = await call(host.port, change)
        assert (response.mti, response[39]) == ("0210", "00")
        status, kinds = await trio.to_thread.run_sync(loaded, db, world)
        assert (status, kinds) == (CardStatus.ACTIVE, [CardEventKind.PIN_CHANGED])
        assert (await call(host.port, atm("012000", 1_000, f52=pin_block("2468", DEBIT_PAN))))[39] == "00"
