"""Alembic environment, configured from code by :func:`switch.storage.db.alembic_config` and run by
:func:`switch.infra.db.migrate.run_env` (URL or connection from ``config.attributes``, SQLite in batch mode).
"""

from __future__ import annotations

from switch.infra.db.migrate import run_env
from switch.storage.models import Base

run_env(Base.metadata)
