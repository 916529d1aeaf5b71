"""The SQLite databases (the node's and the cells') are created private to their user: folder 0700, file 0600
(and SQLite gives its -wal and -shm files the file's mode)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from switch.cli.main import main
from switch.infra.db.engine import make_engine, sqlite_url


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default, under which files were created world-readable
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_is_private(tmp_path: Path, open_umask: None) -> None:
    file = tmp_path / "var" / "node.db"
    engine = make_engine(sqlite_url(file))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _mode(file.parent) == 0o700
        assert _mode(file) == 0o600
        assert _mode(Path(f"{file}-wal")) == 0o600
    finally:
        engine.dispose()


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path: Path, open_umask: None) -> None:
    file = tmp_path / "node.db"
    file.touch(mode=0o640)
    os.chmod(file, 0o640)
    make_engine(sqlite_url(file)).dispose()
    assert _mode(file) == 0o640


def test_db_upgrade_creates_the_nodes_database_private(tmp_path: Path, open_umask: None) -> None:
    (tmp_path / "node.toml").write_text(f'[node]\nname = "n"\nvar_dir = "{tmp_path / "var"}"\n')
    result = CliRunner().invoke(main, ["db", "upgrade", "--conf", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert _mode(tmp_path / "var") == 0o700 and _mode(tmp_path / "var" / "bulkhead.db") == 0o600
