"""Business rules of QCVN 102:2016 that a schema cannot express.

`check(doc)` runs every rule; each rule is also a function of its own so that it can be tested and
reused alone. Rules only report: an odd model (empty strings, missing dates, duplicates) gives
findings, never an exception. Paths are the reader's (see edxml.text): element names from the
root's children down, e.g. `/edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

from edxml.codes import BusinessDocType, Priority, StatusCode
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.model import VN_TZ, Envelope, Reference, ResponseFor, StatusPacket
from edxml.organid import (
    PARTS,
    DocumentId,
    DocumentIdInvalid,
    LegacyDocumentId,
    OrganIdForm,
    classify,
)
from edxml.text import (
    ATTACHMENT_PATH,
    HEADER_PATH,
    MANIFEST_PATH,
    STATUS_PATH,
    TRACE_PATH,
    short_path,
)

HEADER = HEADER_PATH
TRACE = TRACE_PATH
BUSINESS = f"{TRACE}/Bussiness"
MANIFEST = MANIFEST_PATH
ATTACHMENTS = ATTACHMENT_PATH
STATUS = STATUS_PATH

# Clocks of two agencies are never exactly in step; a trace stamped a little ahead is not news.
CLOCK_SKEW = dt.timedelta(minutes=5)

_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_RULE = Fault.RULE_VIOLATION

# --- OrganId ----------------------------------------------------------------------------------

ORGAN_ID_MISSING = FindingCode(
    "OrganIdMissing",
    _E,
    "No OrganId at {field}",
    "Thiếu mã định danh cơ quan (OrganId) tại {field}",
    _RULE,
)
ORGAN_ID_INVALID = FindingCode(
    "OrganIdInvalid",
    _E,
    "OrganId “{value}” at {field} is neither XXX.XX.XX.YNN nor a code of at most 35 characters "
    "from 0-9 A-Z a-z . - : _",
    "Mã định danh cơ quan “{value}” tại {field} không theo dạng XXX.XX.XX.YNN, cũng không phải "
    "mã tối đa 35 ký tự gồm 0-9 A-Z a-z . - : _",
    _RULE,
)
ORGAN_ID_EXTENDED = FindingCode(
    "OrganIdExtended",
    _I,
    "OrganId “{value}” at {field} is valid only in the extended form of SĐ1:2022",
    "Mã định danh cơ quan “{value}” tại {field} chỉ hợp lệ theo dạng mở rộng của SĐ1:2022",
)

# --- DocumentId -------------------------------------------------------------------------------

DOCUMENT_ID_MISSING = FindingCode(
    "DocumentIdMissing",
    _E,
    "No DocumentId at {field}: {{OrganId}},{{yyyy/MM/dd}},{{number}}/{{notation}} is required",
    "Thiếu mã định danh văn bản tại {field}: cần có {{OrganId}},{{yyyy/MM/dd}},{{số}}/{{ký hiệu}}",
    _RULE,
)
DOCUMENT_ID_INVALID = FindingCode(
    "DocumentIdInvalid",
    _E,
    "DocumentId “{value}” at {field} is invalid: {part}: {reason}",
    "Mã định danh văn bản “{value}” tại {field} không hợp lệ: {part_vi}: {reason_vi}",
    _RULE,
)
DOCUMENT_ID_LEGACY = FindingCode(
    "DocumentIdLegacy",
    _W,
    "DocumentId “{value}” at {field} has the old {{OrganId}},{{yyyy}},{{sequence}} form",
    "Mã định danh văn bản “{value}” tại {field} theo dạng cũ {{OrganId}},{{yyyy}},{{số thứ tự}}",
    _RULE,
)
DOCUMENT_ID_MISMATCH = FindingCode(
    "DocumentIdMismatch",
    _E,
    "DocumentId “{value}” does not match the header: its {part} is “{found}”, the header's is "
    "“{expected}”",
    "Mã định danh văn bản “{value}” không khớp với tiêu đề: {part_vi} trong mã là “{found}”, "
    "trong tiêu đề là “{expected}”",
    _RULE,
)

# --- header -----------------------------------------------------------------------------------

HEADER_FIELD_MISSING = FindingCode(
    "HeaderFieldMissing",
    _E,
    "{field} is missing or empty",
    "{field} bị thiếu hoặc trống",
    _RULE,
)
SUBJECT_MISSING = FindingCode(
    "SubjectMissing",
    _W,
    "The document has no Subject (trích yếu)",
    "Văn bản không có trích yếu (Subject)",
)
DUE_DATE_BEFORE_PROMULGATION = FindingCode(
    "DueDateBeforePromulgation",
    _W,
    "DueDate {due} is before PromulgationDate {promulgated}",
    "Hạn xử lý {due} sớm hơn ngày ban hành {promulgated}",
)
PROMULGATION_DATE_FUTURE = FindingCode(
    "PromulgationDateFuture",
    _W,
    "PromulgationDate {promulgated} is after today ({today})",
    "Ngày ban hành {promulgated} sau ngày hôm nay ({today})",
)
PRIORITY_HOA_TOC_HEN_GIO = FindingCode(
    "PriorityHoaTocHenGio",
    _I,
    "Priority 4 (Hỏa tốc hẹn giờ) predates Decree 30/2020 and is handled as Hỏa tốc",
    "Độ khẩn 4 (Hỏa tốc hẹn giờ) không còn trong Nghị định 30/2020, được xử lý như Hỏa tốc",
)

# --- recipients and replies -------------------------------------------------------------------

RECIPIENT_MISSING = FindingCode(
    "RecipientMissing",
    _E,
    "The envelope names no recipient (To)",
    "Gói tin không có nơi nhận (To)",
    _RULE,
)
RECIPIENT_DUPLICATE = FindingCode(
    "RecipientDuplicate",
    _E,
    "Recipient {value} is named {count} times in To",
    "Nơi nhận {value} xuất hiện {count} lần trong To",
    _RULE,
)
SENDER_IS_RECIPIENT = FindingCode(
    "SenderIsRecipient",
    _W,
    "The sender {value} is also a recipient",
    "Cơ quan gửi {value} đồng thời là nơi nhận",
)
RESPONSE_FOR_DOCUMENT_ID_MISSING = FindingCode(
    "ResponseForDocumentIdMissing",
    _W,
    "No DocumentId at {field}: the reply cannot be linked to the document it answers",
    "Thiếu mã định danh văn bản tại {field}: không liên kết được văn bản phúc đáp với văn bản gốc",
)
RESPONSE_FOR_MISMATCH = FindingCode(
    "ResponseForMismatch",
    _W,
    "DocumentId “{value}” at {field} disagrees with its ResponseFor: its {part} is “{found}”, "
    "ResponseFor says “{expected}”",
    "Mã định danh văn bản “{value}” tại {field} không khớp với ResponseFor: {part_vi} trong mã "
    "là “{found}”, ResponseFor ghi “{expected}”",
)

# --- manifest and attachments -----------------------------------------------------------------

CONTENT_ID_MISSING = FindingCode(
    "ContentIdMissing",
    _E,
    "{field} has no ContentId",
    "{field} không có ContentId",
    _RULE,
)
MANIFEST_MISMATCH = FindingCode(
    "ManifestMismatch",
    _W,
    "{part} of ContentId {value} differs: the manifest says “{declared}”, the attachment "
    "“{actual}”",
    "{part} của ContentId {value} không khớp: edXMLManifest ghi “{declared}”, tệp đính kèm ghi "
    "“{actual}”",
)
# --- business (Bussiness) ---------------------------------------------------------------------

_BUSINESS_NAMES = {
    BusinessDocType.NEW: ("new", "văn bản mới"),
    BusinessDocType.REVOKE: ("revoke", "thu hồi"),
    BusinessDocType.UPDATE: ("update", "cập nhật"),
    BusinessDocType.REPLACE: ("replace", "thay thế"),
}

BUSINESS_TARGET_MISSING = FindingCode(
    "BusinessTargetMissing",
    _E,
    "A {kind} envelope (BussinessDocType {code}) must name its target in Bussiness/DocumentId",
    "Gói tin {kind_vi} (BussinessDocType {code}) phải ghi mã định danh văn bản bị tác động "
    "trong Bussiness/DocumentId",
    _RULE,
)
BUSINESS_TARGET_UNEXPECTED = FindingCode(
    "BusinessTargetUnexpected",
    _W,
    "A new document (BussinessDocType 0) names a target DocumentId “{value}”",
    "Văn bản mới (BussinessDocType 0) lại ghi mã định danh văn bản bị tác động “{value}”",
)
BUSINESS_TARGET_FOREIGN = FindingCode(
    "BusinessTargetForeign",
    _W,
    "A {kind} envelope from {sender} targets a document of another agency ({value})",
    "Gói tin {kind_vi} của {sender} tác động lên văn bản của cơ quan khác ({value})",
)
BUSINESS_DOCUMENT_INFO_MISSING = FindingCode(
    "BusinessDocumentInfoMissing",
    _W,
    "An update (BussinessDocType 2) does not say what changed (BussinessDocumentInfo)",
    "Gói tin cập nhật (BussinessDocType 2) không có thông tin thay đổi (BussinessDocumentInfo)",
)
BUSINESS_RECEIVERS_MISSING = FindingCode(
    "BusinessReceiversMissing",
    _W,
    "DocumentReceiver says the recipients changed but ReceiverList is empty",
    "DocumentReceiver cho biết nơi nhận thay đổi nhưng ReceiverList trống",
)
REPLACEMENT_INFO_MISSING = FindingCode(
    "ReplacementInfoMissing",
    _E,
    "A replacement (BussinessDocType 3) has no ReplacementInfoList",
    "Gói tin thay thế (BussinessDocType 3) không có ReplacementInfoList",
    _RULE,
)

# --- trace ------------------------------------------------------------------------------------

TRACE_EMPTY = FindingCode(
    "TraceEmpty",
    _W,
    "TraceHeaderList has no TraceHeader",
    "TraceHeaderList không có TraceHeader nào",
)
TRACE_TIMESTAMP_MISSING = FindingCode(
    "TraceTimestampMissing",
    _W,
    "{field} has no Timestamp",
    "{field} không có Timestamp",
)
TRACE_TIMESTAMP_FUTURE = FindingCode(
    "TraceTimestampFuture",
    _W,
    "{field} is stamped {value}, in the future (now {now})",
    "{field} có thời điểm {value}, ở tương lai (hiện tại {now})",
)
TRACE_OUT_OF_ORDER = FindingCode(
    "TraceOutOfOrder",
    _W,
    "{field} ({value}) is earlier than the TraceHeader before it ({previous})",
    "{field} ({value}) sớm hơn TraceHeader trước nó ({previous})",
)
TRACE_ORIGIN_MISMATCH = FindingCode(
    "TraceOriginMismatch",
    _W,
    "The first TraceHeader is {value}, not the sender {sender}",
    "TraceHeader đầu tiên là {value}, không phải cơ quan gửi {sender}",
)

# --- status packets ---------------------------------------------------------------------------

STATUS_DESCRIPTION_REQUIRED = FindingCode(
    "StatusDescriptionRequired",
    _E,
    "A rejection (StatusCode 02) must give its reason in Description",
    "Trạng thái từ chối (StatusCode 02) phải nêu lý do trong Description",
    _RULE,
)
STATUS_TIMESTAMP_MISSING = FindingCode(
    "StatusTimestampMissing",
    _E,
    "The status packet has no Timestamp",
    "Gói tin trạng thái không có Timestamp",
    _RULE,
)
STATUS_TIMESTAMP_FUTURE = FindingCode(
    "StatusTimestampFuture",
    _W,
    "The status is stamped {value}, in the future (now {now})",
    "Trạng thái có thời điểm {value}, ở tương lai (hiện tại {now})",
)
STATUS_SENDER_UNEXPECTED = FindingCode(
    "StatusSenderUnexpected",
    _W,
    "Status {code} comes from {sender}; it is expected from {expected}",
    "Trạng thái {code} do {sender} gửi; đáng lẽ phải do {expected_vi} gửi",
)


# --- helpers ----------------------------------------------------------------------------------


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


def _date(value: dt.date) -> str:
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def _part(name: str) -> dict[str, str]:
    en, vi = PARTS[name]
    return {"part": en, "part_vi": vi}


def read_document_id(
    text: str, path: str
) -> tuple[DocumentId | LegacyDocumentId | None, tuple[Finding, ...]]:
    """Parse the DocumentId at `path`: the value (None if unreadable) and what was wrong."""
    try:
        parsed = DocumentId.parse(text)
    except DocumentIdInvalid as error:
        return None, (
            DOCUMENT_ID_INVALID(
                path=path,
                field=short_path(path),
                value=text,
                reason=error.reason_en,
                reason_vi=error.reason_vi,
                **_part(error.part),
            ),
        )
    if isinstance(parsed, LegacyDocumentId):
        return parsed, (DOCUMENT_ID_LEGACY(path=path, field=short_path(path), value=text),)
    return parsed, ()


def _organ_ids(doc: Envelope | StatusPacket) -> Iterator[tuple[str, str, bool]]:
    """(path, OrganId, required) for every OrganId the document names."""
    if isinstance(doc, StatusPacket):
        yield f"{STATUS}/From/OrganId", doc.from_.organ_id, True
        yield f"{STATUS}/ResponseFor/OrganId", doc.response_for.organ_id, True
        return
    header = doc.header
    yield f"{HEADER}/From/OrganId", header.from_.organ_id, True
    for index, to in enumerate(header.to, 1):
        yield f"{HEADER}/To[{index}]/OrganId", to.organ_id, True
    for index, reply in enumerate(header.response_for, 1):
        yield f"{HEADER}/ResponseFor[{index}]/OrganId", reply.organ_id, False
    for index, trace in enumerate(doc.trace.traces, 1):
        yield f"{TRACE}/TraceHeader[{index}]/OrganId", trace.organ_id, True
    business = doc.trace.business
    if business.document_info is not None:
        for index, receiver in enumerate(business.document_info.receivers, 1):
            path = f"{BUSINESS}/BussinessDocumentInfo/ReceiverList/Receiver[{index}]/OrganId"
            yield path, receiver.organ_id, True
    for index, replacement in enumerate(business.replacements, 1):
        for number, organ_id in enumerate(replacement.organ_ids, 1):
            path = (
                f"{BUSINESS}/ReplacementInfoList/ReplacementInfo[{index}]"
                f"/OrganIdList/OrganId[{number}]"
            )
            yield path, organ_id, True


# --- rules ------------------------------------------------------------------------------------


def check_organ_ids(doc: Envelope | StatusPacket) -> tuple[Finding, ...]:
    """Every OrganId is classic or SĐ1:2022-extended; required ones are present."""
    findings: list[Finding] = []
    for path, organ_id, required in _organ_ids(doc):
        if not organ_id:
            if required:
                findings.append(ORGAN_ID_MISSING(path=path, field=short_path(path)))
            continue
        form = classify(organ_id)
        if form is None:
            findings.append(ORGAN_ID_INVALID(path=path, field=short_path(path), value=organ_id))
        elif form is OrganIdForm.EXTENDED:
            findings.append(ORGAN_ID_EXTENDED(path=path, field=short_path(path), value=organ_id))
    return tuple(findings)


def check_header_fields(env: Envelope, now: dt.datetime | None = None) -> tuple[Finding, ...]:
    """Code, PromulgationDate and Subject are present; the dates are plausible."""
    header = env.header
    findings: list[Finding] = []
    required = (
        ("Code/CodeNumber", header.code.code_number),
        ("Code/CodeNotation", header.code.code_notation),
    )
    for name, value in required:
        if not value.strip():
            path = f"{HEADER}/{name}"
            findings.append(HEADER_FIELD_MISSING(path=path, field=short_path(path)))
    promulgated = header.promulgation_info.promulgation_date
    if promulgated is None:
        path = f"{HEADER}/PromulgationInfo/PromulgationDate"
        findings.append(HEADER_FIELD_MISSING(path=path, field=short_path(path)))
    if not header.subject.strip():
        findings.append(SUBJECT_MISSING(path=f"{HEADER}/Subject"))
    if promulgated is not None and header.due_date is not None and header.due_date < promulgated:
        findings.append(
            DUE_DATE_BEFORE_PROMULGATION(
                path=f"{HEADER}/DueDate", due=_date(header.due_date), promulgated=_date(promulgated)
            )
        )
    if promulgated is not None and now is not None:
        today = _aware(now).astimezone(VN_TZ).date()
        if promulgated > today:
            findings.append(
                PROMULGATION_DATE_FUTURE(
                    path=f"{HEADER}/PromulgationInfo/PromulgationDate",
                    promulgated=_date(promulgated),
                    today=_date(today),
                )
            )
    return tuple(findings)


def check_document_id(env: Envelope) -> tuple[Finding, ...]:
    """The header's DocumentId is {From OrganId},{PromulgationDate},{CodeNumber}/{CodeNotation}."""
    path = f"{HEADER}/DocumentId"
    text = env.header.document_id
    if not text.strip():
        return (DOCUMENT_ID_MISSING(path=path, field=short_path(path)),)
    parsed, findings = read_document_id(text, path)
    if parsed is None:
        return findings
    header = env.header
    expected: list[tuple[str, str, str]] = [("OrganId", parsed.organ_id, header.from_.organ_id)]
    if isinstance(parsed, DocumentId):
        promulgated = header.promulgation_info.promulgation_date
        if promulgated is not None:
            expected.append(("date", _date(parsed.date), _date(promulgated)))
        expected.append(("CodeNumber", parsed.code_number, header.code.code_number.strip()))
        expected.append(("CodeNotation", parsed.code_notation, header.code.code_notation.strip()))
    mismatches = [
        DOCUMENT_ID_MISMATCH(path=path, value=text, found=found, expected=want, **_part(part))
        for part, found, want in expected
        if want and found != want
    ]
    return findings + tuple(mismatches)


def _response_for_mismatches(
    reply: ResponseFor, parsed: DocumentId | LegacyDocumentId, path: str
) -> Iterator[Finding]:
    checks: list[tuple[str, str, str]] = [("OrganId", parsed.organ_id, reply.organ_id)]
    if isinstance(parsed, DocumentId):
        if reply.promulgation_date is not None:
            checks.append(("date", _date(parsed.date), _date(reply.promulgation_date)))
        checks.append(("code", parsed.code, "/".join(p.strip() for p in reply.code.split("/", 1))))
    for part, found, want in checks:
        if want and found != want:
            yield RESPONSE_FOR_MISMATCH(
                path=path,
                field=short_path(path),
                value=reply.document_id,
                found=found,
                expected=want,
                **_part(part),
            )


def check_replies(env: Envelope) -> tuple[Finding, ...]:
    """Each ResponseFor of a reply names a readable DocumentId that agrees with its other parts."""
    findings: list[Finding] = []
    for index, reply in enumerate(env.header.response_for, 1):
        path = f"{HEADER}/ResponseFor[{index}]/DocumentId"
        if not reply.document_id.strip():
            findings.append(RESPONSE_FOR_DOCUMENT_ID_MISSING(path=path, field=short_path(path)))
            continue
        parsed, problems = read_document_id(reply.document_id, path)
        findings.extend(problems)
        if parsed is not None:
            findings.extend(_response_for_mismatches(reply, parsed, path))
    return tuple(findings)


def check_recipients(env: Envelope) -> tuple[Finding, ...]:
    """At least one To, none named twice, and (a warning) the sender not among them."""
    to = env.header.to
    if not to:
        return (RECIPIENT_MISSING(path=f"{HEADER}/To"),)
    findings: list[Finding] = []
    counts = Counter(o.organ_id for o in to if o.organ_id)
    reported: set[str] = set()
    for index, organization in enumerate(to, 1):
        organ_id = organization.organ_id
        if counts[organ_id] > 1 and organ_id not in reported:
            reported.add(organ_id)
            findings.append(
                RECIPIENT_DUPLICATE(
                    path=f"{HEADER}/To[{index}]/OrganId", value=organ_id, count=counts[organ_id]
                )
            )
    sender = env.header.from_.organ_id
    if sender and sender in counts:
        findings.append(SENDER_IS_RECIPIENT(path=f"{HEADER}/From/OrganId", value=sender))
    return tuple(findings)


def _content_id(value: str) -> str:
    """A ContentId as matched: without `cid:` and angle brackets (senders differ, §2.2)."""
    value = value.strip()
    if value[:4].lower() == "cid:":
        value = value[4:]
    return value.strip().strip("<>").strip()


def check_manifest(env: Envelope) -> tuple[Finding, ...]:
    """Each manifest Reference and each Attachment has a ContentId, and the two describe the
    same file alike.

    Which ContentIds are missing, undeclared or repeated is the reader's to say
    (AttachmentMissing, AttachmentNotInManifest, ContentIdDuplicate): it sees them as written.
    """
    findings: list[Finding] = []
    declared: dict[str, Reference] = {}
    for index, reference in enumerate(env.manifest, 1):
        cid = _content_id(reference.content_id)
        if not cid:
            path = f"{MANIFEST}[{index}]"
            findings.append(CONTENT_ID_MISSING(path=f"{path}/ContentId", field=short_path(path)))
        else:
            declared.setdefault(cid, reference)
    for index, attachment in enumerate(env.attachments, 1):
        path = f"{ATTACHMENTS}[{index}]"
        cid = _content_id(attachment.content_id)
        if not cid:
            findings.append(CONTENT_ID_MISSING(path=f"{path}/ContentId", field=short_path(path)))
            continue
        match = declared.get(cid)
        if match is None:
            continue
        pairs = (
            ("AttachmentName", match.attachment_name, attachment.attachment_name, False),
            ("ContentType", match.content_type, attachment.content_type, True),
        )
        for part, want, got, fold in pairs:
            a, b = want.strip(), got.strip()
            if (a.casefold() != b.casefold()) if fold else (a != b):
                findings.append(
                    MANIFEST_MISMATCH(
                        path=f"{path}/{part}", part=part, value=cid, declared=want, actual=got
                    )
                )
    return tuple(findings)


def check_business(env: Envelope) -> tuple[Finding, ...]:
    """Revoke/update/replace name a readable target and carry the parts their type needs."""
    business = env.trace.business
    kind, kind_vi = _BUSINESS_NAMES[business.doc_type]
    names = {"kind": kind, "kind_vi": kind_vi, "code": int(business.doc_type)}
    path = f"{BUSINESS}/DocumentId"
    target = business.document_id
    findings: list[Finding] = []
    if business.doc_type is BusinessDocType.NEW:
        if target.strip() and target.strip() != env.header.document_id.strip():
            findings.append(BUSINESS_TARGET_UNEXPECTED(path=path, value=target))
            findings.extend(read_document_id(target, path)[1])
    elif not target.strip():
        findings.append(BUSINESS_TARGET_MISSING(path=path, **names))
    else:
        parsed, problems = read_document_id(target, path)
        findings.extend(problems)
        sender = env.header.from_.organ_id
        if parsed is not None and sender and parsed.organ_id != sender:
            findings.append(
                BUSINESS_TARGET_FOREIGN(path=path, value=target, sender=sender, **names)
            )
    if business.doc_type is BusinessDocType.UPDATE:
        info = business.document_info
        if info is None:
            findings.append(BUSINESS_DOCUMENT_INFO_MISSING(path=f"{BUSINESS}"))
        elif info.document_receiver and not info.receivers:
            findings.append(
                BUSINESS_RECEIVERS_MISSING(path=f"{BUSINESS}/BussinessDocumentInfo/ReceiverList")
            )
    if business.doc_type is BusinessDocType.REPLACE and not business.replacements:
        findings.append(REPLACEMENT_INFO_MISSING(path=f"{BUSINESS}"))
    for index, replacement in enumerate(business.replacements, 1):
        where = f"{BUSINESS}/ReplacementInfoList/ReplacementInfo[{index}]/DocumentId"
        if not replacement.document_id.strip():
            findings.append(DOCUMENT_ID_MISSING(path=where, field=short_path(where)))
        else:
            findings.extend(read_document_id(replacement.document_id, where)[1])
    return tuple(findings)


def check_trace(env: Envelope, now: dt.datetime | None = None) -> tuple[Finding, ...]:
    """Trace headers exist, start at the sender, carry times in order and not in the future."""
    traces = env.trace.traces
    if not traces:
        return (TRACE_EMPTY(path=f"{TRACE}"),)
    findings: list[Finding] = []
    sender = env.header.from_.organ_id
    first = traces[0].organ_id
    if sender and first and first != sender:
        findings.append(
            TRACE_ORIGIN_MISMATCH(
                path=f"{TRACE}/TraceHeader[1]/OrganId", value=first, sender=sender
            )
        )
    limit = None if now is None else _aware(now) + CLOCK_SKEW
    previous: dt.datetime | None = None
    for index, trace in enumerate(traces, 1):
        path = f"{TRACE}/TraceHeader[{index}]/Timestamp"
        if trace.timestamp is None:
            findings.append(TRACE_TIMESTAMP_MISSING(path=path, field=f"TraceHeader[{index}]"))
            continue
        stamp = _aware(trace.timestamp)
        if limit is not None and now is not None and stamp > limit:
            findings.append(
                TRACE_TIMESTAMP_FUTURE(
                    path=path,
                    field=f"TraceHeader[{index}]",
                    value=stamp.isoformat(),
                    now=_aware(now).isoformat(),
                )
            )
        if previous is not None and stamp < previous:
            findings.append(
                TRACE_OUT_OF_ORDER(
                    path=path,
                    field=f"TraceHeader[{index}]",
                    value=stamp.isoformat(),
                    previous=previous.isoformat(),
                )
            )
        previous = stamp
    return tuple(findings)


def check_priority(env: Envelope) -> tuple[Finding, ...]:
    if env.header.other_info.priority is Priority.EXPRESS_TIMED:
        return (PRIORITY_HOA_TOC_HEN_GIO(path=f"{HEADER}/OtherInfo/Priority"),)
    return ()


def check_status(status: StatusPacket, now: dt.datetime | None = None) -> tuple[Finding, ...]:
    """A status packet names the document it reports on, is stamped, and gives reasons."""
    findings: list[Finding] = []
    reply = status.response_for
    path = f"{STATUS}/ResponseFor/DocumentId"
    parsed: DocumentId | LegacyDocumentId | None = None
    if not reply.document_id.strip():
        findings.append(DOCUMENT_ID_MISSING(path=path, field=short_path(path)))
    else:
        parsed, problems = read_document_id(reply.document_id, path)
        findings.extend(problems)
        if parsed is not None:
            findings.extend(_response_for_mismatches(reply, parsed, path))
    if status.status_code is StatusCode.REJECTED and not status.description.strip():
        findings.append(STATUS_DESCRIPTION_REQUIRED(path=f"{STATUS}/Description"))
    if status.timestamp is None:
        findings.append(STATUS_TIMESTAMP_MISSING(path=f"{STATUS}/Timestamp"))
    elif now is not None and _aware(status.timestamp) > _aware(now) + CLOCK_SKEW:
        findings.append(
            STATUS_TIMESTAMP_FUTURE(
                path=f"{STATUS}/Timestamp",
                value=_aware(status.timestamp).isoformat(),
                now=_aware(now).isoformat(),
            )
        )
    # 13 is the original sender asking for its document back; every other code is a recipient
    # reporting on a document it received.
    issuer = reply.organ_id or (parsed.organ_id if parsed is not None else "")
    sender = status.from_.organ_id
    if issuer and sender:
        recall = status.status_code is StatusCode.RECALL_REQUESTED
        expected: tuple[str, str] | None = None
        if recall and sender != issuer:
            expected = (f"the issuer {issuer}", f"cơ quan ban hành {issuer}")
        elif not recall and sender == issuer:
            expected = ("a recipient of the document", "một nơi nhận văn bản")
        if expected is not None:
            findings.append(
                STATUS_SENDER_UNEXPECTED(
                    path=f"{STATUS}/From/OrganId",
                    code=status.status_code.value,
                    sender=sender,
                    expected=expected[0],
                    expected_vi=expected[1],
                )
            )
    return tuple(findings)


def check_envelope(env: Envelope, now: dt.datetime | None = None) -> tuple[Finding, ...]:
    return (
        check_organ_ids(env)
        + check_header_fields(env, now)
        + check_document_id(env)
        + check_replies(env)
        + check_recipients(env)
        + check_manifest(env)
        + check_business(env)
        + check_trace(env, now)
        + check_priority(env)
    )


def check(doc: Envelope | StatusPacket, now: dt.datetime | None = None) -> tuple[Finding, ...]:
    """Every business rule for an envelope or a status packet. `now` enables the clock rules."""
    if isinstance(doc, StatusPacket):
        return check_organ_ids(doc) + check_status(doc, now)
    return check_envelope(doc, now)
