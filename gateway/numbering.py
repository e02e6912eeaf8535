"""Issuing document numbers (R12, Decree 30 Art. 15; floor 3): the next number of a register for
a hosted agency and year, and the DocumentId it makes.

Numbers run from 01 on 1 January to 31 December of the issue date's year in Vietnam time, below
10 with a leading zero (01 … 09, 10, 11 …). An agency may keep several registers (one for all
its administrative documents, or one per type; secret documents keep theirs apart): a register
is a name the agency chooses. Each number is issued once: the counter and the issued number are
written in one transaction under the store's write lock, so concurrent callers (the office face
in the daemon, `gateway number issue` beside it) never get the same one. Every issue is audited.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from typing import Final

import attrs

from edxml.organid import DocumentId, DocumentIdInvalid
from gateway.soap import FaultCode, GatewayFault
from gateway.store import append_audit, utc_text

DEFAULT_REGISTER: Final = "default"
_REGISTER = re.compile(r"[\w.\-]{1,40}")
_NOTATION = re.compile(r"[^\s/,]{1,40}")


@attrs.frozen
class IssuedNumber:
    organ_id: str
    register: str
    year: int
    number: int
    code_number: str  # as printed: 01 … 09, 10 …
    notation: str
    document_id: str
    date: dt.date

    def to_json(self) -> dict[str, object]:
        return {**attrs.asdict(self), "date": self.date.isoformat()}


def code_number(number: int) -> str:
    return f"{number:02d}"


def issue_number(
    conn: sqlite3.Connection,
    *,
    organ_id: str,
    notation: str,
    date: dt.date,
    now: dt.datetime,
    actor: str,
    register: str = DEFAULT_REGISTER,
) -> IssuedNumber:
    """The next number of `register` for `organ_id` in `date`'s year, recorded (inside the
    caller's write transaction). Raises GatewayFault(BadRequest) for a malformed notation or
    register."""
    register = register.strip() or DEFAULT_REGISTER
    notation = notation.strip()
    if not _REGISTER.fullmatch(register):
        raise GatewayFault(
            FaultCode.BAD_REQUEST,
            f"Register {register!r}: letters, digits, '.', '-' or '_', at most 40",
            f"Sổ đăng ký {register!r}: chữ, số, '.', '-' hoặc '_', tối đa 40 ký tự",
        )
    if not _NOTATION.fullmatch(notation):
        raise GatewayFault(
            FaultCode.BAD_REQUEST,
            f"Notation {notation!r}: such as UBND-VP or QĐ-UBND, no spaces, '/' or ','",
            f"Ký hiệu {notation!r}: ví dụ UBND-VP hoặc QĐ-UBND, không có dấu cách, '/' hay ','",
        )
    year = date.year
    row = conn.execute(
        "SELECT last_number FROM registers WHERE organ_id = ? AND register = ? AND year = ?",
        (organ_id, register, year),
    ).fetchone()
    number = (int(row[0]) if row else 0) + 1
    printed = code_number(number)
    try:
        document_id = str(DocumentId.for_header(organ_id, date, f"{printed}/{notation}"))
    except DocumentIdInvalid as exc:
        raise GatewayFault(FaultCode.BAD_REQUEST, exc.message_en, exc.message_vi) from None
    conn.execute(
        "INSERT INTO registers (organ_id, register, year, last_number) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (organ_id, register, year) DO UPDATE SET last_number = excluded.last_number",
        (organ_id, register, year, number),
    )
    conn.execute(
        "INSERT INTO issued_numbers (organ_id, register, year, number, notation, document_id,"
        " issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (organ_id, register, year, number, notation, document_id, utc_text(now), actor),
    )
    append_audit(
        conn,
        at=now,
        actor=actor,
        action="number-issued",
        subject_type="register",
        subject_id=f"{organ_id}/{register}/{year}",
        detail={"number": number, "document_id": document_id},
    )
    return IssuedNumber(organ_id, register, year, number, printed, notation, document_id, date)
