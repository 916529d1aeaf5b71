"""Plans: what one bitmap (decode) or one set of field numbers (encode) means, worked out once and cached.

Both follow pyiso8583 4.x ``decoder.decode`` / ``encoder.encode`` in their order of checks, so that the first
error raised is the one pyiso8583 raises. Where pyiso8583 lets a bare KeyError escape (a bitmap bit or a
field number the spec does not define, a secondary bitmap the spec lacks), the plan raises the typed error
with the field's number at the same point of the walk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeVar

from switch.model.errors import DecodeError, EncodeError
from switch.wire.compiled._bitmap import bitmap_width, read_bitmap, write_bitmap
from switch.wire.compiled._fields import EncodeStep, Step
from switch.wire.compiled._runs import encode_run_kind, make_encode_run, make_run, run_kind
from switch.wire.compiled._spec import HEADER, PRIMARY, SECONDARY, FieldFormat, SpecLayout

S = TypeVar("S")
Kind = tuple[str, str]
# A group of field numbers decoded or encoded together: a run of one kind (two or more fixed fields), or a
# single field (kind None), possibly one the spec does not define.
Group = tuple[Kind | None, list[int]]


class DecodePlan:
    """What one bitmap selects. ``run`` decodes the fields into a dict and returns the next position.

    ``run`` starts as the loop over ``steps``; once the plan has decoded ``hot_after`` messages the codec swaps
    in generated straight-line code (:mod:`._fastpath`), so that a peer sending ever new bitmaps does not make
    us compile code for each.
    """

    __slots__ = ("groups", "last", "run", "size", "steps", "uses")

    def __init__(self, size: int, steps: tuple[Step, ...], last: str, groups: list[Group]) -> None:
        self.size = size  # bytes of bitmap(s)
        self.steps = steps
        self.last = last  # the key pyiso8583 names in its "Extra data after last field" error
        self.groups = groups
        self.uses = 0
        self.run: Step = self.loop

    def loop(self, s: bytes, i: int, out: dict[int, str]) -> int:
        for step in self.steps:
            i = step(s, i, out)
        return i


class EncodePlan(NamedTuple):
    before_mti: tuple[str, str] | None  # (reason, field) raised before the MTI is looked at
    after_mti: tuple[str, str] | None  # raised once the MTI is valid (field range, bitmaps)
    bitmaps: bytes
    steps: tuple[EncodeStep, ...]


def _missing_step(number: int) -> Step:
    def missing(s: bytes, i: int, out: dict[int, str]) -> int:
        raise DecodeError("bitmap announces a field the spec does not define", str(number), i)

    return missing


def _missing_encoder(number: int) -> EncodeStep:
    def missing(fields: Mapping[int, str]) -> bytes:
        raise EncodeError("the spec does not define this field", str(number))

    return missing



def group_runs(
    ordered: list[int], formats: Mapping[int, FieldFormat], kind_of: Callable[[FieldFormat], Kind | None]
) -> list[Group]:
    """Split field numbers (in order) into runs of consecutive fields of one kind and single fields."""
    groups: list[Group] = []
    run: list[int] = []
    kind: Kind | None = None
    for number in ordered:
        fmt = formats.get(number)
        this = kind_of(fmt) if fmt is not None else None
        if run and this != kind:
            groups.append((kind, run) if len(run) > 1 else (None, run))
            run = []
        if this is None:
            groups.append((None, [number]))
        else:
            kind = this
            run.append(number)
    if run:
        groups.append((kind, run) if len(run) > 1 else (None, run))
    return groups


def _steps(
    groups: list[Group],
    formats: Mapping[int, FieldFormat],
    singles: Mapping[int, S],
    make_group: Callable[[Kind, list[tuple[int, FieldFormat]], list[S]], S],
    missing: Callable[[int], S],
) -> tuple[S, ...]:
    steps: list[S] = []
    for kind, numbers in groups:
        if kind is not None:
            steps.append(make_group(kind, [(n, formats[n]) for n in numbers], [singles[n] for n in numbers]))
        else:
            steps.append(singles[numbers[0]] if numbers[0] in singles else missing(numbers[0]))
    return tuple(steps)


def plan_decode(
    layout: SpecLayout, singles: Mapping[int, Step], s: bytes, start: int
) -> tuple[DecodePlan, list[int]]:
    """Read the bitmaps at ``s[start:]`` exactly as pyiso8583 does.

    Returns the plan and the end offset of each bitmap read (the cache keys are ``s[start:end]``).
    """
    i, key, enc = start, PRIMARY, layout.primary_enc
    numbers = read_bitmap(s, i, key, enc, 0, 0)
    i += bitmap_width(enc)
    ends = [i]
    if 1 in numbers:
        key = SECONDARY
        if layout.secondary_enc is None:
            raise DecodeError("bitmap announces a secondary bitmap the spec does not define", key, i)
        enc = layout.secondary_enc
        numbers |= read_bitmap(s, i, key, enc, 64, 0)
        i += bitmap_width(enc)
        ends.append(i)
        numbers.remove(1)
    if 65 in numbers:
        # The tertiary bitmap extends the last bitmap read, with that bitmap's spec.
        numbers |= read_bitmap(s, i, key, enc, 128, bitmap_width(enc))
        i += bitmap_width(enc)
        ends.append(i)
        numbers.remove(65)
    ordered = sorted(numbers)
    groups = group_runs(ordered, layout.fields, run_kind)
    steps = _steps(groups, layout.fields, singles, make_run, _missing_step)
    return DecodePlan(i - start, steps, str(ordered[-1]) if ordered else key, groups), ends


def plan_encode(layout: SpecLayout, singles: Mapping[int, EncodeStep], numbers: tuple[int, ...]) -> EncodePlan:
    """What pyiso8583 decides from the field numbers alone (values are checked by the steps)."""
    if not all(type(n) is int for n in numbers):
        return EncodePlan(("field numbers must be int", PRIMARY), None, b"", ())
    # PyIsoCodec refuses bitmap numbers first, in the caller's order; then pyiso8583 wants its header.
    low = next((n for n in numbers if n <= 1), None)
    if low is not None:
        return EncodePlan(("bitmaps are derived, not set", str(low)), None, b"", ())
    if layout.header is not None:
        return EncodePlan(("Field data is required according to specifications", HEADER), None, b"", ())
    # Field 65 is the tertiary-bitmap bit: pyiso8583 drops a value given for it.
    wanted = set(numbers) - {65}
    outside = sorted(n for n in wanted if n > 192)
    if outside:
        return EncodePlan(None, (f"Dictionary contains fields outside of 1-192 range {outside}", PRIMARY), b"", ())
    try:
        bitmaps = _write_bitmaps(layout, wanted)
    except EncodeError as exc:
        return EncodePlan(None, (exc.reason, exc.field), b"", ())
    groups = group_runs(sorted(wanted), layout.fields, encode_run_kind)
    steps = _steps(groups, layout.fields, singles, make_encode_run, _missing_encoder)
    return EncodePlan(None, None, bitmaps, steps)


def _write_bitmaps(layout: SpecLayout, wanted: set[int]) -> bytes:
    tertiary = [n for n in wanted if n > 128]
    secondary = [n for n in wanted if 64 < n <= 128] + ([65] if tertiary else [])
    primary = [n for n in wanted if n <= 64] + ([1] if secondary else [])
    out = write_bitmap(primary, 0, PRIMARY, layout.primary_enc)
    if secondary:
        enc = layout.secondary_enc
        if enc is None:
            raise EncodeError("the spec defines no secondary bitmap", SECONDARY)
        out += write_bitmap(secondary, 64, SECONDARY, enc)
        if tertiary:
            out += write_bitmap(tertiary, 128, SECONDARY, enc)
    return out
