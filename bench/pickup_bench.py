"""What waits for an office system, read from a store that has run for years (migration v9).

A store with N statuses of outbound envelopes, all but three picked up (an audit row each, as
`MarkStatusesReceived` writes them). Timed in the same process, each as a ratio to the read
before v9 (every status of the agency, checked against the audit for a pickup):

- the office push's count (`gateway.push.pending_counts`), every 5 s per office credential;
- one ReceiveStatuses page (`gateway.office._pending_statuses`, 100 events).

    python bench/pickup_bench.py [--sizes 20000,200000] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from measure import time_op

from gateway.migrations import apply_migrations
from gateway.office import _pending_statuses
from gateway.push import pending_counts

SENDER = "000.00.00.H23"
BEFORE_V9 = (
    "SELECT m.sender, count(*), max(s.id) FROM statuses s JOIN messages m ON m.id = s.message_id"
    " WHERE m.direction = 'out' AND m.sender = ? AND NOT EXISTS (SELECT 1 FROM audit a"
    " WHERE a.subject_type = 'status' AND a.subject_id = CAST(s.id AS TEXT)"
    " AND a.action = 'picked_up') GROUP BY m.sender"
)


def build(path: Path, n: int) -> sqlite3.Connection:
    apply_migrations(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO messages (id, direction, kind, sender, document_id, business_type, state,"
        " blob_sha256, size, arrived_at, created_at, arrived_day)"
        " VALUES (?, 'out', 'envelope', ?, ?, '0', 'accepted', ?, 1, 't', 't', '2026-01-01')",
        ((f"m{i}", SENDER, f"d{i}", "a" * 64) for i in range(n)),
    )
    conn.executemany(
        "INSERT INTO statuses (message_id, organ_id, code, reported_at, received_at)"
        " VALUES (?, '000.00.00.G22', '01', 't', 't')",
        ((f"m{i}",) for i in range(n)),
    )
    conn.executemany(
        "INSERT INTO audit (at, actor, action, subject_type, subject_id, detail_json, prev_hash,"
        " hash) VALUES ('t', 'bench', 'picked_up', 'status', ?, '{}', 'p', 'h')",
        ((str(i + 1),) for i in range(n - 3)),
    )
    conn.execute("COMMIT")
    return conn


def rows_for(n: int, runs: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        conn = build(Path(tmp) / "gateway.db", n)
        try:
            before = time_op(lambda: conn.execute(BEFORE_V9, (SENDER,)).fetchall(), runs)
            cases = {
                "push count (v9)": lambda: pending_counts(conn, (SENDER,)),
                "ReceiveStatuses page (v9)": lambda: _pending_statuses(conn, SENDER, 100),
            }
            out = [{"statuses": n, "operation": "read before v9", "seconds": before, "ratio": 1.0}]
            for name, fn in cases.items():
                seconds = time_op(fn, runs)
                out.append(
                    {
                        "statuses": n,
                        "operation": name,
                        "seconds": seconds,
                        "ratio": round(seconds / before, 5),
                    }
                )
            return out
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [r for size in args.sizes.split(",") for r in rows_for(int(size), args.runs)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'statuses':>9}  {'operation':<28} {'seconds':>10} {'× before':>10}")
    for r in rows:
        print(f"{r['statuses']:>9}  {r['operation']:<28} {r['seconds']:>10.6f} {r['ratio']:>10.5f}")


if __name__ == "__main__":
    main()
