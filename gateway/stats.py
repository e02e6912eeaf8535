"""Statistics of sending and receiving (R22, Article 15; floor 4), straight from the store.

What is counted, per hosted agency and direction:

* out: `documents` sent (new documents, BussinessDocType 0, one per document), `deliveries`
  (one per recipient), `rejected` (a recipient answered 02), `recalled` (we recalled it), and per
  delivery whether the recipient acknowledged it (its first 01 or 02) `on_time` (by the end of the
  working day on which it left, R13 "the same day"), `late`, or not yet (`unacknowledged`);
* in: `documents` received for the agency (one per document and hosted recipient), `rejected`
  (refused here, 02 sent), `withdrawn` (recalled by its sender), and whether the agency's office
  system picked it up `on_time` (by the end of the working day of its legal receipt time, R19),
  `late`, or not yet; and the legal validity of what it received (R5: `legal`,
  `reference_only`, `broken`);
* both: `paper_required` (R7) and `late_issue` (R9).

Rows group by any of: agency, province (the level-1 unit above it), level (1–4), kind (from the
directory: department, district, commune, …), period (day, month, quarter or year in Vietnam
time) and direction. Documents refused without being kept (R1) are counted apart.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from edxml.organid import ClassicOrganId

DIMENSIONS: Final = ("agency", "province", "level", "kind", "period", "direction")
# How much of a Vietnam date (YYYY-MM-DD) names each period; a quarter is folded from months.
PERIODS: Final = {"day": 10, "month": 7, "quarter": 7, "year": 4}
COUNTS: Final = (
    "documents",
    "deliveries",
    "rejected",
    "recalled",
    "withdrawn",
    "on_time",
    "late",
    "unacknowledged",
    "legal",
    "reference_only",
    "broken",
    "paper_required",
    "late_issue",
)
_LEGALITY: Final = {"legal": "legal", "reference-only": "reference_only", "broken": "broken"}


@attrs.frozen
class StatsQuery:
    start: dt.date | None = None  # inclusive, Vietnam dates
    end: dt.date | None = None  # inclusive
    period: str = "month"
    by: tuple[str, ...] = ("agency", "direction")

    def __attrs_post_init__(self) -> None:
        unknown = [d for d in self.by if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown dimension(s): {', '.join(unknown)}")
        if self.period not in PERIODS:
            raise ValueError(f"unknown period {self.period!r}")

    def bounds(self) -> tuple[str, str]:
        """The query's Vietnam dates as stored `arrived_day` texts, inclusive."""
        low = self.start.isoformat() if self.start is not None else "0000-00-00"
        high = self.end.isoformat() if self.end is not None else "9999-99-99"
        return low, high


def _period_sql(period: str, column: str = "m.arrived_day") -> str:
    """The period key of a row from its Vietnam date (YYYY-MM-DD)."""
    return f"substr({column}, 1, {PERIODS[period]})"


@attrs.frozen
class _Agency:
    organ_id: str
    name: str | None
    level: int | None
    kind: str | None
    province: str


_OUT_DOCUMENTS: Final = """
SELECT m.sender, {period}, count(*), total(m.state = 'recalled'), total(m.paper_required),
       total(m.late_issue)
FROM messages m INDEXED BY messages_period
WHERE m.kind = 'envelope' AND m.direction = 'out' AND m.arrived_day BETWEEN ? AND ?
  AND m.business_type = '0'
GROUP BY 1, 2
"""
# Each delivery carries its first acknowledgment (01 or 02) and when it was due.
_OUT_DELIVERIES: Final = """
SELECT m.sender, {period}, count(*), total(d.ack_code IS '02'), total(d.acked_at IS NULL),
       total(d.acked_at IS NOT NULL AND (d.ack_due_at IS NULL OR d.acked_at <= d.ack_due_at))
FROM messages m INDEXED BY messages_period
CROSS JOIN deliveries d INDEXED BY deliveries_ack ON d.message_id = m.id
WHERE m.kind = 'envelope' AND m.direction = 'out' AND m.arrived_day BETWEEN ? AND ?
  AND m.business_type = '0'
GROUP BY 1, 2
"""
_IN_DOCUMENTS: Final = """
SELECT r.organ_id, {period}, count(*), total(m.state = 'rejected'), total(m.state = 'withdrawn'),
       total(m.paper_required), total(m.late_issue),
       total(m.legal_validity IS 'legal'), total(m.legal_validity IS 'reference-only'),
       total(m.legal_validity IS 'broken'),
       total(m.state <> 'rejected' AND i.acked_at IS NULL),
       total(m.state <> 'rejected' AND i.acked_at IS NOT NULL
           AND (i.ack_due_at IS NULL OR i.acked_at <= i.ack_due_at))
FROM messages m INDEXED BY messages_period
CROSS JOIN message_recipients r ON r.message_id = m.id
LEFT JOIN inbox i ON i.message_id = m.id AND i.organ_id = r.organ_id
WHERE m.kind = 'envelope' AND m.direction = 'in' AND m.arrived_day BETWEEN ? AND ?
  AND m.business_type = '0' AND +r.organ_id IN ({hosted})
GROUP BY 1, 2
"""


_IN_NAMES: Final = (
    "documents",
    "rejected",
    "withdrawn",
    "paper_required",
    "late_issue",
    "legal",
    "reference_only",
    "broken",
    "unacknowledged",
    "on_time",
)
_ROLLUP: Final = """
SELECT agency, {period}, direction, sum(documents), sum(deliveries), sum(rejected),
       sum(recalled), sum(withdrawn), sum(on_time), sum(late), sum(legal),
       sum(reference_only), sum(broken), sum(paper_required), sum(late_issue)
FROM stat_days
WHERE day BETWEEN ? AND ? AND (direction = 'out' OR agency IN ({hosted}))
GROUP BY 1, 2, 3
"""
_ROLLUP_COUNTS: Final = tuple(c for c in COUNTS if c != "unacknowledged")  # derived


class _Cells:
    """Counts per (agency, period, direction), periods folded to quarters when asked."""

    def __init__(self, query: StatsQuery) -> None:
        self.query = query
        self.cells: dict[tuple[str, str, str], dict[str, int]] = {}

    def __call__(self, agency: str, period: str, direction: str) -> dict[str, int]:
        if self.query.period == "quarter":
            period = _quarter(period)
        key = (agency, period, direction)
        found = self.cells.get(key)
        if found is None:
            found = self.cells[key] = dict.fromkeys(COUNTS, 0)
        return found


def gather(
    conn: sqlite3.Connection,
    query: StatsQuery,
    *,
    hosted: Iterable[str],
) -> dict[str, Any]:
    """The statistics of `query` as a JSON-ready dict (rows, totals, refusals kept apart), from
    the counters the store keeps per agency and day (`stat_days`). `conn` may be read-only."""
    low, high = query.bounds()
    agencies = list(dict.fromkeys(hosted)) or [""]
    cell = _Cells(query)
    width = {"day": 10, "month": 7, "quarter": 7, "year": 4}[query.period]
    sql = _ROLLUP.format(period=f"substr(day, 1, {width})", hosted=", ".join("?" for _ in agencies))
    for row in conn.execute(sql, (low, high, *agencies)):
        agency, period, direction = row[:3]
        c = cell(agency, period, direction)
        for name, value in zip(_ROLLUP_COUNTS, row[3:], strict=True):
            c[name] += int(value)
    for (_, _, direction), c in cell.cells.items():
        acknowledged = c["on_time"] + c["late"]
        if direction == "out":
            c["unacknowledged"] = c["deliveries"] - acknowledged
        else:
            c["unacknowledged"] = c["documents"] - c["rejected"] - acknowledged
    return _result(conn, query, cell.cells)


def recount(
    conn: sqlite3.Connection,
    query: StatsQuery,
    *,
    hosted: Iterable[str],
) -> dict[str, Any]:
    """What `gather` says, counted again from the messages, deliveries and inbox rows
    themselves: the reference the kept counters are checked against (`gateway stats
    --recount`). Slower: it reads every message of the period."""
    low, high = query.bounds()
    agencies = list(dict.fromkeys(hosted))
    cell = _Cells(query)
    period = _period_sql(query.period)

    def add(sql: str, params: Sequence[object], direction: str, names: Sequence[str]) -> None:
        for agency, at, *numbers in conn.execute(sql, params):
            c = cell(agency, at, direction)
            for name, number in zip(names, numbers, strict=True):
                c[name] += int(number)

    add(
        _OUT_DOCUMENTS.format(period=period),
        (low, high),
        "out",
        ("documents", "recalled", "paper_required", "late_issue"),
    )
    add(
        _OUT_DELIVERIES.format(period=period),
        (low, high),
        "out",
        ("deliveries", "rejected", "unacknowledged", "on_time"),
    )
    if agencies:
        add(
            _IN_DOCUMENTS.format(period=period, hosted=", ".join("?" for _ in agencies)),
            (low, high, *agencies),
            "in",
            _IN_NAMES,
        )
    for (_, _, direction), c in cell.cells.items():
        counted = c["deliveries"] if direction == "out" else c["documents"] - c["rejected"]
        c["late"] = counted - c["unacknowledged"] - c["on_time"]
    return _result(conn, query, cell.cells)


def _result(
    conn: sqlite3.Connection,
    query: StatsQuery,
    cells: dict[tuple[str, str, str], dict[str, int]],
) -> dict[str, Any]:
    low, high = query.bounds()
    known = _agencies(conn, {agency for agency, _, _ in cells})
    rows = _group(cells, known, query.by)
    totals = dict.fromkeys(COUNTS, 0)
    for counts in cells.values():
        for name, value in counts.items():
            totals[name] += value
    refused = {
        str(direction): int(count)
        for direction, count in conn.execute(
            "SELECT direction, count(*) FROM refusals"
            " WHERE strftime('%Y-%m-%d', at, '+7 hours') BETWEEN ? AND ? GROUP BY 1",
            (low, high),
        )
    }
    return {
        "from": query.start.isoformat() if query.start else None,
        "to": query.end.isoformat() if query.end else None,
        "period": query.period,
        "by": list(query.by),
        "rows": rows,
        "totals": totals,
        "refused_unkept": {"in": refused.get("in", 0), "out": refused.get("out", 0)},
    }


def _quarter(month: str) -> str:
    year, _, number = month.partition("-")
    return f"{year}-Q{(int(number) - 1) // 3 + 1}" if number else month


def _agencies(conn: sqlite3.Connection, codes: Iterable[str]) -> dict[str, _Agency]:
    wanted = sorted(codes)
    found: dict[str, tuple[Any, ...]] = {}
    if wanted:
        marks = ", ".join("?" for _ in wanted)
        for row in conn.execute(
            f"SELECT organ_id, name, level, kind, parent FROM agencies WHERE organ_id IN ({marks})",
            wanted,
        ):
            found[row[0]] = row
    out = {}
    for code in wanted:
        parsed = ClassicOrganId.try_parse(code)
        row = found.get(code)
        level = row[2] if row and row[2] is not None else (parsed.level if parsed else None)
        province = str(parsed.root) if parsed is not None else code
        out[code] = _Agency(code, row[1] if row else None, level, row[3] if row else None, province)
    return out


def _group(
    cells: dict[tuple[str, str, str], dict[str, int]],
    known: dict[str, _Agency],
    by: Sequence[str],
) -> list[dict[str, Any]]:
    grouped: dict[tuple[Any, ...], dict[str, int]] = {}
    for (agency, period, direction), counts in cells.items():
        info = known[agency]
        values = {
            "agency": agency,
            "province": info.province,
            "level": info.level,
            "kind": info.kind,
            "period": period,
            "direction": direction,
        }
        key = tuple(values[d] for d in by)
        target = grouped.setdefault(key, dict.fromkeys(COUNTS, 0))
        for name, value in counts.items():
            target[name] += value
    rows = []
    for key in sorted(grouped, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        if "agency" in row:
            row["name"] = known[row["agency"]].name
        row.update(grouped[key])
        rows.append(row)
    return rows


def to_csv(result: dict[str, Any]) -> str:
    """The rows as CSV (UTF-8, header first): the dimensions asked for, then every count."""
    columns = [*result["by"], *(["name"] if "agency" in result["by"] else []), *COUNTS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in result["rows"]:
        writer.writerow({c: row.get(c) for c in columns})
    return out.getvalue()
