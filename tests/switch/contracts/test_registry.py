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
    assert {"cells", "simulators"} <= set(registry.sections())
    assert all(isinstance(s, Section) for s in registry.sections().values())


def test_an_unknown_network_names_the_known_ones() -> None:
    with pytest.raises(registry.RegistryError, match=r"unknown network 'nope' \(known: atm, generic"):
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
