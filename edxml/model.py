"""Value objects for the edXML envelope and status packet (QCVN 102:2016).

Every text field is NFC-normalised on construction (TCVN 6909:2001 / R3), so equality, unique keys
and search never depend on how a sender's keyboard composed a letter. Dates are `datetime.date`;
instants are timezone-aware `datetime` (naive input is read as Vietnam time by the reader).
Field names follow the standard's element names in snake_case; `from_` is `From`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from typing import Any

import attrs

from edxml.codes import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _nfc_tuple(values: Any) -> tuple[str, ...]:
    return tuple(nfc(v) for v in values)


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values)


def _text(default: str = "") -> Any:
    return attrs.field(default=default, converter=nfc)


@attrs.frozen
class Extension:
    """An element the standard does not name, kept as its exact serialisation."""

    tag: str  # Clark notation, e.g. {ns}ApplicationType
    xml: bytes


def _extensions() -> Any:
    return attrs.field(factory=tuple, converter=_tuple)


@attrs.frozen
class Organization:
    organ_id: str = _text()
    organization_in_charge: str = _text()
    organ_name: str = _text()
    organ_add: str = _text()
    email: str = _text()
    telephone: str = _text()
    fax: str = _text()
    website: str = _text()


@attrs.frozen
class Code:
    code_number: str = _text()
    code_notation: str = _text()

    def __str__(self) -> str:
        return f"{self.code_number}/{self.code_notation}"


@attrs.frozen
class PromulgationInfo:
    place: str = _text()
    promulgation_date: dt.date | None = None


@attrs.frozen
class DocumentType:
    type: int | None = None
    type_name: str = _text()
    type_detail: int | None = None  # VPCP SDK extension


@attrs.frozen
class SignerInfo:
    competence: str = _text()
    position: str = _text()
    full_name: str = _text()


@attrs.frozen
class OtherInfo:
    priority: Priority = Priority.NORMAL
    sphere_of_promulgation: str = _text()
    typer_notation: str = _text()
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None  # Bkav/VPCP extension
    appendixes: tuple[str, ...] = attrs.field(factory=tuple, converter=_nfc_tuple)
    extensions: tuple[Extension, ...] = _extensions()


@attrs.frozen
class ResponseFor:
    """The document this one answers (in a MessageHeader) or reports on (in a status packet)."""

    organ_id: str = _text()
    code: str = _text()  # combined "số/ký hiệu"
    promulgation_date: dt.date | None = None
    document_id: str = _text()


@attrs.frozen
class MessageHeader:
    from_: Organization
    to: tuple[Organization, ...] = attrs.field(converter=_tuple)
    code: Code
    promulgation_info: PromulgationInfo
    document_type: DocumentType
    subject: str = _text()
    content: str = _text()
    signer_info: SignerInfo = attrs.field(factory=SignerInfo)
    due_date: dt.date | None = None
    to_places: tuple[str, ...] = attrs.field(factory=tuple, converter=_nfc_tuple)
    other_info: OtherInfo = attrs.field(factory=OtherInfo)
    response_for: tuple[ResponseFor, ...] = attrs.field(factory=tuple, converter=_tuple)
    steering_type: SteeringType = SteeringType.NONE
    document_id: str = _text()
    extensions: tuple[Extension, ...] = _extensions()


@attrs.frozen
class TraceHeader:
    organ_id: str = _text()
    timestamp: dt.datetime | None = None


@attrs.frozen
class StaffInfo:
    department: str = _text()
    staff: str = _text()
    mobile: str = _text()
    email: str = _text()


@attrs.frozen
class Receiver:
    organ_id: str = _text()
    receiver_type: ReceiverType = ReceiverType.ADDED


@attrs.frozen
class BusinessDocumentInfo:
    """BussinessDocumentInfo of an update: which parts changed, and the recipients' changes."""

    document_info: bool = False
    document_receiver: bool = False
    receivers: tuple[Receiver, ...] = attrs.field(factory=tuple, converter=_tuple)


@attrs.frozen
class ReplacementInfo:
    document_id: str = _text()
    organ_ids: tuple[str, ...] = attrs.field(factory=tuple, converter=_nfc_tuple)


@attrs.frozen
class Business:
    """The `Bussiness` block (the standard's spelling on the wire)."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str = _text()
    document_id: str = _text()  # the target document of a revoke / update / replace
    paper: bool = False
    staff_info: StaffInfo | None = None
    document_info: BusinessDocumentInfo | None = None
    replacements: tuple[ReplacementInfo, ...] = attrs.field(factory=tuple, converter=_tuple)
    extensions: tuple[Extension, ...] = _extensions()


@attrs.frozen
class TraceHeaderList:
    traces: tuple[TraceHeader, ...] = attrs.field(factory=tuple, converter=_tuple)
    business: Business = attrs.field(factory=Business)
    id: str = ""


@attrs.frozen
class Reference:
    """One edXMLManifest/Reference. `content_id` is stored without any `cid:` prefix."""

    content_id: str = _text()
    attachment_name: str = _text()
    content_type: str = _text()
    description: str = _text()


@attrs.frozen
class Attachment:
    """One AttachmentEncoded/Attachment, decoded from base64 (still zipped if it was sent so).

    `content` is None when the reader streamed the bytes to a caller's sink; `size` and `sha256`
    always describe the decoded bytes.
    """

    content_id: str = _text()
    attachment_name: str = _text()
    content_type: str = _text()
    description: str = _text()
    content: bytes | None = attrs.field(default=None, eq=False, repr=False)
    size: int = 0
    sha256: str = ""

    @classmethod
    def of(
        cls,
        content: bytes,
        *,
        content_id: str,
        attachment_name: str,
        content_type: str,
        description: str = "",
    ) -> Attachment:
        return cls(
            content_id=content_id,
            attachment_name=attachment_name,
            content_type=content_type,
            description=description,
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )


@attrs.frozen
class Envelope:
    header: MessageHeader
    trace: TraceHeaderList = attrs.field(factory=TraceHeaderList)
    manifest: tuple[Reference, ...] = attrs.field(factory=tuple, converter=_tuple)
    attachments: tuple[Attachment, ...] = attrs.field(factory=tuple, converter=_tuple)

    @property
    def kind(self) -> str:
        return "envelope"

    @property
    def document_id(self) -> str:
        return self.header.document_id

    @property
    def business_type(self) -> BusinessDocType:
        return self.trace.business.doc_type


@attrs.frozen
class StatusPacket:
    response_for: ResponseFor
    from_: Organization
    status_code: StatusCode
    description: str = _text()
    timestamp: dt.datetime | None = None
    staff_info: StaffInfo | None = None
    extensions: tuple[Extension, ...] = _extensions()

    @property
    def kind(self) -> str:
        return "status"

    @property
    def document_id(self) -> str:
        return self.response_for.document_id


Document = Envelope | StatusPacket
