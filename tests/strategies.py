"""Hypothesis strategies for VALID edXML models: what edxml.writer accepts and the XSD validates.

Import from tests as `from strategies import envelopes, status_packets` (pytest puts tests/ on
sys.path). Every model is internally consistent the way a real sender's is: DocumentId is
`{From/OrganId},{yyyy/MM/dd PromulgationDate},{CodeNumber}/{CodeNotation}`, the manifest lists
exactly the attachments, the first TraceHeader is the sender's, and each BussinessDocType carries
what it needs (a target DocumentId for 1/2/3, BussinessDocumentInfo for 2, ReplacementInfoList
for 3). Text is Vietnamese, sometimes handed to the model decomposed (NFD), which the model
normalises to NFC; it never has surrounding whitespace (the reader strips it).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from hypothesis import strategies as st

from edxml.codes import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType
from edxml.dates import format_date
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORDS = _words(
    """
    Ủy ban nhân dân tỉnh Hà Nam Sở Nội vụ Tài chính Văn phòng Chính phủ báo cáo tình hình thực
    hiện nhiệm kế hoạch năm 2025 về việc triển khai công tác văn thư lưu trữ điện tử Quyết định
    Thông Hỏa tốc khẩn Nguyễn Thị Ngọc Trâm Lê Mạnh Hùng Phủ Lý đường số Đồng Tháp Nghệ An Cao
    Bằng Thủy lợi Giáo dục đào tạo V/v (lần 2) A&B <dự thảo> "mật" 1.000 12/2025 — ư ơ
    """
)
NOTATIONS = _words(
    "UBND-VP UBND-KT QĐ-UBND BC-UBND STC-BCTC SNV-TCCB VPCP-TTĐT BNV-VTLT TTr-SXD KH-SGDĐT"
)
DOCUMENT_TYPES = (
    (1, "Công văn"),
    (18, "Công văn"),
    (2, "Quyết định"),
    (3, "Báo cáo"),
    (4, "Tờ trình"),
    (5, "Kế hoạch"),
    (6, "Thông báo"),
)
CONTENT_TYPES = (
    ("application/pdf", ".pdf"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("application/msword", ".doc"),
    ("application/zip", ".zip"),
    ("text/plain", ".txt"),
)
FIRST_DATE = dt.date(2000, 1, 1)
LAST_DATE = dt.date(2035, 12, 31)


def _maybe_decomposed(text: str) -> st.SearchStrategy[str]:
    # Decomposed input (macOS, "Unicode tổ hợp" keyboards) must end up NFC in the model.
    return st.sampled_from((text, unicodedata.normalize("NFD", text)))


def vietnamese_text(min_words: int = 0, max_words: int = 12) -> st.SearchStrategy[str]:
    """Vietnamese words joined by spaces (no surrounding whitespace), NFC or NFD."""
    return (
        st.lists(st.sampled_from(WORDS), min_size=min_words, max_size=max_words)
        .map(" ".join)
        .flatmap(_maybe_decomposed)
    )


def multiline_text(max_lines: int = 3) -> st.SearchStrategy[str]:
    """Text with inner line breaks (Content, Description); ends never blank."""
    return st.lists(vietnamese_text(1, 10), min_size=1, max_size=max_lines).map("\n".join)


def organ_ids() -> st.SearchStrategy[str]:
    """Agency codes of the `NNN.NN.NN.XNN` shape: mostly provinces (H) and ministries (G)."""
    return st.builds(
        lambda l4, l3, l2, letter, n: f"{l4:03d}.{l3:02d}.{l2:02d}.{letter}{n:02d}",
        st.sampled_from((0, 0, 0, 1, 12, 101)),
        st.integers(0, 30),
        st.integers(0, 60),
        st.sampled_from("GGHHHA"),
        st.integers(1, 63),
    )


def dates() -> st.SearchStrategy[dt.date]:
    return st.dates(min_value=FIRST_DATE, max_value=LAST_DATE)


def timestamps() -> st.SearchStrategy[dt.datetime]:
    """Aware instants in Vietnam time, to the second (the wire format's precision)."""
    return st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2035, 12, 31),
        timezones=st.just(VN_TZ),
    ).map(lambda value: value.replace(microsecond=0))


def emails() -> st.SearchStrategy[str]:
    return st.builds(
        lambda user, host: f"{user}@{host}.gov.vn",
        st.text("abcdefghijklmnopqrstuvwxyz0123456789.", min_size=1, max_size=12).filter(
            lambda u: not u.startswith(".") and not u.endswith(".")
        ),
        st.sampled_from(("hanam", "moha", "vpcp", "nghean", "caobang", "tayninh")),
    )


def phones() -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), st.from_regex(r"0[0-9]{3} [0-9]{6}", fullmatch=True))


def organizations(
    organ_id: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Organization]:
    return st.builds(
        Organization,
        organ_id=organ_id if organ_id is not None else organ_ids(),
        organization_in_charge=vietnamese_text(0, 6),
        organ_name=vietnamese_text(1, 8),
        organ_add=vietnamese_text(0, 10),
        email=st.one_of(st.just(""), emails()),
        telephone=phones(),
        fax=phones(),
        website=st.sampled_from(("", "hanam.gov.vn", "www.chinhphu.vn", "moha.gov.vn")),
    )


def codes() -> st.SearchStrategy[Code]:
    return st.builds(
        Code,
        code_number=st.integers(1, 99999).map(str),
        code_notation=st.sampled_from(NOTATIONS).flatmap(_maybe_decomposed),
    )


def document_id_of(organ_id: str, date: dt.date, code: Code) -> str:
    return f"{organ_id},{format_date(date)},{code}"


@st.composite
def document_ids(draw: Any) -> str:
    """A DocumentId of some other document (a ResponseFor / Bussiness target)."""
    return document_id_of(draw(organ_ids()), draw(dates()), draw(codes()))


@st.composite
def response_fors(draw: Any) -> ResponseFor:
    organ_id, date, code = draw(organ_ids()), draw(dates()), draw(codes())
    return ResponseFor(
        organ_id=organ_id,
        code=str(code),
        promulgation_date=draw(st.one_of(st.none(), st.just(date))),
        document_id=document_id_of(organ_id, date, code),
    )


def staff_infos() -> st.SearchStrategy[StaffInfo]:
    return st.builds(
        StaffInfo,
        department=vietnamese_text(0, 5),
        staff=vietnamese_text(0, 4),
        mobile=st.one_of(st.just(""), st.from_regex(r"84[0-9]{9}", fullmatch=True)),
        email=st.one_of(st.just(""), emails()),
    )


def other_infos() -> st.SearchStrategy[OtherInfo]:
    return st.builds(
        OtherInfo,
        priority=st.sampled_from(Priority),
        sphere_of_promulgation=st.sampled_from(
            ("", "Liên thông văn bản quốc gia", "Lưu hành nội bộ", "Liên thông văn bản")
        ).flatmap(_maybe_decomposed),
        typer_notation=st.sampled_from(("", "VP", "TVC", "NTH")),
        promulgation_amount=st.one_of(st.none(), st.integers(0, 500)),
        page_amount=st.one_of(st.none(), st.integers(0, 999)),
        direction=st.one_of(st.none(), st.booleans()),
        appendixes=st.lists(vietnamese_text(0, 8), max_size=3).map(tuple),
    )


@st.composite
def attachments_with_manifest(
    draw: Any, max_files: int = 3, max_bytes: int = 4096
) -> tuple[tuple[Attachment, ...], tuple[Reference, ...]]:
    """Attachments with random bytes and the manifest listing each one (same order)."""
    ids = draw(st.lists(st.uuids().map(str), max_size=max_files, unique=True))
    attachments = []
    references = []
    for index, content_id in enumerate(ids, 1):
        content_type, extension = draw(st.sampled_from(CONTENT_TYPES))
        stem = draw(st.sampled_from(("Công văn", "Quyết định", "Phụ lục", "bao-cao", "QD-UBND")))
        name = draw(_maybe_decomposed(f"{stem} {index}{extension}"))
        description = draw(vietnamese_text(0, 6))
        content = draw(st.binary(max_size=max_bytes))
        attachments.append(
            Attachment.of(
                content,
                content_id=content_id,
                attachment_name=name,
                content_type=content_type,
                description=description,
            )
        )
        references.append(
            Reference(
                content_id=content_id,
                attachment_name=name,
                content_type=content_type,
                description=description,
            )
        )
    return tuple(attachments), tuple(references)


@st.composite
def businesses(draw: Any, doc_type: BusinessDocType | None = None) -> Business:
    """A Bussiness block with what its type needs."""
    kind = doc_type if doc_type is not None else draw(st.sampled_from(BusinessDocType))
    target = "" if kind is BusinessDocType.NEW else draw(document_ids())
    info = None
    replacements: tuple[ReplacementInfo, ...] = ()
    if kind is BusinessDocType.UPDATE:
        receivers = draw(
            st.lists(
                st.builds(
                    Receiver, organ_id=organ_ids(), receiver_type=st.sampled_from(ReceiverType)
                ),
                max_size=4,
            )
        )
        info = BusinessDocumentInfo(
            document_info=draw(st.booleans()),
            document_receiver=bool(receivers) or draw(st.booleans()),
            receivers=tuple(receivers),
        )
    if kind is BusinessDocType.REPLACE:
        replacements = tuple(
            draw(
                st.lists(
                    st.builds(
                        ReplacementInfo,
                        document_id=document_ids(),
                        organ_ids=st.lists(organ_ids(), min_size=1, max_size=3).map(tuple),
                    ),
                    min_size=1,
                    max_size=2,
                )
            )
        )
    return Business(
        doc_type=kind,
        reason=draw(_maybe_decomposed(kind.default_reason)),
        document_id=target,
        paper=draw(st.booleans()),
        staff_info=draw(st.one_of(st.none(), staff_infos())),
        document_info=info,
        replacements=replacements,
    )


@st.composite
def envelopes(
    draw: Any,
    doc_type: BusinessDocType | None = None,
    max_recipients: int = 4,
    max_files: int = 3,
) -> Envelope:
    """A valid envelope: 1..max_recipients recipients, 0..max_files attachments."""
    sender = draw(organizations())
    recipients = draw(
        st.lists(
            organizations(organ_ids().filter(lambda organ_id: organ_id != sender.organ_id)),
            min_size=1,
            max_size=max_recipients,
            unique_by=lambda o: o.organ_id,
        )
    )
    code = draw(codes())
    date = draw(dates())
    type_code, type_name = draw(st.sampled_from(DOCUMENT_TYPES))
    subject = draw(vietnamese_text(1, 15))
    header = MessageHeader(
        from_=sender,
        to=tuple(recipients),
        code=code,
        promulgation_info=PromulgationInfo(
            place=draw(st.sampled_from(("Hà Nam", "Hà Nội", "Phủ Lý", "Tây Ninh"))),
            promulgation_date=date,
        ),
        document_type=DocumentType(
            type=type_code,
            type_name=type_name,
            type_detail=draw(st.sampled_from((None, 0))),
        ),
        subject=subject,
        content=draw(st.one_of(st.just(subject), multiline_text())),
        signer_info=draw(
            st.builds(
                SignerInfo,
                competence=st.sampled_from(("", "KT. CHỦ TỊCH", "TL. BỘ TRƯỞNG", "TM. UBND")),
                position=st.sampled_from(("", "PHÓ CHỦ TỊCH", "Chánh văn phòng", "GIÁM ĐỐC")),
                full_name=vietnamese_text(0, 4),
            )
        ),
        due_date=draw(
            st.one_of(st.none(), st.integers(0, 30).map(lambda d: date + dt.timedelta(days=d)))
        ),
        to_places=tuple(draw(st.lists(vietnamese_text(1, 6), max_size=3))),
        other_info=draw(other_infos()),
        response_for=tuple(draw(st.lists(response_fors(), max_size=2))),
        steering_type=draw(st.sampled_from(SteeringType)),
        document_id=document_id_of(sender.organ_id, date, code),
    )
    relays = draw(st.lists(st.tuples(organ_ids(), timestamps()), max_size=2))
    first = draw(timestamps())
    trace = TraceHeaderList(
        traces=(
            TraceHeader(organ_id=sender.organ_id, timestamp=first),
            *(TraceHeader(organ_id=o, timestamp=t) for o, t in relays),
        ),
        business=draw(businesses(doc_type)),
        id=draw(st.one_of(st.just(""), st.from_regex(r"[0-9a-f]{8}", fullmatch=True))),
    )
    attachments, manifest = draw(attachments_with_manifest(max_files=max_files))
    return Envelope(header=header, trace=trace, manifest=manifest, attachments=attachments)


@st.composite
def status_packets(draw: Any, status_code: StatusCode | None = None) -> StatusPacket:
    """A valid status packet; every StatusCode unless one is given."""
    return StatusPacket(
        response_for=draw(response_fors()),
        from_=draw(organizations()),
        status_code=status_code if status_code is not None else draw(st.sampled_from(StatusCode)),
        description=draw(st.one_of(st.just(""), multiline_text(2))),
        timestamp=draw(timestamps()),
        staff_info=draw(st.one_of(st.none(), staff_infos())),
    )


def documents() -> st.SearchStrategy[Envelope | StatusPacket]:
    return st.one_of(envelopes(), status_packets())
