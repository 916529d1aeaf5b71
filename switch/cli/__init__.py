"""The ``bulkhead`` command: a thin layer over library functions (pip-tools / warehouse style), one module per
command group, assembled by :mod:`switch.cli.main` (which imports a group only when it is used).

Commands that act on a running node go through its admin socket; the others read the configuration and the
database directly. Output never contains a clear PAN, track, PIN block or key.

The command line is also where the demo's tools are offered (``sim``, ``cell seed``, ``cards set-pin
--test-pin``): nothing the node or a cell runs imports them.
"""
