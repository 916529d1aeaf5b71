"""LinkHealth: when a link that is connected but does not answer turns degraded, and when it recovers."""

from __future__ import annotations

import pytest

from switch.runtime.links.state import LinkHealth


def test_degraded_after_n_timeouts_in_a_row_and_cleared_by_the_first_answer() -> None:
    health = LinkHealth(3)
    assert [health.timed_out(10.0), health.timed_out(11.0)] == [False, False]
    assert not health.degraded
    assert health.timed_out(12.0) is True  # the transition is reported once
    assert (health.degraded, health.reason, health.since) == (True, "3 requests in a row unanswered", 12.0)
    assert health.timed_out(13.0) is False and health.since == 12.0  # still degraded, no new transition
    assert health.answered() is True
    assert (health.degraded, health.in_a_row, health.since) == (False, 0, None)
    assert health.answered() is False


def test_an_answer_between_timeouts_restarts_the_count() -> None:
    health = LinkHealth(2)
    health.timed_out(1.0)
    assert health.answered() is False  # not degraded: no transition
    assert health.timed_out(2.0) is False
    assert health.timed_out(3.0) is True


def test_an_unanswered_echo_degrades_at_once() -> None:
    health = LinkHealth(3)
    assert health.echo_missed(5.0) is True
    assert (health.reason, health.since) == ("echo unanswered", 5.0)
    assert health.echo_missed(6.0) is False
    assert health.timed_out(7.0) is False  # already degraded
    assert health.answered() is True and not health.degraded


def test_the_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LinkHealth(0)
