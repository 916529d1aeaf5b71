"""The exchange's lifecycle table: every step it lists works, every other one raises, and an exchange closes once."""

from __future__ import annotations

import itertools

import pytest

from switch.exchange.lifecycle import FINAL, TRANSITIONS, Event, IllegalTransition, Lifecycle, Phase

LEGAL = [(phase, event, new) for phase, steps in TRANSITIONS.items() for event, new in steps.items()]


def _reach(phase: Phase) -> Lifecycle:
    """A lifecycle brought to ``phase`` by legal steps (a breadth-first path through the table)."""
    paths: dict[Phase, list[Event]] = {Phase.RECEIVED: []}
    frontier = [Phase.RECEIVED]
    while frontier:
        current = frontier.pop(0)
        for event, new in TRANSITIONS[current].items():
            if new not in paths:
                paths[new] = [*paths[current], event]
                frontier.append(new)
    lifecycle = Lifecycle()
    for event in paths[phase]:
        lifecycle.advance(event)
    return lifecycle


@pytest.mark.parametrize(("phase", "event", "new"), LEGAL,
                         ids=[f"{p.label}-{e.label}" for p, e, _ in LEGAL])
def test_every_listed_step_works(phase: Phase, event: Event, new: Phase) -> None:
    lifecycle = _reach(phase)
    lifecycle.advance(event)
    assert lifecycle.phase is new and lifecycle.went_through(event)


ILLEGAL = [(p, e) for p, e in itertools.product(Phase, Event) if e not in TRANSITIONS[p]]


@pytest.mark.parametrize(("phase", "event"), ILLEGAL, ids=[f"{p.label}-{e.label}" for p, e in ILLEGAL])
def test_every_other_step_raises_and_changes_nothing(phase: Phase, event: Event) -> None:
    lifecycle = _reach(phase)
    with pytest.raises(IllegalTransition, match=f"{event.label} in phase {phase.label}"):
        lifecycle.advance(event)
    assert lifecycle.phase is phase


def test_every_phase_is_reachable_and_can_end() -> None:
    for phase in Phase:
        lifecycle = _reach(phase)
        if phase not in FINAL:
            lifecycle.advance(Event.ABANDON)
        lifecycle.close()
        assert lifecycle.closed


def test_an_exchange_closes_once_and_only_when_it_has_ended() -> None:
    lifecycle = Lifecycle()
    with pytest.raises(IllegalTransition, match="closed in phase received"):
        lifecycle.close()
    for event in (Event.ROUTE, Event.SEND, Event.ANSWERED, Event.JOURNAL, Event.DELIVER):
        lifecycle.advance(event)
    lifecycle.close()
    with pytest.raises(IllegalTransition, match="twice"):
        lifecycle.close()


def test_nothing_happens_to_a_closed_exchange() -> None:
    lifecycle = _reach(Phase.UNDELIVERED)
    lifecycle.close()
    with pytest.raises(IllegalTransition, match="closed"):
        lifecycle.advance(Event.REVERSAL_QUEUED)


def test_what_happened_is_the_events_gone_through() -> None:
    lifecycle = Lifecycle()
    for event in (Event.ROUTE, Event.SEND, Event.NO_ANSWER, Event.REVERSAL_QUEUED, Event.RESOLVED):
        lifecycle.advance(event)
    assert lifecycle.phase is Phase.DECIDED
    assert lifecycle.went_through(Event.SEND) and lifecycle.went_through(Event.REVERSAL_QUEUED)
    assert not lifecycle.went_through(Event.ANSWERED) and not lifecycle.went_through(Event.QUEUED)


def test_one_approval_is_reversed_at_most_once() -> None:
    lifecycle = _reach(Phase.UNDELIVERED)
    lifecycle.advance(Event.REVERSAL_QUEUED)
    with pytest.raises(IllegalTransition, match="reversal_queued in phase undelivered \\(again\\)"):
        lifecycle.advance(Event.REVERSAL_QUEUED)
    lifecycle.close()


def _states_after_a_reversal() -> list[tuple[Phase, list[Event]]]:
    """Every phase reachable by a path that already queued a reversal, with one such path (breadth first)."""
    paths: dict[tuple[Phase, bool], list[Event]] = {(Phase.RECEIVED, False): []}
    frontier = [(Phase.RECEIVED, False)]
    while frontier:
        phase, reversed_ = frontier.pop(0)
        for event, new in TRANSITIONS[phase].items():
            if reversed_ and event is Event.REVERSAL_QUEUED:
                continue
            state = (new, reversed_ or event is Event.REVERSAL_QUEUED)
            if state not in paths:
                paths[state] = [*paths[phase, reversed_], event]
                frontier.append(state)
    return [(phase, path) for (phase, reversed_), path in paths.items() if reversed_]


AFTER_A_REVERSAL = _states_after_a_reversal()


@pytest.mark.parametrize(("phase", "path"), AFTER_A_REVERSAL, ids=[p.label for p, _ in AFTER_A_REVERSAL])
def test_a_second_reversal_is_refused_in_every_phase_whatever_happened_between(phase: Phase,
                                                                               path: list[Event]) -> None:
    lifecycle = Lifecycle()
    for event in path:
        lifecycle.advance(event)
    assert lifecycle.phase is phase and lifecycle.went_through(Event.REVERSAL_QUEUED)
    with pytest.raises(IllegalTransition, match="again"):
        lifecycle.advance(Event.REVERSAL_QUEUED)
