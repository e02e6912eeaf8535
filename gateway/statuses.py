"""Status packets this node writes (floor 3): 01 and 02 by itself, 03–06 and 02 for an office
system, 13 to ask for a recall, 15/16 to answer one.

`ResponseFor` names the document reported on as its sender wrote it (sender OrganId, "số/ký hiệu",
PromulgationDate, DocumentId); `From` is the reporting agency, one hosted here; `Timestamp` is the
caller's clock in +07:00. A rejection (02) must say why (QCVN 102: Description is required for
02); the reason goes out in Vietnamese first, then English, for the people on both sides.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Final

from edxml.codes import StatusCode
from edxml.findings import Finding
from edxml.model import VN_TZ, Envelope, Organization, ResponseFor, StaffInfo, StatusPacket
from gateway.config import Config

__all__ = [
    "OFFICE_CODES",
    "arrived",
    "from_office",
    "recall_answer",
    "recall_request",
    "rejected",
    "reporter",
    "response_for",
    "summarise_findings",
]

# What an office system may report with UpdateStatus.
OFFICE_CODES: Final = frozenset(
    {
        StatusCode.REJECTED,
        StatusCode.ACCEPTED,
        StatusCode.ASSIGNED,
        StatusCode.PROCESSING,
        StatusCode.DONE,
    }
)
# A Description longer than this helps nobody and may hit a peer's column limit.
MAX_DESCRIPTION: Final = 2000
MAX_REASONS: Final = 5


def staff_json(staff: StaffInfo | None) -> str:
    """How a status' StaffInfo is kept with its history line (the office face shows it)."""
    data = (
        {
            "department": staff.department,
            "name": staff.staff,
            "mobile": staff.mobile,
            "email": staff.email,
        }
        if staff is not None
        else {}
    )
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def reporter(config: Config, organ_id: str) -> Organization:
    """The `From` of a status this node writes: a hosted agency, as configured."""
    agency = config.agency(organ_id)
    if agency is None:
        raise ValueError(f"{organ_id} is not hosted on this node")
    return Organization(organ_id=agency.organ_id, organ_name=agency.name)


def response_for(doc: Envelope) -> ResponseFor:
    h = doc.header
    code = str(h.code) if (h.code.code_number or h.code.code_notation) else ""
    return ResponseFor(
        organ_id=h.from_.organ_id,
        code=code,
        promulgation_date=h.promulgation_info.promulgation_date,
        document_id=h.document_id,
    )


def _packet(
    about: ResponseFor,
    by: Organization,
    code: StatusCode,
    at: dt.datetime,
    description: str = "",
    staff: StaffInfo | None = None,
) -> StatusPacket:
    if at.tzinfo is None:
        raise ValueError("naive datetime: status timestamps must be timezone-aware")
    if code is StatusCode.REJECTED and not description.strip():
        raise ValueError("a rejection (02) must give its reason in Description")
    return StatusPacket(
        response_for=about,
        from_=by,
        status_code=code,
        description=description[:MAX_DESCRIPTION],
        timestamp=at.astimezone(VN_TZ).replace(microsecond=0),
        staff_info=staff,
    )


def arrived(about: ResponseFor, by: Organization, *, at: dt.datetime) -> StatusPacket:
    """01, sent by this node itself once the envelope is durably stored (R6)."""
    return _packet(about, by, StatusCode.ARRIVED, at, StatusCode.ARRIVED.label_vi)


def summarise_findings(
    findings: Iterable[Finding], *, fallback_en: str = "", fallback_vi: str = ""
) -> str:
    """The errors among `findings` as one Description: Vietnamese, then English."""
    errors = [f for f in findings if f.is_error][:MAX_REASONS]
    vi = "; ".join(f.message_vi for f in errors) or fallback_vi
    en = "; ".join(f.message_en for f in errors) or fallback_en
    return f"Từ chối tiếp nhận: {vi} / Rejected: {en}"


def rejected(about: ResponseFor, by: Organization, *, at: dt.datetime, reason: str) -> StatusPacket:
    """02 with its reason (R13); `reason` is typically `summarise_findings(...)`."""
    return _packet(about, by, StatusCode.REJECTED, at, reason)


def from_office(
    about: ResponseFor,
    by: Organization,
    code: StatusCode,
    *,
    at: dt.datetime,
    description: str = "",
    staff: StaffInfo | None = None,
) -> StatusPacket:
    """03–06, or 02 with a reason, as an office system reports them (UpdateStatus)."""
    if code not in OFFICE_CODES:
        raise ValueError(f"an office system does not report status {code.value}")
    if code is not StatusCode.REJECTED:
        description = description or code.label_vi
    return _packet(about, by, code, at, description, staff)


def recall_request(
    about: ResponseFor, by: Organization, *, at: dt.datetime, reason: str = ""
) -> StatusPacket:
    """13: the sender asks the recipients to give the document back (R14)."""
    code = StatusCode.RECALL_REQUESTED
    return _packet(about, by, code, at, reason or code.label_vi)


def recall_answer(
    about: ResponseFor,
    by: Organization,
    *,
    agreed: bool,
    at: dt.datetime,
    description: str = "",
    staff: StaffInfo | None = None,
) -> StatusPacket:
    """15 (recall agreed) or 16 (recall refused), from a recipient."""
    code = StatusCode.RECALL_AGREED if agreed else StatusCode.RECALL_REFUSED
    return _packet(about, by, code, at, description or code.label_vi, staff)
