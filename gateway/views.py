"""What agency IT reads through the CLI: queue depths, the queue, one message's whole story.

Every function takes a read-only connection (`Store.open_readonly`) and returns plain JSON-ready
data: the CLI prints it as tables or `--json`, and nothing here can change the store. Times are
stored UTC and shown ISO 8601 with +07:00.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from edxml.model import VN_TZ
from gateway import axis, documents, store
from gateway.store import dict_rows


def local_time(value: str | None) -> str | None:
    """A stored UTC text (…Z) as ISO 8601 in Vietnam time."""
    if not value:
        return None
    return store.stored_time(value).astimezone(VN_TZ).isoformat(timespec="seconds")


def axes(conn: sqlite3.Connection, routes: Any) -> list[dict[str, Any]]:
    """Per vxp or edoc-hub route: the axis clock (R20: a finding beyond the route's
    max_clock_skew) and the pull loop's items still unsettled or unacknowledged."""
    clocks = {r[0]: r for r in axis.clock_readings(conn)}
    out = []
    for route in routes:
        if route.transport.value not in ("vxp", "edoc-hub"):
            continue
        reading = clocks.get(route.name)
        pending = conn.execute(
            "SELECT count(*) FILTER (WHERE outcome IS NULL),"
            " count(*) FILTER (WHERE outcome IS NOT NULL AND acked_at IS NULL),"
            " max(fetch_attempts) FILTER (WHERE outcome IS NULL)"
            " FROM axis_items WHERE route = ?",
            (route.name,),
        ).fetchone()
        entry: dict[str, Any] = {
            "route": route.name,
            "max_clock_skew_seconds": route.max_clock_skew,
            "clock": None,
            "findings": [],
            "items_unsettled": pending[0],
            "items_unacknowledged": pending[1],
            "most_fetch_attempts": pending[2] or 0,
        }
        if reading is not None:
            _, offset, round_trip, measured = reading
            entry["clock"] = {
                "offset_seconds": round(offset, 3),
                "round_trip_seconds": round(round_trip, 3),
                "measured_at": local_time(measured),
            }
            if abs(offset) > route.max_clock_skew:
                entry["findings"].append(
                    {
                        "code": "AxisClockSkew",
                        "message_en": f"The clock of {route.name} is {offset:+.0f} s off ours"
                        f" (more than {route.max_clock_skew:g} s)",
                        "message_vi": f"Đồng hồ của {route.name} lệch {offset:+.0f} giây so với"
                        f" cổng (quá {route.max_clock_skew:g} giây)",
                    }
                )
        if route.transport.value == "edoc-hub":
            entry["findings"].extend(_hub_credentials(conn, route.name))
        out.append(entry)
    return out


def _hub_credentials(conn: sqlite3.Connection, route: str) -> list[dict[str, str]]:
    """A finding while the hub's last word on our credentials (CheckPermission at start, or a
    pull round) was a refusal."""
    last = conn.execute(
        "SELECT action, at FROM audit WHERE subject_type = 'route' AND subject_id = ?"
        " AND action IN ('hub-credentials-accepted', 'hub-credentials-refused')"
        " ORDER BY id DESC LIMIT 1",
        (route,),
    ).fetchone()
    if last is None or last[0] != "hub-credentials-refused":
        return []
    return [
        {
            "code": "HubCredentialsRefused",
            "message_en": f"The hub of {route} has refused our OrganId and token since"
            f" {local_time(last[1])}: check organ_id and the token",
            "message_vi": f"Trục của tuyến {route} từ chối mã định danh và mã truy cập từ"
            f" {local_time(last[1])}: kiểm tra organ_id và mã truy cập",
        }
    ]


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    deliveries = {
        r["state"]: r["n"]
        for r in dict_rows(conn, "SELECT state, count(*) AS n FROM deliveries GROUP BY state")
    }
    messages = dict_rows(
        conn,
        "SELECT direction, kind, state, count(*) AS n FROM messages "
        "GROUP BY direction, kind, state ORDER BY direction, kind, state",
    )
    # What the office face would hand out: a document withdrawn before pickup is no longer.
    pending_inbox = conn.execute(
        "SELECT count(*) FROM inbox i JOIN messages m ON m.id = i.message_id"
        " WHERE i.acked_at IS NULL AND m.state = 'received'"
    ).fetchone()[0]
    audit_rows = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    return {
        "deliveries": deliveries,
        "messages": messages,
        "inbox_pending": pending_inbox,
        "audit_rows": audit_rows,
    }


def queue(
    conn: sqlite3.Connection,
    *,
    states: tuple[str, ...] = ("queued", "sending", "retry_wait", "failed"),
    route: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Deliveries in the dispatcher's order: priority first (Hỏa tốc … normal), then due time."""
    marks = ",".join("?" * len(states))
    sql = (
        "SELECT d.id, d.message_id, m.document_id, m.kind, d.recipient, d.route, d.state, "
        "d.priority_rank, d.attempts, d.next_attempt_at, d.due_at, d.last_error "
        f"FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.state IN ({marks})"
    )
    args: list[Any] = list(states)
    if route is not None:
        sql += " AND d.route = ?"
        args.append(route)
    sql += " ORDER BY d.priority_rank DESC, d.due_at, d.id LIMIT ?"
    args.append(limit)
    out = dict_rows(conn, sql, *args)
    for row in out:
        row["next_attempt_at"] = local_time(row["next_attempt_at"])
        row["due_at"] = local_time(row["due_at"])
    return out


_TOMBSTONE_FIELDS = ("message_id", "document_id", "direction", "kind", "archived_in", "purged_at")


def purged(conn: sqlite3.Connection, key: str) -> list[dict[str, Any]]:
    """The tombstones a message id or a DocumentId left when purged: which archive file holds it."""
    rows = conn.execute(
        f"SELECT {', '.join(_TOMBSTONE_FIELDS)} FROM purged"
        " WHERE message_id = ?1 OR document_id = ?1 ORDER BY purged_at",
        (key,),
    ).fetchall()
    return [dict(zip(_TOMBSTONE_FIELDS, row, strict=True)) for row in rows]


def show(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """One message by id, or by DocumentId the newest envelope of it (a status about it only if
    there is none): verdict, deliveries, statuses, and every audit event about it. `purged` names
    what of the same key is gone to the archive: an envelope past its retention may leave the
    statuses about it behind, and an auditor must not take those for the whole document."""
    message = store.get_message(conn, key)
    if message is None:
        # A DocumentId names a document: its envelope (the newest), before any status about it.
        row = conn.execute(
            "SELECT id FROM messages WHERE document_id = ?"
            " ORDER BY kind = 'envelope' DESC, created_at DESC LIMIT 1",
            (key,),
        ).fetchone()
        if row is None:
            return None
        message = store.get_message(conn, row[0])
        assert message is not None
    out = dict_rows(conn, "SELECT * FROM messages WHERE id = ?", message.id)[0]
    for field in ("verdict_json", "receipt_json"):
        raw = out.pop(field, None)
        out[field.removesuffix("_json")] = json.loads(raw) if raw else None
    for field in ("arrived_at", "created_at"):
        if field in out:
            out[field] = local_time(out[field])
    out["recipients"] = [
        r["organ_id"]
        for r in dict_rows(
            conn, "SELECT organ_id FROM message_recipients WHERE message_id = ?", message.id
        )
    ]
    deliveries = dict_rows(
        conn, "SELECT * FROM deliveries WHERE message_id = ? ORDER BY id", message.id
    )
    for d in deliveries:
        for field in ("next_attempt_at", "due_at", "sent_at", "updated_at"):
            d[field] = local_time(d[field])
        raw = d.pop("receipt_json", None)
        d["receipt"] = json.loads(raw) if raw else None
    out["deliveries"] = deliveries
    statuses = dict_rows(
        conn, "SELECT * FROM statuses WHERE message_id = ? ORDER BY id", message.id
    )
    for s in statuses:
        s["reported_at"] = local_time(s["reported_at"])
        s["received_at"] = local_time(s["received_at"])
    out["statuses"] = statuses
    events = store.audit_of_message(conn, message.id, [d["id"] for d in deliveries])
    for e in events:
        del e["prev_hash"], e["hash"]
        e["at"] = local_time(e["at"])
        e["detail"] = json.loads(e.pop("detail_json"))
    out["events"] = events
    # R14, R16: what it refers to, what refers to it, and what later documents did to it.
    out["refers_to"] = [
        {"kind": kind, "document_id": document_id}
        for kind, document_id in documents.links_from(conn, message.id)
    ]
    out["referred_by"] = [
        {
            "kind": link.kind,
            "message_id": link.message_id,
            "direction": link.direction,
            "sender": link.sender,
            "arrived_at": local_time(link.arrived_at),
        }
        for link in documents.links_to(conn, message.document_id)
        if link.message_id != message.id
    ]
    out["changes"] = [
        {"organ_id": organ, "change": change, "by_message_id": by, "at": local_time(at)}
        for organ, change, by, at in documents.changes_of(conn, message.id)
    ]
    # Issue #6: the route it took (the trace list as received) and, if it came from an axis'
    # inbox, the axis items that carried it.
    verdict = out.get("verdict") or {}
    out["trace"] = verdict.get("trace", [])
    out["axis_items"] = [
        {
            "route": i.route,
            "axis_id": i.axis_id,
            "first_seen_at": local_time(i.first_seen_at),
            "fetch_attempts": i.fetch_attempts,
            "outcome": i.outcome,
            "acked_status": i.acked_status,
            "acked_at": local_time(i.acked_at) if i.acked_at else None,
        }
        for i in axis.axis_items(conn, message_id=message.id)
    ]
    out["purged"] = purged(conn, key)
    return out


def audit_problems(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [{"row": p.row_id, "reason": p.reason} for p in store.verify_audit_chain(conn)]
