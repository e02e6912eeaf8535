"""The strict writer: the exact wire layout, the SDK orders, streaming, and what it refuses."""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from pathlib import Path
from typing import Any

import attrs
from lxml import etree
from make_sample import SAMPLE, SAMPLE_LOCAL, minimal_pdf, sample_envelope, sample_local
from strategies import status_packets

from twisted.trial.unittest import SynchronousTestCase

from edxml.codes import NS, XLINK_NS, BusinessDocType, StatusCode
from edxml.errors import InvalidModel
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    BusinessDocumentInfo,
    Envelope,
    Extension,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    StaffInfo,
    StatusPacket,
    TraceHeader,
)
from edxml.reader import read
from edxml.writer import write, write_to

MESSAGE_HEADER_ORDER = [
    "From",
    "To",
    "Code",
    "PromulgationInfo",
    "DocumentType",
    "Subject",
    "Content",
    "SignerInfo",
    "DueDate",
    "ToPlaces",
    "OtherInfo",
    "ResponseFor",
    "SteeringType",
    "DocumentId",
]
BUSINESS_ORDER = [
    "DocumentId",
    "BussinessDocType",
    "BussinessDocReason",
    "Paper",
    "BussinessDocumentInfo",
    "ReplacementInfoList",
    "StaffInfo",
]
STATUS_ORDER = ["From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"]


def _names(element: Any) -> list[str]:
    return [etree.QName(child).localname for child in element]


def _distinct(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _status() -> StatusPacket:
    return StatusPacket(
        response_for=ResponseFor(
            organ_id="000.00.00.H23",
            code="123/UBND-VP",
            promulgation_date=dt.date(2025, 3, 5),
            document_id="000.00.00.H23,2025/03/05,123/UBND-VP",
        ),
        from_=sample_envelope().header.to[0],
        status_code=StatusCode.ACCEPTED,
        description="Văn thư đã tiếp nhận",
        timestamp=dt.datetime(2025, 3, 5, 16, 0, 0, tzinfo=VN_TZ),
        staff_info=StaffInfo(department="Văn thư", staff="Lê Thị Hoa"),
    )


def _full_envelope(doc_type: BusinessDocType = BusinessDocType.UPDATE) -> Envelope:
    """The sample with every optional part filled, so that order checks see every element."""
    envelope = sample_envelope()
    response = ResponseFor(
        organ_id="000.00.00.G22",
        code="7816/VPCP-TTĐT",
        promulgation_date=dt.date(2025, 2, 1),
        document_id="000.00.00.G22,2025/02/01,7816/VPCP-TTĐT",
    )
    business = Business(
        doc_type=doc_type,
        reason=doc_type.default_reason,
        document_id="000.00.00.H23,2025/03/01,100/UBND-VP",
        paper=True,
        staff_info=StaffInfo(department="Văn thư", staff="A", mobile="849", email="a@b"),
        document_info=BusinessDocumentInfo(
            document_info=True,
            document_receiver=True,
            receivers=(Receiver(organ_id="000.00.00.G09"),),
        ),
        replacements=(
            ReplacementInfo(
                document_id="000.00.00.H23,2025/03/01,100/UBND-VP", organ_ids=("000.00.00.G22",)
            ),
        ),
    )
    return attrs.evolve(
        envelope,
        header=attrs.evolve(
            envelope.header,
            response_for=(response,),
            other_info=attrs.evolve(
                envelope.header.other_info, direction=True, appendixes=("Phụ lục I",)
            ),
        ),
        trace=attrs.evolve(envelope.trace, business=business),
    )


class LayoutTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data = write(sample_envelope())
        self.text = self.data.decode("utf-8")
        self.root = etree.fromstring(self.data)

    def test_declaration_and_root(self) -> None:
        self.assertTrue(self.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<edXML '))
        self.assertIn(f'<edXML xmlns="{NS}">', self.text)
        self.assertEqual(self.root.tag, f"{{{NS}}}edXML")
        self.assertEqual(self.root.nsmap, {None: NS})

    def test_every_element_inside_the_envelope_is_literally_prefixed(self) -> None:
        start = self.text.index("<edXML:edXMLEnvelope")
        end = self.text.index("</edXML:edXMLEnvelope>")
        envelope = self.text[start:end]
        self.assertIn(f'<edXML:edXMLEnvelope xmlns:edXML="{NS}">', envelope)
        tags = re.findall(r"</?([A-Za-z_][\w.:-]*)", envelope)
        self.assertGreater(len(tags), 50)
        self.assertEqual({t for t in tags if not t.startswith("edXML:")}, set())
        # And no element declares the default namespace again.
        self.assertEqual(self.text.count(f'xmlns="{NS}"'), 1)

    def test_attachments_outside_unprefixed(self) -> None:
        tail = self.text[self.text.index("</edXML:edXMLEnvelope>") :]
        self.assertTrue(tail.startswith("</edXML:edXMLEnvelope><AttachmentEncoded><Attachment>"))
        self.assertNotIn("edXML:", tail.removeprefix("</edXML:edXMLEnvelope>"))
        self.assertTrue(tail.endswith("</AttachmentEncoded></edXML>"))
        encoded = self.root[1]
        self.assertEqual(encoded.tag, f"{{{NS}}}AttachmentEncoded")
        self.assertEqual(len(encoded), 2)
        self.assertEqual(
            _names(encoded[0]),
            ["ContentType", "ContentId", "Description", "ContentTransferEncoded", "AttachmentName"],
        )
        pdf_id = sample_envelope().attachments[0].content_id
        self.assertEqual(encoded[0][1].text, pdf_id)  # no cid: here
        self.assertTrue(encoded[0][3].text.startswith("JVBERi0xLjQ"))  # %PDF-1.4

    def test_manifest_reference(self) -> None:
        pdf_id = sample_envelope().attachments[0].content_id
        (reference,) = self.root.iterfind(f".//{{{NS}}}Reference[1]")
        self.assertEqual(reference.get(f"{{{XLINK_NS}}}href"), f"cid:{pdf_id}")
        self.assertEqual(reference.get(f"{{{XLINK_NS}}}role"), "XLinkRole")
        self.assertEqual(reference.get(f"{{{XLINK_NS}}}type"), "simple")
        self.assertEqual(
            _names(reference), ["Description", "AttachmentName", "ContentType", "ContentId"]
        )
        self.assertEqual(reference[3].text, f"cid:{pdf_id}")
        self.assertEqual(reference.getparent().get("version"), "1.0")

    def test_header_parts(self) -> None:
        header = self.root[0][0]
        self.assertEqual(_names(header), ["MessageHeader", "TraceHeaderList", "DigitalSignature"])
        self.assertIn("<edXML:DigitalSignature/>", self.text)
        trace = header[1]
        self.assertEqual(
            dict(trace.attrib),
            {
                "id": "9f2c01ab",
                "version": "1.0",
                "mustUnderstand": "1",
                "actor": "http://schemas.xmlsoap.org/soap/actor/next",
            },
        )
        self.assertIn(
            "<edXML:TraceHeader><edXML:OrganId>000.00.00.H23</edXML:OrganId>"
            "<edXML:Timestamp>2025/03/05 15:02:11</edXML:Timestamp></edXML:TraceHeader>",
            self.text,
        )
        self.assertIn("<edXML:PromulgationDate>2025/03/05</edXML:PromulgationDate>", self.text)
        self.assertIn("<edXML:DueDate>2025/03/12</edXML:DueDate>", self.text)
        self.assertIn("<edXML:Bussiness><edXML:BussinessDocType>0<", self.text)
        self.assertNotIn("Business", self.text)

    def test_message_header_order(self) -> None:
        root = etree.fromstring(write(_full_envelope()))
        header = root[0][0][0]
        self.assertEqual(_distinct(_names(header)), MESSAGE_HEADER_ORDER)
        self.assertEqual(
            _names(header.find(f"{{{NS}}}OtherInfo")),
            [
                "Priority",
                "SphereOfPromulgation",
                "TyperNotation",
                "PromulgationAmount",
                "PageAmount",
                "Direction",
                "Appendixes",
            ],
        )
        self.assertEqual(
            _names(header.find(f"{{{NS}}}From")),
            [
                "OrganId",
                "OrganizationInCharge",
                "OrganName",
                "OrganAdd",
                "Email",
                "Telephone",
                "Fax",
                "Website",
            ],
        )
        self.assertEqual(
            _names(header.find(f"{{{NS}}}DocumentType")), ["Type", "TypeDetail", "TypeName"]
        )

    def test_business_order(self) -> None:
        root = etree.fromstring(write(_full_envelope()))
        business = root.find(f".//{{{NS}}}Bussiness")
        self.assertEqual(_names(business), BUSINESS_ORDER)
        self.assertEqual(
            _names(business.find(f"{{{NS}}}StaffInfo")), ["Department", "Staff", "Mobile", "Email"]
        )

    def test_status_layout(self) -> None:
        data = write(_status())
        root = etree.fromstring(data)
        self.assertEqual(_names(root), ["edXMLEnvelope"])
        self.assertEqual(_names(root[0]), ["edXMLHeader"])
        self.assertEqual(_names(root[0][0]), ["MessageHeader"])
        self.assertEqual(_names(root[0][0][0]), STATUS_ORDER)
        self.assertIn(b"<edXML:StatusCode>03</edXML:StatusCode>", data)
        self.assertIn(b"<edXML:Timestamp>2025/03/05 16:00:00</edXML:Timestamp>", data)

    def test_timestamps_written_in_vietnam_time(self) -> None:
        utc = dt.datetime(2025, 3, 5, 20, 30, 15, 999999, tzinfo=dt.UTC)
        data = write(attrs.evolve(_status(), timestamp=utc))
        self.assertIn(b"<edXML:Timestamp>2025/03/06 03:30:15</edXML:Timestamp>", data)

    def test_text_is_nfc_and_escaped(self) -> None:
        nfd = unicodedata.normalize("NFD", "Ủy ban <nhân> dân & tỉnh")
        data = write(attrs.evolve(_status(), description=nfd))
        self.assertIn("Ủy ban &lt;nhân&gt; dân &amp; tỉnh".encode(), data)
        self.assertNotIn(nfd.encode(), data)

    def test_extensions_written_at_the_end(self) -> None:
        envelope = sample_envelope()
        extension = Extension(tag="{urn:x}Note", xml=b'<x:Note xmlns:x="urn:x">n</x:Note>')
        mine = Extension(
            tag=f"{{{NS}}}ApplicationType",
            xml=f'<edXML:ApplicationType xmlns:edXML="{NS}">MCDT_DT'
            f"</edXML:ApplicationType>".encode(),
        )
        envelope = attrs.evolve(
            envelope,
            header=attrs.evolve(
                envelope.header,
                extensions=(mine,),
                other_info=attrs.evolve(envelope.header.other_info, extensions=(extension,)),
            ),
        )
        data = write(envelope)
        self.assertIn(
            b"</edXML:DocumentId><edXML:ApplicationType>MCDT_DT</edXML:ApplicationType>"
            b"</edXML:MessageHeader>",
            data,
        )
        self.assertIn(b'<x:Note xmlns:x="urn:x">n</x:Note></edXML:OtherInfo>', data)

    def test_no_attachments(self) -> None:
        envelope = attrs.evolve(sample_envelope(), attachments=(), manifest=())
        data = write(envelope)
        self.assertNotIn(b"AttachmentEncoded", data)
        self.assertIn(b'<edXML:edXMLManifest version="1.0"/>', data)
        self.assertEqual(read(data).document, envelope)


class StreamingTests(SynchronousTestCase):
    def test_write_to_streams_base64_in_chunks(self) -> None:
        content = bytes(range(256)) * 8192  # 2 MiB
        envelope = attrs.evolve(
            sample_envelope(),
            attachments=(
                Attachment.of(
                    content,
                    content_id="big",
                    attachment_name="big.bin",
                    content_type="application/octet-stream",
                ),
            ),
            manifest=(
                Reference(
                    content_id="big",
                    attachment_name="big.bin",
                    content_type="application/octet-stream",
                ),
            ),
        )

        class Recorder:
            def __init__(self) -> None:
                self.pieces: list[bytes] = []

            def write(self, data: bytes) -> None:
                self.pieces.append(bytes(data))

        recorder = Recorder()
        write_to(envelope, recorder)
        whole = b"".join(recorder.pieces)
        self.assertEqual(whole, write(envelope))
        self.assertGreater(len(whole), len(content) * 4 // 3)
        # Many writes, none anywhere near the size of the base64 text.
        self.assertGreater(len(recorder.pieces), 8)
        self.assertLess(max(len(p) for p in recorder.pieces), 512 * 1024)
        result = read(whole)
        self.assertEqual(result.document, envelope)

    def test_refusal_writes_nothing(self) -> None:
        sink = io.BytesIO()
        envelope = sample_envelope()
        bad = attrs.evolve(
            envelope,
            attachments=(
                attrs.evolve(envelope.attachments[0], content=None),
                envelope.attachments[1],
            ),
        )
        with self.assertRaises(InvalidModel):
            write_to(bad, sink)
        self.assertEqual(sink.getvalue(), b"")


class RefusalTests(SynchronousTestCase):
    def assertRefused(self, doc: Any, field: str) -> None:
        with self.assertRaises(InvalidModel) as caught:
            write(doc)
        self.assertIn(field, str(caught.exception))

    def test_envelope_refusals(self) -> None:
        e = sample_envelope()
        h = e.header
        cases: list[tuple[Any, str]] = [
            (
                attrs.evolve(
                    e,
                    header=attrs.evolve(
                        h,
                        promulgation_info=attrs.evolve(h.promulgation_info, promulgation_date=None),
                    ),
                ),
                "promulgation_date",
            ),
            (attrs.evolve(e, header=attrs.evolve(h, to=())), "header.to"),
            (attrs.evolve(e, header=attrs.evolve(h, document_id="")), "header.document_id"),
            (
                attrs.evolve(e, header=attrs.evolve(h, from_=attrs.evolve(h.from_, organ_id=" "))),
                "header.from_.organ_id",
            ),
            (attrs.evolve(e, header=attrs.evolve(h, subject="nul \x00 byte")), "header.subject"),
            (
                attrs.evolve(
                    e, header=attrs.evolve(h, to=(attrs.evolve(h.to[0], organ_id="x" * 36),))
                ),
                "header.to[0].organ_id",
            ),
            (
                attrs.evolve(
                    e, trace=attrs.evolve(e.trace, traces=(TraceHeader(organ_id="000 00"),))
                ),
                "trace.traces[0].organ_id",
            ),
            (
                attrs.evolve(
                    e, header=attrs.evolve(h, other_info=attrs.evolve(h.other_info, page_amount=-1))
                ),
                "page_amount",
            ),
            (
                attrs.evolve(
                    e, header=attrs.evolve(h, other_info=attrs.evolve(h.other_info, priority=9))
                ),
                "priority",
            ),
            (
                attrs.evolve(
                    e,
                    trace=attrs.evolve(e.trace, traces=(TraceHeader(organ_id="000.00.00.H23"),)),
                ),
                "trace.traces[0].timestamp",
            ),
            (
                attrs.evolve(
                    e,
                    trace=attrs.evolve(
                        e.trace,
                        traces=(
                            TraceHeader(
                                organ_id="000.00.00.H23", timestamp=dt.datetime(2025, 1, 1)
                            ),
                        ),
                    ),
                ),
                "trace.traces[0].timestamp",
            ),
            (
                attrs.evolve(e, attachments=(attrs.evolve(e.attachments[0], content=None),)),
                "attachments[0].content",
            ),
            (attrs.evolve(e, manifest=e.manifest[:1]), "manifest"),
            (
                attrs.evolve(
                    e, attachments=(e.attachments[0], e.attachments[0]), manifest=e.manifest[:1]
                ),
                "attachments[1].content_id",
            ),
            (
                attrs.evolve(
                    e,
                    manifest=(attrs.evolve(e.manifest[0], content_id="cid:x"), e.manifest[1]),
                ),
                "manifest[0].content_id",
            ),
            (
                attrs.evolve(
                    e,
                    trace=attrs.evolve(
                        e.trace,
                        business=attrs.evolve(
                            e.trace.business,
                            doc_type=BusinessDocType.REPLACE,
                            replacements=(ReplacementInfo(document_id="x"),),
                        ),
                    ),
                ),
                "replacements[0].organ_ids",
            ),
        ]
        for doc, field in cases:
            self.assertRefused(doc, field)

    def test_status_refusals(self) -> None:
        s = _status()
        self.assertRefused(attrs.evolve(s, status_code=None), "status_code")
        self.assertRefused(attrs.evolve(s, status_code="03"), "status_code")
        self.assertRefused(attrs.evolve(s, timestamp=None), "timestamp")
        self.assertRefused(
            attrs.evolve(s, response_for=attrs.evolve(s.response_for, document_id="")),
            "response_for.document_id",
        )

    def test_not_a_document(self) -> None:
        self.assertRefused(object(), "cannot write")


class SampleTests(SynchronousTestCase):
    def test_committed_sample_is_what_make_sample_writes(self) -> None:
        self.assertEqual(SAMPLE.read_bytes(), write(sample_envelope()))
        self.assertEqual(SAMPLE_LOCAL.read_bytes(), write(sample_local()))
        self.assertEqual(SAMPLE, Path(__file__).parent / "fixtures" / "sample_envelope.edxml")

    def test_sample_is_clean(self) -> None:
        result = read(SAMPLE.read_bytes())
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])
        envelope = result.document
        assert isinstance(envelope, Envelope)
        self.assertEqual(envelope.header.from_.organ_id, "000.00.00.H23")
        self.assertEqual(
            [t.organ_id for t in envelope.header.to], ["000.00.00.G22", "000.00.00.G09"]
        )

    def test_hand_made_pdf_has_a_correct_xref(self) -> None:
        pdf = minimal_pdf(["Hello (world)"])
        self.assertTrue(pdf.startswith(b"%PDF-1.4\n"))
        self.assertTrue(pdf.endswith(b"%%EOF\n"))
        startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
        self.assertTrue(pdf[startxref:].startswith(b"xref\n0 7\n"))
        entries = pdf[startxref:].split(b"\n")[3:9]
        for number, entry in enumerate(entries, 1):
            offset = int(entry[:10])
            self.assertTrue(pdf[offset:].startswith(b"%d 0 obj\n" % number), number)
        length = int(re.search(rb"/Length (\d+)", pdf).group(1))  # type: ignore[union-attr]
        stream = pdf.split(b"stream\n", 1)[1].split(b"\nendstream", 1)[0]
        self.assertEqual(len(stream), length)
        self.assertIn(b"(Hello \\(world\\)) '", stream)

    def test_every_status_code_writes(self) -> None:
        for code in StatusCode:
            packet = attrs.evolve(_status(), status_code=code)
            self.assertIn(f"<edXML:StatusCode>{code.value}<".encode(), write(packet))
        self.assertIsNotNone(status_packets)
