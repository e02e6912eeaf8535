"""`gateway` — the command line of the exchange gateway (click; rich tables; --json for machines).

Exit codes follow sysexits: 0 OK, 1 failure, 2 usage, 65 data refused (EX_DATAERR),
66 input missing (EX_NOINPUT), 78 configuration (EX_CONFIG).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gateway.clikit import (
    CONFIG_OPTION,
    EX_CONFIG,
    EX_DATAERR,
    EX_NOINPUT,
    EX_OK,
    EX_UNAVAILABLE,
    emit,
    load_config,
    open_store,
    table,
)

EPILOG = "Exit codes: 0 acceptable, 65 refused (EX_DATAERR), 66 file missing (EX_NOINPUT), 2 usage."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edxml-gateway")
def main() -> None:
    """edXML exchange gateway (QCVN 102:2016) for Vietnamese state agencies."""
    from gateway.logs import quiet_libraries

    quiet_libraries()


@main.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--trust",
    "trust_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM file of trusted root (and intermediate) certificates; repeatable.",
)
@click.option(
    "--weak",
    type=click.Choice(["warn", "reject"]),
    default="warn",
    show_default=True,
    help="What a SHA-1 envelope signature gets.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse any deviation from the strict edXML schema (element order, formats).",
)
@click.option(
    "--crl",
    "crl_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certificate revocation list (PEM or DER) for PDF signatures; repeatable. Nothing is "
    "fetched from the network.",
)
def inspect(
    file: Path,
    as_json: bool,
    trust_files: tuple[Path, ...],
    weak: str,
    strict: bool,
    crl_files: tuple[Path, ...],
) -> None:
    """Read an edXML FILE offline and say what it is and whether it is acceptable."""
    from edxml import check, signature

    try:
        data = file.read_bytes()
    except OSError as exc:
        click.echo(f"cannot read {file}: {exc.strerror}", err=True)
        sys.exit(EX_NOINPUT)
    trust = (
        signature.Trust.from_pem_bundle(*(p.read_bytes() for p in trust_files))
        if trust_files
        else None
    )
    report = check.examine(
        data,
        trust=trust,
        weak=signature.WeakPolicy(weak),
        strict_schema=strict,
        crls=tuple(_load_crl(p) for p in crl_files),
    )
    payload = report.to_json()
    payload["file"] = str(file)
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _print_report(payload)
    sys.exit(EX_OK if report.acceptable else EX_DATAERR)


@main.command(epilog="Exit codes: 0 done, 78 configuration invalid (EX_CONFIG).")
@CONFIG_OPTION
@click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Issue from this existing dev CA (so several dev nodes trust each other).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def init(config_path: Path, ca_dir: Path | None, as_json: bool) -> None:
    """Create what the configuration names and is missing: data directory, development PKI
    (root, node TLS, one seal per hosted agency) and office tokens. Never overwrites a file."""
    from gateway import config as configuration
    from gateway.initdir import init_files

    try:
        conf = configuration.load(config_path, check_files=False)
        result = init_files(conf, ca_dir=ca_dir)
        conf = configuration.load(config_path)
    except configuration.ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EX_CONFIG)
    payload: dict[str, Any] = {
        "config": str(config_path),
        "created": [str(p) for p in result.created],
        "kept": [str(p) for p in result.kept],
        "ca_dir": str(result.ca_dir),
        "office_url": conf.node.office_url,
        "exchange_url": conf.node.exchange_url,
        "agencies": [a.organ_id for a in conf.agencies],
        "offices": [
            {"name": o.name, "organ_ids": list(o.organ_ids), "token_source": o.token_source}
            for o in conf.offices
        ],
    }
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    click.echo(f"{len(result.created)} file(s) created, {len(result.kept)} kept.")
    click.echo(f"Office face: {conf.node.office_url}?wsdl")
    for office in payload["offices"]:
        click.echo(
            f"Office credential '{office['name']}' for {', '.join(office['organ_ids'])}: "
            f"token in {office['token_source']}"
        )


@main.command(epilog="Exit codes: 0 stopped cleanly, 78 configuration invalid, 1 failed to start.")
@CONFIG_OPTION
def run(config_path: Path) -> None:
    """Run the node in the foreground until SIGTERM/SIGINT (systemd Type=simple).

    Logs go to stderr: text on a terminal, one JSON object per line otherwise."""
    conf = load_config(config_path)
    from twisted.internet import defer, reactor
    from twisted.logger import globalLogBeginner

    from gateway.logs import bridge_stdlib, stderr_observer
    from gateway.service import Node

    globalLogBeginner.beginLoggingTo([stderr_observer(sys.stderr)], redirectStandardIO=False)
    bridge_stdlib()
    for warning in conf.warnings:
        click.echo(f"warning: {warning}", err=True)
    node = Node(conf, reactor=reactor)
    failed: list[BaseException] = []

    def started_failed(failure: Any) -> None:
        failed.append(failure.value)
        click.echo(f"cannot start: {failure.value}", err=True)
        reactor.stop()

    def start() -> None:
        defer.Deferred.fromCoroutine(node.start()).addErrback(started_failed)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: defer.Deferred.fromCoroutine(node.stop())
    )
    reactor.run()
    sys.exit(1 if failed else EX_OK)


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def status(config_path: Path, as_json: bool) -> None:
    """The node at a glance: faces, hosted agencies, queue depths, inbox, audit length."""
    from gateway import views

    conf, conn = open_store(config_path)
    payload = {
        "node": conf.node.name,
        "office_url": conf.node.office_url,
        "exchange_url": conf.node.exchange_url,
        "agencies": [{"organ_id": a.organ_id, "name": a.name} for a in conf.agencies],
        "routes": [{"name": r.name, "transport": r.transport.value} for r in conf.routes],
        "relay": conf.node.relay,
        **views.summary(conn),
        "axes": views.axes(conn, conf.routes),
    }

    def human(p: dict[str, Any]) -> None:
        click.echo(f"{p['node']}\n  office   {p['office_url']}\n  exchange {p['exchange_url']}")
        for a in p["agencies"]:
            click.echo(f"  agency   {a['organ_id']} {a['name']}")
        depths = ", ".join(f"{k} {v}" for k, v in sorted(p["deliveries"].items())) or "empty"
        click.echo(f"  deliveries: {depths}")
        click.echo(f"  inbox pending: {p['inbox_pending']}; audit rows: {p['audit_rows']}")
        for a in p["axes"]:
            clock = a["clock"]
            offset = f"{clock['offset_seconds']:+.1f}s" if clock else "not measured yet"
            click.echo(
                f"  axis {a['route']}: clock {offset}; unsettled {a['items_unsettled']},"
                f" unacknowledged {a['items_unacknowledged']}"
            )
            for f in a["findings"]:
                click.echo(f"    ! {f['code']}: {f['message_en']} / {f['message_vi']}")

    emit(payload, as_json, human)


@main.command()
@CONFIG_OPTION
@click.option("--state", "states", multiple=True, help="queued, sending, retry_wait, failed, …")
@click.option("--route", default=None, help="Only this route.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def queue(
    config_path: Path, states: tuple[str, ...], route: str | None, limit: int, as_json: bool
) -> None:
    """Outbound deliveries in sending order (Hỏa tốc first), with their attempts and errors."""
    from gateway import views

    _conf, conn = open_store(config_path)
    kwargs: dict[str, Any] = {"route": route, "limit": limit}
    if states:
        kwargs["states"] = states
    rows = views.queue(conn, **kwargs)
    columns = [
        "id",
        "document_id",
        "kind",
        "recipient",
        "route",
        "state",
        "priority_rank",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    emit(rows, as_json, lambda r: table(r, columns, "Queue"))


@main.command()
@CONFIG_OPTION
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def show(config_path: Path, key: str, as_json: bool) -> None:
    """One message (by id or DocumentId): verdict, deliveries, statuses and audit events."""
    from gateway import views

    _conf, conn = open_store(config_path)
    found = views.show(conn, key)
    if found is None:
        gone = views.purged(conn, key)
        if not gone:
            click.echo(f"no message {key}", err=True)
            sys.exit(EX_NOINPUT)
        # Past its retention: the live store keeps only a tombstone naming the archive file.
        found = {"purged": gone}

    def tombstones(p: dict[str, Any]) -> None:
        for g in p["purged"]:
            click.echo(f"{g['message_id']} purged {g['purged_at']}; in {g['archived_in']}")

    def human(m: dict[str, Any]) -> None:
        if "id" not in m:
            tombstones(m)
            return
        click.echo(f"{m['id']} {m['direction']} {m['kind']} {m['state']}  {m['document_id']}")
        click.echo(f"  from {m['sender']} to {', '.join(m['recipients'])}; subject: {m['subject']}")
        table(
            m["deliveries"],
            ["id", "recipient", "route", "state", "attempts", "sent_at", "last_error"],
            "Deliveries",
        )
        table(m["statuses"], ["organ_id", "code", "description", "reported_at"], "Statuses")
        table(m["events"], ["id", "at", "actor", "action", "subject_type"], "Events")
        tombstones(m)

    emit(found, as_json, human)


def _office_token(config_path: Path, office_name: str | None) -> tuple[Any, str]:
    conf = load_config(config_path)
    offices = [o for o in conf.offices if office_name in (None, o.name) and o.token is not None]
    if len(offices) != 1:
        click.echo("name one office credential with a token (--office NAME)", err=True)
        sys.exit(EX_CONFIG)
    token = offices[0].token
    assert token is not None
    return conf, token.reveal()


def _office_call(conf: Any, as_json: bool, call: Any) -> None:
    """Run one office-face call for the CLI: the answer, or the fault and its exit code."""
    import urllib.error

    from gateway.officeclient import OfficeFault

    try:
        sent = call()
    except OfficeFault as fault:
        payload = {
            "accepted": False,
            "code": fault.code,
            "message_en": fault.message_en,
            "message_vi": fault.message_vi,
            "retryable": fault.retryable,
        }
        emit(
            payload,
            as_json,
            lambda p: click.echo(
                f"refused: {p['code']}: {p['message_en']}\n  {p['message_vi']}", err=True
            ),
        )
        sys.exit(EX_UNAVAILABLE if fault.retryable else EX_DATAERR)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"cannot reach {conf.node.office_url}: {exc}", err=True)
        sys.exit(EX_UNAVAILABLE)
    payload = {
        "accepted": True,
        "message_id": sent.message_id,
        "deliveries": [{"organ_id": d.organ_id, "state": d.state} for d in sent.deliveries],
    }

    def human(p: dict[str, Any]) -> None:
        click.echo(f"accepted as {p['message_id']}")
        for d in p["deliveries"]:
            click.echo(f"  → {d['organ_id']}: {d['state']}")

    emit(payload, as_json, human)


OFFICE_OPTION = click.option(
    "--office", "office_name", default=None, help="Office credential (default: the only one)."
)
OFFICE_EPILOG = "Exit codes: 0 accepted, 65 refused, 69 node unreachable or busy."


@main.command(epilog=OFFICE_EPILOG)
@CONFIG_OPTION
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@OFFICE_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def send(config_path: Path, file: Path, office_name: str | None, as_json: bool) -> None:
    """Hand an edXML envelope FILE to the running node's office face, as an office system would."""
    from gateway.officeclient import send_document

    conf, token = _office_token(config_path, office_name)
    _office_call(
        conf, as_json, lambda: send_document(conf.node.office_url, token, file.read_bytes())
    )


@main.command(epilog=OFFICE_EPILOG)
@CONFIG_OPTION
@click.argument("document_id")
@click.option("--reason", required=True, help="Why the document is recalled (sent to recipients).")
@OFFICE_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def recall(
    config_path: Path, document_id: str, reason: str, office_name: str | None, as_json: bool
) -> None:
    """Recall DOCUMENT_ID from every recipient (R14), through the running node's office face."""
    from gateway.officeclient import recall_document

    conf, token = _office_token(config_path, office_name)
    _office_call(
        conf, as_json, lambda: recall_document(conf.node.office_url, token, document_id, reason)
    )


def _admin_change(config_path: Path, key: str, as_json: bool, change: str) -> None:
    import datetime as dt

    from gateway import admin

    conf, _conn = open_store(config_path)
    fn = admin.requeue if change == "requeue" else admin.cancel
    try:
        changed = fn(conf.node.db_path, key, now=dt.datetime.now(dt.UTC), actor=admin.operator())
    except admin.AdminRefused as exc:
        click.echo(str(exc), err=True)
        sys.exit(EX_DATAERR)
    payload = [
        {
            "delivery_id": c.delivery_id,
            "message_id": c.message_id,
            "recipient": c.recipient,
            "before": c.before,
            "after": c.after,
        }
        for c in changed
    ]

    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            click.echo(
                f"delivery {r['delivery_id']} to {r['recipient']}: {r['before']} → {r['after']}"
            )

    emit(payload, as_json, human)


@main.command(epilog="Exit codes: 0 changed, 65 nothing to requeue, 66 no store.")
@CONFIG_OPTION
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def requeue(config_path: Path, key: str, as_json: bool) -> None:
    """Put failed (or cancelled) deliveries back in the queue: KEY is a delivery id, a message id
    or a DocumentId. The running node picks them up at its next tick."""
    _admin_change(config_path, key, as_json, "requeue")


@main.command(epilog="Exit codes: 0 changed, 65 nothing to cancel, 66 no store.")
@CONFIG_OPTION
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def cancel(config_path: Path, key: str, as_json: bool) -> None:
    """Cancel deliveries that are queued, waiting to retry, or failed (never one in flight)."""
    _admin_change(config_path, key, as_json, "cancel")


@main.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command("verify", epilog="Exit codes: 0 chain intact, 65 a row was changed or removed.")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def audit_verify(config_path: Path, as_json: bool) -> None:
    """Recompute every row's hash and its link to the previous one."""
    from gateway import views

    _conf, conn = open_store(config_path)
    problems = views.audit_problems(conn)
    rows = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    payload = {"rows": rows, "intact": not problems, "problems": problems}

    def human(p: dict[str, Any]) -> None:
        if p["intact"]:
            click.echo(f"audit chain intact: {p['rows']} rows")
        for problem in p["problems"]:
            click.echo(f"row {problem['row']}: {problem['reason']}", err=True)

    emit(payload, as_json, human)
    sys.exit(EX_OK if not problems else EX_DATAERR)


@main.group()
def certs() -> None:
    """Certificates the node uses and trusts."""


CERTS_EPILOG = (
    "Exit codes: 0 nothing needs action; 1 warning: something expires within --warn-days, a CRL "
    "is stale, an OCSP responder could not be used, a key or signature algorithm is weak, or a "
    "seal lacks its OrganId; 65 "
    "(EX_DATAERR) something is expired, not yet valid, revoked, untrusted (no chain to a "
    "configured root, or a CRL whose signature does not verify), unreadable or does not match "
    "its key; 78 configuration invalid."
)


@certs.command("check", epilog=CERTS_EPILOG)
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--warn-days",
    default=30,
    show_default=True,
    type=click.IntRange(0, 3650),
    help="Warn about certificates expiring within this many days.",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Ask no OCSP responder (by default those named by trusted certificates are asked "
    "unless [trust] ocsp = off).",
)
def certs_check(config_path: Path, as_json: bool, warn_days: int, offline: bool) -> None:
    """Expiry, chain, revocation (CRLs, OCSP) and key match of every configured and trusted
    certificate. Read-only: opens no store."""
    import datetime as dt

    from gateway import certcheck

    conf = load_config(config_path)
    report = certcheck.check(conf, now=dt.datetime.now(dt.UTC), warn_days=warn_days)
    if report.ocsp_wanted and conf.trust.ocsp.enabled and not offline:
        answers = _ask_ocsp(conf.trust.ocsp, report.ocsp_wanted)
        report = certcheck.check(
            conf, now=dt.datetime.now(dt.UTC), warn_days=warn_days, ocsp=answers
        )
    payload = report.to_json()

    def human(p: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        colour = {"ok": "green", "expiring": "yellow", "stale": "yellow", "weak": "yellow"}
        table = Table(title=f"Certificates, checked at {p['checked_at']}")
        for col in ("role", "state", "subject / path", "not after", "days", "problems"):
            table.add_column(col)
        for c in p["certificates"]:
            role = c["role"] + (f" {c['of']}" if c["of"] else "")
            state = f"[{colour.get(c['state'], 'red')}]{c['state']}[/]"
            # The common name is enough to tell certificates apart; --json has the full DN.
            cn = next(
                (part[3:] for part in (c["subject"] or "").split(",") if part.startswith("CN=")),
                c["subject"] or "—",
            )
            who = escape(f"{cn}\n{c['path']}")
            problems = "\n".join(
                escape(f"{x['message_en']}\n  {x['message_vi']}") for x in c["problems"]
            )
            days = "" if c["days_left"] is None else str(c["days_left"])
            table.add_row(role, state, who, c["not_after"] or "—", days, problems)
        Console().print(table)

    emit(payload, as_json, human)
    sys.exit({"ok": EX_OK, "warning": 1}.get(report.severity, EX_DATAERR))


def _ask_ocsp(config: Any, queries: Any) -> Any:
    """The OCSP answers for `queries`, asked on a reactor run for this alone (blocking)."""
    from twisted.internet import defer, reactor

    from gateway.ocspclient import OcspClient

    client = OcspClient(reactor, config)
    found: list[Any] = []

    async def ask() -> None:
        found.extend(await client.ask(queries))

    def start() -> None:
        done = defer.Deferred.fromCoroutine(ask())
        done.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    return tuple(found)


def _load_crl(path: Path) -> Any:
    from cryptography import x509

    raw = path.read_bytes()
    if b"-----BEGIN X509 CRL-----" in raw:
        return x509.load_pem_x509_crl(raw)
    return x509.load_der_x509_crl(raw)


def _print_report(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    verdict = "[green]acceptable[/]" if r["acceptable"] else "[red]refused[/]"
    console.print(f"[bold]{r['file']}[/] — {r['kind']}, {r['size']} bytes — {verdict}")
    if "refusal" in r:
        ref = r["refusal"]
        console.print(f"[red]{ref['code']}[/]: {ref['message_en']}\n  {ref['message_vi']}")
        return
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("DocumentId", r.get("document_id") or "—")
    facts.add_row("From", _org_text(r.get("from")))
    if r["kind"] == "envelope":
        facts.add_row("To", "\n".join(_org_text(o) for o in r["to"]) or "—")
        facts.add_row("Code", f"{r['code']['number']}/{r['code']['notation']}")
        facts.add_row("Subject", r["subject"])
        facts.add_row("Priority", f"{r['priority']['code']} ({r['priority']['label_vi']})")
        business = f"{r['business_type']['code']} ({r['business_type']['name']})"
        if r.get("business_target"):
            business += f" → {r['business_target']}"
        facts.add_row("Business", business)
        facts.add_row("Legal validity", str(r.get("legal_validity")))
    else:
        st = r["status"]
        facts.add_row("Status", f"{st['code']} {st['label_vi']} / {st['label_en']}")
        facts.add_row("Description", r.get("description") or "")
        facts.add_row("Timestamp", r.get("timestamp") or "—")
    sig = r.get("signature") or {}
    facts.add_row("Signature", f"{sig.get('state', '—')} {sig.get('reason') or ''}".strip())
    console.print(facts)
    if r.get("attachments"):
        table = Table(title="Attachments")
        for col in ("name", "declared", "detected", "size", "sha256", "allowed"):
            table.add_column(col)
        for a in r["attachments"]:
            table.add_row(
                str(a.get("name")),
                str(a.get("declared_type")),
                f"{a.get('kind')} ({a.get('mime')})",
                str(a.get("size")),
                str(a.get("sha256", ""))[:16] + "…",
                "yes" if a.get("allowed") else "no",
            )
        console.print(table)
    if r["findings"]:
        table = Table(title="Findings")
        for col in ("severity", "code", "message"):
            table.add_column(col)
        colour = {"error": "red", "warning": "yellow", "info": "cyan"}
        for f in r["findings"]:
            sev = f["severity"]
            message = f"{f['message_en']}\n[dim]{f['message_vi']}[/]"
            if f.get("path"):
                message += f"\n[dim]{f['path']}[/]"
            table.add_row(f"[{colour[sev]}]{sev}[/]", f["code"], message)
        console.print(table)


def _org_text(org: dict[str, str] | None) -> str:
    if not org:
        return "—"
    return f"{org['organ_id']} {org.get('organ_name') or ''}".strip()


from gateway.clidata import COMMANDS as DATA  # noqa: E402
from gateway.clihub import COMMANDS as HUB_SIMULATORS  # noqa: E402
from gateway.clirules import COMMANDS  # noqa: E402 (they share clikit, not this module)
from gateway.clisim import COMMANDS as SIMULATORS  # noqa: E402
from gateway.clisim import simulate as _simulate  # noqa: E402

for _command in HUB_SIMULATORS:
    _simulate.add_command(_command)

for _command in (*COMMANDS, *DATA, *SIMULATORS):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
