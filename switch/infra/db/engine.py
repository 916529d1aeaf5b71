"""Database engines for every Bulkhead database (the node's and each cell's).

SQLite (WAL) is the embedded default; PostgreSQL through psycopg 3 is the production database. The schemas and
their migrations belong to their owners (:mod:`switch.storage`, :mod:`processors.storage`); this module only
makes engines and URLs.

A PostgreSQL schema other than ``public`` is chosen the libpq way, in the URL:
``postgresql+psycopg://user@host/db?options=-csearch_path%3Dswitch`` (the Alembic version table follows the
search path too).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import Pool

# Bound parameters SQLite accepts in one statement (SQLITE_MAX_VARIABLE_NUMBER): 32766 since 3.32.0, 999
# before. Multi-row INSERTs size their chunks by it, so an older library gets smaller chunks, not errors.
SQLITE_MAX_PARAMETERS: Final = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999

DEFAULT_BUSY_TIMEOUT_MS = 5000


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite database file (made absolute, so it does not depend on the working folder)."""
    return f"sqlite+pysqlite:///{Path(path).expanduser().resolve()}"


def postgresql_schema_url(url: str, schema: str) -> str:
    """``url`` with libpq ``options`` setting the search path to ``schema`` (tables and Alembic's version
    table then live there). The schema must already exist."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"schema name {schema!r} must be letters, digits and underscores")
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    poolclass: type[Pool] | None = None,
    echo: bool = False,
) -> Engine:
    """An engine configured for the switch: one journal writer thread plus occasional readers.

    SQLite: the parent folder is created; each connection gets WAL (readers never block the writer),
    ``synchronous=FULL`` (with group commit the fsync is paid once per batch, so FULL costs no more than
    NORMAL, see the project's performance notes), a busy timeout and foreign keys.
    PostgreSQL: a small pool with pre-ping, so a restarted server costs one failed checkout, not a batch.
    Bound parameters are hidden from logs and exception text (they hold masked card data at most, but
    nothing from a statement's values belongs in a log line).
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True, "future": True}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms, kwargs)
    if parsed.get_backend_name() == "postgresql":
        if poolclass is None:
            kwargs.update(pool_size=4, max_overflow=4, pool_timeout=10, pool_recycle=1800)
        kwargs["pool_pre_ping"] = True
        if "application_name" not in parsed.query:
            kwargs["connect_args"] = {"application_name": "bulkhead"}
    return create_engine(parsed, **kwargs)


def _sqlite_engine(parsed: URL, busy_timeout_ms: int, kwargs: dict[str, Any]) -> Engine:
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        _private_file(Path(database).expanduser())
    # The pool hands a connection to one thread at a time; the journal writer and to_thread readers
    # are different threads, so pysqlite's same-thread check must be off.
    kwargs["connect_args"] = {"check_same_thread": False}
    engine = create_engine(parsed, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine




def check_url(url: str) -> str | None:
    """Why ``url`` cannot be a Bulkhead database URL, or None when it can (SQLite or PostgreSQL). The reason never
    repeats the URL: it may hold a password."""
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return "not a database URL"
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return f"unsupported database {parsed.get_backend_name()!r} (sqlite or postgresql)"
    return None


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite database file (nothing for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def _private_file(path: Path) -> None:
    """Create a new SQLite database file 0600 in a folder created 0700 (the journal holds masked card data,
    keyed PAN hashes and sealed payloads: not for other users of the machine). SQLite gives its -wal and -shm
    files the database file's permissions. An existing file keeps its mode: the operator chose it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)
