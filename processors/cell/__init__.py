"""Issuer processor cells: the cell process (:mod:`~processors.cell.host`) and its server
(:mod:`~processors.cell.server`), its group-commit writer, its admin socket and lock, the CLI's command client, and
the node's supervisor of the cell processes.

The decisions themselves are :mod:`processors` (engine, commands, storage); this package runs them.
"""
