"""`gateway stats` over a store of N messages (default 100,000): seconds per query, and the ratio
to the floor, one full scan of the same messages table (`SELECT count(*), sum(size)`), measured
in the same process on the same file.

The store is a real one (migrations applied, every index), filled with plain SQL in a few large
transactions: half outbound documents from four hosted agencies, each to one to three of 40
recipients, with a first status (01 or 02) for most deliveries, some answered after the working
day; half inbound documents for the hosted agencies with inbox rows, legal validity and office
pickups, over two years. The queries are the ones operators run: this month by agency, a year by
month, two years by level and province, and the whole store as CSV.

    python bench/stats_bench.py [--messages 100000] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import time_op

from gateway import stats
from gateway.calendar import OfficeCalendar
from gateway.config import VIETNAM, AgencyConfig, CalendarConfig, Config, NodeConfig, TlsConfig
from gateway.migrations import apply_migrations
from gateway.store import Store, utc_text

CALENDAR = OfficeCalendar(CalendarConfig())
HOSTED = ("000.00.00.H23", "000.00.01.H23", "000.00.02.H23", "000.01.02.H23")
OTHERS = tuple(f"000.00.00.H{n:02d}" for n in range(1, 41))
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=730)


def config() -> Config:
    pem = Path("unused.pem")
    return Config(
        path=None,
        node=NodeConfig(
            name="bench",
            organ_id=None,
            data_dir=Path("."),
            office_listen="tcp:0",
            exchange_listen="tcp:0",
            office_url="http://127.0.0.1/office",
            exchange_url="https://127.0.0.1/exchange",
            tls=TlsConfig(pem, pem, pem),
        ),
        agencies=tuple(AgencyConfig(o, o, pem, pem) for o in HOSTED),
    )


def fill(path: Path, messages: int, seed: int = 22) -> None:
    apply_migrations(path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    delivery_id = 0
    status_rows: list[tuple[Any, ...]] = []
    for n in range(messages):
        at = START + SPAN * rng.random()
        out = n % 2 == 0
        sender = rng.choice(HOSTED) if out else rng.choice(OTHERS)
        recipients = rng.sample(OTHERS, rng.randint(1, 3)) if out else [rng.choice(HOSTED)]
        message_id = f"m{n}"
        state = (
            ("recalled" if rng.random() < 0.02 else "accepted")
            if out
            else rng.choice(
                ("received", "delivered", "delivered", "delivered", "rejected", "withdrawn")
            )
        )
        legality = None if out else rng.choice(("legal", "legal", "reference-only", "broken"))
        conn.execute(
            "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,"
            " code_number, code_notation, promulgation_date, subject, priority, state,"
            " blob_sha256, size, verdict_json, receipt_json, arrived_at, created_at,"
            " legal_validity, paper_required, late_issue, due_date, arrived_day)"
            " VALUES (?, ?, 'envelope', ?, ?, '0', ?, 'UBND-VP', ?, 'V/v thử nghiệm', ?, ?, ?,"
            " 1000, '{}', NULL, ?, ?, ?, ?, ?, NULL, ?)",
            (
                message_id,
                "out" if out else "in",
                sender,
                f"{sender},{at:%Y/%m/%d},{n}/UBND-VP",
                str(n),
                at.date().isoformat(),
                rng.choice((0, 0, 0, 1, 2, 3)),
                state,
                f"{n:064x}",
                utc_text(at),
                utc_text(at),
                legality,
                int(rng.random() < 0.1),
                int(rng.random() < 0.05),
                at.astimezone(VIETNAM).date().isoformat(),
            ),
        )
        conn.executemany(
            "INSERT INTO message_recipients (message_id, organ_id) VALUES (?, ?)",
            [(message_id, r) for r in recipients],
        )
        if out:
            for recipient in recipients:
                delivery_id += 1
                sent = at + dt.timedelta(seconds=rng.randint(1, 600))
                conn.execute(
                    "INSERT INTO deliveries (id, message_id, recipient, route, state,"
                    " next_attempt_at, priority_rank, due_at, sent_at, updated_at, ack_due_at)"
                    " VALUES (?, ?, ?, 'peer', 'sent', ?, 0, ?, ?, ?, ?)",
                    (
                        delivery_id,
                        message_id,
                        recipient,
                        *(utc_text(sent),) * 4,
                        utc_text(CALENDAR.end_of_working_day(sent)),
                    ),
                )
                if rng.random() < 0.9:
                    later = sent + dt.timedelta(hours=rng.choice((0.1, 1, 5, 30)))
                    code = "02" if rng.random() < 0.05 else "01"
                    status_rows.append((message_id, recipient, code, utc_text(later)))
                    conn.execute(
                        "UPDATE deliveries SET acked_at = ?, ack_code = ? WHERE id = ?",
                        (utc_text(later), code, delivery_id),
                    )
        elif state != "rejected":
            acked = (
                at + dt.timedelta(hours=rng.choice((0.5, 3, 26))) if rng.random() < 0.8 else None
            )
            legal = CALENDAR.legal_receipt(at)
            conn.execute(
                "INSERT INTO inbox (message_id, organ_id, acked_at, acked_by, legal_received_at,"
                " ack_due_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    recipients[0],
                    utc_text(acked) if acked else None,
                    "bench",
                    utc_text(legal),
                    utc_text(CALENDAR.end_of_working_day(legal)),
                ),
            )
    conn.executemany(
        "INSERT INTO statuses (message_id, organ_id, code, reported_at, received_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(m, r, c, t, t) for m, r, c, t in status_rows],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


QUERIES = {
    "this month by agency": stats.StatsQuery(
        dt.date(2026, 12, 1), dt.date(2026, 12, 31), "month", ("agency", "direction")
    ),
    "a year by month": stats.StatsQuery(
        dt.date(2026, 1, 1), dt.date(2026, 12, 31), "month", ("period", "direction")
    ),
    "two years by level and province": stats.StatsQuery(
        None, None, "quarter", ("province", "level", "direction")
    ),
    "everything by agency and day": stats.StatsQuery(None, None, "day", ("agency", "period")),
}


def config_file(directory: Path) -> Path:
    """A gateway.conf for `gateway stats` on the bench store (files are not checked by reads)."""
    agencies = "".join(
        f"[agency:{o}]\nname = {o}\nsigning_key = k.pem\nsigning_cert = c.pem\n\n" for o in HOSTED
    )
    text = f"""[node]
name = bench
data_dir = .
office_listen = tcp:0:interface=127.0.0.1
office_url = http://127.0.0.1:8440/office
exchange_listen = tcp:0:interface=127.0.0.1
exchange_url = https://127.0.0.1:8443/exchange
tls_cert = c.pem
tls_key = k.pem
tls_ca = c.pem

{agencies}[route:local]
transport = local
"""
    path = directory / "gateway.conf"
    path.write_text(text, encoding="utf-8")
    return path


def wall(args: list[str], runs: int) -> float:
    """Median wall seconds of a whole command (process start included)."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as tmp:
        path = Path(tmp) / "gateway.db"  # what NodeConfig.db_path names under data_dir "."
        started = time.perf_counter()
        fill(path, args.messages)
        filled = time.perf_counter() - started
        conn = Store.open_readonly(path)
        conf = config()
        hosted = [a.organ_id for a in conf.agencies]

        def floor() -> object:
            return conn.execute("SELECT count(*), sum(size) FROM messages").fetchone()

        base = time_op(floor, args.runs)
        results: dict[str, Any] = {
            "messages": args.messages,
            "fill_seconds": filled,
            "floor_seconds": base,
            "queries": {},
        }
        for name, query in QUERIES.items():

            def run(query: stats.StatsQuery = query) -> object:
                return stats.gather(conn, query, hosted=hosted)

            def again(query: stats.StatsQuery = query) -> object:
                return stats.recount(conn, query, hosted=hosted)

            seconds = time_op(run, args.runs)
            recount = time_op(again, max(1, args.runs // 2))
            result = stats.gather(conn, query, hosted=hosted)
            if result != stats.recount(conn, query, hosted=hosted):
                raise AssertionError(f"{name}: the kept counters differ from a recount")
            results["queries"][name] = {
                "seconds": seconds,
                "ratio_to_floor": seconds / base,
                "recount_seconds": recount,
                "ratio_to_recount": seconds / recount,
                "rows": len(result["rows"]),
            }
        conn.close()
        conf_path = config_file(Path(tmp))
        cli = [sys.executable, "-m", "gateway.cli"]
        startup = wall([*cli, "--version"], args.runs)
        whole = wall([*cli, "stats", "--json", "-c", str(conf_path)], args.runs)
        results["cli"] = {
            "gateway_version_seconds": startup,
            "gateway_stats_json_seconds": whole,
            "ratio_to_startup": whole / startup,
        }
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    print(
        f"{args.messages:,} messages (filled in {filled:.1f} s);"
        f" floor (full scan) {base * 1000:.1f} ms"
    )
    for name, row in results["queries"].items():
        print(
            f"  {name:<34} {row['seconds'] * 1000:8.1f} ms  {row['ratio_to_floor']:6.2f}x floor"
            f"  {row['ratio_to_recount']:6.3f}x recount ({row['recount_seconds'] * 1000:.0f} ms)"
            f"  {row['rows']:>6} rows"
        )
    cli_row = results["cli"]
    print(
        f"  gateway stats --json (whole store, process included) "
        f"{cli_row['gateway_stats_json_seconds']:.2f} s = {cli_row['ratio_to_startup']:.1f}x"
        f" `gateway --version` ({cli_row['gateway_version_seconds']:.2f} s)"
    )


if __name__ == "__main__":
    main()
