"""PoolSelector: single, primary/secondary and round-robin with links going down and up."""

from __future__ import annotations

from switch.routing import Destination, PoolSelector

SINGLE = Destination("issuer", ("issuer-1",), "single")
FAILOVER = Destination("visa", ("visa-a", "visa-b", "visa-c"), "primary_secondary")
ROTATION = Destination("cells", ("cell-1", "cell-2", "cell-3"), "round_robin")


class Links:
    """Link health the test flips, as the node's link table would."""

    def __init__(self, *down: str) -> None:
        self.down = set(down)

    def __call__(self, name: str) -> bool:
        return name not in self.down


def test_single() -> None:
    selector = PoolSelector()
    assert selector.choose(SINGLE, Links()) == "issuer-1"
    assert selector.choose(SINGLE, Links("issuer-1")) is None


def test_primary_secondary_fails_over_and_back() -> None:
    selector = PoolSelector()
    links = Links()
    assert [selector.choose(FAILOVER, links) for _ in range(3)] == ["visa-a"] * 3
    links.down.add("visa-a")
    assert [selector.choose(FAILOVER, links) for _ in range(2)] == ["visa-b"] * 2
    links.down.add("visa-b")
    assert selector.choose(FAILOVER, links) == "visa-c"
    links.down.add("visa-c")
    assert selector.choose(FAILOVER, links) is None
    links.down = {"visa-b"}
    assert selector.choose(FAILOVER, links) == "visa-a"  # back to the primary as soon as it is up


def test_round_robin_rotates_and_skips_links_that_are_down() -> None:
    selector = PoolSelector()
    links = Links()
    assert [selector.choose(ROTATION, links) for _ in range(4)] == ["cell-1", "cell-2", "cell-3", "cell-1"]
    links.down.add("cell-3")
    assert [selector.choose(ROTATION, links) for _ in range(4)] == ["cell-2", "cell-1", "cell-2", "cell-1"]
    links.down = {"cell-1", "cell-2", "cell-3"}
    assert selector.choose(ROTATION, links) is None
    links.down = {"cell-1"}
    assert [selector.choose(ROTATION, links) for _ in range(3)] == ["cell-2", "cell-3", "cell-2"]


def test_round_robin_state_is_per_destination_and_survives_a_reload() -> None:
    selector = PoolSelector()
    other = Destination("other", ("x", "y"), "round_robin")
    up = Links()
    assert selector.choose(ROTATION, up) == "cell-1"
    assert selector.choose(other, up) == "x"
    assert selector.choose(ROTATION, up) == "cell-2"
    # A reloaded table brings an equal Destination with one link fewer: the rotation carries on.
    reloaded = Destination("cells", ("cell-1", "cell-2"), "round_robin")
    assert [selector.choose(reloaded, up) for _ in range(3)] == ["cell-1", "cell-2", "cell-1"]
    selector.forget({"cells"})
    assert selector.choose(ROTATION, up) == "cell-1"
    assert selector.choose(other, up) == "y"


def test_round_robin_spreads_evenly() -> None:
    selector = PoolSelector()
    chosen = [selector.choose(ROTATION, Links()) for _ in range(300)]
    assert {link: chosen.count(link) for link in ROTATION.links} == {"cell-1": 100, "cell-2": 100, "cell-3": 100}


def test_a_pool_prefers_links_that_answer_and_falls_back_to_a_degraded_one() -> None:
    selector = PoolSelector()
    degraded = Links()  # here "down" means "not degraded" is false: the names in it are degraded
    degraded.down = {"visa-a"}

    def is_degraded(name: str) -> bool:
        return not degraded(name)

    up = Links()
    assert selector.choose(FAILOVER, up, is_degraded) == "visa-b"  # the primary is up but does not answer
    degraded.down = {"visa-a", "visa-b", "visa-c"}
    assert selector.choose(FAILOVER, up, is_degraded) == "visa-a"  # all degraded: the usual order
    up.down = {"visa-a"}
    assert selector.choose(FAILOVER, up, is_degraded) == "visa-b"
    degraded.down = set()
    up.down = set()
    assert selector.choose(FAILOVER, up, is_degraded) == "visa-a"  # answering again: back to the primary


def test_round_robin_skips_a_degraded_link_and_a_single_link_keeps_its_traffic() -> None:
    selector = PoolSelector()

    def is_degraded(name: str) -> bool:
        return name in ("cell-2", "issuer-1")

    assert [selector.choose(ROTATION, Links(), is_degraded) for _ in range(4)] == \
        ["cell-1", "cell-3", "cell-1", "cell-3"]
    # One link: it is the destination's only way, and its answers are what clear the degradation.
    assert selector.choose(SINGLE, Links(), is_degraded) == "issuer-1"
    assert selector.choose(SINGLE, Links("issuer-1"), is_degraded) is None
