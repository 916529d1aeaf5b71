"""Shared test fixtures.

Database fixtures: every test that takes ``db_url`` runs on a fresh SQLite file and, when the environment
variable BULKHEAD_TEST_DATABASE_URL is set (CI sets it), on PostgreSQL too. With the variable set the
PostgreSQL case always runs: an unreachable server is an error, never a skip. A PostgreSQL-only test
asks for ``@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)``. Each PostgreSQL test gets its
own schema (search_path set through the URL), dropped afterwards, because several test runs share the
database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from switch.infra.db.engine import make_engine, postgresql_schema_url, sqlite_url
from switch.storage.db import upgrade

PG_URL_ENV = "BULKHEAD_TEST_DATABASE_URL"


def _backends() -> list[object]:
    backends: list[object] = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(PG_URL_ENV):
        backends.append(pytest.param("postgresql", id="postgresql"))
    return backends


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database (no tables): a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "db" / "switch.db")
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:  # only reachable through indirect parametrisation of a PostgreSQL-only test
        pytest.skip(f"{PG_URL_ENV} is not set: no PostgreSQL configured")
    schema = f"bh_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield postgresql_schema_url(base, schema)
    finally:
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            admin.dispose()


@contextmanager
def migrated_engine(url: str, upgrade: Callable[[str], None]) -> Iterator[Engine]:
    """An engine on the database at ``url`` once ``upgrade(url)`` has migrated it (the switch's schema or a
    cell's), disposed of afterwards."""
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the newest revision."""
    with migrated_engine(db_url, upgrade) as engine:
        yield engine
