"""``--log-level`` and ``--plain-logs``: a bad level is a usage error, debug adds masked lines, and the node's
choice reaches the processes it starts (cells, other node processes)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from processors.cell.section import cells_of
from processors.cell.supervisor import CellSupervisor
from switch.cli.cell import cell_run
from switch.cli.main import main
from switch.config import parse_config
from switch.infra import logs
from tests.integration.cells_harness import PRODUCTS


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("argv", [
    ["run", "--log-level", "loud"],
    ["cell", "run", "--cell", "0", "--log-level", "loud"],
    ["hsm", "serve", "--port", "0", "--header-length", "4", "--test-lmk", "--log-level", "loud"],
])
def test_an_unknown_log_level_is_a_usage_error_not_a_traceback(argv: list[str]) -> None:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    assert "Invalid value for '--log-level'" in result.output
    assert "'loud' is not one of 'debug', 'info', 'warning', 'error', 'critical'" in result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)


def test_setup_refuses_an_unknown_level_with_a_typed_error(root_logging: None) -> None:
    before = logging.getLogger().handlers[:]
    with pytest.raises(logs.LogLevelError, match="unknown log level 'verbose'"):
        logs.setup("verbose")
    assert logging.getLogger().handlers == before  # nothing changed
    logs.setup("DEBUG")  # any case
    assert logging.getLogger().level == logging.DEBUG


def _cells(tmp_path: Path) -> object:
    file = tmp_path / "node.toml"
    file.write_text(f'[node]\nname = "n"\nvar_dir = "{tmp_path / "var"}"\n\n[cells]\ncount = 1\nbase_port = 19700\n')
    (tmp_path / "products.toml").write_text(PRODUCTS)
    return cells_of(parse_config(file.read_text(), file).sections)


def test_the_cells_are_started_with_the_nodes_log_level_and_format(tmp_path: Path, root_logging: None) -> None:
    supervisor = CellSupervisor(_cells(tmp_path))  # type: ignore[arg-type]
    logs.setup("debug", json_lines=False)
    cmd = supervisor.command(0)
    assert cmd[1:4] == ["-m", "switch.cli.cell", "run"]
    ctx = cell_run.make_context("run", cmd[4:])  # the cell's own command line accepts what it is given
    assert (ctx.params["log_level"], ctx.params["plain_logs"], ctx.params["number"]) == ("debug", True, 0)
    logs.setup("warning", json_lines=True)
    ctx = cell_run.make_context("run", supervisor.command(0)[4:])
    assert (ctx.params["log_level"], ctx.params["plain_logs"]) == ("warning", False)


def test_child_args_follow_the_setup(root_logging: None) -> None:
    logs.setup("error", json_lines=False)
    assert logs.child_args() == ["--log-level", "error", "--plain-logs"]
    logs.setup("info")
    assert logs.child_args() == ["--log-level", "info"]
