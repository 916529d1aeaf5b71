"""Builders of realistic storage inputs: journal records made from canonical messages carrying clear
card data, masked the way the switch masks them (switch.model.message.Message.masked, switch.model.masking)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from switch.model.masking import pan_hash
from switch.model.message import Message, MessageMeta
from switch.storage.records import JournalRecord

# Test card numbers (Luhn-valid, not issued) and a test-only HMAC key.
PAN = "4761739001010119"
PAN_KEY = b"test-only pan hash key 32 bytes!"
T0 = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


def request_message(pan: str = PAN, stan: str = "000001", rrn: str = "000000000001") -> Message:
    fields: dict[int, str | bytes] = {
        2: pan,
        3: "010000",
        4: "000000012345",
        7: "0314092653",
        11: stan,
        35: f"{pan}=29122011234500000000",
        37: rrn,
        41: "ATM00001",
        49: "840",
        52: bytes.fromhex("0123456789ABCDEF"),
    }
    return Message("0200", fields, MessageMeta(source_link="atm", scheme="atm", trace_id=f"t-{rrn}"))


def record(
    n: int = 1,
    *,
    pan: str = PAN,
    node: str = "node-a",
    outcome: str = "approved",
    at: datetime = T0,
) -> JournalRecord:
    """The journal record of exchange number ``n``: distinct trace id, STAN and RRN per ``n``."""
    stan = f"{n % 1_000_000:06d}"
    rrn = f"{n:012d}"
    request = request_message(pan, stan, rrn)
    response = request.make_response("00")
    received = at + timedelta(milliseconds=n)
    return JournalRecord(
        trace_id=f"trace-{n:08d}",
        node=node,
        source_link="atm",
        destination="debit-1",
        route="onus-debit",
        mti_in=request.mti,
        mti_out=response.mti,
        processing_code=request.processing_code,
        stan=stan,
        rrn=rrn,
        terminal_id=request.terminal_id,
        pan_masked=request.masked_pan,
        pan_hash=pan_hash(pan, PAN_KEY),
        amount=request.amount,
        currency=request.currency,
        response_code="00",
        outcome=outcome,
        received_at=received,
        responded_at=received + timedelta(microseconds=850),
        latency_us=850,
        upstream_us=600,
        request=request.masked(),
        response=response.masked(),
    )
