"""The overload measurement (issue 11 item 10): its schedule and classification, and a short form of the run itself
(the long form is ``python -m bench overload``)."""

from __future__ import annotations

from array import array

import pytest

from bench.harness import Options
from bench.overload import measure_capacity, run_phases
from bench.phases import Schedule, phase_stats, record


def test_a_schedule_of_phases_says_when_each_request_is_due() -> None:
    schedule = Schedule(((2.0, 10.0), (1.0, 100.0)))
    assert schedule.total() == 120 and schedule.duration == 3.0
    assert schedule.due_at(0) == 0.0 and schedule.due_at(19) == pytest.approx(1.9)
    assert schedule.due_at(20) == pytest.approx(2.0) and schedule.due_at(70) == pytest.approx(2.5)
    assert schedule.due_at(120) == float("inf")
    assert schedule.due_count(0.0) == 1 and schedule.due_count(2.5) == 71 and schedule.due_count(99) == 120
    with pytest.raises(ValueError):
        Schedule(((1.0, 0.0),))


def test_each_request_is_judged_against_the_deadline_from_when_it_was_due() -> None:
    answered: array[float] = array("d")
    record(answered, 0.5, 0.010, b"00")  # phase 1 (0-3 s): in time, in its first second
    record(answered, 1.5, 0.002, b"91")  # phase 1: shed
    record(answered, 2.5, 2.500, b"00")  # phase 1: late (the 00 came after the 2 s deadline)
    record(answered, 3.5, 1.900, b"05")  # phase 2 (3-5 s): in time (a decline is an answer in time)
    unanswered = array("d", [4.5])  # phase 2: lost
    one, two = phase_stats(answered, unanswered, Schedule(((3.0, 1.0), (2.0, 1.0))), deadline=2.0)
    assert (one["due"], one["in_time"], one["shed"], one["late"], one["lost"]) == (3, 1, 1, 1, 0)
    assert (two["due"], two["in_time"], two["shed"], two["late"], two["lost"]) == (2, 1, 0, 0, 1)
    assert one["in_time_pct"] == 33.3 and two["lost_pct"] == 50.0
    assert one["first_second_in_time_pct"] == 100.0 and one["shed_p99_ms"] == 2.0
    assert two["in_time_p99_ms"] == 1900.0
    # A schedule that said 10 were due in phase 2 while only 2 were sent: the 8 never sent are lost as well.
    _, short = phase_stats(answered, unanswered, Schedule(((3.0, 1.0), (10.0, 1.0))), deadline=2.0)
    assert (short["due"], short["lost"]) == (10, 9)


def test_a_node_offered_three_times_its_capacity_sheds_instead_of_answering_late() -> None:
    """The short form: a real node, issuer and open-loop generator; a few seconds at three times the capacity
    just measured, then a third of it. Before admission control nearly every answer of the overload phase came
    after the deadline and the next phase inherited the backlog; now the excess is answered 91 within the deadline,
    nothing is lost, and the phase after it is answered in time."""
    base = Options(connections=16, inflight=16)
    capacity = measure_capacity(base, 3.0)
    before, overload, after = run_phases(base, ((1.0, capacity / 4), (4.0, capacity * 3), (3.0, capacity / 4)),
                                         deadline=2.0).phases
    assert before["in_time_pct"] > 90, before
    assert overload["shed"] > 0 and overload["lost"] == 0
    assert overload["late_pct"] < 20, overload
    assert after["in_time_pct"] > 80, after
