"""Alembic migrations: a package so that setuptools installs it as code, not as data."""
