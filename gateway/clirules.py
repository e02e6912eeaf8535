"""The regulation's commands: `directory import|list` (R11), `number issue` (R12), `overdue`
(R16) and `stats` (R22). Reads open the store read-only; the two changes (an import, a number)
take the store's write lock for one audited transaction, safely beside the running daemon."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from gateway.clikit import (
    CONFIG_OPTION,
    EX_CONFIG,
    EX_DATAERR,
    EX_NOINPUT,
    EX_UNAVAILABLE,
    emit,
    load_config,
    open_store,
    table,
)

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")


def _today() -> dt.date:
    from gateway.calendar import vietnam_time

    return vietnam_time(dt.datetime.now(dt.UTC)).date()


def _writable_store(config_path: Path) -> tuple[Any, Path]:
    conf = load_config(config_path, check_files=False)
    if not conf.node.db_path.exists():
        click.echo(f"no store at {conf.node.db_path}: has the node run yet?", err=True)
        sys.exit(EX_NOINPUT)
    return conf, conf.node.db_path


# --- directory ---------------------------------------------------------------------------------


@click.group()
def directory() -> None:
    """The agency directory: OrganId, name, parent, level, route, validity, successor (R11)."""


@directory.command(
    "import", epilog="Exit codes: 0 imported, 65 the file has problems (nothing imported)."
)
@CONFIG_OPTION
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None)
@JSON_OPTION
def directory_import(config_path: Path, file: Path, fmt: str | None, as_json: bool) -> None:
    """Import agencies from FILE (CSV with a header row, or JSON), all or nothing."""
    from gateway import admin
    from gateway import directory as agencies

    _conf, db = _writable_store(config_path)
    fmt = fmt or ("json" if file.suffix.lower() == ".json" else "csv")
    try:
        found = agencies.parse(file.read_bytes(), fmt, source=file.name)
    except agencies.DirectoryImportError as exc:
        problems = str(exc)
        payload = {
            "imported": False,
            "problems": [
                {"where": p.where, "field": p.field, "message_en": p.en, "message_vi": p.vi}
                for p in exc.problems
            ],
        }
        emit(payload, as_json, lambda p: click.echo(problems, err=True))
        sys.exit(EX_DATAERR)
    now = dt.datetime.now(dt.UTC)
    added, changed = admin.write(
        db, lambda c: agencies.import_agencies(c, found, now=now, actor=admin.operator())
    )
    payload = {"imported": True, "added": added, "changed": changed, "source": file.name}
    emit(
        payload,
        as_json,
        lambda p: click.echo(f"{p['added']} added, {p['changed']} changed from {p['source']}"),
    )


@directory.command(
    "sync",
    epilog="Exit codes: 0 merged, 65 the axis' list was refused (it shrank suddenly), 69 the"
    " axis did not answer, 78 no such vxp or edoc-hub route.",
)
@CONFIG_OPTION
@click.option(
    "--route", "route_name", default=None, help="The vxp or edoc-hub route (default: the first)."
)
@JSON_OPTION
def directory_sync(config_path: Path, route_name: str | None, as_json: bool) -> None:
    """Fetch the agency list of a vxp route's axis (or an edoc-hub route's hub) now and merge
    it into the directory; entries imported locally win."""
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    from gateway import admin
    from gateway import directory as agencies
    from gateway.axis import axis_agencies
    from gateway.config import Transport
    from gateway.edochubclient import HubRefused, HubUnavailable
    from gateway.hubroute import hub_agencies, hub_client
    from gateway.vxpclient import VxpClient, VxpRefused, VxpUnavailable

    _, db = _writable_store(config_path)
    conf = load_config(config_path)  # with its files: the route's secret is read from one
    routes = [
        r
        for r in conf.routes
        if r.transport in (Transport.VXP, Transport.EDOC_HUB) and route_name in (None, r.name)
    ]
    if not routes:
        click.echo(f"no vxp or edoc-hub route {route_name or ''}".rstrip(), err=True)
        sys.exit(EX_CONFIG)
    route = routes[0]
    entries: list[agencies.AxisAgency] = []
    failed: list[str] = []

    async def fetch(reactor: Any) -> None:
        try:
            if route.transport is Transport.EDOC_HUB:
                entries.extend(await hub_agencies(hub_client(route, reactor=reactor)))
                return
            assert route.url and route.system_id and route.secret  # config demands them of vxp
            client = VxpClient(
                route.url,
                route.system_id,
                route.secret.reveal().encode(),
                reactor=reactor,
                timeout=route.timeout,
            )
            entries.extend(await axis_agencies(client))
        except (VxpUnavailable, VxpRefused, HubUnavailable, HubRefused) as exc:
            failed.append(str(exc))

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(fetch(reactor)))
    except SystemExit as stop:  # react always ends the process its way; we are not done
        if stop.code not in (0, None):
            raise
    if failed:
        click.echo(f"the axis of route {route.name} did not answer: {failed[0]}", err=True)
        sys.exit(EX_UNAVAILABLE)
    now = dt.datetime.now(dt.UTC)
    result = admin.write(
        db,
        lambda c: agencies.sync_from_axis(c, route.name, entries, now=now, actor=admin.operator()),
    )
    payload = {"route": route.name, "listed": len(entries), **result.to_json()}
    emit(
        payload,
        as_json,
        lambda p: click.echo(
            p["refused"]
            or f"{p['added']} added, {p['changed']} updated, {p['removed']} removed,"
            f" {p['kept_local']} kept as imported locally ({p['route']})"
        ),
    )
    if result.refused:
        sys.exit(EX_DATAERR)


@directory.command("list")
@CONFIG_OPTION
@click.option("--parent", default=None, help="Only the units directly under this OrganId.")
@JSON_OPTION
def directory_list(config_path: Path, parent: str | None, as_json: bool) -> None:
    """The agencies the directory knows, by OrganId."""
    from gateway import directory as agencies

    _conf, conn = open_store(config_path)
    rows = [a.to_json() for a in agencies.list_agencies(conn, parent=parent)]
    columns = ["organ_id", "name", "parent", "level", "kind", "route", "valid_to", "successor"]
    emit(rows, as_json, lambda r: table(r, columns, "Directory"))


# --- numbering ---------------------------------------------------------------------------------


@click.group()
def number() -> None:
    """Document numbers of hosted agencies (R12)."""


@number.command(
    "issue", epilog="Exit codes: 0 issued, 65 refused (not hosted, bad notation), 66 no store."
)
@CONFIG_OPTION
@click.option("--agency", "organ_id", required=True, help="Hosted OrganId.")
@click.option("--notation", required=True, help="Ký hiệu, e.g. UBND-VP or QĐ-UBND.")
@click.option("--register", default="default", show_default=True, help="Register (sổ) name.")
@click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Issue date (default: today in Vietnam).",
)
@JSON_OPTION
def number_issue(
    config_path: Path,
    organ_id: str,
    notation: str,
    register: str,
    day: dt.datetime | None,
    as_json: bool,
) -> None:
    """Issue the next number of a register and the DocumentId it makes."""
    from gateway import admin, numbering
    from gateway.soap import GatewayFault

    conf, db = _writable_store(config_path)
    if not conf.hosts(organ_id):
        click.echo(f"{organ_id} is not hosted on this node", err=True)
        sys.exit(EX_DATAERR)
    when = day.date() if day is not None else _today()
    now = dt.datetime.now(dt.UTC)
    try:
        issued = admin.write(
            db,
            lambda c: numbering.issue_number(
                c,
                organ_id=organ_id,
                notation=notation,
                date=when,
                now=now,
                actor=admin.operator(),
                register=register,
            ),
        )
    except GatewayFault as fault:
        click.echo(f"{fault.text_en}\n  {fault.text_vi}", err=True)
        sys.exit(EX_DATAERR)
    emit(
        issued.to_json(),
        as_json,
        lambda p: click.echo(f"{p['code_number']}/{p['notation']}  {p['document_id']}"),
    )


# --- reports -----------------------------------------------------------------------------------


@click.command()
@CONFIG_OPTION
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None)
@JSON_OPTION
def overdue(config_path: Path, as_of: dt.datetime | None, as_json: bool) -> None:
    """Documents past their DueDate with no reply linked to them (R16), both directions."""
    from gateway.overdue import overdue as find

    _conf, conn = open_store(config_path)
    today = as_of.date() if as_of is not None else _today()
    found = find(conn, today)
    rows = [o.to_json() for o in found]
    columns = ["direction", "document_id", "due_date", "days_late", "waiting_for", "subject"]
    shown = [
        {**r, "waiting_for": ", ".join(o.waiting_for)} for r, o in zip(rows, found, strict=True)
    ]
    emit(
        rows if as_json else shown,
        as_json,
        lambda r: table(r, columns, f"Overdue on {today.isoformat()}"),
    )


STATS_EPILOG = (
    "Dimensions for --by: agency, province, level, kind, period, direction. Counts: documents, "
    "deliveries, rejected, recalled, withdrawn, on_time, late, unacknowledged, legal, "
    "reference_only, broken, paper_required, late_issue."
)


@click.command(epilog=STATS_EPILOG)
@CONFIG_OPTION
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--period",
    type=click.Choice(["day", "month", "quarter", "year"]),
    default="month",
    show_default=True,
)
@click.option("--by", default="agency,direction", show_default=True, help="Comma-separated.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout.")
@click.option(
    "--recount",
    is_flag=True,
    help="Count again from the messages themselves and exit 65 if the kept counters differ.",
)
@JSON_OPTION
def stats(
    config_path: Path,
    start: dt.datetime | None,
    end: dt.datetime | None,
    period: str,
    by: str,
    as_csv: bool,
    recount: bool,
    as_json: bool,
) -> None:
    """Statistics of sending and receiving (R22) by agency, level, period, direction."""
    from gateway import stats as statistics

    conf, conn = open_store(config_path)
    try:
        query = statistics.StatsQuery(
            start=start.date() if start else None,
            end=end.date() if end else None,
            period=period,
            by=tuple(d.strip() for d in by.split(",") if d.strip()),
        )
    except ValueError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EX_CONFIG)
    hosted = [a.organ_id for a in conf.agencies]
    result = statistics.gather(conn, query, hosted=hosted)
    if recount:
        again = statistics.recount(conn, query, hosted=hosted)
        if again != result:
            # Purged messages (retention) still count in the kept counters, not in a recount.
            (purged,) = conn.execute("SELECT count(*) FROM purged").fetchone()
            note = (
                f"\n  {purged} messages were purged by retention: the recount no longer sees them"
                f"\n  {purged} văn bản đã bị xóa theo thời hạn lưu giữ: đếm lại không còn thấy"
                if purged
                else ""
            )
            click.echo(
                "the kept counters differ from a recount of the messages; the recount is shown"
                "\n  bộ đếm thống kê khác với kết quả đếm lại; hiển thị kết quả đếm lại" + note,
                err=True,
            )
            emit(again, True, None)
            sys.exit(EX_DATAERR)
    if as_csv:
        click.echo(statistics.to_csv(result), nl=False)
        return
    columns = [*query.by, "documents", "rejected", "on_time", "late", "legal", "reference_only"]
    emit(result, as_json, lambda r: table(r["rows"], columns, "Statistics"))


COMMANDS = (directory, number, overdue, stats)
