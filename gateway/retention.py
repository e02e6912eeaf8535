"""Archive, retention and legal holds (issue #7): how the live store stays small for years
while nothing is lost and everything stays provable.

Archive (`archive_pass`): settled messages older than `[archive] after` — no delivery waiting,
nobody's inbox still to pick them up — are written with their exact bytes, their deliveries,
statuses, inbox rows and audit rows into sealed archive files (gateway.archive: signed with the
node's TLS key, each linked to the one before), at most `max_messages` per file; only once a
file is sealed (fsynced, renamed) are its messages marked `archived_in` in the store. Reading
happens in short read transactions of a read-only connection, one message at a time, so neither
traffic nor memory grows with the archive. A file sealed but not recorded (a crash in between)
is set aside as `.orphaned` and its messages archived again into a new file.

Retention (`purge_pass`): an archived message older than its `[retention] <direction>_<state>`
(default forever: nothing is purged unless configured) and whose DocumentId holds no legal hold
leaves the live store: its rows go, a tombstone (`purged`) says which archive file holds it, the
audit log (append-only) records it, and its blobs are deleted once nothing references them —
inside the writer thread, so a new reference to the same bytes either keeps them or is refused
(`store.BlobMissing`), never left pointing at nothing. Statistics counters (`stat_days`) are not
touched: the counts of past years stay as they were.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import attrs
from cryptography.hazmat.primitives import serialization

from gateway import archive
from gateway.config import Config
from gateway.store import Store, append_audit, audit_of_message, dict_rows, utc_text

__all__ = [
    "ArchivePass",
    "Maintenance",
    "PurgePass",
    "archive_dir",
    "archive_pass",
    "holds",
    "purge_pass",
]

T = TypeVar("T")
Write = Callable[[Callable[[sqlite3.Connection], T]], T]
_MARK_BATCH = 1000

_ELIGIBLE = """
SELECT m.id FROM messages m
WHERE m.archived_in IS NULL AND m.arrived_at < ?
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id
                  AND d.state IN ('queued', 'sending', 'retry_wait'))
  AND NOT (m.state = 'received' AND EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = m.id
                                              AND i.acked_at IS NULL))
ORDER BY m.arrived_at, m.id LIMIT ?
"""


def archive_dir(config: Config) -> Path:
    return config.archive.dir or config.node.data_dir / "archive"


# --- legal holds ----------------------------------------------------------------------------------


def set_hold(
    conn: sqlite3.Connection, document_id: str, *, reason: str, now: dt.datetime, actor: str
) -> bool:
    """Keep every message of `document_id` past its retention; False if it was held already."""
    cursor = conn.execute(
        "INSERT INTO holds (document_id, reason, set_by, set_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (document_id) DO NOTHING",
        (document_id, reason, actor, utc_text(now)),
    )
    if cursor.rowcount:
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="hold-set",
            subject_type="document",
            subject_id=document_id,
            detail={"reason": reason},
        )
    return bool(cursor.rowcount)


def clear_hold(conn: sqlite3.Connection, document_id: str, *, now: dt.datetime, actor: str) -> bool:
    cursor = conn.execute("DELETE FROM holds WHERE document_id = ?", (document_id,))
    if cursor.rowcount:
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="hold-cleared",
            subject_type="document",
            subject_id=document_id,
            detail={},
        )
    return bool(cursor.rowcount)


def holds(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return dict_rows(conn, "SELECT document_id, reason, set_by, set_at FROM holds ORDER BY set_at")


# --- archive ----------------------------------------------------------------------------------


@attrs.frozen
class ArchivePass:
    files: tuple[str, ...]
    messages: int
    orphans: tuple[str, ...]  # sealed files a crash left unrecorded, set aside

    def to_json(self) -> dict[str, Any]:
        return {"files": list(self.files), "messages": self.messages, "orphans": list(self.orphans)}


def _signer(config: Config) -> tuple[Any, bytes]:
    key = serialization.load_pem_private_key(config.node.tls.key.read_bytes(), password=None)
    return key, config.node.tls.cert.read_bytes()


def _last_link(conn: sqlite3.Connection) -> tuple[int, archive.Link | None]:
    row = conn.execute(
        "SELECT sequence, file_name, manifest_sha256 FROM archives ORDER BY sequence DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return 0, None
    return int(row[0]), archive.Link(row[1], row[2])


def _message_parts(conn: sqlite3.Connection, message_id: str) -> dict[str, Any]:
    message = dict_rows(conn, "SELECT * FROM messages WHERE id = ?", message_id)[0]
    deliveries = dict_rows(
        conn, "SELECT * FROM deliveries WHERE message_id = ? ORDER BY id", message_id
    )
    return {
        "message": message,
        "deliveries": deliveries,
        "statuses": dict_rows(
            conn, "SELECT * FROM statuses WHERE message_id = ? ORDER BY id", message_id
        ),
        "inbox": dict_rows(conn, "SELECT * FROM inbox WHERE message_id = ?", message_id),
        "audit": audit_of_message(conn, message_id, [d["id"] for d in deliveries]),
    }


def _set_aside(directory: Path, name: str, now: dt.datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    target = directory / f"{name}.orphaned-{stamp}"
    os.replace(directory / name, target)
    return target.name


@contextlib.contextmanager
def _reading(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = Store.open_readonly(db_path)
    try:
        yield conn
    finally:
        conn.close()


def archive_pass(
    config: Config,
    write: Write[Any],
    *,
    now: dt.datetime,
    actor: str = "archive",
    clock: Callable[[], dt.datetime] | None = None,
) -> ArchivePass:
    """Archive what is due now (blocking: a thread or the CLI). `write(job)` runs a store job
    in the store's writer and returns its result."""
    directory = archive_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    key, chain = _signer(config)
    blobs = config.node.blobs_dir
    cutoff = utc_text(now - dt.timedelta(seconds=config.archive.after))
    files: list[str] = []
    orphans: list[str] = []
    total = 0
    with _reading(config.node.db_path) as conn:
        while True:
            ids = [r[0] for r in conn.execute(_ELIGIBLE, (cutoff, config.archive.max_messages))]
            if not ids:
                break
            sequence, previous = _last_link(conn)
            sequence += 1
            name = archive.archive_file_name(config.node.name, sequence)
            if (directory / name).exists():
                orphans.append(_set_aside(directory, name, now))
            with archive.ArchiveWriter(
                directory / name,
                node=config.node.name,
                sequence=sequence,
                previous=previous,
                key=key,
                chain_pem=chain,
                clock=clock or (lambda: now),
            ) as writer:
                first = last = None
                for message_id in ids:
                    conn.execute("BEGIN")
                    try:
                        parts = _message_parts(conn, message_id)
                    finally:
                        conn.execute("ROLLBACK")
                    message = parts["message"]
                    forward = message.get("forward_sha256")
                    writer.add(
                        message,
                        blobs / message["blob_sha256"][:2] / message["blob_sha256"],
                        forward=blobs / forward[:2] / forward if forward else None,
                        deliveries=parts["deliveries"],
                        statuses=parts["statuses"],
                        inbox=parts["inbox"],
                        audit=parts["audit"],
                    )
                    first = first or message["arrived_at"]
                    last = message["arrived_at"]
            write(
                functools.partial(
                    _record,
                    sequence=sequence,
                    link=writer.link,
                    ids=ids,
                    first=first,
                    last=last,
                    now=now,
                    actor=actor,
                )
            )
            files.append(name)
            total += len(ids)
    return ArchivePass(tuple(files), total, tuple(orphans))


def _record(
    conn: sqlite3.Connection,
    *,
    sequence: int,
    link: archive.Link,
    ids: Sequence[str],
    first: str | None,
    last: str | None,
    now: dt.datetime,
    actor: str,
) -> None:
    conn.execute(
        "INSERT INTO archives (sequence, file_name, manifest_sha256, messages, first_arrived_at,"
        " last_arrived_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sequence, link.file_name, link.manifest_sha256, len(ids), first, last, utc_text(now)),
    )
    for start in range(0, len(ids), _MARK_BATCH):
        batch = ids[start : start + _MARK_BATCH]
        conn.execute(
            f"UPDATE messages SET archived_in = ? WHERE id IN ({','.join('?' * len(batch))})",
            (link.file_name, *batch),
        )
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="archived",
        subject_type="archive",
        subject_id=link.file_name,
        detail={
            "sequence": sequence,
            "messages": len(ids),
            "manifest_sha256": link.manifest_sha256,
        },
    )


# --- retention --------------------------------------------------------------------------------


@attrs.frozen
class PurgePass:
    messages: int
    held: int  # due, but kept by a legal hold
    blobs_deleted: int

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _due(
    conn: sqlite3.Connection, config: Config, now: dt.datetime, limit: int
) -> tuple[list[str], int]:
    """Up to `limit` archived messages past their retention and not held, and how many more
    are past it but held."""
    due: list[str] = []
    held = 0
    for key, period in config.retention.periods:
        if period is None:
            continue
        direction, state = key.split("_", 1)
        where = "m.archived_in IS NOT NULL AND m.direction = ? AND m.state = ? AND m.arrived_at < ?"
        args = (direction, state, utc_text(now - dt.timedelta(seconds=period)))
        held += conn.execute(
            f"SELECT count(*) FROM messages m JOIN holds h ON h.document_id = m.document_id"
            f" WHERE {where}",
            args,
        ).fetchone()[0]
        due += [
            r[0]
            for r in conn.execute(
                f"SELECT m.id FROM messages m WHERE {where} AND NOT EXISTS"
                f" (SELECT 1 FROM holds h WHERE h.document_id = m.document_id)"
                f" ORDER BY m.arrived_at LIMIT ?",
                (*args, limit - len(due)),
            )
        ]
        if len(due) >= limit:
            break
    return due, held


def _purge(
    conn: sqlite3.Connection, *, ids: Sequence[str], now: dt.datetime, actor: str
) -> list[str]:
    """Delete the messages `ids` (archived, due, not held) and everything that hangs on them;
    the blobs they named, to be deleted if nothing else names them."""
    blobs: set[str] = set()
    for message_id in ids:
        row = conn.execute(
            "SELECT document_id, direction, kind, archived_in, blob_sha256, forward_sha256"
            " FROM messages WHERE id = ? AND archived_in IS NOT NULL",
            (message_id,),
        ).fetchone()
        if row is None:
            continue
        document_id, direction, kind, archived_in, blob, forward = row
        blobs.update(b for b in (blob, forward) if b)
        blobs.update(
            r[0]
            for r in conn.execute(
                "SELECT blob_sha256 FROM statuses WHERE message_id = ? AND blob_sha256 IS NOT NULL",
                (message_id,),
            )
        )
        conn.execute(
            "DELETE FROM document_changes WHERE message_id = ? OR by_message_id = ?",
            (message_id, message_id),
        )
        for table in ("document_links", "statuses", "inbox", "deliveries", "message_recipients"):
            conn.execute(f"DELETE FROM {table} WHERE message_id = ?", (message_id,))
        conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        conn.execute(
            "INSERT INTO purged (message_id, document_id, direction, kind, archived_in, purged_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, document_id, direction, kind, archived_in, utc_text(now)),
        )
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="purged",
            subject_type="message",
            subject_id=message_id,
            detail={"archived_in": archived_in},
        )
    return sorted(blobs)


def _delete_unreferenced(
    conn: sqlite3.Connection, *, blobs_root: Path, digests: Sequence[str]
) -> int:
    """In the writer thread: each blob no row names any more is deleted now (see module)."""
    deleted = 0
    for digest in digests:
        used = conn.execute(
            "SELECT 1 FROM messages WHERE blob_sha256 = ?1 OR forward_sha256 = ?1"
            " UNION ALL SELECT 1 FROM statuses WHERE blob_sha256 = ?1 LIMIT 1",
            (digest,),
        ).fetchone()
        if used is not None:
            continue
        path = blobs_root / digest[:2] / digest
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted


def purge_pass(
    config: Config, write: Write[Any], *, now: dt.datetime, actor: str = "retention"
) -> PurgePass:
    """Apply `[retention]` now (blocking: a thread or the CLI)."""
    total = deleted = held = 0
    while True:
        # In batches: memory stays bounded however much is due at once.
        with _reading(config.node.db_path) as conn:
            due, held = _due(conn, config, now, _MARK_BATCH)
        if not due:
            break
        digests = write(functools.partial(_purge, ids=due, now=now, actor=actor))
        total += len(due)
        deleted += write(
            functools.partial(
                _delete_unreferenced, blobs_root=config.node.blobs_dir, digests=digests
            )
        )
    return PurgePass(total, held, deleted)


# --- the daemon's pass --------------------------------------------------------------------------


class Maintenance:
    """Archive, then apply retention, every `[archive] interval`, in a thread: the reactor and
    the store's writer only see short jobs. A pass that fails is logged and tried next time."""

    FIRST = 60.0  # seconds after start: the node serves first

    def __init__(self, config: Config, store: Store, *, reactor: Any) -> None:
        from gateway.periodic import Periodic

        self._config = config
        self._store = store
        self._reactor = reactor
        self._periodic = Periodic(
            "maintenance pass",
            self._pass,
            every=config.archive.interval,
            clock=reactor,
            first=self.FIRST,
        )

    def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        from twisted.internet.defer import Deferred
        from twisted.internet.threads import blockingCallFromThread

        def in_reactor() -> Deferred[Any]:
            return Deferred.fromCoroutine(self._store.write(job))

        return cast(T, blockingCallFromThread(self._reactor, in_reactor))

    def _once(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        archived = archive_pass(self._config, self._write, now=now)
        purged = purge_pass(self._config, self._write, now=now)
        return {"archive": archived.to_json(), "purge": purged.to_json()}

    async def _pass(self) -> None:
        from twisted.internet.threads import deferToThreadPool
        from twisted.logger import Logger

        result = await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._once)
        Logger().info("maintenance pass: {result}", result=result)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
