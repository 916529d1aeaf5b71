"""The compiled codec: pyiso8583's decisions, without reading the spec dict per message.

At load time every field of the spec becomes a specialised decoding step and encoding step
(:mod:`._fields`). At run time:

- decode looks the raw MTI and bitmap bytes up in a cache of plans (the field steps that bitmap selects,
  consecutive fixed fields merged into runs); an unseen bitmap is read the exact, slow way once. A plan that
  keeps being used gets generated straight-line code (:mod:`._fastpath`) that falls back to the steps on
  anything unusual;
- encode looks the tuple of field numbers up in a cache of plans (bitmap bytes and steps) and joins the
  steps' output.

pyiso8583 4.x is the oracle (``tests/codec``); :mod:`._plans` documents the order of checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from switch.model.errors import DecodeError, EncodeError
from switch.wire.codec import Spec, WireFields
from switch.wire.compiled._bitmap import bitmap_width
from switch.wire.compiled._fastpath import compile_plan
from switch.wire.compiled._fields import Decoder, EncodeStep, Step, make_encoder, make_step, make_value_decoder
from switch.wire.compiled._lengths import build_tables
from switch.wire.compiled._plans import DecodePlan, EncodePlan, plan_decode, plan_encode
from switch.wire.compiled._spec import MTI, FieldFormat, read_spec

# Entries per cache (decode plans per bitmap level, generated code, encode plans, MTIs). A peer sending ever
# new bitmaps only makes us clear and refill; each miss costs about one pyiso8583 decode.
CACHE_LIMIT = 2048
# Well-formed decodes of one bitmap before its plan gets generated code. Generating costs about 250 µs (a
# hundred fast decodes); asking for 64 uses first keeps a peer that cycles through bitmaps from making us
# spend more than a few µs per message on it.
HOT_AFTER = 64


class CompiledCodec:
    """A :class:`switch.wire.codec.Codec` generated from one pyiso8583 spec dict."""

    def __init__(self, name: str, spec: Spec, *, hot_after: int = HOT_AFTER) -> None:
        self.name = name
        self.spec = spec
        if hot_after < 1:
            raise ValueError("hot_after must be at least 1")
        self.hot_after = hot_after
        self.layout = layout = read_spec(name, spec)
        tables = build_tables(list(layout.fields.values()) + ([layout.header] if layout.header else []))
        self._steps: dict[int, Step] = {}
        self._encoders: dict[int, EncodeStep] = {}
        for number, fmt in layout.fields.items():
            table = tables.get((fmt.len_enc, fmt.len_type))
            self._steps[number] = make_step(number, fmt, table)
            self._encoders[number] = make_encoder(number, fmt, table)
        header = layout.header
        self._header: Decoder | None = None
        if header is not None:
            self._header = make_value_decoder(header, tables.get((header.len_enc, header.len_type)))
        # The MTI is a fixed field of 4 characters, or of 2 bytes when "b" (decoder._decode_type).
        mti = FieldFormat(MTI, layout.mti_enc, "", 0, 2 if layout.mti_enc == "b" else 4, False, "", "")
        self._mti_size = mti.max_len
        self._mti_decoder = make_value_decoder(mti, None)
        self._mti_encoder = make_encoder(0, mti, None)
        self._mti_by_text: dict[str, bytes] = {}
        self._head_size = mti.max_len + bitmap_width(layout.primary_enc)
        # Decode plans. Level 0 is keyed by the MTI and primary bitmap bytes together (one lookup for both);
        # levels 1 and 2 by the bitmaps' bytes up to the secondary and tertiary bitmap. An int plan means
        # "this bitmap announces another one: look the first N bitmap bytes up in the next level".
        self._heads: dict[bytes, tuple[str, DecodePlan | int]] = {}
        self._plans: tuple[dict[bytes, DecodePlan | int], ...] = ({}, {})
        self._encode_plans: dict[tuple[int, ...], EncodePlan] = {}
        self._compiled: dict[tuple[int, ...], Step] = {}
        self._tables = tables

    # -- decode -------------------------------------------------------------------------------------------
    def decode(self, data: bytes) -> tuple[str, WireFields]:
        """``(mti, {field: value})`` as :class:`~switch.wire.codec.PyIsoCodec` returns it."""
        s = data if type(data) is bytes else bytes(data)
        i = 0
        if self._header is not None:
            _, i = self._header(s, 0)
        head = self._heads.get(s[i : i + self._head_size])
        if head is None:
            mti, plan = self._decode_head(s, i)
            i += self._mti_size
        else:
            mti, found = head
            i += self._mti_size
            plan = self._follow(s, i, found) if isinstance(found, int) else found
        fields: WireFields = {}
        i = plan.run(s, i + plan.size, fields)
        if i != len(s):
            raise DecodeError("Extra data after last field", plan.last, i)
        if plan.uses < self.hot_after:
            self._count_use(plan)
        return mti, fields

    def _count_use(self, plan: DecodePlan) -> None:
        """Swap generated code into a plan once it is hot (shared between plans of the same fields)."""
        plan.uses += 1
        if plan.uses < self.hot_after:
            return
        numbers = tuple(n for _, group in plan.groups for n in group)
        run = self._compiled.get(numbers)
        if run is None:
            run = compile_plan(plan.groups, self.layout.fields, self._tables, plan.steps)
            _remember(self._compiled, numbers, run)
        plan.run = run

    def _decode_head(self, s: bytes, i: int) -> tuple[str, DecodePlan]:
        """MTI and bitmaps the slow, exact way (the MTI is checked first, as pyiso8583 does)."""
        mti, j = self._mti_decoder(s, i)
        plan, ends = self._plan_decode(s, j)
        follow = plan if len(ends) == 1 else ends[1] - j
        _remember(self._heads, s[i : ends[0]], (mti, follow))
        return mti, plan

    def _follow(self, s: bytes, start: int, width: int) -> DecodePlan:
        """The plan of a message with a secondary (and maybe tertiary) bitmap starting at ``start``."""
        found = self._plans[0].get(s[start : start + width])
        if isinstance(found, int):
            found = self._plans[1].get(s[start : start + found])
        if isinstance(found, DecodePlan):
            return found
        plan, _ = self._plan_decode(s, start)
        return plan

    def _plan_decode(self, s: bytes, start: int) -> tuple[DecodePlan, list[int]]:
        plan, ends = plan_decode(self.layout, self._steps, s, start)
        if len(ends) > 1:
            _remember(self._plans[0], s[start : ends[1]], plan if len(ends) == 2 else ends[2] - start)
        if len(ends) > 2:
            _remember(self._plans[1], s[start : ends[2]], plan)
        return plan, ends

    # -- encode -------------------------------------------------------------------------------------------
    def encode(self, mti: str, fields: Mapping[int, str]) -> bytes:
        """The bytes :class:`~switch.wire.codec.PyIsoCodec` produces for ``(mti, fields)``."""
        numbers = tuple(fields)
        plan = self._encode_plans.get(numbers)
        if plan is None:
            plan = plan_encode(self.layout, self._encoders, numbers)
            _remember(self._encode_plans, numbers, plan)
        before_mti, after_mti, bitmaps, steps = plan
        if before_mti is not None:
            raise EncodeError(*before_mti)
        head = self._mti_by_text.get(mti)
        if head is None:
            head = self._encode_mti(mti)
        if after_mti is not None:
            raise EncodeError(*after_mti)
        parts = [head, bitmaps]
        for step in steps:
            parts.append(step(fields))
        return b"".join(parts)

    def _encode_mti(self, mti: str) -> bytes:
        head = self._mti_encoder({0: mti})
        if type(mti) is str:
            _remember(self._mti_by_text, mti, head)
        return head


K = TypeVar("K")
V = TypeVar("V")


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def compile_codec(name: str, spec: Spec, *, hot_after: int = HOT_AFTER) -> CompiledCodec:
    """Compile ``spec`` (a pyiso8583 spec dict) into a codec; raises :class:`SpecError` on a malformed one.

    ``hot_after``: well-formed decodes of one bitmap before its generated fast path is built.
    """
    return CompiledCodec(name, spec, hot_after=hot_after)
