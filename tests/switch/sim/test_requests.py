"""Request generation and the JSON-lines request file (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.contracts.registry import network
from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.sim.acquirer import AcquirerConfig, prepare
from switch.sim.requests import STAN_MODULO, Numbering, RequestTemplate, load_requests

BINARY = network("generic").binary_fields
NOW = 1_700_013_320.0  # 2023-11-15 01:55:20 UTC


def test_template_fields_and_numbering() -> None:
    numbering = Numbering(seed=1, now=NOW)
    msg = numbering.stamp(RequestTemplate(pan="5500000000000004", amount=1234).build(), 7, "TERM0001")
    assert msg.mti == "0200"
    assert msg[2] == "5500000000000004"
    assert msg[4] == "000000001234"
    assert (msg[7], msg[12], msg[13]) == ("1115015520", "015520", "1115")
    assert msg[11] == numbering.stan(7)
    assert msg[37] == "13320" + "0000007"
    assert msg[41] == "BHSIM001"  # the template's own terminal id wins over the default
    network("generic").validate(msg)


def test_network_template() -> None:
    msg = Numbering(seed=1, now=NOW).stamp(RequestTemplate(mti="0800").build(), 0, "TERM0001")
    assert msg.fields.keys() == {7, 11, 70}
    assert msg[70] == "301"


def test_stan_wraps_within_six_digits_and_skips_zero() -> None:
    numbering = Numbering(seed=3, now=NOW)
    last = STAN_MODULO - numbering.stan_base - 1  # index that gets STAN 999999
    assert [numbering.stan(i) for i in (last - 1, last, last + 1)] == [
        "999998", "999999", "000001"
    ]
    assert numbering.stan(0) == numbering.stan(STAN_MODULO)
    assert len({numbering.stan(i) for i in range(5000)}) == 5000


def test_prepare_gives_unique_keys_and_rrns() -> None:
    adapter = network("generic")
    prepared = prepare(AcquirerConfig(count=2000, seed=5), adapter)
    assert len({p.key for p in prepared}) == 2000
    rrns = {adapter.decode(p.wire[2:])[37] for p in prepared[:50]}
    assert len(rrns) == 50


def test_load_requests(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "# two requests\n"
        '{"mti": "0200", "fields": {"2": "4761739001010010", "3": "000000", "4": "000000000500", '
        '"52": "0123456789ABCDEF"}}\n'
        "\n"
        '{"mti": "0400", "fields": {"2": "4761739001010010", "3": "000000", "4": "000000000500"}}\n',
        encoding="utf-8",
    )
    requests = load_requests(path, BINARY)
    assert [r.mti for r in requests] == ["0200", "0400"]
    assert requests[0][52] == bytes.fromhex("0123456789ABCDEF")
    stamped = Numbering(seed=1, now=NOW).stamp(requests[1], 3, "TERM0001")
    assert stamped[41] == "TERM0001" and stamped[4] == "000000000500"
    assert isinstance(stamped, Message)


@pytest.mark.parametrize(
    ("line", "key", "reason"),
    [
        ("{not json", "", "not JSON"),
        ('["0200"]', "", "expected"),
        ('{"mti": "0210", "fields": {}}', "mti", "request MTI"),
        ('{"mti": "200", "fields": {}}', "mti", "request MTI"),
        ('{"mti": "0200", "fields": {"1": "x"}}', "fields.1", "2 to 128"),
        ('{"mti": "0200", "fields": {"4": 500}}', "fields.4", "string"),
        ('{"mti": "0200", "fields": {"52": "zz"}}', "fields.52", "hex"),
        ('{"mti": "0200", "extra": 1}', "", "expected"),
    ],
)
def test_bad_request_lines(tmp_path: Path, line: str, key: str, reason: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"mti": "0800", "fields": {"70": "301"}}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_requests(path, BINARY)
    assert (info.value.key, info.value.line) == (key, 2)
    assert reason in info.value.reason


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n# nothing\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no requests"):
        load_requests(empty, BINARY)
    with pytest.raises(ConfigError, match="cannot read"):
        load_requests(tmp_path / "missing.jsonl", BINARY)
