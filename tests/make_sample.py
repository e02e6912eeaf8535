"""Write tests/fixtures/sample_envelope.edxml: a realistic, clean envelope made by our writer.

UBND tỉnh Hà Nam (000.00.00.H23) sends a Công văn to Văn phòng Chính phủ (000.00.00.G22) and Bộ
Nội vụ (000.00.00.G09), with a small hand-made PDF and a .txt attachment. Everything is fixed
(ids, dates, timestamps), so the output is byte-for-byte deterministic; test_writer checks that
the committed file is what this script writes today.

    .venv/bin/python tests/make_sample.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs

from edxml.codes import BusinessDocType, Priority, SteeringType
from edxml.dates import format_date
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Reference,
    SignerInfo,
    StaffInfo,
    TraceHeader,
    TraceHeaderList,
)
from edxml.writer import write

SAMPLE = Path(__file__).resolve().parent / "fixtures" / "sample_envelope.edxml"
SAMPLE_LOCAL = SAMPLE.with_name("sample_local.edxml")
PDF_ID = "5b1f2c3e-8d4a-4f6b-9c1e-2a7d3b9e0f11"
TXT_ID = "9c2e4a61-3f5b-4d7c-8e9a-0b1c2d3e4f52"


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 with a correct cross-reference table, written by hand.

    Text is ASCII (the base-14 Helvetica has no Vietnamese glyphs); the point is a structurally
    valid file that PDF sniffers and parsers accept.
    """
    text_ops = ["BT", "/F1 12 Tf", "72 770 Td", "16 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text_ops.append(f"({escaped}) '")
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title (Cong van 123/UBND-VP) /Producer (edxml-gateway make_sample) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def sample_envelope() -> Envelope:
    sender = Organization(
        organ_id="000.00.00.H23",
        organization_in_charge="Ủy ban nhân dân tỉnh Hà Nam",
        organ_name="Văn phòng Ủy ban nhân dân tỉnh Hà Nam",
        organ_add="Số 90 đường Trần Phú, phường Quang Trung, thành phố Phủ Lý, tỉnh Hà Nam",
        email="vanphong@hanam.gov.vn",
        telephone="0226 3852 701",
        fax="0226 3852 702",
        website="hanam.gov.vn",
    )
    vpcp = Organization(
        organ_id="000.00.00.G22",
        organization_in_charge="Chính phủ",
        organ_name="Văn phòng Chính phủ",
        organ_add="Số 1 Hoàng Hoa Thám, Ba Đình, Hà Nội",
        email="vpcp@chinhphu.vn",
        website="chinhphu.vn",
    )
    moha = Organization(
        organ_id="000.00.00.G09",
        organization_in_charge="Chính phủ",
        organ_name="Bộ Nội vụ",
        organ_add="Số 8 Tôn Thất Thuyết, Cầu Giấy, Hà Nội",
        email="bonoivu@moha.gov.vn",
        website="moha.gov.vn",
    )
    date = dt.date(2025, 3, 5)
    code = Code(code_number="123", code_notation="UBND-VP")
    subject = "V/v báo cáo tình hình triển khai gửi, nhận văn bản điện tử năm 2024"
    pdf = minimal_pdf(
        [
            "UY BAN NHAN DAN TINH HA NAM",
            "So: 123/UBND-VP",
            "Ha Nam, ngay 05 thang 03 nam 2025",
            "V/v bao cao tinh hinh trien khai gui, nhan van ban dien tu nam 2024",
        ]
    )
    note = (
        "Phụ lục: danh sách cơ quan, đơn vị đã kết nối trục liên thông văn bản.\n"
        "1. Sở Nội vụ tỉnh Hà Nam\n"
        "2. Sở Tài chính tỉnh Hà Nam\n"
    ).encode()
    attachments = (
        Attachment.of(
            pdf,
            content_id=PDF_ID,
            attachment_name="123-UBND-VP.pdf",
            content_type="application/pdf",
            description="Công văn số 123/UBND-VP",
        ),
        Attachment.of(
            note,
            content_id=TXT_ID,
            attachment_name="Phụ lục danh sách.txt",
            content_type="text/plain",
            description="Phụ lục kèm theo",
        ),
    )
    manifest = tuple(
        Reference(
            content_id=a.content_id,
            attachment_name=a.attachment_name,
            content_type=a.content_type,
            description=a.description,
        )
        for a in attachments
    )
    header = MessageHeader(
        from_=sender,
        to=(vpcp, moha),
        code=code,
        promulgation_info=PromulgationInfo(place="Hà Nam", promulgation_date=date),
        document_type=DocumentType(type=18, type_name="Công văn", type_detail=0),
        subject=subject,
        content=subject,
        signer_info=SignerInfo(
            competence="KT. CHỦ TỊCH", position="PHÓ CHỦ TỊCH", full_name="Nguyễn Văn An"
        ),
        due_date=dt.date(2025, 3, 12),
        to_places=("Văn phòng Chính phủ", "Bộ Nội vụ", "Lưu: VT, VP"),
        other_info=OtherInfo(
            priority=Priority.URGENT,
            sphere_of_promulgation="Liên thông văn bản quốc gia",
            typer_notation="VP",
            promulgation_amount=3,
            page_amount=1,
        ),
        steering_type=SteeringType.NONE,
        document_id=f"{sender.organ_id},{format_date(date)},{code}",
    )
    trace = TraceHeaderList(
        traces=(
            TraceHeader(
                organ_id=sender.organ_id,
                timestamp=dt.datetime(2025, 3, 5, 15, 2, 11, tzinfo=VN_TZ),
            ),
        ),
        business=Business(
            doc_type=BusinessDocType.NEW,
            reason=BusinessDocType.NEW.default_reason,
            paper=False,
            staff_info=StaffInfo(
                department="Văn thư - Văn phòng UBND tỉnh",
                staff="Trần Thị Bình",
                mobile="84912345678",
                email="vanthu@hanam.gov.vn",
            ),
        ),
        id="9f2c01ab",
    )
    return Envelope(header=header, trace=trace, manifest=manifest, attachments=attachments)


def sample_local() -> Envelope:
    """The same document addressed inside the sample node: UBND tỉnh → Văn phòng UBND tỉnh,
    both hosted by gateway.conf, so `make run` can deliver it without any peer."""
    env = sample_envelope()
    office = Organization(
        organ_id="000.00.01.H23",
        organization_in_charge="Ủy ban nhân dân tỉnh Hà Nam",
        organ_name="Văn phòng Ủy ban nhân dân tỉnh Hà Nam",
    )
    return attrs.evolve(env, header=attrs.evolve(env.header, to=(office,)))


def main() -> None:
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    SAMPLE.write_bytes(write(sample_envelope()))
    SAMPLE_LOCAL.write_bytes(write(sample_local()))
    print(f"wrote {SAMPLE} and {SAMPLE_LOCAL}")


if __name__ == "__main__":
    main()
