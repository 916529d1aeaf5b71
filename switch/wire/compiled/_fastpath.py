"""Straight-line decoding code generated for one hot plan.

The generated function decodes the common case of each field inline: a length found in the length table,
within ``max_len`` and not zero, enough bytes, data that decodes. Anything else (a short message, a
length outside the table, bad text, an odd nibble count, a field the spec lacks) makes it give up and run the
plan's exact steps from the first field, which raise pyiso8583's error or return the same values. So the
generated code never decides to reject anything: it is only ever a faster way to the exact steps' result.

The source is built from integers, slices and ``repr()`` of codec names taken from the spec: no message data
ever reaches ``exec``.
"""

from __future__ import annotations

from collections.abc import Mapping

from switch.wire.compiled._fields import Step
from switch.wire.compiled._lengths import LengthTable
from switch.wire.compiled._plans import Group
from switch.wire.compiled._runs import byte_size
from switch.wire.compiled._spec import FieldFormat
from switch.wire.compiled._text import latin1_permutation


class _GiveUp(Exception):
    """Raised by generated code when a field is not the common case."""


def compile_plan(
    groups: list[Group],
    formats: Mapping[int, FieldFormat],
    tables: Mapping[tuple[str, int], LengthTable],
    steps: tuple[Step, ...],
) -> Step:
    """A step decoding all ``groups`` at once, falling back to ``steps`` (the exact ones) on anything odd."""
    namespace: dict[str, object] = {"_GiveUp": _GiveUp, "_steps": steps}
    for enc in sorted({fmt.data_enc for fmt in formats.values() if not fmt.binary}):
        permutation = latin1_permutation(enc)
        if permutation is not None:
            namespace[_table_name(enc)] = permutation[0]
    body: list[str] = []
    for index, (kind, numbers) in enumerate(groups):
        fmt = formats.get(numbers[0])
        if kind is not None:
            body += _run([(n, formats[n]) for n in numbers], kind[0] == "hex", kind[1])
        elif fmt is not None and _inline(fmt):
            lookup = f"_len{index}"
            if fmt.len_type:
                namespace[lookup] = tables[(fmt.len_enc, fmt.len_type)].by_prefix.get
            body += _variable(numbers[0], fmt, lookup) if fmt.len_type else _fixed(numbers[0], fmt)
        else:
            # Odd cases (nibble-counted text, empty fixed fields, undefined fields) call the field's
            # exact step; its error, if any, also sends us to the fallback, which raises it again.
            namespace[f"_step{index}"] = steps[index]
            body.append(f"i = _step{index}(s, i, out)")
    # The fallback runs after the try statement, not inside its handler, so that the error it raises does not
    # carry the abandoned attempt's exception (and whatever bytes that quotes) as its context.
    source = "\n".join(
        [
            "def plan(s, start, out):",
            "    try:",
            "        i = start",
            *("        " + line for line in body),
            "        return i",
            "    except Exception:",
            "        pass",
            "    out.clear()",
            "    i = start",
            "    for step in _steps:",
            "        i = step(s, i, out)",
            "    return i",
        ]
    )
    exec(compile(source, "<bulkhead compiled plan>", "exec"), namespace)
    plan = namespace["plan"]
    assert callable(plan)
    return plan


def _table_name(enc: str) -> str:
    """The name the generated code gives the translation table of code page ``enc``."""
    return "_to_latin1_" + "".join(c if c.isalnum() else "_" for c in enc)


def _text(enc: str) -> str:
    """The expression decoding ``raw`` in ``enc`` (see :mod:`._text`)."""
    if latin1_permutation(enc) is not None:
        return f"raw.translate({_table_name(enc)}).decode('latin-1')"
    return f"raw.decode({enc!r})"


def _value(fmt: FieldFormat) -> str:
    return "raw.hex().upper()" if fmt.binary else _text(fmt.data_enc)


def _inline(fmt: FieldFormat) -> bool:
    # Nibble counts are inlined for packed BCD (binary data); nibble-counted text stays on its exact step.
    return (fmt.binary or not fmt.nibbles) and (fmt.len_type > 0 or fmt.max_len > 0)


def _unpad(fmt: FieldFormat, target: str) -> list[str]:
    """Lines dropping the pad nibble of an odd-length BCD value ``v`` into ``target``, as
    ``_fields._unpad`` does (the left pad is tried first); a value with neither pad gives up."""
    lines = []
    if fmt.left_pad:
        lines.append(f"if v[:1] == {fmt.left_pad!r}: {target} = v[1:]")
    if fmt.right_pad:
        lines.append(f"{'elif' if lines else 'if'} v[-1:] == {fmt.right_pad!r}: {target} = v[:-1]")
    return [*lines, "else: raise _GiveUp"] if lines else ["raise _GiveUp"]


def _fixed(number: int, fmt: FieldFormat) -> list[str]:
    size = byte_size(fmt)
    lines = [f"j = i + {size}", "raw = s[i:j]", f"if len(raw) != {size}: raise _GiveUp"]
    if fmt.nibbles and fmt.max_len & 1:
        lines += ["v = raw.hex().upper()", *_unpad(fmt, f"out[{number}]")]
    else:
        lines.append(f"out[{number}] = {_value(fmt)}")
    return [*lines, "i = j"]


def _variable(number: int, fmt: FieldFormat, lookup: str) -> list[str]:
    # ``None`` (not in the table) makes the comparison raise TypeError, which gives up as well.
    head = [
        f"k = i + {fmt.len_type}",
        f"n = {lookup}(s[i:k])",
        f"if not 0 < n <= {fmt.max_len}: raise _GiveUp",
    ]
    if not fmt.nibbles:
        return [*head, "j = k + n", "raw = s[k:j]", "if len(raw) != n: raise _GiveUp",
                f"out[{number}] = {_value(fmt)}", "i = j"]
    # Packed BCD: n digits in (n + 1) // 2 bytes, an odd count carrying a pad nibble.
    return [
        *head,
        "size = (n + 1) >> 1",
        "j = k + size",
        "raw = s[k:j]",
        "if len(raw) != size: raise _GiveUp",
        "v = raw.hex().upper()",
        "if n & 1:",
        *("    " + line for line in _unpad(fmt, f"out[{number}]")),
        f"else: out[{number}] = v",
        "i = j",
    ]


def _run(members: list[tuple[int, FieldFormat]], hexadecimal: bool, enc: str) -> list[str]:
    total = sum(byte_size(fmt) for _, fmt in members)
    lines = [
        f"j = i + {total}",
        "raw = s[i:j]",
        f"if len(raw) != {total}: raise _GiveUp",
        "text = raw.hex().upper()" if hexadecimal else f"text = {_text(enc)}",
    ]
    scale = 2 if hexadecimal else 1
    at = 0
    for number, fmt in members:
        size = byte_size(fmt) * scale
        lines.append(f"out[{number}] = text[{at}:{at + size}]")
        at += size
    lines.append("i = j")
    return lines
