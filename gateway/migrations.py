"""The store's schema, as explicit DDL per version, and the code that applies it.

The version lives in `PRAGMA user_version`. Every pending migration runs in ONE `BEGIN IMMEDIATE`
transaction together with the new `user_version`, so an upgrade either happens whole or not at all;
a failed upgrade leaves the database file byte-identical. Before any migration touches an existing
non-empty database, a copy is taken with the sqlite3 backup API next to it (`<db>.pre-v<N>.bak`, N
the first version about to be applied). A brand-new database is built under a temp name and renamed
into place, so a crash during creation never leaves a half-made store at the configured path.

sqlite-utils 4.2.1 has a `Migrations` helper, but it commits each migration separately (a failure
in the third leaves the first two applied) and it opens its own deferred transactions; the
all-or-nothing rule above is easier to keep with plain DDL and `user_version`.

States (design.md §5), enforced by CHECK constraints:
- inbound message: `received` (stored, not picked up) → `delivered` (every hosted recipient's office
  system acknowledged), `rejected` (refused, 02 sent back), `withdrawn` (recalled, R14);
- outbound message: `accepted` (signed, committed, one delivery per recipient) → `recalled`;
  per-recipient progress lives in `deliveries`;
- delivery: `queued → sending → sent`, `retry_wait` between failed attempts, `failed` (final,
  resumable by requeue), `cancelled` (admin).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import attrs

from gateway.blobs import fsync_dir

__all__ = [
    "CURRENT_VERSION",
    "MIGRATIONS",
    "Migration",
    "MigrationError",
    "MigrationReport",
    "apply_migrations",
    "split_statements",
]


@attrs.frozen
class Migration:
    """One schema version: the DDL that brings version - 1 to `version`."""

    version: int
    name: str
    ddl: str


@attrs.frozen
class MigrationReport:
    from_version: int
    to_version: int
    backup: Path | None
    created: bool


class MigrationError(Exception):
    """A migration failed (the database is unchanged) or the database is newer than this code."""


_V1 = """
CREATE TABLE messages (
    id                TEXT PRIMARY KEY,
    direction         TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind              TEXT NOT NULL CHECK (kind IN ('envelope', 'status')),
    sender            TEXT NOT NULL,
    document_id       TEXT NOT NULL,
    business_type     TEXT NOT NULL,
    code_number       TEXT,
    code_notation     TEXT,
    promulgation_date TEXT,
    subject           TEXT,
    priority          INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4),
    state             TEXT NOT NULL CHECK (
        (direction = 'in' AND state IN ('received', 'delivered', 'rejected', 'withdrawn'))
        OR (direction = 'out' AND state IN ('accepted', 'recalled'))
    ),
    blob_sha256       TEXT NOT NULL CHECK (length(blob_sha256) = 64),
    size              INTEGER NOT NULL CHECK (size >= 0),
    verdict_json      TEXT NOT NULL DEFAULT '{}',
    receipt_json      TEXT,
    arrived_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL
) STRICT;

-- The idempotency key: a resent envelope finds the first row (and its receipt) instead of a twin.
CREATE UNIQUE INDEX messages_idempotency
    ON messages (direction, sender, document_id, business_type, kind)
    WHERE kind = 'envelope';
CREATE INDEX messages_document ON messages (document_id);
CREATE INDEX messages_arrived ON messages (direction, state, arrived_at);

CREATE TABLE message_recipients (
    message_id TEXT NOT NULL REFERENCES messages (id),
    organ_id   TEXT NOT NULL,
    PRIMARY KEY (message_id, organ_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX message_recipients_organ ON message_recipients (organ_id);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages (id),
    recipient       TEXT NOT NULL,
    route           TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (
        state IN ('queued', 'sending', 'sent', 'retry_wait', 'failed', 'cancelled')
    ),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    priority_rank   INTEGER NOT NULL CHECK (priority_rank BETWEEN 0 AND 3),
    due_at          TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    receipt_json    TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (message_id, recipient)
) STRICT;
-- Serves the dispatcher's "next due" scan in its ORDER BY, over waiting rows only.
CREATE INDEX deliveries_due ON deliveries (priority_rank DESC, due_at, id)
    WHERE state IN ('queued', 'retry_wait');
CREATE INDEX deliveries_state ON deliveries (state, route);

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    detail_json  TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
) STRICT;
CREATE INDEX audit_subject ON audit (subject_type, subject_id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only');
END;
"""

_V2 = """
CREATE TABLE statuses (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages (id),
    organ_id    TEXT NOT NULL,
    code        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    staff_json  TEXT NOT NULL DEFAULT '{}',
    reported_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    blob_sha256 TEXT CHECK (blob_sha256 IS NULL OR length(blob_sha256) = 64)
) STRICT;
-- History in order and the latest per (message, reporter) both come from this index.
CREATE INDEX statuses_by_reporter ON statuses (message_id, organ_id, id);

-- Pickup by the office system (ReceiveDocuments / MarkReceived), per hosted recipient OrganId.
CREATE TABLE inbox (
    message_id TEXT NOT NULL REFERENCES messages (id),
    organ_id   TEXT NOT NULL,
    acked_at   TEXT,
    acked_by   TEXT,
    PRIMARY KEY (message_id, organ_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX inbox_pending ON inbox (organ_id, message_id) WHERE acked_at IS NULL;
"""

# A refused envelope must not hold the idempotency key: the sender's corrected resend of the same
# (sender, DocumentId, business type) has to be received, not answered as a duplicate of the
# refusal. Rows stored before v3 carry a unique "<type>:rejected:<id>" business type for that
# reason; they get their real business type back here.
_V3 = """
DROP INDEX messages_idempotency;
CREATE UNIQUE INDEX messages_idempotency
    ON messages (direction, sender, document_id, business_type, kind)
    WHERE kind = 'envelope' AND state <> 'rejected';
UPDATE messages SET business_type = substr(business_type, 1, instr(business_type, ':') - 1)
    WHERE state = 'rejected' AND business_type LIKE '%:rejected:%';
"""

# A status packet resent by a peer that never saw our receipt (a crash, a timeout) carries the
# very same bytes: it is the same report and must not add a second line to the history.
_V4 = """
CREATE UNIQUE INDEX messages_status_bytes
    ON messages (sender, blob_sha256) WHERE kind = 'status' AND direction = 'in';
"""

# The regulation's rules (issue #5). Columns the statistics count without parsing the verdict;
# the legal receipt time per hosted recipient (each agency keeps its own office hours); links
# between documents (replies, updates, replacements); the agency directory; document numbering.
_V5 = """
ALTER TABLE messages ADD COLUMN legal_validity TEXT
    CHECK (legal_validity IS NULL OR legal_validity IN ('legal', 'reference-only', 'broken'));
ALTER TABLE messages ADD COLUMN paper_required INTEGER NOT NULL DEFAULT 0
    CHECK (paper_required IN (0, 1));
ALTER TABLE messages ADD COLUMN late_issue INTEGER NOT NULL DEFAULT 0 CHECK (late_issue IN (0, 1));
ALTER TABLE messages ADD COLUMN due_date TEXT;
-- The Vietnam date of arrival, so that statistics group by day, month, year without date maths.
ALTER TABLE messages ADD COLUMN arrived_day TEXT;
UPDATE messages SET arrived_day = strftime('%Y-%m-%d', arrived_at, '+7 hours');
UPDATE messages SET legal_validity = json_extract(verdict_json, '$.legal_validity')
    WHERE kind = 'envelope'
      AND json_extract(verdict_json, '$.legal_validity') IN ('legal', 'reference-only', 'broken');
-- Covers what the statistics read of a message, so a period is counted from the index alone.
CREATE INDEX messages_period ON messages (kind, direction, arrived_day, business_type, sender,
    state, paper_required, late_issue, legal_validity, id);
CREATE INDEX messages_number ON messages (sender, code_number, code_notation,
    substr(promulgation_date, 1, 4)) WHERE kind = 'envelope';
CREATE INDEX messages_due ON messages (due_date) WHERE due_date IS NOT NULL;

-- R19 per recipient, and R13's "same day": the end of the working day of the legal receipt (for
-- rows before v5: 17:00 Vietnam time of their arrival day).
ALTER TABLE inbox ADD COLUMN legal_received_at TEXT;
ALTER TABLE inbox ADD COLUMN ack_due_at TEXT;
UPDATE inbox SET legal_received_at =
    (SELECT arrived_at FROM messages m WHERE m.id = inbox.message_id);
UPDATE inbox SET ack_due_at =
    strftime('%Y-%m-%d', legal_received_at, '+7 hours') || 'T10:00:00.000000Z';
-- When the recipient's acknowledgment (01 or 02) of a sent delivery is due (same rule), when
-- it came and which it was (kept with the delivery, as the statuses history is, for statistics).
ALTER TABLE deliveries ADD COLUMN ack_due_at TEXT;
ALTER TABLE deliveries ADD COLUMN acked_at TEXT;
ALTER TABLE deliveries ADD COLUMN ack_code TEXT
    CHECK (ack_code IS NULL OR ack_code IN ('01', '02'));
UPDATE deliveries SET ack_due_at = strftime('%Y-%m-%d', sent_at, '+7 hours') || 'T10:00:00.000000Z'
    WHERE sent_at IS NOT NULL;
UPDATE deliveries SET
    acked_at = (SELECT min(s.received_at) FROM statuses s WHERE s.message_id = deliveries.message_id
                AND s.organ_id = deliveries.recipient AND s.code IN ('01', '02')),
    ack_code = (SELECT s.code FROM statuses s WHERE s.message_id = deliveries.message_id
                AND s.organ_id = deliveries.recipient AND s.code IN ('01', '02')
                ORDER BY s.received_at, s.id LIMIT 1);
CREATE INDEX deliveries_ack ON deliveries (message_id, ack_code, acked_at, ack_due_at);

CREATE TABLE document_links (
    message_id  TEXT NOT NULL REFERENCES messages (id),
    kind        TEXT NOT NULL CHECK (kind IN ('response_for', 'updates', 'replaces', 'revokes')),
    document_id TEXT NOT NULL,
    PRIMARY KEY (message_id, kind, document_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX document_links_target ON document_links (document_id, kind);

-- R14: what an update or a replacement did to an earlier document, per hosted recipient.
CREATE TABLE document_changes (
    message_id    TEXT NOT NULL REFERENCES messages (id),
    organ_id      TEXT NOT NULL,
    change        TEXT NOT NULL CHECK (change IN ('updated', 'superseded', 'removed')),
    by_message_id TEXT NOT NULL REFERENCES messages (id),
    at            TEXT NOT NULL,
    PRIMARY KEY (message_id, organ_id, by_message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX document_changes_by ON document_changes (by_message_id);

CREATE TABLE agencies (
    organ_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    parent     TEXT,
    level      INTEGER CHECK (level IS NULL OR level BETWEEN 1 AND 4),
    kind       TEXT,
    route      TEXT,
    valid_from TEXT,
    valid_to   TEXT,
    successor  TEXT,
    source     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX agencies_parent ON agencies (parent);

-- What was refused and not kept (a state-secret document: only the fact of its refusal).
CREATE TABLE refusals (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    sender      TEXT NOT NULL,
    document_id TEXT NOT NULL,
    code        TEXT NOT NULL,
    reason_en   TEXT NOT NULL,
    reason_vi   TEXT NOT NULL,
    actor       TEXT NOT NULL
) STRICT;
CREATE INDEX refusals_at ON refusals (at);

-- R22: statistics kept as they happen, per agency, Vietnam day and direction, by triggers on
-- the rows they count, so no write path can forget them and a report reads a few thousand
-- rows instead of every message. `gateway.stats.recount` computes the same from the rows.
CREATE TABLE stat_days (
    agency         TEXT NOT NULL,
    day            TEXT NOT NULL,
    direction      TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    documents      INTEGER NOT NULL DEFAULT 0,
    deliveries     INTEGER NOT NULL DEFAULT 0,
    rejected       INTEGER NOT NULL DEFAULT 0,
    recalled       INTEGER NOT NULL DEFAULT 0,
    withdrawn      INTEGER NOT NULL DEFAULT 0,
    on_time        INTEGER NOT NULL DEFAULT 0,
    late           INTEGER NOT NULL DEFAULT 0,
    legal          INTEGER NOT NULL DEFAULT 0,
    reference_only INTEGER NOT NULL DEFAULT 0,
    broken         INTEGER NOT NULL DEFAULT 0,
    paper_required INTEGER NOT NULL DEFAULT 0,
    late_issue     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agency, day, direction)
) STRICT, WITHOUT ROWID;
INSERT INTO stat_days (agency, day, direction, documents, recalled, paper_required, late_issue)
SELECT sender, arrived_day, 'out', count(*), sum(state = 'recalled'), sum(paper_required),
       sum(late_issue)
FROM messages WHERE direction = 'out' AND kind = 'envelope' AND business_type = '0'
GROUP BY 1, 2;
INSERT INTO stat_days (agency, day, direction, deliveries, rejected, on_time, late)
SELECT m.sender, m.arrived_day, 'out', count(*), total(d.ack_code IS '02'),
       total(d.acked_at IS NOT NULL AND (d.ack_due_at IS NULL OR d.acked_at <= d.ack_due_at)),
       total(d.acked_at IS NOT NULL AND d.ack_due_at IS NOT NULL AND d.acked_at > d.ack_due_at)
FROM messages m JOIN deliveries d ON d.message_id = m.id
WHERE m.direction = 'out' AND m.kind = 'envelope' AND m.business_type = '0'
GROUP BY 1, 2
ON CONFLICT (agency, day, direction) DO UPDATE SET deliveries = excluded.deliveries,
    rejected = excluded.rejected, on_time = excluded.on_time, late = excluded.late;
INSERT INTO stat_days (agency, day, direction, documents, rejected, withdrawn, legal,
    reference_only, broken, paper_required, late_issue, on_time, late)
SELECT r.organ_id, m.arrived_day, 'in', count(*), total(m.state = 'rejected'),
       total(m.state = 'withdrawn'), total(m.legal_validity IS 'legal'),
       total(m.legal_validity IS 'reference-only'), total(m.legal_validity IS 'broken'),
       total(m.paper_required), total(m.late_issue),
       total(i.acked_at IS NOT NULL AND (i.ack_due_at IS NULL OR i.acked_at <= i.ack_due_at)),
       total(i.acked_at IS NOT NULL AND i.ack_due_at IS NOT NULL AND i.acked_at > i.ack_due_at)
FROM messages m JOIN message_recipients r ON r.message_id = m.id
LEFT JOIN inbox i ON i.message_id = m.id AND i.organ_id = r.organ_id
WHERE m.direction = 'in' AND m.kind = 'envelope' AND m.business_type = '0'
GROUP BY 1, 2;

CREATE TRIGGER stat_sent AFTER INSERT ON messages
WHEN NEW.direction = 'out' AND NEW.kind = 'envelope' AND NEW.business_type = '0'
BEGIN
    INSERT INTO stat_days (agency, day, direction, documents, recalled, paper_required,
        late_issue)
    VALUES (NEW.sender, NEW.arrived_day, 'out', 1, NEW.state = 'recalled', NEW.paper_required,
        NEW.late_issue)
    ON CONFLICT (agency, day, direction) DO UPDATE SET documents = documents + 1,
        recalled = recalled + excluded.recalled,
        paper_required = paper_required + excluded.paper_required,
        late_issue = late_issue + excluded.late_issue;
END;
CREATE TRIGGER stat_received AFTER INSERT ON message_recipients
BEGIN
    INSERT INTO stat_days (agency, day, direction, documents, rejected, withdrawn, legal,
        reference_only, broken, paper_required, late_issue)
    SELECT NEW.organ_id, m.arrived_day, 'in', 1, m.state = 'rejected', m.state = 'withdrawn',
        m.legal_validity IS 'legal', m.legal_validity IS 'reference-only',
        m.legal_validity IS 'broken', m.paper_required, m.late_issue
    FROM messages m
    WHERE m.id = NEW.message_id AND m.direction = 'in' AND m.kind = 'envelope'
        AND m.business_type = '0'
    ON CONFLICT (agency, day, direction) DO UPDATE SET documents = documents + 1,
        rejected = rejected + excluded.rejected, withdrawn = withdrawn + excluded.withdrawn,
        legal = legal + excluded.legal, reference_only = reference_only + excluded.reference_only,
        broken = broken + excluded.broken,
        paper_required = paper_required + excluded.paper_required,
        late_issue = late_issue + excluded.late_issue;
END;
CREATE TRIGGER stat_recalled AFTER UPDATE OF state ON messages
WHEN NEW.direction = 'out' AND NEW.kind = 'envelope' AND NEW.business_type = '0'
    AND (NEW.state = 'recalled') <> (OLD.state = 'recalled')
BEGIN
    UPDATE stat_days SET recalled = recalled + (CASE WHEN NEW.state = 'recalled' THEN 1 ELSE -1 END)
    WHERE agency = NEW.sender AND day = NEW.arrived_day AND direction = 'out';
END;
CREATE TRIGGER stat_withdrawn AFTER UPDATE OF state ON messages
WHEN NEW.direction = 'in' AND NEW.kind = 'envelope' AND NEW.business_type = '0'
    AND (NEW.state = 'withdrawn') <> (OLD.state = 'withdrawn')
BEGIN
    UPDATE stat_days
    SET withdrawn = withdrawn + (CASE WHEN NEW.state = 'withdrawn' THEN 1 ELSE -1 END)
    WHERE day = NEW.arrived_day AND direction = 'in'
        AND agency IN (SELECT organ_id FROM message_recipients WHERE message_id = NEW.id);
END;
CREATE TRIGGER stat_delivery AFTER INSERT ON deliveries
BEGIN
    INSERT INTO stat_days (agency, day, direction, deliveries)
    SELECT m.sender, m.arrived_day, 'out', 1 FROM messages m
    WHERE m.id = NEW.message_id AND m.direction = 'out' AND m.kind = 'envelope'
        AND m.business_type = '0'
    ON CONFLICT (agency, day, direction) DO UPDATE SET deliveries = deliveries + 1;
END;
-- An acknowledgment counts by what the row says now: a 01 recorded before the delivery's
-- deadline was stored (the peer answering before our dispatcher marked it sent) is counted
-- again, the old contribution taken back, when the deadline arrives.
CREATE TRIGGER stat_delivery_acked
AFTER UPDATE OF acked_at, ack_due_at, ack_code ON deliveries
BEGIN
    UPDATE stat_days SET
        rejected = rejected + (NEW.ack_code IS '02') - (OLD.ack_code IS '02'),
        on_time = on_time + (NEW.acked_at IS NOT NULL
                AND (NEW.ack_due_at IS NULL OR NEW.acked_at <= NEW.ack_due_at))
            - (OLD.acked_at IS NOT NULL
                AND (OLD.ack_due_at IS NULL OR OLD.acked_at <= OLD.ack_due_at)),
        late = late + (NEW.acked_at IS NOT NULL AND NEW.ack_due_at IS NOT NULL
                AND NEW.acked_at > NEW.ack_due_at)
            - (OLD.acked_at IS NOT NULL AND OLD.ack_due_at IS NOT NULL
                AND OLD.acked_at > OLD.ack_due_at)
    WHERE direction = 'out' AND (agency, day) = (
        SELECT m.sender, m.arrived_day FROM messages m
        WHERE m.id = NEW.message_id AND m.direction = 'out' AND m.kind = 'envelope'
            AND m.business_type = '0');
END;
CREATE TRIGGER stat_delivery_acked_at_once AFTER INSERT ON deliveries
WHEN NEW.acked_at IS NOT NULL
BEGIN
    UPDATE stat_days SET
        rejected = rejected + (NEW.ack_code IS '02'),
        on_time = on_time + (NEW.acked_at IS NOT NULL
                AND (NEW.ack_due_at IS NULL OR NEW.acked_at <= NEW.ack_due_at)),
        late = late + (NEW.acked_at IS NOT NULL AND NEW.ack_due_at IS NOT NULL
                AND NEW.acked_at > NEW.ack_due_at)
    WHERE direction = 'out' AND (agency, day) = (
        SELECT m.sender, m.arrived_day FROM messages m
        WHERE m.id = NEW.message_id AND m.direction = 'out' AND m.kind = 'envelope'
            AND m.business_type = '0');
END;
CREATE TRIGGER stat_picked_up AFTER UPDATE OF acked_at, ack_due_at ON inbox
BEGIN
    UPDATE stat_days SET
        on_time = on_time + (NEW.acked_at IS NOT NULL
                AND (NEW.ack_due_at IS NULL OR NEW.acked_at <= NEW.ack_due_at))
            - (OLD.acked_at IS NOT NULL
                AND (OLD.ack_due_at IS NULL OR OLD.acked_at <= OLD.ack_due_at)),
        late = late + (NEW.acked_at IS NOT NULL AND NEW.ack_due_at IS NOT NULL
                AND NEW.acked_at > NEW.ack_due_at)
            - (OLD.acked_at IS NOT NULL AND OLD.ack_due_at IS NOT NULL
                AND OLD.acked_at > OLD.ack_due_at)
    WHERE agency = NEW.organ_id AND direction = 'in' AND day = (
        SELECT m.arrived_day FROM messages m
        WHERE m.id = NEW.message_id AND m.kind = 'envelope' AND m.business_type = '0');
END;
-- (rows inserted already acknowledged, as an import or a restore may write them)
CREATE TRIGGER stat_picked_up_at_once AFTER INSERT ON inbox
WHEN NEW.acked_at IS NOT NULL
BEGIN
    UPDATE stat_days SET
        on_time = on_time + (NEW.acked_at IS NOT NULL
                AND (NEW.ack_due_at IS NULL OR NEW.acked_at <= NEW.ack_due_at)),
        late = late + (NEW.acked_at IS NOT NULL AND NEW.ack_due_at IS NOT NULL
                AND NEW.acked_at > NEW.ack_due_at)
    WHERE agency = NEW.organ_id AND direction = 'in' AND day = (
        SELECT m.arrived_day FROM messages m
        WHERE m.id = NEW.message_id AND m.kind = 'envelope' AND m.business_type = '0');
END;

CREATE TABLE registers (
    organ_id    TEXT NOT NULL,
    register    TEXT NOT NULL,
    year        INTEGER NOT NULL,
    last_number INTEGER NOT NULL CHECK (last_number > 0),
    PRIMARY KEY (organ_id, register, year)
) STRICT, WITHOUT ROWID;
CREATE TABLE issued_numbers (
    organ_id    TEXT NOT NULL,
    register    TEXT NOT NULL,
    year        INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    notation    TEXT NOT NULL,
    document_id TEXT NOT NULL UNIQUE,
    issued_at   TEXT NOT NULL,
    issued_by   TEXT NOT NULL,
    PRIMARY KEY (organ_id, register, year, number)
) STRICT, WITHOUT ROWID;
"""

# The axes (issue #6). A relayed envelope keeps the exact bytes it arrived with and, beside them,
# the bytes it leaves with (our TraceHeader appended). What the pull loop saw of each axis item,
# so an auditor can follow an axis docId to the stored message, and the clock of each axis.
_V6 = """
ALTER TABLE messages ADD COLUMN forward_sha256 TEXT
    CHECK (forward_sha256 IS NULL OR length(forward_sha256) = 64);

CREATE TABLE axis_items (
    route          TEXT NOT NULL,
    axis_id        TEXT NOT NULL,
    message_type   TEXT NOT NULL CHECK (message_type IN ('edoc', 'status')),
    sender         TEXT,
    recipient      TEXT,
    first_seen_at  TEXT NOT NULL,
    fetch_attempts INTEGER NOT NULL DEFAULT 0,
    outcome        TEXT CHECK (outcome IS NULL OR outcome IN ('accepted', 'duplicate', 'refused')),
    message_id     TEXT,
    detail         TEXT,
    stored_at      TEXT,
    acked_status   TEXT CHECK (acked_status IS NULL OR acked_status IN ('done', 'fail')),
    acked_at       TEXT,
    PRIMARY KEY (route, axis_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX axis_items_unacked ON axis_items (route) WHERE acked_at IS NULL;

CREATE TABLE axis_clock (
    route              TEXT PRIMARY KEY,
    offset_seconds     REAL NOT NULL,
    round_trip_seconds REAL NOT NULL,
    measured_at        TEXT NOT NULL
) STRICT;
"""

# Running for years (issue #7): which archive file holds a message, the chain of archive files,
# legal holds, and a tombstone for every message purged from the live store.
_V7 = """
ALTER TABLE messages ADD COLUMN archived_in TEXT;
CREATE INDEX messages_unarchived ON messages (arrived_at) WHERE archived_in IS NULL;
CREATE INDEX messages_archived ON messages (archived_in, arrived_at) WHERE archived_in IS NOT NULL;

CREATE TABLE archives (
    sequence         INTEGER PRIMARY KEY CHECK (sequence > 0),
    file_name        TEXT NOT NULL UNIQUE,
    manifest_sha256  TEXT NOT NULL CHECK (length(manifest_sha256) = 64),
    messages         INTEGER NOT NULL CHECK (messages >= 0),
    first_arrived_at TEXT,
    last_arrived_at  TEXT,
    created_at       TEXT NOT NULL
) STRICT;

CREATE TABLE holds (
    document_id TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      TEXT NOT NULL
) STRICT;

CREATE TABLE purged (
    message_id  TEXT PRIMARY KEY,
    document_id TEXT NOT NULL,
    direction   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    archived_in TEXT NOT NULL,
    purged_at   TEXT NOT NULL
) STRICT;
"""

# The provincial eDoc hub (issue #8): its documents are confirmed, its traces read (the hub
# forgets them as it answers), and a trace may be the hub's own 999 or a code we do not apply.
# SQLite cannot change a CHECK: the table is rebuilt, its rows copied.
_V8 = """
CREATE TABLE axis_items_v8 (
    route          TEXT NOT NULL,
    axis_id        TEXT NOT NULL,
    message_type   TEXT NOT NULL CHECK (message_type IN ('edoc', 'status')),
    sender         TEXT,
    recipient      TEXT,
    first_seen_at  TEXT NOT NULL,
    fetch_attempts INTEGER NOT NULL DEFAULT 0,
    outcome        TEXT CHECK (outcome IS NULL OR outcome IN
                       ('accepted', 'duplicate', 'refused', 'ignored', 'send-failed')),
    message_id     TEXT,
    detail         TEXT,
    stored_at      TEXT,
    acked_status   TEXT CHECK (acked_status IS NULL OR acked_status IN
                       ('done', 'fail', 'confirmed', 'read')),
    acked_at       TEXT,
    PRIMARY KEY (route, axis_id)
) STRICT, WITHOUT ROWID;
INSERT INTO axis_items_v8 SELECT route, axis_id, message_type, sender, recipient, first_seen_at,
    fetch_attempts, outcome, message_id, detail, stored_at, acked_status, acked_at FROM axis_items;
DROP TABLE axis_items;
ALTER TABLE axis_items_v8 RENAME TO axis_items;
CREATE INDEX axis_items_unacked ON axis_items (route) WHERE acked_at IS NULL;
CREATE INDEX axis_items_unsettled ON axis_items (route, message_type) WHERE outcome IS NULL;
"""

# What waits for the office systems among the statuses of our outbound envelopes, kept apart so
# that ReceiveStatuses and the office push read what waits, not every status ever received
# (400 ms per read at 200,000 statuses before, growing for as long as the node runs). A pickup
# stays an audit row (`picked_up` on subject `status`); triggers keep this table in step with
# the statuses and the audit, whatever path writes them.
_V9 = """
CREATE TABLE statuses_waiting (
    status_id INTEGER PRIMARY KEY,
    sender    TEXT NOT NULL
) STRICT;
CREATE INDEX statuses_waiting_sender ON statuses_waiting (sender, status_id);
INSERT INTO statuses_waiting (status_id, sender)
SELECT s.id, m.sender FROM statuses s JOIN messages m ON m.id = s.message_id
WHERE m.direction = 'out' AND NOT EXISTS (
    SELECT 1 FROM audit a WHERE a.subject_type = 'status'
    AND a.subject_id = CAST(s.id AS TEXT) AND a.action = 'picked_up');
CREATE TRIGGER statuses_wait AFTER INSERT ON statuses
BEGIN
    INSERT INTO statuses_waiting (status_id, sender)
    SELECT NEW.id, m.sender FROM messages m WHERE m.id = NEW.message_id AND m.direction = 'out';
END;
CREATE TRIGGER statuses_picked_up AFTER INSERT ON audit
WHEN NEW.subject_type = 'status' AND NEW.action = 'picked_up'
BEGIN
    DELETE FROM statuses_waiting WHERE status_id = CAST(NEW.subject_id AS INTEGER);
END;
CREATE TRIGGER statuses_gone AFTER DELETE ON statuses
BEGIN
    DELETE FROM statuses_waiting WHERE status_id = OLD.id;
END;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "messages, recipients, deliveries, audit", _V1),
    Migration(2, "statuses with history, office-system inbox pickup", _V2),
    Migration(3, "idempotency key over accepted envelopes only (not refusals)", _V3),
    Migration(4, "an inbound status packet is stored once per exact bytes", _V4),
    Migration(
        5, "regulation rules: statistics columns, legal receipt, links, directory, numbers", _V5
    ),
    Migration(6, "axes: relayed bytes, axis items pulled, axis clocks", _V6),
    Migration(7, "archive files, legal holds, purged tombstones", _V7),
    Migration(8, "eDoc hub: confirmed documents, traces read, the hub's own codes", _V8),
    Migration(9, "statuses waiting for the office systems, kept apart", _V9),
)
CURRENT_VERSION = MIGRATIONS[-1].version


def split_statements(script: str) -> list[str]:
    """Cut a script into complete statements (trigger bodies hold `;` of their own).

    `executescript` would COMMIT any open transaction first, which breaks all-or-nothing.
    """
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise MigrationError("migration script ends inside a statement")
    return statements


def _apply(conn: sqlite3.Connection, pending: Sequence[Migration]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for migration in pending:
            for statement in split_statements(migration.ddl):
                conn.execute(statement)
        # PRAGMA takes no parameters; the value is an int from our own table.
        conn.execute(f"PRAGMA user_version = {int(pending[-1].version)}")
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise MigrationError(f"migration failed, database unchanged: {exc}") from exc
        raise


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError("migrations must be numbered 1, 2, 3, … without gaps")


def apply_migrations(path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> MigrationReport:
    """Bring the database at `path` to the last version of `migrations` (blocking)."""
    _check_order(migrations)
    path = Path(path)
    target = migrations[-1].version
    if not path.exists():
        return _create(path, migrations)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > target:
            raise MigrationError(
                f"database is at schema version {version}, newer than this code ({target})"
            )
        pending = [m for m in migrations if m.version > version]
        if not pending:
            return MigrationReport(version, version, None, created=False)
        backup: Path | None = None
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if version > 0 or tables:
            backup = path.with_name(f"{path.name}.pre-v{pending[0].version}.bak")
            _backup(conn, backup)
        _apply(conn, pending)
        return MigrationReport(version, target, backup, created=False)
    finally:
        conn.close()


def _backup(conn: sqlite3.Connection, destination: Path) -> None:
    partial = destination.with_name(destination.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    copy = sqlite3.connect(partial)
    try:
        conn.backup(copy)
    finally:
        copy.close()
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, destination)
    fsync_dir(destination.parent)


def _create(path: Path, migrations: Sequence[Migration]) -> MigrationReport:
    fresh = path.with_name(path.name + ".creating")
    for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm"), Path(f"{fresh}-journal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    conn = sqlite3.connect(fresh, isolation_level=None)
    try:
        # WAL is a property of the file: set it once here, before the first table.
        conn.execute("PRAGMA journal_mode = WAL")
        _apply(conn, migrations)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    with open(fresh, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(fresh, path)
    fsync_dir(path.parent)
    return MigrationReport(0, migrations[-1].version, None, created=True)
