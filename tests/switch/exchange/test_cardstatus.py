"""The stand-in card status cache: card-level declines remembered, approvals forget, bounded."""

from __future__ import annotations

from switch.exchange.cardstatus import CardStatusCache


def test_card_level_declines_are_remembered_and_approvals_forget_them() -> None:
    cache = CardStatusCache()
    cache.record("a", "41")
    cache.record("b", "51")  # insufficient funds is about this transaction, not the card
    cache.record("c", "91")
    assert (cache.declined("a"), cache.declined("b"), cache.declined("c")) == ("41", None, None)
    cache.record("a", "62")
    assert cache.declined("a") == "62"
    cache.record("a", "00")  # unblocked at the issuer: approved again
    assert cache.declined("a") is None and len(cache) == 0


def test_capacity_drops_the_least_recently_updated_card() -> None:
    cache = CardStatusCache(capacity=2)
    cache.record("a", "41")
    cache.record("b", "43")
    cache.record("a", "41")  # refreshed: now the newest
    cache.record("c", "14")
    assert len(cache) == 2 and cache.declined("b") is None
    assert cache.declined("a") == "41" and cache.declined("c") == "14"
