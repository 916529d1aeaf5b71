"""Reading ``--framing`` and ``--framing-opt`` of the ``bulkhead sim`` commands as node.toml would read them."""

from __future__ import annotations

import click

from switch.contracts.network import LinkOptions
from switch.contracts.registry import network
from switch.model.errors import BulkheadError
from switch.model.toml import TomlTable


def framing_options(scheme: str, kind: str, options: tuple[str, ...],
                    link_options: tuple[str, ...] = ()) -> LinkOptions:
    """The network's reading of ``--framing`` and ``--framing-opt`` (and ``--option``: the link's ``options``
    table), checked as node.toml would be."""
    table: dict[str, object] = {"kind": kind, **_table(options, "--framing-opt")}
    opts = TomlTable(_table(link_options, "--option"), "command line", "options") if link_options else None
    try:
        adapter = network(scheme)
    except BulkheadError as exc:
        raise click.BadParameter(str(exc), param_hint="--scheme") from None
    try:
        return adapter.link_options(TomlTable(table, "command line", "framing"), opts)
    except BulkheadError as exc:
        raise click.BadParameter(str(exc), param_hint="--option" if "options" in str(exc) else "--framing-opt") \
            from None


def default_framing_kind(scheme: str) -> str:
    """The framing a link of ``scheme`` has when its ``framing`` table names none (VISA's ``visa``, Mastercard's
    ``binary2``, ...)."""
    try:
        return network(scheme).link_options(None, None).framing_kind
    except BulkheadError as exc:
        raise click.BadParameter(str(exc), param_hint="NETWORK") from None


def _table(options: tuple[str, ...], hint: str) -> dict[str, object]:
    table: dict[str, object] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint=hint)
        table[key.strip()] = scalar(value.strip())
    return table


def scalar(value: str) -> object:
    """TOML-like reading of a command-line value: true/false, integers, "quoted text" (digits that are ids, such as
    a VISA station, stay text), else text."""
    if value in ("true", "false"):
        return value == "true"
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return int(value) if value.isdigit() else value


