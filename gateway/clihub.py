"""`simulate edoc-hub`: the BKAV eDoc provincial hub simulator (gateway.edochubsim) in the
foreground, for rehearsals and end-to-end tests.

    simulate edoc-hub --listen 127.0.0.1:0 --organizations orgs.json
                      [--fault slow=2 --fault http500=3 ...] [--path /services/EdocService]

When it listens it prints one JSON line on stdout, `{"listening": "http://127.0.0.1:PORT/…"}`,
then logs one line per request on stderr (never a token). SIGTERM or SIGINT stops it; exit 0.

The organisations file, a JSON object:

    {"organizations": [
        {"organ_id": "000.00.01.H99", "token_file": "h99.token",   # relative to the file
         "name": "…", "in_charge": "…", "address": "…", "email": "…", "telephone": "…",
         "fax": "…", "website": "…", "active": true, "agency": true},
        {"organ_id": "000.00.02.H99", "token_env": "HUB_TOKEN_02"},
        {"organ_id": "000.00.03.H99", "token": "dummy"}             # tests only
    ]}

Faults are those of gateway.edochubsim: slow (seconds), http500, not_ready, lost_confirms
(counts). Exit codes: 0 stopped cleanly, 1 could not listen, 78 (EX_CONFIG) bad configuration.

`COMMANDS` holds the `edoc-hub` command, to be added to the `simulate` group of
gateway.clisim.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gateway.clikit import EX_CONFIG
from gateway.clisim import (
    SimConfigError,
    endpoint_description,
    entry_secret,
    log_to_stderr,
)
from gateway.clisim import parse_faults as parse_sim_faults
from gateway.simhost import run_foreground

__all__ = ["COMMANDS", "edoc_hub", "load_organizations", "parse_faults"]


def load_organizations(path: Path) -> tuple[list[Any], list[str]]:
    """The organisations of a file (gateway.edochubsim.HubOrganization) and warnings."""
    from gateway.edochubsim import HubOrganization

    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SimConfigError(f"{path}: cannot read JSON: {exc}") from None
    entries = document.get("organizations") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SimConfigError(f'{path}: expected {{"organizations": [...]}}, not empty')
    orgs: list[Any] = []
    seen: set[str] = set()
    warnings: list[str] = []
    for index, entry in enumerate(entries, 1):
        where = f"{path}: organisation #{index}"
        if not isinstance(entry, dict):
            raise SimConfigError(f"{where}: not a JSON object")
        raw, warning = entry_secret(entry, path, where, "token")
        warnings.extend([warning] if warning else [])
        try:
            token = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SimConfigError(f"{where}: the token is not UTF-8 text") from None
        sources = ("token_file", "token_env", "token")
        fields = {k: v for k, v in entry.items() if k not in sources}
        try:
            org = HubOrganization.from_json({**fields, "token": token})
        except ValueError as exc:
            raise SimConfigError(f"{where}: {exc}") from None
        if org.organ_id in seen:
            raise SimConfigError(f"{where}: {org.organ_id} given twice")
        seen.add(org.organ_id)
        orgs.append(org)
    return orgs, warnings


def parse_faults(texts: tuple[str, ...]) -> dict[str, Any]:
    from gateway.edochubsim import fault_value

    return parse_sim_faults(texts, fault_value)


@click.command(
    "edoc-hub", epilog="Exit codes: 0 stopped, 1 could not listen, 78 bad configuration."
)
@click.option(
    "--listen",
    required=True,
    help="HOST:PORT (port 0: any free port) or a Twisted endpoint such as tcp:8098.",
)
@click.option(
    "--organizations",
    "organizations_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help='JSON {"organizations": [{"organ_id", "token_file"|"token_env", "name", ...}]}.',
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=VALUE",
    help="slow (seconds), http500, not_ready, lost_confirms (counts).",
)
@click.option("--path", default="/services/EdocService", show_default=True)
def edoc_hub(listen: str, organizations_file: Path, faults: tuple[str, ...], path: str) -> None:
    """Run the BKAV eDoc provincial hub simulator in the foreground until SIGTERM/SIGINT."""
    try:
        orgs, warnings = load_organizations(organizations_file)
        fault_values = parse_faults(faults)
        description = endpoint_description(listen)
    except SimConfigError as exc:
        click.echo(f"simulate edoc-hub: {exc}", err=True)
        sys.exit(EX_CONFIG)

    from twisted.internet import reactor

    from gateway.edochubsim import HubSimulator

    log_to_stderr(warnings)
    simulator = HubSimulator(orgs, reactor=reactor, faults=fault_values, path=path)
    run_foreground(simulator, name="edoc-hub", listen=listen, description=description)


COMMANDS = [edoc_hub]
