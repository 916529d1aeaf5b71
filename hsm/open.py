"""An HSM opened from its settings (the node's ``[hsm]``, a cell's ``hsm = {...}``).

``software``: the software HSM in process, loaded from the LMK file (owner-only, see :mod:`hsm.lmk`) or, for
demos and tests only, the public Thales test LMK. ``thales``: a payShield (or ``bulkhead hsm serve``) over TCP
through the pipelining client pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hsm.api import Hsm
from hsm.inprocess import SoftwareBackend
from hsm.lmk import Lmk
from hsm.settings import HsmSettings
from hsm.software import SoftwareHsm

log = logging.getLogger("bulkhead.hsm")
_warned = False


def software_hsm(cfg: HsmSettings) -> SoftwareHsm:
    """The in-process software HSM of a ``kind = "software"`` configuration."""
    if cfg.test_lmk:
        global _warned
        if not _warned:  # once per process: a seeding run opens the HSM once per command batch
            log.warning("HSM: using the public Thales TEST LMK: for demos and tests only")
            _warned = True
        return SoftwareHsm(Lmk.thales_test())
    assert cfg.lmk is not None
    return SoftwareHsm.from_file(cfg.lmk)


@asynccontextmanager
async def open_hsm(cfg: HsmSettings) -> AsyncIterator[Hsm]:
    """An :class:`~hsm.api.Hsm` for the configuration, connected (thales) while the context is open."""
    if cfg.kind == "software":
        yield SoftwareBackend(software_hsm(cfg))
        return
    from hsm.thales.backend import ThalesBackend
    from hsm.thales.client import ClientConfig, open_thales_client
    from hsm.thales.profile import DEFAULT_PROFILE

    client_cfg = ClientConfig(host=cfg.host, port=cfg.port, header_length=cfg.header_length,
                              pool_size=cfg.pool_size)
    async with open_thales_client(client_cfg, wait=False) as client:
        yield ThalesBackend(client, DEFAULT_PROFILE, timeout=cfg.timeout_ms / 1000)
