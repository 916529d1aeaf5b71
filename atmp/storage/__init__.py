"""The ATMP's storage (SQLAlchemy Core over the node's database): the terminal registry, key sets, dispense
outcomes with their cassette counts, deposits, replenishments, terminal totals and the audit trail.

:class:`AtmStore` is what the node and the command line call; the tables are created by the node's migration
0006 (``switch/storage/migrations``). The only ATMP package that imports SQLAlchemy (``.importlinter``).
"""

from atmp.storage.store import AtmStore

__all__ = ["AtmStore"]
