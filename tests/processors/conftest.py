"""Fixtures of the processor tests: a cell database on every backend ``db_url`` gives (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from processors.storage import upgrade
from tests.conftest import migrated_engine


@pytest.fixture
def cell_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a cell database migrated to the newest revision (SQLite, and PostgreSQL when configured)."""
    with migrated_engine(db_url, upgrade) as engine:
        yield engine
