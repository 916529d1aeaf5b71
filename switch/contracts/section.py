"""The section contract: how a package adds a table to node.toml, and links and services to the node, without the
engine knowing the package (the processor cells' ``[cells]``, the demo's ``[[simulators]]``; the ATMP and
settlement will add theirs the same way).

A :class:`Section` is registered by its table name in the ``bulkhead.sections`` entry-point group. When a
node.toml has that table, the engine's configuration loader hands it to :meth:`Section.parse` with what the
section may know of the node (:class:`NodeContext`); unknown keys and bad values are the section's errors, named
with the file, the key and the reason like every other. The parsed :class:`SectionConfig` may ask the node for
connectors (:class:`LinkRequest`, validated by their network like configured ones) and give it services to run
beside the links in the node's primary process (:class:`Service`: the cell processes' supervisor, a simulator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from switch.model.toml import TomlTable


@dataclass(frozen=True)
class NodeContext:
    """What a section may know of the node whose file it is read from."""

    file: Path  # node.toml
    base: Path  # its folder: relative paths in the section resolve against it
    name: str  # [node] name
    var_dir: Path
    hash_key_file: Path  # the node's data key (PAN hashes must agree between the node and its cells)
    listener_ports: tuple[tuple[str, int, str], ...] = ()  # (host, port, key) the node's listeners bind
    link_names: frozenset[str] = frozenset()  # the names of the links node.toml configures


@dataclass(frozen=True)
class LinkRequest:
    """A connector a section asks the node to open. ``framing`` and ``options`` are tables as they would be
    written in node.toml; the link's network validates them."""

    name: str
    hosts: tuple[tuple[str, int], ...]
    scheme: str
    timeout_ms: int
    framing: Mapping[str, Any] = field(default_factory=lambda: {"kind": "binary2"})
    options: Mapping[str, Any] | None = None
    echo_interval_s: float = 30.0
    signon: bool = True
    connect_timeout_s: float = 5.0
    backoff_initial_ms: int = 200
    backoff_max_ms: int = 30_000
    pin_key: Mapping[str, str] | None = field(default=None, repr=False)  # as in node.toml: {"type", "key"}


class TaskStatus(Protocol):
    """What trio passes a task started with ``nursery.start`` (kept structural: this module imports no trio)."""

    def started(self, value: Any = None) -> None: ...


class Service(Protocol):
    """Something a section runs inside the node's primary process, started before the links and stopped after
    them (cancelled with the node's services)."""

    # What its children are, for logs, status and metrics ("cell": bulkhead_cell_running{cell=...}).
    what: str

    async def run(self, *, task_status: TaskStatus) -> None:
        """Run until cancelled; ``task_status.started()`` once the node may open its links."""
        ...

    def status(self) -> list[dict[str, Any]]:
        """One entry per child: ``name`` (a link's name when the child serves one: its line in ``links status``
        shows the child's state), ``process`` (running, restarting, ...), ``pid``, ``restarts``, ``last_exit``."""
        ...

    def describe(self) -> list[str]:
        """Lines for the node's start banner."""
        ...

    def terminate(self) -> None:
        """The node is stopping: stop the children now, beside the node's drain rather than after it."""
        ...


class SectionConfig(Protocol):
    """A parsed section."""

    def links(self) -> Sequence[LinkRequest]:
        ...

    def services(self) -> Sequence[Service]:
        """Built when the node starts; may raise :class:`~switch.model.errors.ConfigError` (a file the section
        names is broken), which stops the node with the file, the key and the reason."""
        ...


@runtime_checkable
class Section(Protocol):
    """A node.toml table owned by another package. ``array``: the table is an array of tables (``[[name]]``)."""

    name: str
    array: bool

    def parse(self, tables: Sequence[TomlTable], node: NodeContext) -> SectionConfig:
        """Read the table (one reader; several for an array) and call ``done()`` on each."""
        ...
