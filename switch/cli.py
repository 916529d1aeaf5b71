"""The ``bulkhead`` command: a thin layer over library functions (pip-tools / warehouse style).

Commands that act on a running node go through its admin socket; the others read the configuration and the
database directly. Output never contains a clear PAN, track, PIN block or key.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from switch.config import NodeConfig, load_config
from switch.model.errors import BulkheadError

DEFAULT_CONF = "conf/demo"
conf_option = click.option(
    "--conf", "conf", default=DEFAULT_CONF, show_default=True, type=click.Path(path_type=Path),
    help="configuration folder (holding node.toml) or node.toml itself",
)


def _config(conf: Path) -> NodeConfig:
    try:
        return load_config(conf)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None


def _admin(cfg: NodeConfig, cmd: str, args: dict[str, Any] | None = None) -> Any:
    from switch.ops.admin import call

    try:
        answer = call(cfg.admin_socket, cmd, args)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    if not answer.get("ok"):
        raise click.ClickException(str(answer.get("error")))
    return answer["result"]


@click.group()
@click.version_option(package_name="bulkhead")
def main() -> None:
    """Bulkhead: ISO 8583 payment switch."""


# -- run -------------------------------------------------------------------------------------------------
@main.command()
@conf_option
@click.option("--log-level", default="info", show_default=True)
@click.option("--plain-logs", is_flag=True, help="human-readable log lines instead of JSON lines")
def run(conf: Path, log_level: str, plain_logs: bool) -> None:
    """Run a node in the foreground until SIGINT or SIGTERM."""
    import trio

    from switch.infra import logs
    from switch.runtime.node import Node

    logs.setup(log_level, json_lines=not plain_logs)
    cfg = _config(conf)

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
        leaf = _first_leaf(group)
        if isinstance(leaf, (BulkheadError, OSError)):
            raise click.ClickException(f"{type(leaf).__name__}: {leaf}") from None
        raise


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


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
        lines.append(f"  listener  {lst.name:<12} {lst.config.host}:{lst.port}  scheme={lst.scheme.name} "
                     f"framing={lst.config.framing.kind}")
    for link in node.outbound.values():
        hosts = ", ".join(f"{h}:{p}" for h, p in link.config.hosts)
        lines.append(f"  connector {link.name:<12} {hosts}  scheme={link.scheme.name}")
    for name, port in node.simulator_ports.items():
        lines.append(f"  simulator {name:<12} 127.0.0.1:{port}  (demo issuer)")
    lines.append(f"  admin socket {node.config.admin_socket}")
    if node.metrics_port:
        lines.append(f"  metrics   http://{node.config.metrics.host}:{node.metrics_port}/metrics")
    return "\n".join(lines)


# -- db --------------------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@conf_option
def db_upgrade(conf: Path) -> None:
    """Create or migrate the node's database to the latest schema."""
    from switch.storage.db import upgrade

    cfg = _config(conf)
    upgrade(cfg.database_url)
    click.echo(f"database at {_safe_url(cfg.database_url)} is up to date")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- routes ----------------------------------------------------------------------------------------------
@main.group()
def routes() -> None:
    """Routing table: show, check offline, reload on the running node."""


@routes.command("show")
@conf_option
@click.option("--file", "file", type=click.Path(path_type=Path), help="show this file instead of the live table")
def routes_show(conf: Path, file: Path | None) -> None:
    """Show the table the running node uses (or, with --file or no node running, the file)."""
    from switch.ops.admin import AdminError, call
    from switch.routing import load_routes

    cfg = _config(conf)
    if file is None:
        try:
            answer = call(cfg.admin_socket, "routes.show")
            if answer.get("ok"):
                result = answer["result"]
                click.echo(f"# live table from {result['source']} (digest {result['digest'][:16]})")
                click.echo(result["table"])
                return
        except AdminError:
            pass
    path = file or cfg.routes
    try:
        table = load_routes(path, known_links=frozenset(c.name for c in cfg.connectors))
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"# file {path} (digest {table.digest[:16]}; no running node answered)" if file is None
               else f"# file {path} (digest {table.digest[:16]})")
    click.echo(table.describe())


@routes.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@conf_option
def routes_check(file: Path, conf: Path) -> None:
    """Validate FILE offline against the configured links; exit 1 with file, line, key and reason."""
    from switch.routing import load_routes

    known = None
    if (conf / "node.toml" if conf.is_dir() else conf).exists():
        known = frozenset(c.name for c in _config(conf).connectors)
    try:
        table = load_routes(file, known_links=known)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{file}: ok (digest {table.digest[:16]})")


@routes.command("reload")
@conf_option
@click.option("--file", "file", type=click.Path(path_type=Path), help="load this file instead of the configured one")
def routes_reload(conf: Path, file: Path | None) -> None:
    """Validate and atomically swap the running node's routing table."""
    cfg = _config(conf)
    args = {"path": str(file.resolve())} if file else {}
    result = _admin(cfg, "routes.reload", args)
    click.echo(f"reloaded {result['source']}: {result['old_digest'][:12]} -> {result['new_digest'][:12]}")
    for line in result["diff"] or ["(no changes)"]:
        click.echo(f"  {line}")


# -- links -----------------------------------------------------------------------------------------------
@main.group()
def links() -> None:
    """Links of the running node."""


@links.command("status")
@conf_option
def links_status(conf: Path) -> None:
    for link in _admin(_config(conf), "links.status"):
        extra = {k: v for k, v in link.items() if k not in ("name", "kind", "state")}
        click.echo(f"{link['name']:<14} {link['kind']:<10} {link['state']:<10} "
                   + " ".join(f"{k}={v}" for k, v in extra.items()))


def _link_command(cmd: str, verb: str) -> Any:
    @links.command(verb)
    @click.argument("name")
    @conf_option
    def command(name: str, conf: Path) -> None:
        result = _admin(_config(conf), cmd, {"name": name})
        click.echo(json.dumps(result))

    command.__doc__ = f"Send a {verb} (0800) on connector NAME and print the answer."
    return command


for _cmd, _verb in (("links.signon", "signon"), ("links.signoff", "signoff"), ("links.echo", "echo")):
    _link_command(_cmd, _verb)


# -- saf -------------------------------------------------------------------------------------------------
@main.group()
def saf() -> None:
    """Store-and-forward queue (reversals and advices)."""


@saf.command("show")
@conf_option
@click.option("--destination")
@click.option("--status", type=click.Choice(["pending", "acked", "expired", "failed"]))
@click.option("--limit", default=100, show_default=True)
def saf_show(conf: Path, destination: str | None, status: str | None, limit: int) -> None:
    """List queued entries (masked); reads the database, works with or without a running node."""
    from switch.infra.db.engine import make_engine
    from switch.storage.saf import SafStore

    cfg = _config(conf)
    engine = make_engine(cfg.database_url)
    try:
        items = SafStore(engine).list_items(destination=destination, status=status, limit=limit)
    finally:
        engine.dispose()
    if not items:
        click.echo("store-and-forward queue is empty")
        return
    click.echo(f"{'id':>6} {'destination':<14} {'mti':<5} {'stan':<7} {'pan':<20} {'amount':>12} "
               f"{'status':<8} {'tries':>5} next attempt / last code")
    for it in items:
        amount = f"{it.amount} {it.currency or ''}" if it.amount is not None else "-"
        click.echo(f"{it.id:>6} {it.destination:<14} {it.mti:<5} {it.stan or '-':<7} {it.pan_masked or '-':<20} "
                   f"{amount:>12} {it.status:<8} {it.attempts:>5} "
                   f"{it.next_attempt_at:%Y-%m-%d %H:%M:%S} {it.last_response_code or ''}")


@saf.command("retry")
@conf_option
@click.option("--destination")
def saf_retry(conf: Path, destination: str | None) -> None:
    """Make pending entries due now on the running node."""
    result = _admin(_config(conf), "saf.retry", {"destination": destination})
    click.echo(f"{result['made_due']} entries due now")


# -- journal ---------------------------------------------------------------------------------------------
@main.group()
def journal() -> None:
    """The exchange journal."""


@journal.command("show")
@conf_option
@click.option("--rrn")
@click.option("--stan")
@click.option("--trace")
@click.option("--limit", default=20, show_default=True)
def journal_show(conf: Path, rrn: str | None, stan: str | None, trace: str | None, limit: int) -> None:
    """Print exchanges (masked) by RRN, STAN or trace id."""
    from switch.infra.db.engine import make_engine
    from switch.storage.journal import find_exchanges

    if not (rrn or stan or trace):
        raise click.UsageError("give --rrn, --stan or --trace")
    cfg = _config(conf)
    engine = make_engine(cfg.database_url)
    try:
        rows = find_exchanges(engine, rrn=rrn, stan=stan, trace_id=trace, limit=limit)
    finally:
        engine.dispose()
    if not rows:
        click.echo("no exchange found")
        sys.exit(1)
    for r in rows:
        click.echo(f"trace {r.trace_id}  {r.received_at:%Y-%m-%d %H:%M:%S.%f}  {r.source_link} -> "
                   f"{r.destination or '-'} (route {r.route or '-'})")
        click.echo(f"  {r.mti_in} -> {r.mti_out or '-'}  rc {r.response_code or '-'}  {r.outcome}  "
                   f"pan {r.pan_masked or '-'}  amount {r.amount if r.amount is not None else '-'} "
                   f"{r.currency or ''}  stan {r.stan or '-'}  rrn {r.rrn or '-'}  tid {r.terminal_id or '-'}")
        click.echo(f"  latency {r.latency_us} us" + (f" (upstream {r.upstream_us} us)" if r.upstream_us else ""))
        click.echo("  request:  " + " ".join(f"{k}={v}" for k, v in r.request.items()))
        if r.response:
            click.echo("  response: " + " ".join(f"{k}={v}" for k, v in r.response.items()))


# -- cell ------------------------------------------------------------------------------------------------
@main.group()
def cell() -> None:
    """Issuer processor cells ([cells] in node.toml)."""


@cell.command("run")
@conf_option
@click.option("--cell", "number", type=int, required=True, help="cell number, 0 .. count - 1")
@click.option("--log-level", default="info", show_default=True)
@click.option("--plain-logs", is_flag=True, help="human-readable log lines instead of JSON lines")
def cell_run(conf: Path, number: int, log_level: str, plain_logs: bool) -> None:
    """Run one cell in the foreground (the node does this itself when [cells] supervise = true)."""
    from switch.cells.host import main as run_cell_process

    sys.exit(run_cell_process(conf, number, log_level=log_level, json_logs=not plain_logs))


@cell.command("seed")
@conf_option
def cell_seed(conf: Path) -> None:
    """Seed the demo customers, accounts and cards into empty cells (a cell that already has customers is left
    alone, so `make run` can call this every time). Demo data only: the PINs are formed under the test LMK."""
    from processors.catalog_file import load_catalog
    from processors.seed import demo_commands
    from switch.cells.client import run_command, run_commands

    cfg = _config(conf)
    if cfg.cells is None:
        raise click.ClickException(f"{cfg.file}: no [cells] table")
    cells = cfg.cells
    if cells.hsm is None or cells.hsm.kind != "software" or not cells.hsm.test_lmk:
        raise click.ClickException("the demo seed forms its PIN blocks under the public test LMK: it needs "
                                   "[cells] hsm = { kind = \"software\", test_lmk = true }")
    try:
        steps = demo_commands(load_catalog(cells.products), cells.count)
    except KeyError as exc:
        raise click.ClickException(f"{cells.products}: the demo seed needs product {exc}") from None
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    for number in range(cells.count):
        mine = [(name, args) for cell_no, name, args in steps if cell_no == number]
        try:
            stats = run_command(cells, number, "cell.stats", {})
            if stats["customers"]:
                click.echo(f"cell {number:02d}: {stats['customers']} customer(s) already, not seeded")
                continue
            run_commands(cells, number, mine, atomic=True)  # all of a cell's demo or nothing
        except BulkheadError as exc:
            raise click.ClickException(f"cell {number:02d}: {exc}") from None
        click.echo(f"cell {number:02d}: seeded ({len(mine)} commands)")


def _register_optional_groups() -> None:
    """Command groups owned by other packages (simulators, HSM, keys, card and account lifecycle)."""
    from hsm.cli import hsm_group, keys_group
    from switch.cardcli import GROUPS
    from switch.sim.cli import sim

    main.add_command(sim)
    main.add_command(keys_group)
    main.add_command(hsm_group)
    for group in GROUPS:
        main.add_command(group)


_register_optional_groups()
