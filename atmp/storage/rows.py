"""Rows of the ATMP's tables to and from the domain's values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from atmp.cash import Counts, Movement
from atmp.dispense import DispenseOutcome, OutcomeKind, Source
from atmp.model import Cassette, DeviceStatus, KeySet, Owner, Terminal, TerminalStatus, WorkingKeys
from atmp.records import StoredOutcome

# A row as SQLAlchemy gives it (RowMapping), or a dict built by hand.
RowLike = Mapping[Any, Any]


def counts_text(counts: Counts) -> str:
    """Notes per cassette as DE 63 writes them: 4 x 4 digits."""
    return "".join(f"{n:04d}" for n in counts)


def text_counts(text: str) -> Counts:
    a, b, c, d = (int(text[i:i + 4]) for i in range(0, 16, 4))
    return (a, b, c, d)


def cassette_row(terminal_id: str, cassette: Cassette) -> dict[str, Any]:
    return {"terminal_id": terminal_id, "position": cassette.position, "currency": cassette.currency,
            "denomination": cassette.denomination, "loaded": cassette.loaded, "dispensed": cassette.dispensed,
            "rejected": cassette.rejected, "retracted": cassette.retracted}


def cassette_of(row: RowLike) -> Cassette:
    return Cassette(position=row["position"], currency=row["currency"], denomination=row["denomination"],
                    loaded=row["loaded"], dispensed=row["dispensed"], rejected=row["rejected"],
                    retracted=row["retracted"])


def terminal_row(terminal: Terminal, at: datetime) -> dict[str, Any]:
    return {"id": terminal.id, "location": terminal.location, "institution": terminal.institution,
            "owner": terminal.owner.value, "currency": terminal.currency, "status": terminal.status.value,
            "device_status": terminal.device.code, "surcharge": terminal.surcharge,
            "low_cash_notes": terminal.low_cash_notes, "last_contact": terminal.last_contact,
            "rekey_due": terminal.rekey_due, "created_at": at, "updated_at": at}


def _working(row: RowLike, prefix: str) -> WorkingKeys | None:
    if row[f"{prefix}tpk"] is None:
        return None
    return WorkingKeys(row[f"{prefix}tpk"], row[f"{prefix}tpk_kcv"], row[f"{prefix}tak"], row[f"{prefix}tak_kcv"])


def working_values(prefix: str, keys: WorkingKeys | None) -> dict[str, str | None]:
    return {f"{prefix}tpk": keys.tpk if keys else None, f"{prefix}tpk_kcv": keys.tpk_kcv if keys else None,
            f"{prefix}tak": keys.tak if keys else None, f"{prefix}tak_kcv": keys.tak_kcv if keys else None}


def keys_row(terminal_id: str, keys: KeySet, at: datetime) -> dict[str, Any]:
    return {"terminal_id": terminal_id, "tmk": keys.tmk, "tmk_kcv": keys.tmk_kcv,
            **working_values("", keys.current), **working_values("previous_", keys.previous),
            **working_values("pending_", keys.pending), "replaced_at": keys.replaced_at, "pending_at": None,
            "dukpt_bdk": keys.dukpt_bdk, "pin_format": keys.pin_format, "mac": keys.mac, "updated_at": at}


def keyset_of(row: RowLike | None) -> KeySet:
    if row is None:
        return KeySet()
    return KeySet(tmk=row["tmk"], tmk_kcv=row["tmk_kcv"], current=_working(row, ""),
                  previous=_working(row, "previous_"), replaced_at=row["replaced_at"],
                  pending=_working(row, "pending_"), dukpt_bdk=row["dukpt_bdk"], pin_format=row["pin_format"],
                  mac=bool(row["mac"]))


def terminal_of(row: RowLike, cassettes: Sequence[Cassette], keys: RowLike | None) -> Terminal:
    return Terminal(id=row["id"], location=row["location"], institution=row["institution"], owner=Owner(row["owner"]),
                    currency=row["currency"], status=TerminalStatus(row["status"]),
                    device=DeviceStatus.from_code(row["device_status"]), keys=keyset_of(keys),
                    cassettes=tuple(cassettes), surcharge=row["surcharge"], low_cash_notes=row["low_cash_notes"],
                    last_contact=row["last_contact"], rekey_due=bool(row["rekey_due"]))


def outcome_values(outcome: DispenseOutcome) -> dict[str, Any]:
    movement = outcome.movement or Movement()
    return {"approved_amount": outcome.approved_amount, "dispensed_amount": outcome.dispensed_amount,
            "kind": outcome.kind.value, "source": outcome.source.value, "reason": outcome.reason,
            "notes": counts_text(movement.dispensed), "rejected": counts_text(movement.rejected),
            "retracted": counts_text(movement.retracted), "notes_derived": outcome.notes_derived,
            "captured": outcome.captured}


def outcome_of(row: RowLike) -> DispenseOutcome:
    movement = Movement(text_counts(row["notes"]), text_counts(row["rejected"]), text_counts(row["retracted"]))
    return DispenseOutcome(kind=OutcomeKind(row["kind"]), source=Source(row["source"]),
                           approved_amount=row["approved_amount"], dispensed_amount=row["dispensed_amount"],
                           movement=movement, reason=row["reason"], notes_derived=bool(row["notes_derived"]),
                           captured=bool(row["captured"]))


def stored_of(row: RowLike) -> StoredOutcome:
    return StoredOutcome(terminal_id=row["terminal_id"], original_key=row["original_key"], currency=row["currency"],
                         business_date=row["business_date"], recorded_at=row["recorded_at"],
                         updated_at=row["updated_at"], outcome=outcome_of(row), corrections=row["corrections"],
                         ignored=row["ignored"])
