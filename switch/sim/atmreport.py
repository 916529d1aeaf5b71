"""What the ATM fleet simulator counts and how it reports it: requests by type and answer code, dispense outcomes,
advices and their answers, timeouts, key exchanges, MAC checks, latency percentiles and TPS over the measured
window, and each terminal's own cash (notes out per cassette, retracted, the amounts dispensed and deposited).

Counts only: no card number, PIN, key or cryptogram ever reaches the report (cards are not even named).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from switch.sim.acquirer import percentile
from switch.sim.atmcash import Cassettes
from switch.sim.atmfields import Kind

_MS = 1000.0


@dataclass
class TerminalCash:
    """One terminal's cash as the terminal itself counted it."""

    cassettes: Cassettes
    dispensed_amount: int = 0  # minor units the customers got
    deposits: int = 0  # approved deposits
    deposited_amount: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "cassettes": [{"position": c.position, "denomination": c.denomination, "loaded": c.loaded,
                           "out": c.out, "retracted": c.retracted, "remaining": c.remaining}
                          for c in self.cassettes.cassettes],
            "dispensed_amount": self.dispensed_amount, "deposits": self.deposits,
            "deposited_amount": self.deposited_amount,
        }


def money(amount: int, currency: str) -> str:
    """Minor units as major.minor of ``currency`` (ISO 4217 numeric), with its code; bare minor units when the code is
    not one the bank knows."""
    from processors import money as iso4217

    alpha = iso4217.alpha(currency)
    if alpha is None:
        return f"{amount} (minor units of {currency})"
    exponent = iso4217.exponent(alpha)
    major, minor = divmod(amount, 10**exponent)
    return f"{major}.{minor:0{exponent}d} {alpha}" if exponent else f"{major} {alpha}"


@dataclass
class FleetReport:
    terminals: int = 0
    currency: str = "840"
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, answer code)
    timeouts: Counter[str] = field(default_factory=Counter)  # by kind: no answer in time
    dropped: Counter[str] = field(default_factory=Counter)  # by kind: the connection went down before the answer
    late: int = 0  # answers that came after their request timed out (or its connection dropped)
    unmatched: int = 0  # answers to nothing the terminal sent
    undecodable: int = 0
    dispense: Counter[str] = field(default_factory=Counter)  # dispensed, partial, none, retracted, no_answer
    captured: int = 0
    out_of_cash: int = 0  # withdrawals the terminal could not offer (no amount its cassettes make)
    advices_sent: Counter[str] = field(default_factory=Counter)  # by MTI: 0220, 0221, 0420, 0421
    advices_lost: int = 0  # first transmissions lost on purpose (--lost-confirm-rate)
    advice_answers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (MTI, code) of the host's answers
    advice_timeouts: int = 0
    saf_left: int = 0  # advices still owed when the run ended
    key_exchanges: Counter[str] = field(default_factory=Counter)  # installed, refused, no_keys, kcv_mismatch, ...
    rekeys_asked: int = 0  # 0810s with DE 48 RK
    netmgmt: Counter[tuple[str, str]] = field(default_factory=Counter)  # (DE 70, code): sign-on, echo, status
    mac: Counter[str] = field(default_factory=Counter)  # verified, bad, missing (answers to a MAC terminal)
    connects: int = 0
    drops: int = 0
    refused_terminals: int = 0  # terminals the host would not let in (sign-on or key exchange refused)
    statements: Counter[str] = field(default_factory=Counter)  # lines, malformed
    pin_changes: int = 0  # approved PIN changes
    no_card: int = 0  # transactions not started: every card was in use or captured
    interrupted: bool = False
    elapsed: float = 0.0  # seconds from the first transaction to the end of the drain
    # The measured window (after the warm-up): answers and latencies of the customers' requests sent in it.
    window_s: float = 0.0
    measured: Counter[str] = field(default_factory=Counter)  # answers by code in the window
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by kind, in the window
    cash: dict[str, TerminalCash] = field(default_factory=dict)  # by terminal id
    host_check: dict[str, Any] | None = None  # --check-host: the comparison with the host's counts

    def latency(self, kind: Kind, seconds: float) -> None:
        self.latencies.setdefault(kind.value, []).append(seconds)

    @property
    def answered(self) -> int:
        return sum(self.measured.values())

    @property
    def tps(self) -> float:
        return self.answered / self.window_s if self.window_s > 0 else 0.0

    def percentiles(self, kind: str | None = None) -> dict[str, float]:
        values = self.latencies.get(kind, []) if kind is not None else \
            [v for values in self.latencies.values() for v in values]
        ordered = sorted(values)
        return {
            "p50": round(percentile(ordered, 50) * _MS, 3), "p95": round(percentile(ordered, 95) * _MS, 3),
            "p99": round(percentile(ordered, 99) * _MS, 3), "max": round((ordered[-1] if ordered else 0.0) * _MS, 3),
            "mean": round(sum(ordered) / len(ordered) * _MS if ordered else 0.0, 3),
        }

    def to_json(self) -> dict[str, Any]:
        by_kind: dict[str, dict[str, int]] = {}
        for (kind, code), n in sorted(self.requests.items()):
            by_kind.setdefault(kind, {})[code] = n
        return {
            "terminals": self.terminals, "currency": self.currency, "requests": by_kind,
            "timeouts": dict(self.timeouts), "dropped": dict(self.dropped), "late": self.late,
            "unmatched": self.unmatched, "undecodable": self.undecodable, "dispense": dict(self.dispense),
            "captured": self.captured, "out_of_cash": self.out_of_cash,
            "advices": {"sent": dict(sorted(self.advices_sent.items())), "lost_first": self.advices_lost,
                        "answers": {f"{mti} {code}": n for (mti, code), n in sorted(self.advice_answers.items())},
                        "timeouts": self.advice_timeouts, "left": self.saf_left},
            "key_exchanges": dict(self.key_exchanges), "rekeys_asked": self.rekeys_asked,
            "netmgmt": {f"{code} {answer}": n for (code, answer), n in sorted(self.netmgmt.items())},
            "mac": dict(self.mac), "connects": self.connects, "drops": self.drops,
            "refused_terminals": self.refused_terminals, "statements": dict(self.statements),
            "pin_changes": self.pin_changes, "no_card": self.no_card, "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed, 3),
            "measured": {"window_s": round(self.window_s, 3), "answered": self.answered, "tps": round(self.tps, 1),
                         "codes": dict(sorted(self.measured.items())), "latency_ms": self.percentiles(),
                         "latency_ms_by_kind": {kind: self.percentiles(kind) for kind in sorted(self.latencies)}},
            "cash": {tid: cash.to_json() for tid, cash in sorted(self.cash.items())},
            "host_check": self.host_check,
        }

    def summary(self) -> str:
        lines = [f"{self.terminals} terminal(s), {self.elapsed:.1f} s"
                 + (" (interrupted: the figures cover the run so far)" if self.interrupted else "")]
        by_kind: dict[str, Counter[str]] = {}
        for (kind, code), n in self.requests.items():
            by_kind.setdefault(kind, Counter())[code] = n
        for kind in (k.value for k in Kind):
            if kind in by_kind or self.timeouts[kind] or self.dropped[kind]:
                codes = ", ".join(f"{code}: {n}" for code, n in sorted(by_kind.get(kind, Counter()).items()))
                lines.append(f"  {kind:<10} {codes or '-'}; timeouts {self.timeouts[kind]}, "
                             f"dropped {self.dropped[kind]}")
        lines.append(f"late answers {self.late}, unmatched {self.unmatched}, undecodable {self.undecodable}, "
                     f"no card free {self.no_card}, out of cash {self.out_of_cash}")
        outcome = ", ".join(f"{k}: {n}" for k, n in sorted(self.dispense.items())) or "-"
        lines.append(f"dispense: {outcome}; cards captured {self.captured}")
        sent = ", ".join(f"{mti}: {n}" for mti, n in sorted(self.advices_sent.items())) or "-"
        answers = ", ".join(f"{mti} {code}: {n}" for (mti, code), n in sorted(self.advice_answers.items())) or "-"
        lines.append(f"advices sent {sent} (first transmissions lost {self.advices_lost}); answers {answers}; "
                     f"timeouts {self.advice_timeouts}; still owed {self.saf_left}")
        keys = ", ".join(f"{k}: {n}" for k, n in sorted(self.key_exchanges.items())) or "-"
        net = ", ".join(f"{code}/{answer}: {n}" for (code, answer), n in sorted(self.netmgmt.items())) or "-"
        mac = ", ".join(f"{k}: {n}" for k, n in sorted(self.mac.items())) or "-"
        lines.append(f"key exchanges {keys}; rekeys asked {self.rekeys_asked}; network management {net}; MAC {mac}")
        lines.append(f"connections {self.connects}, drops {self.drops}, terminals refused {self.refused_terminals}; "
                     f"PIN changes {self.pin_changes}; statement lines {self.statements['lines']} "
                     f"(malformed {self.statements['malformed']})")
        p = self.percentiles()
        lines.append(f"measured {self.window_s:.1f} s: {self.answered} answered, {self.tps:.1f} TPS; latency ms p50 "
                     f"{p['p50']:.2f} p95 {p['p95']:.2f} p99 {p['p99']:.2f} max {p['max']:.2f}")
        lines.append("cash (notes out per cassette position, retracted in brackets):")
        for tid, cash in sorted(self.cash.items()):
            cells = " ".join(f"{c.position}:{c.out}" + (f"({c.retracted})" if c.retracted else "")
                             for c in cash.cassettes.cassettes)
            lines.append(f"  {tid} {cells}; dispensed {money(cash.dispensed_amount, self.currency)}, deposits "
                         f"{cash.deposits} ({money(cash.deposited_amount, self.currency)})")
        if self.host_check is not None:
            lines.append(f"host check: {self.host_check['summary']}")
            lines += [f"  {line}" for line in self.host_check.get("mismatches", [])]
        return "\n".join(lines)
