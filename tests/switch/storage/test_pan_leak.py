"""No clear card data anywhere in the database when callers store what the switch masks.

Records are built from canonical messages that carry a clear PAN, track 2 and a PIN block; the SAF
payload is the message encrypted (AES-GCM) as the caller stores it. Then every column of every table is
searched, and for SQLite the raw database and WAL files too.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select

from switch.infra.db.engine import make_engine, sqlite_url
from switch.storage.audit import record_route_reload
from switch.storage.db import upgrade
from switch.storage.journal import JournalWriter
from switch.storage.models import Base
from switch.storage.saf import SafStore

from .factories import T0, record, request_message

PANS = ("4761739001010119", "5413330089010509", "6212345678901265")
TRACK2_DISCRETIONARY = "29122011234500000000"
PIN_BLOCK_HEX = "0123456789ABCDEF"
FORBIDDEN = (*PANS, TRACK2_DISCRETIONARY, PIN_BLOCK_HEX.lower(), PIN_BLOCK_HEX)


def _fill(engine: Engine) -> None:
    journal = JournalWriter(engine, max_wait=0.0)
    errors: list[BaseException | None] = []
    for n, pan in enumerate(PANS):
        journal.submit(record(n, pan=pan), errors.append)
    journal.close()
    assert errors == [None] * len(PANS)
    key = AESGCM.generate_key(bit_length=128)
    for n, pan in enumerate(PANS):
        message = request_message(pan, f"{n:06d}", f"{n:012d}")
        nonce = os.urandom(12)
        clear = repr(message.fields).encode()  # stands for the encoded message: it contains the PAN
        assert pan.encode() in clear
        SafStore(engine).enqueue(
            destination="visa", mti="0420", stan=message.stan, rrn=message.rrn,
            pan_masked=message.masked_pan, amount=message.amount, currency=message.currency,
            payload=nonce + AESGCM(key).encrypt(nonce, clear, None), original_trace_id=f"t{n}", now=T0,
            expires_at=None,
        )
    record_route_reload(
        engine, actor="ops", source="routes.toml", old_digest=None, new_digest="ab" * 32,
        diff="+ 476173 -> debit-1", outcome="applied", reason=None, at=T0,
    )


def _as_text(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        return raw.hex() + raw.hex().upper() + raw.decode("latin-1")
    return str(value)


def test_no_clear_card_data_in_any_column(db_engine: Engine) -> None:
    _fill(db_engine)
    seen: list[str] = []
    with db_engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                seen.extend(_as_text(value) for value in row)
    everything = "\n".join(seen)
    assert "476173******0119" in everything  # the search does see the stored card data, masked
    for secret in FORBIDDEN:
        assert secret not in everything


def test_no_clear_card_data_in_sqlite_files(tmp_path: Path) -> None:
    """The database file and its WAL, byte for byte (PostgreSQL's files belong to the server; the
    column check above covers it)."""
    database = tmp_path / "switch.db"
    upgrade(sqlite_url(database))
    engine = make_engine(sqlite_url(database))
    try:
        _fill(engine)
        while_open = _read_files(database)  # the WAL still holds the recent pages
        assert database.with_name("switch.db-wal") in while_open
    finally:
        engine.dispose()
    after_close = _read_files(database)  # closing checkpoints the WAL into the database file
    for raw in (b"".join(while_open.values()), b"".join(after_close.values())):
        assert b"476173******0119" in raw
        for secret in FORBIDDEN:
            assert secret.encode() not in raw


def _read_files(database: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in database.parent.iterdir() if p.name.startswith(database.name)}
