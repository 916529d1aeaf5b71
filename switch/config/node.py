"""``node.toml``: TOML parsed into frozen dataclasses, validated at load time.

Every error names the file, the dotted key and the reason (:class:`switch.model.errors.ConfigError`); unknown keys
are errors with a "did you mean" suggestion, because a misspelt timeout silently ignored is how outages start.
Relative paths are resolved against the folder of the file that names them.

Layout (see ``conf/demo/node.toml`` for a commented example)::

    [node]        name, var_dir, database_url, routes, admin_socket, hash_key_file, processes (1..64: node
                  processes sharing the listeners with SO_REUSEPORT, switch.runtime.workers)
    [journal]     max_batch, max_wait_ms
    [saf]         initial_delay_ms, retry_interval_ms, max_interval_ms, expire_after_s, send_timeout_ms,
                  poll_interval_ms, max_attempts, window (1..1000)
    [atmp]        confirm_timeout_s, sweep_interval_s, key_window_s (the ATM processor, for listeners with
                  atmp = true: switch.runtime.atmhost)
    [metrics]     host, port (Prometheus text format on http://host:port/metrics; absent: no endpoint)
    [hsm]         kind = "software" (lmk = FILE | test_lmk = true) | "thales" (host, port, header_length,
                  pool_size, timeout_ms); needed when a link has a pin_key (hsm.settings)
    [[listeners]] name, host, port, scheme, framing{...}, options{...}, max_connections, allow, idle_timeout_s,
                  on_format_error, tls{cert, key}, pin_key{type = TPK|ZPK, key = LMK cryptogram}, zmk,
                  max_inflight_per_connection, first_frame_timeout_ms, frame_timeout_ms,
                  max_connections_per_peer, format_error_budget, format_error_window_s, format_error_ban_after,
                  max_wait_ms, max_backlog, atmp
    [[connectors]] name, hosts, scheme, framing{...}, options{...}, timeout_ms, echo_interval_s, signon,
                  connect_timeout_s, backoff_initial_ms, backoff_max_ms, max_inflight, degrade_after_timeouts,
                  match_fields, pin_key{type = ZPK, key}, zmk

Any other table belongs to a section registered by another package (switch.contracts.section: ``[cells]`` of
the processor cells, ``[[simulators]]`` of the demo); a table nobody registered is an unknown key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm.settings import HsmSettings, hsm_settings
from switch.config.links import ConnectorConfig, ListenerConfig, connector, listener, requested_connector
from switch.contracts.registry import section, section_names
from switch.contracts.section import NodeContext, SectionConfig
from switch.infra.db.engine import check_url
from switch.model.errors import ConfigError
from switch.model.toml import TomlTable
from switch.model.tomlkeys import locate_keys, undotted


@dataclass(frozen=True)
class JournalConfig:
    max_batch: int = 500
    max_wait_ms: float = 0.5


@dataclass(frozen=True)
class SafConfig:
    initial_delay_ms: int = 1000
    retry_interval_ms: int = 5000
    max_interval_ms: int = 60_000
    expire_after_s: int = 86_400
    send_timeout_ms: int = 5000
    poll_interval_ms: int = 500
    # Attempts after which an undelivered entry becomes an exception for the operator (0: no limit; the age
    # limit, expire_after_s, still applies).
    max_attempts: int = 10
    # Entries of one destination in flight at once (switch.runtime.safd); entries for the same original still
    # go one after the other. 1: one entry at a time, as before the window.
    window: int = 32


# A bound on [saf] window: each entry in flight is a task and a pending request on a link it shares with live
# traffic (a connector's max_inflight); past this a drain gains nothing a bigger batch would not.
MAX_SAF_WINDOW = 1000


@dataclass(frozen=True)
class AtmpConfig:
    """The ATM processor (README "ATM processing (ATMP)")."""

    # An approved withdrawal the terminal has neither confirmed (0220) nor reversed (0420) this long after its
    # approval is taken as dispensed in full (the terminal reports a failure by 0420 and sends it until answered;
    # its silence after an approval means the cash went out), counted by the host's own note mix, and listed as
    # "assumed" in `bulkhead atm show` for the terminal's balancing to confirm.
    confirm_timeout_s: int = 300
    sweep_interval_s: int = 30  # how often the node looks for such withdrawals
    # How long a terminal's previous PIN and MAC keys stay valid after it confirmed new ones (161/162).
    key_window_s: float = 60.0


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int | None = None  # None: no metrics endpoint


@dataclass(frozen=True)
class NodeConfig:
    file: Path
    name: str
    var_dir: Path
    database_url: str
    routes: Path
    admin_socket: Path
    hash_key_file: Path
    listeners: tuple[ListenerConfig, ...]
    connectors: tuple[ConnectorConfig, ...]  # the configured ones, then those the sections asked for
    journal: JournalConfig = field(default_factory=JournalConfig)
    saf: SafConfig = field(default_factory=SafConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    atmp: AtmpConfig = field(default_factory=AtmpConfig)
    hsm: HsmSettings | None = None
    processes: int = 1  # [node] processes: node processes sharing the listeners (switch.runtime.workers)
    sections: Mapping[str, SectionConfig] = field(default_factory=dict)  # other packages' tables, by name
    # The connectors those sections asked for (the processor cells: the bank's own cards' destinations).
    section_links: frozenset[str] = frozenset()

    @property
    def link_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.connectors) | frozenset(x.name for x in self.listeners)


def _processes(t: TomlTable) -> int:
    processes: int = t.get("processes", int, 1)
    if not 1 <= processes <= 64:
        raise t.error("processes", "must be between 1 and 64 (one per core is the useful most)")
    return processes


def _array(root: TomlTable, name: str) -> list[TomlTable]:
    items = root.get(name, list, [])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise root.error(f"{name}[{i}]", "expected a table")
        out.append(TomlTable(item, root.file, f"{name}[{i}]"))
    return out


def load_config(conf: Path) -> NodeConfig:
    """Load ``node.toml`` from a folder (or the file itself)."""
    file = conf / "node.toml" if conf.is_dir() else conf
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), "", f"cannot read: {exc.strerror}") from None
    return parse_config(text, file)


def parse_config(text: str, file: Path) -> NodeConfig:
    """``text`` (the contents of ``file``) as a :class:`NodeConfig`; a :class:`ConfigError` about this file names
    the line of the key (as routing-table errors do), or of the nearest table that encloses it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(str(file), "", f"TOML syntax error: {exc}", int(found.group(1)) if found else None) \
            from None
    try:
        return _parse(data, file)
    except ConfigError as exc:
        if exc.line is not None or exc.file != str(file) or not exc.key:
            raise
        path = undotted(exc.key)
        line = locate_keys(text).line(path) if path else None
        if line is None:
            raise
        raise ConfigError(exc.file, exc.key, exc.reason, line) from None


def _parse(data: dict[str, Any], file: Path) -> NodeConfig:
    base = file.parent.resolve()
    root = TomlTable(data, str(file), "")
    node = root.table("node", required=True)
    assert node is not None
    var_dir = TomlTable.path(node.get("var_dir", str, "var"), base)
    db = node.get("database_url", str, "")
    journal_t = root.table("journal")
    saf_t = root.table("saf")
    metrics_t = root.table("metrics")
    atmp_t = root.table("atmp")
    hsm_t = root.table("hsm")
    hash_key_file = TomlTable.path(node.get("hash_key_file", str, str(var_dir / "data.key")), base)
    name = node.get("name", str, "bulkhead")
    listeners = tuple(listener(t, base) for t in _array(root, "listeners"))
    connectors = tuple(connector(t) for t in _array(root, "connectors"))
    metrics = _metrics(metrics_t) if metrics_t else MetricsConfig()
    bound = [(x.host, x.port, f"listeners[{i}].port") for i, x in enumerate(listeners)]
    if metrics.port:
        bound.append((metrics.host, metrics.port, "metrics.port"))
    context = NodeContext(file=file, base=base, name=name, var_dir=var_dir, hash_key_file=hash_key_file,
                          listener_ports=tuple(bound),
                          link_names=frozenset([x.name for x in listeners] + [c.name for c in connectors]))
    parsed = _sections(root, context)
    configured = len(connectors)
    for table, value in parsed.items():
        connectors += tuple(requested_connector(request, str(file), table) for request in value.links())
    cfg = NodeConfig(
        file=file,
        name=name,
        var_dir=var_dir,
        database_url=db or f"sqlite:///{var_dir / 'bulkhead.db'}",
        routes=TomlTable.path(node.get("routes", str, "routes.toml"), base),
        admin_socket=TomlTable.path(node.get("admin_socket", str, str(var_dir / "admin.sock")), base),
        hash_key_file=hash_key_file,
        listeners=listeners,
        connectors=connectors,
        journal=_journal(journal_t) if journal_t else JournalConfig(),
        saf=_saf(saf_t) if saf_t else SafConfig(),
        metrics=metrics,
        atmp=_atmp(atmp_t) if atmp_t else AtmpConfig(),
        hsm=hsm_settings(hsm_t, base) if hsm_t else None,
        processes=_processes(node),
        sections=parsed,
        section_links=frozenset(c.name for c in connectors[configured:]),
    )
    node.done()
    root.done()
    _check_names(cfg)
    _check_hsm(cfg)
    _check_paths(cfg)
    _check_ports(bound, str(file))
    reason = check_url(cfg.database_url)
    if reason is not None:  # the URL may hold a password: the reason never repeats it
        raise ConfigError(str(file), "node.database_url", reason)
    return cfg


def _sections(root: TomlTable, context: NodeContext) -> dict[str, SectionConfig]:
    """The tables registered sections own, each read by its section (an array section gets its items)."""
    parsed: dict[str, SectionConfig] = {}
    registered = section_names()
    root.used.update(registered)  # a misspelt table is refused by root.done() with the closest name suggested
    for name in sorted(registered & root.data.keys()):
        owner = section(name)
        if owner.array:
            tables = _array(root, name)
        else:
            table = root.table(name)
            assert table is not None
            tables = [table]
        parsed[name] = owner.parse(tables, context)
    return parsed


def _journal(t: TomlTable) -> JournalConfig:
    cfg = JournalConfig(t.positive("max_batch", 500), float(t.non_negative_number("max_wait_ms", 0.5)))
    t.done()
    return cfg


def _atmp(t: TomlTable) -> AtmpConfig:
    cfg = AtmpConfig(confirm_timeout_s=t.positive("confirm_timeout_s", 300),
                     sweep_interval_s=t.positive("sweep_interval_s", 30),
                     key_window_s=float(t.non_negative_number("key_window_s", 60.0)))
    t.done()
    return cfg


def _metrics(t: TomlTable) -> MetricsConfig:
    cfg = MetricsConfig(host=t.get("host", str, "127.0.0.1"), port=t.port())
    t.done()
    return cfg


def _saf(t: TomlTable) -> SafConfig:
    cfg = SafConfig(
        initial_delay_ms=t.non_negative("initial_delay_ms", 1000),
        retry_interval_ms=t.positive("retry_interval_ms", 5000),
        max_interval_ms=t.positive("max_interval_ms", 60_000),
        expire_after_s=t.positive("expire_after_s", 86_400),
        send_timeout_ms=t.positive("send_timeout_ms", 5000),
        poll_interval_ms=t.positive("poll_interval_ms", 500),
        max_attempts=t.non_negative("max_attempts", 10),
        window=t.integer("window", 32, low=1, high=MAX_SAF_WINDOW),
    )
    if cfg.retry_interval_ms > cfg.max_interval_ms:
        raise t.error("retry_interval_ms", f"is larger than max_interval_ms ({cfg.max_interval_ms})")
    t.done()
    return cfg


# sockaddr_un.sun_path holds 108 bytes on Linux, including the terminating NUL.
MAX_UNIX_PATH = 107


def _check_hsm(cfg: NodeConfig) -> None:
    if cfg.hsm is not None:
        return
    keyed = [f"listeners[{i}].pin_key" for i, x in enumerate(cfg.listeners) if x.pin_key is not None]
    keyed += [f"listeners[{i}].zmk" for i, x in enumerate(cfg.listeners) if x.zmk is not None]
    keyed += [f"connectors[{i}].pin_key" for i, c in enumerate(cfg.connectors) if c.pin_key is not None]
    keyed += [f"connectors[{i}].zmk" for i, c in enumerate(cfg.connectors) if c.zmk is not None]
    keyed += [f"listeners[{i}].mac" for i, x in enumerate(cfg.listeners) if x.mac is not None]
    keyed += [f"connectors[{i}].mac" for i, c in enumerate(cfg.connectors) if c.mac is not None]
    keyed += [f"listeners[{i}].atmp" for i, x in enumerate(cfg.listeners) if x.atmp]
    if keyed:
        raise ConfigError(str(cfg.file), keyed[0],
                          "needs an HSM (PIN translation, key exchange, MAC): add an [hsm] table")


def _check_ports(bound: list[tuple[str, int, str]], file: str) -> None:
    seen: dict[tuple[str, int], str] = {}
    for host, port, key in bound:
        if port == 0:
            continue
        if (host, port) in seen:
            raise ConfigError(file, key, f"{host}:{port} is already used by {seen[host, port].rsplit('.', 1)[0]}")
        seen[host, port] = key


def _check_paths(cfg: NodeConfig) -> None:
    if len(str(cfg.admin_socket).encode()) > MAX_UNIX_PATH:
        raise ConfigError(str(cfg.file), "node.admin_socket",
                          f"path {cfg.admin_socket} is longer than a Unix socket allows ({MAX_UNIX_PATH} bytes); "
                          "set a shorter admin_socket or var_dir")


def _check_names(cfg: NodeConfig) -> None:
    seen: dict[str, str] = {}
    named: list[tuple[str, list[str]]] = [
        ("listeners", [x.name for x in cfg.listeners]),
        ("connectors", [x.name for x in cfg.connectors]),
    ]
    for kind, names in named:
        for i, name in enumerate(names):
            if name in seen:
                raise ConfigError(str(cfg.file), f"{kind}[{i}].name", f"name {name!r} already used in {seen[name]}")
            seen[name] = kind
