"""The regulation's rules over one envelope (floor 4): pure functions, no store, no network.

* R1 (Art. 1.2): state-secret documents never travel electronically. `secret_marking` finds the
  marking of a secret document (Mật, Tối mật, Tuyệt mật) where senders write it: the
  SphereOfPromulgation, a stamp in the subject, or an explicit extension field. Words that merely
  contain "mật" (bí mật, mật khẩu, mật mã, mật độ) are not markings: a subject has to carry the
  stamp itself, bracketed or leading, as stamps are printed.
* R7 (Art. 6.5): some documents go on paper too. `paper_reasons` lists why: the sender says so
  (Bussiness/Paper = 1), a recipient the configuration names (the Government and the ministries
  by default), a legal normative document (its number carries the year, as 12/2024/QĐ-UBND), a
  submission (Tờ trình, Báo cáo, Đề án, Dự án) to a provincial People's Committee, or a finance,
  personnel or complaint matter named in the subject.
* R9 (Art. 7.2): issued on the day of signing, at the latest the next working morning.
  `late_issue` says when an envelope leaves (or arrives) after that.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from typing import Final

import attrs
from lxml import etree

from edxml import xmlsafe
from edxml.errors import EdxmlError
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.model import Envelope
from gateway.calendar import OfficeCalendar, vietnam_time
from gateway.config import PolicyConfig

SECRET_DOCUMENT = FindingCode(
    "SecretDocument",
    Severity.ERROR,
    "The document is marked {marking} ({where}): state-secret documents are never sent "
    "electronically",
    "Văn bản có đóng dấu độ mật {marking} ({where_vi}): văn bản mật không được gửi, nhận qua "
    "môi trường điện tử",
    Fault.SECRET_DOCUMENT,
)
PAPER_REQUIRED = FindingCode(
    "PaperCopyRequired",
    Severity.INFO,
    "A paper copy must also be sent: {reasons}",
    "Văn bản phải gửi kèm bản giấy: {reasons_vi}",
)
LATE_ISSUE = FindingCode(
    "LateIssue",
    Severity.WARNING,
    "Signed on {signed}, issued at {at}: later than the next working morning ({deadline})",
    "Ký ban hành ngày {signed}, phát hành lúc {at}: muộn hơn buổi sáng ngày làm việc tiếp theo "
    "({deadline})",
)

_LEVELS: Final = ("tuyệt mật", "tối mật", "mật")  # longest first: "tối mật" is not "mật"
_LEVEL_NAMES: Final = {"tuyệt mật": "Tuyệt mật", "tối mật": "Tối mật", "mật": "Mật"}
_LEVEL = "(tuyệt mật|tối mật|mật)"
_BRACKETED = re.compile(rf"[(\[{{«]\s*{_LEVEL}\s*[)\]}}»]", re.IGNORECASE)
_STAMP_AT_START = re.compile(rf"^\W*{_LEVEL.upper()}(?=\s*(?:[-–—:|/.,;)\]]|$))")
_DEGREE = re.compile(rf"độ\s+mật\s*[:=]?\s*{_LEVEL}\b", re.IGNORECASE)
# Extension elements (any namespace) in which an explicit classification may travel.
_SECRET_FIELDS: Final = frozenset(
    {"securitylevel", "secretlevel", "domat", "secret", "classification"}
)
_NOT_SECRET: Final = frozenset({"", "0", "false", "không", "khong", "thường", "thuong", "none"})


def _folded(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold().strip()


def _level_of(text: str) -> str | None:
    folded = _folded(text)
    for level in _LEVELS:
        if folded == level or folded.startswith(level + " ") or folded.startswith(level + ":"):
            return _LEVEL_NAMES[level]
    found = _DEGREE.search(folded)
    return _LEVEL_NAMES[found.group(1).casefold()] if found else None


@attrs.frozen
class Marking:
    level: str  # Mật | Tối mật | Tuyệt mật
    where_en: str
    where_vi: str


def secret_marking(env: Envelope) -> Marking | None:
    """The secret marking the envelope carries, if any (see the module docstring)."""
    header = env.header
    sphere = header.other_info.sphere_of_promulgation
    level = _level_of(sphere) if sphere else None
    if level is not None:
        return Marking(level, "SphereOfPromulgation", "phạm vi lưu hành")
    subject = unicodedata.normalize("NFC", header.subject)
    found = _BRACKETED.search(subject) or _STAMP_AT_START.search(subject) or _DEGREE.search(subject)
    if found:
        return Marking(_LEVEL_NAMES[found.group(1).casefold()], "Subject", "trích yếu")
    for extension in (*header.other_info.extensions, *header.extensions):
        local = etree.QName(extension.tag).localname.casefold()
        if local not in _SECRET_FIELDS:
            continue
        value = _extension_text(extension.xml)
        if _folded(value) in _NOT_SECRET:
            continue
        named = _level_of(value) or "Mật"
        return Marking(named, f"OtherInfo/{etree.QName(extension.tag).localname}", "trường độ mật")
    return None


def _extension_text(xml: bytes) -> str:
    try:
        element = xmlsafe.parse(xml)
    except (EdxmlError, etree.XMLSyntaxError):  # an extension we cannot read marks nothing
        return ""
    return "".join(element.itertext())


def secret_finding(env: Envelope) -> Finding | None:
    marking = secret_marking(env)
    if marking is None:
        return None
    return SECRET_DOCUMENT(
        marking.where_en,
        marking=marking.level,
        where=marking.where_en,
        where_vi=marking.where_vi,
    )


# --- R7: paper copy also required ---------------------------------------------------------------

_LEGAL_NORMATIVE_NUMBER = re.compile(r"^\s*\d+\s*/\s*\d{4}\s*/")
_LEGAL_NORMATIVE_TYPES: Final = (
    "luật",
    "pháp lệnh",
    "nghị định",
    "thông tư",
    "nghị quyết liên tịch",
)
_SUBMISSION_TYPES: Final = ("tờ trình", "báo cáo", "đề án", "dự án")


@attrs.frozen
class Reason:
    en: str
    vi: str


def paper_reasons(env: Envelope, policy: PolicyConfig) -> tuple[Reason, ...]:
    """Why the envelope also needs a paper copy (empty: it does not)."""
    header = env.header
    reasons: list[Reason] = []
    if env.trace.business.paper:
        reasons.append(Reason("the sender sends it on paper too", "bên gửi có gửi kèm bản giấy"))
    named = [o.organ_id for o in header.to if policy.matches(policy.paper_recipients, o.organ_id)]
    if named:
        listed = ", ".join(named)
        reasons.append(
            Reason(
                f"sent to {listed} (Government, ministries)", f"gửi {listed} (Chính phủ, bộ ngành)"
            )
        )
    type_name = _folded(header.document_type.type_name)
    if _LEGAL_NORMATIVE_NUMBER.match(header.code.code_number + "/" + header.code.code_notation) or (
        type_name.startswith(_LEGAL_NORMATIVE_TYPES)
    ):
        reasons.append(Reason("a legal normative document", "văn bản quy phạm pháp luật"))
    submitted = [
        o.organ_id for o in header.to if policy.matches(policy.paper_submission_to, o.organ_id)
    ]
    if submitted and (
        type_name.startswith(_SUBMISSION_TYPES) or _folded(header.subject).startswith("tờ trình")
    ):
        listed = ", ".join(submitted)
        reasons.append(
            Reason(
                f"a submission to the People's Committee {listed}",
                f"văn bản, hồ sơ trình Ủy ban nhân dân {listed}",
            )
        )
    subject = _folded(header.subject)
    matters = [k for k in policy.paper_keywords if _folded(k) in subject]
    if matters:
        listed = ", ".join(matters)
        reasons.append(Reason(f"a matter of {listed}", f"nội dung liên quan đến {listed}"))
    return tuple(reasons)


def paper_finding(reasons: Sequence[Reason]) -> Finding | None:
    if not reasons:
        return None
    return PAPER_REQUIRED(
        None,
        reasons="; ".join(r.en for r in reasons),
        reasons_vi="; ".join(r.vi for r in reasons),
    )


# --- R9: issued by the next working morning -----------------------------------------------------


def late_issue(env: Envelope, calendar: OfficeCalendar, at: dt.datetime) -> Finding | None:
    """A warning when the envelope leaves (or arrives) at `at`, after the next working morning
    following its promulgation date; None when it has no date or is in time."""
    signed = env.header.promulgation_info.promulgation_date
    if signed is None:
        return None
    deadline = calendar.issue_deadline(signed)
    if at <= deadline:
        return None
    return LATE_ISSUE(
        None,
        signed=signed.isoformat(),
        at=vietnam_time(at).isoformat(timespec="seconds"),
        deadline=vietnam_time(deadline).isoformat(timespec="seconds"),
    )


# --- one envelope, every rule -------------------------------------------------------------------


@attrs.frozen
class Ruling:
    """What the rules above say about one envelope at one moment."""

    secret: Finding | None
    paper: tuple[Reason, ...]
    late: Finding | None

    @property
    def findings(self) -> tuple[Finding, ...]:
        """The findings to store with the verdict (the refusal first, if any)."""
        paper = paper_finding(self.paper)
        return tuple(f for f in (self.secret, paper, self.late) if f is not None)


def rule(env: Envelope, policy: PolicyConfig, calendar: OfficeCalendar, at: dt.datetime) -> Ruling:
    """R1, R7 and R9 over `env`, sent or received at `at`; `calendar` is the sender's."""
    return Ruling(
        secret=secret_finding(env),
        paper=paper_reasons(env, policy),
        late=late_issue(env, calendar, at),
    )


def links(env: Envelope) -> tuple[tuple[str, str], ...]:
    """(kind, DocumentId) of every document `env` refers to: the ones it answers (R16) and the
    target of a revoke, update or replace (R14)."""
    found = [("response_for", r.document_id) for r in env.header.response_for if r.document_id]
    business = env.trace.business
    target = business.document_id
    kind = {1: "revokes", 2: "updates", 3: "replaces"}.get(int(business.doc_type))
    if kind is not None:
        if target:
            found.append((kind, target))
        if kind == "replaces":
            found += [(kind, r.document_id) for r in business.replacements if r.document_id]
    return tuple(dict.fromkeys(found))
