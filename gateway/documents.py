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
from collections.abc import Sequence

import attrs

from edxml.findings import Finding, FindingCode, Severity
from edxml.model import Envelope
from gateway.store import (
    InsertResult,
    NewMessage,
    OutboundReply,
    append_audit,
    insert_inbound_with_replies,
    insert_replies,
    received_from,
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
        target = received_from(conn, change.document_id, msg.sender)
        if target is None or target == msg.id:
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
            (target, change.organ_id, change.change, msg.id, utc_text(now)),
        )
        append_audit(
            conn,
            at=now,
            actor=actor,
            action=change.change,
            subject_type="message",
            subject_id=target,
            detail={"by": msg.id, "organ_id": change.organ_id},
        )
    return result


DUPLICATE_NUMBER = FindingCode(
    "DuplicateNumber",
    Severity.WARNING,
    "{sender} already used number {number} of {year} for another document ({others})",
    "{sender} đã dùng số, ký hiệu {number} năm {year} cho văn bản khác ({others})",
)


def duplicate_numbers(conn: sqlite3.Connection, env: Envelope, *, direction: str) -> list[Finding]:
    """R21: DuplicateNumber when the sender already used this new document's number and
    notation this year for another document in `direction` (reported, never merged). A
    revoke, update or replacement carries its target's number and is not checked."""
    h = env.header
    day = h.promulgation_info.promulgation_date
    if int(env.business_type) != 0 or not h.code.code_number or day is None:
        return []
    rows = conn.execute(
        "SELECT DISTINCT document_id FROM messages WHERE kind = 'envelope' AND direction = ?"
        " AND sender = ? AND code_number = ? AND code_notation IS ?"
        " AND substr(promulgation_date, 1, 4) = ? AND business_type = '0'"
        " AND state <> 'rejected' AND document_id <> ? ORDER BY rowid",
        (
            direction,
            h.from_.organ_id,
            h.code.code_number,
            h.code.code_notation or None,
            str(day.year),
            h.document_id,
        ),
    )
    others = [str(r[0]) for r in rows]
    if not others:
        return []
    return [
        DUPLICATE_NUMBER(
            "/edXMLEnvelope/edXMLHeader/MessageHeader/Code",
            sender=h.from_.organ_id,
            number=f"{h.code.code_number}/{h.code.code_notation}",
            year=day.year,
            others=", ".join(others),
        )
    ]


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
    replies: Sequence[OutboundReply] = (),
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
    insert_replies(conn, replies, now=at, actor=actor)
    return refusal_id
