"""Store jobs about how documents relate (floor 2, beside the store): replies and targets (R16,
R14), what an update or a replacement did to an earlier document (R14), numbers used twice
(R21), and refusals kept without their bytes (R1). Each runs inside a store transaction.

An update (BussinessDocType 2) or replacement (3) never rewrites the earlier message: its exact
bytes and verdict stay as received. The newer envelope is a message of its own, linked to the
target (`document_links`), and each hosted recipient's view of the target changes in
`document_changes`: `updated` (a newer version exists), `superseded` (replaced for that agency),
`removed` (the update took that agency off the recipients).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence

import attrs

from gateway.store import (
    InsertResult,
    NewMessage,
    OutboundReply,
    append_audit,
    insert_inbound_with_replies,
    insert_outbound_message_with_deliveries,
    utc_text,
)


@attrs.frozen
class Change:
    """What the message being stored does to an earlier `document_id` of the same sender, for
    one hosted recipient."""

    document_id: str
    organ_id: str
    change: str  # updated | superseded | removed


@attrs.frozen
class Link:
    message_id: str
    kind: str
    document_id: str
    direction: str
    sender: str
    subject: str | None
    arrived_at: str


def insert_with_changes(
    conn: sqlite3.Connection,
    msg: NewMessage,
    replies: Sequence[OutboundReply],
    changes: Sequence[Change],
    *,
    receipt_json: str | None,
    now: dt.datetime,
    actor: str,
    inbox_for: Sequence[str] | None = None,
) -> InsertResult:
    """`insert_inbound_with_replies`, and the changes it makes to earlier documents, in one
    transaction. A change whose target this sender never sent here is skipped (and audited)."""
    result = insert_inbound_with_replies(
        conn, msg, replies, receipt_json=receipt_json, now=now, actor=actor, inbox_for=inbox_for
    )
    if result.duplicate:
        return result
    for change in changes:
        target = conn.execute(
            "SELECT id FROM messages WHERE direction = 'in' AND kind = 'envelope'"
            " AND document_id = ? AND sender = ? AND state <> 'rejected' AND id <> ?"
            " ORDER BY business_type = '0' DESC, rowid LIMIT 1",
            (change.document_id, msg.sender, msg.id),
        ).fetchone()
        if target is None:
            append_audit(
                conn,
                at=now,
                actor=actor,
                action="change-without-target",
                subject_type="message",
                subject_id=msg.id,
                detail={"document_id": change.document_id, "change": change.change},
            )
            continue
        conn.execute(
            "INSERT OR IGNORE INTO document_changes (message_id, organ_id, change,"
            " by_message_id, at) VALUES (?, ?, ?, ?, ?)",
            (target[0], change.organ_id, change.change, msg.id, utc_text(now)),
        )
        append_audit(
            conn,
            at=now,
            actor=actor,
            action=change.change,
            subject_type="message",
            subject_id=str(target[0]),
            detail={"by": msg.id, "organ_id": change.organ_id},
        )
    return result


@attrs.frozen
class NumberKey:
    """What a new document claims: its sender's number and notation in one year (R21)."""

    sender: str
    code_number: str | None
    code_notation: str | None
    year: str | None
    document_id: str


def same_number(conn: sqlite3.Connection, key: NumberKey, *, direction: str) -> list[str]:
    """DocumentIds of other new documents (BussinessDocType 0) of the sender with the same
    number, notation and year (R21): one agency's number is unique within a year."""
    if not key.code_number or not key.year:
        return []
    rows = conn.execute(
        "SELECT DISTINCT document_id FROM messages WHERE kind = 'envelope' AND direction = ?"
        " AND sender = ? AND code_number = ? AND code_notation IS ?"
        " AND substr(promulgation_date, 1, 4) = ? AND business_type = '0'"
        " AND state <> 'rejected' AND document_id <> ? ORDER BY rowid",
        (direction, key.sender, key.code_number, key.code_notation, key.year, key.document_id),
    )
    return [str(r[0]) for r in rows]


def links_to(conn: sqlite3.Connection, document_id: str) -> list[Link]:
    """Messages that refer to `document_id`: its replies, revokes, updates and replacements."""
    rows = conn.execute(
        "SELECT l.message_id, l.kind, l.document_id, m.direction, m.sender, m.subject,"
        " m.arrived_at FROM document_links l JOIN messages m ON m.id = l.message_id"
        " WHERE l.document_id = ? ORDER BY m.arrived_at, m.rowid",
        (document_id,),
    )
    return [Link(*r) for r in rows]


def links_from(conn: sqlite3.Connection, message_id: str) -> list[tuple[str, str]]:
    """(kind, DocumentId) this message refers to."""
    rows = conn.execute(
        "SELECT kind, document_id FROM document_links WHERE message_id = ?"
        " ORDER BY kind, document_id",
        (message_id,),
    )
    return [(str(k), str(d)) for k, d in rows]


def changes_of(conn: sqlite3.Connection, message_id: str) -> list[tuple[str, str, str, str]]:
    """(organ_id, change, by_message_id, at) for an earlier document."""
    rows = conn.execute(
        "SELECT organ_id, change, by_message_id, at FROM document_changes WHERE message_id = ?"
        " ORDER BY at, organ_id",
        (message_id,),
    )
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def insert_refusal(
    conn: sqlite3.Connection,
    *,
    at: dt.datetime,
    direction: str,
    sender: str,
    document_id: str,
    code: str,
    reason_en: str,
    reason_vi: str,
    actor: str,
    replies: Iterable[OutboundReply] = (),
) -> int:
    """Record that a document was refused without keeping it (R1: nothing of a secret document
    is stored but the refusal), with its 02 replies; the refusal's id."""
    cursor = conn.execute(
        "INSERT INTO refusals (at, direction, sender, document_id, code, reason_en, reason_vi,"
        " actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (utc_text(at), direction, sender, document_id, code, reason_en, reason_vi, actor),
    )
    refusal_id = int(cursor.lastrowid or 0)
    append_audit(
        conn,
        at=at,
        actor=actor,
        action="refused-unkept",
        subject_type="refusal",
        subject_id=str(refusal_id),
        detail={"direction": direction, "sender": sender, "document_id": document_id, "code": code},
    )
    for reply in replies:
        insert_outbound_message_with_deliveries(
            conn, reply.message, reply.deliveries, receipt_json=None, now=at, actor=actor
        )
    return refusal_id
