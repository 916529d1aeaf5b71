"""What every command of the ``bulkhead`` command line shares: the ``--conf`` and ``--json`` options, reading the
configuration, and talking to the running node over its admin socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from switch.config import NodeConfig, load_config
from switch.infra.logs import LEVELS
from switch.model.errors import BulkheadError

DEFAULT_CONF = "conf/demo"
conf_option = click.option(
    "--conf", "conf", default=DEFAULT_CONF, show_default=True, type=click.Path(path_type=Path),
    help="configuration folder (holding node.toml) or node.toml itself",
)
json_option = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
# A level outside the list is a usage error (exit 2, one line), not a traceback from logging.
log_level_option = click.option(
    "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="info", show_default=True,
    help="debug adds a masked line per exchange (per decision in a cell) and per connection",
)
plain_logs_option = click.option("--plain-logs", is_flag=True,
                                 help="human-readable log lines instead of JSON lines (the cells' too)")


def load(conf: Path) -> NodeConfig:
    """The node's configuration, or a one-line error naming the file, the key and the reason."""
    try:
        return load_config(conf)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None


def admin(cfg: NodeConfig, cmd: str, args: dict[str, Any] | None = None) -> Any:
    """Run ``cmd`` on the running node (its admin socket) and return its result."""
    from switch.ops.admin import call

    try:
        answer = call(cfg.admin_socket, cmd, args)
    except BulkheadError as exc:
        raise click.ClickException(str(exc)) from None
    if not answer.get("ok"):
        raise click.ClickException(str(answer.get("error")))
    return answer["result"]


def first_leaf(exc: BaseException) -> BaseException:
    """The first exception inside trio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
