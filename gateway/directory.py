"""The agency directory (R11, R2; floor 3): OrganId → name, parent, level, kind, route, validity
and successor, imported from CSV or JSON and kept in the store.

Codes change: on 2025-07-01 Hà Nam, Nam Định and Ninh Bình became one province. An agency that
ceased has `valid_to` and, where known, a `successor`; a document addressed to it is refused with
the successor named (a person re-addresses official mail, the gateway never does it silently).

The directory is enforced once it holds entries ([policy] unknown_agencies = refuse, the
default): every recipient of an outbound document, and every sender of an inbound one, must be
in it and valid on the day. An empty directory leaves routing to the routes' patterns, so a new
node works before its directory is loaded.

An import is all or nothing: every problem of the file is reported (with its line or item) and
nothing is written unless there is none. Rows are upserted by OrganId; `source` says where they
came from (a file name, or `axis:<route>` for an axis' agency list, `sync_from_axis`, which
never overrides an imported entry).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from edxml import organid
from edxml.model import nfc
from gateway.soap import FaultCode, GatewayFault
from gateway.store import append_audit, utc_text

FIELDS: Final = (
    "organ_id",
    "name",
    "parent",
    "level",
    "kind",
    "route",
    "valid_from",
    "valid_to",
    "successor",
)


@attrs.frozen
class Agency:
    organ_id: str
    name: str
    parent: str | None = None
    level: int | None = None  # 1 (ministry, province) … 4; from the OrganId when not given
    kind: str | None = None  # free text: ministry, province, department, district, commune, …
    route: str | None = None  # a route name that serves it, overriding the patterns
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    successor: str | None = None
    source: str = "import"

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        for key in ("valid_from", "valid_to"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@attrs.frozen
class ImportProblem:
    where: str  # "line 4" or "item 2"
    field: str | None
    en: str
    vi: str

    def __str__(self) -> str:
        field = f" {self.field}" if self.field else ""
        return f"{self.where}{field}: {self.en} / {self.vi}"


class DirectoryImportError(Exception):
    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


def parse(data: bytes, fmt: str, *, source: str) -> list[Agency]:
    """The agencies of a CSV (header row naming FIELDS; organ_id and name required) or JSON
    (a list of objects, or {"agencies": [...]}) file. Raises DirectoryImportError with every
    problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DirectoryImportError(
            [ImportProblem("file", None, "not UTF-8 text", "không phải văn bản UTF-8")]
        ) from None
    if fmt == "json":
        rows, where = _json_rows(text)
    elif fmt == "csv":
        rows, where = _csv_rows(text)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    problems: list[ImportProblem] = []
    agencies = [
        _agency(row, place, source, problems) for row, place in zip(rows, where, strict=True)
    ]
    seen: dict[str, str] = {}
    for agency, place in zip(agencies, where, strict=True):
        if agency is None:
            continue
        if agency.organ_id in seen:
            problems.append(
                ImportProblem(
                    place,
                    "organ_id",
                    f"{agency.organ_id} is listed twice (also {seen[agency.organ_id]})",
                    f"{agency.organ_id} xuất hiện hai lần (cả ở {seen[agency.organ_id]})",
                )
            )
        seen[agency.organ_id] = place
    if not rows:
        problems.append(ImportProblem("file", None, "no agencies", "không có cơ quan nào"))
    if problems:
        raise DirectoryImportError(problems)
    return [a for a in agencies if a is not None]


def _json_rows(text: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DirectoryImportError(
            [ImportProblem("file", None, f"not JSON ({exc})", "không phải JSON hợp lệ")]
        ) from None
    if isinstance(data, dict):
        data = data.get("agencies")
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise DirectoryImportError(
            [
                ImportProblem(
                    "file",
                    None,
                    'a list of objects, or {"agencies": [...]}',
                    'một danh sách đối tượng, hoặc {"agencies": [...]}',
                )
            ]
        )
    return data, [f"item {n}" for n in range(1, len(data) + 1)]


def _csv_rows(text: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in FIELDS]
    if "organ_id" not in header or "name" not in header or unknown:
        raise DirectoryImportError(
            [
                ImportProblem(
                    "line 1",
                    None,
                    "a header row with organ_id and name (and any of "
                    + ", ".join(FIELDS)
                    + ")"
                    + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
                    "dòng tiêu đề có organ_id và name",
                )
            ]
        )
    rows: list[Mapping[str, Any]] = [
        {(k or "").strip(): v for k, v in row.items()} for row in reader
    ]
    return rows, [f"line {n}" for n in range(2, len(rows) + 2)]


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    text = nfc(str(value)).strip()
    return text or None


def _agency(
    row: Mapping[str, Any], where: str, source: str, problems: list[ImportProblem]
) -> Agency | None:
    before = len(problems)

    def problem(field: str, en: str, vi: str) -> None:
        problems.append(ImportProblem(where, field, en, vi))

    code = _text(row, "organ_id")
    if code is None or not organid.is_valid(code):
        problem("organ_id", f"not a valid OrganId: {code!r}", "không phải mã định danh hợp lệ")
    name = _text(row, "name")
    if name is None:
        problem("name", "a name is required", "cần có tên cơ quan")
    codes = {}
    for key in ("parent", "successor"):
        value = _text(row, key)
        if value is not None and not organid.is_valid(value):
            problem(key, f"not a valid OrganId: {value!r}", "không phải mã định danh hợp lệ")
        codes[key] = value
    level: int | None = None
    raw_level = _text(row, "level")
    if raw_level is not None:
        try:
            level = int(raw_level)
            if not 1 <= level <= 4:
                raise ValueError(raw_level)
        except ValueError:
            problem("level", "a level from 1 to 4", "cấp từ 1 đến 4")
    dates: dict[str, dt.date | None] = {}
    for key in ("valid_from", "valid_to"):
        value = _text(row, key)
        try:
            dates[key] = dt.date.fromisoformat(value) if value else None
        except ValueError:
            problem(key, "a date YYYY-MM-DD", "ngày dạng YYYY-MM-DD")
            dates[key] = None
    start, end = dates["valid_from"], dates["valid_to"]
    if start and end and end < start:
        problem("valid_to", "not before valid_from", "không được trước valid_from")
    if len(problems) > before or code is None or name is None:
        return None
    parsed = organid.ClassicOrganId.try_parse(code)
    parent = codes["parent"]
    if parent is None and parsed is not None and parsed.parent is not None:
        parent = str(parsed.parent)
    return Agency(
        organ_id=code,
        name=name,
        parent=parent,
        level=level if level is not None else (parsed.level if parsed is not None else None),
        kind=_text(row, "kind"),
        route=_text(row, "route"),
        valid_from=start,
        valid_to=end,
        successor=codes["successor"],
        source=source,
    )


# --- store jobs ---------------------------------------------------------------------------------

_COLUMNS: Final = (
    "organ_id, name, parent, level, kind, route, valid_from, valid_to, successor, source"
)


def _row(agency: Agency, now: dt.datetime) -> tuple[Any, ...]:
    return (
        agency.organ_id,
        agency.name,
        agency.parent,
        agency.level,
        agency.kind,
        agency.route,
        agency.valid_from.isoformat() if agency.valid_from else None,
        agency.valid_to.isoformat() if agency.valid_to else None,
        agency.successor,
        agency.source,
        utc_text(now),
    )


def import_agencies(
    conn: sqlite3.Connection,
    agencies: Iterable[Agency],
    *,
    now: dt.datetime,
    actor: str,
    audit: bool = True,
) -> tuple[int, int]:
    """Upsert `agencies` by OrganId with one audit row per import; (added, changed). An entry
    equal to the stored one is left as it is (neither counted nor touched)."""
    added = changed = 0
    for agency in agencies:
        before = conn.execute(
            f"SELECT {_COLUMNS} FROM agencies WHERE organ_id = ?", (agency.organ_id,)
        ).fetchone()
        row = _row(agency, now)
        if before is not None and tuple(before) == row[: len(before)]:
            continue
        conn.execute(
            f"INSERT INTO agencies ({_COLUMNS}, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (organ_id) DO UPDATE SET name = excluded.name,"
            " parent = excluded.parent, level = excluded.level, kind = excluded.kind,"
            " route = excluded.route, valid_from = excluded.valid_from,"
            " valid_to = excluded.valid_to, successor = excluded.successor,"
            " source = excluded.source, updated_at = excluded.updated_at",
            row,
        )
        if before:
            changed += 1
        else:
            added += 1
    if not audit:
        return added, changed
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="directory-import",
        subject_type="directory",
        subject_id="agencies",
        detail={"added": added, "changed": changed},
    )
    return added, changed


def _agency_of(row: Sequence[Any]) -> Agency:
    code, name, parent, level, kind, route, start, end, successor, source = row
    return Agency(
        organ_id=code,
        name=name,
        parent=parent,
        level=level,
        kind=kind,
        route=route,
        valid_from=dt.date.fromisoformat(start) if start else None,
        valid_to=dt.date.fromisoformat(end) if end else None,
        successor=successor,
        source=source,
    )


def list_agencies(conn: sqlite3.Connection, *, parent: str | None = None) -> list[Agency]:
    if parent is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM agencies ORDER BY organ_id")
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM agencies WHERE parent = ? ORDER BY organ_id", (parent,)
        )
    return [_agency_of(r) for r in rows]


def lookup(conn: sqlite3.Connection, organ_ids: Iterable[str]) -> tuple[int, dict[str, Agency]]:
    """How many agencies the directory holds, and those of `organ_ids` it knows."""
    codes = list(dict.fromkeys(organ_ids))
    total = int(conn.execute("SELECT count(*) FROM agencies").fetchone()[0])
    if not total or not codes:
        return total, {}
    marks = ", ".join("?" for _ in codes)
    rows = conn.execute(f"SELECT {_COLUMNS} FROM agencies WHERE organ_id IN ({marks})", codes)
    found = {r[0]: _agency_of(r) for r in rows}
    return total, found


def refusal(organ_id: str, known: Agency | None, day: dt.date, *, role: str) -> GatewayFault | None:
    """The refusal of an agency the (non-empty) directory does not know or that is not valid on
    `day`, naming its successor; None when it may be addressed. `role` is "recipient"
    (UnknownRecipient) or "sender" (RuleViolation)."""
    role_vi = "cơ quan nhận" if role == "recipient" else "cơ quan gửi"
    code = FaultCode.UNKNOWN_RECIPIENT if role == "recipient" else FaultCode.RULE_VIOLATION
    if known is None:
        return GatewayFault(
            code,
            f"The {role} {organ_id} is not in the agency directory",
            f"{role_vi.capitalize()} {organ_id} không có trong danh bạ cơ quan",
        )
    if known.valid_on(day):
        return None
    if known.valid_to is not None and day > known.valid_to:
        successor = f"; its successor is {known.successor}" if known.successor else ""
        successor_vi = f"; cơ quan kế thừa là {known.successor}" if known.successor else ""
        return GatewayFault(
            code,
            f"The {role} {organ_id} ({known.name}) ceased on {known.valid_to.isoformat()}"
            f"{successor}",
            f"{role_vi.capitalize()} {organ_id} ({known.name}) đã ngừng hoạt động từ "
            f"{known.valid_to.isoformat()}{successor_vi}",
        )
    since = known.valid_from.isoformat() if known.valid_from else "?"
    return GatewayFault(
        code,
        f"The {role} {organ_id} ({known.name}) exists only from {since}",
        f"{role_vi.capitalize()} {organ_id} ({known.name}) chỉ có hiệu lực từ {since}",
    )


# --- sync from an axis (issue #6) ---------------------------------------------------------------

# An axis answer that suddenly lists far fewer agencies than the last one is a broken answer
# (a partial dump, an error page parsed leniently), not half the state apparatus dissolving.
SHRINK_REFUSED_BELOW: Final = 0.5


@attrs.frozen
class AxisAgency:
    """One entry of an axis agency list (VXP getAgenciesList: code, name, id, pid)."""

    code: str
    name: str
    id: str | None = None
    pid: str | None = None


@attrs.frozen
class SyncResult:
    added: int
    changed: int
    removed: int
    kept_local: int  # entries the axis lists but a local import overrides
    skipped: int  # entries with no valid OrganId or no name
    refused: str | None = None  # why nothing was written, if so

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def axis_source(route: str) -> str:
    return f"axis:{route}"


def sync_from_axis(
    conn: sqlite3.Connection,
    route: str,
    entries: Sequence[AxisAgency],
    *,
    now: dt.datetime,
    actor: str,
) -> SyncResult:
    """Merge an axis' agency list into the directory, in one transaction.

    Local entries (imported from a file) win: the axis never overwrites them. The axis' own
    entries are upserted and those it no longer lists are removed. A list much shorter than the
    last one from the same axis is refused whole (SHRINK_REFUSED_BELOW) and audited."""
    source = axis_source(route)
    by_id = {e.id: e.code for e in entries if e.id}
    local = {
        r[0] for r in conn.execute("SELECT organ_id FROM agencies WHERE source <> ?", (source,))
    }
    ours = {r[0] for r in conn.execute("SELECT organ_id FROM agencies WHERE source = ?", (source,))}
    wanted: dict[str, Agency] = {}
    skipped = kept = 0
    for entry in entries:
        code, name = entry.code.strip(), nfc(entry.name.strip())
        if not organid.is_valid(code) or not name:
            skipped += 1
            continue
        if code in local:
            kept += 1
            continue
        parsed = organid.ClassicOrganId.try_parse(code)
        parent = by_id.get(entry.pid) if entry.pid else None
        if parent is None and parsed is not None and parsed.parent is not None:
            parent = str(parsed.parent)
        wanted[code] = Agency(
            organ_id=code,
            name=name,
            parent=parent,
            level=parsed.level if parsed is not None else None,
            source=source,
        )
    if ours and len(wanted) < len(ours) * SHRINK_REFUSED_BELOW:
        why = f"the axis listed {len(wanted)} agencies where it listed {len(ours)} before"
        append_audit(
            conn,
            at=now,
            actor=actor,
            action="directory-sync-refused",
            subject_type="directory",
            subject_id=source,
            detail={"listed": len(wanted), "before": len(ours)},
        )
        return SyncResult(0, 0, 0, kept, skipped, refused=why)
    added, changed = import_agencies(conn, wanted.values(), now=now, actor=actor, audit=False)
    gone = sorted(ours - set(wanted))
    conn.executemany(
        "DELETE FROM agencies WHERE organ_id = ? AND source = ?", [(c, source) for c in gone]
    )
    result = SyncResult(added, changed, len(gone), kept, skipped)
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="directory-sync",
        subject_type="directory",
        subject_id=source,
        detail=result.to_json(),
    )
    return result
