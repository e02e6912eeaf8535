"""The durable store: plain sqlite3, one writer thread with group commit, readers in a small pool.

Order of durability (the rule every caller keeps): the payload goes to the `BlobStore` first and is
committed (fsynced, renamed, directory fsynced) before the row that names it is written; the helpers
below take a `BlobRef`, which only `BlobWriter.commit()` / `BlobStore.put()` hand out. A crash
between the two leaves an orphan file, never a row naming a missing blob. Only after the writer
thread's COMMIT returns is a caller's Deferred fired, so nothing is acknowledged (receipt, SOAP
answer) before it is durable.

Writes: `Store.write(job)` queues `job(conn)` for the writer thread, which takes every job queued at
that moment into one `BEGIN IMMEDIATE` transaction, each job inside its own SAVEPOINT (a job that
raises is rolled back alone and its caller gets the exception), then COMMITs once (group commit)
and fires the callers' Deferreds in the reactor thread. A job must not COMMIT or ROLLBACK itself.
Reads: `Store.read(job)` runs `job(conn)` inside one read transaction on a `mode=ro`,
`query_only` connection in a small thread pool. `Store.open_readonly(path)` is the CLI's handle.

The module-level helpers (`insert_inbound_message`, `claim_due_deliveries`, …) are such jobs; every
one that changes a state appends its audit row in the same transaction. Times are passed in (the
caller's injected clock), must be timezone-aware, and are stored in UTC as fixed-width ISO 8601 so
that they sort as text. Rows leave this module as attrs frozen value objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from edxml.codes import BusinessDocType, StatusCode
from gateway.blobs import BlobRef
from gateway.config import VIETNAM
from gateway.migrations import MIGRATIONS, Migration, apply_migrations

__all__ = [
    "GENESIS_HASH",
    "AuditProblem",
    "AuditRow",
    "DeliveryRecord",
    "InboxItem",
    "InsertResult",
    "MessageRecord",
    "NewDelivery",
    "NewMessage",
    "NewStatus",
    "OutboundReply",
    "RecallOutcome",
    "StateConflict",
    "StatusRecord",
    "Store",
    "StoreClosed",
    "accept_recall",
    "append_audit",
    "audit_hash",
    "claim_due_deliveries",
    "deliveries_for",
    "document_rank",
    "get_message",
    "inbound_for",
    "insert_inbound_message",
    "insert_inbound_status",
    "insert_inbound_with_replies",
    "insert_outbound_message_with_deliveries",
    "insert_replies",
    "latest_outbound",
    "latest_statuses",
    "mark_delivery_failed",
    "mark_delivery_retry",
    "mark_delivery_sent",
    "mark_recalled",
    "mark_received",
    "note_duplicate",
    "outbound_by_key",
    "pending_inbox",
    "received_from",
    "record_status",
    "requeue_interrupted",
    "sent_to",
    "status_history",
    "utc_text",
    "verify_audit_chain",
    "withdraw_inbound",
]

T = TypeVar("T")

GENESIS_HASH: Final = "0" * 64
MAX_BATCH: Final = 256
BUSY_TIMEOUT_MS: Final = 5000


class StoreClosed(Exception):
    """A write or read after `stop()` began."""


class StateConflict(Exception):
    """A transition asked of a row that is not in the state it requires (sent, not sending)."""


def utc_text(value: dt.datetime) -> str:
    """A stored time: UTC, fixed width, so text order is time order."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the store keeps aware times only")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stored_time(text: str) -> dt.datetime:
    """A time as `utc_text` wrote it, aware (UTC)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Value objects


@attrs.frozen
class InboxTimes:
    organ_id: str
    legal_received_at: dt.datetime
    ack_due_at: dt.datetime


@attrs.frozen
class NewMessage:
    """A message about to be stored; `blob` must already be committed (see module docstring)."""

    id: str
    direction: str
    kind: str
    sender: str
    document_id: str
    business_type: str
    blob: BlobRef
    arrived_at: dt.datetime
    recipients: tuple[str, ...] = ()
    priority: int = 0
    code_number: str | None = None
    code_notation: str | None = None
    promulgation_date: str | None = None
    subject: str | None = None
    verdict_json: str = "{}"
    # The regulation's columns (issue #5): counted by statistics without parsing the verdict.
    legal_validity: str | None = None  # legal | reference-only | broken (received envelopes)
    paper_required: bool = False  # R7
    late_issue: bool = False  # R9
    due_date: str | None = None  # R16, ISO date
    links: tuple[tuple[str, str], ...] = ()  # (kind, DocumentId): response_for, updates, …
    # R19: the legal receipt time per hosted recipient (each agency keeps its own hours), and
    # when its office system's pickup is due (the end of that working day).
    legal_received: tuple[InboxTimes, ...] = ()
    # A relay's onward bytes (our TraceHeader appended; committed like `blob`), and the
    # recipients it forwards them to, one delivery each.
    forward_blob: BlobRef | None = None
    forwards: tuple[NewDelivery, ...] = ()


@attrs.frozen
class MessageRecord:
    id: str
    direction: str
    kind: str
    sender: str
    document_id: str
    business_type: str
    code_number: str | None
    code_notation: str | None
    promulgation_date: str | None
    subject: str | None
    priority: int
    state: str
    blob_sha256: str
    size: int
    verdict_json: str
    receipt_json: str | None
    arrived_at: str
    created_at: str
    legal_validity: str | None
    paper_required: int
    late_issue: int
    due_date: str | None
    forward_sha256: str | None
    recipients: tuple[str, ...]

    @property
    def payload_sha256(self) -> str:
        """What leaves this node for the message: the relayed bytes, else the stored ones."""
        return self.forward_sha256 or self.blob_sha256


@attrs.frozen
class InsertResult:
    """`duplicate` is True when the idempotency key matched: id and receipt are the first ones."""

    message_id: str
    duplicate: bool
    receipt_json: str | None


@attrs.frozen
class NewDelivery:
    recipient: str
    route: str


@attrs.frozen
class DeliveryRecord:
    id: int
    message_id: str
    recipient: str
    route: str
    state: str
    attempts: int
    next_attempt_at: str
    priority_rank: int
    due_at: str
    last_error: str | None
    sent_at: str | None
    receipt_json: str | None
    updated_at: str


@attrs.frozen
class NewStatus:
    message_id: str
    organ_id: str
    code: str
    reported_at: dt.datetime
    description: str = ""
    staff_json: str = "{}"
    blob: BlobRef | None = None


@attrs.frozen
class StatusRecord:
    id: int
    message_id: str
    organ_id: str
    code: str
    description: str
    staff_json: str
    reported_at: str
    received_at: str
    blob_sha256: str | None


@attrs.frozen
class InboxItem:
    organ_id: str
    message: MessageRecord
    legal_received_at: str | None = None  # R19, for this recipient (UTC text)


@attrs.frozen
class AuditRow:
    id: int
    at: str
    actor: str
    action: str
    subject_type: str
    subject_id: str
    detail_json: str
    prev_hash: str
    hash: str


@attrs.frozen
class AuditProblem:
    """`row_id` 0 means the table itself (a missing append-only trigger)."""

    row_id: int
    reason: str


# ---------------------------------------------------------------------------------------------
# The store


_STOP = object()
_Job = tuple[Callable[[sqlite3.Connection], Any], Deferred[Any]]


# The blob root of each writer connection a Store owns (by id(conn)): a row that names a blob is
# committed only if the file is there at that moment. Purge deletes blobs in the writer thread
# too, so a new reference to the very bytes it is deleting (an old document sent again) either
# comes first and keeps the blob, or comes after and is refused (Unavailable: the sender retries
# and the blob is written anew) — never a row naming a file that is gone.
_BLOB_ROOTS: dict[int, Path] = {}


class BlobMissing(Exception):
    """A row would name a blob that is not (any more) on disk."""


def _check_blobs(conn: sqlite3.Connection, *digests: str | None) -> None:
    root = _BLOB_ROOTS.get(id(conn))
    if root is None:
        return
    for digest in digests:
        if digest is not None and not (root / digest[:2] / digest).is_file():
            raise BlobMissing(f"blob {digest} is not on disk")


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")


class Store:
    """One database file: a writer thread owning the read-write connection, and a read pool."""

    log = Logger()

    def __init__(
        self,
        path: Path,
        *,
        reactor: Any,
        migrations: Sequence[Migration] = MIGRATIONS,
        readers: int = 2,
        blobs: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self._blobs = Path(blobs) if blobs is not None else None
        self._reactor: IReactorFromThreads = reactor
        self._threads_reactor: IReactorThreads = reactor
        self._migrations = tuple(migrations)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closing = False
        self._stopped: Deferred[None] = Deferred()
        self._thread: threading.Thread | None = None
        self._read_pool = ThreadPool(minthreads=0, maxthreads=readers, name="store-read")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Group commit's bookkeeping, for tests and benchmarks: COMMITs done, jobs run.
        self.transactions = 0
        self.jobs = 0

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        reactor: Any,
        migrations: Sequence[Migration] = MIGRATIONS,
        readers: int = 2,
        blobs: Path | None = None,
    ) -> Store:
        """Migrate (blocking, at start), open the writer connection and start the threads.
        `blobs`: the blob root, checked before a row naming a blob commits (see BlobMissing)."""
        store = cls(path, reactor=reactor, migrations=migrations, readers=readers, blobs=blobs)
        store.start()
        return store

    def start(self) -> None:
        report = apply_migrations(self.path, self._migrations)
        self.log.info(
            "store {path} at schema version {version}",
            path=str(self.path),
            version=report.to_version,
            backup=str(report.backup) if report.backup else None,
        )
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        _configure(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        if self._blobs is not None:
            _BLOB_ROOTS[id(conn)] = self._blobs
        self._thread = threading.Thread(
            target=self._writer_loop, args=(conn,), name="store-writer", daemon=True
        )
        self._thread.start()
        self._read_pool.start()

    @staticmethod
    def open_readonly(path: Path) -> sqlite3.Connection:
        """A plain synchronous read-only handle (CLI read commands); writes raise."""
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        _configure(conn)
        conn.execute("PRAGMA query_only = ON")
        # Reports (stats over years of messages) read most of the file: a larger page cache and
        # a memory map halve their time; both are bounded and die with the CLI process.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA mmap_size = 268435456")
        return conn

    async def write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job(conn)` in the writer thread; returns once its group has COMMITted."""
        if self._closing:
            raise StoreClosed("store is stopping")
        done: Deferred[T] = Deferred()
        self._queue.put((job, done))
        return await done

    async def read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job(conn)` in one read transaction on a read-only connection in the pool."""
        if self._closing:
            raise StoreClosed("store is stopping")
        result: T = await deferToThreadPool(
            self._threads_reactor, self._read_pool, self._run_read, job
        )
        return result

    async def stop(self) -> None:
        """Drain queued writes, commit, checkpoint the WAL (TRUNCATE), close everything."""
        if self._closing:
            await self._stopped
            return
        self._closing = True
        self._queue.put(_STOP)
        await self._stopped
        self._read_pool.stop()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # --- reader side ---

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.open_readonly(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _run_read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return job(conn)
        finally:
            conn.execute("ROLLBACK")

    # --- writer side (runs in the writer thread) ---

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                batch: list[_Job] = []
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stopping = True
                    else:
                        batch.append(item)  # type: ignore[arg-type]
                    if len(batch) >= MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._run_batch(conn, batch)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception:
            self.log.failure("store writer thread failed")
        finally:
            _BLOB_ROOTS.pop(id(conn), None)
            conn.close()
            self._reactor.callFromThread(self._stopped.callback, None)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[Deferred[Any], object]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, done in batch:
                conn.execute("SAVEPOINT job")
                try:
                    result: object = job(conn)
                except Exception:
                    result = Failure()
                    conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((done, result))
            conn.execute("COMMIT")
        except Exception:
            # BEGIN, COMMIT or a savepoint failed (disk full, I/O error, a job that ended the
            # transaction itself): nothing of this group is durable, so every caller hears so.
            failure = Failure()
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    # SQLite rolls a failed transaction back itself when it can; when even
                    # that fails (I/O error) the next BEGIN tells. The thread must live on.
                    self.log.warn("store rollback failed after a failed write group")
            self.log.failure("store write group failed", failure, jobs=len(batch))
            outcomes = [(done, failure) for _, done in batch]
        else:
            self.transactions += 1
            self.jobs += len(batch)
        self._reactor.callFromThread(_fire, outcomes)


def _fire(outcomes: list[tuple[Deferred[Any], object]]) -> None:
    for done, result in outcomes:
        if isinstance(result, Failure):
            done.errback(result)
        else:
            done.callback(result)


# ---------------------------------------------------------------------------------------------
# Audit


def audit_hash(
    prev_hash: str,
    *,
    id: int,
    at: str,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    detail_json: str,
) -> str:
    """SHA-256 over the previous hash and a canonical JSON of this row's other fields."""
    body = _canonical(
        {
            "id": id,
            "at": at,
            "actor": actor,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "detail_json": detail_json,
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append_audit(
    conn: sqlite3.Connection,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: Mapping[str, Any] | None = None,
) -> AuditRow:
    """Append one chained audit row (inside the caller's write transaction)."""
    last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    row_id, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    at_text = utc_text(at)
    detail_json = _canonical(dict(detail or {}))
    digest = audit_hash(
        prev_hash,
        id=row_id,
        at=at_text,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail_json=detail_json,
    )
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, subject_type, subject_id, detail_json,"
        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, at_text, actor, action, subject_type, subject_id, detail_json, prev_hash, digest),
    )
    return AuditRow(
        row_id, at_text, actor, action, subject_type, subject_id, detail_json, prev_hash, digest
    )


def verify_audit_chain(conn: sqlite3.Connection) -> list[AuditProblem]:
    """Every broken link or altered row, by row id; empty when the chain holds.

    A truncated tail cannot be seen from inside the table: anchor the last hash elsewhere for that.
    """
    problems: list[AuditProblem] = []
    triggers = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
    }
    for needed in ("audit_no_update", "audit_no_delete"):
        if needed not in triggers:
            problems.append(AuditProblem(0, f"trigger {needed} is missing"))
    expected_prev = GENESIS_HASH
    expected_id = 1
    for row in conn.execute(
        "SELECT id, at, actor, action, subject_type, subject_id, detail_json, prev_hash, hash"
        " FROM audit ORDER BY id"
    ):
        record = AuditRow(*row)
        if record.id != expected_id:
            problems.append(AuditProblem(record.id, f"row ids jump from {expected_id - 1}"))
        if record.prev_hash != expected_prev:
            problems.append(AuditProblem(record.id, "prev_hash does not match the previous row"))
        digest = audit_hash(
            record.prev_hash,
            id=record.id,
            at=record.at,
            actor=record.actor,
            action=record.action,
            subject_type=record.subject_type,
            subject_id=record.subject_id,
            detail_json=record.detail_json,
        )
        if digest != record.hash:
            problems.append(AuditProblem(record.id, "hash does not match the row's content"))
        expected_prev = record.hash
        expected_id = record.id + 1
    return problems


# ---------------------------------------------------------------------------------------------
# Messages

_MESSAGE_COLUMNS = (
    "id, direction, kind, sender, document_id, business_type, code_number, code_notation,"
    " promulgation_date, subject, priority, state, blob_sha256, size, verdict_json, receipt_json,"
    " arrived_at, created_at, legal_validity, paper_required, late_issue, due_date,"
    " forward_sha256"
)
_MESSAGE_FIELDS = tuple(c.strip() for c in _MESSAGE_COLUMNS.split(","))


def _recipients(conn: sqlite3.Connection, message_id: str) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT organ_id FROM message_recipients WHERE message_id = ? ORDER BY organ_id",
        (message_id,),
    )
    return tuple(r[0] for r in rows)


def _message(conn: sqlite3.Connection, row: Sequence[Any]) -> MessageRecord:
    fields = dict(zip(_MESSAGE_FIELDS, row, strict=True))
    return MessageRecord(**fields, recipients=_recipients(conn, row[0]))


def dict_rows(conn: sqlite3.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    """The rows of a query as dicts by column name (views, archives)."""
    cursor = conn.execute(sql, args)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def audit_of_message(
    conn: sqlite3.Connection, message_id: str, delivery_ids: Sequence[int | str]
) -> list[dict[str, Any]]:
    """Every audit row about a message and its deliveries, in order."""
    ids = [str(i) for i in delivery_ids]
    marks = ",".join("?" * len(ids)) or "NULL"
    return dict_rows(
        conn,
        "SELECT * FROM audit WHERE (subject_type = 'message' AND subject_id = ?)"
        f" OR (subject_type = 'delivery' AND subject_id IN ({marks})) ORDER BY id",
        message_id,
        *ids,
    )


def get_message(conn: sqlite3.Connection, message_id: str) -> MessageRecord | None:
    row = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    return _message(conn, row) if row else None


def _insert_message(
    conn: sqlite3.Connection, msg: NewMessage, *, state: str, receipt_json: str | None, now: str
) -> bool:
    """Insert unless the idempotency key already holds a row; True when inserted."""
    _check_blobs(conn, msg.blob.sha256, msg.forward_blob.sha256 if msg.forward_blob else None)
    cursor = conn.execute(
        "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,"
        " code_number, code_notation, promulgation_date, subject, priority, state, blob_sha256,"
        " size, verdict_json, receipt_json, arrived_at, created_at, legal_validity,"
        " paper_required, late_issue, due_date, arrived_day, forward_sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (direction, sender, document_id, business_type, kind)"
        " WHERE kind = 'envelope' AND state <> 'rejected' DO NOTHING",
        (
            msg.id,
            msg.direction,
            msg.kind,
            msg.sender,
            msg.document_id,
            msg.business_type,
            msg.code_number,
            msg.code_notation,
            msg.promulgation_date,
            msg.subject,
            msg.priority,
            state,
            msg.blob.sha256,
            msg.blob.size,
            msg.verdict_json,
            receipt_json,
            utc_text(msg.arrived_at),
            now,
            msg.legal_validity,
            int(msg.paper_required),
            int(msg.late_issue),
            msg.due_date,
            msg.arrived_at.astimezone(VIETNAM).date().isoformat(),
            msg.forward_blob.sha256 if msg.forward_blob is not None else None,
        ),
    )
    if cursor.rowcount == 0:
        return False
    conn.executemany(
        "INSERT INTO message_recipients (message_id, organ_id) VALUES (?, ?)",
        [(msg.id, organ) for organ in dict.fromkeys(msg.recipients)],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO document_links (message_id, kind, document_id) VALUES (?, ?, ?)",
        [(msg.id, kind, document_id) for kind, document_id in msg.links if document_id],
    )
    return True


def _first_of_key(conn: sqlite3.Connection, msg: NewMessage) -> InsertResult:
    row = conn.execute(
        "SELECT id, receipt_json FROM messages WHERE direction = ? AND sender = ?"
        " AND document_id = ? AND business_type = ? AND kind = ? AND state <> 'rejected'",
        (msg.direction, msg.sender, msg.document_id, msg.business_type, msg.kind),
    ).fetchone()
    return InsertResult(row[0], True, row[1])


def insert_inbound_message(
    conn: sqlite3.Connection,
    msg: NewMessage,
    *,
    receipt_json: str | None,
    now: dt.datetime,
    actor: str,
    state: str = "received",
    inbox_for: Sequence[str] | None = None,
) -> InsertResult:
    """Store an inbound envelope or status packet, or find the first of a resent envelope.

    `inbox_for` (default: every recipient) are the hosted OrganIds whose office systems will pick
    the message up; a refused (`rejected`) message goes to no inbox.
    """
    if msg.direction != "in":
        raise ValueError("insert_inbound_message takes direction 'in'")
    now_text = utc_text(now)
    if not _insert_message(conn, msg, state=state, receipt_json=receipt_json, now=now_text):
        first = _first_of_key(conn, msg)
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="duplicate",
            subject_type="message",
            subject_id=first.message_id,
            detail={"resent_as": msg.id, "blob_sha256": msg.blob.sha256},
        )
        _forward_again(conn, first.message_id, msg, now=now, actor=actor)
        return first
    if state == "received":
        # A status packet has no recipients: it reaches an inbox only when named (a recall 13).
        pickers = msg.recipients if inbox_for is None else inbox_for
        times = {t.organ_id: t for t in msg.legal_received}
        rows = []
        for organ in dict.fromkeys(pickers):
            found = times.get(organ)
            legal = found.legal_received_at if found else msg.arrived_at
            rows.append(
                (msg.id, organ, utc_text(legal), utc_text(found.ack_due_at) if found else None)
            )
        conn.executemany(
            "INSERT INTO inbox (message_id, organ_id, legal_received_at, ack_due_at)"
            " VALUES (?, ?, ?, ?)",
            rows,
        )
        _queue(conn, msg.id, msg.forwards, msg.priority, now=now, actor=actor)
    append_audit(
        conn,
        at=now,
        actor=actor,
        action=state,
        subject_type="message",
        subject_id=msg.id,
        detail={
            "direction": "in",
            "kind": msg.kind,
            "sender": msg.sender,
            "document_id": msg.document_id,
            "business_type": msg.business_type,
            "blob_sha256": msg.blob.sha256,
        },
    )
    return InsertResult(msg.id, False, receipt_json)


def _queue(
    conn: sqlite3.Connection,
    message_id: str,
    deliveries: Sequence[NewDelivery],
    priority: int,
    *,
    now: dt.datetime,
    actor: str,
    due_at: dt.datetime | None = None,
) -> list[str]:
    """One queued delivery per recipient not already holding one; the recipients queued."""
    now_text = utc_text(now)
    rank = min(max(priority, 0), 3)
    due_text = utc_text(due_at or now)
    queued = []
    for delivery in deliveries:
        cursor = conn.execute(
            "INSERT INTO deliveries (message_id, recipient, route, state, next_attempt_at,"
            " priority_rank, due_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)"
            " ON CONFLICT (message_id, recipient) DO NOTHING",
            (message_id, delivery.recipient, delivery.route, now_text, rank, due_text, now_text),
        )
        if cursor.rowcount == 0:
            continue
        queued.append(delivery.recipient)
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="queued",
            subject_type="delivery",
            subject_id=str(cursor.lastrowid),
            detail={
                "message_id": message_id,
                "recipient": delivery.recipient,
                "route": delivery.route,
            },
        )
    return queued


def _forward_again(
    conn: sqlite3.Connection, first_id: str, msg: NewMessage, *, now: dt.datetime, actor: str
) -> None:
    """A relayed package that came once more, asked for recipients the first copy was not:
    they are queued too (the first copy's onward bytes serve them)."""
    if not msg.forwards:
        return
    if msg.forward_blob is not None:
        conn.execute(
            "UPDATE messages SET forward_sha256 = ? WHERE id = ? AND forward_sha256 IS NULL",
            (msg.forward_blob.sha256, first_id),
        )
    priority = conn.execute("SELECT priority FROM messages WHERE id = ?", (first_id,)).fetchone()
    _queue(conn, first_id, msg.forwards, priority[0], now=now, actor=actor)


def insert_outbound_message_with_deliveries(
    conn: sqlite3.Connection,
    msg: NewMessage,
    deliveries: Sequence[NewDelivery],
    *,
    receipt_json: str | None,
    now: dt.datetime,
    actor: str,
    due_at: dt.datetime | None = None,
    client_reference: str | None = None,
) -> InsertResult:
    """Store an outbound message (already signed, blob committed) and one delivery per recipient.

    `due_at` orders deliveries of equal priority (default: now). A resubmission of the same
    envelope (idempotency key) returns the first message and creates no delivery.
    `client_reference`, the office system's own reference, is kept in the audit event.
    """
    echoed = {"client_reference": client_reference} if client_reference else {}
    if msg.direction != "out":
        raise ValueError("insert_outbound_message_with_deliveries takes direction 'out'")
    now_text = utc_text(now)
    if not _insert_message(conn, msg, state="accepted", receipt_json=receipt_json, now=now_text):
        first = _first_of_key(conn, msg)
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="duplicate",
            subject_type="message",
            subject_id=first.message_id,
            detail={"resent_as": msg.id, **echoed},
        )
        return first
    _queue(conn, msg.id, deliveries, msg.priority, now=now, actor=actor, due_at=due_at)
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="accepted",
        subject_type="message",
        subject_id=msg.id,
        detail={
            "direction": "out",
            "kind": msg.kind,
            "document_id": msg.document_id,
            "business_type": msg.business_type,
            "blob_sha256": msg.blob.sha256,
            "recipients": [d.recipient for d in deliveries],
            **echoed,
        },
    )
    return InsertResult(msg.id, False, receipt_json)


@attrs.frozen
class OutboundReply:
    """A status packet this node answers with (01, 02, 15): its message (blob already committed)
    and its one delivery, stored in the same transaction as what it answers."""

    message: NewMessage
    deliveries: tuple[NewDelivery, ...]


def insert_replies(
    conn: sqlite3.Connection, replies: Sequence[OutboundReply], *, now: dt.datetime, actor: str
) -> None:
    for reply in replies:
        insert_outbound_message_with_deliveries(
            conn, reply.message, reply.deliveries, receipt_json=None, now=now, actor=actor
        )


def insert_inbound_with_replies(
    conn: sqlite3.Connection,
    msg: NewMessage,
    replies: Sequence[OutboundReply],
    *,
    receipt_json: str | None,
    now: dt.datetime,
    actor: str,
    state: str = "received",
    inbox_for: Sequence[str] | None = None,
) -> InsertResult:
    """`insert_inbound_message`, and the automatic statuses it causes (01, or 02 for a refusal),
    in one job: a crash can no longer keep the message and lose its answer. A resent envelope
    (duplicate) queues no reply."""
    result = insert_inbound_message(
        conn, msg, receipt_json=receipt_json, now=now, actor=actor, state=state, inbox_for=inbox_for
    )
    if not result.duplicate:
        insert_replies(conn, replies, now=now, actor=actor)
    return result


def insert_inbound_status(
    conn: sqlite3.Connection,
    msg: NewMessage,
    status: NewStatus | None,
    *,
    receipt_json: str,
    now: dt.datetime,
    actor: str,
) -> InsertResult:
    """A status packet as a message (its bytes, its receipt) and as a line of the history of the
    document it reports on, together: neither exists without the other. The same bytes again
    from the same sender are a resend: the first receipt, and no second history line. A relay
    holds no such document (`status` None): the packet is kept and forwarded (`msg.forwards`)."""
    first = conn.execute(
        "SELECT id, receipt_json FROM messages WHERE kind = 'status' AND direction = 'in'"
        " AND sender = ? AND blob_sha256 = ?",
        (msg.sender, msg.blob.sha256),
    ).fetchone()
    if first is not None:
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="duplicate",
            subject_type="message",
            subject_id=first[0],
            detail={"resent_as": msg.id},
        )
        _forward_again(conn, first[0], msg, now=now, actor=actor)
        return InsertResult(message_id=first[0], duplicate=True, receipt_json=first[1])
    result = insert_inbound_message(conn, msg, receipt_json=receipt_json, now=now, actor=actor)
    if status is not None:
        record_status(conn, status, now=now, actor=actor)
    return result


@attrs.frozen
class RecallOutcome:
    """What `accept_recall` did: `withdrawn` (the target left the inbox unseen, 15 queued) or
    `handed_over` (the OrganIds whose office systems must answer), or nothing (a duplicate)."""

    result: InsertResult
    withdrawn: bool
    handed_over: tuple[str, ...]


def accept_recall(
    conn: sqlite3.Connection,
    msg: NewMessage,
    *,
    target_id: str,
    agreed: Sequence[OutboundReply],
    receipt_json: str,
    now: dt.datetime,
    actor: str,
    status: NewStatus | None = None,
) -> RecallOutcome:
    """A recall (revoke envelope, or status 13 with its `status` line) of inbound `target_id`.

    Decided inside the write transaction, so that a pickup cannot slip in between: if no office
    system has acknowledged the target, it becomes `withdrawn` and the `agreed` answers (15) are
    queued; otherwise the recall goes to the inboxes of the OrganIds that hold the target, and
    their office systems answer (AnswerRecall). A target already withdrawn is answered 15 again.
    """
    target = conn.execute(
        "SELECT state FROM messages WHERE id = ? AND direction = 'in'", (target_id,)
    ).fetchone()
    if target is None:
        raise ValueError(f"no inbound message {target_id}")
    picked = conn.execute(
        "SELECT 1 FROM inbox WHERE message_id = ? AND acked_at IS NOT NULL LIMIT 1", (target_id,)
    ).fetchone()
    if target[0] == "withdrawn" or picked is None:
        result = insert_inbound_message(
            conn, msg, receipt_json=receipt_json, now=now, actor=actor, inbox_for=()
        )
        if result.duplicate:
            return RecallOutcome(result, False, ())
        if status is not None:
            record_status(conn, status, now=now, actor=actor)
        withdraw_inbound(conn, target_id, now=now, actor=actor, detail={"recall": msg.id})
        insert_replies(conn, agreed, now=now, actor=actor)
        return RecallOutcome(result, True, ())
    holders = tuple(
        r[0]
        for r in conn.execute(
            "SELECT organ_id FROM inbox WHERE message_id = ? ORDER BY organ_id", (target_id,)
        )
    )
    result = insert_inbound_message(
        conn, msg, receipt_json=receipt_json, now=now, actor=actor, inbox_for=holders
    )
    if result.duplicate:
        return RecallOutcome(result, False, ())
    if status is not None:
        record_status(conn, status, now=now, actor=actor)
    return RecallOutcome(result, False, holders)


def recall_received(conn: sqlite3.Connection, organ_id: str, document_id: str) -> bool:
    """Whether a recall of the document (a revoke envelope, or a status 13) reached the inbox
    of `organ_id`: the only case in which its office system may answer 15 or 16."""
    row = conn.execute(
        "SELECT 1 FROM inbox i JOIN messages m ON m.id = i.message_id"
        " WHERE i.organ_id = ? AND m.document_id = ? AND m.direction = 'in'"
        " AND ((m.kind = 'envelope' AND m.business_type = ?)"
        " OR (m.kind = 'status' AND m.business_type = ?)) LIMIT 1",
        (
            organ_id,
            document_id,
            str(int(BusinessDocType.REVOKE)),
            StatusCode.RECALL_REQUESTED.value,
        ),
    ).fetchone()
    return row is not None


def withdraw_inbound(
    conn: sqlite3.Connection,
    message_id: str,
    *,
    now: dt.datetime,
    actor: str,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """An inbound envelope recalled by its sender: `received | delivered → withdrawn`, which also
    takes it out of every inbox. False when it was not in such a state (already withdrawn)."""
    return _message_transition(
        conn,
        message_id,
        "withdrawn",
        "direction = 'in' AND state IN ('received', 'delivered')",
        now=now,
        actor=actor,
        detail=detail,
    )


def mark_recalled(
    conn: sqlite3.Connection,
    message_id: str,
    *,
    now: dt.datetime,
    actor: str,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Our outbound envelope whose recall was sent: `accepted → recalled`. False when it was
    already recalled (an office system repeating RecallDocument)."""
    return _message_transition(
        conn,
        message_id,
        "recalled",
        "direction = 'out' AND kind = 'envelope' AND state = 'accepted'",
        now=now,
        actor=actor,
        detail=detail,
    )


def _message_transition(
    conn: sqlite3.Connection,
    message_id: str,
    to: str,
    when: str,
    *,
    now: dt.datetime,
    actor: str,
    detail: Mapping[str, Any] | None,
) -> bool:
    """Move a message to state `to` if it matches `when` (a fixed SQL condition), audited."""
    changed = conn.execute(
        f"UPDATE messages SET state = ? WHERE id = ? AND {when}", (to, message_id)
    ).rowcount
    if changed:
        append_audit(
            conn,
            at=now,
            actor=actor,
            action=to,
            subject_type="message",
            subject_id=message_id,
            detail=detail,
        )
    return bool(changed)


def note_duplicate(
    conn: sqlite3.Connection,
    message_id: str,
    *,
    now: dt.datetime,
    actor: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """A resubmission answered with the first message, found before any work was done."""
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="duplicate",
        subject_type="message",
        subject_id=message_id,
        detail=detail,
    )


# ---------------------------------------------------------------------------------------------
# Lookups (read jobs) for the pipelines and the faces


def outbound_by_key(
    conn: sqlite3.Connection, sender: str, document_id: str, business_type: str
) -> str | None:
    """The outbound envelope holding this idempotency key, if any."""
    row = conn.execute(
        "SELECT id FROM messages WHERE direction = 'out' AND kind = 'envelope' AND sender = ?"
        " AND document_id = ? AND business_type = ? AND state <> 'rejected'",
        (sender, document_id, business_type),
    ).fetchone()
    return str(row[0]) if row else None


def document_rank(conn: sqlite3.Connection, document_id: str) -> int:
    """The priority of the envelopes of a DocumentId (the highest): a status about a document
    travels at that document's priority (R9)."""
    row = conn.execute(
        "SELECT max(priority) FROM messages WHERE document_id = ? AND kind = 'envelope'",
        (document_id,),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def sent_to(conn: sqlite3.Connection, document_id: str, organ_id: str) -> str | None:
    """Our outbound envelope `document_id` that went to `organ_id`: the document itself
    (BussinessDocType 0) before a revoke or update of it, then the newest."""
    row = conn.execute(
        "SELECT m.id FROM messages m JOIN message_recipients r ON r.message_id = m.id"
        " WHERE m.direction = 'out' AND m.kind = 'envelope' AND m.document_id = ?"
        " AND r.organ_id = ?"
        " ORDER BY m.business_type = '0' DESC, m.created_at DESC, m.rowid DESC LIMIT 1",
        (document_id, organ_id),
    ).fetchone()
    return str(row[0]) if row else None


def received_from(conn: sqlite3.Connection, document_id: str, organ_id: str) -> str | None:
    """The envelope `document_id` that `organ_id` sent here and that we accepted: the document
    itself (BussinessDocType 0) before a revoke or update of it, then the newest."""
    row = conn.execute(
        "SELECT id FROM messages WHERE direction = 'in' AND kind = 'envelope'"
        " AND document_id = ? AND sender = ? AND state <> 'rejected'"
        " ORDER BY business_type = '0' DESC, created_at DESC, rowid DESC LIMIT 1",
        (document_id, organ_id),
    ).fetchone()
    return str(row[0]) if row else None


def latest_outbound(conn: sqlite3.Connection, document_id: str) -> MessageRecord | None:
    """The latest outbound envelope of a DocumentId, a new one (BussinessDocType 0) first."""
    row = conn.execute(
        "SELECT id FROM messages WHERE direction = 'out' AND kind = 'envelope'"
        " AND document_id = ? ORDER BY business_type = '0' DESC, created_at DESC, rowid DESC"
        " LIMIT 1",
        (document_id,),
    ).fetchone()
    return get_message(conn, row[0]) if row else None


def inbound_for(
    conn: sqlite3.Connection, organ_id: str, message_id: str | None, document_id: str | None
) -> MessageRecord | None:
    """The inbound envelope `organ_id` received, by message id or (latest, a new one first)
    DocumentId."""
    if message_id is not None:
        where, key = "m.id = ?", message_id
    else:
        where, key = "m.document_id = ?", document_id or ""
    row = conn.execute(
        "SELECT m.id FROM messages m JOIN message_recipients r ON r.message_id = m.id"
        f" WHERE {where} AND r.organ_id = ? AND m.direction = 'in' AND m.kind = 'envelope'"
        " ORDER BY m.business_type = '0' DESC, m.arrived_at DESC, m.rowid DESC LIMIT 1",
        (key, organ_id),
    ).fetchone()
    return get_message(conn, row[0]) if row else None


# ---------------------------------------------------------------------------------------------
# Deliveries

_DELIVERY_COLUMNS = (
    "id, message_id, recipient, route, state, attempts, next_attempt_at, priority_rank, due_at,"
    " last_error, sent_at, receipt_json, updated_at"
)


def deliveries_for(conn: sqlite3.Connection, message_id: str) -> list[DeliveryRecord]:
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ? ORDER BY id",
        (message_id,),
    )
    return [DeliveryRecord(*r) for r in rows]


def claim_due_deliveries(
    conn: sqlite3.Connection,
    *,
    now: dt.datetime,
    limit: int,
    actor: str = "dispatcher",
    route: str | None = None,
    exclude_routes: Sequence[str] = (),
) -> list[DeliveryRecord]:
    """Mark up to `limit` due deliveries `sending` (attempts + 1), best first.

    Order: priority_rank DESC (Hỏa tốc first), due_at, id — the `deliveries_due` index.
    Statuses about one document to one recipient leave one at a time, in the order they were
    queued: the receiver keeps history in arrival order, and 03 must not overtake 01 (R10).
    """
    now_text = utc_text(now)
    # One route's free slots are claimed for that route only: an idle route must not let a busy
    # one claim more than it can send (claimed rows would wait, counted as attempts, unstoppable).
    where_route, route_args = "", []
    if route is not None:
        where_route, route_args = " AND d.route = ?", [route]
    elif exclude_routes:
        where_route = f" AND d.route NOT IN ({_placeholders(exclude_routes)})"
        route_args = list(exclude_routes)
    rows = conn.execute(
        f"UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ?"
        f" WHERE id IN (SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id"
        f"  WHERE d.state IN ('queued', 'retry_wait') AND d.next_attempt_at <= ?{where_route}"
        f"  AND NOT (m.kind = 'status' AND EXISTS ("
        f"   SELECT 1 FROM deliveries e JOIN messages n ON n.id = e.message_id"
        f"   WHERE n.kind = 'status' AND n.document_id = m.document_id"
        f"   AND e.recipient = d.recipient AND e.id < d.id"
        f"   AND e.state IN ('queued', 'sending', 'retry_wait')))"
        f"  ORDER BY d.priority_rank DESC, d.due_at, d.id LIMIT ?)"
        f" RETURNING {_DELIVERY_COLUMNS}",
        (now_text, now_text, *route_args, limit),
    ).fetchall()
    # RETURNING gives no order guarantee; the dispatcher relies on this one.
    claimed = sorted(
        (DeliveryRecord(*r) for r in rows),
        key=lambda d: (-d.priority_rank, d.due_at, d.id),
    )
    for delivery in claimed:
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="sending",
            subject_type="delivery",
            subject_id=str(delivery.id),
            detail={"attempt": delivery.attempts, "route": delivery.route},
        )
    return claimed


def requeue_interrupted(
    conn: sqlite3.Connection,
    *,
    now: dt.datetime,
    actor: str = "store",
    only: Sequence[int] | None = None,
) -> int:
    """At start: deliveries left `sending` by a stopped or crashed node go back to `queued`.
    `only`: just these (sends whose outcome could not be recorded, the store being full)."""
    now_text = utc_text(now)
    where, args = "", []
    if only is not None:
        if not only:
            return 0
        where, args = f" AND id IN ({_placeholders(only)})", list(only)
    ids = [
        r[0]
        for r in conn.execute(
            "UPDATE deliveries SET state = 'queued', next_attempt_at = ?, updated_at = ?"
            f" WHERE state = 'sending'{where} RETURNING id",
            (now_text, now_text, *args),
        ).fetchall()
    ]
    for delivery_id in sorted(ids):
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="queued",
            subject_type="delivery",
            subject_id=str(delivery_id),
            detail={"reason": "interrupted while sending"},
        )
    return len(ids)


def _transition(
    conn: sqlite3.Connection,
    delivery_id: int,
    *,
    to: str,
    sets: str,
    params: tuple[Any, ...],
    now: dt.datetime,
    actor: str,
    detail: Mapping[str, Any],
) -> None:
    cursor = conn.execute(
        f"UPDATE deliveries SET state = ?, updated_at = ?, {sets}"
        " WHERE id = ? AND state = 'sending'",
        (to, utc_text(now), *params, delivery_id),
    )
    if cursor.rowcount != 1:
        raise StateConflict(f"delivery {delivery_id} is not sending")
    append_audit(
        conn,
        at=now,
        actor=actor,
        action=to,
        subject_type="delivery",
        subject_id=str(delivery_id),
        detail=detail,
    )


def mark_delivery_sent(
    conn: sqlite3.Connection,
    delivery_id: int,
    *,
    now: dt.datetime,
    receipt_json: str | None,
    actor: str = "dispatcher",
    ack_due: dt.datetime | None = None,
) -> None:
    """The peer's receipt arrived: `sending → sent`, with `sent_at` (R18) and when the
    recipient's acknowledgment is due (`ack_due`, R13's same working day)."""
    _transition(
        conn,
        delivery_id,
        to="sent",
        sets="sent_at = ?, receipt_json = ?, last_error = NULL, ack_due_at = ?",
        params=(utc_text(now), receipt_json, utc_text(ack_due) if ack_due else None),
        now=now,
        actor=actor,
        detail={},
    )


def mark_delivery_retry(
    conn: sqlite3.Connection,
    delivery_id: int,
    *,
    now: dt.datetime,
    next_at: dt.datetime,
    error: str,
    actor: str = "dispatcher",
) -> None:
    """A transient failure: `sending → retry_wait` until `next_at`."""
    _transition(
        conn,
        delivery_id,
        to="retry_wait",
        sets="next_attempt_at = ?, last_error = ?",
        params=(utc_text(next_at), error),
        now=now,
        actor=actor,
        detail={"error": error, "next_attempt_at": utc_text(next_at)},
    )


def mark_delivery_failed(
    conn: sqlite3.Connection,
    delivery_id: int,
    *,
    now: dt.datetime,
    error: str,
    actor: str = "dispatcher",
) -> None:
    """A permanent fault or the last attempt: `sending → failed` (an admin may requeue)."""
    _transition(
        conn,
        delivery_id,
        to="failed",
        sets="last_error = ?",
        params=(error,),
        now=now,
        actor=actor,
        detail={"error": error},
    )


def mark_delivery_undelivered(
    conn: sqlite3.Connection,
    delivery_id: int,
    *,
    now: dt.datetime,
    error: str,
    actor: str,
) -> bool:
    """The next hop took it and later said it could not pass it on: `sent → failed` (an admin
    may requeue). False if the delivery is not `sent` (already failed, requeued, cancelled)."""
    cursor = conn.execute(
        "UPDATE deliveries SET state = 'failed', last_error = ?, updated_at = ?"
        " WHERE id = ? AND state = 'sent'",
        (error, utc_text(now), delivery_id),
    )
    if cursor.rowcount != 1:
        return False
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="undelivered",
        subject_type="delivery",
        subject_id=str(delivery_id),
        detail={"error": error},
    )
    return True


# ---------------------------------------------------------------------------------------------
# Business statuses

_STATUS_COLUMNS = (
    "id, message_id, organ_id, code, description, staff_json, reported_at, received_at, blob_sha256"
)


def record_status(
    conn: sqlite3.Connection, status: NewStatus, *, now: dt.datetime, actor: str
) -> StatusRecord:
    """Add one business status (01–06, 13, 15, 16) to a message's history."""
    row = conn.execute(
        f"INSERT INTO statuses (message_id, organ_id, code, description, staff_json,"
        f" reported_at, received_at, blob_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        f" RETURNING {_STATUS_COLUMNS}",
        (
            status.message_id,
            status.organ_id,
            status.code,
            status.description,
            status.staff_json,
            utc_text(status.reported_at),
            utc_text(now),
            status.blob.sha256 if status.blob else None,
        ),
    ).fetchone()
    if status.code in ("01", "02"):
        # The first acknowledgment of a delivery, kept with it for R22's on-time count.
        conn.execute(
            "UPDATE deliveries SET acked_at = ?, ack_code = ? WHERE message_id = ?"
            " AND recipient = ? AND acked_at IS NULL",
            (utc_text(now), status.code, status.message_id, status.organ_id),
        )
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="status",
        subject_type="message",
        subject_id=status.message_id,
        detail={"organ_id": status.organ_id, "code": status.code, "status_id": row[0]},
    )
    return StatusRecord(*row)


def status_history(conn: sqlite3.Connection, message_id: str) -> list[StatusRecord]:
    rows = conn.execute(
        f"SELECT {_STATUS_COLUMNS} FROM statuses WHERE message_id = ? ORDER BY id",
        (message_id,),
    )
    return [StatusRecord(*r) for r in rows]


def latest_statuses(conn: sqlite3.Connection, message_id: str) -> list[StatusRecord]:
    """The latest status per reporting OrganId, by OrganId."""
    rows = conn.execute(
        f"SELECT {_STATUS_COLUMNS} FROM statuses WHERE id IN ("
        " SELECT max(id) FROM statuses WHERE message_id = ? GROUP BY organ_id)"
        " ORDER BY organ_id",
        (message_id,),
    )
    return [StatusRecord(*r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Office-system pickup


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def pending_inbox(
    conn: sqlite3.Connection, organ_ids: Iterable[str], limit: int
) -> list[InboxItem]:
    """Received, not yet acknowledged envelopes for these hosted OrganIds: the most urgent first
    (R9: Hỏa tốc, Thượng khẩn, Khẩn, then the rest; 4 ranks as Hỏa tốc), oldest first within."""
    organs = list(dict.fromkeys(organ_ids))
    if not organs:
        return []
    rows = conn.execute(
        f"SELECT i.organ_id, i.legal_received_at, {', '.join('m.' + c for c in _MESSAGE_FIELDS)}"
        f" FROM inbox i JOIN messages m ON m.id = i.message_id"
        f" WHERE i.acked_at IS NULL AND i.organ_id IN ({_placeholders(organs)})"
        f" AND m.state = 'received'"
        f" ORDER BY min(m.priority, 3) DESC, m.arrived_at, m.rowid, i.organ_id LIMIT ?",
        (*organs, limit),
    ).fetchall()
    return [InboxItem(r[0], _message(conn, r[2:]), r[1]) for r in rows]


def mark_received(
    conn: sqlite3.Connection,
    message_ids: Iterable[str],
    organ_ids: Iterable[str],
    *,
    now: dt.datetime,
    actor: str,
) -> list[str]:
    """Acknowledge pickup for these OrganIds; a message all of whose pickers acknowledged becomes
    `delivered`. Returns the ids newly acknowledged (unknown or foreign ids are ignored)."""
    ids = list(dict.fromkeys(message_ids))
    organs = list(dict.fromkeys(organ_ids))
    if not ids or not organs:
        return []
    now_text = utc_text(now)
    acked = conn.execute(
        f"UPDATE inbox SET acked_at = ?, acked_by = ?"
        f" WHERE acked_at IS NULL AND message_id IN ({_placeholders(ids)})"
        f" AND organ_id IN ({_placeholders(organs)}) RETURNING message_id, organ_id",
        (now_text, actor, *ids, *organs),
    ).fetchall()
    done: list[str] = []
    for message_id in dict.fromkeys(m for m, _ in sorted(acked)):
        organs_acked = sorted(o for m, o in acked if m == message_id)
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="picked_up",
            subject_type="message",
            subject_id=message_id,
            detail={"organ_ids": organs_acked},
        )
        waiting = conn.execute(
            "SELECT count(*) FROM inbox WHERE message_id = ? AND acked_at IS NULL", (message_id,)
        ).fetchone()[0]
        if waiting == 0:
            changed = conn.execute(
                "UPDATE messages SET state = 'delivered' WHERE id = ? AND state = 'received'",
                (message_id,),
            ).rowcount
            if changed:
                append_audit(
                    conn,
                    at=now,
                    actor=actor,
                    action="delivered",
                    subject_type="message",
                    subject_id=message_id,
                )
        done.append(message_id)
    return done
