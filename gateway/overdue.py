"""R16: documents whose reply deadline (DueDate) has passed with no reply linked to them (floor 4).

A reply is an envelope whose ResponseFor names the document (`document_links`, kind
response_for). Inbound: a document sent to an agency hosted here that none of our outbound
envelopes answers yet. Outbound: a document we sent whose recipients have not answered; each
recipient that has not is listed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import attrs


@attrs.frozen
class Overdue:
    direction: str  # in: we owe the reply; out: we wait for it
    message_id: str
    document_id: str
    sender: str
    subject: str | None
    due_date: str
    days_late: int
    waiting_for: tuple[str, ...]  # OrganIds that have not replied

    def to_json(self) -> dict[str, object]:
        return {**attrs.asdict(self), "waiting_for": list(self.waiting_for)}


def overdue(conn: sqlite3.Connection, today: dt.date) -> list[Overdue]:
    """Every document due before `today` (a date in Vietnam time) and not answered, by due date."""
    rows = conn.execute(
        "SELECT m.id, m.direction, m.document_id, m.sender, m.subject, m.due_date"
        " FROM messages m WHERE m.kind = 'envelope' AND m.business_type = '0'"
        " AND m.due_date IS NOT NULL AND m.due_date < ?"
        " AND m.state IN ('received', 'delivered', 'accepted')"
        " ORDER BY m.due_date, m.rowid",
        (today.isoformat(),),
    ).fetchall()
    found = []
    for message_id, direction, document_id, sender, subject, due in rows:
        # Who answered: senders of envelopes, in the other direction, linked as replies.
        answered = {
            str(r[0])
            for r in conn.execute(
                "SELECT m.sender FROM document_links l JOIN messages m ON m.id = l.message_id"
                " WHERE l.kind = 'response_for' AND l.document_id = ? AND m.direction <> ?"
                " AND m.state <> 'rejected'",
                (document_id, direction),
            )
        }
        recipients = [
            str(r[0])
            for r in conn.execute(
                "SELECT organ_id FROM message_recipients WHERE message_id = ? ORDER BY organ_id",
                (message_id,),
            )
        ]
        if direction == "in":
            # We owe it once: any hosted recipient's reply settles it for that recipient.
            hosted = [
                str(r[0])
                for r in conn.execute(
                    "SELECT organ_id FROM inbox WHERE message_id = ? ORDER BY organ_id",
                    (message_id,),
                )
            ]
            waiting = tuple(o for o in hosted if o not in answered)
        else:
            waiting = tuple(o for o in recipients if o not in answered)
        if not waiting:
            continue
        late = (today - dt.date.fromisoformat(due)).days
        found.append(
            Overdue(direction, message_id, document_id, sender, subject, due, late, waiting)
        )
    return found
