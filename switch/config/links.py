"""The node's links in node.toml: ``[[listeners]]`` and ``[[connectors]]`` (and the connectors sections ask for).

A link names its network (``scheme``); the network validates the link's ``framing`` table and its ``options``
table (switch.contracts.network.Network.link_options), so framing that does not belong to the network is an
error naming the file, the key and the reason. Everything else on a link is the engine's: addresses, limits,
timeouts, the PIN key DE 52 travels under, the zone master key of its key exchange.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm.api import PinKey
from hsm.settings import key_cryptogram, pin_key
from switch.contracts.network import LinkOptions, Network
from switch.contracts.registry import networks
from switch.contracts.section import LinkRequest
from switch.model.toml import TomlTable

# How long a link's previous PIN and MAC keys stay valid after a key exchange (switch.exchange.keywindow).
DEFAULT_WINDOW_S = 60.0
# ISO 9797-1 MAC algorithms by their configuration names: algorithm 3 is the retail MAC of ANSI X9.19 (the usual
# ISO 8583 message MAC, the public default), algorithm 1 the plain CBC-MAC.
MAC_ALGORITHMS = {"x9.19": 3, "iso9797-1-alg3": 3, "iso9797-1-alg1": 1}


@dataclass(frozen=True)
class MacConfig:
    """MAC on a link (``mac = true``): generated on what the node sends, verified on what it receives, through
    the HSM under the link's zone MAC key (``mac_key``, a ZAK). See switch.exchange.mac."""

    key: str  # the ZAK as an LMK cryptogram
    algorithm: int = 3  # ISO 9797-1 algorithm (3: X9.19 retail MAC)
    padding: int = 1  # ISO 9797-1 padding method (1: zeros)
    field: str = "auto"  # "auto": DE 64 with a primary bitmap only, DE 128 with a secondary; or "64" / "128"
    failure_code: str | None = None  # DE 39 answered to a request whose MAC fails; None: the network's default

    def __repr__(self) -> str:
        return f"MacConfig(alg {self.algorithm}, DE {self.field})"


def mac_config(t: TomlTable, network: Network) -> tuple[MacConfig | None, str | None]:
    """``mac = true`` with ``mac_key = { type = "ZAK", key = "U..." }`` and the optional ``mac_algorithm``,
    ``mac_padding``, ``mac_field``, ``mac_failure_code``."""
    enabled = t.get("mac", bool, False)
    key = pin_key(t, ("ZAK",), "mac_key")
    algorithm = t.get("mac_algorithm", str, "x9.19")
    if algorithm not in MAC_ALGORITHMS:
        raise t.error("mac_algorithm", f"expected one of {', '.join(MAC_ALGORITHMS)}")
    padding = t.integer("mac_padding", 1, low=1, high=2)
    where = str(t.get("mac_field", str, network.mac_field))
    if where not in ("auto", "64", "128"):
        raise t.error("mac_field", "expected \"auto\", \"64\" or \"128\"")
    failure = t.get("mac_failure_code", str, None)
    if failure is not None and not (len(failure) == 2 and failure.isascii() and failure.isalnum()):
        raise t.error("mac_failure_code", "expected a 2-character response code")
    if not enabled:
        return None, key.key if key is not None else None
    if key is None:
        raise t.error("mac", "a link with mac = true needs mac_key = { type = \"ZAK\", key = \"U...\" }")
    return MacConfig(key.key, MAC_ALGORITHMS[algorithm], padding, where, failure), key.key


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
    options: LinkOptions  # the network's reading of the framing and options tables
    max_connections: int = 100
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    idle_timeout_s: float = 300.0
    on_format_error: str = "keep"  # "keep" the connection after a frame we could not answer, or "close"
    tls: TlsConfig | None = None
    # Requests one connection may have in progress; beyond it the node stops reading that connection.
    max_inflight_per_connection: int = 256
    # Hostile or broken peers (issue 11): a connection must deliver its first complete frame within
    # first_frame_timeout_ms of being accepted, and a frame once started must be complete within
    # frame_timeout_ms, so a silent or trickling peer cannot hold a slot for the whole idle timeout (which only
    # complete frames reset). One address holds at most max_connections_per_peer of the listener's slots.
    first_frame_timeout_ms: int = 30_000
    frame_timeout_ms: int = 10_000
    max_connections_per_peer: int = 32
    # More than format_error_budget undecodable frames within format_error_window_s close the connection.
    format_error_budget: int = 20
    format_error_window_s: float = 60.0
    # An address whose connections were closed for the budget this many times within the window is refused
    # until the window has passed (0, the default: never refused for it).
    format_error_ban_after: int = 0
    # Admission (switch.runtime.links.admission): a request that waited longer than max_wait_ms in the
    # listener's backlog, or found max_backlog frames there, is answered 91 at once instead of late.
    max_wait_ms: int = 500
    max_backlog: int = 10_000
    pin_key: PinKey | None = None  # DE 52 arrives under this key; translated to the destination's key
    # Zone master key (an LMK cryptogram) of this link's dynamic key exchange; not repeated in reprs.
    zmk: str | None = field(default=None, repr=False)
    # The zone MAC key (ZAK) the link starts with, changed by its key exchange; MAC on the link when ``mac``.
    mac_key: str | None = field(default=None, repr=False)
    mac: MacConfig | None = None
    # How long the previous PIN and MAC keys stay valid after a key exchange (switch.exchange.keywindow).
    key_window_s: float = DEFAULT_WINDOW_S
    # The bank's own terminals connect here: the ATM processor admits each by DE 41 from the terminal registry, reads
    # its PIN blocks under the terminal's own key and tracks its cash (switch.runtime.atmhost, [atmp] of node.toml).
    atmp: bool = False

    @property
    def framing_kind(self) -> str:
        return self.options.framing_kind


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    hosts: tuple[tuple[str, int], ...]
    scheme: str
    options: LinkOptions
    timeout_ms: int = 5000
    echo_interval_s: float = 30.0
    signon: bool = True
    connect_timeout_s: float = 5.0
    backoff_initial_ms: int = 200
    backoff_max_ms: int = 30_000
    max_inflight: int = 10_000
    # Requests in a row unanswered in time after which the link is shown degraded (an unanswered echo does it
    # at once); the first answer clears it (switch.runtime.links.state.LinkHealth).
    degrade_after_timeouts: int = 3
    # Fields that, with the folded MTI, pair a response with its request on this link; None: the network's
    # default (11 + 41). Some hosts match on 37 (RRN) or on 11 alone.
    match_fields: tuple[int, ...] | None = None
    pin_key: PinKey | None = None  # the zone key this destination expects DE 52 under
    # Zone master key (an LMK cryptogram) of this link's dynamic key exchange; not repeated in reprs.
    zmk: str | None = field(default=None, repr=False)
    # The switch's own identity on this link (switch.exchange.identity): its own STAN and DE 7 (default on), its
    # own RRN (off: the acquirer's is kept), and DE 32 / DE 33 as given (None: the source's are kept).
    own_stan: bool = True
    own_rrn: bool = False
    acquiring_institution: str | None = None
    forwarding_institution: str | None = None
    # The zone MAC key (ZAK) the link starts with, changed by its key exchange; MAC on the link when ``mac``.
    mac_key: str | None = field(default=None, repr=False)
    mac: MacConfig | None = None
    # How long the previous PIN and MAC keys stay valid after a key exchange (switch.exchange.keywindow).
    key_window_s: float = DEFAULT_WINDOW_S

    @property
    def framing_kind(self) -> str:
        return self.options.framing_kind


def network_of(t: TomlTable) -> tuple[str, Network]:
    """The link's ``scheme`` (default ``generic``) and its registered network."""
    name = str(t.get("scheme", str, "generic"))
    known = networks()
    if name not in known:
        raise t.error("scheme", f"unknown scheme {name!r} (known: {', '.join(sorted(known))})")
    return name, known[name]


def link_options(t: TomlTable, network: Network) -> LinkOptions:
    """The network's reading of the link's ``framing`` (a table, or a framing name) and ``options`` tables."""
    t.used.add("framing")
    raw = t.data.get("framing")
    if isinstance(raw, str):
        raw = {"kind": raw}
    if raw is not None and not isinstance(raw, dict):
        raise t.error("framing", "expected a table or a framing name")
    framing = None if raw is None else TomlTable(raw, t.file, t.key("framing"))
    options = t.table("options")
    found = network.link_options(framing, options)
    # The network reads its tables; whatever it did not ask for is refused here, so a network that forgets to
    # check cannot let a misspelt key through.
    for table in (framing, options):
        if table is not None:
            table.done()
    return found


def listener(t: TomlTable, base: Path) -> ListenerConfig:
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
        tls = TlsConfig(t.path(tls_t.get("cert", str, required=True), base),
                        t.path(tls_t.get("key", str, required=True), base))
        tls_t.done()
    name = t.get("name", str, required=True)
    port = t.port()
    scheme, network = network_of(t)
    cfg = ListenerConfig(
        name=name,
        host=t.get("host", str, "127.0.0.1"),
        port=port,
        scheme=scheme,
        options=link_options(t, network),
        max_connections=t.positive("max_connections", 100),
        allow=tuple(allow),
        idle_timeout_s=float(t.positive("idle_timeout_s", 300.0, integer=False)),
        on_format_error=policy,
        tls=tls,
        max_inflight_per_connection=t.positive("max_inflight_per_connection", 256),
        first_frame_timeout_ms=t.positive("first_frame_timeout_ms", 30_000),
        frame_timeout_ms=t.positive("frame_timeout_ms", 10_000),
        max_connections_per_peer=t.positive("max_connections_per_peer", 32),
        format_error_budget=t.positive("format_error_budget", 20),
        format_error_window_s=float(t.positive("format_error_window_s", 60.0, integer=False)),
        format_error_ban_after=t.non_negative("format_error_ban_after", 0),
        max_wait_ms=t.positive("max_wait_ms", 500),
        max_backlog=t.positive("max_backlog", 10_000),
        pin_key=pin_key(t, ("TPK", "ZPK")),
        zmk=key_cryptogram(t, "zmk") if "zmk" in t.data else None,
        atmp=t.get("atmp", bool, False),
        **_keys(t, network),
    )
    t.done()
    return cfg


def _keys(t: TomlTable, network: Network) -> dict[str, Any]:
    mac, key = mac_config(t, network)
    return {"mac_key": key, "mac": mac,
            "key_window_s": float(t.positive("key_window_s", DEFAULT_WINDOW_S, integer=False))}


def _hostport(t: TomlTable, i: int, value: Any) -> tuple[str, int]:
    key = f"hosts[{i}]"
    if not isinstance(value, str) or ":" not in value:
        raise t.error(key, "expected 'host:port'")
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise t.error(key, f"bad port in {value!r}")
    return host.strip("[]"), int(port)


def connector(t: TomlTable) -> ConnectorConfig:
    hosts = tuple(_hostport(t, i, v) for i, v in enumerate(t.get("hosts", list, required=True)))
    if not hosts:
        raise t.error("hosts", "needs at least one 'host:port'")
    name = t.get("name", str, required=True)
    scheme, network = network_of(t)
    cfg = ConnectorConfig(
        name=name,
        hosts=hosts,
        scheme=scheme,
        options=link_options(t, network),
        timeout_ms=t.positive("timeout_ms", 5000),
        echo_interval_s=float(t.positive("echo_interval_s", 30.0, integer=False)),
        signon=t.get("signon", bool, True),
        connect_timeout_s=float(t.positive("connect_timeout_s", 5.0, integer=False)),
        backoff_initial_ms=t.positive("backoff_initial_ms", 200),
        backoff_max_ms=t.positive("backoff_max_ms", 30_000),
        max_inflight=t.positive("max_inflight", 10_000),
        degrade_after_timeouts=t.positive("degrade_after_timeouts", 3),
        match_fields=_match_fields(t),
        pin_key=pin_key(t, ("ZPK",)),
        zmk=key_cryptogram(t, "zmk") if "zmk" in t.data else None,
        own_stan=t.get("own_stan", bool, network.own_identity),
        own_rrn=t.get("own_rrn", bool, False),
        acquiring_institution=_institution(t, "acquiring_institution"),
        forwarding_institution=_institution(t, "forwarding_institution"),
        **_keys(t, network),
    )
    if cfg.own_rrn and not cfg.own_stan:
        raise t.error("own_rrn", "needs own_stan = true (the switch's RRN ends in its own STAN)")
    if cfg.backoff_initial_ms > cfg.backoff_max_ms:
        raise t.error("backoff_initial_ms", f"is larger than backoff_max_ms ({cfg.backoff_max_ms})")
    t.done()
    return cfg


def _institution(t: TomlTable, key: str) -> str | None:
    """An institution id (DE 32 / DE 33: n..11), as text so that leading zeros stay."""
    value = t.get(key, str, None)
    if value is None:
        return None
    text = str(value)
    if not (text.isdigit() and 1 <= len(text) <= 11):
        raise t.error(key, f"expected 1 to 11 digits in quotes, got {text!r}")
    return text


def requested_connector(request: LinkRequest, file: str, key: str) -> ConnectorConfig:
    """A connector a section asked for, its framing and options validated by its network as if written under
    ``key`` in the file."""
    tables: dict[str, Any] = {"scheme": request.scheme, "framing": dict(request.framing)}
    if request.options is not None:
        tables["options"] = dict(request.options)
    if request.pin_key is not None:
        tables["pin_key"] = dict(request.pin_key)
    where = TomlTable(tables, file, key)
    scheme, network = network_of(where)
    return ConnectorConfig(
        name=request.name, hosts=request.hosts, scheme=scheme, options=link_options(where, network),
        timeout_ms=request.timeout_ms, echo_interval_s=request.echo_interval_s, signon=request.signon,
        connect_timeout_s=request.connect_timeout_s, backoff_initial_ms=request.backoff_initial_ms,
        backoff_max_ms=request.backoff_max_ms, pin_key=pin_key(where, ("ZPK",)),
        # A section's links are internal (the bank's own processor cells): they see the acquirer's STAN and ids,
        # so that their records read like the acquirer's; the switch numbers its own only towards networks.
        own_stan=False,
    )


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
