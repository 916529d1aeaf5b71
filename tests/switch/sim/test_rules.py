"""Issuer rules: what the simulator decides for a request, and how a rules file is validated (no sockets)."""

from __future__ import annotations

import tomllib

import pytest

from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.sim.rules import Approver, Decision, IssuerRules, Rule, rules_from_dict

RULES = IssuerRules(
    rules=(
        Rule("delay", bin="4111", ms=50),
        Rule("decline", bin="400000", code="05"),
        Rule("decline", amount_over=100_000, code="61"),
        Rule("delay", bin="411111", ms=25),
        Rule("drop", bin="422222"),
    ),
    balance=150_000,
    available=-2_500,
    currency="978",
)


def request(mti: str = "0200", pan: str = "5500000000000004", amount: int = 1000, code: str = "000000",
            **extra: str) -> Message:
    fields: dict[int, str | bytes] = {2: pan, 3: code, 4: f"{amount:012d}", 11: "000001", 41: "T1"}
    fields.update({int(k[1:]): v for k, v in extra.items()})
    return Message(mti, fields)


@pytest.mark.parametrize(
    ("msg", "decision"),
    [
        (request(), Decision("00")),
        (request(pan="4000001234567899"), Decision("05")),
        (request(amount=100_000), Decision("00")),
        (request(amount=100_001), Decision("61")),
        (request(pan="4000001234567899", amount=999_999), Decision("05")),  # first match decides
        (request(pan="4111110000000001"), Decision("00", 75.0)),  # both delays add up
        (request(pan="4111990000000001"), Decision("00", 50.0)),
        (request(pan="4111110000000001", amount=200_000), Decision("61", 75.0)),
        (request(pan="4222220000000000"), Decision(None)),
        (request(mti="0100", pan="4000001234567899"), Decision("05")),
        (request(code="310000"), Decision("00", balances=True)),
        (request(code="300000", amount=0), Decision("00", balances=True)),
        # Reversals are never declined, but can be delayed or dropped (to provoke a repeat).
        (request(mti="0400", pan="4000001234567899"), Decision("00")),
        (request(mti="0420", pan="4222220000000000"), Decision(None)),
        (request(mti="0421", code="310000"), Decision("00")),
        # Advices and network management are always acknowledged.
        (request(mti="0220", pan="4000001234567899"), Decision("00")),
        (Message("0800", {11: "000001", 70: "301"}), Decision("00")),
    ],
)
def test_decisions(msg: Message, decision: Decision) -> None:
    assert Approver(RULES).decide(msg) == decision


def test_approve_all_ignores_rules() -> None:
    approver = Approver(RULES, approve_all=True)
    assert approver.decide(request(pan="4222220000000000")) == Decision("00")


def test_request_without_pan_or_amount() -> None:
    msg = Message("0200", {3: "000000", 11: "000001"})
    assert Approver(RULES).decide(msg) == Decision("00")


def test_approval_codes_are_six_digits_and_change() -> None:
    approver = Approver()
    codes = [approver.approval_code() for _ in range(3)]
    assert codes == ["000001", "000002", "000003"]


def test_balance_field_layout() -> None:
    # ISO 8583:1987 DE 54: account type 2, amount type 2, currency 3, sign C/D, amount 12 (per amount).
    approver = Approver(RULES)
    value = approver.balance_field(request(code="312000", x49="840"))
    assert value == "2001840C000000150000" "2002840D000000002500"
    assert approver.balance_field(request(code="300000")) == "0001978C000000150000" "0002978D000000002500"


def test_rules_from_toml() -> None:
    text = """
[approve]
balance = 5000
currency = "826"

[[rules]]
action = "decline"
bin = "400000"
code = "14"

[[rules]]
action = "delay"
ms = 12.5

[[rules]]
action = "drop"
amount_over = 900
"""
    rules = rules_from_dict(tomllib.loads(text), "rules.toml")
    assert rules == IssuerRules(
        rules=(Rule("decline", bin="400000", code="14"), Rule("delay", ms=12.5), Rule("drop", amount_over=900)),
        balance=5000,
        currency="826",
    )


BAD = [
    ("top-level typo", "[[rule]]\naction = 'drop'", "rule", "did you mean 'rules'"),
    ("rule typo", "[[rules]]\naction = 'drop'\nbins = '4'", "rules[0].bins", "did you mean 'bin'"),
    ("bad action", "[[rules]]\naction = 'approve'", "rules[0].action", "decline, delay, drop"),
    ("missing action", "[[rules]]\nbin = '4'", "rules[0].action", "decline, delay, drop"),
    ("bin letters", "[[rules]]\naction = 'drop'\nbin = '4x'", "rules[0].bin", "digits"),
    ("bin number", "[[rules]]\naction = 'drop'\nbin = 4", "rules[0].bin", "digits"),
    ("code on drop", "[[rules]]\naction = 'drop'\ncode = '05'", "rules[0].code", "only a decline"),
    ("code too long", "[[rules]]\naction = 'decline'\ncode = '005'", "rules[0].code", "2-character"),
    ("delay without ms", "[[rules]]\naction = 'delay'", "rules[0].ms", "needs ms"),
    ("negative ms", "[[rules]]\naction = 'delay'\nms = -1", "rules[0].ms", "non-negative"),
    ("ms on decline", "[[rules]]\naction = 'decline'\nms = 5", "rules[0].ms", "only a delay"),
    ("amount text", "[[rules]]\naction = 'drop'\namount_over = '100'", "rules[0].amount_over", "whole number"),
    ("amount negative", "[[rules]]\naction = 'drop'\namount_over = -1", "rules[0].amount_over", "whole number"),
    ("balance 13 digits", "[approve]\nbalance = 1000000000000", "approve.balance", "12 digits"),
    ("currency letters", "[approve]\ncurrency = 'EUR'", "approve.currency", "3-digit"),
    ("rules not array", "rules = 5", "rules", "array of tables"),
]


@pytest.mark.parametrize(("text", "key", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_rules(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        rules_from_dict(tomllib.loads(text), "rules.toml")
    assert (info.value.file, info.value.key) == ("rules.toml", key)
    assert reason in info.value.reason
