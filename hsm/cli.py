"""``bulkhead keys ...`` and ``bulkhead hsm serve``: key management on the software HSM, and its TCP server.

Every command works on cryptograms and check values only: what it prints is a key under the LMK or under a
ZMK, a KCV, a key type and a label; nothing it prints or stores is a clear key.

LMK: every command needs exactly one of ``--lmk FILE`` (an LMK file, refused unless it is a regular file of this
user readable by its owner only, as :meth:`hsm.lmk.Lmk.load` checks) or ``--test-lmk`` (the public Thales *test*
LMK shipped in ``hsm/data``: a key everyone knows, for demos and tests only; a warning says so on stderr).
Neither is a usage error: a server or key store must never end up on the public test LMK by omission.

Key store (``--store``, default ``var/hsm-keys.json``): a JSON file of named keys so that operators and the
demo can refer to keys by label::

    {"format": "bulkhead-keystore/1",
     "lmk_check_value": "7D2227",            # 6H check value of the LMK the cryptograms are under
     "keys": [{"label": "acq-zpk", "key_type": "001", "cryptogram": "U...", "kcv": "5475A4"}]}

It holds only cryptograms, KCVs, key types and labels (plus the LMK's check value, so that a store is never
used with another LMK). It is written atomically with mode 0600.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import click

from hsm.errors import HsmError
from hsm.lmk import KEY_TYPES, TEST_LMK_RESOURCE, Lmk
from hsm.software import SoftwareHsm
from hsm.thales.profile import DEFAULT_PROFILE, PROFILES
from hsm.thales.server import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from switch.infra.logs import LEVELS

STORE_FORMAT = "bulkhead-keystore/1"
DEFAULT_STORE = "var/hsm-keys.json"

# Key type names accepted on the command line ("ZPK", "tpk", "MK-AC") -> payShield key type code.
KEY_TYPE_NAMES = {name.upper(): kt.code for kt in KEY_TYPES.values() for name in kt.name.split("/")}


def lmk_option(command: Callable[..., None]) -> Callable[..., None]:
    """``--lmk FILE`` / ``--test-lmk``: the command receives ``lmk_file`` and ``test_lmk``."""
    command = click.option(
        "--test-lmk", "test_lmk", is_flag=True,
        help=f"use the public Thales TEST LMK ({TEST_LMK_RESOURCE}): demos and tests only, never production",
    )(command)
    return click.option(
        "--lmk", "lmk_file", type=click.Path(path_type=Path), default=None,
        help="LMK file: a regular file of this user with owner-only permissions (chmod 600)",
    )(command)


store_option = click.option(
    "--store", type=click.Path(path_type=Path), default=DEFAULT_STORE, show_default=True,
    help="key store file (cryptograms, KCVs, key types and labels only)",
)


def load_hsm(lmk_file: Path | None, test_lmk: bool) -> SoftwareHsm:
    """The software HSM for ``--lmk FILE``, or for ``--test-lmk`` (with a warning on stderr); one is required."""
    if (lmk_file is None) == (not test_lmk):
        raise click.UsageError("give exactly one of --lmk FILE (the node's LMK) or --test-lmk (the public Thales "
                               "test LMK: demos and tests only)")
    try:
        if lmk_file is None:
            click.echo("bulkhead: using the public Thales TEST LMK: for demos and tests only", err=True)
            return SoftwareHsm(Lmk.thales_test())
        return SoftwareHsm.from_file(lmk_file)
    except HsmError as exc:
        raise click.ClickException(str(exc)) from None


def key_type_code(value: str) -> str:
    """``001`` or ``ZPK`` -> ``001``; unknown types are a usage error naming the known ones."""
    code = KEY_TYPE_NAMES.get(value.upper(), value.upper())
    if code not in KEY_TYPES:
        known = ", ".join(f"{kt.code} ({kt.name})" for kt in KEY_TYPES.values())
        raise click.BadParameter(f"unknown key type {value!r}; known: {known}")
    return code


# ----------------------------------------------------------------------------------------------- key store


@dataclass(frozen=True)
class StoredKey:
    label: str
    key_type: str
    cryptogram: str
    kcv: str


class KeyStore:
    """The JSON key store described in the module docstring."""

    def __init__(self, path: Path, lmk_check_value: str) -> None:
        self.path = path
        self.lmk_check_value = lmk_check_value
        self.keys: dict[str, StoredKey] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != STORE_FORMAT:
                raise ValueError(f"format is not {STORE_FORMAT}")
            if data.get("lmk_check_value") != self.lmk_check_value:
                raise ValueError("its keys are under another LMK (check values differ)")
            self.keys = {k["label"]: StoredKey(k["label"], k["key_type"], k["cryptogram"], k["kcv"])
                         for k in data["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"key store {self.path}: {exc}") from None

    def get(self, label: str) -> StoredKey:
        try:
            return self.keys[label]
        except KeyError:
            raise click.ClickException(f"key store {self.path}: no key labelled {label!r}") from None

    def check_free(self, label: str, replace: bool) -> None:
        """Refuse a label in use unless told to replace it: a zone key agreed with a partner that is silently
        overwritten cannot be got back (the partner holds it only under their own LMK)."""
        old = self.keys.get(label)
        if old is not None and not replace:
            raise click.ClickException(
                f"key store {self.path}: a key labelled {label!r} exists already (type {old.key_type}, KCV "
                f"{old.kcv}); nothing was changed; give --replace to replace it")

    def put(self, key: StoredKey) -> None:
        self.keys[key.label] = key
        data = {"format": STORE_FORMAT, "lmk_check_value": self.lmk_check_value,
                "keys": [asdict(k) for k in sorted(self.keys.values(), key=lambda k: k.label)]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def open_store(path: Path, hsm: SoftwareHsm) -> KeyStore:
    return KeyStore(path, hsm.diagnostics().lmk_check_value[:6])


def _store_for(label: str | None, replace: bool, path: Path, hsm: SoftwareHsm) -> KeyStore | None:
    """The key store a command will put its key in, checked before the HSM makes or imports anything."""
    if label is None:
        if replace:
            raise click.UsageError("--replace needs --label")
        return None
    store = open_store(path, hsm)
    store.check_free(label, replace)
    return store


def _store(store: KeyStore, key: StoredKey) -> None:
    old = store.keys.get(key.label)
    store.put(key)
    if old is None:
        click.echo(f"stored as {key.label!r} in {store.path}")
    else:
        click.echo(f"replaced {key.label!r} in {store.path} (the old key's KCV was {old.kcv})")


def _resolve(store: KeyStore | None, key: str | None, label: str | None, what: str) -> str:
    if (key is None) == (label is None):
        raise click.UsageError(f"give the {what} as exactly one of --key or --label")
    if key is not None:
        return key
    assert store is not None and label is not None
    return store.get(label).cryptogram


# ----------------------------------------------------------------------------------------------- keys


@click.group("keys")
def keys_group() -> None:
    """Generate, import, export and check keys (cryptograms and check values only)."""


@keys_group.command("generate")
@click.option("--type", "key_type", required=True, help="key type code or name (001 / ZPK, 000 / ZMK, ...)")
@click.option("--scheme", default="U", show_default=True, help="key scheme under the LMK (Z, U, T, X, Y, R)")
@click.option("--zmk", default=None, help="also export under this ZMK (cryptogram under the LMK)")
@click.option("--zmk-scheme", default="U", show_default=True, help="key scheme under the ZMK")
@click.option("--tmk", is_flag=True, help="--zmk is a TMK (key type 002) rather than a ZMK")
@click.option("--label", default=None, help="store the new key in the key store under this label")
@click.option("--replace", is_flag=True, help="replace the key already stored under --label (refused without)")
@lmk_option
@store_option
def generate(key_type: str, scheme: str, zmk: str | None, zmk_scheme: str, tmk: bool, label: str | None,
             replace: bool, lmk_file: Path | None, test_lmk: bool, store: Path) -> None:
    """A0: generate a key; print it under the LMK (and under the ZMK) with its KCV."""
    hsm = load_hsm(lmk_file, test_lmk)
    code = key_type_code(key_type)
    keystore = _store_for(label, replace, store, hsm)
    try:
        if zmk is None:
            made = hsm.generate_key(code, scheme.upper())
            under_lmk, under_zmk, kcv = made.under_lmk, None, made.kcv
        else:
            both = hsm.generate_key_exported(code, zmk, scheme.upper(), zmk_scheme.upper(),
                                             zmk_type="002" if tmk else "000")
            under_lmk, under_zmk, kcv = both.under_lmk, both.under_zmk, both.kcv
    except HsmError as exc:
        raise click.ClickException(str(exc)) from None
    _print_key(code, under_lmk, kcv, under_zmk=under_zmk)
    if keystore is not None and label is not None:
        _store(keystore, StoredKey(label, code, under_lmk, kcv))


@keys_group.command("import")
@click.option("--type", "key_type", required=True, help="key type code or name")
@click.option("--zmk", required=True, help="ZMK cryptogram under the LMK")
@click.option("--key", "key_under_zmk", required=True, help="the key under the ZMK (or R + TR-31 key block)")
@click.option("--scheme", default="U", show_default=True, help="key scheme under the LMK")
@click.option("--label", default=None, help="store the imported key under this label")
@click.option("--replace", is_flag=True, help="replace the key already stored under --label (refused without)")
@lmk_option
@store_option
def import_(key_type: str, zmk: str, key_under_zmk: str, scheme: str, label: str | None, replace: bool,
            lmk_file: Path | None, test_lmk: bool, store: Path) -> None:
    """A6: import a key from under a ZMK; print it under the LMK with its KCV."""
    hsm = load_hsm(lmk_file, test_lmk)
    code = key_type_code(key_type)
    keystore = _store_for(label, replace, store, hsm)
    try:
        if key_under_zmk.startswith("R"):
            done = hsm.tr31_import(zmk, key_under_zmk[1:], scheme.upper(), key_type=code)
            under_lmk, kcv, forced = done.under_lmk, done.kcv, False
        else:
            imported = hsm.import_key(code, zmk, key_under_zmk, scheme.upper())
            under_lmk, kcv, forced = imported.under_lmk, imported.kcv, imported.parity_forced
    except HsmError as exc:
        raise click.ClickException(str(exc)) from None
    _print_key(code, under_lmk, kcv)
    if forced:
        click.echo("advisory 01: the key arrived with even parity; parity was forced odd")
    if keystore is not None and label is not None:
        _store(keystore, StoredKey(label, code, under_lmk, kcv))


@keys_group.command("export")
@click.option("--type", "key_type", required=True, help="key type code or name")
@click.option("--zmk", required=True, help="ZMK cryptogram under the LMK")
@click.option("--key", default=None, help="the key under the LMK")
@click.option("--label", default=None, help="or: the key store label of the key")
@click.option("--scheme", default="U", show_default=True, help="scheme under the ZMK (U, T, X, Y, Z; R = TR-31)")
@click.option("--tr31-version", type=click.Choice(["B", "D"]), default="D", show_default=True,
              help="TR-31 key block version for --scheme R")
@lmk_option
@store_option
def export(key_type: str, zmk: str, key: str | None, label: str | None, scheme: str, tr31_version: str,
           lmk_file: Path | None, test_lmk: bool, store: Path) -> None:
    """A8: export a key under a ZMK (or as a TR-31 key block); print it with its KCV."""
    hsm = load_hsm(lmk_file, test_lmk)
    code = key_type_code(key_type)
    cryptogram = _resolve(open_store(store, hsm) if label else None, key, label, "key")
    try:
        if scheme.upper() == "R":
            under_zmk = "R" + hsm.tr31_export(code, cryptogram, zmk, version=tr31_version)
            kcv = hsm.key_check_value(code, cryptogram)
        else:
            done = hsm.export_key(code, zmk, cryptogram, scheme.upper())
            under_zmk, kcv = done.under_zmk, done.kcv
    except HsmError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"key type {code} ({KEY_TYPES[code].name})")
    click.echo(f"  under ZMK: {under_zmk}")
    click.echo(f"  KCV:       {kcv}")


@keys_group.command("kcv")
@click.option("--type", "key_type", required=True, help="key type code or name")
@click.option("--key", default=None, help="the key under the LMK")
@click.option("--label", default=None, help="or: the key store label of the key")
@click.option("--full", is_flag=True, help="16H check value instead of 6H")
@lmk_option
@store_option
def kcv(key_type: str, key: str | None, label: str | None, full: bool, lmk_file: Path | None,
        test_lmk: bool, store: Path) -> None:
    """BU: key check value of a key under the LMK."""
    hsm = load_hsm(lmk_file, test_lmk)
    code = key_type_code(key_type)
    cryptogram = _resolve(open_store(store, hsm) if label else None, key, label, "key")
    try:
        click.echo(hsm.key_check_value(code, cryptogram, full=full))
    except HsmError as exc:
        raise click.ClickException(str(exc)) from None


@keys_group.command("list")
@lmk_option
@store_option
def list_(lmk_file: Path | None, test_lmk: bool, store: Path) -> None:
    """List the keys in the key store: label, type, KCV, cryptogram."""
    hsm = load_hsm(lmk_file, test_lmk)
    keys = open_store(store, hsm).keys
    if not keys:
        click.echo(f"no keys in {store}")
        return
    width = max(len(k) for k in keys)
    for key in sorted(keys.values(), key=lambda k: k.label):
        click.echo(f"{key.label:<{width}}  {key.key_type} {KEY_TYPES[key.key_type].name:<11}  {key.kcv}  "
                   f"{key.cryptogram}")


def _print_key(code: str, under_lmk: str, kcv_: str, *, under_zmk: str | None = None) -> None:
    click.echo(f"key type {code} ({KEY_TYPES[code].name})")
    click.echo(f"  under LMK: {under_lmk}")
    if under_zmk is not None:
        click.echo(f"  under ZMK: {under_zmk}")
    click.echo(f"  KCV:       {kcv_}")


# ----------------------------------------------------------------------------------------------- hsm


@click.group("hsm")
def hsm_group() -> None:
    """The payShield-compatible HSM server."""


@hsm_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=1500, show_default=True)
@click.option("--header-length", type=click.IntRange(0, 16), default=4, show_default=True)
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=DEFAULT_PROFILE.name, show_default=True,
              help="firmware profile: layouts of M6/M8 and KW, error for unknown commands")
@click.option("--idle-timeout", type=click.FloatRange(0, min_open=True), default=DEFAULT_IDLE_TIMEOUT,
              show_default=True, help="seconds without a request before a connection is closed")
@click.option("--max-connections", type=click.IntRange(1), default=DEFAULT_MAX_CONNECTIONS, show_default=True,
              help="connections served at once; more are closed on arrival")
@click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="info", show_default=True)
@lmk_option
def serve(host: str, port: int, header_length: int, profile: str, idle_timeout: float, max_connections: int,
          log_level: str, lmk_file: Path | None, test_lmk: bool) -> None:
    """Serve the software HSM over the payShield host protocol until SIGINT / SIGTERM.

    Needs --lmk FILE, or --test-lmk for demos and tests (the public Thales test LMK).
    """
    import logging

    import trio

    from hsm.thales.server import serve_hsm

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hsm = load_hsm(lmk_file, test_lmk)
    chosen = PROFILES[profile]

    async def main() -> str | None:
        async with trio.open_nursery() as nursery:
            try:
                bound = await nursery.start(partial(serve_hsm, hsm, host, port, header_length, chosen,
                                                    idle_timeout=idle_timeout, max_connections=max_connections))
            except OSError as exc:
                return f"cannot listen on {host}:{port}: {exc.strerror}"
            click.echo(f"bulkhead hsm: serving on {host}:{bound} (header length {header_length}, profile "
                       f"{chosen.name}, LMK check value {hsm.diagnostics().lmk_check_value[:6]})", err=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    click.echo("bulkhead hsm: stopping", err=True)
                    nursery.cancel_scope.cancel()
                    break
        return None

    failure = trio.run(main)
    if failure is not None:
        raise click.ClickException(failure)


__all__ = ["KeyStore", "StoredKey", "hsm_group", "keys_group"]
