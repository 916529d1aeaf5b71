"""`make bench`: the micro-benchmarks that exist so far, one after the other.

- the codec side by side (pyiso8583 against the compiled codec) on the realistic 0200 and its 0210;
- the software HSM's operations per second for the commands behind CA, CC, DC, CY, M6 and KQ.

The end-to-end harness (node + cells under load, TPS and latency percentiles) belongs to the throughput issue
and will be added here; until then `bulkhead sim acquirer` against `make run` gives end-to-end figures.
"""

from __future__ import annotations

from bench import codec, hsm_ops


def main() -> None:
    print("== codec: pyiso8583 vs compiled")
    codec.main([])
    print()
    print("== software HSM")
    hsm_ops.main(["--seconds", "1"])


if __name__ == "__main__":
    main()
