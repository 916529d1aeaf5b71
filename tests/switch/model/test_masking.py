"""Masking follows the network that decoded a message: its secret fields and sub-fields, in logs and the journal."""

from __future__ import annotations

from switch.model.masking import DEFAULT_MASKING, Masking
from switch.model.message import Message


def _hide_cv(value: str | bytes) -> str:
    assert isinstance(value, str)
    tag, _, rest = value.partition(":")
    if tag != "CV":
        raise ValueError("not a CV element")
    return f"CV:{'*' * len(rest)}"


NETWORK = DEFAULT_MASKING.with_secret(fields=frozenset({60}), subfields={48: _hide_cv})


def test_default_masking_hides_card_data_and_shows_the_rest() -> None:
    msg = Message("0200", {2: "4761739001010010", 35: "4761739001010010=3012", 48: "CV:123", 52: b"\x01" * 8,
                           11: "000001"})
    assert msg.masked() == {"mti": "0200", "2": "476173******0010", "11": "000001",
                            "35": "<21 chars hidden>", "48": "CV:123", "52": "<8 bytes hidden>"}


def test_a_networks_masking_travels_with_its_messages() -> None:
    msg = Message("0200", {2: "4761739001010010", 48: "CV:123", 60: "abc"})
    msg.meta.masking = NETWORK
    assert msg.masked()["48"] == "CV:***"
    assert msg.masked()["60"] == "<3 chars hidden>"
    assert "123" not in repr(msg)
    response = msg.make_response("00")
    response.fields[48] = "CV:987"
    assert response.masked()["48"] == "CV:***"  # a response built by the switch keeps its network's masking
    assert msg.copy().masked()["48"] == "CV:***"


def test_a_sub_field_masker_that_cannot_parse_hides_the_whole_value() -> None:
    msg = Message("0200", {48: "XX:123"})
    msg.meta.masking = NETWORK
    assert msg.masked()["48"] == "<6 chars hidden>"


def test_an_explicit_masking_wins_over_the_messages() -> None:
    msg = Message("0200", {48: "CV:123"})
    assert msg.masked(NETWORK)["48"] == "CV:***"
    assert isinstance(NETWORK, Masking) and 48 in NETWORK.masked_text and 48 not in DEFAULT_MASKING.masked_text
