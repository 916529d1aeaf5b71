"""The ``[cells]`` table of ``node.toml``: the issuer processor cells the node starts and routes to.

Read by the section (:mod:`processors.cell.section`) registered as ``cells`` in the ``bulkhead.sections``
entry-point group: the engine knows neither the table nor the cells. A cell is one OS process with its own database (see
:mod:`processors.cell.host`). The node reaches cell ``k`` through an ordinary connector named ``cell-kk`` (scheme
``generic``, framing ``binary2``, sign-on) that this section asks for, to ``host:base_port + k``, so routing,
link status and timeouts treat a cell like any other issuer host; with ``supervise = true`` the section gives the
node the supervisor that starts, restarts and stops the cell processes::

    [cells]
    count = 4                     # 1..100; a customer's cell is crc32(external_ref) % count (changing it
                                  # needs a migration of every cell's data)
    host = "127.0.0.1"            # where the cells listen (loopback: the internal link is not encrypted)
    base_port = 9700              # cell k listens on base_port + k
    database_url = "sqlite:///var/cells/cell-{cell:02d}.db"   # template; {cell} is the cell number
    products = "products.toml"    # the product catalogue every cell loads
    timeout_ms = 2000             # the node's answer timeout towards a cell (then 91)
    hsm = { kind = "software", test_lmk = true }   # as the node's [hsm] (hsm.settings): or
                                                   # { kind = "software", lmk = "path" }, or
                                                   # { kind = "thales", host, port, pool_size, timeout_ms }
    restart_backoff_ms = 500      # first delay before restarting a crashed cell (doubles up to the max)
    restart_backoff_max_ms = 30000
    max_batch = 500               # group commit of the cell's writer (rows of decisions per transaction)
    max_wait_ms = 0.5
    supervise = true              # the node starts, restarts and stops the cell processes itself
    pin_key = { type = "ZPK", key = "U..." }   # zone PIN key of the internal links (= the key sets' zpk)

The cells share the node's data key file (PAN hashes must agree between node journal and cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hsm.api import PinKey
from hsm.settings import HsmSettings, hsm_settings, pin_key
from switch.contracts.section import LinkRequest
from switch.infra.db.engine import check_url
from switch.model.errors import ConfigError
from switch.model.toml import TomlTable

MAX_CELLS = 100
# sockaddr_un.sun_path: 108 bytes on Linux including the NUL (as the node's own admin socket is checked).
_MAX_UNIX_PATH = 107
# Context bound into the AES-GCM seal of a card's PAN (Card.pan_sealed), so a sealed PAN cannot be passed
# off as any other sealed payload of the same data key (the node's SAF payloads use the destination name).
PAN_SEAL_CONTEXT = b"bulkhead/card-pan/v1"
# The network of the internal links: the node's cell connectors and the cells' servers speak it, with its default
# framing (a 2-byte binary length).
CELL_NETWORK = "generic"
CELL_PROCESS = "cell process"  # how a serving cell names itself in its lock file (a starting node reads it)


@dataclass(frozen=True)
class CellsConfig:
    count: int
    host: str
    base_port: int
    database_url: str  # template with {cell}
    products: Path
    var_dir: Path  # cells/ under the node's var_dir: lock files and admin sockets
    hash_key_file: Path  # the node's data key (shared)
    node_file: Path  # the node.toml a cell process is started with
    timeout_ms: int = 2000
    hsm: HsmSettings | None = None
    restart_backoff_ms: int = 500
    restart_backoff_max_ms: int = 30_000
    max_batch: int = 500
    max_wait_ms: float = 0.5
    supervise: bool = True
    # The zone PIN key of the internal links: the node translates DE 52 to it before a request goes to a cell,
    # and the cells verify PINs under it (it must be the zpk of the catalogue's key sets).
    pin_key: PinKey | None = None

    def name(self, cell: int) -> str:
        """The connector (link) name of a cell: ``cell-00`` ... ``cell-99``."""
        return f"cell-{cell:02d}"

    def port(self, cell: int) -> int:
        return self.base_port + cell

    def url(self, cell: int) -> str:
        """The database URL of one cell."""
        return self.database_url.format(cell=cell)

    def admin_socket(self, cell: int) -> Path:
        return self.var_dir / f"cell-{cell:02d}.sock"

    def lock_file(self, cell: int) -> Path:
        return self.var_dir / f"cell-{cell:02d}.lock"

    def check_cell(self, cell: int) -> None:
        if not 0 <= cell < self.count:
            raise ConfigError(str(self.node_file), "cells.count",
                              f"there is no cell {cell} (cells 0..{self.count - 1})")

    # -- what the section gives the node ---------------------------------------------------------------
    def links(self) -> Sequence[LinkRequest]:
        """One connector per cell. Reconnects are quick (a restarted cell is back within a second or two) and
        the echo interval short, so a cell that hangs without closing its socket is noticed."""
        return tuple(
            LinkRequest(name=self.name(k), hosts=((self.host, self.port(k)),), scheme=CELL_NETWORK,
                        framing={"kind": "binary2"}, timeout_ms=self.timeout_ms, echo_interval_s=10.0, signon=True,
                        connect_timeout_s=2.0, backoff_initial_ms=50, backoff_max_ms=1000,
                        pin_key={"type": "ZPK", "key": self.pin_key.key} if self.pin_key else None)
            for k in range(self.count)
        )



def parse_cells(t: TomlTable, base: Path, *, node_file: Path, var_dir: Path, hash_key_file: Path) -> CellsConfig:
    """Read the ``[cells]`` table (``t`` is the node file's table reader: unknown keys are errors)."""
    count = t.positive("count", 1)
    if count > MAX_CELLS:
        raise t.error("count", f"must be at most {MAX_CELLS}")
    base_port = t.get("base_port", int, required=True)
    if base_port < 1 or base_port + count - 1 > 65535:
        raise t.error("base_port", f"cells use ports base_port .. base_port + {count - 1}: must fit in 1..65535")
    cells_dir = var_dir / "cells"
    template = t.get("database_url", str, f"sqlite:///{cells_dir}/cell-{{cell:02d}}.db")
    _check_template(t, template)
    hsm_t = t.table("hsm")
    cfg = CellsConfig(
        count=count,
        host=t.get("host", str, "127.0.0.1"),
        base_port=base_port,
        database_url=template,
        products=t.path(t.get("products", str, "products.toml"), base),
        var_dir=cells_dir,
        hash_key_file=hash_key_file,
        node_file=node_file,
        timeout_ms=t.positive("timeout_ms", 2000),
        hsm=hsm_settings(hsm_t, base) if hsm_t is not None else None,
        restart_backoff_ms=t.positive("restart_backoff_ms", 500),
        restart_backoff_max_ms=t.positive("restart_backoff_max_ms", 30_000),
        max_batch=t.positive("max_batch", 500),
        max_wait_ms=t.non_negative_number("max_wait_ms", 0.5),
        supervise=t.get("supervise", bool, True),
        pin_key=pin_key(t, ("ZPK",)),
    )
    if cfg.restart_backoff_ms > cfg.restart_backoff_max_ms:
        raise t.error("restart_backoff_ms", f"is larger than restart_backoff_max_ms ({cfg.restart_backoff_max_ms})")
    longest = cfg.admin_socket(count - 1)
    if len(str(longest).encode()) > _MAX_UNIX_PATH:
        raise t.error("count", f"cell admin socket {longest} is longer than a Unix socket allows; set a shorter "
                               "node.var_dir")
    t.done()
    return cfg


def check_catalogue(cells: CellsConfig) -> None:
    """Read the catalogue before any cell starts, so a missing or broken products.toml stops the node with its
    file, key and reason instead of sending the cells into a restart loop; and check that the internal links'
    zone PIN key is the one the cells verify under (a mismatch would make every PIN a wrong PIN and lock cards
    at 75)."""
    from processors.catalog_file import load_catalog

    catalog = load_catalog(cells.products)
    if cells.pin_key is None:
        return
    for name, keys in sorted(catalog.keys.items()):
        if keys.zpk != cells.pin_key.key:
            raise ConfigError(str(cells.node_file), "cells.pin_key",
                              f"is not the zpk of key set {name!r} in {cells.products}, which the cells verify PIN "
                              "blocks under")


def _check_template(t: TomlTable, template: str) -> None:
    try:
        first, second = template.format(cell=0), template.format(cell=1)
    except (KeyError, IndexError, ValueError):
        raise t.error("database_url", "bad template: the only placeholder allowed is {cell}") from None
    if first == second:
        raise t.error("database_url", "must contain {cell} (every cell has its own database)")
    reason = check_url(first)
    if reason is not None:  # never echoed: the URL may hold a password
        raise t.error("database_url", reason)


def check_cell_ports(cells: CellsConfig, bound: Sequence[tuple[str, int, str]], file: Path) -> None:
    """A cell port that is also one the node binds (a listener's, metrics') would make one of them fail at start."""
    ports = range(cells.base_port, cells.base_port + cells.count)
    for host, port, key in bound:
        if port in ports and host in (cells.host, "0.0.0.0", "::"):
            raise ConfigError(str(file), key, f"{host}:{port} is also the port of {cells.name(port - cells.base_port)}")
