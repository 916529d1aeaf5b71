"""``bulkhead wire``: one captured frame of any network decoded field by field, or a message encoded from JSON.

Operators use it on captures and on what a network sends them. Everything goes through the network contract
(``unframe``, ``classify``, ``header_fields``, ``encode``), so every registered network is covered, the ones a
later package adds included. What is printed is masked as the journal masks it: PANs as first 6 / last 4, PIN
blocks, tracks, CVV2 and keys as their length, a network's secret sub-fields inside their field.
"""

from __future__ import annotations

import json
import string
from typing import IO, Any

import click

from switch.cli.common import json_option
from switch.contracts.network import Network
from switch.contracts.registry import RegistryError, network
from switch.model.errors import BulkheadError
from switch.model.message import Message
from switch.wire.framing import Frame

network_option = click.option("--network", "network_name", required=True, metavar="NAME",
                              help="the network whose dialect the bytes are in (generic, atm, visa, unionpay, ...)")


@click.group()
def wire() -> None:
    """Decode and encode one message of a network (captures, what a network sends)."""


def _network(name: str) -> Network:
    try:
        return network(name)
    except RegistryError as exc:
        raise click.BadParameter(str(exc), param_hint="--network") from None


def _read(source: IO[bytes], as_hex: bool) -> bytes:
    data = source.read()
    if not as_hex:
        return data
    text = "".join(data.decode("ascii", "replace").split())
    if len(text) % 2 or any(c not in string.hexdigits for c in text):
        raise click.ClickException("--hex: the input is not an even number of hex digits")
    return bytes.fromhex(text)


@wire.command("decode")
@network_option
@click.option("--body", is_flag=True, help="the input is a message body alone, without the network's header")
@click.option("--hex", "as_hex", is_flag=True, help="the input is hex text (spaces and line breaks ignored)")
@json_option
@click.argument("source", type=click.File("rb"), default="-", metavar="FILE|-")
def decode(network_name: str, body: bool, as_hex: bool, as_json: bool, source: IO[bytes]) -> None:
    """One captured frame, without its TCP length prefix: header and fields, masked (exit 1 when it does not
    decode, with the reason)."""
    net = _network(network_name)
    data = _read(source, as_hex)
    try:
        frame = Frame(data) if body else net.unframe(data)
        header = net.header_fields(frame.header)
        inbound = net.classify(frame)
    except BulkheadError as exc:
        raise click.ClickException(f"{network_name}: {exc}") from None
    msg = inbound.message
    result: dict[str, Any] = {
        "network": net.name, "kind": inbound.kind.value, "header": dict(header),
        "message": msg.masked() if msg is not None else None,
    }
    if inbound.reason:
        result["reason"] = inbound.reason
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"network {net.name}  {inbound.kind.value}{'  ' + inbound.reason if inbound.reason else ''}")
    for name, value in header:
        click.echo(f"  header {name:<24} {value}")
    if msg is None:
        click.echo("  (no message: the body could not be read back)")
        return
    for key, value in msg.masked().items():
        click.echo(f"  {key:<31} {value}")


@wire.command("encode")
@network_option
@click.option("--raw", is_flag=True, help="write the bytes themselves (default: hex text)")
@click.argument("source", type=click.File("rb"), default="-", metavar="FILE|-")
def encode(network_name: str, raw: bool, source: IO[bytes]) -> None:
    """A message body from JSON: {"mti": "0200", "fields": {"2": "...", "52": "<hex>"}} (or the fields beside
    "mti", as ``wire decode --json`` prints its "message"; give clear values where it printed masked ones). Binary
    fields (PIN block, MAC, ICC data) as hex."""
    net = _network(network_name)
    try:
        document = json.loads(source.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"not JSON: {exc}") from None
    msg = _message(net, document)
    try:
        body = net.encode(msg)
    except BulkheadError as exc:
        raise click.ClickException(f"{network_name}: {exc}") from None
    if raw:
        click.echo(body, nl=False)
    else:
        click.echo(body.hex().upper())


def _message(net: Network, document: object) -> Message:
    if not isinstance(document, dict) or not isinstance(document.get("mti"), str):
        raise click.ClickException('expected a JSON object with "mti"')
    raw = document.get("fields", {k: v for k, v in document.items() if k != "mti"})
    if not isinstance(raw, dict):
        raise click.ClickException('"fields" must be an object of field number -> value')
    fields: dict[int, str | bytes] = {}
    for key, value in raw.items():
        number = int(key) if isinstance(key, str) and key.isdigit() else None
        if number is None or not 2 <= number <= 192 or not isinstance(value, str):
            raise click.ClickException(f"field {key!r}: expected a field number 2-192 and a text value")
        if number in net.binary_fields:
            try:
                fields[number] = bytes.fromhex(value)
            except ValueError:
                raise click.ClickException(f"field {number}: binary, expected hex") from None
        else:
            fields[number] = value
    return Message(document["mti"], fields)
