"""Storage of the switch node: journal, store-and-forward queue, routing audit (SQLAlchemy 2 + Alembic).

SQLAlchemy is confined to the storage modules. Everything here is synchronous and thread-safe; trio callers reach
it through the journal writer thread or ``trio.to_thread.run_sync``. Database failures surface as
:class:`~switch.infra.db.errors.StorageError`. :mod:`switch.storage.records` (the journal's record) imports no
database code: the exchange builds records without it.
"""
