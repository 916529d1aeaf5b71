"""PIN change at an ATM (0200, DE 3 92xxxx / 70xxxx) through the cell's engine with a real software HSM (Thales test
LMK): the current PIN verified like a withdrawal's, the new PIN's PVV from the HSM (FW), stored with an audit event;
repeats, reversals (the PIN before it restored), and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from hsm.inprocess import SoftwareBackend
from hsm.thales.errors import HsmUnavailableError
from processors.model import CardEvent, CardEventKind, ExceptionItem, Posting, Txn, TxnStatus
from switch.model.message import Message
from tests.processors.engine_kit import (
    DEBIT_PAN,
    GIFT_PAN,
    KEYS,
    OTHER_PAN,
    PIN,
    SOFT_HSM,
    World,
    atm,
    make_world,
    pin_block,
    request,
    reversal_of,
    set_pin,
)

CHECKING = "0100000011"
NEW_PIN = "4321"


@pytest.fixture
def world() -> World:
    w = make_world(hsm=True)
    set_pin(w, DEBIT_PAN)
    return w


def pin_change(current: str = PIN, new: str | None = NEW_PIN, pc: str = "920000", pan: str = DEBIT_PAN,
               **extra: str | bytes) -> Message:
    """A PIN change as the switch delivers it: both PIN blocks under the cell's ZPK."""
    fields: dict[str, str | bytes] = {"f52": pin_block(current, pan)}
    if new is not None:
        fields["f125"] = pin_block(new, pan).hex().upper()
    fields.update(extra)
    return atm(pc, 0, pan, **fields)


def withdrawal(pin: str, pan: str = DEBIT_PAN) -> Message:
    return atm("012000", 2_000, pan, f52=pin_block(pin, pan))


def code(decision: Any) -> str:
    assert decision.response is not None
    return str(decision.response[39])


def rows(decision: Any, kind: type) -> list[dict[str, Any]]:
    return [row for k, row in decision.effects.rows if k is kind]


def events(world: World, kind: CardEventKind | None = None) -> list[CardEvent]:
    return [e for e in world.state.card_events.values() if kind is None or e.kind == kind]


async def test_pin_change_stores_the_new_pvv_and_the_new_pin_works_the_old_does_not(world: World) -> None:
    card = world.card(DEBIT_PAN)
    old_pvv = card.pvv
    decision = await world.ahandle(pin_change())
    response = decision.response
    assert response is not None and response.mti == "0210" and response[39] == "00"
    assert len(str(response[38])) == 6 and 54 not in response.fields
    expected = SOFT_HSM.generate_pvv("001", KEYS.zpk, KEYS.pvk, pin_block(NEW_PIN, DEBIT_PAN).hex().upper(), "01",
                                     DEBIT_PAN, card.pvki)
    assert card.pvv == expected != old_pvv and card.pin_tries == 0
    txn = rows(decision, Txn)[0]
    assert (txn["txn_type"], txn["status"], txn["amount"], txn["posting_id"]) == ("pin_change", "approved", 0, None)
    assert card.pin_set_by == txn["id"]
    assert rows(decision, Posting) == [] and world.account(CHECKING).ledger_balance == 100_000
    (event,) = rows(decision, CardEvent)
    assert (event["kind"], event["txn_id"], event["previous_pvv"], event["terminal"]) == (
        CardEventKind.PIN_CHANGED, txn["id"], old_pvv, "TERM0001")
    assert code(await world.ahandle(withdrawal(NEW_PIN))) == "00"
    assert code(await world.ahandle(withdrawal(PIN))) == "55"
    assert world.account(CHECKING).ledger_balance == 100_000 - 2_000


async def test_visa_code_70_is_a_pin_change_too(world: World) -> None:
    assert code(await world.ahandle(pin_change(pc="700000"))) == "00"
    assert code(await world.ahandle(withdrawal(NEW_PIN))) == "00"


async def test_a_new_pin_equal_to_the_old_one_is_allowed(world: World) -> None:
    card = world.card(DEBIT_PAN)
    before = card.pvv
    assert code(await world.ahandle(pin_change(new=PIN))) == "00"
    assert card.pvv == before and len(events(world, CardEventKind.PIN_CHANGED)) == 1


async def test_wrong_current_pin_is_55_and_counts_then_75(world: World) -> None:
    card = world.card(DEBIT_PAN)
    before = card.pvv
    for tries in (1, 2):
        assert code(await world.ahandle(pin_change(current="9999"))) == "55"
        assert card.pin_tries == tries
    assert code(await world.ahandle(pin_change(current="9999"))) == "75"
    assert code(await world.ahandle(pin_change())) == "75"  # tries used up: not even the right PIN changes it
    assert card.pvv == before and events(world) == []
    assert code(await world.ahandle(withdrawal(PIN))) == "75"


async def test_a_successful_change_resets_the_tries(world: World) -> None:
    card = world.card(DEBIT_PAN)
    await world.ahandle(pin_change(current="0000"))
    assert card.pin_tries == 1
    assert code(await world.ahandle(pin_change())) == "00" and card.pin_tries == 0


@pytest.mark.parametrize("de125", ["", "12345", "0123456789ABCDEG", "0123456789ABCDEF00"])
async def test_a_de125_that_is_not_16_hex_characters_is_30_and_costs_no_try(world: World, de125: str) -> None:
    card = world.card(DEBIT_PAN)
    before = card.pvv
    request_ = pin_change(current="9999", new=None)  # even a wrong current PIN is not tried
    if de125:
        request_[125] = de125
    decision = await world.ahandle(request_)
    assert code(decision) == "30" and card.pin_tries == 0 and card.pvv == before
    assert rows(decision, Txn)[0]["decline_reason"].startswith("new PIN block (DE 125)")


async def test_no_current_pin_block_is_30(world: World) -> None:
    request_ = pin_change()
    del request_.fields[52]
    assert code(await world.ahandle(request_)) == "30"


async def test_a_new_pin_block_that_holds_no_pin_is_30_and_the_pin_stays(world: World) -> None:
    card = world.card(DEBIT_PAN)
    before = card.pvv
    unreadable = pin_change(f125=pin_block(NEW_PIN, OTHER_PAN).hex().upper())  # formed with another PAN
    decision = await world.ahandle(unreadable)
    assert code(decision) == "30" and card.pvv == before and events(world) == []
    assert "holds no PIN" in rows(decision, Txn)[0]["decline_reason"]


async def test_repeat_0201_gets_the_first_answer_without_the_hsm(world: World) -> None:
    first = pin_change()
    decision = await world.ahandle(first)
    repeat = Message("0201", dict(first.fields))
    again = world.engine.decide(repeat)  # decided without the HSM: no second change
    assert again is not None and again.response is not None
    assert (again.response.mti, again.response[39], again.response[38]) == ("0210", "00", decision.response[38])  # type: ignore[index]
    assert len(events(world)) == 1
    assert code(await world.ahandle(withdrawal(NEW_PIN))) == "00"


async def test_pin_change_not_permitted_by_the_product_is_57(world: World) -> None:
    set_pin(world, GIFT_PAN)
    assert code(await world.ahandle(pin_change(pan=GIFT_PAN))) == "57"


async def test_a_pin_change_as_an_authorization_is_12(world: World) -> None:
    assert code(await world.ahandle(request("0100", "920000", 0, f52=pin_block(PIN, DEBIT_PAN),
                                            f125=pin_block(NEW_PIN, DEBIT_PAN).hex().upper()))) == "12"


async def test_a_pin_change_advice_is_not_applied(world: World) -> None:
    card = world.card(DEBIT_PAN)
    before = card.pvv
    decision = await world.ahandle(request("0220", "920000", 0, f18="6011"))
    assert code(decision) == "12" and card.pvv == before
    assert rows(decision, ExceptionItem)[0]["kind"] == "advice_declined"


class DownForFw(SoftwareBackend):
    async def generate_pvv(self, *args: Any, **kwargs: Any) -> str:
        raise HsmUnavailableError("connection dropped")


async def test_hsm_down_for_the_new_pvv_is_96_and_changes_nothing(world: World) -> None:
    world.engine.hsm = DownForFw(SOFT_HSM)
    card = world.card(DEBIT_PAN)
    card.pin_tries = 1
    before = card.pvv
    decision = await world.ahandle(pin_change())
    assert code(decision) == "96" and not decision.effects
    assert card.pvv == before and card.pin_tries == 1


class CountingFw(SoftwareBackend):
    calls = 0

    async def generate_pvv(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        return await super().generate_pvv(*args, **kwargs)


async def test_the_new_pin_goes_to_the_hsm_only_after_the_current_one_verified(world: World) -> None:
    hsm = CountingFw(SOFT_HSM)
    world.engine.hsm = hsm
    assert code(await world.ahandle(pin_change(current="9999"))) == "55"
    assert hsm.calls == 0
    assert code(await world.ahandle(pin_change())) == "00"
    assert hsm.calls == 1


# -- reversal ----------------------------------------------------------------------------------------------


async def test_reversal_restores_the_pin_before_the_change_once(world: World) -> None:
    card = world.card(DEBIT_PAN)
    old_pvv = card.pvv
    change = pin_change()
    await world.ahandle(change)
    reversal = reversal_of(change, "0420", f39="68")
    decision = await world.ahandle(reversal)
    assert decision.response is not None and decision.response.mti == "0430" and decision.response[39] == "00"
    assert card.pvv == old_pvv and card.pin_set_by == ""
    txns = {row["id"]: row for row in rows(decision, Txn)}
    assert any(row["original_id"] and row["txn_type"] == "pin_change" for row in txns.values())
    assert any(row["status"] == TxnStatus.REVERSED for row in txns.values())
    (event,) = rows(decision, CardEvent)
    assert event["kind"] == CardEventKind.PIN_CHANGE_REVERSED and "restored" in event["detail"]
    assert code(await world.ahandle(withdrawal(PIN))) == "00"
    assert code(await world.ahandle(withdrawal(NEW_PIN))) == "55"
    # Its repeat, and another reversal of the same change, change nothing more.
    world.card(DEBIT_PAN).pin_tries = 0
    assert code(await world.ahandle(Message("0421", dict(reversal.fields)))) == "00"
    assert code(await world.ahandle(reversal_of(change, "0400"))) == "00"
    assert card.pvv == old_pvv and len(events(world, CardEventKind.PIN_CHANGE_REVERSED)) == 1


async def test_reversal_of_an_older_change_leaves_a_later_pin(world: World) -> None:
    first = pin_change()
    await world.ahandle(first)
    await world.ahandle(pin_change(current=NEW_PIN, new="5555"))
    decision = await world.ahandle(reversal_of(first, "0420"))
    assert code(decision) == "00" and "set again since" in decision.note
    assert code(await world.ahandle(withdrawal("5555"))) == "00"


async def test_reversal_after_an_operator_set_the_pin_leaves_it(world: World) -> None:
    change = pin_change()
    await world.ahandle(change)
    set_pin(world, DEBIT_PAN, "7777")  # what card.set_pin does: a new PVV, no PIN change behind it
    world.card(DEBIT_PAN).pin_set_by = ""
    await world.ahandle(reversal_of(change, "0420"))
    assert code(await world.ahandle(withdrawal("7777"))) == "00"


@pytest.mark.parametrize("replacement", [None, 0, 500])  # DE 95 means nothing to a PIN change: any reversal is whole
async def test_reversal_before_the_change_declines_it_when_it_arrives(world: World, replacement: int | None) -> None:
    change = pin_change()
    early = reversal_of(change, "0420", replacement=replacement)
    assert code(await world.ahandle(early)) == "25"
    card = world.card(DEBIT_PAN)
    before = card.pvv
    assert code(await world.ahandle(change)) == "05"
    assert card.pvv == before and events(world) == []


async def test_a_declined_change_reversed_is_acknowledged_and_changes_nothing(world: World) -> None:
    change = pin_change(current="9999")
    await world.ahandle(change)
    card = world.card(DEBIT_PAN)
    before = card.pvv
    assert code(await world.ahandle(reversal_of(change, "0420"))) == "00"
    assert card.pvv == before and events(world) == []
