"""What the issuer simulator answers: rules read from TOML, applied to canonical messages. No I/O here.

Rules file (every key optional)::

    [approve]
    balance = 150000       # ledger balance in minor units, reported in field 54 on balance inquiries
    available = 120000     # available balance (default: the ledger balance)
    currency = "840"       # currency of field 54 when the request has no field 49

    [[rules]]              # evaluated in order
    action = "decline"     # "decline" | "delay" | "drop"
    bin = "400000"         # PAN prefix (1 to 19 digits); omit to match any card
    amount_over = 100000   # field 4 above this many minor units; omit to match any amount
    code = "05"            # decline only: the field 39 to answer

    [[rules]]
    action = "delay"
    bin = "411111"
    ms = 1500              # every matching delay adds its milliseconds

    [[rules]]
    action = "drop"        # never answer
    bin = "422222"

The first matching decline or drop decides and every matching delay applies, wherever it stands; anything
else is approved (00, a 6-character approval code in 38). Declines apply to authorizations and financial
requests (MTI classes 1 and 2); delays and drops also to reversals, so a repeat (0421) can be provoked.
Reversals and other advices are acknowledged with 00, network management (0800) with 0810/00.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from switch.model.errors import ConfigError
from switch.model.message import Message

ACTIONS = ("decline", "delay", "drop")
_RULE_KEYS = ("action", "bin", "amount_over", "code", "ms")
_APPROVE_KEYS = ("balance", "available", "currency")
_TOP_KEYS = ("approve", "rules")


@dataclass(frozen=True)
class Rule:
    action: str
    bin: str = ""
    amount_over: int | None = None
    code: str = "05"
    ms: float = 0.0

    def matches(self, pan: str, amount: int | None) -> bool:
        if self.bin and not pan.startswith(self.bin):
            return False
        return self.amount_over is None or (amount is not None and amount > self.amount_over)


@dataclass(frozen=True)
class IssuerRules:
    rules: tuple[Rule, ...] = ()
    balance: int = 150_000
    available: int | None = None
    currency: str = "840"


@dataclass(frozen=True, slots=True)
class Decision:
    """``code`` None means drop (never answer); ``delay_ms`` applies before answering."""

    code: str | None
    delay_ms: float = 0.0
    balances: bool = False  # add field 54 (balance inquiry approved)


APPROVE = Decision("00")


@dataclass
class Approver:
    """Applies :class:`IssuerRules` to requests; holds the approval-code counter."""

    rules: IssuerRules = field(default_factory=IssuerRules)
    approve_all: bool = False
    _next_code: int = 0

    def decide(self, msg: Message) -> Decision:
        if msg.is_network or self.approve_all or (msg.is_advice and not msg.is_reversal):
            return APPROVE
        pan = msg.pan or ""
        amount = msg.amount
        delay = 0.0
        verdict: Rule | None = None
        for rule in self.rules.rules:
            if not rule.matches(pan, amount):
                continue
            if rule.action == "delay":
                delay += rule.ms
            elif verdict is None and (rule.action == "drop" or not msg.is_reversal):
                verdict = rule
        if verdict is not None:
            return Decision(None if verdict.action == "drop" else verdict.code, delay)
        balances = (msg.transaction_type or "") in ("30", "31") and not msg.is_reversal
        return Decision("00", delay, balances)

    def approval_code(self) -> str:
        self._next_code = (self._next_code + 1) % 1_000_000
        return f"{self._next_code:06d}"

    def balance_field(self, msg: Message) -> str:
        """Field 54 (ISO 8583:1987 additional amounts): per amount, account type (2, from field 3 positions
        3-4), amount type (2: 01 ledger, 02 available), currency (3), sign C/D (1), amount (12)."""
        code = msg.processing_code or "000000"
        account = code[2:4] if len(code) >= 4 else "00"
        currency = msg.currency or self.rules.currency
        available = self.rules.available if self.rules.available is not None else self.rules.balance
        return "".join(
            f"{account}{kind}{currency}{'C' if value >= 0 else 'D'}{abs(value):012d}"
            for kind, value in (("01", self.rules.balance), ("02", available))
        )


# -- loading ----------------------------------------------------------------------------------------


def load_rules(path: Path) -> IssuerRules:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"invalid TOML: {exc}") from None
    return rules_from_dict(data, str(path))


def rules_from_dict(data: Mapping[str, object], file: str) -> IssuerRules:
    _known(data, _TOP_KEYS, file, "")
    approve = data.get("approve", {})
    if not isinstance(approve, dict):
        raise ConfigError(file, "approve", "expected a table")
    _known(approve, _APPROVE_KEYS, file, "approve.")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(file, "rules", "expected an array of tables ([[rules]])")
    rules = tuple(_rule(item, file, f"rules[{i}]") for i, item in enumerate(raw_rules))
    currency = approve.get("currency", "840")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isdigit():
        raise ConfigError(file, "approve.currency", "expected a 3-digit ISO 4217 numeric code")
    available = approve.get("available")
    return IssuerRules(
        rules=rules,
        balance=_int(approve.get("balance", 150_000), file, "approve.balance", signed=True),
        available=None if available is None else _int(available, file, "approve.available", signed=True),
        currency=currency,
    )


def _rule(item: object, file: str, where: str) -> Rule:
    if not isinstance(item, dict):
        raise ConfigError(file, where, "expected a table")
    _known(item, _RULE_KEYS, file, f"{where}.")
    action = item.get("action")
    if action not in ACTIONS:
        raise ConfigError(file, f"{where}.action", f"expected one of: {', '.join(ACTIONS)}")
    bin_ = item.get("bin", "")
    if not isinstance(bin_, str) or (bin_ and not (bin_.isdigit() and len(bin_) <= 19)):
        raise ConfigError(file, f"{where}.bin", "expected a PAN prefix of 1 to 19 digits")
    over = item.get("amount_over")
    code = item.get("code", "05")
    if not isinstance(code, str) or len(code) != 2 or not code.isalnum():
        raise ConfigError(file, f"{where}.code", "expected a 2-character response code")
    if action != "decline" and "code" in item:
        raise ConfigError(file, f"{where}.code", f"only a decline has a code, not a {action}")
    ms = item.get("ms", 0)
    if action == "delay" and "ms" not in item:
        raise ConfigError(file, f"{where}.ms", "a delay needs ms")
    if action != "delay" and "ms" in item:
        raise ConfigError(file, f"{where}.ms", f"only a delay has ms, not a {action}")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
        raise ConfigError(file, f"{where}.ms", "expected a non-negative number of milliseconds")
    return Rule(
        action=action,
        bin=bin_,
        amount_over=None if over is None else _int(over, file, f"{where}.amount_over"),
        code=code,
        ms=float(ms),
    )


def _int(value: object, file: str, where: str, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (value < 0 and not signed):
        raise ConfigError(file, where, "expected a whole number of minor units")
    if abs(value) >= 10**12:  # amounts are 12 digits on the wire (fields 4 and 54)
        raise ConfigError(file, where, "more than 12 digits")
    return value


def _known(data: Mapping[str, object], keys: tuple[str, ...], file: str, prefix: str) -> None:
    for name in data:
        if name not in keys:
            close = difflib.get_close_matches(name, keys, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(file, f"{prefix}{name}", f"unknown key{hint}")
