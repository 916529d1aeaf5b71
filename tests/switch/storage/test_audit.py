"""Routing-table reload audit rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from switch.storage.audit import RouteReload, list_route_reloads, record_route_reload

from .factories import T0


def test_reloads_are_recorded_and_listed_newest_first(db_engine: Engine) -> None:
    applied = record_route_reload(
        db_engine, actor="ops:alice", source="conf/demo/routes.toml", old_digest="a" * 64,
        new_digest="b" * 64, diff="+ 476173 -> debit-1\n- 476173 -> debit-2\n", outcome="applied",
        reason=None, at=T0,
    )
    rejected = record_route_reload(
        db_engine, actor="ops:bob", source="/tmp/routes.toml", old_digest="b" * 64, new_digest=None,
        diff="", outcome="rejected", reason="routes.toml:12: bin: overlaps 4761 with a different length",
        at=T0 + timedelta(minutes=5),
    )
    assert rejected > applied

    rows = list_route_reloads(db_engine)
    assert rows == [
        RouteReload(
            id=rejected, at=T0 + timedelta(minutes=5), actor="ops:bob", source="/tmp/routes.toml",
            old_digest="b" * 64, new_digest=None, diff="", outcome="rejected",
            reason="routes.toml:12: bin: overlaps 4761 with a different length",
        ),
        RouteReload(
            id=applied, at=T0, actor="ops:alice", source="conf/demo/routes.toml", old_digest="a" * 64,
            new_digest="b" * 64, diff="+ 476173 -> debit-1\n- 476173 -> debit-2\n", outcome="applied",
            reason=None,
        ),
    ]
    assert [r.id for r in list_route_reloads(db_engine, limit=1)] == [rejected]
