"""Thales payShield host protocol: sans-I/O codec, trio client, trio server, and the interface backend.

- :mod:`hsm.thales.commands` encodes and decodes the host commands (layouts in ``cmd_*`` modules).
- :mod:`hsm.thales.profile` holds the firmware-dependent layout switches.
- :mod:`hsm.thales.client` is the connection pool; :mod:`hsm.thales.backend` implements
  :class:`hsm.api.Hsm` on top of it.
- :mod:`hsm.thales.server` serves a :class:`~hsm.software.SoftwareHsm` over the same protocol.
"""

from hsm.thales.profile import DEFAULT_PROFILE, PAYSHIELD_9000_LEGACY, PAYSHIELD_9000_V3, PROFILES, Profile

__all__ = ["DEFAULT_PROFILE", "PAYSHIELD_9000_LEGACY", "PAYSHIELD_9000_V3", "PROFILES", "Profile"]
