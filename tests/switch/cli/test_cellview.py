"""The rendering of cell command results for people (switch.cli.cellview): what a line says, per kind of value."""

from __future__ import annotations

from switch.cli.cellview import fee, render, when

PLAN = {
    "plan": "I01-1", "account": "0100000003", "line": "0100000001", "txn": "M01-4", "currency": "JPY",
    "principal": 120_000, "fee": 1_800, "rate_bp": 150, "count": 3, "billed": 1, "status": "active",
    "schedule": [{"installment": 1, "due": "2026-04-15", "amount": 40_600, "billed": True},
                 {"installment": 2, "due": "2026-05-15", "amount": 40_600, "billed": False}],
    "open_to_buy": 380_000,
}


def test_a_plan_prints_its_amounts_in_its_currency_its_rate_as_a_percentage_and_its_schedule() -> None:
    assert render(PLAN).splitlines() == [
        "plan         I01-1",
        "account      0100000003",
        "line         0100000001",
        "txn          M01-4",
        "currency     JPY",
        "principal    120,000 JPY",
        "fee          1,800 JPY",
        "rate_bp      1.50%",
        "count        3",
        "billed       1",
        "status       active",
        "schedule       1  due 2026-04-15  40,600 JPY  billed",
        "               2  due 2026-05-15  40,600 JPY",
        "open_to_buy  380,000 JPY",
    ]


def test_a_line_lists_its_plans_in_the_lines_currency() -> None:
    line = {"line": "0100000001", "currency": "KWD", "limit": 1_500_000, "owed": -250,
            "plans": [{k: v for k, v in PLAN.items() if k not in ("currency", "schedule")}], "status": "active"}
    assert render(line).splitlines() == [
        "line      0100000001",
        "currency  KWD",
        "limit     1,500.000 KWD",
        "owed      -0.250 KWD",
        "plans     I01-1  120.000 KWD in 3 installments, 1 billed, fee 1.800 KWD (1.50%)  active",
        "status    active",
    ]


def test_fees_in_words() -> None:
    assert fee({"fixed": 250}, "USD") == "2.50 USD"
    assert fee({"rate_bp": 100, "min": 300, "max": 1500}, "USD") == "1.00% (min 3.00 USD, max 15.00 USD)"
    assert fee({"fixed": 0, "rate_bp": 0, "min": 0, "max": 0}, "USD") == "free"
    assert fee({"min": 200}, "EUR") == "0.00 EUR (min 2.00 EUR)"


def test_times_nothing_and_unknown_currencies() -> None:
    assert when("2026-03-15T10:00:00.123456+00:00") == "2026-03-15 10:00:00 UTC"
    assert when("2026-03-15T12:00:00+02:00") == "2026-03-15 10:00:00 UTC"  # always shown in UTC
    assert when(None) == "-" and when("soon") == "soon"
    assert render({"held": 5, "status_reason": "", "replaces": None, "pin_set": False}).splitlines() == [
        "held           5 (minor units)",  # no currency to read it by: not guessed
        "status_reason  -",
        "replaces       -",
        "pin_set        no",
    ]
    assert render({"currency": "XTS", "held": 5}).splitlines()[1] == "held      5 minor units of XTS"
