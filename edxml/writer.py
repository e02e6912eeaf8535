"""The strict edXML writer: one layout, the one the national axis accepts.

The VPCP .NET SDK validates with XmlSerializer, which refused namespace-equivalent output whose
envelope children were not written with the literal `edXML:` prefix (standards.md §2.2). So the
layout is fixed, not left to a serializer:

    <?xml version="1.0" encoding="utf-8"?>
    <edXML xmlns="…QCVN_102_2016">                      root, default namespace
      <edXML:edXMLEnvelope xmlns:edXML="…QCVN_102_2016"> every element inside prefixed
        … MessageHeader (VPCP SDK order), TraceHeaderList, <edXML:DigitalSignature/>, manifest …
      </edXML:edXMLEnvelope>
      <AttachmentEncoded>                                 outside, unprefixed: the default
        <Attachment> ContentType, ContentId, Description, ContentTransferEncoded, AttachmentName
      </AttachmentEncoded>                                namespace makes it edXML all the same
    </edXML>

Element orders: MessageHeader as in the §2.11 example; `Bussiness` in the Bkav SDK order, which
the real-world samples follow (DocumentId, BussinessDocType, BussinessDocReason, Paper,
BussinessDocumentInfo, ReplacementInfoList, StaffInfo); status packets as the VPCP SDK samples
(From, ResponseFor, StaffInfo, StatusCode, Description, Timestamp). Extensions go last in their
container. schemas/edxml-*.xsd describe exactly this output.

A model that cannot be written this way (a missing date, an unknown code, an attachment whose bytes
are not in memory …) is refused with InvalidModel naming the field.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING

from lxml import etree

from edxml import dates, xmlsafe
from edxml.codes import (
    NS,
    SOAP_ACTOR_NEXT,
    XLINK_NS,
    BusinessDocType,
    Priority,
    ReceiverType,
    StatusCode,
    SteeringType,
)
from edxml.errors import InvalidModel
from edxml.model import (
    Attachment,
    Business,
    BusinessDocumentInfo,
    Envelope,
    Extension,
    MessageHeader,
    Organization,
    OtherInfo,
    Reference,
    ResponseFor,
    StaffInfo,
    StatusPacket,
    TraceHeaderList,
)
from edxml.xmlsafe import BinarySink

if TYPE_CHECKING:
    from lxml.etree._serializer import _IncrementalFileWriter

PREFIX = "edXML"
DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
XLINK_ROLE = "XLinkRole"
MANIFEST_VERSION = "1.0"
MAX_ORGAN_ID = 35
TRACE_VERSION = "1.0"
# 3 bytes make 4 base64 characters: chunks of a multiple of 3 concatenate into valid base64.
_B64_CHUNK = 3 * (1 << 16)

_Element = etree._Element


def write(doc: Envelope | StatusPacket) -> bytes:
    """The whole package as UTF-8 bytes."""
    buffer = io.BytesIO()
    write_to(doc, buffer)
    return buffer.getvalue()


def write_to(doc: Envelope | StatusPacket, sink: BinarySink) -> None:
    """Write the package to `sink`, attachment base64 in chunks (never one giant string).

    Everything is checked before the first byte goes out, so a refused model writes nothing.
    """
    if isinstance(doc, Envelope):
        envelope = _envelope(doc)
        attachments = _checked_attachments(doc)
    elif isinstance(doc, StatusPacket):
        envelope = _status(doc)
        attachments = ()
    else:
        raise InvalidModel(f"cannot write {type(doc).__name__}: not an Envelope or StatusPacket")
    sink.write(DECLARATION)
    with (
        etree.xmlfile(sink, encoding="utf-8") as xf,
        xf.element(_q("edXML"), nsmap={None: NS}),
    ):
        xf.write(envelope)
        if attachments:
            with xf.element(_q("AttachmentEncoded")):
                for attachment in attachments:
                    _write_attachment(xf, attachment)


# Small builders =================================================================================


def _q(local: str) -> str:
    return f"{{{NS}}}{local}"


def _sub(parent: _Element, local: str) -> _Element:
    return etree.SubElement(parent, _q(local))


def _leaf(parent: _Element, local: str, value: str, field: str) -> _Element:
    element = _sub(parent, local)
    try:
        element.text = value
    except ValueError:
        raise InvalidModel(f"{field}: contains characters XML cannot carry") from None
    return element


def _required(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidModel(f"{field} is required and empty")
    return value


def _organ_id(value: str, field: str) -> str:
    # At most 35 characters since amendment 1:2022; the rules judge the structure.
    if not value or len(value) > MAX_ORGAN_ID or any(c.isspace() for c in value):
        raise InvalidModel(f"{field}: {value!r} is not an OrganId (1 to 35 non-blank characters)")
    return value


def _count(value: int | None, field: str) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidModel(f"{field} must be a non-negative integer, not {value!r}")
    return str(value)


def _enum_value(value: int, kind: type[IntEnum], field: str) -> str:
    # A plain int that happens to be in range is accepted: it is what the enum would write.
    try:
        return str(int(kind(value)))
    except (ValueError, TypeError):
        raise InvalidModel(f"{field}: {value!r} is not a {kind.__name__} code") from None


def _status_code(value: object) -> str:
    if not isinstance(value, StatusCode):
        raise InvalidModel(f"status_code: {value!r} is not a StatusCode")
    return value.value


def _date(parent: _Element, local: str, value: object, field: str) -> None:
    if value is None:
        raise InvalidModel(f"{field} is required and missing")
    if not hasattr(value, "year") or hasattr(value, "hour"):
        raise InvalidModel(f"{field} must be a date, not {value!r}")
    _leaf(parent, local, dates.format_date(value), field)  # type: ignore[arg-type]


def _timestamp(parent: _Element, local: str, value: object, field: str) -> None:
    if value is None:
        raise InvalidModel(f"{field} is required and missing")
    try:
        text = dates.format_timestamp(value)  # type: ignore[arg-type]
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidModel(f"{field}: {exc}") from None
    _leaf(parent, local, text, field)


def _extensions(parent: _Element, extensions: Iterable[Extension], field: str) -> None:
    for index, extension in enumerate(extensions):
        try:
            element = xmlsafe.parse(extension.xml)
        except Exception as exc:
            raise InvalidModel(f"{field}[{index}]: not one XML element ({exc})") from None
        parent.append(element)


# Envelope =======================================================================================


def _envelope(doc: Envelope) -> _Element:
    envelope = etree.Element(_q("edXMLEnvelope"), nsmap={PREFIX: NS})
    header = _sub(envelope, "edXMLHeader")
    _message_header(header, doc.header)
    _trace_list(header, doc.trace)
    _sub(header, "DigitalSignature")
    body = _sub(envelope, "edXMLBody")
    manifest = _sub(body, "edXMLManifest")
    manifest.set("version", MANIFEST_VERSION)
    for index, reference in enumerate(doc.manifest):
        _reference(manifest, reference, f"manifest[{index}]")
    etree.cleanup_namespaces(envelope)
    return envelope


def _organization(parent: _Element, local: str, org: Organization, field: str) -> None:
    element = _sub(parent, local)
    _leaf(element, "OrganId", _organ_id(org.organ_id, f"{field}.organ_id"), f"{field}.organ_id")
    in_charge = org.organization_in_charge
    _leaf(element, "OrganizationInCharge", in_charge, f"{field}.organization_in_charge")
    _leaf(element, "OrganName", org.organ_name, f"{field}.organ_name")
    _leaf(element, "OrganAdd", org.organ_add, f"{field}.organ_add")
    _leaf(element, "Email", org.email, f"{field}.email")
    _leaf(element, "Telephone", org.telephone, f"{field}.telephone")
    _leaf(element, "Fax", org.fax, f"{field}.fax")
    _leaf(element, "Website", org.website, f"{field}.website")


def _message_header(parent: _Element, h: MessageHeader) -> None:
    mh = _sub(parent, "MessageHeader")
    _organization(mh, "From", h.from_, "header.from_")
    if not h.to:
        raise InvalidModel("header.to: at least one recipient is required")
    for index, to in enumerate(h.to):
        _organization(mh, "To", to, f"header.to[{index}]")
    code = _sub(mh, "Code")
    _leaf(code, "CodeNumber", h.code.code_number, "header.code.code_number")
    _leaf(code, "CodeNotation", h.code.code_notation, "header.code.code_notation")
    info = _sub(mh, "PromulgationInfo")
    _leaf(info, "Place", h.promulgation_info.place, "header.promulgation_info.place")
    _date(
        info,
        "PromulgationDate",
        h.promulgation_info.promulgation_date,
        "header.promulgation_info.promulgation_date",
    )
    doc_type = _sub(mh, "DocumentType")
    if h.document_type.type is not None:
        _leaf(doc_type, "Type", _count(h.document_type.type, "header.document_type.type"), "")
    if h.document_type.type_detail is not None:
        detail = _count(h.document_type.type_detail, "header.document_type.type_detail")
        _leaf(doc_type, "TypeDetail", detail, "")
    _leaf(doc_type, "TypeName", h.document_type.type_name, "header.document_type.type_name")
    _leaf(mh, "Subject", h.subject, "header.subject")
    _leaf(mh, "Content", h.content, "header.content")
    signer = _sub(mh, "SignerInfo")
    _leaf(signer, "Competence", h.signer_info.competence, "header.signer_info.competence")
    _leaf(signer, "Position", h.signer_info.position, "header.signer_info.position")
    _leaf(signer, "FullName", h.signer_info.full_name, "header.signer_info.full_name")
    if h.due_date is not None:
        _date(mh, "DueDate", h.due_date, "header.due_date")
    if h.to_places:
        places = _sub(mh, "ToPlaces")
        for index, place in enumerate(h.to_places):
            _leaf(places, "Place", place, f"header.to_places[{index}]")
    _other_info(mh, h.other_info)
    for index, response in enumerate(h.response_for):
        _response_for(mh, response, f"header.response_for[{index}]")
    steering = _enum_value(h.steering_type, SteeringType, "header.steering_type")
    _leaf(mh, "SteeringType", steering, "header.steering_type")
    document_id = _required(h.document_id, "header.document_id")
    _leaf(mh, "DocumentId", document_id, "header.document_id")
    _extensions(mh, h.extensions, "header.extensions")


def _other_info(parent: _Element, info: OtherInfo) -> None:
    element = _sub(parent, "OtherInfo")
    priority = _enum_value(info.priority, Priority, "header.other_info.priority")
    _leaf(element, "Priority", priority, "header.other_info.priority")
    sphere = info.sphere_of_promulgation
    _leaf(element, "SphereOfPromulgation", sphere, "header.other_info.sphere_of_promulgation")
    _leaf(element, "TyperNotation", info.typer_notation, "header.other_info.typer_notation")
    if info.promulgation_amount is not None:
        field = "header.other_info.promulgation_amount"
        _leaf(element, "PromulgationAmount", _count(info.promulgation_amount, field), field)
    if info.page_amount is not None:
        field = "header.other_info.page_amount"
        _leaf(element, "PageAmount", _count(info.page_amount, field), field)
    if info.direction is not None:
        _leaf(element, "Direction", "true" if info.direction else "false", "")
    if info.appendixes:
        appendixes = _sub(element, "Appendixes")
        for index, appendix in enumerate(info.appendixes):
            _leaf(appendixes, "Appendix", appendix, f"header.other_info.appendixes[{index}]")
    _extensions(element, info.extensions, "header.other_info.extensions")


def _response_for(parent: _Element, response: ResponseFor, field: str) -> None:
    element = _sub(parent, "ResponseFor")
    organ_id = _organ_id(response.organ_id, f"{field}.organ_id")
    _leaf(element, "OrganId", organ_id, f"{field}.organ_id")
    _leaf(element, "Code", response.code, f"{field}.code")
    if response.promulgation_date is not None:
        _date(element, "PromulgationDate", response.promulgation_date, f"{field}.date")
    document_id = _required(response.document_id, f"{field}.document_id")
    _leaf(element, "DocumentId", document_id, f"{field}.document_id")


def _staff_info(parent: _Element, staff: StaffInfo, field: str) -> None:
    element = _sub(parent, "StaffInfo")
    _leaf(element, "Department", staff.department, f"{field}.department")
    _leaf(element, "Staff", staff.staff, f"{field}.staff")
    _leaf(element, "Mobile", staff.mobile, f"{field}.mobile")
    _leaf(element, "Email", staff.email, f"{field}.email")


def _trace_list(parent: _Element, trace: TraceHeaderList) -> None:
    element = _sub(parent, "TraceHeaderList")
    if trace.id:
        element.set("id", trace.id)
    element.set("version", TRACE_VERSION)
    element.set("mustUnderstand", "1")
    element.set("actor", SOAP_ACTOR_NEXT)
    for index, header in enumerate(trace.traces):
        field = f"trace.traces[{index}]"
        th = _sub(element, "TraceHeader")
        _leaf(th, "OrganId", _organ_id(header.organ_id, f"{field}.organ_id"), field)
        _timestamp(th, "Timestamp", header.timestamp, f"{field}.timestamp")
    _business(element, trace.business)


def _business(parent: _Element, business: Business) -> None:
    field = "trace.business"
    element = _sub(parent, "Bussiness")
    if business.document_id:
        _leaf(element, "DocumentId", business.document_id, f"{field}.document_id")
    doc_type = _enum_value(business.doc_type, BusinessDocType, f"{field}.doc_type")
    _leaf(element, "BussinessDocType", doc_type, f"{field}.doc_type")
    _leaf(element, "BussinessDocReason", business.reason, f"{field}.reason")
    _leaf(element, "Paper", "1" if business.paper else "0", f"{field}.paper")
    if business.document_info is not None:
        _document_info(element, business.document_info, f"{field}.document_info")
    if business.replacements:
        replacements = _sub(element, "ReplacementInfoList")
        for index, replacement in enumerate(business.replacements):
            item = f"{field}.replacements[{index}]"
            info = _sub(replacements, "ReplacementInfo")
            document_id = _required(replacement.document_id, f"{item}.document_id")
            _leaf(info, "DocumentId", document_id, f"{item}.document_id")
            if not replacement.organ_ids:
                raise InvalidModel(f"{item}.organ_ids: at least one OrganId is required")
            organ_ids = _sub(info, "OrganIdList")
            for n, organ_id in enumerate(replacement.organ_ids):
                organ_field = f"{item}.organ_ids[{n}]"
                _leaf(organ_ids, "OrganId", _organ_id(organ_id, organ_field), organ_field)
    if business.staff_info is not None:
        _staff_info(element, business.staff_info, f"{field}.staff_info")
    _extensions(element, business.extensions, f"{field}.extensions")


def _document_info(parent: _Element, info: BusinessDocumentInfo, field: str) -> None:
    element = _sub(parent, "BussinessDocumentInfo")
    _leaf(element, "DocumentInfo", "1" if info.document_info else "0", field)
    _leaf(element, "DocumentReceiver", "1" if info.document_receiver else "0", field)
    if info.receivers:
        receivers = _sub(element, "ReceiverList")
        for index, receiver in enumerate(info.receivers):
            item = f"{field}.receivers[{index}]"
            r = _sub(receivers, "Receiver")
            _leaf(r, "OrganId", _organ_id(receiver.organ_id, f"{item}.organ_id"), item)
            kind = _enum_value(receiver.receiver_type, ReceiverType, f"{item}.receiver_type")
            _leaf(r, "ReceiverType", kind, item)


def _reference(parent: _Element, reference: Reference, field: str) -> None:
    content_id = _content_id(reference.content_id, f"{field}.content_id")
    element = etree.SubElement(parent, _q("Reference"), nsmap={"xlink": XLINK_NS})
    element.set(f"{{{XLINK_NS}}}href", f"cid:{content_id}")
    element.set(f"{{{XLINK_NS}}}role", XLINK_ROLE)
    element.set(f"{{{XLINK_NS}}}type", "simple")
    _leaf(element, "Description", reference.description, f"{field}.description")
    _leaf(element, "AttachmentName", reference.attachment_name, f"{field}.attachment_name")
    _leaf(element, "ContentType", reference.content_type, f"{field}.content_type")
    _leaf(element, "ContentId", f"cid:{content_id}", f"{field}.content_id")


def _content_id(value: str, field: str) -> str:
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise InvalidModel(f"{field}: {value!r} is not a content id (empty or with spaces)")
    if value.lower().startswith("cid:"):
        raise InvalidModel(f"{field}: {value!r} is stored with its cid: prefix")
    return value


# Attachments ====================================================================================


def _checked_attachments(doc: Envelope) -> tuple[tuple[Attachment, _Element, bytes], ...]:
    """Check every attachment before writing; returns (model, metadata elements, content)."""
    seen: set[str] = set()
    checked = []
    for index, attachment in enumerate(doc.attachments):
        field = f"attachments[{index}]"
        content_id = _content_id(attachment.content_id, f"{field}.content_id")
        if content_id in seen:
            raise InvalidModel(f"{field}.content_id: {content_id!r} is used twice")
        seen.add(content_id)
        if attachment.content is None:
            raise InvalidModel(f"{field}.content: the bytes are not in memory (streamed?)")
        # Build the text children once, through lxml, so that bad characters are caught here.
        holder = etree.Element(_q("Attachment"))
        _leaf(holder, "ContentType", attachment.content_type, f"{field}.content_type")
        _leaf(holder, "ContentId", content_id, f"{field}.content_id")
        _leaf(holder, "Description", attachment.description, f"{field}.description")
        _leaf(holder, "AttachmentName", attachment.attachment_name, f"{field}.attachment_name")
        checked.append((attachment, holder, attachment.content))
    referenced = [r.content_id for r in doc.manifest]
    if len(set(referenced)) != len(referenced):
        raise InvalidModel("manifest: a content id is referenced twice")
    if set(referenced) != seen:
        missing = sorted(set(referenced) - seen)
        unlisted = sorted(seen - set(referenced))
        raise InvalidModel(
            f"manifest and attachments disagree: referenced without attachment {missing}, "
            f"attached without reference {unlisted}"
        )
    return tuple(checked)


def _write_attachment(xf: _IncrementalFileWriter, item: tuple[Attachment, _Element, bytes]) -> None:
    _, holder, content = item
    texts = {etree.QName(child).localname: child.text or "" for child in holder}
    with xf.element(_q("Attachment")):
        _write_leaf(xf, "ContentType", texts["ContentType"])
        _write_leaf(xf, "ContentId", texts["ContentId"])
        _write_leaf(xf, "Description", texts["Description"])
        with xf.element(_q("ContentTransferEncoded")):
            for chunk in _base64_chunks(content):
                xf.write(chunk)
                xf.flush()  # the xmlfile buffer would otherwise hold the whole base64
        _write_leaf(xf, "AttachmentName", texts["AttachmentName"])


def _write_leaf(xf: _IncrementalFileWriter, local: str, text: str) -> None:
    with xf.element(_q(local)):
        if text:
            xf.write(text)


def _base64_chunks(content: bytes) -> Iterable[str]:
    view = memoryview(content)
    for start in range(0, len(content), _B64_CHUNK):
        yield base64.b64encode(view[start : start + _B64_CHUNK]).decode("ascii")


# Status packet ==================================================================================


def _status(doc: StatusPacket) -> _Element:
    envelope = etree.Element(_q("edXMLEnvelope"), nsmap={PREFIX: NS})
    header = _sub(envelope, "edXMLHeader")
    mh = _sub(header, "MessageHeader")
    _organization(mh, "From", doc.from_, "from_")
    _response_for(mh, doc.response_for, "response_for")
    if doc.staff_info is not None:
        _staff_info(mh, doc.staff_info, "staff_info")
    _leaf(mh, "StatusCode", _status_code(doc.status_code), "status_code")
    _leaf(mh, "Description", doc.description, "description")
    _timestamp(mh, "Timestamp", doc.timestamp, "timestamp")
    _extensions(mh, doc.extensions, "extensions")
    etree.cleanup_namespaces(envelope)
    return envelope
