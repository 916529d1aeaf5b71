"""The registry finds networks and sections through their entry-point groups, the built-in ones included, and
refuses an entry point that does not implement its contract or a name registered twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switch.contracts import registry
from switch.contracts.network import Network
from switch.contracts.section import Section

NOT_A_NETWORK = object()


@pytest.fixture
def distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Write an installed distribution's entry points (one call per distribution) onto sys.path."""
    count = iter(range(100))

    def write(entry_points: str) -> None:
        info = tmp_path / f"extra{next(count)}-0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {info.name[:-15]}\nVersion: 0.0\n")
        (info / "entry_points.txt").write_text(entry_points)
        registry.refresh()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    monkeypatch.undo()
    registry.refresh()


def test_built_in_networks_and_sections_come_from_entry_points() -> None:
    assert {"generic", "generic-ascii", "atm"} <= set(registry.networks())
    assert all(isinstance(n, Network) for n in registry.networks().values())
    assert {"cells", "simulators"} <= registry.section_names()
    assert all(isinstance(registry.section(name), Section) for name in registry.section_names())


def test_an_unknown_network_names_the_known_ones() -> None:
    with pytest.raises(registry.RegistryError, match=r"unknown network 'nope' \(known: amex, atm, generic"):
        registry.network("nope")


def test_an_entry_point_that_is_not_a_network_is_refused(distribution: Callable[[str], None]) -> None:
    distribution(f"[{registry.NETWORKS}]\nbroken = {__name__}:NOT_A_NETWORK\n")
    with pytest.raises(registry.RegistryError, match=r"'broken' in bulkhead\.schemes is not a Network"):
        registry.networks()


def test_a_name_registered_twice_is_refused(distribution: Callable[[str], None]) -> None:
    distribution(f"[{registry.NETWORKS}]\ngeneric = schemes.generic:SCHEME_ASCII\n")
    with pytest.raises(registry.RegistryError, match="name 'generic' is registered twice"):
        registry.networks()


def test_the_same_object_under_its_name_twice_is_fine(distribution: Callable[[str], None]) -> None:
    distribution(f"[{registry.NETWORKS}]\ngeneric = schemes.generic:SCHEME\n")
    assert registry.network("generic").name == "generic"


def test_an_entry_point_that_cannot_be_loaded_names_itself(distribution: Callable[[str], None]) -> None:
    distribution(f"[{registry.NETWORKS}]\nghost = no.such.module:NETWORK\n")
    with pytest.raises(registry.RegistryError, match=r"'ghost' in bulkhead\.schemes \(no\.such\.module:NETWORK\) "
                                                     r"cannot be loaded: ModuleNotFoundError"):
        registry.networks()


def test_a_node_loads_only_the_sections_its_file_has(tmp_path: Path) -> None:
    """Sections are imported on demand: a node without [[simulators]] or [cells] imports neither the demo's
    simulators nor the cell process (checked in a clean interpreter, as a node process starts)."""
    import subprocess
    import sys

    (tmp_path / "node.toml").write_text('[node]\nname = "prod"\n[[listeners]]\nname = "acq"\nport = 8583\n')
    code = ("import sys; from switch.config import load_config; import switch.runtime.node; import switch.cli.run; "
            f"load_config(__import__('pathlib').Path({str(tmp_path / 'node.toml')!r})); "
            "print(sorted(m for m in sys.modules if m.startswith(('switch.sim', 'processors', 'hsm.testing'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
