"""The demo's ``[[simulators]]`` table: read by its section (not by the engine), started by the node as a service."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.config import parse_config
from switch.model.errors import ConfigError
from switch.sim.rules import Rule
from switch.sim.section import IssuerSimulators, Simulators
from switch.wire.framing import Bcd2Framer

NODE = """
[node]
name = "n1"

[[listeners]]
name = "acq"
port = 8583

[[simulators]]
name = "demo-issuer"
port = 9583
framing = { kind = "bcd2" }
rules = "issuer-rules.toml"

[[simulators]]
name = "bare"
host = "::1"
port = 0
"""


def test_simulators_are_read_by_their_section_and_become_a_service(tmp_path: Path) -> None:
    (tmp_path / "issuer-rules.toml").write_text("[[rules]]\naction = 'drop'\nbin = '422222'\n", encoding="utf-8")
    cfg = parse_config(NODE, tmp_path / "node.toml")
    section = cfg.sections["simulators"]
    assert isinstance(section, Simulators)
    demo, bare = section.items
    assert (demo.name, demo.host, demo.port, demo.scheme, demo.framing.framing_kind) == (
        "demo-issuer", "127.0.0.1", 9583, "generic", "bcd2")
    assert isinstance(demo.framing.framer(), Bcd2Framer)
    assert demo.rules == tmp_path / "issuer-rules.toml"
    assert (bare.host, bare.port, bare.rules) == ("::1", 0, None)
    (service,) = section.services()
    assert isinstance(service, IssuerSimulators)
    first, second = service._configs
    assert first.rules.rules == (Rule("drop", bin="422222"),)
    assert second.rules.rules == ()
    assert not section.links()


@pytest.mark.parametrize(("snippet", "key", "reason"), [
    (NODE.replace("port = 9583", "port = 8583"), "simulators[0].port", "already used by listeners[0]"),
    (NODE.replace('framing = { kind = "bcd2" }', 'framing = { kind = "visa" }'), "simulators[0].framing.kind",
     "does not belong to network 'generic'"),
    (NODE.replace('name = "bare"', 'name = "bare"\nrulez = "x"'), "simulators[1].rulez", "unknown key"),
])
def test_bad_simulator_tables_name_file_key_and_reason(tmp_path: Path, snippet: str, key: str, reason: str) -> None:
    (tmp_path / "issuer-rules.toml").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        parse_config(snippet, tmp_path / "node.toml")
    assert info.value.key == key
    assert reason in str(info.value)


NETWORK_SIM = """
[node]
name = "n1"

[[simulators]]
name = "visa-network"
port = 0
scheme = "visa"
framing = { kind = "visa", source_station = "400000", destination_station = "123456" }
originate = { rate = 0.2, cards = ["4761730010000019"], amount = 100, reversal_every = 3, stip_every = 5 }
"""


def test_a_network_simulator_originates_as_its_table_says(tmp_path: Path) -> None:
    section = parse_config(NETWORK_SIM, tmp_path / "node.toml").sections["simulators"]
    assert isinstance(section, Simulators)
    (sim,) = section.items
    assert sim.originate is not None
    assert (sim.originate.rate, sim.originate.cards, sim.originate.amount) == (0.2, ("4761730010000019",), 100)
    assert (sim.originate.reversal_every, sim.originate.stip_every, sim.originate.mti) == (3, 5, "0200")
    assert sim.reject_code == "0001"  # VISA's default reject code (README "Networks")
    off = parse_config(NETWORK_SIM.replace("rate = 0.2", "rate = 0"), tmp_path / "node.toml").sections["simulators"]
    assert isinstance(off, Simulators) and off.items[0].originate is None


@pytest.mark.parametrize(("old", "new", "key", "reason"), [
    ('cards = ["4761730010000019"]', "cards = []", "simulators[0].originate.cards", "list of card numbers"),
    ('cards = ["4761730010000019"]', 'cards = ["12"]', "simulators[0].originate", "12 to 19 digits"),
    ("stip_every = 5", 'stip_every = 5, mti = "0400"', "simulators[0].originate", "mti is one of"),
    ("stip_every = 5", "stip_every = 5, speed = 1", "simulators[0].originate.speed", "unknown key"),
])
def test_bad_originate_tables_name_the_key(tmp_path: Path, old: str, new: str, key: str, reason: str) -> None:
    assert old in NETWORK_SIM
    with pytest.raises(ConfigError) as info:
        parse_config(NETWORK_SIM.replace(old, new), tmp_path / "node.toml")
    assert info.value.key == key
    assert reason in str(info.value)


DEMO_ZMK = "UB7B305F59EDC7BCC208FD5799D635BC3"  # conf/demo/node.toml's (test LMK, KCV 292518)


def test_a_network_simulator_reads_its_keys_and_options(tmp_path: Path) -> None:
    text = NETWORK_SIM.replace('scheme = "visa"', f'scheme = "visa"\nzmk = "{DEMO_ZMK}"\nkey_every = 600\n'
                                                  'options = { mac_key_exchange_code = "164" }')
    section = parse_config(text, tmp_path / "node.toml").sections["simulators"]
    assert isinstance(section, Simulators)
    (sim,) = section.items
    assert (sim.zmk, sim.key_every_s) == (DEMO_ZMK, 600.0)
    (service,) = section.services()
    assert isinstance(service, IssuerSimulators)
    (config,) = service._configs
    assert (config.zmk, config.key_every_s) == (DEMO_ZMK, 600.0)


@pytest.mark.parametrize(("extra", "key", "reason"), [
    ('zmk = "U00"', "simulators[0].zmk", "not a zone master key under the test LMK"),
    ("key_every = 60", "simulators[0].key_every", "needs its zmk"),
    (f'zmk = "{DEMO_ZMK}"\nkey_every = -1', "simulators[0].key_every", "must not be negative"),
    ('options = { mac_key_exchange_code = "1" }', "simulators[0].options.mac_key_exchange_code", "3 digits"),
])
def test_bad_key_settings_name_the_key(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(NETWORK_SIM.replace('scheme = "visa"', f'scheme = "visa"\n{extra}'), tmp_path / "node.toml")
    assert info.value.key == key
    assert reason in str(info.value)
