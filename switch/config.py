"""Node configuration: TOML parsed into frozen dataclasses, validated at load time.

Every error names the file, the dotted key and the reason (:class:`switch.model.errors.ConfigError`); unknown keys
are errors with a "did you mean" suggestion, because a misspelt timeout silently ignored is how outages start.
Relative paths are resolved against the folder of the file that names them.

Layout of ``node.toml`` (see ``conf/demo/node.toml`` for a commented example)::

    [node]        name, var_dir, database_url, routes, admin_socket, hash_key_file, processes (1..64: node
                  processes sharing the listeners with SO_REUSEPORT, switch.runtime.workers)
    [journal]     max_batch, max_wait_ms
    [saf]         initial_delay_ms, retry_interval_ms, max_interval_ms, expire_after_s, send_timeout_ms
    [metrics]     host, port (Prometheus text format on http://host:port/metrics; absent: no endpoint)
    [hsm]         kind = "software" (lmk = FILE | test_lmk = true) | "thales" (host, port, header_length,
                  pool_size, timeout_ms); needed when a link has a pin_key
    [[listeners]] name, host, port, scheme, framing{...}, max_connections, allow, idle_timeout_s,
                  on_format_error, tls{cert, key}, pin_key{type = TPK|ZPK, key = LMK cryptogram}
    [[connectors]] name, hosts, scheme, framing{...}, timeout_ms, echo_interval_s, signon,
                  connect_timeout_s, backoff_initial_ms, backoff_max_ms, max_inflight, pin_key{type = ZPK, key}
    [[simulators]] name, host, port, scheme, framing{...}, rules   (demo only: an issuer simulator
                  started inside the node)
    [cells]       count, host, base_port, database_url, products, timeout_ms, hsm{...}, ... (issuer processor
                  cells: switch.cells.config; each adds a connector named cell-00, cell-01, ...)
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hsm.api import PinKey
from hsm.settings import HsmSettings, hsm_settings, pin_key
from switch.infra.toml import TomlTable
from switch.model.errors import ConfigError
from switch.wire.framing import FramingConfig, framing_config_from_dict

if TYPE_CHECKING:
    from switch.cells.config import CellsConfig


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ListenerConfig:
    name: str
    host: str
    port: int
    scheme: str
    framing: FramingConfig
    max_connections: int = 100
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    idle_timeout_s: float = 300.0
    on_format_error: str = "keep"  # "keep" the connection after a frame we could not answer, or "close"
    tls: TlsConfig | None = None
    # Requests one connection may have in progress; beyond it the node stops reading that connection.
    max_inflight_per_connection: int = 256
    pin_key: PinKey | None = None  # DE 52 arrives under this key; translated to the destination's key


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    hosts: tuple[tuple[str, int], ...]
    scheme: str
    framing: FramingConfig
    timeout_ms: int = 5000
    echo_interval_s: float = 30.0
    signon: bool = True
    connect_timeout_s: float = 5.0
    backoff_initial_ms: int = 200
    backoff_max_ms: int = 30_000
    max_inflight: int = 10_000
    # Fields that, with the folded MTI, pair a response with its request on this link; None: the scheme's
    # default (11 + 41). Some hosts match on 37 (RRN) or on 11 alone.
    match_fields: tuple[int, ...] | None = None
    pin_key: PinKey | None = None  # the zone key this destination expects DE 52 under


@dataclass(frozen=True)
class SimulatorConfig:
    name: str
    host: str
    port: int
    scheme: str
    framing: FramingConfig
    rules: Path | None = None


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
    connectors: tuple[ConnectorConfig, ...]
    simulators: tuple[SimulatorConfig, ...] = ()
    journal: JournalConfig = field(default_factory=JournalConfig)
    saf: SafConfig = field(default_factory=SafConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    hsm: HsmSettings | None = None
    cells: CellsConfig | None = None  # [cells]: issuer processor cells (their connectors are in `connectors`)
    processes: int = 1  # [node] processes: node processes sharing the listeners (switch.runtime.workers)

    @property
    def link_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.connectors) | frozenset(x.name for x in self.listeners)


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _processes(t: TomlTable) -> int:
    processes: int = t.get("processes", int, 1)
    if not 1 <= processes <= 64:
        raise t.error("processes", "must be between 1 and 64 (one per core is the useful most)")
    return processes


def _port(t: TomlTable, name: str = "port") -> int:
    port = t.get(name, int, required=True)
    if not 0 <= port <= 65535:
        raise t.error(name, "must be between 0 and 65535")
    return int(port)


def _framing(t: TomlTable) -> FramingConfig:
    t.used.add("framing")
    raw = t.data.get("framing", {"kind": "binary2"})
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise t.error("framing", "expected a table or a framing name")
    return framing_config_from_dict(raw, t.file, t.key("framing"))


def _scheme(t: TomlTable) -> str:
    from schemes.registry import registry

    name = t.get("scheme", str, "generic")
    known = registry()
    if name not in known:
        raise t.error("scheme", f"unknown scheme {name!r} (known: {', '.join(sorted(known))})")
    return str(name)


def _listener(t: TomlTable, base: Path) -> ListenerConfig:
    allow = []
    for i, cidr in enumerate(t.get("allow", list, [])):
        if not isinstance(cidr, str):
            raise t.error(f"allow[{i}]", f"expected a network like '10.1.0.0/16', got {type(cidr).__name__}")
        try:
            allow.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise t.error(f"allow[{i}]", f"not an IP network: {cidr!r}") from None
    policy = t.get("on_format_error", str, "keep")
    if policy not in ("keep", "close"):
        raise t.error("on_format_error", "must be 'keep' or 'close'")
    tls = None
    tls_t = t.table("tls")
    if tls_t is not None:
        tls = TlsConfig(_path(base, tls_t.get("cert", str, required=True)),
                        _path(base, tls_t.get("key", str, required=True)))
        tls_t.done()
    cfg = ListenerConfig(
        name=t.get("name", str, required=True),
        host=t.get("host", str, "127.0.0.1"),
        port=_port(t),
        scheme=_scheme(t),
        framing=_framing(t),
        max_connections=t.positive("max_connections", 100),
        allow=tuple(allow),
        idle_timeout_s=float(t.positive("idle_timeout_s", 300.0, integer=False)),
        on_format_error=policy,
        tls=tls,
        max_inflight_per_connection=t.positive("max_inflight_per_connection", 256),
        pin_key=pin_key(t, ("TPK", "ZPK")),
    )
    t.done()
    return cfg


def _hostport(t: TomlTable, i: int, value: Any) -> tuple[str, int]:
    key = f"hosts[{i}]"
    if not isinstance(value, str) or ":" not in value:
        raise t.error(key, "expected 'host:port'")
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise t.error(key, f"bad port in {value!r}")
    return host.strip("[]"), int(port)


def _connector(t: TomlTable) -> ConnectorConfig:
    hosts = tuple(_hostport(t, i, v) for i, v in enumerate(t.get("hosts", list, required=True)))
    if not hosts:
        raise t.error("hosts", "needs at least one 'host:port'")
    cfg = ConnectorConfig(
        name=t.get("name", str, required=True),
        hosts=hosts,
        scheme=_scheme(t),
        framing=_framing(t),
        timeout_ms=t.positive("timeout_ms", 5000),
        echo_interval_s=float(t.positive("echo_interval_s", 30.0, integer=False)),
        signon=t.get("signon", bool, True),
        connect_timeout_s=float(t.positive("connect_timeout_s", 5.0, integer=False)),
        backoff_initial_ms=t.positive("backoff_initial_ms", 200),
        backoff_max_ms=t.positive("backoff_max_ms", 30_000),
        max_inflight=t.positive("max_inflight", 10_000),
        match_fields=_match_fields(t),
        pin_key=pin_key(t, ("ZPK",)),
    )
    if cfg.backoff_initial_ms > cfg.backoff_max_ms:
        raise t.error("backoff_initial_ms", f"is larger than backoff_max_ms ({cfg.backoff_max_ms})")
    t.done()
    return cfg


def _match_fields(t: TomlTable) -> tuple[int, ...] | None:
    raw = t.get("match_fields", list, None)
    if raw is None:
        return None
    if not raw:
        raise t.error("match_fields", "needs at least one field number")
    for i, number in enumerate(raw):
        if isinstance(number, bool) or not isinstance(number, int) or not 2 <= number <= 128:
            raise t.error(f"match_fields[{i}]", "expected a field number between 2 and 128")
    return tuple(raw)


def _simulator(t: TomlTable, base: Path) -> SimulatorConfig:
    rules = t.get("rules", str, None)
    cfg = SimulatorConfig(
        name=t.get("name", str, required=True),
        host=t.get("host", str, "127.0.0.1"),
        port=_port(t),
        scheme=_scheme(t),
        framing=_framing(t),
        rules=_path(base, rules) if rules else None,
    )
    t.done()
    return cfg


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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "", f"TOML syntax error: {exc}") from None
    base = file.parent.resolve()
    root = TomlTable(data, str(file), "")
    node = root.table("node", required=True)
    assert node is not None
    var_dir = _path(base, node.get("var_dir", str, "var"))
    db = node.get("database_url", str, "")
    journal_t = root.table("journal")
    saf_t = root.table("saf")
    metrics_t = root.table("metrics")
    hsm_t = root.table("hsm")
    hash_key_file = _path(base, node.get("hash_key_file", str, str(var_dir / "data.key")))
    cells = _cells(root, base, file, var_dir, hash_key_file)
    connectors = tuple(_connector(t) for t in _array(root, "connectors"))
    cfg = NodeConfig(
        file=file,
        name=node.get("name", str, "bulkhead"),
        var_dir=var_dir,
        database_url=db or f"sqlite:///{var_dir / 'bulkhead.db'}",
        routes=_path(base, node.get("routes", str, "routes.toml")),
        admin_socket=_path(base, node.get("admin_socket", str, str(var_dir / "admin.sock"))),
        hash_key_file=hash_key_file,
        listeners=tuple(_listener(t, base) for t in _array(root, "listeners")),
        connectors=connectors + (cells.connectors() if cells else ()),
        simulators=tuple(_simulator(t, base) for t in _array(root, "simulators")),
        journal=_journal(journal_t) if journal_t else JournalConfig(),
        saf=_saf(saf_t) if saf_t else SafConfig(),
        metrics=_metrics(metrics_t) if metrics_t else MetricsConfig(),
        hsm=hsm_settings(hsm_t, base) if hsm_t else None,
        cells=cells,
        processes=_processes(node),
    )
    node.done()
    root.done()
    _check_names(cfg)
    _check_hsm(cfg)
    _check_paths(cfg)
    _check_ports(cfg)
    _check_database_url(cfg)
    if cells is not None:
        from switch.cells.config import check_cell_ports

        check_cell_ports(cells, cfg.listeners, file)
    return cfg


def _cells(root: TomlTable, base: Path, file: Path, var_dir: Path, hash_key_file: Path) -> CellsConfig | None:
    """The optional ``[cells]`` table, read by :mod:`switch.cells.config` (imported here, not at the top:
    it builds on this module's table reader)."""
    cells_t = root.table("cells")
    if cells_t is None:
        return None
    from switch.cells.config import parse_cells

    return parse_cells(cells_t, base, node_file=file, var_dir=var_dir, hash_key_file=hash_key_file)


def _journal(t: TomlTable) -> JournalConfig:
    cfg = JournalConfig(t.positive("max_batch", 500), float(t.non_negative_number("max_wait_ms", 0.5)))
    t.done()
    return cfg


def _metrics(t: TomlTable) -> MetricsConfig:
    cfg = MetricsConfig(host=t.get("host", str, "127.0.0.1"), port=_port(t))
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
    )
    if cfg.retry_interval_ms > cfg.max_interval_ms:
        raise t.error("retry_interval_ms", f"is larger than max_interval_ms ({cfg.max_interval_ms})")
    t.done()
    return cfg


# sockaddr_un.sun_path holds 108 bytes on Linux, including the terminating NUL.
_MAX_UNIX_PATH = 107


def _check_database_url(cfg: NodeConfig) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(cfg.database_url)
    except ArgumentError:
        # The text may hold a password: say what is wrong, never echo it.
        raise ConfigError(str(cfg.file), "node.database_url", "not a database URL") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(str(cfg.file), "node.database_url",
                          f"unsupported database {url.get_backend_name()!r} (sqlite or postgresql)")


def _check_hsm(cfg: NodeConfig) -> None:
    if cfg.hsm is not None:
        return
    keyed = [f"listeners[{i}]" for i, x in enumerate(cfg.listeners) if x.pin_key is not None]
    keyed += [f"connectors[{i}]" for i, c in enumerate(cfg.connectors) if c.pin_key is not None]
    if keyed:
        raise ConfigError(str(cfg.file), f"{keyed[0]}.pin_key", "PIN translation needs an HSM: add an [hsm] table")


def _check_ports(cfg: NodeConfig) -> None:
    seen: dict[tuple[str, int], str] = {}
    bound = [(x.host, x.port, f"listeners[{i}]") for i, x in enumerate(cfg.listeners)]
    bound += [(x.host, x.port, f"simulators[{i}]") for i, x in enumerate(cfg.simulators)]
    if cfg.metrics.port:
        bound.append((cfg.metrics.host, cfg.metrics.port, "metrics"))
    for host, port, key in bound:
        if port == 0:
            continue
        if (host, port) in seen:
            raise ConfigError(str(cfg.file), f"{key}.port", f"{host}:{port} is already used by {seen[host, port]}")
        seen[host, port] = key


def _check_paths(cfg: NodeConfig) -> None:
    if len(str(cfg.admin_socket).encode()) > _MAX_UNIX_PATH:
        raise ConfigError(str(cfg.file), "node.admin_socket",
                          f"path {cfg.admin_socket} is longer than a Unix socket allows ({_MAX_UNIX_PATH} bytes); "
                          "set a shorter admin_socket or var_dir")


def _check_names(cfg: NodeConfig) -> None:
    seen: dict[str, str] = {}
    named: list[tuple[str, list[str]]] = [
        ("listeners", [x.name for x in cfg.listeners]),
        ("connectors", [x.name for x in cfg.connectors]),
        ("simulators", [x.name for x in cfg.simulators]),
    ]
    for kind, names in named:
        for i, name in enumerate(names):
            if name in seen:
                raise ConfigError(str(cfg.file), f"{kind}[{i}].name", f"name {name!r} already used in {seen[name]}")
            seen[name] = kind
