"""`simulate vxp`: the national exchange axis simulator (gateway.vxpsim) in the foreground, for
rehearsals and end-to-end tests.

    simulate vxp --listen 127.0.0.1:0 --systems systems.json [--agencies agencies.json]
                 [--state-file sim-state.json] [--fault slow=2 --fault http500=3 ...]
                 [--prefix /XrdAdapter/adapter]

When it listens it prints one JSON line on stdout, `{"listening": "http://127.0.0.1:PORT/…"}`
(the real port when `--listen` asks for port 0), and then logs one line per request on stderr
(text on a terminal, JSON lines otherwise; never a secret). SIGTERM or SIGINT stops it; exit 0.

`--listen` is HOST:PORT (`[::1]:PORT` for IPv6) or a Twisted endpoint (`tcp:8099:interface=…`).

The systems file, a JSON object:

    {"systems": [
        {"system_id": "000.00.00.H23",
         "secret_file": "h23.secret",            # read, surrounding whitespace dropped;
                                                 # relative to the systems file
         "agencies": ["000.00.00.H23", "000.00.01.H23"]},
        {"system_id": "000.00.00.G22", "secret_env": "VXP_SECRET_G22", "agencies": [...]},
        {"system_id": "sys.test.01", "secret": "dummy", "agencies": [...]}   # tests only
    ]}

Each system names exactly one of `secret_file`, `secret_env` (an environment variable) or
`secret` (inline: for tests only, and warned about). The agencies file is a JSON list of
directory entries (`code` required; `id`, `pid`, `name`, `mail`, `oldCode`), or an object with
such a list under `agencies`. Faults are those of gateway.vxpsim: slow (seconds), http500,
drop_after_commit, not_ready, lost_acks (counts), duplicate_listing (on/off), clock_offset
(seconds).

Exit codes: 0 stopped cleanly, 1 could not listen, 78 (EX_CONFIG) a file or fault is invalid.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gateway.clikit import EX_CONFIG
from gateway.simhost import run_foreground

__all__ = ["COMMANDS", "endpoint_description", "load_agencies", "load_systems", "simulate"]


class SimConfigError(Exception):
    pass


def load_systems(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The systems of a systems file (id -> gateway.vxpsim.System) and warnings."""
    from gateway.vxpsim import System

    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SimConfigError(f"{path}: cannot read JSON: {exc}") from None
    entries = document.get("systems") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SimConfigError(f'{path}: expected {{"systems": [...]}} with at least one system')
    systems: dict[str, Any] = {}
    warnings: list[str] = []
    for index, entry in enumerate(entries, 1):
        where = f"{path}: system #{index}"
        if not isinstance(entry, dict):
            raise SimConfigError(f"{where}: not a JSON object")
        system_id = entry.get("system_id")
        if not isinstance(system_id, str) or not system_id.strip() or not system_id.isascii():
            raise SimConfigError(f"{where}: system_id must be non-empty ASCII text")
        system_id = system_id.strip()
        where = f"{path}: system {system_id}"
        if system_id in systems:
            raise SimConfigError(f"{where}: given twice")
        secret, warning = entry_secret(entry, path, where, "secret")
        warnings.extend([warning] if warning else [])
        if not secret:
            raise SimConfigError(f"{where}: the secret is empty")
        agencies = entry.get("agencies", [])
        if not isinstance(agencies, list) or not all(
            isinstance(a, str) and a.strip() for a in agencies
        ):
            raise SimConfigError(f"{where}: agencies must be a list of codes")
        systems[system_id] = System(secret, [a.strip() for a in agencies])
    return systems, warnings


def entry_secret(
    entry: dict[str, Any], path: Path, where: str, stem: str
) -> tuple[bytes, str | None]:
    """An entry's secret from exactly one of `<stem>_file` (relative to `path`), `<stem>_env`
    or an inline `<stem>` (tests only: the warning says so)."""
    keys = (f"{stem}_file", f"{stem}_env", stem)
    sources = [k for k in keys if k in entry]
    if len(sources) != 1:
        raise SimConfigError(f"{where}: name exactly one of {', '.join(keys)}")
    source = sources[0]
    value = entry[source]
    if not isinstance(value, str) or not value:
        raise SimConfigError(f"{where}: {source} must be non-empty text")
    if source == keys[0]:
        secret_path = Path(value)
        if not secret_path.is_absolute():
            secret_path = path.parent / secret_path
        try:
            return secret_path.read_bytes().strip(), None
        except OSError as exc:
            raise SimConfigError(f"{where}: cannot read {source}: {exc.strerror}") from None
    if source == keys[1]:
        text = os.environ.get(value, "").strip()
        if not text:
            raise SimConfigError(f"{where}: environment variable {value} is not set")
        return text.encode("utf-8"), None
    return value.strip().encode("utf-8"), f"{where}: inline {stem} (allowed for tests only)"


def log_to_stderr(warnings: list[str]) -> None:
    """A simulator's log: one line per request on stderr (text on a terminal, else JSON)."""
    from twisted.logger import globalLogBeginner

    from gateway.logs import stderr_observer

    globalLogBeginner.beginLoggingTo([stderr_observer(sys.stderr)], redirectStandardIO=False)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def load_agencies(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SimConfigError(f"{path}: cannot read JSON: {exc}") from None
    if isinstance(document, dict):
        document = document.get("agencies")
    if not isinstance(document, list) or not all(
        isinstance(e, dict) and isinstance(e.get("code"), str) for e in document
    ):
        raise SimConfigError(f"{path}: expected a JSON list of entries with a code")
    return document


def parse_faults(
    texts: tuple[str, ...], fault_value: Callable[[str, Any], Any] | None = None
) -> dict[str, Any]:
    """`--fault NAME=VALUE` options, each checked by the simulator's `fault_value`."""
    if fault_value is None:
        from gateway import vxpsim

        fault_value = vxpsim.fault_value
    check: Callable[[str, Any], Any] = fault_value
    faults: dict[str, Any] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep:
            raise SimConfigError(f"--fault {text!r}: expected NAME=VALUE")
        try:
            faults[name.strip()] = check(name.strip(), value.strip())
        except ValueError as exc:
            raise SimConfigError(f"--fault {text!r}: {exc}") from None
    return faults


def endpoint_description(listen: str) -> str:
    """A Twisted server endpoint for HOST:PORT (or the description itself, when it is one)."""
    kind = listen.split(":", 1)[0]
    if kind in {"tcp", "tcp6", "unix", "ssl", "systemd"}:
        return listen
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise SimConfigError(f"--listen {listen!r}: expected HOST:PORT or a Twisted endpoint")
    host = host or "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        escaped = host[1:-1].replace(":", "\\:")
        return f"tcp6:{port}:interface={escaped}"
    return f"tcp:{port}:interface={host}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def simulate() -> None:
    """Simulators of the exchange axes, for rehearsals and tests (never for production)."""


@simulate.command("vxp", epilog="Exit codes: 0 stopped, 1 could not listen, 78 bad configuration.")
@click.option(
    "--listen",
    required=True,
    help="HOST:PORT (port 0: any free port) or a Twisted endpoint such as tcp:8099.",
)
@click.option(
    "--systems",
    "systems_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help='JSON {"systems": [{"system_id", "secret_file"|"secret_env", "agencies"}]}.',
)
@click.option(
    "--agencies",
    "agencies_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON list of directory entries for getAgenciesList (code, name, id, pid, mail).",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the whole state in this JSON file (read at start, rewritten on each change).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=VALUE",
    help="slow, http500, drop_after_commit, duplicate_listing, not_ready, lost_acks, clock_offset.",
)
@click.option("--prefix", default="/XrdAdapter/adapter", show_default=True)
def vxp(
    listen: str,
    systems_file: Path,
    agencies_file: Path | None,
    state_file: Path | None,
    faults: tuple[str, ...],
    prefix: str,
) -> None:
    """Run the national axis (VXP) simulator in the foreground until SIGTERM/SIGINT."""
    try:
        systems, warnings = load_systems(systems_file)
        directory = load_agencies(agencies_file) if agencies_file is not None else None
        fault_values = parse_faults(faults)
        description = endpoint_description(listen)
    except SimConfigError as exc:
        click.echo(f"simulate vxp: {exc}", err=True)
        sys.exit(EX_CONFIG)

    from twisted.internet import reactor

    from gateway.vxpsim import VxpSimulator

    log_to_stderr(warnings)
    try:
        simulator = VxpSimulator(
            systems,
            reactor=reactor,
            agencies=directory,
            prefix=prefix,
            faults=fault_values,
            state_file=state_file,
        )
    except ValueError as exc:
        click.echo(f"simulate vxp: {exc}", err=True)
        sys.exit(EX_CONFIG)
    run_foreground(simulator, name="vxp", listen=listen, description=description)


COMMANDS = [simulate]
