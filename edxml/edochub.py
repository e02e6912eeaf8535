"""The SOAP interface of the BKAV "eDoc" provincial document-exchange hub, without I/O
(docs: ../shared/docs/bkav_hub.md).

Both sides of the wire live here, so that the client (`gateway.edochubclient`) and the simulator
(`gateway.edochubsim`) cannot disagree about it:

* requests (`send_document`, `get_pending_document_ids`, `get_document`, `confirm_received`,
  `update_traces`, `get_traces`, `get_organizations`, `check_permission`): SOAP 1.1 envelopes
  with the `SOAP-ENV` prefix declared on `Envelope`, the bare SOAPAction word, and the hub's
  non-namespace-aware reading of §2.4 respected: request wrappers, `CheckPermission` and the
  UpdateTraces `Status` unqualified with no default namespace in scope; `MessageHeader`,
  `TraceHeaderList`, `Signature`, `ErrorList`, `Manifest` and their subtrees qualified with
  `edXML:` (`http://www.e-doc.vn/Schema/`); `DocumentId` of GetDocument/ConfirmReceived
  unprefixed, the number its only content. Every request is SwA `multipart/related` (§2.3);
* the SwA framing both ways (`multipart_related`, `split_message`), and the Base64 text the hub
  puts in GetDocument's attachment parts (`decode_part_text`);
* the hub's answers: `Report`/`ErrorList` (§4) as `Report` with each error's `ErrorKind`, and
  the payloads of each operation as typed values; a SOAP Fault or an empty Body as
  `HubProtocolError`, a refusal as `HubRefusal`;
* trace codes (§6): 1–6, 13, 15, 16 as `edxml.codes.StatusCode`, the hub's own 999 as a failed
  send to the national axis.

Every received XML goes through the project's hardened parser (`edxml.xmlsafe`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Final

import attrs
from lxml import etree

from edxml import xmlsafe
from edxml.codes import StatusCode
from edxml.errors import XMLRefused
from edxml.model import VN_TZ
from edxml.xmlsafe import Limits

__all__ = [
    "ACTIONS",
    "EDOC_NS",
    "SOAP_NS",
    "Attachment",
    "ErrorEntry",
    "ErrorKind",
    "HubError",
    "HubProtocolError",
    "HubRefusal",
    "Message",
    "Organization",
    "OutgoingDocument",
    "Part",
    "ReceivedDocument",
    "Report",
    "Request",
    "ResponseFor",
    "StaffInfo",
    "Trace",
    "TraceStatus",
]

SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
EDOC_NS: Final = "http://www.e-doc.vn/Schema/"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
VIETNAM: Final = VN_TZ
ACTIONS: Final = (
    "SendDocument",
    "GetPendingDocumentIds",
    "GetDocument",
    "ConfirmReceived",
    "UpdateTraces",
    "GetTraces",
    "GetOrganizations",
    "CheckPermission",
)
SEND_FAILED_CODE: Final = 999  # hub-internal: the forward to the national axis failed
ROOT_CONTENT_ID: Final = "root.envelope@edoc-hub"
_TIME_FORMAT: Final = "%Y/%m/%d %H:%M:%S"
_E: Final = "{" + EDOC_NS + "}"
_S: Final = "{" + SOAP_NS + "}"


# --------------------------------------------------------------------------------- errors


class HubError(Exception):
    """Base of the hub protocol's errors: an English and a Vietnamese message."""

    def __init__(self, message_en: str, message_vi: str) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_vi = message_vi


class HubProtocolError(HubError):
    """Bytes that are not a hub answer: not XML, no SOAP 1.1 envelope, a SOAP Fault (the ESB's,
    never the mediator's), an empty Body (an action the hub does not know), a bad multipart."""


class HubRefusal(HubError):
    """The hub's Report says no (IsSuccess false)."""

    def __init__(self, action: str, report: Report) -> None:
        first = report.errors[0] if report.errors else None
        code = first.code if first else ""
        text = first.description if first else ""
        what = f"{code}: {text}" if first else "credentials refused (empty ErrorList)"
        super().__init__(
            f"eDoc hub refused {action} ({what})",
            f"Trục eDoc từ chối {action} ({what})",
        )
        self.action = action
        self.report = report
        self.code = code
        self.description = text
        self.kind = report.kind


# --------------------------------------------------------------------------------- values


class ErrorKind(enum.Enum):
    """What a Report's error means to a client (§4.4), for retry and alerting decisions."""

    AUTH = "auth"  # credentials wrong or missing: fix the configuration
    DUPLICATE = "duplicate"  # already there (M.Exist, "Exist trace on esb")
    NOT_FOUND = "not_found"  # unknown document, not a recipient, no document for a status
    INVALID = "invalid"  # our request is wrong: a field or a tag
    HUB = "hub"  # the hub failed internally; the same request may work later
    UNKNOWN = "unknown"


_AUTH_CODES: Final = frozenset({"CheckPermission", "Permission", "CheckSignature"})
_NOT_FOUND_CODES: Final = frozenset(
    {"M.ConfirmReceived", "M.GetDocumentCheckAllow", "M.UpdateStatusDoc"}
)
_HUB_CODES: Final = frozenset(
    {
        "M.GetDocument",
        "M.SaveDocError",
        "M.GetTraces",
        "M.GetOrganizations",
        "M.CheckPermission",
        "M.UpdateStatus",
        "M.UpdateTrace",
        "M.SendDocument",
        "M.UpdateTraces",
    }
)
_INVALID_CODES: Final = frozenset(
    {"M.OrganId", "M.DocumentId", "PromulgationDate", "DocumentId", "R.AttachmentName"}
)


def error_kind(code: str, description: str = "") -> ErrorKind:
    """The kind of one `Error` of the hub (§4.4)."""
    if code in _AUTH_CODES:
        return ErrorKind.AUTH
    if code == "M.Exist" or (code == "M.UpdateTraces" and "exist trace" in description.lower()):
        return ErrorKind.DUPLICATE
    if code in _NOT_FOUND_CODES:
        return ErrorKind.NOT_FOUND
    if code in _HUB_CODES:
        return ErrorKind.HUB
    if code in _INVALID_CODES or code.startswith(("N.", "R.", "T.", "MessageHeader")):
        return ErrorKind.INVALID
    if code.startswith("M.") and "MessageHeader" in code:
        return ErrorKind.INVALID
    return ErrorKind.UNKNOWN


@attrs.frozen
class ErrorEntry:
    code: str
    description: str

    @property
    def kind(self) -> ErrorKind:
        return error_kind(self.code, self.description)


@attrs.frozen
class Report:
    """`Report` = IsSuccess + ErrorList. A failure with an empty list is the hub's answer to
    wrong body credentials (§3), hence of kind AUTH."""

    ok: bool
    errors: tuple[ErrorEntry, ...] = ()

    @property
    def kind(self) -> ErrorKind | None:
        if self.ok:
            return None
        return self.errors[0].kind if self.errors else ErrorKind.AUTH


@attrs.frozen
class Organization:
    """A directory entry, also the `From` of a status. Empty strings for absent fields."""

    organ_id: str
    name: str = ""
    in_charge: str = ""
    address: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""


@attrs.frozen
class ResponseFor:
    """The document a status is about: its sender, docCode (`CodeNumber/CodeNotation`), the
    promulgation date as the hub wrote it, and the edXML DocumentId."""

    organ_id: str
    code: str
    promulgation_date: str = ""
    document_id: str = ""


@attrs.frozen
class StaffInfo:
    department: str = ""
    department_id: str = ""
    staff: str = ""
    staff_id: str = ""
    email: str = ""
    mobile: str = ""


class TraceStatus(enum.Enum):
    """How a trace code reads for us: one of our StatusCodes, the hub's failed send, or a code
    we do not know (kept raw in `Trace.code`)."""

    STATUS = "status"
    SEND_FAILED = "send_failed"
    UNKNOWN = "unknown"


def trace_status(code: int) -> StatusCode | None:
    """A trace code as our StatusCode; None for 999 and for codes outside the national list."""
    if code == SEND_FAILED_CODE or not 0 < code < 100:
        return None
    try:
        return StatusCode.parse(str(code))
    except ValueError:
        return None


def hub_code(status: StatusCode) -> str:
    """The StatusCode text sent in UpdateTraces: our two-digit form (the hub reads it as an
    integer, so "03" and "3" are the same to it, §5.5)."""
    return status.value


@attrs.frozen
class Trace:
    """One `Status` of GetTraces."""

    from_: Organization
    response_for: ResponseFor
    staff: StaffInfo
    code: int
    description: str
    timestamp: str

    @property
    def status(self) -> StatusCode | None:
        return trace_status(self.code)

    @property
    def kind(self) -> TraceStatus:
        if self.code == SEND_FAILED_CODE:
            return TraceStatus.SEND_FAILED
        return TraceStatus.STATUS if self.status is not None else TraceStatus.UNKNOWN

    @property
    def moment(self) -> dt.datetime | None:
        return parse_time(self.timestamp)


@attrs.frozen
class Attachment:
    """One file of a document: `data` the raw bytes (decoded from the hub's Base64 text)."""

    name: str
    content_type: str
    data: bytes = attrs.field(repr=False)
    content_id: str = ""
    description: str = ""


@attrs.frozen
class ReceiverChange:
    """One recipient an update adds (1) or removes (0): `ReceiverList/Receiver`."""

    organ_id: str
    receiver_type: int = 1


@attrs.frozen
class UpdateInfo:
    """`BusinessDocumentInfo` of an update (BusinessDocType 2): whether the document's
    metadata and its recipient list changed, and how."""

    document_info: int = 0
    document_receiver: int = 0
    receivers: tuple[ReceiverChange, ...] = ()


@attrs.frozen
class Replacement:
    """`ReplacementInfo` of a replacement (BusinessDocType 3): the earlier document replaced,
    and for which organisations."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@attrs.frozen
class OutgoingDocument:
    """What SendDocument carries (§5.1): the MessageHeader fields the hub checks, the Business
    block it requires, and the attachments. Dates are `datetime.date`; the trace timestamp an
    aware datetime (written in Vietnam time)."""

    from_: Organization
    to: tuple[Organization, ...]
    document_id: str
    code_number: str
    code_notation: str
    place: str
    promulgation_date: dt.date
    subject: str
    timestamp: dt.datetime
    document_type: int = 1
    type_name: str = ""
    content: str = ""
    signer_competence: str = ""
    signer_position: str = ""
    signer_full_name: str = ""
    due_date: dt.date | None = None
    to_places: tuple[str, ...] = ()
    priority: int = 0
    steering_type: int = 0
    business_doc_type: int = 0
    business_doc_reason: str = ""
    paper: int = 0
    staff: StaffInfo = StaffInfo()
    attachments: tuple[Attachment, ...] = ()
    # The documents this one answers; the document a revoke, update or replacement acts on;
    # what an update changes; what a replacement replaces.
    response_for: tuple[ResponseFor, ...] = ()
    business_document_id: str = ""
    update_info: UpdateInfo | None = None
    replacements: tuple[Replacement, ...] = ()


@attrs.frozen
class ReceivedDocument:
    """What GetDocument gives: the header fields a gateway needs, the `MessageHeader` and
    `TraceHeaderList` elements as received (never the `Signature`, which on the hub's replay
    path holds the *sender's* token, §5.3), and the attachments decoded."""

    hub_id: int
    document_id: str
    code: str
    from_: Organization
    to: tuple[Organization, ...]
    subject: str
    promulgation_date: dt.date | None
    business_doc_type: int | None
    message_header: bytes = attrs.field(repr=False)
    trace_header_list: bytes = attrs.field(repr=False)
    attachments: tuple[Attachment, ...] = attrs.field(repr=False)


@attrs.frozen
class Part:
    """One MIME part: its Content-ID (without angle brackets), type and body bytes."""

    content_id: str
    content_type: str
    body: bytes = attrs.field(repr=False)
    transfer_encoding: str = "binary"


@attrs.frozen
class Message:
    """A SOAP message as it travels: the envelope and the parts beside it."""

    envelope: bytes = attrs.field(repr=False)
    parts: tuple[Part, ...] = attrs.field(default=(), repr=False)

    def part(self, content_id: str) -> Part | None:
        wanted = _bare_cid(content_id)
        return next((p for p in self.parts if p.content_id == wanted), None)


@attrs.frozen
class Request:
    """One request ready for the wire. The body holds the token: it is never shown."""

    action: str
    content_type: str
    body: bytes = attrs.field(repr=False)

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Content-Type", self.content_type), ("SOAPAction", self.action))


# --------------------------------------------------------------------------------- time


def format_time(moment: dt.datetime) -> str:
    """`yyyy/MM/dd HH:mm:ss` in Vietnam time (the hub's zone, §8)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the hub's timestamps need an aware datetime")
    return moment.astimezone(VIETNAM).strftime(_TIME_FORMAT)


def parse_time(text: str) -> dt.datetime | None:
    """A hub timestamp (`yyyy/MM/dd HH:mm:ss`, or `dd/MM/yyyy HH:mm:ss` from the rebuild path),
    aware in +07:00; None when it is neither."""
    value = text.strip()
    for pattern in (_TIME_FORMAT, "%d/%m/%Y %H:%M:%S"):
        try:
            return dt.datetime.strptime(value, pattern).replace(tzinfo=VIETNAM)
        except ValueError:
            continue
    return None


def parse_date(text: str) -> dt.date | None:
    """A hub date: `yyyy/MM/dd` or the rebuild path's `dd/MM/yyyy`, with an optional trailing
    time (ResponseFor/PromulgationDate comes back as `yyyy/MM/dd HH:mm:ss`)."""
    value = text.strip().split(" ", 1)[0]
    for pattern in ("%Y/%m/%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


# --------------------------------------------------------------------------------- requests


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _el(name: str, value: str | int | None, prefix: str = "edXML:") -> str:
    tag = prefix + name
    if value is None or value == "":
        return f"<{tag}/>"
    return f"<{tag}>{_esc(str(value))}</{tag}>"


def _check_text(what: str, value: str) -> None:
    if not value or value != value.strip() or any(ord(c) < 0x20 for c in value):
        raise ValueError(f"{what} must be non-empty text without surrounding space")


def _envelope(header: str, body: str, *, edxml: bool = False, xlink: bool = False) -> bytes:
    ns = f' xmlns:SOAP-ENV="{SOAP_NS}"'
    if edxml:
        ns += f' xmlns:edXML="{EDOC_NS}"'
    if xlink:
        ns += f' xmlns:xlink="{XLINK_NS}"'
    head = f"<SOAP-ENV:Header>{header}</SOAP-ENV:Header>" if header else "<SOAP-ENV:Header/>"
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope{ns}>{head}'
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    return text.encode("utf-8")


def _signature(organ_id: str, token: str) -> str:
    return (
        "<edXML:Signature><edXML:KeyInfo>"
        f"{_el('OrganId', organ_id)}{_el('Token', token)}"
        "</edXML:KeyInfo></edXML:Signature>"
    )


def _wrapper(name: str, organ_id: str, token: str, extra: str = "") -> str:
    # Unqualified, and no default namespace in scope (§2.4): the hub finds it by no-namespace name.
    _check_text("OrganId", organ_id)
    _check_text("Token", token)
    return f"<{name}>{_el('OrganId', organ_id, '')}{_el('Token', token, '')}{extra}</{name}>"


def _request(action: str, envelope: bytes, parts: Sequence[Part] = (), **kw: str) -> Request:
    content_type, body = multipart_related(Message(envelope, tuple(parts)), **kw)
    return Request(action, content_type, body)


def _organization(tag: str, org: Organization, *, in_charge: bool) -> str:
    fields = _el("OrganId", org.organ_id) + _el("OrganName", org.name)
    if in_charge:
        fields += _el("OrganizationInCharge", org.in_charge)
    fields += (
        _el("OrganAdd", org.address)
        + _el("Email", org.email)
        + _el("Telephone", org.telephone)
        + _el("Fax", org.fax)
        + _el("Website", org.website)
    )
    return f"<edXML:{tag}>{fields}</edXML:{tag}>"


def _staff(staff: StaffInfo, prefix: str) -> str:
    return (
        _el("Department", staff.department, prefix)
        + (_el("DepartmentId", staff.department_id, prefix) if staff.department_id else "")
        + _el("Staff", staff.staff, prefix)
        + (_el("StaffId", staff.staff_id, prefix) if staff.staff_id else "")
        + _el("Email", staff.email, prefix)
        + _el("Mobile", staff.mobile, prefix)
    )


def _response_for(about: ResponseFor, prefix: str = "edXML:") -> str:
    return (
        f"<{prefix}ResponseFor>"
        + _el("OrganId", about.organ_id, prefix)
        + _el("Code", about.code, prefix)
        + _el("PromulgationDate", about.promulgation_date, prefix)
        + _el("DocumentId", about.document_id, prefix)
        + f"</{prefix}ResponseFor>"
    )


def _business_changes(doc: OutgoingDocument) -> str:
    """What an update or a replacement says beyond its type, in the order of the hub vendor's SDK
    (standards.md, Bussiness); the hub's JAXB reader takes the children by name."""
    out = ""
    if doc.update_info is not None:
        info = doc.update_info
        receivers = "".join(
            "<edXML:Receiver>"
            + _el("ReceiverType", r.receiver_type)
            + _el("OrganId", r.organ_id)
            + "</edXML:Receiver>"
            for r in info.receivers
        )
        out += (
            "<edXML:BusinessDocumentInfo>"
            + _el("DocumentInfo", info.document_info)
            + _el("DocumentReceiver", info.document_receiver)
            + (f"<edXML:ReceiverList>{receivers}</edXML:ReceiverList>" if receivers else "")
            + "</edXML:BusinessDocumentInfo>"
        )
    if doc.replacements:
        out += (
            "<edXML:ReplacementInfoList>"
            + "".join(
                "<edXML:ReplacementInfo>"
                + _el("DocumentId", r.document_id)
                + "<edXML:OrganIdList>"
                + "".join(_el("OrganId", o) for o in r.organ_ids)
                + "</edXML:OrganIdList></edXML:ReplacementInfo>"
                for r in doc.replacements
            )
            + "</edXML:ReplacementInfoList>"
        )
    return out


def send_document(
    doc: OutgoingDocument, organ_id: str, token: str, *, boundary: str | None = None
) -> Request:
    """SendDocument (§5.1): headers in the SOAP Header, the Manifest in the Body, one MIME part
    per attachment (Content-ID `att-N`, raw bytes)."""
    _check_text("OrganId", organ_id)
    _check_text("Token", token)
    if not doc.to:
        raise ValueError("a document needs at least one recipient")
    to = "".join(_organization("To", org, in_charge=False) for org in doc.to)
    places = "".join(_el("Place", p) for p in doc.to_places)
    header = (
        "<edXML:MessageHeader>"
        + _organization("From", doc.from_, in_charge=True)
        + to
        + _el("DocumentId", doc.document_id)
        + "<edXML:Code>"
        + _el("CodeNumber", doc.code_number)
        + _el("CodeNotation", doc.code_notation)
        + "</edXML:Code><edXML:PromulgationInfo>"
        + _el("Place", doc.place)
        + _el("PromulgationDate", doc.promulgation_date.strftime("%Y/%m/%d"))
        + "</edXML:PromulgationInfo><edXML:DocumentType>"
        + _el("Type", doc.document_type)
        + _el("TypeName", doc.type_name)
        + "</edXML:DocumentType>"
        + _el("Subject", doc.subject)
        + _el("Content", doc.content)
        + "<edXML:SignerInfo>"
        + _el("Competence", doc.signer_competence)
        + _el("Position", doc.signer_position)
        + _el("FullName", doc.signer_full_name)
        + "</edXML:SignerInfo>"
        + _el("DueDate", doc.due_date.strftime("%Y/%m/%d") if doc.due_date else None)
        + (f"<edXML:ToPlaces>{places}</edXML:ToPlaces>" if places else "<edXML:ToPlaces/>")
        + "<edXML:OtherInfo>"
        + _el("Priority", doc.priority)
        + "<edXML:SphereOfPromulgation/><edXML:TyperNotation/>"
        + _el("PromulgationAmount", 1)
        + _el("PageAmount", 1)
        + "<edXML:Appendixes/></edXML:OtherInfo>"
        + _el("SteeringType", doc.steering_type)
        + "".join(_response_for(r) for r in doc.response_for)
        + "</edXML:MessageHeader><edXML:TraceHeaderList><edXML:TraceHeader>"
        + _el("OrganId", doc.from_.organ_id)
        + _el("Timestamp", format_time(doc.timestamp))
        + "</edXML:TraceHeader><edXML:Business>"
        + (_el("DocumentId", doc.business_document_id) if doc.business_document_id else "")
        + _el("BusinessDocType", doc.business_doc_type)
        + _el("BusinessDocReason", doc.business_doc_reason)
        + _el("Paper", doc.paper)
        + _business_changes(doc)
        + f"<edXML:StaffInfo>{_staff(doc.staff, 'edXML:')}</edXML:StaffInfo>"
        + "</edXML:Business></edXML:TraceHeaderList>"
        + _signature(organ_id, token)
        + "<edXML:ErrorList/>"
    )
    parts = []
    references = []
    for index, att in enumerate(doc.attachments, 1):
        cid = att.content_id or f"att-{index}"
        parts.append(Part(cid, att.content_type or "application/octet-stream", att.data))
        references.append(
            f'<edXML:Reference xlink:href="cid:{_esc(cid)}">'
            + _el("AttachmentName", att.name)
            + _el("Description", att.description or att.name)
            + "</edXML:Reference>"
        )
    body = f"<edXML:Manifest>{''.join(references)}</edXML:Manifest>"
    envelope = _envelope(header, body, edxml=True, xlink=True)
    kw = {"boundary": boundary} if boundary else {}
    return _request("SendDocument", envelope, parts, **kw)


def get_pending_document_ids(organ_id: str, token: str) -> Request:
    body = _wrapper("GetPendingDocumentIdsRequest", organ_id, token)
    return _request("GetPendingDocumentIds", _envelope("", body))


def _document_id(doc_id: int) -> str:
    if isinstance(doc_id, bool) or not isinstance(doc_id, int) or doc_id <= 0:
        raise ValueError(f"a hub document id is a positive integer, not {doc_id!r}")
    return f"<DocumentId>{doc_id}</DocumentId>"


def get_document(organ_id: str, token: str, doc_id: int) -> Request:
    body = _wrapper("GetDocumentRequest", organ_id, token, _document_id(doc_id))
    return _request("GetDocument", _envelope("", body))


def confirm_received(organ_id: str, token: str, doc_id: int) -> Request:
    body = _wrapper("ConfirmReceived", organ_id, token, _document_id(doc_id))
    return _request("ConfirmReceived", _envelope("", body))


def get_traces(organ_id: str, token: str, since: dt.datetime | None = None) -> Request:
    """GetTraces: without `since` the hub hands over (and forgets) the statuses not yet read;
    with it, it replays every status from that moment on (§5.6)."""
    extra = _el("TimeStamp", format_time(since), "") if since is not None else ""
    return _request("GetTraces", _envelope("", _wrapper("GetTraces", organ_id, token, extra)))


def get_organizations(organ_id: str, token: str) -> Request:
    body = _wrapper("GetOrganizations", organ_id, token)
    return _request("GetOrganizations", _envelope("", body))


def check_permission(organ_id: str, token: str) -> Request:
    header = _wrapper("CheckPermission", organ_id, token)
    return _request("CheckPermission", _envelope(header, ""))


def update_traces(
    organ_id: str,
    token: str,
    *,
    from_: Organization,
    response_for: ResponseFor,
    status: StatusCode,
    description: str,
    timestamp: dt.datetime,
    staff: StaffInfo,
) -> Request:
    """UpdateTraces (§5.5): credentials in the header Signature, an unqualified `Status` (and
    unqualified children) in the Body."""
    _check_text("OrganId", organ_id)
    _check_text("Token", token)
    org = from_
    status_xml = (
        "<Status><From>"
        + _el("OrganId", org.organ_id, "")
        + _el("OrganName", org.name, "")
        + _el("OrganizationInCharge", org.in_charge, "")
        + _el("OrganAdd", org.address, "")
        + _el("Email", org.email, "")
        + _el("Telephone", org.telephone, "")
        + _el("Fax", org.fax, "")
        + _el("Website", org.website, "")
        + "</From>"
        + _response_for(response_for, "")
        + f"<StaffInfo>{_staff(staff, '')}</StaffInfo>"
        + _el("StatusCode", hub_code(status), "")
        + _el("Description", description, "")
        + _el("Timestamp", format_time(timestamp), "")
        + "</Status>"
    )
    envelope = _envelope(_signature(organ_id, token), status_xml, edxml=True)
    return _request("UpdateTraces", envelope)


# --------------------------------------------------------------------------------- multipart

_TOKEN_CHARS: Final = re.compile(r"[A-Za-z0-9._@:+=/-]+")


def new_boundary() -> str:
    return "MIMEBoundary_" + secrets.token_hex(16)


def multipart_related(
    message: Message, *, boundary: str | None = None, root_id: str = ROOT_CONTENT_ID
) -> tuple[str, bytes]:
    """The SwA framing (§2.3): the Content-Type and the body of a `multipart/related` message,
    the envelope as root part (`text/xml; charset=utf-8`, 8bit), then each part (binary)."""
    boundary = boundary or new_boundary()
    marker = b"--" + boundary.encode("ascii")
    for part in (Part(root_id, "text/xml", message.envelope), *message.parts):
        if not _TOKEN_CHARS.fullmatch(part.content_id):
            raise ValueError(f"Content-ID {part.content_id!r} cannot travel in a header")
        if marker in part.body:
            raise ValueError("a part contains the boundary")
    chunks = [
        marker,
        b"\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"Content-ID: <" + root_id.encode("ascii") + b">\r\n\r\n",
        message.envelope,
    ]
    for part in message.parts:
        encoding = part.transfer_encoding.encode("ascii")
        chunks += [
            b"\r\n",
            marker,
            b"\r\nContent-Type: " + _header_value(part.content_type) + b"\r\n"
            b"Content-Transfer-Encoding: " + encoding + b"\r\n"
            b"Content-ID: <" + part.content_id.encode("ascii") + b">\r\n\r\n",
            part.body,
        ]
    chunks += [b"\r\n", marker, b"--\r\n"]
    content_type = f'multipart/related; type="text/xml"; boundary="{boundary}"; start="<{root_id}>"'
    return content_type, b"".join(chunks)


def _header_value(value: str) -> bytes:
    if not value.isascii() or any(c in value for c in "\r\n"):
        raise ValueError(f"header value {value!r} cannot travel")
    return value.encode("ascii")


def _params(header: str) -> tuple[str, dict[str, str]]:
    """A MIME header value: its main value (lower case) and its parameters."""
    main, _, rest = header.partition(";")
    params: dict[str, str] = {}
    for match in re.finditer(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)\s*;?', rest):
        value = match.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"')
        params[match.group(1).lower()] = value
    return main.strip().lower(), params


def _bare_cid(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("cid:"):
        value = value[4:]
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


def _protocol(en: str, vi: str) -> HubProtocolError:
    return HubProtocolError(en, vi)


def split_message(content_type: str | None, body: bytes) -> Message:
    """A reply (or, for the simulator, a request) as envelope and parts: `multipart/related`
    (SwA or MTOM: read as generic MIME) or a single-part `text/xml`. The root part is the one
    `start` names, else the first. A part sent as base64 is decoded; others are kept as sent."""
    main, params = _params(content_type or "")
    if not main.startswith("multipart/"):
        return Message(body)
    boundary = params.get("boundary")
    if not boundary:
        raise _protocol(
            "multipart answer without a boundary", "thông điệp multipart thiếu boundary"
        )
    marker = b"--" + boundary.encode("latin-1")
    pieces = body.split(marker)
    if len(pieces) < 3:
        raise _protocol("multipart answer without parts", "thông điệp multipart không có phần nào")
    parts: list[Part] = []
    closed = False
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            closed = True
            break
        parts.append(_read_part(piece))
    if not closed or not parts:
        raise _protocol("multipart answer is cut short", "thông điệp multipart bị cắt cụt")
    start = _bare_cid(params.get("start", ""))
    root = next((p for p in parts if start and p.content_id == start), parts[0])
    return Message(root.body, tuple(p for p in parts if p is not root))


def _read_part(piece: bytes) -> Part:
    # After the marker: rest-of-line CRLF, headers, CRLF CRLF, body, CRLF (before next marker).
    line_end = piece.find(b"\n")
    if line_end < 0:
        raise _protocol("malformed MIME part", "phần MIME không đúng dạng")
    rest = piece[line_end + 1 :]
    split = re.search(rb"\r?\n\r?\n", rest)
    if rest.startswith((b"\r\n", b"\n")):
        head, content = b"", rest[2 if rest.startswith(b"\r\n") else 1 :]
    elif split is None:
        raise _protocol("MIME part without a body", "phần MIME không có nội dung")
    else:
        head, content = rest[: split.start()], rest[split.end() :]
    if content.endswith(b"\r\n"):
        content = content[:-2]
    elif content.endswith(b"\n"):
        content = content[:-1]
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n(?![ \t])", head):
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = " ".join(value.split())
    encoding = headers.get("content-transfer-encoding", "binary").lower()
    if encoding == "base64":
        try:
            content = base64.b64decode(b"".join(content.split()), validate=True)
        except binascii.Error:
            raise _protocol(
                "a base64 MIME part is not base64", "phần MIME base64 không hợp lệ"
            ) from None
    return Part(
        _bare_cid(headers.get("content-id", "")),
        headers.get("content-type", "application/octet-stream"),
        content,
        encoding,
    )


_BASE64_TEXT: Final = re.compile(rb"[A-Za-z0-9+/\r\n\t ]*={0,2}[\r\n\t ]*")


def decode_part_text(body: bytes) -> bytes:
    """An attachment part of GetDocument: the hub puts the Base64 *text* of the file in it
    (§5.3). Decoded when it is pure Base64; taken raw otherwise (a hub that sends raw bytes)."""
    if not _BASE64_TEXT.fullmatch(body):
        return body
    compact = b"".join(body.split())
    if len(compact) % 4:
        return body
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        return body


# --------------------------------------------------------------------------------- answers


def _local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    """First child of that local name, in any namespace (the hub's own lenient matching)."""
    if parent is None:
        return None
    return next((c for c in parent if _local(c) == name), None)


def _text(parent: etree._Element | None, *names: str) -> str:
    for name in names:
        found = _child(parent, name)
        if found is not None:
            return (found.text or "").strip()
    return ""


def parse_envelope(data: bytes, *, limits: Limits = xmlsafe.DEFAULT_LIMITS) -> etree._Element:
    """A received SOAP 1.1 envelope (hardened parse); its Body."""
    try:
        root = xmlsafe.parse(data, limits=limits)
    except XMLRefused as exc:
        raise HubProtocolError(
            f"not a hub answer: {exc.message_en}", f"không phải trả lời của trục: {exc.message_vi}"
        ) from exc
    if root.tag != _S + "Envelope":
        raise _protocol("not a SOAP 1.1 envelope", "không phải phong bì SOAP 1.1")
    body = root.find(_S + "Body")
    if body is None:
        raise _protocol("SOAP envelope without a Body", "phong bì SOAP không có Body")
    return body


def _fault_check(body: etree._Element) -> None:
    fault = body.find(_S + "Fault")
    if fault is not None:
        code = _text(fault, "faultcode")
        text = _text(fault, "faultstring")[:300]
        raise _protocol(f"SOAP Fault {code}: {text}", f"lỗi SOAP {code}: {text}")
    if len(body) == 0:
        raise _protocol(
            "empty SOAP Body (the hub did not know the action)",
            "Body SOAP rỗng (trục không nhận ra thao tác)",
        )


def parse_report(element: etree._Element) -> Report:
    ok = _text(element, "IsSuccess").lower() == "true"
    errors = []
    error_list = _child(element, "ErrorList")
    if error_list is not None:
        for error in error_list:
            if _local(error) == "Error":
                errors.append(ErrorEntry(_text(error, "Code"), _text(error, "Description")))
    return Report(ok, tuple(errors))


def _payload(data: bytes, action: str, limits: Limits) -> etree._Element:
    """The Body's answer element for `action` (the wrapper, or the bare Body for GetDocument);
    a refusing Report raises HubRefusal."""
    body = parse_envelope(data, limits=limits)
    _fault_check(body)
    if action == "GetDocument":
        wrapper = body
    else:
        found = body.find(f"{_E}{action}Response")
        if found is None:
            raise _protocol(
                f"no {action}Response in the answer", f"trả lời không có {action}Response"
            )
        wrapper = found
    report = wrapper.find(_E + "Report")
    if report is not None:
        parsed = parse_report(report)
        if not parsed.ok:
            raise HubRefusal(action, parsed)
    return wrapper


def parse_simple(data: bytes, action: str, *, limits: Limits = xmlsafe.DEFAULT_LIMITS) -> Report:
    """ConfirmReceived, UpdateTraces, CheckPermission: the Report (HubRefusal if it says no)."""
    wrapper = _payload(data, action, limits)
    report = wrapper.find(_E + "Report")
    if report is None:
        raise _protocol(f"{action}: no Report", f"{action}: thiếu Report")
    return parse_report(report)


def parse_send_document(data: bytes, *, limits: Limits = xmlsafe.DEFAULT_LIMITS) -> int:
    """The hub's numeric id of the stored document."""
    wrapper = _payload(data, "SendDocument", limits)
    if wrapper.find(_E + "Report") is None:
        raise _protocol("SendDocument: no Report", "SendDocument: thiếu Report")
    return _positive(_text(wrapper, "DocumentId"), "SendDocument")


def _positive(text: str, action: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise _protocol(
            f"{action}: {text[:40]!r} is not a hub document id",
            f"{action}: {text[:40]!r} không phải mã văn bản của trục",
        )
    return int(text)


def parse_pending(data: bytes, *, limits: Limits = xmlsafe.DEFAULT_LIMITS) -> tuple[int, ...]:
    wrapper = _payload(data, "GetPendingDocumentIds", limits)
    ids = _child(wrapper, "DocumentIds")
    if ids is None:
        raise _protocol("no DocumentIds in the answer", "trả lời không có DocumentIds")
    found = [_positive((c.text or "").strip(), "GetPendingDocumentIds") for c in ids]
    return tuple(dict.fromkeys(found))  # the hub promises no order; duplicates are one


def _org(element: etree._Element | None) -> Organization:
    return Organization(
        organ_id=_text(element, "OrganId"),
        name=_text(element, "OrganName"),
        in_charge=_text(element, "OrganizationInCharge", "OrganInCharge"),
        address=_text(element, "OrganAdd"),
        email=_text(element, "Email"),
        telephone=_text(element, "Telephone"),
        fax=_text(element, "Fax"),
        website=_text(element, "Website"),
    )


def _staff_of(element: etree._Element | None) -> StaffInfo:
    return StaffInfo(
        department=_text(element, "Department"),
        department_id=_text(element, "DepartmentId"),
        staff=_text(element, "Staff"),
        staff_id=_text(element, "StaffId"),
        email=_text(element, "Email"),
        mobile=_text(element, "Mobile"),
    )


def parse_organizations(
    data: bytes, *, limits: Limits = xmlsafe.DEFAULT_LIMITS
) -> tuple[Organization, ...]:
    wrapper = _payload(data, "GetOrganizations", limits)
    orgs = _child(wrapper, "Organizations")
    if orgs is None:
        raise _protocol("no Organizations in the answer", "trả lời không có Organizations")
    return tuple(_org(o) for o in orgs if _local(o) == "Organization")


def status_of(element: etree._Element) -> Trace:
    """One `Status` element (of GetTraces, or of an UpdateTraces request): children matched by
    local name, qualified or not."""
    code_text = _text(element, "StatusCode")
    if not code_text.isdigit():
        raise _protocol(
            f"status code {code_text[:20]!r} is not a number",
            f"mã trạng thái {code_text[:20]!r} không phải số",
        )
    rf = _child(element, "ResponseFor")
    return Trace(
        from_=_org(_child(element, "From")),
        response_for=ResponseFor(
            organ_id=_text(rf, "OrganId"),
            code=_text(rf, "Code"),
            promulgation_date=_text(rf, "PromulgationDate"),
            document_id=_text(rf, "DocumentId"),
        ),
        staff=_staff_of(_child(element, "StaffInfo")),
        code=int(code_text),
        description=_text(element, "Description"),
        timestamp=_text(element, "Timestamp"),
    )


def parse_traces(data: bytes, *, limits: Limits = xmlsafe.DEFAULT_LIMITS) -> tuple[Trace, ...]:
    wrapper = _payload(data, "GetTraces", limits)
    traces = _child(wrapper, "Traces")
    if traces is None:
        raise _protocol("no Traces in the answer", "trả lời không có Traces")
    return tuple(status_of(s) for s in traces if _local(s) == "Status")


def _header_block(root: etree._Element, name: str) -> etree._Element | None:
    header = root.find(_S + "Header")
    return None if header is None else header.find(_E + name)


def parse_document(
    message: Message, hub_id: int, *, limits: Limits = xmlsafe.DEFAULT_LIMITS
) -> ReceivedDocument:
    """GetDocument's answer (either path of §5.3): headers, manifest, attachments decoded from
    their Base64 text and named by the Manifest's `cid:` references."""
    body = _payload(message.envelope, "GetDocument", limits)
    root = body.getparent()
    assert root is not None
    header = _header_block(root, "MessageHeader")
    traces = _header_block(root, "TraceHeaderList")
    if header is None or traces is None:
        raise _protocol(
            "GetDocument: no MessageHeader or TraceHeaderList",
            "GetDocument: thiếu MessageHeader hoặc TraceHeaderList",
        )
    manifest = body.find(_E + "Manifest")
    attachments = []
    for ref in manifest if manifest is not None else ():
        if _local(ref) != "Reference":
            continue
        href = ref.get(f"{{{XLINK_NS}}}href") or ref.get("href") or ""
        part = message.part(href)
        if part is None:
            raise _protocol(
                f"GetDocument: no part for {href[:80]!r}",
                f"GetDocument: thiếu phần đính kèm {href[:80]!r}",
            )
        attachments.append(
            Attachment(
                name=_text(ref, "AttachmentName"),
                content_type=part.content_type.split(";", 1)[0].strip(),
                data=decode_part_text(part.body),
                content_id=part.content_id,
                description=_text(ref, "Description"),
            )
        )
    code = _child(header, "Code")
    number, notation = _text(code, "CodeNumber"), _text(code, "CodeNotation")
    business = _child(traces, "Business")
    if business is None:
        business = _child(traces, "Bussiness")
    doc_type = _text(business, "BusinessDocType", "BussinessDocType")
    return ReceivedDocument(
        hub_id=hub_id,
        document_id=_text(header, "DocumentId"),
        code=f"{number}/{notation}" if notation else number,
        from_=_org(_child(header, "From")),
        to=tuple(_org(t) for t in header if _local(t) == "To"),
        subject=_text(header, "Subject"),
        promulgation_date=parse_date(_text(_child(header, "PromulgationInfo"), "PromulgationDate")),
        business_doc_type=int(doc_type) if doc_type.isdigit() else None,
        message_header=etree.tostring(header),
        trace_header_list=etree.tostring(traces),
        attachments=tuple(attachments),
    )


# --------------------------------------------------------------------------------- answers out
# (what the hub writes: used by the simulator, and by tests as the hub's bytes)


def answer_envelope(body: str) -> bytes:
    """A hub answer: Axiom's default envelope, `soapenv` prefix, empty Header."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Header/>'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def report_xml(ok: bool, errors: Iterable[tuple[str, str]] = ()) -> str:
    items = "".join(
        f"<edXML:Error>{_el('Code', code)}{_el('Description', text)}</edXML:Error>"
        for code, text in errors
    )
    error_list = f"<edXML:ErrorList>{items}</edXML:ErrorList>" if items else "<edXML:ErrorList/>"
    flag = "true" if ok else "false"
    return f"<edXML:Report><edXML:IsSuccess>{flag}</edXML:IsSuccess>{error_list}</edXML:Report>"


def wrapped(action: str, inner: str) -> bytes:
    return answer_envelope(
        f'<edXML:{action}Response xmlns:edXML="{EDOC_NS}">{inner}</edXML:{action}Response>'
    )


def organization_xml(org: Organization, tag: str = "Organization") -> str:
    pairs = (
        ("OrganId", org.organ_id),
        ("OrganizationInCharge", org.in_charge),
        ("OrganName", org.name),
        ("OrganAdd", org.address),
        ("Email", org.email),
        ("Telephone", org.telephone),
        ("Fax", org.fax),
        ("Website", org.website),
    )
    inner = "".join(_el(k, v) for k, v in pairs if v)  # JAXB leaves out nulls
    return f"<edXML:{tag}>{inner}</edXML:{tag}>"


def trace_xml(trace: Trace) -> str:
    rf = trace.response_for
    staff = trace.staff
    staff_pairs = (
        ("Department", staff.department),
        ("DepartmentId", staff.department_id),
        ("Staff", staff.staff),
        ("StaffId", staff.staff_id),
        ("Email", staff.email),
        ("Mobile", staff.mobile),
    )
    return (
        "<edXML:Status>"
        + organization_xml(trace.from_, "From")
        + "<edXML:ResponseFor>"
        + "".join(
            _el(k, v)
            for k, v in (
                ("OrganId", rf.organ_id),
                ("Code", rf.code),
                ("PromulgationDate", rf.promulgation_date),
                ("DocumentId", rf.document_id),
            )
            if v
        )
        + "</edXML:ResponseFor><edXML:StaffInfo>"
        + "".join(_el(k, v) for k, v in staff_pairs if v)
        + "</edXML:StaffInfo>"
        + _el("StatusCode", str(trace.code))  # unpadded, as the hub writes it
        + _el("Description", trace.description)
        + _el("Timestamp", trace.timestamp)
        + "</edXML:Status>"
    )


def base64_text(data: bytes) -> bytes:
    """A file as the hub puts it in a GetDocument part: its Base64 text (no line breaks)."""
    return base64.b64encode(data)
