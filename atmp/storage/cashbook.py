"""The ATMP's cash records: withdrawal outcomes with the cassette counts they move, deposits, replenishments and
terminal totals.

A dispense outcome and the cassette counts it moves are written in ONE transaction, so a crash leaves either both
or neither. The rules for a second word about the same withdrawal are :func:`atmp.dispense.judge`'s; this module
only makes them hold under concurrency: the first insert of a withdrawal is protected by the unique
``original_key`` (the loser runs again and sees the winner's row), a replacement by the row's ``version``, and the
cassettes move by relative updates (``dispensed = dispensed + delta``), so two threads never lose a count.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from atmp.cash import CassetteCount, Movement, Replenishment, low_cash, replenish
from atmp.dispense import Action, DispenseOutcome, judge, notes_mismatch, with_notes
from atmp.errors import DispenseError
from atmp.model import Cassette
from atmp.records import Recorded, ReplenishmentRecord, StoredOutcome, TotalsRecord
from atmp.storage.base import Conflict, StoreBase, insert_event, need_terminal
from atmp.storage.rows import RowLike, cassette_of, outcome_of, outcome_values, stored_of
from atmp.storage.tables import CASSETTES, DEPOSITS, DISPENSES, REPLENISHMENTS, TERMINALS, TOTALS
from atmp.totals import Comparison, Totals, compare

NODE = "node"


class CashBook(StoreBase):
    # -- withdrawal outcomes ------------------------------------------------------------------------------------

    def record_outcome(self, terminal_id: str, original_key: str, outcome: DispenseOutcome, *,
                       business_date: date, at: datetime, currency: str | None = None,
                       approved_at: datetime | None = None) -> Recorded:
        """Record what a terminal said (or the host assumed) about the withdrawal ``original_key`` and move the
        cassettes accordingly, in one transaction; judged against the outcome that stands (:func:`atmp.dispense.
        judge`): new, duplicate, replaced or ignored. Without note counts the notes come from the host's mix over
        the cassettes as they are. ``currency`` defaults to the terminal's; ``business_date`` is kept from the
        first word. A withdrawal ``approved_at`` before the terminal's last replenishment moves no cassette: its
        notes were already missing from that replenishment's count (the discrepancy it showed), and the new load
        never held them."""
        return self._transact("record dispense outcome", lambda connection: _record(
            connection, terminal_id, original_key, outcome, business_date, at, currency, approved_at))

    def outcomes_for(self, terminal_id: str, original_keys: Collection[str]) -> dict[str, StoredOutcome]:
        """The recorded outcomes of those withdrawals of the terminal, by key (absent: nothing recorded)."""
        if not original_keys:
            return {}
        query = select(DISPENSES).where(DISPENSES.c.terminal_id == terminal_id,
                                        DISPENSES.c.original_key.in_(list(original_keys)))
        return self._read("read dispense outcomes", lambda connection: {
            row["original_key"]: stored_of(row) for row in connection.execute(query).mappings()})

    def dispenses(self, terminal_id: str, limit: int = 20) -> list[StoredOutcome]:
        """The terminal's latest outcomes, newest first."""
        query = (select(DISPENSES).where(DISPENSES.c.terminal_id == terminal_id)
                 .order_by(DISPENSES.c.id.desc()).limit(limit))
        return self._read("list dispense outcomes", lambda connection: [
            stored_of(row) for row in connection.execute(query).mappings()])

    # -- deposits -----------------------------------------------------------------------------------------------

    def record_deposit(self, terminal_id: str, original_key: str, amount: int, *, business_date: date, at: datetime,
                       currency: str | None = None) -> bool:
        """An approved deposit at its counted ``amount`` (a later count replaces it: the recycler found a suspect
        note, or the advice of a higher count); True when something changed. The host's side of deposit totals."""

        def body(connection: Connection) -> bool:
            terminal = need_terminal(connection, terminal_id)
            row = connection.execute(select(DEPOSITS).where(DEPOSITS.c.original_key == original_key)).mappings().first()
            if row is None:
                connection.execute(DEPOSITS.insert().values(
                    terminal_id=terminal_id, original_key=original_key, currency=currency or terminal.currency,
                    amount=amount, business_date=business_date, recorded_at=at, updated_at=at))
                return True
            if row["amount"] == amount:
                return False
            connection.execute(DEPOSITS.update().where(DEPOSITS.c.id == row["id"]).values(amount=amount, updated_at=at))
            return True

        if amount < 0:
            raise ValueError("a deposit amount cannot be negative")
        return self._transact("record deposit", body)

    def adjust_deposit(self, terminal_id: str, original_key: str, advice_key: str, delta: int, *,
                       at: datetime) -> bool:
        """A later, higher count of the deposit ``original_key`` (the terminal's 0220 advice ``advice_key``, DE 4
        ``delta``): added once; True when it was (False: a repeat of that advice, or no such deposit)."""

        def body(connection: Connection) -> bool:
            row = connection.execute(select(DEPOSITS).where(
                DEPOSITS.c.terminal_id == terminal_id, DEPOSITS.c.original_key == original_key)).mappings().first()
            if row is None:
                return False
            adjustments = json.loads(row["adjustments"] or "{}")
            if advice_key in adjustments:
                return False
            adjustments[advice_key] = delta
            connection.execute(DEPOSITS.update().where(DEPOSITS.c.id == row["id"]).values(
                amount=row["amount"] + delta, adjustments=json.dumps(adjustments, sort_keys=True), updated_at=at))
            return True

        if delta < 0:
            raise ValueError("a higher count adds a positive amount")
        return self._transact("adjust deposit", body)

    def unadjust_deposit(self, terminal_id: str, advice_key: str, *, at: datetime) -> bool:
        """The terminal reversed its higher-count advice ``advice_key`` (0420 naming the 0220): what it added is
        taken off again, once; True when it was."""

        def body(connection: Connection) -> bool:
            rows = connection.execute(select(DEPOSITS).where(
                DEPOSITS.c.terminal_id == terminal_id,
                DEPOSITS.c.adjustments.contains(json.dumps(advice_key)))).mappings().all()
            for row in rows:
                adjustments = json.loads(row["adjustments"] or "{}")
                delta = adjustments.pop(advice_key, None)
                if delta is None:
                    continue
                connection.execute(DEPOSITS.update().where(DEPOSITS.c.id == row["id"]).values(
                    amount=max(0, row["amount"] - delta), adjustments=json.dumps(adjustments, sort_keys=True),
                    updated_at=at))
                return True
            return False

        return self._transact("reverse a deposit adjustment", body)

    def deposit_amount(self, terminal_id: str, original_key: str) -> int | None:
        """The amount a recorded deposit stands at (None: no such deposit of the terminal)."""
        query = select(DEPOSITS.c.amount).where(DEPOSITS.c.terminal_id == terminal_id,
                                                DEPOSITS.c.original_key == original_key)
        return self._read("read a deposit", lambda connection: connection.execute(query).scalar_one_or_none())

    # -- replenishment ------------------------------------------------------------------------------------------

    def replenish(self, terminal_id: str, removed: Mapping[int, int], loaded: Mapping[int, int], *, at: datetime,
                  actor: str) -> ReplenishmentRecord:
        """Record a replenishment: the counts taken out against the host's, then the new load. The cassettes are
        reset only if no dispense moved them meanwhile (else the whole comparison is made again)."""

        def body(connection: Connection) -> ReplenishmentRecord:
            terminal = need_terminal(connection, terminal_id)
            result = replenish(terminal.cassettes, removed, loaded)
            for old, new in zip(terminal.cassettes, result.cassettes, strict=True):
                guarded = CASSETTES.update().where(
                    CASSETTES.c.terminal_id == terminal_id, CASSETTES.c.position == old.position,
                    CASSETTES.c.loaded == old.loaded, CASSETTES.c.dispensed == old.dispensed,
                    CASSETTES.c.rejected == old.rejected, CASSETTES.c.retracted == old.retracted,
                ).values(loaded=new.loaded, dispensed=0, rejected=0, retracted=0)
                if connection.execute(guarded).rowcount == 0:
                    raise Conflict
            counts = json.dumps([{"position": c.position, "currency": c.currency, "denomination": c.denomination,
                                  "expected": c.expected, "removed": c.removed, "loaded": c.loaded}
                                 for c in result.counts])
            replenishment_id = connection.execute(REPLENISHMENTS.insert().values(
                terminal_id=terminal_id, at=at, actor=actor, counts=counts, balanced=result.balanced,
            ).returning(REPLENISHMENTS.c.id)).scalar_one()
            differences = ", ".join(f"{value:+d} {cur} (minor units)"
                                    for cur, value in result.difference_by_currency().items() if value)
            insert_event(connection, terminal_id, "replenish", "balanced" if result.balanced else
                         f"discrepancy {differences}", at, actor)
            return ReplenishmentRecord(int(replenishment_id), terminal_id, at, actor, result)

        return self._transact("replenish", body)

    def replenishments(self, terminal_id: str, limit: int = 10) -> list[ReplenishmentRecord]:
        query = (select(REPLENISHMENTS).where(REPLENISHMENTS.c.terminal_id == terminal_id)
                 .order_by(REPLENISHMENTS.c.id.desc()).limit(limit))
        return self._read("list replenishments", lambda connection: [
            _replenishment_of(row) for row in connection.execute(query).mappings()])

    # -- totals -------------------------------------------------------------------------------------------------

    def host_totals(self, terminal_id: str, day: date, currency: str | None = None) -> Totals:
        """The host's totals of the terminal for a business day: withdrawals that paid out something, at the amount
        dispensed (approved minus reversed), and deposits at their counted amount."""
        return self._read("host totals", lambda connection: _host_totals(connection, terminal_id, day, currency))

    def record_terminal_totals(self, terminal_id: str, day: date, totals: Totals, *, at: datetime,
                               currency: str | None = None, source: str = "terminal",
                               actor: str = NODE) -> TotalsRecord:
        """Record the terminal's totals of a business day (from its 0500, ``source="terminal"``, or entered by an
        operator, ``"operator"``) beside the host's as they are now; the latest report of a day stands. The
        answer to a 0500 is 00 when ``comparison.agree``, else 95."""

        def body(connection: Connection) -> TotalsRecord:
            terminal = need_terminal(connection, terminal_id)
            cur = currency or terminal.currency
            host = _host_totals(connection, terminal_id, day, cur)
            comparison = compare(terminal_id, day, cur, totals, host)
            values: dict[str, Any] = {
                "currency": cur, "source": source, "agree": comparison.agree, "recorded_at": at,
                **{f"terminal_{k}": v for k, v in _totals_dict(totals).items()},
                **{f"host_{k}": v for k, v in _totals_dict(host).items()},
            }
            where = (TOTALS.c.terminal_id == terminal_id, TOTALS.c.business_date == day)
            reports = connection.execute(select(TOTALS.c.reports).where(*where)).scalar()
            if reports is None:
                reports = 1
                connection.execute(TOTALS.insert().values(terminal_id=terminal_id, business_date=day, reports=1,
                                                          **values))
            else:
                reports += 1
                connection.execute(TOTALS.update().where(*where).values(reports=reports, **values))
            insert_event(connection, terminal_id, "totals", f"{source} totals for {day.isoformat()}: "
                         + ("agree" if comparison.agree else "discrepancy"), at, actor)
            return TotalsRecord(comparison, source, at, reports)

        return self._transact("record terminal totals", body)

    def totals_for(self, terminal_id: str, day: date) -> TotalsRecord | None:
        query = select(TOTALS).where(TOTALS.c.terminal_id == terminal_id, TOTALS.c.business_date == day)

        def body(connection: Connection) -> TotalsRecord | None:
            row = connection.execute(query).mappings().first()
            if row is None:
                return None
            side = {s: Totals(*(row[f"{s}_{k}"] for k in _TOTALS_KEYS)) for s in ("terminal", "host")}
            comparison = Comparison(terminal_id, day, row["currency"], side["terminal"], side["host"])
            return TotalsRecord(comparison, row["source"], row["recorded_at"], row["reports"])

        return self._read("read terminal totals", body)


_TOTALS_KEYS = ("withdrawals", "withdrawal_amount", "deposits", "deposit_amount")


def _totals_dict(totals: Totals) -> dict[str, int]:
    return {k: getattr(totals, k) for k in _TOTALS_KEYS}


def _record(connection: Connection, terminal_id: str, original_key: str, outcome: DispenseOutcome,
            business_date: date, at: datetime, currency: str | None, approved_at: datetime | None) -> Recorded:
    terminal = need_terminal(connection, terminal_id)
    cur = currency or terminal.currency
    row = connection.execute(select(DISPENSES).where(DISPENSES.c.original_key == original_key)).mappings().first()
    if row is not None and row["terminal_id"] != terminal_id:
        raise DispenseError(f"withdrawal {original_key} was recorded for terminal {row['terminal_id']}")
    outcome, mix_found = with_notes(outcome, terminal.cassettes, cur)
    outcome, dropped = _present_only(outcome, terminal.cassettes)
    existing = outcome_of(row) if row is not None else None
    verdict = judge(existing, outcome)
    if verdict.action is Action.NEW:
        connection.execute(DISPENSES.insert().values(
            terminal_id=terminal_id, original_key=original_key, currency=cur, business_date=business_date,
            recorded_at=at, updated_at=at, corrections=0, ignored=0, version=0, **outcome_values(verdict.stands)))
    elif row is not None and (verdict.action is not Action.DUPLICATE or verdict.newly_captured):
        changes: dict[str, Any] = {"updated_at": at, "version": row["version"] + 1}
        if verdict.action is Action.REPLACED:
            changes.update(outcome_values(verdict.stands), corrections=row["corrections"] + 1)
        elif verdict.action is Action.IGNORED:
            changes.update(ignored=row["ignored"] + 1, captured=verdict.stands.captured)
        else:
            changes.update(captured=verdict.stands.captured)
        guarded = DISPENSES.update().where(DISPENSES.c.id == row["id"], DISPENSES.c.version == row["version"])
        if connection.execute(guarded.values(changes)).rowcount == 0:
            raise Conflict
    delta = verdict.delta
    if approved_at is not None and delta != Movement():
        replenished = connection.execute(select(func.max(REPLENISHMENTS.c.at)).where(
            REPLENISHMENTS.c.terminal_id == terminal_id)).scalar()
        if replenished is not None and _aware(replenished) > approved_at:
            insert_event(connection, terminal_id, "dispense", f"{original_key}: approved before the replenishment of "
                         f"{_aware(replenished).isoformat(timespec='seconds')}: its notes are in that count, the new "
                         "load is not touched", at, NODE)
            delta = Movement()
    _move(connection, terminal_id, delta)
    after = tuple(cassette_of(r) for r in connection.execute(
        select(CASSETTES).where(CASSETTES.c.terminal_id == terminal_id).order_by(CASSETTES.c.position)).mappings())
    before_low = set(low_cash(terminal.cassettes, terminal.low_cash_notes))
    now_low = low_cash(after, terminal.low_cash_notes)
    mismatch = 0 if outcome.notes_derived else notes_mismatch(outcome, terminal.cassettes)
    _audit(connection, terminal_id, original_key, verdict.action, verdict.why, verdict.newly_captured, mix_found,
           mismatch, dropped, at)
    stored = stored_of(connection.execute(select(DISPENSES).where(DISPENSES.c.original_key == original_key))
                       .mappings().one())
    return Recorded(action=verdict.action, why=verdict.why, stored=stored, previous=existing, delta=delta,
                    cassettes=after, low_cash=now_low, became_low=tuple(p for p in now_low if p not in before_low),
                    newly_captured=verdict.newly_captured, mix_found=mix_found, notes_mismatch=mismatch)


def _aware(value: datetime) -> datetime:
    """A time read back from the database as UTC (SQLite returns it without its zone)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _present_only(outcome: DispenseOutcome, cassettes: tuple[Cassette, ...]) -> tuple[DispenseOutcome, tuple[int, ...]]:
    """Leave out note counts for positions the terminal has no cassette in (the registry and the terminal
    disagree): the money outcome still stands, and the audit trail says which counts were dropped."""
    assert outcome.movement is not None
    present = {c.position for c in cassettes}
    dropped = tuple(p for p in outcome.movement.positions if p not in present)
    if not dropped:
        return outcome, ()

    def keep(notes: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        a, b, c, d = (n if i + 1 in present else 0 for i, n in enumerate(notes))
        return (a, b, c, d)

    m = outcome.movement
    return replace(outcome, movement=Movement(keep(m.dispensed), keep(m.rejected), keep(m.retracted))), dropped


def _move(connection: Connection, terminal_id: str, delta: Movement) -> None:
    for position in delta.positions:
        i = position - 1
        connection.execute(CASSETTES.update().where(
            CASSETTES.c.terminal_id == terminal_id, CASSETTES.c.position == position,
        ).values(dispensed=CASSETTES.c.dispensed + delta.dispensed[i],
                 rejected=CASSETTES.c.rejected + delta.rejected[i],
                 retracted=CASSETTES.c.retracted + delta.retracted[i]))


def _audit(connection: Connection, terminal_id: str, key: str, action: Action, why: str, captured: bool,
           mix_found: bool, mismatch: int, dropped: tuple[int, ...], at: datetime) -> None:
    """Audit rows for what an operator may need to look at: corrections, ignored words, captures, notes that
    could not be counted or do not add up. Plain first reports and repeats are in ``atm_dispenses`` already."""
    if action in (Action.REPLACED, Action.IGNORED):
        insert_event(connection, terminal_id, f"dispense {action.value}", f"{key}: {why}", at, NODE)
    if captured:
        insert_event(connection, terminal_id, "capture", f"{key}: card captured", at, NODE)
    if not mix_found:
        insert_event(connection, terminal_id, "notes", f"{key}: no note counts and no mix makes the amount: no "
                     "notes counted", at, NODE)
    if mismatch:
        insert_event(connection, terminal_id, "notes", f"{key}: the notes counted differ from the amount by "
                     f"{mismatch:+d} (minor units)", at, NODE)
    if dropped:
        insert_event(connection, terminal_id, "notes", f"{key}: note counts for cassette(s) "
                     f"{', '.join(map(str, dropped))}, which the registry does not have, left out", at, NODE)


def _host_totals(connection: Connection, terminal_id: str, day: date, currency: str | None) -> Totals:
    if currency is None:
        currency = connection.execute(select(TERMINALS.c.currency).where(TERMINALS.c.id == terminal_id)).scalar()
    paid = DISPENSES.c.dispensed_amount > 0
    withdrawals = connection.execute(select(
        func.coalesce(func.sum(case((paid, 1), else_=0)), 0), func.coalesce(func.sum(DISPENSES.c.dispensed_amount), 0),
    ).where(DISPENSES.c.terminal_id == terminal_id, DISPENSES.c.business_date == day,
            DISPENSES.c.currency == currency)).one()
    deposits = connection.execute(select(
        func.coalesce(func.sum(case((DEPOSITS.c.amount > 0, 1), else_=0)), 0),
        func.coalesce(func.sum(DEPOSITS.c.amount), 0),
    ).where(DEPOSITS.c.terminal_id == terminal_id, DEPOSITS.c.business_date == day,
            DEPOSITS.c.currency == currency)).one()
    return Totals(int(withdrawals[0]), int(withdrawals[1]), int(deposits[0]), int(deposits[1]))


def _replenishment_of(row: RowLike) -> ReplenishmentRecord:
    counts = tuple(CassetteCount(**c) for c in json.loads(row["counts"]))
    cassettes = tuple(Cassette(c.position, c.currency, c.denomination, c.loaded) for c in counts)
    return ReplenishmentRecord(row["id"], row["terminal_id"], row["at"], row["actor"], Replenishment(counts, cassettes))
