"""The SAF gauges as Prometheus reads them: every known destination is reported, at 0 once its queue drains."""

from __future__ import annotations

from typing import Any

from switch.ops.metrics import Metrics, registry_for


class _Node:
    """Just enough of a node for the collector: nothing in flight, no links, no children."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.in_flight = 0
        self.late_responses = 0

    def journal_counts(self) -> tuple[int, int]:
        return 0, 0

    def link_counts(self) -> list[tuple[str, bool, int, int]]:
        return []

    def listener_connections(self) -> list[tuple[str, int]]:
        return []

    def children(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return []

    def unknown_codes(self) -> list[tuple[str, str, int]]:
        return []


def _saf(node: _Node, destination: str) -> tuple[float | None, float | None, float | None]:
    registry = registry_for(node)
    labels = {"destination": destination}
    return (registry.get_sample_value("bulkhead_saf_destination_pending", labels),
            registry.get_sample_value("bulkhead_saf_exceptions", labels),
            registry.get_sample_value("bulkhead_saf_oldest_age_seconds", labels))


def test_a_drained_destination_reads_zero_and_a_known_one_is_reported_before_it_has_entries() -> None:
    node = _Node()
    node.metrics.saf_state({"visa": (2, 1, 0.0)}, known={"visa", "cell-01"})
    pending, exceptions, age = _saf(node, "visa")
    assert (pending, exceptions) == (2, 1) and age is not None and age > 0
    assert _saf(node, "cell-01") == (0, 0, 0)
    assert registry_for(node).get_sample_value("bulkhead_saf_pending") == 2

    node.metrics.saf_state({}, known={"cell-01"})  # visa drained, and a reload dropped it from the routes
    assert _saf(node, "visa") == (0, 0, 0)
    assert _saf(node, "cell-01") == (0, 0, 0)
    assert registry_for(node).get_sample_value("bulkhead_saf_pending") == 0
