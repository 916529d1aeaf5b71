"""Bad configuration names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.cell.section import cells_of
from switch.config import NodeConfig, load_config, parse_config
from switch.model.errors import ConfigError

GOOD = """
[node]
name = "n1"
var_dir = "var"

[[listeners]]
name = "acq"
port = 8583
scheme = "generic"
framing = { kind = "binary2" }
allow = ["127.0.0.0/8"]

[[connectors]]
name = "up"
hosts = ["127.0.0.1:9583", "[::1]:9584"]
timeout_ms = 1500
"""


def parse(text: str) -> NodeConfig:
    return parse_config(text, Path("/etc/bulkhead/node.toml"))


def test_good_config_parses_with_defaults_and_resolved_paths() -> None:
    cfg = parse(GOOD)
    assert cfg.name == "n1"
    assert cfg.var_dir == Path("/etc/bulkhead/var")
    assert cfg.database_url == "sqlite:////etc/bulkhead/var/bulkhead.db"
    (lst,) = cfg.listeners
    assert (lst.port, lst.scheme, lst.framing_kind, lst.on_format_error) == (8583, "generic", "binary2", "keep")
    assert (lst.first_frame_timeout_ms, lst.frame_timeout_ms, lst.max_connections_per_peer) == (30_000, 10_000, 32)
    assert (lst.format_error_budget, lst.format_error_window_s) == (20, 60.0)
    assert (lst.max_wait_ms, lst.max_backlog) == (500, 10_000)
    (con,) = cfg.connectors
    assert con.hosts == (("127.0.0.1", 9583), ("::1", 9584))
    assert con.timeout_ms == 1500
    assert cfg.processes == 1
    assert parse(GOOD.replace('name = "n1"', 'name = "n1"\nprocesses = 2')).processes == 2
    assert (cfg.saf.max_attempts, cfg.saf.expire_after_s) == (10, 86_400)
    assert parse(GOOD + "\n[saf]\nmax_attempts = 0\n").saf.max_attempts == 0  # no limit but the age
    assert cfg.saf.window == 32
    assert parse(GOOD + "\n[saf]\nwindow = 1\n").saf.window == 1  # one entry at a time per destination


@pytest.mark.parametrize(("snippet", "key", "reason"), [
    (GOOD.replace("timeout_ms = 1500", "timeout_msec = 1500"), "connectors[0].timeout_msec",
     "did you mean 'timeout_ms'"),
    (GOOD.replace("port = 8583", 'port = "8583"'), "listeners[0].port", "expected an integer"),
    (GOOD.replace("port = 8583", "port = 70000"), "listeners[0].port", "between 0 and 65535"),
    (GOOD.replace('scheme = "generic"', 'scheme = "visa2"'), "listeners[0].scheme", "unknown scheme"),
    (GOOD.replace('"127.0.0.0/8"', '"localhost"'), "listeners[0].allow[0]", "not an IP network"),
    (GOOD.replace('"127.0.0.1:9583"', '"127.0.0.1"'), "connectors[0].hosts[0]", "host:port"),
    (GOOD.replace("timeout_ms = 1500", "timeout_ms = -1"), "connectors[0].timeout_ms", "greater than zero"),
    (GOOD + "degrade_after_timeouts = 0\n", "connectors[0].degrade_after_timeouts", "greater than zero"),
    (GOOD + "degrade_after_timeouts = 2.5\n", "connectors[0].degrade_after_timeouts", "expected an integer"),
    (GOOD.replace('name = "up"', 'name = "acq"'), "connectors[0].name", "already used"),
    (GOOD + "\n[surprise]\nx = 1\n", "surprise", "unknown key"),
    (GOOD.replace("[node]", "[nod]"), "node", "is required"),
    (GOOD + 'options = { signon = "001" }\n', "connectors[0].options.signon", "unknown key"),
    (GOOD + 'options = { echo_code = "31" }\n', "connectors[0].options.echo_code", "3 digits"),
    (GOOD + 'options = { echo_code = "301", cutover_code = "301" }\n', "connectors[0].options.cutover_code",
     "already the echo_code"),
    (GOOD + 'zmk = "Unot-a-key"\n', "connectors[0].zmk", ""),
    (GOOD.replace('framing = { kind = "binary2" }', 'framing = { kind = "binary2", sise = 2 }'),
     "listeners[0].framing.sise", "unknown key"),
    (GOOD.replace('framing = { kind = "binary2" }', 'framing = { kind = "visa" }'),
     "listeners[0].framing.kind", "generic"),
    (GOOD.replace('name = "n1"', 'name = "n1"\nprocesses = 0'), "node.processes", "between 1 and 64"),
    (GOOD.replace('name = "n1"', 'name = "n1"\nprocesses = 65'), "node.processes", "between 1 and 64"),
    (GOOD + "\n[saf]\nmax_attempts = -1\n", "saf.max_attempts", ""),
    (GOOD + "\n[saf]\nmax_attempt = 3\n", "saf.max_attempt", "did you mean 'max_attempts'"),
    (GOOD + "\n[saf]\nwindow = 0\n", "saf.window", "must be at least 1"),
    (GOOD + "\n[saf]\nwindow = 1001\n", "saf.window", "must be at most 1000"),
    (GOOD + "\n[saf]\nwindow = 2.5\n", "saf.window", "expected an integer"),
    (GOOD.replace("port = 8583", "port = 8583\nfirst_frame_timeout_ms = 0"), "listeners[0].first_frame_timeout_ms",
     "greater than zero"),
    (GOOD.replace("port = 8583", "port = 8583\nframe_timeout_ms = 1.5"), "listeners[0].frame_timeout_ms",
     "expected an integer"),
    (GOOD.replace("port = 8583", "port = 8583\nmax_connections_per_peer = -1"),
     "listeners[0].max_connections_per_peer", "greater than zero"),
    (GOOD.replace("port = 8583", "port = 8583\nformat_error_budget = 0"), "listeners[0].format_error_budget",
     "greater than zero"),
    (GOOD.replace("port = 8583", "port = 8583\nmax_wait_ms = 0"), "listeners[0].max_wait_ms", "greater than zero"),
    (GOOD.replace("port = 8583", "port = 8583\nmax_backlog = 1.5"), "listeners[0].max_backlog", "expected an integer"),
    (GOOD.replace("port = 8583", 'port = 8583\nformat_error_window_s = "1m"'),
     "listeners[0].format_error_window_s", "expected"),
    (GOOD.replace("port = 8583", "port = 8583\nfirst_frame_timeout = 5"), "listeners[0].first_frame_timeout",
     "did you mean 'first_frame_timeout_ms'"),
])
def test_bad_config_names_file_key_and_reason(snippet: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(snippet)
    assert info.value.file == "/etc/bulkhead/node.toml"
    assert info.value.key == key
    assert reason in str(info.value)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(("snippet", "needle", "key"), [
    (GOOD.replace("port = 8583", 'port = "8583"'), 'port = "8583"', "listeners[0].port"),
    (GOOD.replace("timeout_ms = 1500", "timeout_msec = 1500"), "timeout_msec", "connectors[0].timeout_msec"),
    (GOOD.replace('"127.0.0.1:9583"', '"127.0.0.1"'), 'hosts = ["127.0.0.1"', "connectors[0].hosts[0]"),
    (GOOD + "\n[surprise]\nx = 1\n", "[surprise]", "surprise"),
    (GOOD + "\n[cells]\ncount = \"two\"\n", 'count = "two"', "cells.count"),  # a section's key (processors)
    (GOOD + "\n[[connectors]]\nname = \"up\"\nhosts = [\"127.0.0.1:1\"]\n", 'name = "up"',
     "connectors[1].name"),
])
def test_config_errors_name_the_line(snippet: str, needle: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(snippet)
    line = _line_of(snippet, needle) if key != "connectors[1].name" else len(snippet.splitlines()) - 1
    assert info.value.key == key and info.value.line == line
    assert str(info.value).startswith(f"/etc/bulkhead/node.toml:{line}: {key}: ")


def test_a_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse("[node]\nname = \"n\"\nvar_dir = \n")
    assert info.value.line == 3 and str(info.value).startswith("/etc/bulkhead/node.toml:3: TOML syntax error")


def test_toml_syntax_error_names_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        parse("[node\nname=1")
    assert "TOML syntax error" in str(info.value)
    assert str(info.value).startswith("/etc/bulkhead/node.toml")


def test_demo_configuration_loads() -> None:
    root = Path(__file__).resolve().parents[3]
    cfg = load_config(root / "conf" / "demo")
    assert {lst.name: lst.port for lst in cfg.listeners} == {"acquirer": 8583, "atm": 8584}
    networks = ["visa", "unionpay", "mastercard", "amex"]
    assert [c.name for c in cfg.connectors] == ["issuer-sim", *networks, "cell-00", "cell-01"]
    assert [c.scheme for c in cfg.connectors][:5] == ["generic", *networks]
    assert cfg.routes.name == "routes.toml"
    assert [c.degrade_after_timeouts for c in cfg.connectors] == [3] * 7  # the default, and the demo's
    # The ATM port's PIN blocks go to the cells under the zone key their catalogue verifies with.
    assert cells_of(cfg.sections) is not None and cfg.hsm is not None and cfg.hsm.test_lmk
    assert {c.name: c.pin_key.type for c in cfg.connectors if c.pin_key} == {
        "issuer-sim": "ZPK", "cell-00": "ZPK", "cell-01": "ZPK", **{network: "ZPK" for network in networks}}
    from processors.catalog_file import load_catalog

    catalog = load_catalog(cells_of(cfg.sections).products)
    assert cells_of(cfg.sections).pin_key is not None
    assert {keys.zpk for keys in catalog.keys.values()} == {cells_of(cfg.sections).pin_key.key}


def test_admin_socket_path_too_long_for_a_unix_socket_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse(GOOD.replace('var_dir = "var"', f'var_dir = "{"v" * 120}"'))
    assert info.value.key == "node.admin_socket"
    assert "Unix socket" in info.value.reason


@pytest.mark.parametrize(("snippet", "key", "reason"), [
    (GOOD.replace('var_dir = "var"', 'var_dir = "var"\ndatabase_url = "nosuchdriver://u:secret@x/db"'),
     "node.database_url", "unsupported database"),
    (GOOD.replace('var_dir = "var"', 'var_dir = "var"\ndatabase_url = "::not a url::secret"'),
     "node.database_url", "not a database URL"),
    (GOOD + '\n[[listeners]]\nname = "again"\nport = 8583\n', "listeners[1].port", "already used"),
    (GOOD.replace("timeout_ms = 1500", "timeout_ms = 1500\nbackoff_initial_ms = 9000\nbackoff_max_ms = 100"),
     "connectors[0].backoff_initial_ms", "larger than backoff_max_ms"),
    (GOOD.replace('"127.0.0.0/8"', "5"), "listeners[0].allow[0]", "expected a network"),
])
def test_values_that_only_fail_later_are_refused_at_load(snippet: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(snippet)
    assert info.value.key == key
    assert reason in str(info.value)
    assert "secret" not in str(info.value)
