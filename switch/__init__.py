"""Bulkhead switch engine: wire, links, routing, pipeline, journal, storage, CLI."""

__version__ = "0.1.0"
