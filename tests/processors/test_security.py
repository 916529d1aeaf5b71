"""PIN (VISA PVV), CVV / iCVV and ARQC/ARPC through the engine with a real software HSM (Thales test LMK)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hsm.inprocess import SoftwareBackend
from hsm.thales.errors import HsmUnavailableError
from processors import emvtlv, security
from processors.model import Card, Txn
from tests.processors.engine_kit import (
    CREDIT_PAN_1,
    DEBIT_PAN,
    KEYS,
    PIN,
    SOFT_HSM,
    World,
    atm,
    icc_data,
    make_world,
    pin_block,
    request,
    set_pin,
    track2,
)

CHECKING = "0100000011"


@pytest.fixture
def world() -> World:
    w = make_world(hsm=True)
    set_pin(w, DEBIT_PAN)
    return w


def reason(decision: Any) -> str:
    return next(str(row["decline_reason"]) for k, row in decision.effects.rows if k is Txn)


async def test_correct_pin_approves(world: World) -> None:
    decision = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
    assert decision.response is not None and decision.response[39] == "00"


async def test_wrong_pin_55_then_75_and_correct_pin_after_is_still_75(world: World) -> None:
    card = world.card(DEBIT_PAN)
    for tries in (1, 2):
        decision = await world.ahandle(atm("010000", 1_000, f52=pin_block("9999", DEBIT_PAN)))
        assert decision.response is not None and decision.response[39] == "55"
        assert card.pin_tries == tries
    third = await world.ahandle(atm("010000", 1_000, f52=pin_block("9999", DEBIT_PAN)))
    assert third.response[39] == "75" and card.pin_tries == 3  # type: ignore[index]
    blocked = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
    assert blocked.response[39] == "75" and reason(blocked) == "PIN tries exceeded"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000


async def test_correct_pin_resets_tries(world: World) -> None:
    card = world.card(DEBIT_PAN)
    await world.ahandle(atm("010000", 1_000, f52=pin_block("0000", DEBIT_PAN)))
    assert card.pin_tries == 1
    decision = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
    assert decision.response[39] == "00" and card.pin_tries == 0  # type: ignore[index]
    assert any(k.__name__ == "Card" and row["pin_tries"] == 0 for k, row in decision.effects.rows)


async def test_pin_block_for_another_pan_is_wrong_pin(world: World) -> None:
    decision = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, "4761730100000037")))
    assert decision.response[39] == "55"  # type: ignore[index]


async def test_card_without_pvv_answers_55(world: World) -> None:
    world.card(DEBIT_PAN).pvv = ""
    decision = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
    assert decision.response[39] == "55" and reason(decision) == "no PIN set for the card"  # type: ignore[index]


async def test_no_hsm_means_96_and_nothing_recorded() -> None:
    world = make_world(hsm=False)
    world.card(DEBIT_PAN).pvv = "1234"
    decision = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
    assert decision.response[39] == "96" and not decision.effects  # type: ignore[index]


class DownHsm(SoftwareBackend):
    async def verify_pin_pvv(self, *args: Any, **kwargs: Any) -> bool:
        raise HsmUnavailableError("connection dropped")


async def test_hsm_unreachable_96_and_pin_tries_untouched(world: World) -> None:
    world.engine.hsm = DownHsm(SOFT_HSM)
    decision = await world.ahandle(atm("010000", 1_000, f52=pin_block("9999", DEBIT_PAN)))
    assert decision.response[39] == "96"  # type: ignore[index]
    assert world.card(DEBIT_PAN).pin_tries == 0 and not decision.effects


async def test_cvv_on_magnetic_stripe_track2(world: World) -> None:
    card = world.card(DEBIT_PAN)
    good = await world.ahandle(request("0200", "000000", 500, f22="901", f35=track2(DEBIT_PAN, card)))
    assert good.response[39] == "00"  # type: ignore[index]
    real = track2(DEBIT_PAN, card)[-3:]
    wrong = "000" if real != "000" else "111"
    bad = await world.ahandle(request("0200", "000000", 500, f22="901", f35=track2(DEBIT_PAN, card, cvv=wrong)))
    assert bad.response[39] == "05" and reason(bad) == "CVV mismatch"  # type: ignore[index]


async def test_icvv_on_chip_and_stripe_cvv_refused_on_chip(world: World) -> None:
    card = world.card(DEBIT_PAN)
    chip = await world.ahandle(request("0200", "000000", 500, f22="051", f35=track2(DEBIT_PAN, card, chip=True)))
    assert chip.response[39] == "00"  # type: ignore[index]
    stripe_cvv = track2(DEBIT_PAN, card)  # a skimmed stripe replayed as chip: the CVV is not the iCVV
    if stripe_cvv[-3:] != track2(DEBIT_PAN, card, chip=True)[-3:]:
        bad = await world.ahandle(request("0200", "000000", 500, f22="051", f35=stripe_cvv))
        assert bad.response[39] == "05" and reason(bad) == "iCVV mismatch"  # type: ignore[index]


async def test_arqc_cvn18_verified_and_arpc_in_de55(world: World) -> None:
    card = world.card(DEBIT_PAN)
    icc = icc_data(DEBIT_PAN, card.psn, 18, 2_000)
    decision = await world.ahandle(request("0200", "000000", 2_000, f22="051", f55=icc))
    response = decision.response
    assert response is not None and response[39] == "00"
    tag91 = emvtlv.parse(bytes(response[55]))["91"]  # type: ignore[arg-type]
    assert len(tag91) == 8 and tag91[4:] == bytes.fromhex("00800000")
    arqc = emvtlv.parse(icc)["9F26"].hex().upper()
    expected = SOFT_HSM.generate_arpc(KEYS.imk_ac, 18, DEBIT_PAN, card.psn, "0012", arqc, csu="00800000")
    assert tag91[:4].hex().upper() == expected


async def test_arqc_cvn10_arpc_carries_the_arc(world: World) -> None:
    card = world.card(CREDIT_PAN_1)
    icc = icc_data(CREDIT_PAN_1, card.psn, 10, 2_000)
    decision = await world.ahandle(request("0200", "000000", 2_000, pan=CREDIT_PAN_1, f22="051", f55=icc))
    assert decision.response is not None and decision.response[39] == "00"
    tag91 = emvtlv.parse(bytes(decision.response[55]))["91"]  # type: ignore[arg-type]
    assert len(tag91) == 10 and tag91[8:] == b"00"


async def test_bad_arqc_05_with_declining_arpc(world: World) -> None:
    card = world.card(DEBIT_PAN)
    icc = icc_data(DEBIT_PAN, card.psn, 18, 2_000, tamper=True)
    decision = await world.ahandle(request("0200", "000000", 2_000, f22="051", f55=icc))
    assert decision.response is not None and decision.response[39] == "05"
    assert reason(decision) == "ARQC did not verify"
    assert 55 not in decision.response  # no ARPC for a cryptogram that did not verify
    assert world.account(CHECKING).ledger_balance == 100_000


async def test_malformed_icc_data_05(world: World) -> None:
    decision = await world.ahandle(request("0200", "000000", 2_000, f22="051", f55=b"\x9f\x26\x08\x01"))
    assert decision.response[39] == "05"  # type: ignore[index]


async def test_declined_for_funds_still_gets_arpc_with_decline(world: World) -> None:
    card = world.card(DEBIT_PAN)
    icc = icc_data(DEBIT_PAN, card.psn, 18, 150_000)
    decision = await world.ahandle(request("0200", "000000", 150_000, f22="051", f55=icc))
    assert decision.response is not None and decision.response[39] == "51"
    assert emvtlv.parse(bytes(decision.response[55]))["91"][4:] == bytes(4)  # type: ignore[arg-type]


def test_track2_parsing() -> None:
    parsed = security.parse_track2("4761730100000011=29122011123412F")
    assert parsed is not None and (parsed.expiry, parsed.service_code, parsed.cvv) == ("2912", "201", "12")
    assert security.parse_track2("4761730100000011") is None
    assert security.parse_track2("47617301D2912") is None
    full = security.parse_track2("4761730100000011D291220112345678")
    assert full is not None and full.cvv == "678"


def test_tlv_round_trip_and_errors() -> None:
    objects = [("9F26", bytes(8)), ("82", b"\x39\x00"), ("9F10", bytes(200))]
    assert list(emvtlv.parse(emvtlv.build(objects)).items()) == objects
    with pytest.raises(emvtlv.TlvError):
        emvtlv.parse(b"\x9f")
    with pytest.raises(emvtlv.TlvError):
        emvtlv.parse(b"\x82\x05\x00")


async def test_concurrent_identical_requests_decide_once(world: World) -> None:
    import trio

    msg = atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN))
    codes: list[str] = []

    async def send() -> None:
        decision = await world.ahandle(msg.copy())
        codes.append(str(decision.response[39]))  # type: ignore[index]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        nursery.start_soon(send)
    assert sorted(codes) == ["00", "94"]
    assert world.account(CHECKING).ledger_balance == 99_000


# -- the cryptogram is bound to the request and used once (ATC) ---------------------------------------------

async def test_arqc_for_another_amount_is_declined(world: World) -> None:
    card = world.card(DEBIT_PAN)
    icc = icc_data(DEBIT_PAN, card.psn, 18, 100)  # the card signed 1.00
    decision = await world.ahandle(request("0200", "000000", 90_000, f22="051", f55=icc))
    assert decision.response[39] == "05" and reason(decision) == "ARQC amount (9F02) is not DE 4"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000


async def test_arqc_for_another_currency_is_declined(world: World) -> None:
    card = world.card(DEBIT_PAN)
    icc = icc_data(DEBIT_PAN, card.psn, 18, 2_000)  # 5F2A 0840
    decision = await world.ahandle(request("0200", "000000", 2_000, f22="051", f55=icc, f49="978",
                                           f6="000000002000", f51="840"))
    assert decision.response[39] == "05" and reason(decision) == "ARQC currency (5F2A) is not DE 49"  # type: ignore[index]


async def test_replayed_atc_is_declined_and_last_atc_is_recorded(world: World) -> None:
    card = world.card(DEBIT_PAN)
    icc = icc_data(DEBIT_PAN, card.psn, 18, 2_000, atc="0012")
    first = await world.ahandle(request("0200", "000000", 2_000, f22="051", f55=icc))
    assert first.response[39] == "00" and card.last_atc == 0x12  # type: ignore[index]
    assert any(kind is Card and row["last_atc"] == 0x12 for kind, row in first.effects.rows)
    replay = await world.ahandle(request("0200", "000000", 2_000, f22="051", f55=icc))
    assert replay.response[39] == "05" and reason(replay) == "ATC replay"  # type: ignore[index]
    older = await world.ahandle(request("0200", "000000", 2_000, f22="051",
                                        f55=icc_data(DEBIT_PAN, card.psn, 18, 2_000, atc="0011")))
    assert older.response[39] == "05" and reason(older) == "ATC replay"  # type: ignore[index]
    newer = await world.ahandle(request("0200", "000000", 2_000, f22="051",
                                        f55=icc_data(DEBIT_PAN, card.psn, 18, 2_000, atc="0013")))
    assert newer.response[39] == "00" and card.last_atc == 0x13  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 - 4_000


async def test_track2_of_another_expiry_is_declined_54(world: World) -> None:
    """A stripe of an older plastic with the same number (valid CVV for its own expiry) no longer works."""
    card = world.card(DEBIT_PAN)
    old_cvv = SOFT_HSM.generate_cvv(KEYS.cvk, DEBIT_PAN, "2401", card.service_code)
    track = f"{DEBIT_PAN}=2401{card.service_code}{card.pvki}0000{old_cvv}"
    decision = await world.ahandle(request("0200", "000000", 5_000, f35=track, f22="901"))
    assert decision.response[39] == "54"  # type: ignore[index]
    assert reason(decision) == "track 2 expiry does not match the card"


class _GatedArpc(SoftwareBackend):
    """A network HSM that answers ARPC generation only when the test opens the gate."""

    gate: trio.Event

    async def generate_arpc(self, *args: Any, **kwargs: Any) -> str:
        await self.gate.wait()
        return await super().generate_arpc(*args, **kwargs)


async def test_decision_returns_before_the_arpc_so_snapshots_keep_their_order(world: World) -> None:
    """The ARPC is a follow-up (Decision.finish): handle() returns with its effects while the HSM is still
    generating it, so a later decision's effects cannot reach the writer first."""
    hsm = _GatedArpc(SOFT_HSM)
    hsm.gate = trio.Event()
    world.engine.hsm = hsm
    card = world.card(DEBIT_PAN)
    chip = request("0200", "000000", 1_000, f22="051", f55=icc_data(DEBIT_PAN, card.psn, 18, 1_000))
    with trio.fail_after(5):
        decision = await world.engine.handle(chip)  # must not wait for the gated ARPC
    assert decision.response is not None and decision.response[39] == "00" and 55 not in decision.response
    assert decision.finish is not None
    later = world.handle(request("0200", "000000", 2_000))  # decided after: its snapshot is the newer one
    balances = [row["ledger_balance"] for effects in (decision.effects, later.effects)
                for kind, row in effects.rows if kind.__name__ == "Account"]
    assert balances == [99_000, 97_000]
    hsm.gate.set()
    with trio.fail_after(5):
        await decision.finish()
    assert "91" in emvtlv.parse(bytes(decision.response[55]))  # type: ignore[arg-type]


async def test_atm_cash_without_pin_is_55_where_the_product_requires_a_pin(world: World) -> None:
    import dataclasses

    from tests.processors.engine_kit import CATALOG

    product = CATALOG.products["debit"]
    strict = dataclasses.replace(product, pin_required=frozenset({"atm"}))
    world.engine.catalog.products["debit"] = strict
    try:
        no_pin = await world.ahandle(atm("010000", 1_000))
        assert no_pin.response is not None and no_pin.response[39] == "55"
        assert reason(no_pin) == "PIN required on the atm channel"
        with_pin = await world.ahandle(atm("010000", 1_000, f52=pin_block(PIN, DEBIT_PAN)))
        assert with_pin.response is not None and with_pin.response[39] == "00"
        balance = await world.ahandle(atm("301000", None))  # an inquiry moves no money: no PIN rule
        assert balance.response is not None and balance.response[39] == "00"
        pos = await world.ahandle(request("0200", "000000", 1_000))  # the rule is per channel
        assert pos.response is not None and pos.response[39] == "00"
    finally:
        world.engine.catalog.products["debit"] = product
