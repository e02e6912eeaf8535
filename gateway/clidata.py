"""The data's own commands (issue #7): `backup DEST`, `restore SRC DATA_DIR`, `verify`.

`backup` and `verify` run beside the daemon (reads only: SQLite's online backup and read
transactions); `restore` writes only onto an empty data directory, never over a node's data.
Exit codes: 0 done and clean, 65 problems found (the report names them), 66 no store or no
backup, 73 the destination is not empty, 78 configuration invalid.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gateway.clikit import CONFIG_OPTION, EX_DATAERR, EX_NOINPUT, emit, load_config, open_store

EX_CANTCREAT = 73
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")


def _refused(exc: Any, code: int) -> None:
    click.echo(f"{exc.message_en}\n{exc.message_vi}", err=True)
    sys.exit(code)


@click.command(
    "backup",
    epilog="Exit codes: 0 done, 65 a blob was missing or altered, 66 no"
    " store, 73 DEST is not empty.",
)
@CONFIG_OPTION
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@JSON_OPTION
def backup_command(config_path: Path, dest: Path, as_json: bool) -> None:
    """Back up the store and its blobs into DEST (new or empty), the daemon running or not."""
    from gateway import backup

    conf = load_config(config_path, check_files=False)
    if not conf.node.db_path.exists():
        click.echo(f"no store at {conf.node.db_path}: has the node run yet?", err=True)
        sys.exit(EX_NOINPUT)
    try:
        manifest = backup.backup(
            conf.node.db_path,
            conf.node.data_dir,
            dest,
            node=conf.node.name,
            config_path=config_path,
        )
    except backup.BackupError as exc:
        _refused(exc, EX_CANTCREAT)
        return

    def human(m: dict[str, Any]) -> None:
        counts = m["counts"]
        click.echo(
            f"backup of {m['node']} at {m['snapshot_at']} in {dest}: {counts['messages']}"
            f" messages, {m['blobs']['count']} blobs ({m['blobs']['bytes']} bytes),"
            f" {len(m['files'])} other files"
        )
        for p in m["problems"]:
            click.echo(f"  ! blob {p['sha256']} {p['problem']}")

    emit({**manifest, "dest": str(dest)}, as_json, human)
    if manifest["problems"]:
        sys.exit(EX_DATAERR)


@click.command(
    "restore",
    epilog="Exit codes: 0 restored and clean, 65 restored with problems,"
    " 66 SRC is not a complete backup, 73 DATA_DIR is not empty.",
)
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@JSON_OPTION
def restore_command(src: Path, data_dir: Path, as_json: bool) -> None:
    """Restore the backup SRC onto DATA_DIR (new or empty); then point a configuration's
    [node] data_dir at it and `gateway run`: pending deliveries resume."""
    from gateway import backup

    try:
        backup.read_manifest(src)
    except backup.BackupError as exc:
        _refused(exc, EX_NOINPUT)
    try:
        report = backup.restore(src, data_dir)
    except backup.BackupError as exc:
        _refused(exc, EX_CANTCREAT)
        return

    def human(r: dict[str, Any]) -> None:
        state = "clean" if r["ok"] else "WITH PROBLEMS"
        click.echo(
            f"restored the snapshot of {r['snapshot_at']} into {r['restored_to']} ({state}):"
            f" {r['counts']['messages']} messages, {r['blobs']} blobs"
        )
        for name in r["damaged"]:
            click.echo(f"  ! damaged in the backup: {name}")
        _human_verify(r["verify"])

    emit(report, as_json, human)
    if not report["ok"]:
        sys.exit(EX_DATAERR)


@click.command("verify", epilog="Exit codes: 0 intact, 65 problems found, 66 no store.")
@CONFIG_OPTION
@JSON_OPTION
def verify_command(config_path: Path, as_json: bool) -> None:
    """Re-hash every blob against the store, check the audit chain and the database file."""
    from gateway import backup

    conf, conn = open_store(config_path)
    report = backup.verify(conn, conf.node.blobs_dir)
    emit(report.to_json(), as_json, _human_verify)
    if not report.ok:
        sys.exit(EX_DATAERR)


def _human_verify(r: dict[str, Any]) -> None:
    click.echo(
        f"{r['blobs']} blobs ({r['bytes']} bytes) re-hashed, {r['audit_rows']} audit rows,"
        f" database {r['sqlite']}: {'intact' if r['ok'] else 'PROBLEMS'}"
    )
    for p in r["blob_problems"]:
        click.echo(f"  ! blob {p['sha256']} {p['problem']}, of messages {', '.join(p['messages'])}")
    for p in r["audit_problems"]:
        click.echo(f"  ! audit {p}")


COMMANDS = [backup_command, restore_command, verify_command]


# --- archive, holds, retention ------------------------------------------------------------------


@click.group("archive")
def archive_group() -> None:
    """Sealed archive files of settled messages (exact bytes, rows, audit; signed, chained)."""


@archive_group.command("run", epilog="Exit codes: 0 done, 66 no store, 78 configuration invalid.")
@CONFIG_OPTION
@JSON_OPTION
def archive_run(config_path: Path, as_json: bool) -> None:
    """Archive now what [archive] after makes due, beside the running daemon."""
    import datetime as dt

    from gateway import admin, retention

    conf = load_config(config_path)
    if not conf.node.db_path.exists():
        click.echo(f"no store at {conf.node.db_path}: has the node run yet?", err=True)
        sys.exit(EX_NOINPUT)
    actor = admin.operator()
    result = retention.archive_pass(
        conf,
        lambda job: admin.write(conf.node.db_path, job),
        now=dt.datetime.now(dt.UTC),
        actor=actor,
    )
    emit(
        {**result.to_json(), "directory": str(retention.archive_dir(conf))},
        as_json,
        lambda r: click.echo(
            f"{r['messages']} messages archived into {len(r['files'])} files in {r['directory']}"
            + (f"; set aside: {', '.join(r['orphans'])}" if r["orphans"] else "")
        ),
    )


@archive_group.command(
    "verify",
    epilog="Exit codes: 0 every file and the chain intact, 65"
    " problems found, 66 no such directory. Needs no node, configuration or"
    " database.",
)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--trust",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Root certificate(s) the signer must chain to (PEM).",
)
@JSON_OPTION
def archive_verify(directory: Path, trust: Path | None, as_json: bool) -> None:
    """Prove an archive directory offline: every member's hash, every signature, the chain."""
    from gateway import archive

    sys.exit(archive.verify_main(directory, trust=trust, as_json=as_json))


@archive_group.command("list")
@CONFIG_OPTION
@JSON_OPTION
def archive_list(config_path: Path, as_json: bool) -> None:
    """The archive files this node has made, in sequence."""
    from gateway.clikit import table

    _conf, conn = open_store(config_path)
    rows = [
        dict(
            zip(
                ("sequence", "file_name", "messages", "first", "last", "manifest_sha256"),
                r,
                strict=True,
            )
        )
        for r in conn.execute(
            "SELECT sequence, file_name, messages, first_arrived_at, last_arrived_at,"
            " manifest_sha256 FROM archives ORDER BY sequence"
        )
    ]
    emit(
        rows,
        as_json,
        lambda r: table(r, ["sequence", "file_name", "messages", "first", "last"], "Archive files"),
    )


@click.group("hold")
def hold_group() -> None:
    """Legal holds: a held document is kept in the live store past its retention."""


@hold_group.command("set")
@CONFIG_OPTION
@click.argument("document_id")
@click.option("--reason", required=True, help="Why it is held (a case, an inspection).")
@JSON_OPTION
def hold_set(config_path: Path, document_id: str, reason: str, as_json: bool) -> None:
    """Hold DOCUMENT_ID (every message of it) past its retention."""
    import datetime as dt

    from gateway import admin, retention

    conf = load_config(config_path, check_files=False)
    now = dt.datetime.now(dt.UTC)
    added = admin.write(
        conf.node.db_path,
        lambda c: retention.set_hold(
            c, document_id, reason=reason, now=now, actor=admin.operator()
        ),
    )
    emit(
        {"document_id": document_id, "held": True, "new": added},
        as_json,
        lambda r: click.echo(f"{document_id} held" + ("" if added else " (already)")),
    )


@hold_group.command("clear")
@CONFIG_OPTION
@click.argument("document_id")
@JSON_OPTION
def hold_clear(config_path: Path, document_id: str, as_json: bool) -> None:
    """Release the hold on DOCUMENT_ID; its retention applies again."""
    import datetime as dt

    from gateway import admin, retention

    conf = load_config(config_path, check_files=False)
    now = dt.datetime.now(dt.UTC)
    cleared = admin.write(
        conf.node.db_path,
        lambda c: retention.clear_hold(c, document_id, now=now, actor=admin.operator()),
    )
    emit(
        {"document_id": document_id, "cleared": cleared},
        as_json,
        lambda r: click.echo(f"{document_id}: " + ("released" if cleared else "was not held")),
    )
    if not cleared:
        sys.exit(EX_DATAERR)


@hold_group.command("list")
@CONFIG_OPTION
@JSON_OPTION
def hold_list(config_path: Path, as_json: bool) -> None:
    """Documents under a legal hold."""
    from gateway import retention
    from gateway.clikit import table

    _conf, conn = open_store(config_path)
    rows = retention.holds(conn)
    emit(rows, as_json, lambda r: table(r, ["document_id", "reason", "set_by", "set_at"], "Holds"))


@click.command(
    "purge",
    epilog="Exit codes: 0 done, 66 no store. Purges only archived messages"
    " past their [retention], never a held one.",
)
@CONFIG_OPTION
@JSON_OPTION
def purge_command(config_path: Path, as_json: bool) -> None:
    """Apply [retention] now: archived messages past it leave the live store (tombstoned)."""
    import datetime as dt

    from gateway import admin, retention

    conf = load_config(config_path, check_files=False)
    if not conf.node.db_path.exists():
        click.echo(f"no store at {conf.node.db_path}: has the node run yet?", err=True)
        sys.exit(EX_NOINPUT)
    result = retention.purge_pass(
        conf,
        lambda job: admin.write(conf.node.db_path, job),
        now=dt.datetime.now(dt.UTC),
        actor=admin.operator(),
    )
    emit(
        result.to_json(),
        as_json,
        lambda r: click.echo(
            f"{r['messages']} messages purged ({r['blobs_deleted']} blobs deleted);"
            f" {r['held']} kept by a legal hold"
        ),
    )


COMMANDS += [archive_group, hold_group, purge_command]
