"""pyiso8583 against the compiled codec, side by side in one run.

Run ``python -m bench.codec [--repeat N] [--json]``. Decodes and encodes the realistic ATM 0200 (20 fields, 98
bytes of EMV data, 322 bytes on the wire) and its 0210 with both codecs of the ``generic`` layout, and prints
microseconds per operation (best of N timeit repeats, so that other load on the machine counts least) and
the ratio. The interpreter matters: say which one when quoting figures (it is printed first). Figures only:
nothing is asserted. :func:`measure` is what other benchmarks call to print the same table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

from schemes.generic import SPEC
from switch.wire.codec import Codec, PyIsoCodec
from switch.wire.compiled import compile_codec, samples


@dataclass(frozen=True)
class Figure:
    message: str
    operation: str
    pyiso8583_us: float
    compiled_us: float

    @property
    def ratio(self) -> float:
        return self.pyiso8583_us / self.compiled_us


def _best_us(operation: Callable[[], object], repeat: int) -> float:
    timer = timeit.Timer(operation)
    number, _ = timer.autorange()  # enough calls for about 0.2 s per repeat
    return min(timer.repeat(repeat, number)) / number * 1e6


def measure(repeat: int = 7) -> list[Figure]:
    """Decode and encode of the 0200 and the 0210, with pyiso8583 and with the compiled codec."""
    reference: Codec = PyIsoCodec("generic", SPEC)
    compiled: Codec = compile_codec("generic", SPEC)
    figures = []
    for label, (mti, fields) in (("0200", samples.REQUEST_0200), ("0210", samples.RESPONSE_0210)):
        wire = reference.encode(mti, fields)
        if compiled.encode(mti, fields) != wire or compiled.decode(wire) != reference.decode(wire):
            raise SystemExit(f"the codecs disagree on the {label}: run tests/switch/wire/codec")
        for _ in range(100):  # past the point where the compiled codec generates its fast path
            compiled.decode(wire)
        for operation in ("decode", "encode"):
            timings = []
            for codec in (reference, compiled):
                call = partial(codec.decode, wire) if operation == "decode" else partial(codec.encode, mti, fields)
                timings.append(_best_us(call, repeat))
            figures.append(Figure(label, operation, timings[0], timings[1]))
    return figures


def interpreter() -> str:
    """Which Python ran the figures. Its build flags do not reliably tell whether PGO was used (Debian's
    optimised build does not show it), so the executable and build are printed for the reader to judge."""
    build = " ".join(platform.python_build())
    return f"{platform.python_implementation()} {platform.python_version()} {sys.executable} ({build})"


def format_table(figures: list[Figure]) -> str:
    lines = [f"{'message':8} {'operation':10} {'pyiso8583 µs':>13} {'compiled µs':>12} {'ratio':>7}"]
    for f in figures:
        lines.append(
            f"{f.message:8} {f.operation:10} {f.pyiso8583_us:13.2f} {f.compiled_us:12.2f} {f.ratio:6.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats; the best one counts (default 7)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    figures = measure(args.repeat)
    if args.json:
        print(json.dumps({"interpreter": interpreter(), "figures": [asdict(f) | {"ratio": f.ratio} for f in figures]}))
        return
    print(interpreter())
    print(format_table(figures))


if __name__ == "__main__":
    main()
