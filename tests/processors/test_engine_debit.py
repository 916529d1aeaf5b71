"""Debit authorizations through CellEngine: approvals, postings, balances, every decline code, limits, fees."""

from __future__ import annotations

import pytest

from processors.fields import channel_of
from processors.ledger import GL_FEES, GL_SETTLEMENT
from processors.model import Card, CardStatus, Posting, Txn, TxnStatus, Usage
from switch.model.message import Message
from tests.processors.engine_kit import (
    DEBIT_PAN,
    FOREIGN_ACQUIRER,
    GIFT_PAN,
    OTHER_PAN,
    SAVINGS_ONLY_PAN,
    World,
    atm,
    de54,
    make_world,
    request,
)

CHECKING = "0100000011"
SAVINGS = "0100000012"


@pytest.fixture
def world() -> World:
    return make_world()


def rows_of(decision_effects: object, kind: type) -> list[dict[str, object]]:
    return [row for k, row in decision_effects.rows if k is kind]  # type: ignore[attr-defined]


def test_purchase_posts_balanced_posting_and_balance_falls(world: World) -> None:
    decision = world.handle(request("0200", "000000", 12_345))
    response = decision.response
    assert response is not None and response.mti == "0210"
    assert response[39] == "00"
    assert len(str(response[38])) == 6
    assert world.account(CHECKING).ledger_balance == 100_000 - 12_345
    # DE 54: checking account (20), ledger (01) and available (02), USD 840, in credit.
    assert de54(response) == [("20", "01", "USD", 87_655), ("20", "02", "USD", 87_655)]
    assert str(response[54]).startswith("2001840C000000087655")
    postings = rows_of(decision.effects, Posting)
    assert len(postings) == 1
    entries = {e.account: e.amount for e in world.postings[-1].entries}
    assert entries == {CHECKING: -12_345, GL_SETTLEMENT: 12_345}
    txn = rows_of(decision.effects, Txn)[0]
    assert txn["status"] == TxnStatus.APPROVED and txn["response_code"] == "00"
    assert txn["posting_id"] == world.postings[-1].id
    usage = rows_of(decision.effects, Usage)[0]
    assert (usage["channel"], usage["amount"], usage["count"]) == ("pos", 12_345, 1)


def test_insufficient_funds_51_changes_no_balance(world: World) -> None:
    decision = world.handle(request("0200", "000000", 100_001))
    assert decision.response is not None and decision.response[39] == "51"
    assert 38 not in decision.response
    assert world.account(CHECKING).ledger_balance == 100_000
    assert rows_of(decision.effects, Posting) == []
    txn = rows_of(decision.effects, Txn)[0]
    assert txn["status"] == TxnStatus.DECLINED and txn["decline_reason"] == "insufficient funds"


def test_unknown_card_14(world: World) -> None:
    decision = world.handle(request("0200", "000000", 100, pan="4761739999999999"))
    assert decision.response is not None and decision.response[39] == "14"


@pytest.mark.parametrize(("status", "code"), [
    (CardStatus.LOST, "41"), (CardStatus.STOLEN, "43"), (CardStatus.BLOCKED, "62"), (CardStatus.INACTIVE, "62"),
    (CardStatus.EXPIRED, "54"), (CardStatus.REPLACED, "14"),
])
def test_card_status_codes(world: World, status: CardStatus, code: str) -> None:
    world.card(DEBIT_PAN).status = status
    decision = world.handle(request("0200", "000000", 100))
    assert decision.response is not None and decision.response[39] == code
    assert world.account(CHECKING).ledger_balance == 100_000


def test_expired_by_date_54(world: World) -> None:
    world.card(DEBIT_PAN).expiry = "2505"  # clock is June 2025
    assert world.handle(request("0200", "000000", 100)).response[39] == "54"  # type: ignore[index]
    world.card(DEBIT_PAN).expiry = "2506"  # valid through the end of its month
    assert world.handle(request("0200", "000000", 100)).response[39] == "00"  # type: ignore[index]


def test_expiry_in_de14_must_match(world: World) -> None:
    assert world.handle(request("0200", "000000", 100, f14="2711")).response[39] == "54"  # type: ignore[index]
    assert world.handle(request("0200", "000000", 100, f14="2912")).response[39] == "00"  # type: ignore[index]


def test_product_not_allowing_type_57(world: World) -> None:
    assert world.handle(request("0200", "000000", 100, pan=GIFT_PAN)).response[39] == "00"  # type: ignore[index]
    decision = world.handle(atm("010000", 100, pan=GIFT_PAN))
    assert decision.response is not None and decision.response[39] == "57"


@pytest.mark.parametrize("pc", ["990000", "00000", "", "0000AA"])
def test_invalid_processing_code_12(world: World, pc: str) -> None:
    decision = world.handle(request("0200", pc, 100))
    assert decision.response is not None and decision.response[39] == "12"


def test_unsupported_mti_12_and_stray_response_ignored(world: World) -> None:
    decision = world.handle(request("0300", "000000", 100))
    assert decision.response is not None and decision.response[39] == "12" and not decision.effects
    assert world.handle(request("0210", "000000", 100)).response is None


@pytest.mark.parametrize(("processing_code", "code"), [
    ("003000", "39"),  # no credit account on a debit card
    ("009000", "12"),  # an account type ISO 8583:1987 does not define
])
def test_account_type_not_linked(world: World, processing_code: str, code: str) -> None:
    assert world.handle(request("0200", "001000", 100)).response[39] == "00"  # type: ignore[index]
    decision = world.handle(request("0200", processing_code, 100))
    assert decision.response is not None and decision.response[39] == code
    # The decline is logged; no money moves.
    assert {t.__name__ for t, _ in decision.effects.rows} <= {"Txn", "Sequence"}


@pytest.mark.parametrize(("amount", "extra"), [
    (0, {}), (None, {}), (100, {"f49": "999"}), (100, {"f49": "978"}),
])
def test_invalid_amount_13(world: World, amount: int | None, extra: dict[str, str]) -> None:
    decision = world.handle(request("0200", "000000", amount, **extra))
    assert decision.response is not None and decision.response[39] == "13"


def test_billing_amount_used_when_transaction_currency_differs(world: World) -> None:
    decision = world.handle(request("0200", "000000", 9_000, f49="978", f6=f"{10_000:012d}", f51="840"))
    assert decision.response is not None and decision.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 90_000


def test_duplicate_94_and_repeat_gets_first_answer(world: World) -> None:
    first = request("0200", "000000", 1_000)
    assert world.handle(first).response[39] == "00"  # type: ignore[index]
    again = world.handle(first)
    assert again.response is not None and again.response[39] == "94" and not again.effects
    repeat = first.copy()
    repeat.mti = "0201"
    replay = world.handle(repeat)
    assert replay.response is not None and replay.response.mti == "0210" and replay.response[39] == "00"
    assert not replay.effects
    assert world.account(CHECKING).ledger_balance == 99_000


def test_balance_inquiry_30_returns_de54_without_posting(world: World) -> None:
    world.account(CHECKING).held = 5_000
    decision = world.handle(atm("302000", None))
    response = decision.response
    assert response is not None and response[39] == "00"
    assert de54(response) == [("20", "01", "USD", 100_000), ("20", "02", "USD", 95_000)]
    assert rows_of(decision.effects, Posting) == []
    savings = world.handle(atm("301000", 0))
    assert de54(savings.response) == [("10", "01", "USD", 50_000), ("10", "02", "USD", 50_000)]  # type: ignore[arg-type]


def test_transfer_between_own_accounts(world: World) -> None:
    decision = world.handle(atm("402010", 20_000))
    response = decision.response
    assert response is not None and response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 80_000
    assert world.account(SAVINGS).ledger_balance == 70_000
    assert de54(response)[0] == ("20", "01", "USD", 80_000) and de54(response)[2] == ("10", "01", "USD", 70_000)
    assert {e.account: e.amount for e in world.postings[-1].entries} == {CHECKING: -20_000, SAVINGS: 20_000}


def test_transfer_to_someone_elses_account_or_same_account_12(world: World) -> None:
    decision = world.handle(atm("402000", 1_000, f103="0100000021"))
    assert decision.response is not None and decision.response[39] == "12"
    assert world.handle(atm("402020", 1_000)).response[39] == "12"  # type: ignore[index]
    assert world.handle(atm("400010", 1_000, pan=SAVINGS_ONLY_PAN)).response[39] == "12"  # type: ignore[index]
    assert world.account("0100000021").ledger_balance == 10_000


def test_transfer_over_available_51(world: World) -> None:
    assert world.handle(atm("402010", 100_001)).response[39] == "51"  # type: ignore[index]


def test_deposit_21_and_refund_20(world: World) -> None:
    deposit = world.handle(atm("210020", 7_000))
    assert deposit.response is not None and deposit.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 107_000
    assert {e.account: e.amount for e in world.postings[-1].entries} == {CHECKING: 7_000, GL_SETTLEMENT: -7_000}
    refund = world.handle(request("0200", "200000", 3_000))
    assert refund.response is not None and refund.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 110_000
    to_savings = world.handle(atm("210010", 1_000))
    assert to_savings.response[39] == "00" and world.account(SAVINGS).ledger_balance == 51_000  # type: ignore[index]


def test_per_transaction_amount_limit_61(world: World) -> None:
    decision = world.handle(atm("010000", 50_001))
    assert decision.response is not None and decision.response[39] == "61"
    assert world.handle(atm("010000", 50_000)).response[39] == "00"  # type: ignore[index]


def test_a_keyed_purchase_at_a_terminal_counts_on_the_pos_limits(world: World) -> None:
    world.account(CHECKING).ledger_balance = 500_000
    # Keyed (DE 22 = 01x) with the customer present (DE 25 = 00): POS, whose per-transaction limit is 200 000.
    keyed = world.handle(request("0200", "000000", 200_001, f22="012", f25="00"))
    assert keyed.response is not None and keyed.response[39] == "61"
    # The same card-not-present (mail or telephone order, DE 25 = 08): e-commerce, which has no limit here.
    moto = world.handle(request("0200", "000000", 200_001, f22="012", f25="08"))
    assert moto.response is not None and moto.response[39] == "00"
    ok = world.handle(request("0200", "000000", 1_000, f22="012", f25="00"))
    assert ok.response is not None and ok.response[39] == "00"
    channels = sorted(t.channel for t in world.state.txns.values() if t.response_code == "00")
    assert channels == ["ecommerce", "pos"]
    assert world.account(CHECKING).ledger_balance == 500_000 - 200_001 - 1_000
    assert {e.account: e.amount for e in world.postings[-1].entries} == {CHECKING: -1_000, GL_SETTLEMENT: 1_000}


@pytest.mark.parametrize(("fields", "channel"), [
    ({18: "6011", 22: "021", 25: "00"}, "atm"),
    ({22: "051", 25: "00"}, "pos"),
    ({22: "901"}, "pos"),
    ({22: "012", 25: "00"}, "pos"),  # keyed at the counter
    ({22: "012", 25: "05"}, "pos"),  # customer present, card not present: keyed at the counter
    ({22: "011"}, "pos"),  # keyed, no DE 25, on a PIN-capable terminal
    ({22: "012"}, "ecommerce"),  # keyed, no DE 25, no PIN pad
    ({22: "012", 25: "01"}, "ecommerce"),  # customer not present
    ({22: "012", 25: "08"}, "ecommerce"),  # mail or telephone order
    ({22: "012", 25: "59"}, "ecommerce"),
    ({22: "812", 25: "00"}, "ecommerce"),  # entered through e-commerce
    ({22: "051", 25: "59"}, "ecommerce"),
])
def test_channel_from_merchant_type_condition_and_entry_mode(fields: dict[int, str], channel: str) -> None:
    assert channel_of(Message("0200", {2: DEBIT_PAN, **fields})).value == channel


def test_daily_amount_limit_61_and_next_day_resets(world: World) -> None:
    assert world.handle(atm("010000", 50_000)).response[39] == "00"  # type: ignore[index]
    decision = world.handle(atm("010000", 30_001))
    assert decision.response is not None and decision.response[39] == "61"
    txn = next(row for k, row in decision.effects.rows if k is Txn)
    assert txn["decline_reason"] == "atm daily amount limit"
    assert world.handle(atm("010000", 30_000)).response[39] == "00"  # type: ignore[index]
    world.clock.advance(days=1)
    assert world.handle(atm("010000", 1_000)).response[39] == "00"  # type: ignore[index]


def test_daily_count_limit_65(world: World) -> None:
    for _ in range(3):
        assert world.handle(atm("010000", 100)).response[39] == "00"  # type: ignore[index]
    decision = world.handle(atm("010000", 100))
    assert decision.response is not None and decision.response[39] == "65"
    # POS has its own counters.
    assert world.handle(request("0200", "000000", 100)).response[39] == "00"  # type: ignore[index]


def test_card_override_beats_product_limit(world: World) -> None:
    card: Card = world.card(DEBIT_PAN)
    card.limits = {"atm": {"per_txn": 1_000}}
    assert world.handle(atm("010000", 1_001)).response[39] == "61"  # type: ignore[index]
    card.limits = {"atm": {"per_txn": 60_000, "daily_amount": 90_000}}
    assert world.handle(atm("010000", 60_000)).response[39] == "00"  # type: ignore[index]


def test_cross_border_limit_applies_on_top(world: World) -> None:
    decision = world.handle(request("0200", "000000", 30_001, f19="276"))
    assert decision.response is not None and decision.response[39] == "61"
    assert world.handle(request("0200", "000000", 30_001, f19="840")).response[39] == "00"  # type: ignore[index]
    assert world.handle(request("0200", "000000", 25_000, f19="276")).response[39] == "00"  # type: ignore[index]
    decision = world.handle(request("0200", "000000", 20_000, f19="276"))  # 45 000 > 40 000 cross-border daily
    assert decision.response is not None and decision.response[39] == "61"


def test_foreign_atm_withdrawal_fee_posted(world: World) -> None:
    decision = world.handle(atm("010000", 10_000, f32=FOREIGN_ACQUIRER))
    response = decision.response
    assert response is not None and response[39] == "00"
    assert response[28] == "D00000250"
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_250
    assert {e.account: e.amount for e in world.postings[-1].entries} == {
        CHECKING: -10_250, GL_SETTLEMENT: 10_000, GL_FEES: 250}
    own = world.handle(atm("010000", 10_000))
    assert 28 not in own.response  # type: ignore[operator]


def test_cross_border_fee_is_most_specific(world: World) -> None:
    decision = world.handle(atm("010000", 20_000, f32=FOREIGN_ACQUIRER, f19="276"))
    # 300 fixed + 1% of 20 000 = 500, within [300, 1500]
    assert decision.response is not None and decision.response[28] == "D00000500"


def test_a_fee_stated_in_de28_is_the_transaction_level_fee(world: World) -> None:
    # The product prices a foreign ATM withdrawal at 250; the request states 100 (what the ATM disclosed).
    decision = world.handle(atm("010000", 10_000, f32=FOREIGN_ACQUIRER, f28="D00000100"))
    assert decision.response is not None and (decision.response[39], decision.response[28]) == ("00", "D00000100")
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_100
    assert {e.account: e.amount for e in world.postings[-1].entries} == {
        CHECKING: -10_100, GL_SETTLEMENT: 10_000, GL_FEES: 100}
    # A purchase the product does not price takes the stated fee too; C00000000 waives a priced one.
    priced = world.handle(request("0200", "000000", 1_000, f28="D00000075"))
    assert priced.response is not None and priced.response[28] == "D00000075"
    waived = world.handle(atm("010000", 1_000, f32=FOREIGN_ACQUIRER, f28="C00000000"))
    assert waived.response is not None and waived.response[39] == "00"
    assert {e.account: e.amount for e in world.postings[-1].entries} == {CHECKING: -1_000, GL_SETTLEMENT: 1_000}
    assert world.account(CHECKING).ledger_balance == 100_000 - 10_100 - 1_075 - 1_000
    # The funds check covers the stated fee.
    world.account(CHECKING).ledger_balance = 10_050
    short = world.handle(atm("010000", 10_000, f28="D00000051"))
    assert short.response is not None and short.response[39] == "51"


@pytest.mark.parametrize(("de28", "code"), [("D1", "30"), ("X00000001", "30"), ("D0000001A", "30"),
                                            ("C00000005", "13")])
def test_a_bad_de28_is_declined_and_changes_no_balance(world: World, de28: str, code: str) -> None:
    decision = world.handle(atm("010000", 10_000, f28=de28))
    assert decision.response is not None and decision.response[39] == code
    assert world.account(CHECKING).ledger_balance == 100_000 and world.postings == []


def test_funds_check_covers_the_fee(world: World) -> None:
    world.account(CHECKING).ledger_balance = 10_100
    decision = world.handle(atm("010000", 10_000, f32=FOREIGN_ACQUIRER))
    assert decision.response is not None and decision.response[39] == "51"


def test_network_management_0800(world: World) -> None:
    decision = world.handle(request("0800", "", None, f70="301", f2="", f3=""))
    assert decision.response is not None and decision.response.mti == "0810"
    assert decision.response[39] == "00" and decision.response[70] == "301" and not decision.effects


def test_declined_request_leaves_other_customers_alone(world: World) -> None:
    assert world.handle(request("0200", "000000", 10_001, pan=OTHER_PAN)).response[39] == "51"  # type: ignore[index]
    assert world.handle(request("0200", "000000", 10_000, pan=OTHER_PAN)).response[39] == "00"  # type: ignore[index]
    assert world.account("0100000021").ledger_balance == 0
    assert world.account(CHECKING).ledger_balance == 100_000
