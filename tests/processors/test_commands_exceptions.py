"""``exception.list`` and ``exception.resolve``: the back office's view of advices the engine posted on an
assumption (processors.engine), on the same state the engine decides against."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from processors.commands import CellCommands, CommandError
from processors.model import Effects, ExceptionItem
from tests.processors.engine_kit import World, de90, make_world, pan_hash, request
from tests.processors.test_engine_advices import WITH_RATES, stand_in


def commands_for(world: World) -> CellCommands:
    return CellCommands(world.state, WITH_RATES, cell_count=2, hsm=None, pan_hash=pan_hash, seal=lambda b: b,
                        clock=world.clock)


def run(commands: CellCommands, name: str, **args: Any) -> tuple[dict[str, Any], Effects]:
    return trio.run(commands.run, name, args)


def two_exceptions() -> World:
    world = make_world(catalog=WITH_RATES)
    auth = request("0100", "000000", 10_000)
    world.handle(auth)
    world.clock.advance(minutes=1)
    world.handle(request("0220", "000000", 15_000, f90=de90(auth)))  # above the tolerance
    world.clock.advance(minutes=1)
    world.handle(stand_in(request("0200", "000000", 10_000, f49="978")))  # at the cell's rate
    return world


def test_the_open_exceptions_are_listed_oldest_first_in_minor_units() -> None:
    world = two_exceptions()
    listed, effects = run(commands_for(world), "exception.list")
    assert not effects
    assert (listed["cell"], listed["status"], listed["count"]) == (1, "open", 2)
    first, second = listed["exceptions"]
    assert (first["exception"], first["kind"], first["amount"], first["currency"]) == (
        "E01-1", "completion_over_tolerance", 15_000, "USD")
    assert second["kind"] == "cell_rate" and second["amount"] == 10_850 and second["mti"] == "0220"
    assert first["created_at"] < second["created_at"] and first["status"] == "open" and first["resolved_at"] is None


def test_resolving_one_records_the_note_and_takes_it_off_the_open_list() -> None:
    world = two_exceptions()
    commands = commands_for(world)
    world.clock.advance(hours=2)
    resolved, effects = run(commands, "exception.resolve", exception="E01-1", note="tip confirmed by the merchant")
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "tip confirmed by the merchant")
    assert resolved["resolved_at"] == world.clock.now.isoformat()
    [(kind, row)] = effects.rows
    assert kind is ExceptionItem and row["status"] == "resolved"
    assert [x["exception"] for x in run(commands, "exception.list")[0]["exceptions"]] == ["E01-2"]
    assert [x["exception"] for x in run(commands, "exception.list", status="resolved")[0]["exceptions"]] == ["E01-1"]
    assert run(commands, "exception.list", status="all")[0]["count"] == 2
    assert run(commands, "cell.stats")[0]["open_exceptions"] == 1


@pytest.mark.parametrize(("args", "message"), [
    ({"exception": "E01-1", "note": "again"}, "already resolved (first)"),
    ({"exception": "E01-99", "note": "x"}, "unknown exception E01-99"),
    ({"exception": "E00-1", "note": "x"}, "the number belongs to cell 0"),
    ({"exception": "E01-2"}, "note: is required"),
])
def test_resolve_refuses_and_changes_nothing(args: dict[str, Any], message: str) -> None:
    world = two_exceptions()
    commands = commands_for(world)
    run(commands, "exception.resolve", exception="E01-1", note="first")
    before = {k: (v.status, v.resolution) for k, v in world.state.exceptions.items()}
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(commands, "exception.resolve", **args)
    assert {k: (v.status, v.resolution) for k, v in world.state.exceptions.items()} == before


def test_list_refuses_an_unknown_status() -> None:
    with pytest.raises(CommandError, match="status: must be one of open, resolved, all"):
        run(commands_for(make_world()), "exception.list", status="closed")
