"""The ledger check on a cell database: a consistent ledger passes, each kind of break is named by its id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from processors.model import (
    Account,
    CreditLine,
    Effects,
    Entry,
    Hold,
    HoldStatus,
    InstallmentPlan,
    Posting,
    Row,
)
from processors.storage import ledger_check, write_batch
from processors.storage.ledger import MAX_PROBLEMS_PER_CHECK

T0 = datetime(2026, 5, 20, 10, 30, tzinfo=UTC)
DEBIT = "0100000001"
CARD_ACCOUNT = "0100000003"
LINE = "0100000002"
PLAN = "I01-1"


def _posting(posting_id: str, *legs: tuple[str, int], currency: str = "USD") -> Posting:
    posting = Posting(posting_id, None, T0, "test")
    posting.entries = [
        Entry(f"{posting_id}-{n}", posting_id, account, amount, currency) for n, (account, amount) in enumerate(legs)
    ]
    return posting


def _hold(hold_id: str, amount: int, *, line: str | None = None, cash: bool = False,
          status: HoldStatus = HoldStatus.OPEN) -> Hold:
    account = CARD_ACCOUNT if line else DEBIT
    return Hold(hold_id, "K0100000001", account, line, f"T-{hold_id}", amount, "USD", cash, T0,
                T0 + timedelta(days=7), status)


@dataclass
class Book:
    """A small consistent ledger: a debit account and a credit line with a card account and an installment plan.

    Debit: deposit 10 000, purchase 2 500 + fee 100 -> balance 7 400; one open hold of 1 000 (plus a completed
    one that no longer counts). Credit: purchase 3 000, 1 200 of it converted to installments (moved to the
    plan's INST sub-ledger account) -> still owed 3 000; open holds 400 (purchase) and 300 (cash), counted
    on the card account and on the line.
    """

    debit: Account = field(default_factory=lambda: Account(DEBIT, "0100000001", "checking", "USD", "debit-classic",
                                                            ledger_balance=7400, held=1000))
    card_account: Account = field(default_factory=lambda: Account(
        CARD_ACCOUNT, "0100000001", "credit", "USD", "credit-gold", ledger_balance=-1800, held=700,
        credit_line_id=LINE))
    line: CreditLine = field(default_factory=lambda: CreditLine(
        LINE, "0100000001", "USD", limit=500_000, cash_limit=100_000, owed=3000, held=700, cash_held=300))
    plan: InstallmentPlan = field(default_factory=lambda: InstallmentPlan(
        PLAN, LINE, CARD_ACCOUNT, "T-9", "USD", principal=1200, count=3, fee=36, rate_bp=300))
    postings: list[Posting] = field(default_factory=lambda: [
        _posting("P-1", (DEBIT, 10_000), ("GL:CASH", -10_000)),
        _posting("P-2", (DEBIT, -2600), ("GL:SETTLEMENT", 2500), ("GL:FEES", 100)),
        _posting("P-3", (CARD_ACCOUNT, -3000), ("GL:SETTLEMENT", 3000)),
        _posting("P-4", (CARD_ACCOUNT, 1200), (f"INST:{PLAN}", -1200)),
    ])
    holds: list[Hold] = field(default_factory=lambda: [
        _hold("H-1", 1000), _hold("H-2", 500, status=HoldStatus.COMPLETED),
        _hold("H-3", 400, line=LINE), _hold("H-4", 300, line=LINE, cash=True),
        _hold("H-5", 900, line=LINE, status=HoldStatus.RELEASED),
    ])

    def rows(self) -> list[Row]:
        return [self.debit, self.card_account, self.line, self.plan, *self.postings, *self.holds]


def _store(engine: Engine, book: Book) -> None:
    effects = Effects()
    effects.add(*book.rows())
    with engine.begin() as connection:
        write_batch(connection, [effects])


def test_a_consistent_ledger_passes_and_is_counted(cell_engine: Engine) -> None:
    _store(cell_engine, Book())
    report = ledger_check(cell_engine)
    assert report.problems == []
    assert report.ok
    assert report.counts == {
        "postings": 4, "entries": 9, "accounts": 2, "credit_lines": 1, "open_holds": 3, "installment_plans": 1,
    }


def test_an_empty_database_is_consistent(cell_engine: Engine) -> None:
    report = ledger_check(cell_engine)
    assert report.ok and report.counts["postings"] == 0


def _unbalanced(book: Book) -> None:
    book.postings.append(_posting("P-9", (DEBIT, -100), ("GL:FEES", 90)))
    book.debit.ledger_balance -= 100


def _one_legged(book: Book) -> None:
    book.postings.append(_posting("P-9", ("GL:FEES", 0)))


def _mixed_currency(book: Book) -> None:
    # Balanced in total but not per currency: 100 USD out, 100 EUR in.
    posting = _posting("P-9", (DEBIT, -100), ("GL:FEES", 100))
    posting.entries[1].currency = "EUR"
    book.postings.append(posting)
    book.debit.ledger_balance -= 100


def _orphan_entry(book: Book) -> None:
    book.postings[0].entries.append(Entry("E-stray", "P-missing", "GL:FEES", 0, "USD"))


def _entry_in_another_currency(book: Book) -> None:
    book.postings.append(_posting("P-9", (DEBIT, 100), ("GL:FEES", -100), currency="EUR"))
    book.debit.ledger_balance += 100


def _balance(book: Book) -> None:
    book.debit.ledger_balance = 7000


def _debit_held(book: Book) -> None:
    book.debit.held = 0


def _card_account_held(book: Book) -> None:
    book.card_account.held = 0  # the line's held is right, the account's is not


def _owed_without_installments(book: Book) -> None:
    book.line.owed = 1800  # forgot the plan's unbilled 1 200


def _line_held(book: Book) -> None:
    book.line.held = 400


def _line_cash_held(book: Book) -> None:
    book.line.cash_held = 0


BREAKS: list[tuple[Callable[[Book], None], str]] = [
    (_unbalanced, "posting P-9: entries in USD sum to -10, not 0"),
    (_one_legged, "posting P-9: 1 entries, at least 2 needed"),
    (_mixed_currency, "posting P-9: entries in EUR sum to 100, not 0"),
    (_orphan_entry, "entry E-stray: posting P-missing does not exist"),
    (_entry_in_another_currency, f"entry P-9-0: EUR on account {DEBIT}, which is in USD"),
    (_balance, f"account {DEBIT}: ledger_balance 7000 but its entries sum to 7400"),
    (_debit_held, f"account {DEBIT}: held 0 but its open holds sum to 1000"),
    (_card_account_held, f"account {CARD_ACCOUNT}: held 0 but its open holds sum to 700"),
    (_owed_without_installments, f"credit line {LINE}: owed 1800 but its accounts' entries say 3000"),
    (_line_held, f"credit line {LINE}: held 400 / cash_held 300 but its open holds sum to 700 / 300"),
    (_line_cash_held, f"credit line {LINE}: held 700 / cash_held 0 but its open holds sum to 700 / 300"),
]


@pytest.mark.parametrize(("damage", "problem"), BREAKS, ids=[damage.__name__[1:] for damage, _ in BREAKS])
def test_each_break_is_reported_by_its_ids(cell_engine: Engine, damage: Callable[[Book], None], problem: str) -> None:
    book = Book()
    damage(book)
    _store(cell_engine, book)
    report = ledger_check(cell_engine)
    assert not report.ok
    assert problem in report.problems
    if damage is not _mixed_currency:  # that one is two unbalanced currencies: two lines
        assert report.problems == [problem]


def test_a_badly_broken_ledger_lists_a_bounded_number_of_problems(cell_engine: Engine) -> None:
    effects = Effects()
    effects.add(*(_posting(f"P-{n:03d}", ("GL:FEES", 1), ("GL:CASH", 0)) for n in range(MAX_PROBLEMS_PER_CHECK + 5)))
    with cell_engine.begin() as connection:
        write_batch(connection, [effects])
    problems = ledger_check(cell_engine).problems
    assert len(problems) == MAX_PROBLEMS_PER_CHECK + 1
    assert problems[0] == "posting P-000: entries in USD sum to 1, not 0"
    assert problems[-1].startswith("... and more")
