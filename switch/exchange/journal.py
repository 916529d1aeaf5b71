"""An exchange as its journal row: the request and response masked by their networks, route, timings, outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from switch.exchange.context import Exchange
from switch.exchange.lifecycle import Outcome
from switch.storage.records import JournalRecord

# The outcome as plain text: a database driver binds an exact str directly, a str subclass (the StrEnum) through
# its adapter lookup (sqlite3: 1.7 against 3.1 us a row, on the journal writer's thread, which holds the GIL).
_TEXT = {outcome: str(outcome.value) for outcome in Outcome}


def now_utc() -> datetime:
    return datetime.now(UTC)


def journal_record(x: Exchange, node: str, pan_hash: Callable[[str], str],
                   business_dates: Mapping[str, str] | None = None) -> JournalRecord:
    """The row of ``x``. Its settlement date is DE 15 of the answer, else of the request, else the business date
    of the network on its way (its destination link's, then its source's, as their last cutover set it)."""
    req, resp = x.request, x.response
    request = req.masked()
    stan, rrn = req.stan, req.rrn
    saved = x.source_ids
    if saved:  # sent under the link's identity: the row keeps the source's, and what was sent in its own columns
        for number, value in saved.items():  # identity fields: plain text, never masked
            if value is None:
                request.pop(str(number), None)
            else:
                request[str(number)] = str(value)
        stan, rrn = _text(saved.get(11, stan)), _text(saved.get(37, rrn))
    settlement = (resp.fields.get(15) if resp is not None else None) or req.fields.get(15)
    if not settlement and business_dates:
        settlement = (business_dates.get(x.link.name) if x.link is not None else None) or \
            business_dates.get(x.source)
    return JournalRecord(
        trace_id=req.meta.trace_id, node=node, source_link=x.source,
        destination=x.link.name if x.link else None,
        route=x.decision.route if x.decision else None,
        mti_in=req.mti, mti_out=resp.mti if resp else None, processing_code=req.processing_code,
        stan=stan, rrn=rrn, terminal_id=req.terminal_id,
        pan_masked=req.masked_pan, pan_hash=x.pan_hash(pan_hash),
        amount=req.amount, currency=req.currency, response_code=resp.response_code if resp else None,
        outcome=_TEXT[x.outcome], received_at=x.received_at, responded_at=now_utc(),
        latency_us=int((time.perf_counter() - x.t0) * 1e6), upstream_us=x.upstream_us,
        request=request, response=resp.masked() if resp else None,
        upstream_stan=req.stan if saved is not None else None,
        upstream_time=req.text(7) if saved is not None else None,
        upstream_rrn=req.rrn if saved is not None else None,
        settlement_date=settlement if isinstance(settlement, str) else None,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
