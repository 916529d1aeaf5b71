"""``bulkhead journal list|follow|export`` as an operator uses them, against a real database (SQLite and, when
configured, PostgreSQL).

The journal is filled the way the node fills it (the journal writer, card numbers hashed with the node's data key
file) with exchanges at known times, so every filter has something to include and something to leave out; the
follow test runs a real node and a real purchase. Every output and export is scanned for the clear card numbers.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from click.testing import Result

from switch.config import load_config
from switch.infra.datakey import load_or_create
from switch.infra.db.engine import make_engine
from switch.model.masking import mask_pan
from switch.storage.db import upgrade
from switch.storage.journal import JournalWriter
from switch.storage.records import JournalRecord
from tests.integration.harness import (
    PAN,
    ROUTES_ONE,
    Cli,
    client,
    issuer,
    port_of,
    purchase,
    running_node,
    write_config,
)

OTHER_PAN = "5412750109876543"
CLEAR = (PAN, OTHER_PAN)
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "node.toml", CLEAR)
    yield c
    c.assert_no_clear_pan()


def _record(n: int, *, ago: timedelta, pan: str = PAN, terminal: str = "TERM0001", rc: str = "00",
            destination: str | None = "up", amount: int | None = 2500, currency: str | None = "840",
            pan_hash: str) -> JournalRecord:
    at = NOW - ago
    approved = rc == "00"
    return JournalRecord(
        trace_id=f"t{n:04d}", node="n1", source_link="acquirer", destination=destination,
        route="(default)" if destination else None, mti_in="0200", mti_out="0210", processing_code="000000",
        stan=f"{n:06d}", rrn=f"{n:012d}", terminal_id=terminal, pan_masked=mask_pan(pan), pan_hash=pan_hash,
        amount=amount, currency=currency, response_code=rc, outcome="approved" if approved else "declined",
        received_at=at, responded_at=at + timedelta(milliseconds=40), latency_us=40_000, upstream_us=30_000,
        request={"mti": "0200", "2": mask_pan(pan), "11": f"{n:06d}"},
        response={"mti": "0210", "2": mask_pan(pan), "11": f"{n:06d}", "39": rc,
                  **({"38": f"A{n:05d}"} if approved else {})},
    )


def _seed(conf: Path, db_url: str) -> None:
    """Six exchanges: two cards, two terminals, approvals and declines, one older than a day, one in yen."""
    cfg = load_config(conf)
    keys = load_or_create(cfg.hash_key_file)  # as the node creates it at its first start
    h1, h2 = keys.pan_hash(PAN), keys.pan_hash(OTHER_PAN)
    records = [
        _record(1, ago=timedelta(hours=30), pan_hash=h1),
        _record(2, ago=timedelta(hours=2), pan_hash=h2, pan=OTHER_PAN, terminal="ATM00042", rc="05"),
        _record(3, ago=timedelta(minutes=40), pan_hash=h1, terminal="ATM00042"),
        _record(4, ago=timedelta(minutes=10), pan_hash=h1, rc="51", amount=1_234_567),
        _record(5, ago=timedelta(minutes=5), pan_hash=h2, pan=OTHER_PAN, destination="other", amount=2500,
                currency="392"),
        _record(6, ago=timedelta(minutes=1), pan_hash=h1, amount=1500, currency="414"),
    ]
    upgrade(db_url)
    engine = make_engine(db_url)
    writer = JournalWriter(engine)
    errors: list[BaseException | None] = []
    try:
        writer.start()
        for record in records:
            writer.submit(record, errors.append)
        writer.close()
    finally:
        engine.dispose()
    assert errors == [None] * len(records)


def _stans(output: str) -> list[str]:
    return [line.split("stan ")[1].split()[0] for line in output.splitlines() if "stan " in line]


@pytest.fixture
def seeded(tmp_path: Path, db_url: str) -> Path:
    conf = write_config(tmp_path, db_url, {"up": 9, "other": 10}, ROUTES_ONE.format(link="up"))
    _seed(conf, db_url)
    return conf


def test_list_is_newest_first_and_each_filter_narrows_it(seeded: Path, cli: Cli) -> None:
    everything = cli.run("journal", "list")
    assert everything.exit_code == 0, everything.output
    assert _stans(everything.output) == ["000006", "000005", "000004", "000003", "000002", "000001"]
    first = everything.output.splitlines()[0]
    assert "0200->0210  rc 00  approved" in first and "476173******0010" in first and "1.500 KWD" in first
    assert "tid TERM0001  acquirer->up  route (default)" in first

    assert _stans(cli.run("journal", "list", "--terminal", "ATM00042").output) == ["000003", "000002"]
    assert _stans(cli.run("journal", "list", "--rc", "05").output) == ["000002"]
    assert _stans(cli.run("journal", "list", "--destination", "other").output) == ["000005"]
    assert _stans(cli.run("journal", "list", "--last", "15m").output) == ["000006", "000005", "000004"]
    until = (NOW - timedelta(minutes=30)).isoformat()
    window = cli.run("journal", "list", "--since", (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S"),
                     "--until", until)  # a time without a zone is UTC
    assert _stans(window.output) == ["000003", "000002"]
    none = cli.run("journal", "list", "--rc", "91")
    assert none.exit_code == 0 and none.output.strip() == "no exchange found"

    truncated = cli.run("journal", "list", "--limit", "2")
    assert _stans(truncated.output) == ["000006", "000005"]
    assert truncated.output.splitlines()[-1].startswith("truncated: more than 2 exchanges match")


def test_a_card_is_found_by_its_hash_within_a_day_unless_asked_further_back(seeded: Path, cli: Cli) -> None:
    card = cli.run("journal", "list", "--pan", PAN)
    assert card.exit_code == 0, card.output
    assert card.output.startswith("# card lookup from ")
    assert _stans(card.output) == ["000006", "000004", "000003"]  # not #1: 30 hours ago
    assert "541275******6543" not in card.output
    further = cli.run("journal", "list", "--pan", PAN, "--last", "2d", "--json")
    data = json.loads(further.output)
    assert [x["stan"] for x in data["exchanges"]] == ["000006", "000004", "000003", "000001"]
    assert {x["pan"] for x in data["exchanges"]} == {"476173******0010"} and data["truncated"] is False
    declined = next(x for x in data["exchanges"] if x["stan"] == "000004")
    assert (declined["amount"], declined["currency"], declined["amount_minor"]) == ("12345.67", "USD", 1_234_567)
    assert declined["response_code"] == "51" and declined["auth_code"] is None
    assert declined["received_at"] == (NOW - timedelta(minutes=10)).isoformat()
    spaced = cli.run("journal", "list", "--pan", " ".join([OTHER_PAN[:4], OTHER_PAN[4:8], OTHER_PAN[8:12],
                                                            OTHER_PAN[12:]]))
    assert _stans(spaced.output) == ["000005", "000002"]


@pytest.mark.parametrize(("args", "says"), [
    (["--since", "yesterday"], "is not an ISO 8601 time"),
    (["--until", "2026-13-01"], "is not an ISO 8601 time"),
    (["--last", "15 minutes"], "is not a duration"),
    (["--last", "0m"], "is not a duration"),
    (["--rc", "5"], "is not a response code"),
    (["--rc", "05;"], "is not a response code"),
    (["--since", "2026-01-02", "--last", "1h"], "not both"),
    (["--since", "2026-01-02", "--until", "2026-01-01"], "--since must be before --until"),
    (["--destination", "upp"], "unknown destination 'upp' (links: acquirer, atm, other, up)"),
    (["--pan", PAN[:-1] + "X"], "not a card number (12 to 19 digits)"),
])
def test_bad_filters_are_usage_errors_with_exit_code_2(seeded: Path, cli: Cli, args: list[str], says: str) -> None:
    for command in (["list"], ["export", "--format", "csv", "--out", str(seeded.parent / "x.csv")]):
        result = cli.run("journal", *command, *args)
        assert result.exit_code == 2, result.output
        assert says in result.output
        assert PAN[:-1] not in result.output  # a mistyped card number is not echoed
    assert not (seeded.parent / "x.csv").exists()


def test_a_card_lookup_without_the_data_key_says_so(tmp_path: Path, db_url: str, cli: Cli) -> None:
    write_config(tmp_path, db_url, {"up": 9}, ROUTES_ONE.format(link="up"))
    result = cli.run("journal", "list", "--pan", PAN)
    assert result.exit_code == 1
    assert "cannot look up a card" in result.output and "no data key" in result.output
    assert not (tmp_path / "var" / "data.key").exists()  # a reader never creates a key


def test_export_for_a_dispute_csv_and_json(seeded: Path, cli: Cli) -> None:
    out = seeded.parent / "dispute.csv"
    done = cli.run("journal", "export", "--format", "csv", "--out", str(out), "--pan", PAN, "--last", "2d")
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"exported 4 exchanges to {out}"
    text = out.read_text()
    assert not any(pan in text for pan in CLEAR)
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["stan"] for r in rows] == ["000001", "000003", "000004", "000006"]  # oldest first
    last = rows[-1]
    assert last["pan"] == "476173******0010" and last["received_at"] == (NOW - timedelta(minutes=1)).isoformat()
    assert last["received_at"].endswith("+00:00") and last["responded_at"].endswith("+00:00")
    assert (last["amount"], last["currency"], last["amount_minor"]) == ("1.500", "KWD", "1500")
    assert (last["response_code"], last["auth_code"], last["outcome"]) == ("00", "A00006", "approved")
    assert (last["route"], last["destination"], last["trace_id"]) == ("(default)", "up", "t0006")

    again = cli.run("journal", "export", "--format", "csv", "--out", str(out))
    assert again.exit_code == 2 and "exists" in again.output
    assert out.read_text() == text  # untouched

    out_json = seeded.parent / "dispute.json"
    done = cli.run("journal", "export", "--format", "json", "--out", str(out_json), "--destination", "other")
    assert done.exit_code == 0, done.output
    data = json.loads(out_json.read_text())
    assert data["filters"] == {"destination": "other"}
    (yen,) = data["exchanges"]
    assert (yen["amount"], yen["currency"], yen["pan"]) == ("2500", "JPY", "541275******6543")
    assert list(yen) == ["received_at", "responded_at", "trace_id", "source_link", "destination", "route",
                         "mti_in", "mti_out", "processing_code", "stan", "rrn", "terminal_id", "pan", "amount",
                         "currency", "amount_minor", "response_code", "auth_code", "outcome"]
    card = cli.run("journal", "export", "--format", "json", "--out", str(seeded.parent / "card.json"),
                   "--pan", OTHER_PAN)
    described = json.loads((seeded.parent / "card.json").read_text())["filters"]
    assert card.exit_code == 0 and described["pan"] == "541275******6543" and "since" in described
    nowhere = cli.run("journal", "export", "--format", "csv", "--out", str(seeded.parent / "no" / "x.csv"))
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output
    assert [p.name for p in seeded.parent.iterdir() if p.name.endswith(".partial")] == []


def test_follow_prints_the_backlog_then_stops_at_count(seeded: Path, cli: Cli) -> None:
    result = cli.run("journal", "follow", "--last", "15m", "--count", "2", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["stan"] for line in result.output.splitlines()] == ["000004", "000005"]


async def test_follow_prints_exchanges_of_a_running_node_as_they_are_committed(
    tmp_path: Path, db_url: str, cli: Cli
) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES_ONE.format(link="up"))
        async with running_node(conf) as node, client(port_of(node)) as c:
            await c.call(purchase(amount=1000, stan=111))  # before the follower starts: not shown
            follower: list[Result] = []
            started = threading.Event()

            def follow() -> None:
                started.set()
                follower.append(cli.run("journal", "follow", "--rc", "00", "--count", "2", "--interval", "0.05"))

            sent: list[int] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, follow)
                await trio.to_thread.run_sync(started.wait)
                # Purchases keep coming until the follower has shown two: however late it took its cursor, it
                # must show two consecutive ones, and never the one from before it started.
                with trio.fail_after(20):
                    while not follower:
                        sent.append(200 + len(sent))
                        await c.call(purchase(amount=2000, stan=sent[-1]))
                        await trio.sleep(0.2)
    (result,) = follower
    assert result.exit_code == 0, result.output
    shown = [int(stan) for stan in _stans(result.output)]
    assert len(shown) == 2 and shown[1] == shown[0] + 1 and shown[0] in sent
    assert all("rc 00  approved" in line and "476173******0010" in line for line in result.output.splitlines())
    assert "20.00 USD" in result.output.splitlines()[0]
