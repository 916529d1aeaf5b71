"""The ``[cells]`` section of node.toml (switch.contracts.section), registered as ``cells`` in the
``bulkhead.sections`` entry-point group: it reads the table (:mod:`processors.cell.config`), asks the node for one
connector per cell, and gives it the supervisor of the cell processes when ``supervise`` is on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from processors.cell.config import CellsConfig, check_cell_ports, parse_cells
from processors.cell.supervisor import CellSupervisor
from switch.contracts.section import LinkRequest, NodeContext, Service
from switch.model.toml import TomlTable


@dataclass(frozen=True)
class Cells:
    """What ``[cells]`` gives the node (switch.contracts.section.SectionConfig)."""

    config: CellsConfig

    def links(self) -> Sequence[LinkRequest]:
        return self.config.links()

    def services(self) -> Sequence[Service]:
        """The cells' supervisor when ``supervise`` is on (a bad catalogue stops the node here, with its file, key
        and reason, rather than sending the cells into a restart loop)."""
        return (CellSupervisor(self.config),) if self.config.supervise else ()


class CellsSection:
    name = "cells"
    array = False

    def parse(self, tables: Sequence[TomlTable], node: NodeContext) -> Cells:
        (t,) = tables
        cfg = parse_cells(t, node.base, node_file=node.file, var_dir=node.var_dir, hash_key_file=node.hash_key_file)
        check_cell_ports(cfg, node.listener_ports, node.file)
        return Cells(cfg)


SECTION = CellsSection()


def cells_of(sections: Mapping[str, Any]) -> CellsConfig | None:
    """The ``[cells]`` of a node configuration's sections, or None when the node has no cells."""
    cells = sections.get("cells")
    return cells.config if isinstance(cells, Cells) else None
