"""Firmware profiles: the few host-command layouts that differ between payShield firmware releases.

Thales changed some command layouts between firmware releases; Bulkhead's client and server both take a
:class:`Profile` so that one switch build can talk to either generation (and so that the project's own
server can imitate either). The commands whose layout depends on the profile:

- **M6 / M8** (generate / verify MAC). Newer firmware (payShield 9000 v3 and later, payShield 10K) sends a
  *MAC size* field (1N: ``0`` = 8H MAC, ``1`` = 16H MAC) after the input format flag and a 1-digit *MAC
  algorithm*; older firmware has no MAC size (the MAC is always 8H) and a 2-digit algorithm (``01``, ``03``).
  Selected by :attr:`Profile.m6_mac_size` and :attr:`Profile.m6_algorithm_digits`.
- **KW** (EMV 4.x ARQC / ARPC). Some releases carry an *IV-AC* (16B) after the MK-AC even for the common
  session key scheme; others send it only for the EMV2000 tree. Selected by :attr:`Profile.kw_iv`.
- **Unsupported commands**: payShield 9000 v2 and later answer a host command that is not enabled in the
  security settings with error 68 (command disabled); a command outside the licence answers 67. Which one a
  command unknown to this server gets is :attr:`Profile.unsupported_error`.

Everything else in :mod:`hsm.thales.commands` has one layout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    """Layout switches for firmware-dependent host commands (see the module docstring)."""

    name: str
    m6_mac_size: bool = True
    m6_algorithm_digits: int = 1
    kw_iv: bool = False
    unsupported_error: str = "68"

    def __post_init__(self) -> None:
        if self.m6_algorithm_digits not in (1, 2):
            raise ValueError("m6_algorithm_digits must be 1 or 2")
        if self.unsupported_error not in ("67", "68"):
            raise ValueError("unsupported_error must be '67' or '68'")
        if not self.m6_mac_size and self.m6_algorithm_digits == 1:
            # Older firmware has neither the MAC size nor the 1-digit algorithm: the two go together.
            raise ValueError("a profile without the M6 MAC size field uses 2-digit MAC algorithms")


PAYSHIELD_9000_V3 = Profile(name="payshield-9000-v3", m6_mac_size=True, m6_algorithm_digits=1, kw_iv=False)
"""payShield 9000 v3.x and payShield 10K: M6 with MAC size, 1-digit algorithm. The default."""

PAYSHIELD_9000_LEGACY = Profile(name="payshield-9000-legacy", m6_mac_size=False, m6_algorithm_digits=2,
                                kw_iv=True)
"""Older payShield 9000 / HSM 8000 releases: M6 without MAC size, 2-digit algorithm; KW with IV-AC."""

DEFAULT_PROFILE = PAYSHIELD_9000_V3

PROFILES: dict[str, Profile] = {p.name: p for p in (PAYSHIELD_9000_V3, PAYSHIELD_9000_LEGACY)}


def profile_by_name(name: str) -> Profile:
    """The built-in profile called ``name`` (``KeyError`` naming the known ones otherwise)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown payShield profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
