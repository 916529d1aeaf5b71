"""Reading one pyiso8583 spec dict into typed field formats, checked once at load time.

pyiso8583 (``iso8583/specs.py``, 4.x) reads these keys per field: ``data_enc``, ``len_enc``, ``len_type``,
``max_len`` and the optional ``len_count`` ("bytes" or "nibbles"), ``left_pad`` and ``right_pad`` (first
character used; only read for odd-length nibble fields with ``data_enc`` "b"). pyiso8583 itself never checks a
spec and fails at run time with a bare TypeError on a malformed one; we refuse such a spec when compiling.
Unknown codec names are *not* refused here: pyiso8583 reports them per message (and accepts an empty variable
field whatever its encoding), and the compiled codec must take the same decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switch.model.errors import ConfigError

# The keys pyiso8583 gives a meaning other than a data field.
HEADER, MTI, PRIMARY, SECONDARY = "h", "t", "p", "1"


class SpecError(ConfigError):
    """A spec dict cannot be compiled: names the spec, the field key and the reason."""

    def __init__(self, spec_name: str, key: str, reason: str) -> None:
        super().__init__(f"spec {spec_name}", key, reason)


@dataclass(frozen=True, slots=True)
class FieldFormat:
    """One field of a spec, as pyiso8583 reads it."""

    key: str
    data_enc: str
    len_enc: str  # "" for a fixed field: pyiso8583 never reads it there
    len_type: int
    max_len: int
    nibbles: bool
    left_pad: str  # "" or one character
    right_pad: str

    @property
    def binary(self) -> bool:
        return self.data_enc == "b"

    @property
    def len_count(self) -> str:
        """The unit of ``max_len`` as pyiso8583 names it in its messages."""
        return "nibbles" if self.nibbles else "bytes"


def _int(spec_name: str, key: str, entry: Mapping[str, Any], name: str) -> int:
    value = entry.get(name)
    if type(value) is not int:
        raise SpecError(spec_name, key, f"{name} must be an int")
    return value


def _text(spec_name: str, key: str, entry: Mapping[str, Any], name: str, default: str | None) -> str:
    value = entry.get(name, default)
    if not isinstance(value, str):
        raise SpecError(spec_name, key, f"{name} must be a string")
    return value


def read_field(spec_name: str, key: str, entry: object) -> FieldFormat:
    """Check one spec entry and return its format."""
    if not isinstance(entry, Mapping):
        raise SpecError(spec_name, key, "field spec must be a mapping")
    data_enc = _text(spec_name, key, entry, "data_enc", None)
    len_type = _int(spec_name, key, entry, "len_type")
    max_len = _int(spec_name, key, entry, "max_len")
    if len_type < 0:
        raise SpecError(spec_name, key, "len_type must be >= 0")
    if max_len < 0:
        raise SpecError(spec_name, key, "max_len must be >= 0")
    len_enc = _text(spec_name, key, entry, "len_enc", None) if len_type > 0 else ""
    len_count = _text(spec_name, key, entry, "len_count", "bytes")
    if len_count not in ("bytes", "nibbles"):
        raise SpecError(spec_name, key, 'len_count must be "bytes" or "nibbles"')
    left_pad = _text(spec_name, key, entry, "left_pad", "")[:1]
    right_pad = _text(spec_name, key, entry, "right_pad", "")[:1]
    return FieldFormat(key, data_enc, len_enc, len_type, max_len, len_count == "nibbles", left_pad, right_pad)


@dataclass(frozen=True, slots=True)
class SpecLayout:
    """A whole spec: header, MTI, bitmaps and data fields 2..192.

    For the MTI and the bitmaps pyiso8583 reads ``data_enc`` only: "b" means 2 (MTI) or 8 (bitmap) raw bytes,
    anything else 4 or 16 characters in that encoding. Their ``max_len`` is never read.
    """

    header: FieldFormat | None  # None when max_len <= 0
    mti_enc: str
    primary_enc: str
    secondary_enc: str | None  # None when the spec has no "1": a set bit 1 is then an error
    fields: dict[int, FieldFormat]


def _data_enc(spec_name: str, spec: Mapping[str, Mapping[str, Any]], key: str) -> str:
    entry = spec[key]
    if not isinstance(entry, Mapping):
        raise SpecError(spec_name, key, "field spec must be a mapping")
    return _text(spec_name, key, entry, "data_enc", None)


def read_spec(spec_name: str, spec: Mapping[str, Mapping[str, Any]]) -> SpecLayout:
    """Check a whole spec dict. Keys other than h/t/p/1 and 2..192 are ignored, as pyiso8583 does."""
    for required in (HEADER, MTI, PRIMARY):
        if required not in spec:
            raise SpecError(spec_name, required, "missing")
    header_entry = spec[HEADER]
    if not isinstance(header_entry, Mapping):
        raise SpecError(spec_name, HEADER, "field spec must be a mapping")
    # decoder._decode_header: a header max_len <= 0 means "no header", and nothing else of it is read.
    has_header = _int(spec_name, HEADER, header_entry, "max_len") > 0
    # pyiso8583 looks fields up as spec[str(number)]; 65 is the tertiary-bitmap bit and is never carried as a
    # field (encoder.encode pops it, decoder.decode removes it), so its entry is never read.
    fields = {
        number: read_field(spec_name, str(number), spec[str(number)])
        for number in range(2, 193)
        if number != 65 and str(number) in spec
    }
    return SpecLayout(
        header=read_field(spec_name, HEADER, header_entry) if has_header else None,
        mti_enc=_data_enc(spec_name, spec, MTI),
        primary_enc=_data_enc(spec_name, spec, PRIMARY),
        secondary_enc=_data_enc(spec_name, spec, SECONDARY) if SECONDARY in spec else None,
        fields=fields,
    )
