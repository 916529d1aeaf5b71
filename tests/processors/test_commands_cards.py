"""Commands: card issuance, status changes, replacement, PINs through a real software HSM, card limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from processors.cardnumber import cell_of_pan, luhn_valid, make_pan
from processors.commands import CellCommands, CommandError
from processors.model import Card, CardStatus, Sequence

from .commands_kit import DATA_KEYS, Clock, credit_customer, customer_with_checking, make_commands, pin_block, run

HSM = SoftwareHsm(Lmk.thales_test())


async def issue(commands: CellCommands, customer: str, **args: object) -> dict[str, Any]:
    return await run(commands, "card.issue", customer=customer, product="debit-classic", **args)


async def test_issue_encodes_bin_and_cell_and_keeps_only_hash_last4_and_sealed_pan() -> None:
    commands = make_commands(cell=1, cell_count=2)
    customer = await customer_with_checking(commands, "DEMO-BOB")
    result, effects = await commands.run("card.issue", {"customer": customer, "product": "debit-classic"})
    pan = str(result["pan"])
    assert pan == make_pan("476173", 1, 1) and luhn_valid(pan) and cell_of_pan(pan) == 1
    assert result["masked_pan"] == pan[:6] + "******" + pan[-4:]
    assert result["status"] == "inactive" and result["expiry"] == "2903"  # 2026-03 + 36 months
    assert result["accounts"] == {"20": "0100000001"} and result["account"] == "0100000001"
    card = commands.state.cards[str(result["card"])]
    assert card.id == "K0100000001" and card.pan_hash == DATA_KEYS.pan_hash(pan) and card.last4 == pan[-4:]
    assert DATA_KEYS.open(card.pan_sealed) == pan.encode()
    assert commands.state.cards_by_hash[card.pan_hash] is card
    assert {kind for kind, _ in effects.rows} == {Sequence, Card}
    stored = json.dumps([row for _, row in effects.rows], default=str)
    assert pan not in stored  # the writer never sees the clear PAN
    shown = await run(commands, "card.show", card=pan)
    assert "pan" not in shown and pan not in json.dumps(shown)
    assert shown == await run(commands, "card.show", card=card.id)


async def test_debit_card_links_checking_and_savings_and_credit_card_its_credit_account() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    savings = (await run(commands, "account.open", customer=customer, kind="savings",
                         product="debit-classic"))["account"]
    debit = await issue(commands, customer)
    assert debit["accounts"] == {"20": "0000000001", "10": savings} and debit["account"] == "0000000001"
    on_savings = await issue(commands, customer, account=savings)
    assert on_savings["account"] == savings
    _, credit_account = await credit_customer(commands)
    holder = commands.state.accounts[credit_account].customer_id
    credit = await run(commands, "card.issue", customer=holder, product="credit-gold", activate=True)
    assert credit["accounts"] == {"30": credit_account} and credit["status"] == "active"
    assert str(credit["pan"]).startswith("52000000") and credit["expiry"] == "3003"
    with pytest.raises(CommandError, match="has no active checking or savings account in USD; open one first"):
        await commands.run("card.issue", {"customer": holder, "product": "debit-classic"})
    with pytest.raises(CommandError, match="cannot back a credit card"):
        await commands.run("card.issue", {"customer": customer, "product": "credit-gold", "account": savings})


async def test_vanity_numbers_and_the_sequence_skips_them() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    vanity = await issue(commands, customer, vanity="0000001")
    assert vanity["pan"] == make_pan("476173", 0, 1)
    with pytest.raises(CommandError, match=r"476173\*+\d{4} is already issued"):
        await commands.run("card.issue", {"customer": customer, "product": "debit-classic", "vanity": "0000001"})
    with pytest.raises(CommandError, match="exactly 7 digits"):
        await commands.run("card.issue", {"customer": customer, "product": "debit-classic", "vanity": "12"})
    following = await issue(commands, customer)
    assert following["pan"] == make_pan("476173", 0, 2)  # 1 is taken by the vanity card
    assert commands.state.sequences["pan:476173"].value == 2


async def test_expiry_argument_and_activation_rules() -> None:
    clock = Clock()
    commands = make_commands(clock=clock)
    customer = await customer_with_checking(commands)
    with pytest.raises(CommandError, match="2602 is in the past"):
        await issue(commands, customer, expiry="2602")
    with pytest.raises(CommandError, match="expected YYMM"):
        await issue(commands, customer, expiry="2613")
    card = await issue(commands, customer, expiry="2603")
    assert card["expiry"] == "2603"
    clock.now = clock.now.replace(month=4)
    with pytest.raises(CommandError, match="expired"):
        await commands.run("card.activate", {"card": card["card"]})
    fresh = await issue(commands, customer)
    assert (await run(commands, "card.activate", card=fresh["card"]))["status"] == "active"
    with pytest.raises(CommandError, match="only an inactive card is activated"):
        await commands.run("card.activate", {"card": fresh["card"]})


async def test_block_unblock_lost_and_stolen() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    card = str((await issue(commands, customer, activate=True))["card"])
    blocked = await run(commands, "card.block", card=card, status="blocked", reason="fraud check")
    assert blocked["status"] == "blocked" and blocked["status_reason"] == "fraud check"
    assert (await run(commands, "card.unblock", card=card))["status"] == "active"
    with pytest.raises(CommandError, match="must be one of blocked, lost, stolen"):
        await commands.run("card.block", {"card": card, "status": "replaced", "reason": "x"})
    await run(commands, "card.block", card=card, status="lost", reason="phone call")
    with pytest.raises(CommandError, match="lost and stolen cards are replaced"):
        await commands.run("card.unblock", {"card": card})
    with pytest.raises(CommandError, match="already lost"):
        await commands.run("card.block", {"card": card, "status": "stolen", "reason": "x"})


async def test_unblock_restores_the_status_before_the_block() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    card = str((await issue(commands, customer))["card"])  # never activated
    await run(commands, "card.block", card=card, status="blocked", reason="fraud check")
    assert commands.state.cards[card].status_before_block == "inactive"
    unblocked = await run(commands, "card.unblock", card=card)
    assert unblocked["status"] == "inactive" and commands.state.cards[card].status_before_block == ""
    assert (await run(commands, "card.activate", card=card))["status"] == "active"


async def test_replace_with_the_same_number_keeps_pan_and_pin() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    old = await issue(commands, customer, activate=True)
    pan = str(old["pan"])
    await run(commands, "card.set_pin", card=pan, pin_block=pin_block(commands, pan))
    await run(commands, "card.set_limits", card=pan, channel="atm", per_txn=1_000)
    new = await run(commands, "card.replace", card=old["card"], new_number=False, reason="damaged")
    assert new["pan"] == pan and new["card"] != old["card"] and new["replaces"] == old["card"]
    assert new["psn"] == "01" and new["pin_set"] and new["status"] == "inactive"
    assert new["limits"] == {"atm": {"per_txn": 1_000}}
    state = commands.state
    assert state.cards[str(old["card"])].status == CardStatus.REPLACED
    assert state.cards_by_hash[DATA_KEYS.pan_hash(pan)].id == new["card"]
    with pytest.raises(CommandError, match="already replaced"):
        await commands.run("card.replace", {"card": old["card"], "new_number": False, "reason": "again"})


async def test_replace_with_a_new_number_leaves_the_old_pan_answering_replaced() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    old = await issue(commands, customer, activate=True)
    new = await run(commands, "card.replace", card=old["pan"], new_number=True, reason="stolen", activate=True)
    assert new["pan"] != old["pan"] and not new["pin_set"] and new["psn"] == "00" and new["status"] == "active"
    old_card = commands.state.cards_by_hash[DATA_KEYS.pan_hash(str(old["pan"]))]
    assert old_card.id == old["card"] and old_card.status == CardStatus.REPLACED  # the engine answers 14
    assert commands.state.cards_by_hash[DATA_KEYS.pan_hash(str(new["pan"]))].id == new["card"]


async def test_same_number_replacement_gets_a_new_expiry_so_the_old_stripe_fails() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    old = await issue(commands, customer, activate=True)  # issued today: validity from today is the same month
    new = await run(commands, "card.replace", card=old["pan"], new_number=False, reason="damaged")
    assert new["pan"] == old["pan"] and new["expiry"] != old["expiry"] and new["expiry"] > old["expiry"]
    with pytest.raises(CommandError, match="replaced card's expiry"):
        again = await run(commands, "card.replace", card=old["pan"], new_number=False, reason="x",
                          expiry=new["expiry"])
    again = await run(commands, "card.replace", card=old["pan"], new_number=False, reason="x", expiry="3112")
    assert again["expiry"] == "3112"


async def test_lost_or_stolen_card_is_not_replaced_with_the_same_number() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    for status in ("lost", "stolen"):
        old = await issue(commands, customer, activate=True)
        await run(commands, "card.block", card=old["card"], status=status, reason="thief")
        with pytest.raises(CommandError, match=f"is {status}: it is replaced with a new number"):
            await commands.run("card.replace", {"card": old["pan"], "new_number": False, "reason": status})
        assert commands.state.cards[str(old["card"])].status == CardStatus(status)
        new = await run(commands, "card.replace", card=old["pan"], new_number=True, reason=status)
        assert new["pan"] != old["pan"]


async def test_same_number_replacement_needs_the_pan_without_unseal() -> None:
    commands = make_commands(unseal=False)
    customer = await customer_with_checking(commands)
    old = await issue(commands, customer)
    with pytest.raises(CommandError, match="name the card by its PAN"):
        await commands.run("card.replace", {"card": old["card"], "new_number": False, "reason": "x"})
    new = await run(commands, "card.replace", card=old["pan"], new_number=False, reason="x")
    assert new["pan"] == old["pan"]


async def test_set_pin_stores_the_hsm_pvv_and_the_hsm_verifies_it() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    card = await issue(commands, customer, activate=True)
    pan = str(card["pan"])
    commands.state.cards[str(card["card"])].pin_tries = 2
    result = await run(commands, "card.set_pin", card=card["card"], pin_block=pin_block(commands, pan, "4821"))
    assert result["pin_set"] and result["pin_tries"] == 0
    stored = commands.state.cards[str(card["card"])]
    keys = commands.catalog.keys["demo"]
    account = pan[-13:-1]
    for pin, ok in (("4821", True), ("1234", False)):
        block = pin_block(commands, pan, pin)
        assert HSM.verify_pin_pvv("001", keys.zpk, keys.pvk, block, "01", account, stored.pvki, stored.pvv) is ok
    reset = await run(commands, "card.reset_pin", card=pan)
    assert not reset["pin_set"] and stored.pvv == ""


async def test_set_pin_refusals() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    card = await issue(commands, customer)
    pan = str(card["pan"])
    with pytest.raises(CommandError, match="16 hex digits"):
        await commands.run("card.set_pin", {"card": pan, "pin_block": "12345"})
    with pytest.raises(CommandError, match="HSM refused the PIN block"):  # garbage decrypts to no valid block
        await commands.run("card.set_pin", {"card": pan, "pin_block": "0" * 16})
    no_hsm = make_commands(with_hsm=False, state=commands.state)
    with pytest.raises(CommandError, match="no HSM configured"):
        await no_hsm.run("card.set_pin", {"card": pan, "pin_block": pin_block(commands, pan)})
    assert not commands.state.cards[str(card["card"])].pvv


async def test_card_limits_set_and_remove() -> None:
    commands = make_commands()
    customer = await customer_with_checking(commands)
    card = (await issue(commands, customer))["card"]
    result = await run(commands, "card.set_limits", card=card, channel="pos", per_txn=2_000, daily_count=3)
    assert result["limits"] == {"pos": {"per_txn": 2_000, "daily_count": 3}}
    result = await run(commands, "card.set_limits", card=card, channel="pos", per_txn=None)
    assert result["limits"] == {"pos": {"daily_count": 3}}
    result = await run(commands, "card.set_limits", card=card, channel="pos", daily_count=None)
    assert result["limits"] == {}
    with pytest.raises(CommandError, match="must be one of atm, pos"):
        await commands.run("card.set_limits", {"card": card, "channel": "branch", "per_txn": 1})
    with pytest.raises(CommandError, match="give at least one"):
        await commands.run("card.set_limits", {"card": card, "channel": "pos"})


async def test_unknown_cards_are_named_masked() -> None:
    commands = make_commands(cell=0, cell_count=2)
    other_cell = make_pan("476173", 1, 5)
    with pytest.raises(CommandError) as info:
        await commands.run("card.show", {"card": other_cell})
    assert other_cell not in str(info.value) and "its number says cell 1" in str(info.value)
    with pytest.raises(CommandError, match="Luhn check failed"):
        await commands.run("card.show", {"card": other_cell[:-1] + str((int(other_cell[-1]) + 1) % 10)})
    with pytest.raises(CommandError, match="unknown card K0000000009"):
        await commands.run("card.show", {"card": "K0000000009"})
