"""Test-bench simulators: an ISO 8583 issuer host (:mod:`switch.sim.issuer`) and a load-generating acquirer
(:mod:`switch.sim.acquirer`). Both speak the same networks (and their framings) as the switch itself.

Rules and request generation are sans-I/O (:mod:`switch.sim.rules`, :mod:`switch.sim.requests`); only the
two service modules and :mod:`switch.infra.outbox` touch trio.
"""
