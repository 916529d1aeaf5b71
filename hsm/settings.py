"""How an HSM is configured (``[hsm]`` in node.toml, ``hsm = {...}`` in ``[cells]``) and how key cryptograms are
written in configuration files, read from TOML tables with file, key and reason on every error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hsm.api import PinKey
from switch.model.toml import TomlTable

# Thales notation of a TDES key under the LMK: U + 32 hex (double, variant), T + 48 (triple, variant),
# X + 32 (X9.17), or 16 bare hex digits (single length).
_CRYPTOGRAM_HEX = {"U": 32, "X": 32, "T": 48}


@dataclass(frozen=True)
class HsmSettings:
    """``software``: the in-process software HSM with an LMK file (or the public test LMK, demos only);
    ``thales``: a payShield (or ``bulkhead hsm serve``) over TCP."""

    kind: str  # "software" | "thales"
    lmk: Path | None = None
    test_lmk: bool = False
    host: str = "127.0.0.1"
    port: int = 1500
    header_length: int = 4
    pool_size: int = 2
    timeout_ms: int = 2000


def hsm_settings(t: TomlTable, base: Path) -> HsmSettings:
    """Read an HSM table; relative paths (the LMK file) resolve against ``base``, the file's folder."""
    kind = t.get("kind", str, required=True)
    if kind == "software":
        lmk = t.get("lmk", str, None)
        test_lmk = t.get("test_lmk", bool, False)
        if (lmk is None) == (not test_lmk):
            raise t.error("lmk", "give exactly one of lmk = \"FILE\" or test_lmk = true (demos and tests only)")
        cfg = HsmSettings(kind, lmk=t.path(lmk, base) if lmk else None, test_lmk=test_lmk)
    elif kind == "thales":
        cfg = HsmSettings(kind, host=t.get("host", str, "127.0.0.1"), port=t.port(),
                          header_length=t.non_negative("header_length", 4), pool_size=t.positive("pool_size", 2),
                          timeout_ms=t.positive("timeout_ms", 2000))
        if cfg.header_length > 16:
            raise t.error("header_length", "must be 0 to 16")
    else:
        raise t.error("kind", f"must be 'software' or 'thales', got {kind!r}")
    t.done()
    return cfg


def key_cryptogram(t: TomlTable, name: str) -> str:
    """A key as an LMK cryptogram (never a clear key): U + 32 hex digits, T + 48, X + 32, or 16 bare hex."""
    key = str(t.get(name, str, required=True)).upper()
    body = key[1:] if key[:1] in _CRYPTOGRAM_HEX else key
    expected = _CRYPTOGRAM_HEX.get(key[:1], 16)
    if len(body) != expected or any(c not in "0123456789ABCDEF" for c in body):
        raise t.error(name, "must be a key cryptogram under the LMK (U + 32 hex digits, T + 48, or 16 hex)")
    return key


def pin_key(t: TomlTable, types: tuple[str, ...], name: str = "pin_key") -> PinKey | None:
    """``pin_key = { type = "TPK", key = "U..." }``: the key PIN blocks travel under, as an LMK cryptogram."""
    k = t.table(name)
    if k is None:
        return None
    kind = k.get("type", str, required=True).upper()
    if kind not in types:
        raise k.error("type", f"must be {' or '.join(types)} here, got {kind!r}")
    key = key_cryptogram(k, "key")
    k.done()
    return PinKey(kind, key)
