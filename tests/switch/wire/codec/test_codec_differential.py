"""Generated messages for every spec: the compiled codec encodes the same bytes and decodes the same values
as pyiso8583, through its exact steps, its generated fast path and its exact length-prefix path."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.wire.compiled._spec import FieldFormat, read_spec

from .cases import (
    SPECS,
    assert_same_decode,
    assert_same_encode,
    codecs_for,
    messages,
    oracle_decode,
    oracle_encode,
    ours_decode,
    ours_encode,
    prefix_limit,
    raw_message,
)

_codecs = cache(codecs_for)


def _check_round_trip(name: str, mti: str, fields: dict[int, str], header: str) -> None:
    spec = SPECS[name]
    expected = oracle_encode(spec, mti, fields)
    for codec in _codecs(name):
        assert_same_encode(expected, ours_encode(codec, mti, fields))
    wire = raw_message(spec, mti, fields, header)
    if spec["h"]["max_len"] <= 0:
        assert expected == ("ok", wire)
    decoded = oracle_decode(spec, wire)
    assert decoded[0] == "ok"
    for codec in _codecs(name):
        # Twice: the first decode of a bitmap may run the plain steps, the second runs generated code.
        assert_same_decode(decoded, ours_decode(codec, wire))
        assert_same_decode(decoded, ours_decode(codec, wire))


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_generated_messages_round_trip(name: str, data: st.DataObject) -> None:
    mti, fields, header = data.draw(messages(name))
    _check_round_trip(name, mti, fields, header)


_ANY_VALUE = st.one_of(
    st.text(max_size=12),
    st.text("0123456789ABCDEFabcdef", max_size=24),
    st.text(st.characters(max_codepoint=127), min_size=1, max_size=40),
    st.binary(max_size=8),  # bytes: pyiso8583 takes them as binary values, refuses them as text
)


def _edge_sizes(fmt: FieldFormat) -> list[int]:
    """Lengths at the edges of what a field (and its length prefix) can carry, in the field's unit."""
    limit = prefix_limit(fmt) if fmt.len_type else fmt.max_len
    sizes = {0, 1, fmt.max_len - 1, fmt.max_len, fmt.max_len + 1, limit, limit + 1}
    return sorted(size for size in sizes if 0 <= size <= 1200)


def _sized_values(fmt: FieldFormat, size: int) -> list[str]:
    """Values of ``size`` bytes or nibbles (as the field counts), of several kinds of content."""
    if fmt.binary:
        digits = size if fmt.nibbles else 2 * size
        return ["1F" * (digits // 2) + "1" * (digits % 2), "Zz" * (digits // 2)]
    chars = size // 2 if fmt.nibbles else size
    return ["1" * chars, "é" * chars, "\u20ac" * (chars // 3)]


def _edge_length_value(fmt: FieldFormat) -> st.SearchStrategy[str]:
    return st.sampled_from(_edge_sizes(fmt)).flatmap(lambda size: st.sampled_from(_sized_values(fmt, size)))


@pytest.mark.parametrize("name", list(SPECS))
def test_every_field_at_its_length_edges(name: str) -> None:
    """Each field alone, at and around max_len and its prefix's limit, with ASCII, Latin-1, multi-byte or
    non-hex content: same bytes or same refusal; same values back."""
    spec = SPECS[name]
    for number, fmt in read_spec(name, spec).fields.items():
        for size in _edge_sizes(fmt):
            for value in _sized_values(fmt, size):
                fields = {number: value}
                expected = oracle_encode(spec, "0200", fields)
                for codec in _codecs(name):
                    assert_same_encode(expected, ours_encode(codec, "0200", fields))
                try:
                    wire = raw_message(spec, "0200", fields, "HDR")
                except Exception:
                    continue
                decoded = oracle_decode(spec, wire)
                for codec in _codecs(name):
                    assert_same_decode(decoded, ours_decode(codec, wire))


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_one_bad_field_same_decision(name: str, data: st.DataObject) -> None:
    """A valid message with one or two fields replaced: any number (bitmaps, 65, undefined, > 192), any
    content, lengths at the edges of max_len and of the length prefix."""
    spec = SPECS[name]
    layout = read_spec(name, spec)
    mti, fields, _ = data.draw(messages(name))
    mti = data.draw(st.one_of(st.just(mti), st.text(max_size=5)), label="mti")
    numbers = st.one_of(st.sampled_from(sorted(layout.fields)), st.integers(-1, 200))
    for _ in range(data.draw(st.integers(1, 2), label="changes")):
        number = data.draw(numbers, label="number")
        fmt = layout.fields.get(number)
        edge = _edge_length_value(fmt) if fmt is not None else _ANY_VALUE
        fields[number] = data.draw(st.one_of(_ANY_VALUE, edge), label="value")
    expected = oracle_encode(spec, mti, fields)
    for codec in _codecs(name):
        assert_same_encode(expected, ours_encode(codec, mti, fields))
