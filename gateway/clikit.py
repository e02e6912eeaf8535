"""What every `gateway` command shares: exit codes, the -c option, loading the configuration,
opening the store read-only, and printing a payload as JSON or as a human table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

EX_OK = 0
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_CONFIG = 78

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GATEWAY_CONF",
    default="gateway.conf",
    show_default=True,
    help="The node's configuration (also $GATEWAY_CONF).",
)


def load_config(config_path: Path, *, check_files: bool = True) -> Any:
    """The configuration, or every problem in it on stderr and exit 78 (EX_CONFIG)."""
    from gateway import config as configuration

    try:
        return configuration.load(config_path, check_files=check_files)
    except configuration.ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EX_CONFIG)


def open_store(config_path: Path) -> tuple[Any, Any]:
    """The configuration and a read-only connection to its store (read commands never write)."""
    from gateway.store import Store

    conf = load_config(config_path, check_files=False)
    if not conf.node.db_path.exists():
        click.echo(f"no store at {conf.node.db_path}: has the node run yet?", err=True)
        sys.exit(EX_NOINPUT)
    return conf, Store.open_readonly(conf.node.db_path)


def emit(payload: Any, as_json: bool, human: Any) -> None:
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        human(payload)


def table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console().print(table)
