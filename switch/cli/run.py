"""``bulkhead run``: a node in the foreground, with whatever its node.toml's sections run beside it."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from switch.cli.common import conf_option, first_leaf, load, log_level_option, plain_logs_option
from switch.model.errors import BulkheadError


@click.command()
@conf_option
@log_level_option
@plain_logs_option
def run(conf: Path, log_level: str, plain_logs: bool) -> None:
    """Run a node in the foreground until SIGINT or SIGTERM."""
    import trio

    from switch.infra import logs
    from switch.runtime.node import Node

    logs.setup(log_level, json_lines=not plain_logs)
    cfg = load(conf)

    async def main_task() -> None:
        try:
            node = Node(cfg)
        except BulkheadError as exc:
            raise click.ClickException(str(exc)) from None
        async with trio.open_nursery() as nursery:

            async def run_node(task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
                await node.run(task_status=task_status)
                nursery.cancel_scope.cancel()  # the node has stopped: stop watching signals

            await nursery.start(run_node)
            click.echo(_banner(node), err=True)
            nursery.start_soon(_signals, node, nursery.cancel_scope)

    try:
        trio.run(main_task)
    except BaseExceptionGroup as group:
        # trio wraps errors from its tasks in groups; a configuration or storage error still deserves one
        # clear line (file, key, reason) rather than a traceback.
        leaf = first_leaf(group)
        if isinstance(leaf, (BulkheadError, OSError)):
            raise click.ClickException(f"{type(leaf).__name__}: {leaf}") from None
        raise


async def _signals(node: Any, scope: Any) -> None:
    """First SIGINT/SIGTERM: orderly stop. A second one: stop at once."""
    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                click.echo("bulkhead: stopping (finishing exchanges in flight, signing off links, flushing the "
                           "journal); a second signal stops at once", err=True)
                node.stop()
            else:
                scope.cancel()
                return


def _banner(node: Any) -> str:
    lines = [f"bulkhead node {node.name!r} running; Ctrl-C to stop"]
    if node.config.processes > 1:
        lines.append(f"  processes {node.config.processes} sharing the listeners (the others start now)")
    for lst in node.listeners.values():
        lines.append(f"  listener  {lst.name:<12} {lst.config.host}:{lst.port}  scheme={lst.network.name} "
                     f"framing={lst.config.framing_kind}")
    for link in node.outbound.values():
        hosts = ", ".join(f"{h}:{p}" for h, p in link.config.hosts)
        lines.append(f"  connector {link.name:<12} {hosts}  scheme={link.network.name}")
    for service in node.services:
        lines.extend(service.describe())
    lines.append(f"  admin socket {node.config.admin_socket}")
    if node.metrics_port:
        lines.append(f"  metrics   http://{node.config.metrics.host}:{node.metrics_port}/metrics")
    return "\n".join(lines)


