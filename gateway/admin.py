"""Admin changes to deliveries (`gateway requeue`, `gateway cancel`), safe beside the daemon.

A CLI process takes SQLite's write lock itself (`BEGIN IMMEDIATE`, waiting while the daemon's
writer holds it) for one small transaction, and only moves deliveries between states where no
send is in flight: the dispatcher's own transitions start from `sending`, so neither side can
overwrite the other. Each change is audited with the operator's name.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs

from gateway import store

T = TypeVar("T")

# From where an operator may move a delivery, and to where.
REQUEUE_FROM = ("failed", "cancelled")
CANCEL_FROM = ("queued", "retry_wait", "failed")


class AdminRefused(Exception):
    """The delivery is not in a state the change applies to (or does not exist)."""


@attrs.frozen
class Changed:
    delivery_id: int
    message_id: str
    recipient: str
    before: str
    after: str


def operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _targets(
    conn: sqlite3.Connection, key: str, states: tuple[str, ...]
) -> list[tuple[int, str, str, str]]:
    """Deliveries named by a delivery id, a message id or a DocumentId, in one of `states`."""
    marks = ",".join("?" * len(states))
    args: list[object]
    if key.isdigit():
        where, args = "d.id = ?", [int(key)]
    else:
        where, args = "(d.message_id = ? OR m.document_id = ?)", [key, key]
    rows = conn.execute(
        "SELECT d.id, d.message_id, d.recipient, d.state FROM deliveries d "
        f"JOIN messages m ON m.id = d.message_id WHERE {where} AND d.state IN ({marks}) "
        "ORDER BY d.id",
        (*args, *states),
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def _change(
    db: Path, key: str, *, allowed: tuple[str, ...], to: str, now: dt.datetime, actor: str
) -> list[Changed]:
    conn = _connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        targets = _targets(conn, key, allowed)
        if not targets:
            conn.execute("ROLLBACK")
            raise AdminRefused(f"no delivery of {key} is {' or '.join(allowed)}")
        now_text = store.utc_text(now)
        changed = []
        for delivery_id, message_id, recipient, before in targets:
            if to == "queued":
                conn.execute(
                    "UPDATE deliveries SET state = 'queued', next_attempt_at = ?, attempts = 0,"
                    " last_error = NULL, updated_at = ? WHERE id = ?",
                    (now_text, now_text, delivery_id),
                )
            else:
                conn.execute(
                    "UPDATE deliveries SET state = ?, updated_at = ? WHERE id = ?",
                    (to, now_text, delivery_id),
                )
            store.append_audit(
                conn,
                at=now,
                actor=actor,
                action="requeued" if to == "queued" else to,
                subject_type="delivery",
                subject_id=str(delivery_id),
                detail={"from": before},
            )
            changed.append(Changed(delivery_id, message_id, recipient, before, to))
        conn.execute("COMMIT")
        return changed
    finally:
        conn.close()


def requeue(db: Path, key: str, *, now: dt.datetime, actor: str) -> list[Changed]:
    """Failed (or cancelled) deliveries go back to the queue with a fresh retry budget."""
    return _change(db, key, allowed=REQUEUE_FROM, to="queued", now=now, actor=actor)


def cancel(db: Path, key: str, *, now: dt.datetime, actor: str) -> list[Changed]:
    """Deliveries not in flight are cancelled; a send already under way finishes first."""
    return _change(db, key, allowed=CANCEL_FROM, to="cancelled", now=now, actor=actor)


def write(db: Path, job: Callable[[sqlite3.Connection], T]) -> T:
    """Run `job` in one transaction under SQLite's write lock (waiting for the daemon's writer),
    for CLI changes that are not delivery moves (directory import, number issue)."""
    conn = _connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = job(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()
