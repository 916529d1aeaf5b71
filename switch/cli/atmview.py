"""How ``bulkhead atm`` shows terminals, cash and records: JSON (amounts in minor units as integers, times ISO 8601
UTC, like every other command) and lines for people (amounts in major units with the ISO 4217 code).

Keys appear as check values for people; ``--json`` of ``atm show`` adds the LMK cryptograms (never a clear key:
the registry holds none), which the demo's fleet simulator reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from atmp.cash import Replenishment
from atmp.model import Cassette, KeySet, Terminal, WorkingKeys
from atmp.records import Event, StoredOutcome
from switch.cli.atmcommon import show_money


def when(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    seconds = int((now - at).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def cassette_json(c: Cassette) -> dict[str, Any]:
    return {"position": c.position, "currency": c.currency, "denomination": c.denomination, "loaded": c.loaded,
            "dispensed": c.dispensed, "rejected": c.rejected, "retracted": c.retracted, "remaining": c.remaining}


def _working_json(keys: WorkingKeys | None, cryptograms: bool) -> dict[str, Any] | None:
    if keys is None:
        return None
    out: dict[str, Any] = {"tpk_kcv": keys.tpk_kcv, "tak_kcv": keys.tak_kcv}
    if cryptograms:
        out.update(tpk=keys.tpk, tak=keys.tak)
    return out


def keys_json(keys: KeySet, cryptograms: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tmk_kcv": keys.tmk_kcv, "current": _working_json(keys.current, cryptograms),
        "previous": _working_json(keys.previous, cryptograms), "replaced_at": when(keys.replaced_at),
        "pending": _working_json(keys.pending, cryptograms), "dukpt": keys.dukpt, "pin_format": keys.pin_format,
        "mac": keys.mac,
    }
    if cryptograms:
        out.update(tmk=keys.tmk, dukpt_bdk=keys.dukpt_bdk)
    return out


def terminal_json(t: Terminal, *, cryptograms: bool = False) -> dict[str, Any]:
    return {
        "id": t.id, "location": t.location, "institution": t.institution, "owner": t.owner.value,
        "status": t.status.value, "currency": t.currency, "surcharge": t.surcharge,
        "low_cash_notes": t.low_cash_notes, "low_cash": list(t.low_cash), "cash_remaining": t.cash_remaining(),
        "device": {name: t.device.state(name).value for name in ("card_reader", "dispenser", "depository",
                                                                "printer")},
        "faults": list(t.device.faults), "last_contact": when(t.last_contact), "rekey_due": t.rekey_due,
        "keys": keys_json(t.keys, cryptograms), "cassettes": [cassette_json(c) for c in t.cassettes],
    }


def outcome_json(s: StoredOutcome) -> dict[str, Any]:
    o = s.outcome
    m = o.movement
    return {"key": s.original_key, "kind": o.kind.value, "source": o.source.value, "reason": o.reason,
            "approved": o.approved_amount, "dispensed": o.dispensed_amount, "reversed": o.reversed_amount,
            "currency": s.currency, "notes": list(m.dispensed) if m else None,
            "rejected": list(m.rejected) if m else None, "retracted": list(m.retracted) if m else None,
            "notes_derived": o.notes_derived, "captured": o.captured, "business_date": s.business_date.isoformat(),
            "recorded_at": when(s.recorded_at), "updated_at": when(s.updated_at), "corrections": s.corrections,
            "ignored": s.ignored}


def event_json(e: Event) -> dict[str, Any]:
    return {"at": when(e.at), "kind": e.kind, "detail": e.detail, "actor": e.actor}


def replenishment_json(r: Replenishment) -> dict[str, Any]:
    return {"balanced": r.balanced, "difference": r.difference_by_currency(),
            "cassettes": [{"position": c.position, "currency": c.currency, "denomination": c.denomination,
                           "expected": c.expected, "removed": c.removed, "difference": c.difference,
                           "difference_value": c.difference_value, "loaded": c.loaded} for c in r.counts]}


def cash_line(c: Cassette) -> str:
    return (f"{c.position}: {c.remaining} x {show_money(c.denomination, c.currency)} left "
            f"(loaded {c.loaded}, dispensed {c.dispensed}, rejected {c.rejected}, retracted {c.retracted})")


def terminal_lines(t: Terminal, now: datetime) -> list[str]:
    keys = t.keys
    rows = [
        ("terminal", t.id), ("location", t.location), ("institution", f"{t.institution} ({t.owner.value})"),
        ("status", t.status.value), ("currency", t.currency),
        ("surcharge", show_money(t.surcharge, t.currency) + " (foreign cards)"),
        ("devices", ", ".join(f"{name.replace('_', ' ')} {t.device.state(name).value}"
                              for name in ("card_reader", "dispenser", "depository", "printer"))),
        ("last contact", f"{when(t.last_contact) or 'never'} ({age(t.last_contact, now)})"),
        ("tmk", f"KCV {keys.tmk_kcv}" if keys.tmk_kcv else "none loaded"),
        ("working keys", f"TPK KCV {keys.current.tpk_kcv}, TAK KCV {keys.current.tak_kcv}" if keys.current
         else "none (no key exchange yet)"),
    ]
    if keys.pending:
        rows.append(("pending keys", f"TPK KCV {keys.pending.tpk_kcv}, TAK KCV {keys.pending.tak_kcv} (awaiting 162)"))
    if keys.previous and keys.replaced_at:
        rows.append(("previous keys", f"TPK KCV {keys.previous.tpk_kcv}, replaced {when(keys.replaced_at)}"))
    rows += [("dukpt", "yes" if keys.dukpt else "no"), ("pin format", keys.pin_format),
             ("mac", "yes" if keys.mac else "no"), ("rekey due", "yes" if t.rekey_due else "no"),
             ("low cash at", f"{t.low_cash_notes} notes" + (f": LOW in cassette(s) {', '.join(map(str, t.low_cash))}"
                                                            if t.low_cash else "")),
             ("cash left", show_money(t.cash_remaining(), t.currency))]
    lines = [f"{k:<14} {v}" for k, v in rows]
    lines += [f"{'cassette':<14} {cash_line(c)}" for c in t.cassettes]
    return lines


def outcome_line(s: StoredOutcome) -> str:
    o = s.outcome
    notes = "" if o.movement is None else " notes " + "/".join(map(str, o.movement.dispensed))
    extra = (" (derived)" if o.notes_derived else "") + (" card captured" if o.captured else "")
    extra += f" corrected {s.corrections}x" if s.corrections else ""
    extra += f" {s.ignored} ignored" if s.ignored else ""
    return (f"{when(s.updated_at)} {s.original_key} {o.kind.value:<9} {o.source.value:<4} "
            f"{show_money(o.dispensed_amount, s.currency)} of {show_money(o.approved_amount, s.currency)}"
            f"{notes}{extra}")
