"""The [cells] table: defaults, the connectors it adds, and bad values named by file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.cell.section import cells_of
from switch.config import NodeConfig, parse_config
from switch.model.errors import ConfigError

BASE = """
[node]
name = "n1"
var_dir = "var"

[[listeners]]
name = "acq"
port = 8583

[[connectors]]
name = "up"
hosts = ["127.0.0.1:9583"]
"""

CELLS = """
[cells]
count = 4
base_port = 9700
hsm = { kind = "software", test_lmk = true }
"""


def parse(text: str) -> NodeConfig:
    return parse_config(text, Path("/etc/bulkhead/node.toml"))


def test_cells_defaults_and_one_connector_per_cell() -> None:
    cfg = parse(BASE + CELLS)
    cells = cells_of(cfg.sections)
    assert cells is not None
    assert (cells.count, cells.host, cells.base_port, cells.timeout_ms, cells.supervise) == (
        4, "127.0.0.1", 9700, 2000, True)
    assert cells.products == Path("/etc/bulkhead/products.toml")
    assert cells.url(3) == "sqlite:////etc/bulkhead/var/cells/cell-03.db"
    assert cells.admin_socket(1) == Path("/etc/bulkhead/var/cells/cell-01.sock")
    assert cells.lock_file(2) == Path("/etc/bulkhead/var/cells/cell-02.lock")
    assert cells.hash_key_file == cfg.hash_key_file
    assert cells.node_file == Path("/etc/bulkhead/node.toml")
    assert cells.hsm is not None and (cells.hsm.kind, cells.hsm.test_lmk) == ("software", True)
    names = [c.name for c in cfg.connectors]
    assert names == ["up", "cell-00", "cell-01", "cell-02", "cell-03"]
    cell2 = cfg.connectors[3]
    assert (cell2.hosts, cell2.scheme, cell2.framing_kind, cell2.signon, cell2.timeout_ms) == (
        (("127.0.0.1", 9702),), "generic", "binary2", True, 2000)
    assert "cell-03" in cfg.link_names


def test_no_cells_table_means_no_cells() -> None:
    cfg = parse(BASE)
    assert cells_of(cfg.sections) is None
    assert [c.name for c in cfg.connectors] == ["up"]


def test_cells_options() -> None:
    cfg = parse(BASE + """
[cells]
count = 2
host = "127.0.0.2"
base_port = 9800
database_url = "postgresql+psycopg://bh@db/cell{cell}"
products = "/srv/products.toml"
timeout_ms = 800
restart_backoff_ms = 100
restart_backoff_max_ms = 1000
max_batch = 100
max_wait_ms = 0
supervise = false
hsm = { kind = "thales", host = "10.0.0.5", port = 1500 }
""")
    cells = cells_of(cfg.sections)
    assert cells is not None
    assert cells.url(1) == "postgresql+psycopg://bh@db/cell1"
    assert (cells.timeout_ms, cells.max_batch, cells.max_wait_ms, cells.supervise) == (800, 100, 0.0, False)
    assert (cells.restart_backoff_ms, cells.restart_backoff_max_ms) == (100, 1000)
    assert cells.hsm is not None and (cells.hsm.kind, cells.hsm.host, cells.hsm.port) == ("thales", "10.0.0.5", 1500)
    assert cfg.connectors[-1].hosts == (("127.0.0.2", 9801),)
    with pytest.raises(ConfigError, match="there is no cell 2"):
        cells.check_cell(2)


@pytest.mark.parametrize(("cells", "key", "reason"), [
    ("count = 0\nbase_port = 9700", "cells.count", "greater than zero"),
    ("count = 101\nbase_port = 9700", "cells.count", "at most 100"),
    ("count = 4", "cells.base_port", "is required"),
    ("count = 4\nbase_port = 65533", "cells.base_port", "must fit"),
    ("count = 2\nbase_port = 9700\ndatabase_url = \"sqlite:///one.db\"", "cells.database_url", "must contain {cell}"),
    ("count = 2\nbase_port = 9700\ndatabase_url = \"sqlite:///{cel}.db\"", "cells.database_url", "bad template"),
    ("count = 2\nbase_port = 9700\ndatabase_url = \"mysql://x/{cell}\"", "cells.database_url", "unsupported"),
    ("count = 2\nbase_port = 9700\nhsm = { kind = \"software\" }", "cells.hsm.lmk", "exactly one"),
    ("count = 2\nbase_port = 9700\nhsm = { kind = \"cloud\" }", "cells.hsm.kind", "software"),
    ("count = 2\nbase_port = 9700\nrestart_backoff_ms = 5000\nrestart_backoff_max_ms = 100",
     "cells.restart_backoff_ms", "larger than"),
    ("count = 2\nbase_port = 9700\nsupervise = 1", "cells.supervise", "expected a boolean"),
    ("count = 2\nbase_port = 9700\nbase_prt = 1", "cells.base_prt", "did you mean 'base_port'"),
    ("count = 2\nbase_port = 8582", "listeners[0].port", "also the port of cell-01"),
])
def test_bad_cells_table(cells: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(BASE + "\n[cells]\n" + cells + "\n")
    assert info.value.file == "/etc/bulkhead/node.toml"
    assert info.value.key == key
    assert reason in info.value.reason


def test_a_connector_named_like_a_cell_is_refused() -> None:
    text = BASE.replace('name = "up"', 'name = "cell-01"') + CELLS
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert "already used" in info.value.reason


def test_supervisor_refuses_a_missing_catalogue_or_a_foreign_zone_key(tmp_path: Path) -> None:
    from processors.cell.supervisor import CellSupervisor

    demo = Path(__file__).resolve().parents[3] / "conf" / "demo" / "products.toml"
    cfg = parse_config(BASE + CELLS, tmp_path / "node.toml")
    assert cells_of(cfg.sections) is not None
    with pytest.raises(ConfigError) as missing:
        CellSupervisor(cells_of(cfg.sections))
    assert missing.value.file == str(tmp_path / "products.toml")
    (tmp_path / "products.toml").write_text(demo.read_text())
    CellSupervisor(cells_of(cfg.sections))  # the catalogue loads; no pin_key: nothing to compare
    foreign = 'pin_key = { type = "ZPK", key = "U06B495AAAD084746B5D75349D9077F48" }\n'
    node_hsm = '\n[hsm]\nkind = "software"\ntest_lmk = true\n'
    cfg = parse_config(BASE + node_hsm + CELLS + foreign, tmp_path / "node.toml")
    assert cells_of(cfg.sections) is not None
    with pytest.raises(ConfigError) as mismatch:
        CellSupervisor(cells_of(cfg.sections))
    assert mismatch.value.key == "cells.pin_key" and "key set 'demo'" in mismatch.value.reason
