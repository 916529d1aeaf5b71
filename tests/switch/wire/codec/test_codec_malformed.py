"""Malformed input: mutated and truncated valid messages, and random bytes, get the same accept/reject decision
from the compiled codec as from pyiso8583, the same error field and position, and on accept the same values."""

from __future__ import annotations

from functools import cache

import iso8583
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .cases import SPECS, assert_same_decode, codecs_for, messages, oracle_decode, ours_decode, raw_message

_codecs = cache(codecs_for)

# Bytes that make length prefixes and bitmaps interesting: digits, signs, blanks, "_", hex letters, extremes.
_BYTE = st.one_of(st.sampled_from(list(b"0123456789 +-_\t\x1cFf\x00\x80\xf0\xf9\xff")), st.integers(0, 255))


@st.composite
def _mutated(draw: st.DrawFn, wire: bytes) -> bytes:
    data = bytearray(wire)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "append", "cut-tail"]))
        at = draw(st.integers(0, len(data)))
        if op == "cut-tail":  # a frame that lost its last bytes
            del data[len(data) - draw(st.integers(1, 3)) :]
        elif op == "replace" and at < len(data):
            data[at] = draw(_BYTE)
        elif op == "insert":
            data[at:at] = bytes(draw(st.lists(_BYTE, min_size=1, max_size=3)))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[at:]
        else:
            data += bytes(draw(st.lists(_BYTE, min_size=1, max_size=3)))
    return bytes(data)


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_messages_same_decision(name: str, data: st.DataObject) -> None:
    spec = SPECS[name]
    mti, fields, header = data.draw(messages(name))
    wire = raw_message(spec, mti, fields, header)
    for codec in _codecs(name):
        # Make the original's plan hot, so that mutants with the same bitmap go through generated code.
        codec.decode(wire)
        codec.decode(wire)
    bad = data.draw(_mutated(wire), label="mutated")
    expected = oracle_decode(spec, bad)
    for codec in _codecs(name):
        assert_same_decode(expected, ours_decode(codec, bad))


def _length_tokens(width: int) -> list[str]:
    """Length texts that ``int()`` reads in surprising ways (sign, blanks, underscore) or that overflow."""
    one = "1".rjust(width - 1, "0")
    tokens = ["-" + one, "+" + one, "1".rjust(width), "-0".rjust(width, "0"), "1_0".rjust(width, "0")]
    tokens += ["9" * width, "0" * width, " " * width]
    return [t for t in tokens if len(t) == width]


@st.composite
def _respliced(draw: st.DrawFn, spec_name: str, wire: bytes) -> bytes:
    """Rewrite one field's length prefix or one of its data bytes, where pyiso8583 says the field lies."""
    spec = SPECS[spec_name]
    _, doc_enc = iso8583.decode(wire, spec)
    segments = [(key, bytearray(v["len"]), bytearray(v["data"])) for key, v in doc_enc.items()]
    assert b"".join(bytes(length + data) for _, length, data in segments) == wire
    key, length, data = draw(st.sampled_from(segments))
    if length and draw(st.booleans()):
        len_enc = spec[key]["len_enc"]
        if len_enc not in ("b", "bcd") and draw(st.booleans()):
            token = draw(st.sampled_from(_length_tokens(len(length))))
            length[:] = token.encode(len_enc)
        else:
            length[draw(st.integers(0, len(length) - 1))] = draw(_BYTE)
    elif data:
        data[draw(st.integers(0, len(data) - 1))] = draw(_BYTE)
    return b"".join(bytes(length + data) for _, length, data in segments)


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_rewritten_lengths_and_data_same_decision(name: str, data: st.DataObject) -> None:
    spec = SPECS[name]
    mti, fields, header = data.draw(messages(name))
    wire = raw_message(spec, mti, fields, header)
    for codec in _codecs(name):
        codec.decode(wire)
        codec.decode(wire)
    bad = data.draw(_respliced(name, wire), label="rewritten")
    expected = oracle_decode(spec, bad)
    for codec in _codecs(name):
        assert_same_decode(expected, ours_decode(codec, bad))


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=100, deadline=None)
@given(garbage=st.binary(max_size=64))
def test_random_bytes_same_decision(name: str, garbage: bytes) -> None:
    expected = oracle_decode(SPECS[name], garbage)
    for codec in _codecs(name):
        assert_same_decode(expected, ours_decode(codec, garbage))
