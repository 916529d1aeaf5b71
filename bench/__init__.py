"""Benchmarks: ``python -m bench`` (codec, software HSM, end-to-end scenarios); they print figures and assert
nothing. The end-to-end harness is :mod:`bench.harness`, its load generator :mod:`bench.loadgen`."""
