"""Reversals that reach a cell before the request they reverse (issue 11): remembered, then matched.

How it happens: the cell is down, the switch stands in and queues a 0220 advice; the acquirer, missing its answer,
sends a 0400 that reaches the restarted cell before the advice leaves the switch's store-and-forward queue (or a
0400 simply overtakes a slow original). Whatever the order in which an original, its advice, their repeats and
the reversal (and its repeats) arrive, the end state is the same: reversed means nothing posted or held.

The rules, applied by :class:`processors.engine.CellEngine`:

- A reversal (0400/0420, repeats 0401/0421) whose original is not on file is answered **25** (unable to locate
  record) and remembered as an :class:`~processors.model.EarlyReversal`, committed with that answer like any
  decision, so it survives a kill -9. Why 25 and not 00: the cell cannot tell an original that has not arrived
  yet from one it never had or has forgotten (older than ``txn_retention_days``); 00 would tell the acquirer a
  reversal took effect when an old original may still be posted. 25 is final for an acquirer and stays true:
  nothing matching it is posted later. A repeat is answered from what the cell knows then: 25 while the original
  is still unknown, 00 once it has arrived (and was declined) or once the reversal was applied to an advice. A
  reversal carrying a PAN that is not a card of the cell is not remembered (nothing can be posted to that card),
  and answered 25 as before. Nor is a reversal without a PAN (DE 2, or track 2): it could not tell one card from
  another, so with per-terminal STANs under one acquirer id it would stop another card's transaction (declined
  05) or reverse its stand-in advice (money lost). It is answered as before (25, or 00 after a decline).
- A reversal of an original the cell **declined** is acknowledged 00 as before (nothing to give back) and also
  remembered: the switch may have stood in after that decline (the cell's answer lost or late), and its advice,
  when it comes, must not stay posted either.
- It is matched like any reversal: by the :func:`~processors.fields.match_key` of the original (DE 90: MTI class,
  STAN, transmission date and time, acquirer; without DE 90 its own DE 11/7/32 in either class), by the keyed
  PAN hash, which must be the later request's, and by the terminal (DE 41) when both carry one: ATMs under one
  acquirer id often number their STANs each on their own, so the key alone can name two terminals' requests.
- **Full** reversal, then the original (0100/0200 or a repeat) arrives: declined **05** (do not honour), nothing
  posted, held or counted on the limits. 05 is the plain issuer decline: final for the acquirer (it reversed the
  transaction itself), not a code the switch stands in on (91/96), not 94 (the original is no duplicate).
- **Full** reversal, then its advice (0120/0220, e.g. the switch's stand-in advice) arrives: the advice is
  acknowledged 00 (an advice is accepted by its receiver), applied without checks as advices are, and the
  remembered reversal is applied to it in the same decision: hold released or posting reversed, fee and limit
  usage given back. The ledger shows both postings; nothing stays posted or held.
- **Partial** reversal (DE 95 with an actual amount A): the acquirer completed the transaction for A instead of
  DE 4 (an ATM's partial dispense), so the reversal does not cancel the transaction, it reduces it. The
  original, when it arrives, is decided as usual (an acquirer with a partial reversal had an approval, from the
  switch's stand-in); if it is approved, the partial reversal is applied in the same decision (its answer's DE 54
  shows the balance after it). If it is declined, nothing is posted and the partial waits for the advice, which
  is applied and then reduced to A. Either way A stays posted, once. A DE 95 of zero is a full reversal.
- Several reversals of one original (a 0400 and then a 0420): the largest wins (a full one over any partial;
  else the smallest remaining amount), applied once; all are marked applied.
- A completion (0220 naming a pre-authorization in DE 90) is matched to its pre-authorization as before, not to
  a remembered reversal of it.
- How many are remembered is capped: ``reversal_memory_per_card`` unexpired ones per card (default 10) and
  ``reversal_memory_total`` in the cell (default 100,000; counted in memory, where housekeeping drops expired
  ones every minute). Any peer can send 0400s naming real cards with fresh STANs, each a row and a memory entry
  for the retention, and every request pays for a match key while any is remembered. Past a cap the reversal is
  answered as it would be anyway (25; 00 after a decline) without being remembered, counted, and a warning
  naming the cap and the masked card is logged, at most one line per cap per minute (:class:`Caps`). A repeat of
  one already remembered is not new and is never refused.
- Remembered reversals expire after the bank's ``reversal_retention_days`` (products.toml, default 35, as long as
  an original is remembered for its reversals): they are then ignored, dropped from memory by the cell's
  housekeeping and deleted from its database (:func:`processors.storage.purge_early_reversals`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.catalog import Bank
from processors.fields import keys_from_de90, match_key, replacement_amount
from processors.model import EarlyReversal
from processors.state import CellState
from switch.infra.ratelog import SummaryLog
from switch.model.masking import mask_pan
from switch.model.message import FieldValue, Message

log = logging.getLogger("bulkhead.cells.early")
LOG_INTERVAL_S = 60.0  # at most one warning line per cap per this many seconds, with the count of the others


def _text(request: Message, number: int) -> str:
    value = request.fields.get(number)
    return value if isinstance(value, str) else ""


def remember(
    state: CellState, request: Message, key: str, pan_hash: str, now: datetime, retention_days: int,
) -> EarlyReversal:
    """Remember ``request`` (a reversal whose original is not on file, duplicate key ``key``) until
    ``retention_days`` after ``now``; the caller records the returned row in its changes."""
    keys = keys_from_de90(request)
    row = EarlyReversal(
        id=key, original_key=keys[0], alternate_key=keys[1] if len(keys) > 1 else "", pan_hash=pan_hash,
        mti=request.mti, stan=_text(request, 11), transmitted=_text(request, 7), terminal=_text(request, 41),
        acquirer=_text(request, 32), rrn=_text(request, 37), replacement=replacement_amount(request),
        received_at=now, expires_at=now + timedelta(days=retention_days),
    )
    state.put(row)
    return row


@dataclass
class Caps:
    """How many reversals a cell may remember (see the module docstring): ``per_card`` unexpired ones per keyed
    PAN hash, ``total`` in memory. ``refused`` counts the reversals not remembered because of a cap."""

    per_card: int
    total: int
    log: SummaryLog  # warnings, one line per cap per interval: a flood of 0400s must not become a flood of lines
    cell: int = 0
    refused: int = 0

    @classmethod
    def of(cls, bank: Bank, cell: int) -> Caps:
        return cls(bank.reversal_memory_per_card, bank.reversal_memory_total,
                   SummaryLog(log, interval=LOG_INTERVAL_S), cell)

    def admit(self, state: CellState, pan_hash: str, pan: str, now: datetime) -> bool:
        """Whether a new reversal for the card ``pan_hash`` may be remembered; if not, counted and logged (the
        card masked: first six and last four digits at most)."""
        if len(state.early_reversals) >= self.total:
            cap, limit = "reversal_memory_total", self.total
        else:
            # Only those still waiting for their original: one already applied protects nothing more, and must
            # not use up the card's room for a real reversal still to come.
            held = sum(1 for row in state.early_by_card.get(pan_hash, ())
                       if row.expires_at > now and row.applied_to is None)
            if held < self.per_card:
                return True
            cap, limit = "reversal_memory_per_card", self.per_card
        self.refused += 1
        self.log.note(cap, "cell %d: early reversal not remembered, %s (%d) reached (card %s): answered without it",
                      self.cell, cap, limit, mask_pan(pan))
        return False


def remembered(state: CellState, key: str, now: datetime) -> EarlyReversal | None:
    """The unexpired remembered reversal whose duplicate key is ``key`` (a repeat of it), if any."""
    row = state.early_reversals.get(key)
    return row if row is not None and row.expires_at > now else None


def reversals_of(state: CellState, request: Message, pan_hash: str, now: datetime) -> list[EarlyReversal]:
    """The unexpired remembered reversals of ``request`` (an original or an advice standing in for it: found by
    its own MTI class, DE 11, DE 7 and DE 32, the key a reversal names it by), for the same card and, when both
    carry DE 41, the same terminal."""
    get = request.fields.get
    key = match_key(request.mti[1], str(get(11, "")), str(get(7, "")), str(get(32, "")))
    listed = state.early_by_original.get(key)
    if not listed or not pan_hash:
        return []
    terminal = _text(request, 41)
    # A row without a PAN hash (remembered before PAN-less reversals stopped being remembered) matches nothing:
    # it cannot tell one card from another.
    return [row for row in listed
            if row.expires_at > now and row.pan_hash == pan_hash
            and (not terminal or not row.terminal or row.terminal == terminal)]


def is_full(rows: list[EarlyReversal]) -> bool:
    """Whether any of ``rows`` reverses the whole transaction (no DE 95, or an actual amount of zero)."""
    return any(not row.replacement for row in rows)


def strongest(rows: list[EarlyReversal]) -> EarlyReversal:
    """The reversal of ``rows`` that leaves the least posted: a full one, else the smallest actual amount."""
    return min(rows, key=lambda row: row.replacement or 0)


def forget_expired(state: CellState, now: datetime) -> int:
    """Drop remembered reversals expired at ``now`` from memory; returns how many."""
    old = [row for row in state.early_reversals.values() if row.expires_at <= now]
    for row in old:
        state.forget_early_reversal(row)
    return len(old)


def reversal_message(row: EarlyReversal) -> Message:
    """The remembered reversal as a message without card data (what its Txn records when it is applied)."""
    fields: dict[int, FieldValue] = {11: row.stan, 7: row.transmitted, 41: row.terminal, 32: row.acquirer,
                                     37: row.rrn}
    if row.replacement is not None:
        fields[95] = f"{row.replacement:012d}" + "0" * 30
    return Message(row.mti, {number: value for number, value in fields.items() if value != ""})
