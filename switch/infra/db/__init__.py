"""The database toolkit every Bulkhead database uses (the node's and each cell's): engines and URLs, Alembic
driven from code, typed errors, shared column types. The schemas belong to their owners (switch.storage,
processors.storage)."""
