"""QCVN 102 edXML ↔ the eDoc hub's own packets (../shared/docs/bkav_hub.md), without I/O.

The hub does not carry QCVN 102 envelopes: SendDocument wants its `http://www.e-doc.vn/Schema/`
MessageHeader/TraceHeaderList in the SOAP Header and the files as MIME parts, and statuses
travel as unsigned traces. What crosses it, and what stays signed:

* a document goes as the hub's fields mapped from our envelope (so every office system on the
  hub can read and register it), its files as parts, **and the sender's signed envelope itself,
  byte for byte, as one more part** named `ENVELOPE_ATTACHMENT`. A gateway receiving it takes
  that part to its inbound pipeline, which verifies the sender's seal as for any other route;
  the hub's fields are never trusted for content. A document without that part came from an
  office system that does not sign: it is refused (the hub's fields carry no seal);
* a status goes as UpdateTraces, unsigned (the hub attests it by the poster's token alone); the
  signed status packet stays in the sender's store as its evidence. A trace read back is made
  into a status packet deterministically (the same trace gives the same bytes, so reading it
  twice records it once), marked as hub-attested by the route it came from. The hub makes the
  `01` itself when the receiver confirms (§5.4): a gateway does not post its own.
* a recall request (13) runs the other way on the hub (§5.5: its ResponseFor names the
  recipient); it is turned around both ways here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final

import attrs

from edxml import edochub, model
from edxml.codes import StatusCode

__all__ = [
    "ENVELOPE_ATTACHMENT",
    "MappingError",
    "hub_trace",
    "outgoing_document",
    "signed_envelope",
    "status_packet",
    "trace_from_json",
    "trace_json",
    "trace_key",
]

ENVELOPE_ATTACHMENT: Final = "edxml-qcvn102-envelope.edxml"
ENVELOPE_TYPE: Final = "application/xml"
_ENVELOPE_DESCRIPTION: Final = (
    "Gói tin edXML QCVN 102:2016 có chữ ký số của cơ quan gửi"
    " / the sender's signed QCVN 102:2016 edXML envelope"
)


class MappingError(ValueError):
    """Our envelope lacks what the hub requires (§5.1): it would refuse it."""

    def __init__(self, message_en: str, message_vi: str) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_vi = message_vi


def _organization(org: model.Organization) -> edochub.Organization:
    return edochub.Organization(
        organ_id=org.organ_id,
        name=org.organ_name,
        in_charge=org.organization_in_charge,
        address=org.organ_add,
        email=org.email,
        telephone=org.telephone,
        fax=org.fax,
        website=org.website,
    )


def _staff(staff: model.StaffInfo | None) -> edochub.StaffInfo:
    if staff is None:
        return edochub.StaffInfo()
    return edochub.StaffInfo(
        department=staff.department, staff=staff.staff, email=staff.email, mobile=staff.mobile
    )


def outgoing_document(
    envelope: model.Envelope,
    payload: bytes,
    *,
    recipients: Sequence[str],
    now: dt.datetime,
) -> edochub.OutgoingDocument:
    """SendDocument's packet for `envelope` (whose exact bytes are `payload`), addressed to
    `recipients` (the envelope's `To` that this hub serves). Raises MappingError for what the
    hub's validation would refuse anyway (§5.1 step 3)."""
    h = envelope.header
    wanted = set(recipients)
    to = tuple(_organization(o) for o in h.to if o.organ_id in wanted)
    if not to:
        raise MappingError(
            "none of the envelope's recipients is served by this hub",
            "không có cơ quan nhận nào của gói tin thuộc trục này",
        )
    date = h.promulgation_info.promulgation_date
    if date is None:
        raise MappingError(
            "the hub requires a promulgation date", "trục yêu cầu ngày ban hành văn bản"
        )
    if not h.code.code_number or not h.code.code_notation:
        raise MappingError(
            "the hub requires a document number and notation",
            "trục yêu cầu số và ký hiệu văn bản",
        )
    if not h.subject:
        raise MappingError("the hub requires a subject", "trục yêu cầu trích yếu văn bản")
    files = []
    for index, att in enumerate(envelope.attachments, 1):
        if att.content is None:
            raise ValueError("the envelope was read without its attachments' bytes")
        files.append(
            edochub.Attachment(
                name=att.attachment_name or f"attachment-{index}",
                content_type=att.content_type or "application/octet-stream",
                data=att.content,
                description=att.description,
            )
        )
    files.append(
        edochub.Attachment(
            name=ENVELOPE_ATTACHMENT,
            content_type=ENVELOPE_TYPE,
            data=payload,
            description=_ENVELOPE_DESCRIPTION,
        )
    )
    business = envelope.trace.business
    doc_type = h.document_type.type
    signer = h.signer_info
    return edochub.OutgoingDocument(
        from_=_organization(h.from_),
        to=to,
        document_id=h.document_id,
        code_number=h.code.code_number,
        code_notation=h.code.code_notation,
        place=h.promulgation_info.place,
        promulgation_date=date,
        subject=h.subject,
        timestamp=now,
        document_type=doc_type if doc_type in (1, 2) else 2,
        type_name=h.document_type.type_name,
        content=h.content,
        signer_competence=signer.competence,
        signer_position=signer.position,
        signer_full_name=signer.full_name,
        due_date=h.due_date,
        to_places=h.to_places,
        priority=int(h.other_info.priority),
        steering_type=int(h.steering_type),
        business_doc_type=int(business.doc_type),
        business_doc_reason=business.reason,
        paper=1 if business.paper else 0,
        staff=_staff(business.staff_info),
        attachments=tuple(files),
        response_for=tuple(
            edochub.ResponseFor(
                organ_id=r.organ_id,
                code=r.code,
                promulgation_date=_hub_date(r.promulgation_date),
                document_id=r.document_id,
            )
            for r in h.response_for
        ),
        business_document_id=business.document_id,
        update_info=_update_info(business.document_info),
        replacements=tuple(
            edochub.Replacement(r.document_id, r.organ_ids) for r in business.replacements
        ),
    )


def _hub_date(day: dt.date | None) -> str:
    return day.strftime("%Y/%m/%d") if day else ""


def _update_info(info: model.BusinessDocumentInfo | None) -> edochub.UpdateInfo | None:
    if info is None:
        return None
    return edochub.UpdateInfo(
        document_info=int(info.document_info),
        document_receiver=int(info.document_receiver),
        receivers=tuple(
            edochub.ReceiverChange(r.organ_id, int(r.receiver_type)) for r in info.receivers
        ),
    )


def signed_envelope(document: edochub.ReceivedDocument) -> bytes | None:
    """The sender's signed envelope carried beside the hub's fields, or None (the document came
    from an office system that sends only the hub's packet)."""
    for att in document.attachments:
        if att.name.strip().lower() == ENVELOPE_ATTACHMENT:
            return att.data
    return None


def hub_trace(packet: model.StatusPacket, *, recipient: str) -> dict[str, Any]:
    """UpdateTraces' arguments for our status packet going to `recipient`."""
    about = packet.response_for
    recall = packet.status_code is StatusCode.RECALL_REQUESTED
    day = about.promulgation_date
    timestamp = packet.timestamp
    if timestamp is None:
        raise MappingError("the status has no timestamp", "trạng thái không có thời điểm")
    return {
        "from_": _organization(packet.from_),
        "response_for": edochub.ResponseFor(
            # The hub files a 13 under its ResponseFor organisation: the recipient (§5.5).
            organ_id=recipient if recall else about.organ_id,
            code=about.code,
            promulgation_date=_hub_date(day),
            document_id=about.document_id,
        ),
        "status": packet.status_code,
        "description": packet.description or packet.status_code.label_vi,
        "timestamp": timestamp,
        "staff": _staff(packet.staff_info),
    }


def status_packet(trace: edochub.Trace) -> model.StatusPacket | None:
    """The status packet a trace stands for, always the same for the same trace; None for the
    hub's own 999 (a failed forward), codes outside the national list, or no readable time."""
    status = trace.status
    moment = trace.moment
    if status is None or moment is None:
        return None
    rf = trace.response_for
    # A 13 names the document's recipient in ResponseFor; our packet names the sender.
    sender = trace.from_.organ_id if status is StatusCode.RECALL_REQUESTED else rf.organ_id
    day = edochub.parse_date(rf.promulgation_date)
    document_id = rf.document_id
    if not document_id and day is not None:
        document_id = f"{sender},{day:%Y/%m/%d},{rf.code}"  # the hub's own convention (§8)
    staff = trace.staff
    org = trace.from_
    return model.StatusPacket(
        response_for=model.ResponseFor(
            organ_id=sender, code=rf.code, promulgation_date=day, document_id=document_id
        ),
        from_=model.Organization(
            organ_id=org.organ_id,
            organization_in_charge=org.in_charge,
            organ_name=org.name or org.organ_id,
            organ_add=org.address,
            email=org.email,
            telephone=org.telephone,
            fax=org.fax,
            website=org.website,
        ),
        status_code=status,
        description=trace.description or status.label_vi,
        timestamp=moment,
        staff_info=model.StaffInfo(
            department=staff.department, staff=staff.staff, mobile=staff.mobile, email=staff.email
        ),
    )


def trace_key(trace: edochub.Trace) -> str:
    """A trace's identity (the hub gives traces no id in GetTraces): its fields' digest."""
    return "trace:" + hashlib.sha256(trace_json(trace).encode("utf-8")).hexdigest()[:40]


def trace_json(trace: edochub.Trace) -> str:
    """A trace kept until it is stored (a crash between reading and storing must not lose it:
    the hub forgets what it handed over)."""
    return json.dumps(attrs.asdict(trace), ensure_ascii=False, sort_keys=True)


def trace_from_json(text: str) -> edochub.Trace:
    data = json.loads(text)
    return edochub.Trace(
        from_=edochub.Organization(**data["from_"]),
        response_for=edochub.ResponseFor(**data["response_for"]),
        staff=edochub.StaffInfo(**data["staff"]),
        code=int(data["code"]),
        description=data["description"],
        timestamp=data["timestamp"],
    )
