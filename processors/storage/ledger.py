"""The ledger check: the cell database's double-entry invariants, verified in SQL.

What must hold after any sequence of committed batches (processors.model, "Ledger sign"):

1. every posting's entries sum to zero per currency, every posting has at least two entries, and every
   entry belongs to a posting that exists;
2. every customer account's ``ledger_balance`` is the sum of its entries, all in the account's currency;
3. every account's ``held`` is the sum of its open holds, whatever its kind (a credit card account's holds
   count on the account and on its credit line, :mod:`processors.credit`);
4. every credit line's ``owed`` is minus the sum of the entries of its card accounts and of its installment
   plans' sub-ledger accounts ``INST:<plan id>`` (the unbilled part of a converted purchase stays owed, see
   :mod:`processors.installments`), and its ``held`` / ``cash_held`` are the sums of the open holds /
   open cash holds on the line.

GL accounts (``GL:...``) have no balance row; their balance is just the sum of their entries. Problems name
posting, entry, account and credit line ids only: no card data is ever read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, Engine, Select, String, case, exists, func, literal, select, union_all

from processors.installments import INSTALLMENT_PREFIX
from processors.model import Account, CreditLine, Entry, Hold, HoldStatus, InstallmentPlan, Posting
from processors.storage.tables import TABLES
from switch.infra.db.errors import storage_errors

# A badly broken ledger would otherwise produce one line per row; the count of the rest is reported.
MAX_PROBLEMS_PER_CHECK: Final = 50

_POSTINGS = TABLES[Posting]
_ENTRIES = TABLES[Entry]
_ACCOUNTS = TABLES[Account]
_LINES = TABLES[CreditLine]
_HOLDS = TABLES[Hold]
_PLANS = TABLES[InstallmentPlan]


@dataclass
class LedgerReport:
    """The outcome of :func:`ledger_check`: ``ok`` when ``problems`` is empty; ``counts`` of what was checked."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def ledger_check(engine: Engine) -> LedgerReport:
    """Verify the ledger invariants of the cell database at ``engine`` (see the module docstring).

    On PostgreSQL the checks share one REPEATABLE READ snapshot, so a cell writing meanwhile cannot cause a
    false alarm; on SQLite each check is one statement, hence one consistent snapshot, and a cell commits
    whole batches only.
    """
    problems: list[str] = []
    with storage_errors("ledger check"), engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        for query, describe in _CHECKS:
            problems.extend(_run(connection, query(), describe))
        counts = {name: int(connection.execute(query).scalar_one()) for name, query in _counts().items()}
    return LedgerReport(ok=not problems, problems=problems, counts=counts)


def _run(connection: Connection, query: Select[Any], describe: Callable[..., str]) -> list[str]:
    rows = connection.execute(query.limit(MAX_PROBLEMS_PER_CHECK + 1)).all()
    problems = [describe(*row) for row in rows[:MAX_PROBLEMS_PER_CHECK]]
    if len(rows) > MAX_PROBLEMS_PER_CHECK:
        problems.append(f"... and more like the previous {MAX_PROBLEMS_PER_CHECK} (not listed)")
    return problems


def _unbalanced_postings() -> Select[Any]:
    total = func.sum(_ENTRIES.c.amount)
    return (
        select(_ENTRIES.c.posting_id, _ENTRIES.c.currency, total)
        .group_by(_ENTRIES.c.posting_id, _ENTRIES.c.currency)
        .having(total != 0)
        .order_by(_ENTRIES.c.posting_id, _ENTRIES.c.currency)
    )


def _short_postings() -> Select[Any]:
    count = func.count(_ENTRIES.c.id)
    return (
        select(_POSTINGS.c.id, count)
        .select_from(_POSTINGS.outerjoin(_ENTRIES, _ENTRIES.c.posting_id == _POSTINGS.c.id))
        .group_by(_POSTINGS.c.id)
        .having(count < 2)
        .order_by(_POSTINGS.c.id)
    )


def _orphan_entries() -> Select[Any]:
    return (
        select(_ENTRIES.c.id, _ENTRIES.c.posting_id)
        .where(~exists().where(_POSTINGS.c.id == _ENTRIES.c.posting_id))
        .order_by(_ENTRIES.c.id)
    )


def _account_balances() -> Select[Any]:
    sums = (
        select(_ENTRIES.c.account, func.sum(_ENTRIES.c.amount).label("total"))
        .group_by(_ENTRIES.c.account)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0)
    return (
        select(_ACCOUNTS.c.id, _ACCOUNTS.c.ledger_balance, total)
        .select_from(_ACCOUNTS.outerjoin(sums, sums.c.account == _ACCOUNTS.c.id))
        .where(_ACCOUNTS.c.ledger_balance != total)
        .order_by(_ACCOUNTS.c.id)
    )


def _entry_currencies() -> Select[Any]:
    return (
        select(_ENTRIES.c.id, _ENTRIES.c.account, _ENTRIES.c.currency, _ACCOUNTS.c.currency)
        .join(_ACCOUNTS, _ACCOUNTS.c.id == _ENTRIES.c.account)
        .where(_ENTRIES.c.currency != _ACCOUNTS.c.currency)
        .order_by(_ENTRIES.c.id)
    )


def _account_holds() -> Select[Any]:
    sums = (
        select(_HOLDS.c.account_id, func.sum(_HOLDS.c.amount).label("total"))
        .where(_HOLDS.c.status == HoldStatus.OPEN)
        .group_by(_HOLDS.c.account_id)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0)
    return (
        select(_ACCOUNTS.c.id, _ACCOUNTS.c.held, total)
        .select_from(_ACCOUNTS.outerjoin(sums, sums.c.account_id == _ACCOUNTS.c.id))
        .where(_ACCOUNTS.c.held != total)
        .order_by(_ACCOUNTS.c.id)
    )


def _credit_owed() -> Select[Any]:
    # The ledger accounts whose balances make up a line's debt: its card accounts and its plans' INST:<id>.
    members = union_all(
        select(_ACCOUNTS.c.id.label("account"), _ACCOUNTS.c.credit_line_id.label("line")).where(
            _ACCOUNTS.c.credit_line_id.is_not(None)
        ),
        select(
            (literal(INSTALLMENT_PREFIX, String()) + _PLANS.c.id).label("account"),
            _PLANS.c.credit_line_id.label("line"),
        ),
    ).subquery()
    sums = (
        select(members.c.line, func.sum(_ENTRIES.c.amount).label("total"))
        .select_from(members.join(_ENTRIES, _ENTRIES.c.account == members.c.account))
        .group_by(members.c.line)
        .subquery()
    )
    owed = -func.coalesce(sums.c.total, 0)
    return (
        select(_LINES.c.id, _LINES.c.owed, owed)
        .select_from(_LINES.outerjoin(sums, sums.c.line == _LINES.c.id))
        .where(_LINES.c.owed != owed)
        .order_by(_LINES.c.id)
    )


def _credit_holds() -> Select[Any]:
    sums = (
        select(
            _HOLDS.c.credit_line_id,
            func.sum(_HOLDS.c.amount).label("held"),
            func.sum(case((_HOLDS.c.cash, _HOLDS.c.amount), else_=0)).label("cash_held"),
        )
        .where(_HOLDS.c.status == HoldStatus.OPEN, _HOLDS.c.credit_line_id.is_not(None))
        .group_by(_HOLDS.c.credit_line_id)
        .subquery()
    )
    held, cash_held = func.coalesce(sums.c.held, 0), func.coalesce(sums.c.cash_held, 0)
    return (
        select(_LINES.c.id, _LINES.c.held, held, _LINES.c.cash_held, cash_held)
        .select_from(_LINES.outerjoin(sums, sums.c.credit_line_id == _LINES.c.id))
        .where((_LINES.c.held != held) | (_LINES.c.cash_held != cash_held))
        .order_by(_LINES.c.id)
    )


_CHECKS: Final[tuple[tuple[Callable[[], Select[Any]], Callable[..., str]], ...]] = (
    (_unbalanced_postings, lambda posting, currency, total: (
        f"posting {posting}: entries in {currency} sum to {total}, not 0")),
    (_short_postings, lambda posting, count: f"posting {posting}: {count} entries, at least 2 needed"),
    (_orphan_entries, lambda entry, posting: f"entry {entry}: posting {posting} does not exist"),
    (_account_balances, lambda account, balance, total: (
        f"account {account}: ledger_balance {balance} but its entries sum to {total}")),
    (_entry_currencies, lambda entry, account, currency, expected: (
        f"entry {entry}: {currency} on account {account}, which is in {expected}")),
    (_account_holds, lambda account, held, total: f"account {account}: held {held} but its open holds sum to {total}"),
    (_credit_owed, lambda line, owed, expected: (
        f"credit line {line}: owed {owed} but its accounts' entries say {expected}")),
    (_credit_holds, lambda line, held, total, cash_held, cash_total: (
        f"credit line {line}: held {held} / cash_held {cash_held} but its open holds sum to "
        f"{total} / {cash_total}")),
)


def _counts() -> dict[str, Select[Any]]:
    return {
        "postings": select(func.count()).select_from(_POSTINGS),
        "entries": select(func.count()).select_from(_ENTRIES),
        "accounts": select(func.count()).select_from(_ACCOUNTS),
        "credit_lines": select(func.count()).select_from(_LINES),
        "open_holds": select(func.count()).select_from(_HOLDS).where(_HOLDS.c.status == HoldStatus.OPEN),
        "installment_plans": select(func.count()).select_from(_PLANS),
    }
