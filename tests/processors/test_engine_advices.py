"""Advices are never declined for a business reason (money): the cell answers 00, posts what happened at the
terminal, and lists what it had to assume as an exception. Format errors are still declined, and listed too; an
advice the cell cannot price (no rate) gets 96, which the switch's store-and-forward sends again."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from processors.catalog import Catalog
from processors.catalog_file import parse_catalog
from processors.model import Account, ExceptionItem, ExceptionKind, Txn, TxnStatus
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from tests.processors.engine_kit import (
    CATALOG,
    DEBIT_PAN,
    OTHER_PAN,
    World,
    de54,
    de90,
    make_world,
    request,
    reversal_of,
)

CHECKING = "0100000011"
OTHER = "0100000021"
SAVINGS = "0100000012"
EUR_SAVINGS = "0100000019"
PRODUCTS = Path(__file__).resolve().parents[2] / "conf" / "demo" / "products.toml"
START = 100_000
RATES: dict[tuple[str, str], Decimal] = {("EUR", "USD"): Decimal("1.0850"), ("JPY", "USD"): Decimal("0.0067")}
WITH_RATES: Catalog = replace(CATALOG, rates=RATES)


@pytest.fixture
def world() -> World:
    return make_world(catalog=WITH_RATES)


def code(world: World, message: Message) -> str:
    response = world.handle(message.copy()).response
    assert response is not None
    return str(response[39])


def repeat(advice: Message) -> Message:
    """The store-and-forward's next try: the same advice as the repeat MTI (0121, 0221)."""
    return Message(advice.mti[:3] + "1", dict(advice.fields))


def exceptions(world: World) -> list[ExceptionItem]:
    return sorted(world.state.exceptions.values(), key=lambda item: item.id)


def stand_in(original: Message) -> Message:
    return build_stand_in_advice(original, "S12345", repeat=False)


def txn_of(world: World, message: Message) -> Txn:
    """The transaction the cell logged for ``message`` (by its STAN)."""
    return next(t for t in world.state.txns.values() if (t.mti, t.stan) == (message.mti, message[11]))


# -- a foreign amount without DE 6 / DE 51: the cell's own rate ------------------------------------------------

def test_a_foreign_advice_without_a_billing_amount_is_posted_at_the_cells_rate(world: World) -> None:
    original = request("0200", "000000", 10_000, f49="978")  # EUR 100.00; the cell never saw it (it was away)
    advice = stand_in(original)
    assert code(world, advice) == "00"
    assert world.account(CHECKING).ledger_balance == START - 10_850  # USD 108.50 at EUR/USD 1.0850
    [item] = exceptions(world)
    assert (item.kind, item.amount, item.currency, item.status) == (ExceptionKind.CELL_RATE, 10_850, "USD", "open")
    assert item.detail == ("100.00 EUR without a cardholder billing amount (DE 6/DE 51): 108.50 USD at the cell's "
                           "rate EUR/USD 1.0850")
    assert (item.mti, item.stan, item.account_id) == ("0220", str(original[11]), CHECKING)
    # The repeat is answered the same, posts nothing more, and lists nothing more.
    assert code(world, repeat(advice)) == "00"
    assert world.account(CHECKING).ledger_balance == START - 10_850 and len(exceptions(world)) == 1
    # A partial reversal (EUR 40.00 kept) gives back at the same rate; a full one gives back the rest.
    assert code(world, reversal_of(original, replacement=4_000)) == "00"
    assert world.account(CHECKING).ledger_balance == START - 4_340
    assert code(world, reversal_of(original)) == "00"
    assert world.account(CHECKING).ledger_balance == START


def test_de28_of_such_an_advice_is_converted_at_the_same_rate(world: World) -> None:
    advice = stand_in(request("0200", "000000", 10_000, f49="978", f28="D00000200"))  # EUR 2.00 fee
    assert code(world, advice) == "00"
    assert world.account(CHECKING).ledger_balance == START - 10_850 - 217  # EUR 2.00 = USD 2.17
    txn = next(t for t in world.state.txns.values() if t.mti == "0220")
    assert (txn.amount, txn.fee, txn.request_amount, txn.request_currency) == (10_850, 217, 10_000, "EUR")


def test_an_authorization_advice_in_yen_holds_the_converted_amount(world: World) -> None:
    advice = stand_in(request("0100", "000000", 10_000, f49="392"))  # JPY 10,000 at JPY/USD 0.0067
    assert advice.mti == "0120" and code(world, advice) == "00"
    assert world.account(CHECKING).held == 6_700
    assert [item.kind for item in exceptions(world)] == [ExceptionKind.CELL_RATE]


def test_with_the_billing_amount_the_transactions_own_rate_applies_and_nothing_is_listed(world: World) -> None:
    advice = stand_in(request("0200", "000000", 10_000, f49="978", f6="000000011000", f51="840"))
    assert code(world, advice) == "00"
    assert world.account(CHECKING).ledger_balance == START - 11_000 and exceptions(world) == []


@pytest.mark.parametrize("currency", ["826", "999"], ids=["no-rate", "not-in-the-iso-table"])
def test_an_advice_the_cell_cannot_price_is_96_and_posted_once_the_rate_is_there(currency: str) -> None:
    world = make_world(catalog=WITH_RATES)
    advice = stand_in(request("0200", "000000", 10_000, f49=currency))
    decision = world.handle(advice.copy())
    assert decision.response is not None and decision.response[39] == "96"  # not delivered: sent again
    assert "answered 96" in decision.note and DEBIT_PAN not in decision.note
    assert not decision.effects and world.account(CHECKING).ledger_balance == START and exceptions(world) == []
    if currency == "999":
        return
    # The operator adds GBP/USD and restarts the cell: the store-and-forward's repeat is posted.
    fixed = make_world(catalog=replace(CATALOG, rates={**RATES, ("GBP", "USD"): Decimal("1.25")}))
    assert code(fixed, repeat(advice)) == "00"
    assert fixed.account(CHECKING).ledger_balance == START - 12_500


def test_a_request_in_a_foreign_currency_without_billing_amount_is_still_13(world: World) -> None:
    assert code(world, request("0200", "000000", 10_000, f49="978")) == "13"
    assert world.account(CHECKING).ledger_balance == START and exceptions(world) == []


def test_an_advice_in_any_current_currency_is_posted_once_its_rate_is_added() -> None:
    world = make_world(catalog=WITH_RATES)
    advice = stand_in(request("0200", "000000", 1_000_000, f49="398"))  # KZT 10,000.00, no DE 6 / DE 51
    decision = world.handle(advice.copy())
    assert decision.response is not None and decision.response[39] == "96"
    assert "no rate KZT/USD" in decision.note and world.account(CHECKING).ledger_balance == START
    # The operator adds the rate to products.toml ([rates] takes any ISO 4217 currency) and restarts the cell; the
    # advice, a store-and-forward exception by then, is resent (bulkhead saf resend) and posted at that rate.
    text = PRODUCTS.read_text(encoding="utf-8").replace("[rates]\n", '[rates]\n"KZT/USD" = "0.0021"\n', 1)
    fixed = make_world(catalog=replace(CATALOG, rates=parse_catalog(text).rates))
    assert code(fixed, repeat(advice)) == "00"
    assert fixed.account(CHECKING).ledger_balance == START - 2_100
    [item] = exceptions(fixed)
    assert (item.kind, item.amount, item.currency) == (ExceptionKind.CELL_RATE, 2_100, "USD")
    assert item.detail == ("10,000.00 KZT without a cardholder billing amount (DE 6/DE 51): 21.00 USD at the cell's "
                           "rate KZT/USD 0.0021")


# -- DE 6 / DE 51 in the account's currency: posted from DE 6, whatever DE 49 is -------------------------------

@pytest.mark.parametrize("currency", ["398", "123", "999"], ids=["KZT", "not-assigned", "XXX-no-minor-unit"])
def test_an_advice_billed_in_the_accounts_currency_is_posted_from_de6_whatever_de49(currency: str) -> None:
    """A scheme's stand-in advice for a cardholder abroad: DE 6 / DE 51 = USD 21.00, the account's currency. Neither
    DE 49's exponent nor a rate is needed, so a DE 49 the cell's table lacks (a code not assigned, or withdrawn, or
    without a minor unit) does not keep it from being posted; its DE 28 is converted by DE 6 / DE 4 like the amount."""
    world = make_world()  # no [rates] at all
    advice = request("0220", "000000", 1_000_000, f49=currency, f6="000000002100", f51="840", f28="D00005000")
    decision = world.handle(advice.copy())
    assert decision.response is not None and decision.response[39] == "00"
    assert decision.response[28] == "D00005000"  # in DE 49's currency: the request's own, not the fee charged
    # 5,000 of DE 49's minor units at 2,100 / 1,000,000 is 10.5 cents, rounded half up to 11
    assert world.account(CHECKING).ledger_balance == START - 2_100 - 11 and exceptions(world) == []
    txn = txn_of(world, advice)
    assert (txn.amount, txn.fee, txn.currency, txn.request_amount) == (2_100, 11, "USD", 1_000_000)
    assert txn.request_currency == ("KZT" if currency == "398" else currency)  # recorded, for DE 95 below
    assert code(world, repeat(advice)) == "00" and world.account(CHECKING).ledger_balance == START - 2_111
    # A partial reversal's DE 95 is in DE 49's currency too (400,000 kept): given back at the advice's own rate.
    assert code(world, reversal_of(advice, replacement=400_000)) == "00"
    assert world.account(CHECKING).ledger_balance == START - 840 - 11
    assert code(world, reversal_of(advice)) == "00"
    assert world.account(CHECKING).ledger_balance == START


def test_a_request_in_a_currency_outside_the_table_is_still_13(world: World) -> None:
    # Declining a request loses nothing: a DE 49 that is no current ISO 4217 code is a format error there.
    assert code(world, request("0200", "000000", 10_000, f49="123", f6="000000002100", f51="840")) == "13"
    assert world.account(CHECKING).ledger_balance == START


@pytest.mark.parametrize("currency", ["826", "123"], ids=["no-rate", "not-assigned"])
def test_a_balance_inquiry_advice_without_an_amount_needs_no_rate(world: World, currency: str) -> None:
    advice = request("0220", "301000", 0, f49=currency)
    decision = world.handle(advice.copy())
    assert decision.response is not None and decision.response[39] == "00"
    assert de54(decision.response) == [("10", "01", "USD", 50_000), ("10", "02", "USD", 50_000)]
    assert world.account(SAVINGS).ledger_balance == 50_000 and exceptions(world) == []


# -- a completion above the tolerance -------------------------------------------------------------------------

def test_a_completion_above_the_tolerance_is_posted_as_sent_and_listed(world: World) -> None:
    auth = request("0100", "000000", 10_000)
    assert code(world, auth) == "00" and world.account(CHECKING).held == 10_000
    completion = request("0220", "000000", 15_000, f90=de90(auth))  # 50% over; the tolerance is 20%
    decision = world.handle(completion.copy())
    assert decision.response is not None and (decision.response.mti, decision.response[39]) == ("0230", "00")
    account = world.account(CHECKING)
    assert (account.ledger_balance, account.held) == (START - 15_000, 0)
    [item] = exceptions(world)
    assert (item.kind, item.amount) == (ExceptionKind.COMPLETION_OVER_TOLERANCE, 15_000)
    assert item.detail == ("completion of 150.00 USD above the authorization of 100.00 USD + 20% tolerance "
                           "(120.00 USD): posted as sent")
    assert decision.note == item.detail
    assert code(world, repeat(completion)) == "00"
    assert world.account(CHECKING).ledger_balance == START - 15_000 and len(exceptions(world)) == 1
    # Its reversal (naming the completion) takes it all back.
    assert code(world, reversal_of(completion)) == "00"
    assert (world.account(CHECKING).ledger_balance, world.account(CHECKING).held) == (START, 0)


def test_a_completion_within_the_tolerance_lists_nothing(world: World) -> None:
    auth = request("0100", "000000", 10_000)
    assert code(world, auth) == "00"
    assert code(world, request("0220", "000000", 12_000, f90=de90(auth))) == "00"
    assert world.account(CHECKING).ledger_balance == START - 12_000 and exceptions(world) == []


# -- a completion is posted to its pre-authorization's account, in that account's currency ---------------------

def with_eur_savings(world: World) -> None:
    """The cardholder's savings account (DE 3 account type 10) in EUR, beside the USD default (checking) one."""
    card = world.card(DEBIT_PAN)
    world.state.put(Account(EUR_SAVINGS, card.customer_id, "savings", "EUR", "debit", ledger_balance=100_000))
    card.accounts["10"] = EUR_SAVINGS


@pytest.mark.parametrize("pc", ["000000", "002000", "003000"], ids=["default", "checking", "not-linked"])
def test_a_completion_is_posted_to_its_preauthorizations_account_in_its_currency(world: World, pc: str) -> None:
    """The acquirer's completion names the default account, the checking one (both USD) or one the card does not
    have; the pre-authorization held EUR 100.00 on the EUR account. That hold is what it completes: EUR 100.00 is
    posted there, whatever the completion's DE 3 says (not 108.50: EUR 100.00 converted to USD for another account)."""
    with_eur_savings(world)
    preauth = request("0100", "001000", 10_000, f49="978")
    assert code(world, preauth) == "00" and world.account(EUR_SAVINGS).held == 10_000
    completion = request("0220", pc, 10_000, f49="978", f90=de90(preauth))
    assert code(world, completion) == "00"
    eur, usd = world.account(EUR_SAVINGS), world.account(CHECKING)
    assert (eur.ledger_balance, eur.held) == (100_000 - 10_000, 0)
    assert (usd.ledger_balance, usd.held) == (START, 0)
    txn = txn_of(world, completion)
    assert (txn.account_id, txn.amount, txn.currency) == (EUR_SAVINGS, 10_000, "EUR")
    assert exceptions(world) == []  # nothing was assumed: no rate, no other account
    assert code(world, repeat(completion)) == "00" and world.account(EUR_SAVINGS).ledger_balance == 90_000


def test_a_completion_over_the_tolerance_is_listed_against_the_account_it_was_posted_to(world: World) -> None:
    with_eur_savings(world)
    preauth = request("0100", "001000", 10_000, f49="978")
    assert code(world, preauth) == "00"
    completion = request("0220", "002000", 15_000, f49="978", f90=de90(preauth))  # DE 3: checking (USD)
    assert code(world, completion) == "00"
    assert world.account(EUR_SAVINGS).ledger_balance == 100_000 - 15_000
    [item] = exceptions(world)
    assert (item.kind, item.account_id, item.amount, item.currency) == (
        ExceptionKind.COMPLETION_OVER_TOLERANCE, EUR_SAVINGS, 15_000, "EUR")
    assert item.detail == ("completion of 150.00 EUR above the authorization of 100.00 EUR + 20% tolerance "
                           "(120.00 EUR): posted as sent")


# -- an account type the card does not have --------------------------------------------------------------------

def test_an_advice_for_an_account_type_the_card_lacks_posts_to_its_default_account(world: World) -> None:
    advice = stand_in(request("0200", "001000", 2_500, pan=OTHER_PAN))  # savings: the card has checking only
    assert code(world, advice) == "00"
    assert world.account(OTHER).ledger_balance == 10_000 - 2_500
    [item] = exceptions(world)
    assert item.kind == ExceptionKind.ACCOUNT_NOT_LINKED and item.account_id == OTHER
    assert "posted to the card's default account 0100000021" in item.detail
    assert code(world, repeat(advice)) == "00" and world.account(OTHER).ledger_balance == 10_000 - 2_500


def test_a_transfer_advice_to_an_account_not_the_cardholders_stays_declined(world: World) -> None:
    advice = stand_in(request("0200", "401020", 1_000, f103=OTHER))  # to another customer's account
    assert code(world, advice) == "12"
    assert world.account(CHECKING).ledger_balance == START and world.account(OTHER).ledger_balance == 10_000
    [item] = exceptions(world)
    assert item.kind == ExceptionKind.ADVICE_DECLINED and item.amount == 0


# -- format errors: declined as before, and listed -------------------------------------------------------------

def test_an_advice_for_an_unknown_card_is_14_and_listed_without_card_data(world: World) -> None:
    unknown = "4761730100009999"
    advice = stand_in(request("0200", "000000", 3_000, pan=unknown))
    assert code(world, advice) == "14"
    [item] = exceptions(world)
    assert item.kind == ExceptionKind.ADVICE_DECLINED and item.card_id is None
    assert item.detail == "advice for 30.00 USD declined 14: no such card; not posted"
    assert unknown not in item.detail and unknown[6:12] not in item.detail
    txn = world.state.txns[item.txn_id]
    assert txn.status == TxnStatus.DECLINED and txn.response_code == "14"
    assert code(world, repeat(advice)) == "14" and len(exceptions(world)) == 1  # the repeat: the first answer


@pytest.mark.parametrize(("fields", "answer"), [
    ({"f4": ""}, "13"), ({"f49": ""}, "13"), ({"f3": "990000"}, "12"),
    ({"f4": "000000000000", "f49": "826"}, "13"),  # nothing to post: 13, not 96 for want of a GBP rate
])
def test_an_advice_missing_what_it_needs_is_declined_as_before(world: World, fields: dict[str, str],
                                                                 answer: str) -> None:
    advice = request("0220", "000000", 3_000, **fields)
    assert code(world, advice) == answer
    assert world.account(CHECKING).ledger_balance == START
    assert [item.kind for item in exceptions(world)] == [ExceptionKind.ADVICE_DECLINED]
