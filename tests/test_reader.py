"""The tolerant reader: real-world files, every tolerated deviation, and what it refuses."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import unicodedata
from pathlib import Path

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from make_sample import sample_envelope
from strategies import envelopes, status_packets

from twisted.trial.unittest import SynchronousTestCase

from edxml import reader
from edxml.codes import NS, BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType
from edxml.errors import HostileXML, MalformedXML, NotEdxml, TooLarge
from edxml.findings import Finding, Severity, registry
from edxml.model import VN_TZ, Envelope, Extension, ReplacementInfo, StatusPacket
from edxml.reader import ReadResult, read
from edxml.writer import write
from edxml.xmlsafe import Limits

REALWORLD = Path(__file__).parent / "fixtures" / "realworld"
HEADER = "/edXMLEnvelope/edXMLHeader/MessageHeader"
BUSINESS = "/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness"


def _codes(result: ReadResult) -> list[tuple[str, str | None]]:
    return [(f.code, f.path) for f in result.findings]


def _find(result: ReadResult, code: str) -> list[Finding]:
    return [f for f in result.findings if f.code == code]


def _envelope(result: ReadResult) -> Envelope:
    assert isinstance(result.document, Envelope)
    return result.document


def _status(result: ReadResult) -> StatusPacket:
    assert isinstance(result.document, StatusPacket)
    return result.document


def _sample_bytes() -> bytes:
    return write(sample_envelope())


def _edit(data: bytes, old: str, new: str, count: int = 1) -> bytes:
    text = data.decode("utf-8")
    assert text.count(old) >= count, old
    return text.replace(old, new, count).encode("utf-8")


class RealWorldTests(SynchronousTestCase):
    """The three files a provincial hub ships as samples, read with their defects reported."""

    def _read(self, name: str) -> ReadResult:
        return read((REALWORLD / name).read_bytes())

    def test_fixtures_are_byte_for_byte_copies(self) -> None:
        """The files as the hub published them: a "fix" here would hide a defect."""
        digests = {
            "edoc_new.edxml": "e023debc6d06d0dea09629b9cd9e12d755c589d78d13f48503de4743a5f01844",
            "edoc_update.edxml": "4a6edc04c07a65d3b7d416cc55f9f2920cd8e52aa298df3499abf7a685738992",
            "status_processing_05.edxml": (
                "d9f356427bf19c4cfc633bed01359c7281ddc37f29666477b5481519c0a51fd7"
            ),
        }
        for name, digest in digests.items():
            self.assertEqual(hashlib.sha256((REALWORLD / name).read_bytes()).hexdigest(), digest)

    def test_edoc_new_fields(self) -> None:
        result = self._read("edoc_new.edxml")
        doc = _envelope(result)
        h = doc.header
        self.assertEqual(result.namespace, NS)
        self.assertEqual(result.signature_block, "xmldsig")
        self.assertEqual(h.from_.organ_id, "000.00.11.H53")
        self.assertEqual(h.from_.organ_name, "Sở Tính")
        self.assertEqual([t.organ_id for t in h.to], ["000.00.01.A53"])
        self.assertEqual(h.document_id, "000.00.11.H53,2020/10/30,2491/STC-BCTC")
        self.assertEqual((h.code.code_number, h.code.code_notation), ("2491", "STC-BCTC"))
        self.assertEqual(h.promulgation_info.promulgation_date, dt.date(2020, 10, 30))
        self.assertEqual(h.document_type.type, 1)
        self.assertEqual(h.document_type.type_detail, 0)
        self.assertEqual(h.document_type.type_name, "Công văn")
        self.assertIsNone(h.due_date)  # <DueDate></DueDate>
        self.assertEqual(h.other_info.priority, Priority.NORMAL)
        self.assertEqual(h.other_info.promulgation_amount, 2)
        self.assertEqual(h.other_info.page_amount, 22)
        self.assertIs(h.other_info.direction, False)
        self.assertEqual(h.steering_type, SteeringType.STEERING)
        self.assertEqual(
            h.to_places, ("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP")
        )
        self.assertEqual(h.signer_info.full_name, "")
        business = doc.trace.business
        self.assertEqual(business.doc_type, BusinessDocType.NEW)
        self.assertEqual(business.reason, "Văn bản điện tử mới")
        # The impossible date inside Bussiness/DocumentId is the rules' business: kept verbatim.
        self.assertEqual(business.document_id, "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT")
        self.assertIsNotNone(business.staff_info)
        self.assertEqual(doc.trace.traces[0].organ_id, "000.00.00.G22")
        self.assertEqual(doc.trace.traces[0].timestamp, dt.datetime(2018, 9, 28, tzinfo=VN_TZ))
        self.assertEqual(len(doc.manifest), 1)
        self.assertEqual(doc.manifest[0].content_id, "209")
        (attachment,) = doc.attachments
        self.assertEqual(attachment.content_id, "209")
        self.assertEqual(attachment.attachment_name, "1896_QD-TTg_m_294779.doc")
        self.assertEqual(attachment.content_type, "application/zip")
        self.assertEqual(attachment.size, 270823)
        assert attachment.content is not None
        self.assertEqual(attachment.content[:4], b"PK\x03\x04")
        self.assertEqual(hashlib.sha256(attachment.content).hexdigest(), attachment.sha256)
        self.assertEqual(result.decoded[0].sha256, attachment.sha256)

    def test_edoc_new_findings(self) -> None:
        result = self._read("edoc_new.edxml")
        self.assertEqual(
            _codes(result),
            [
                ("DateFormatNonStandard", f"{HEADER}/PromulgationInfo/PromulgationDate"),
                (
                    "TimestampWithoutZone",
                    "/edXMLEnvelope/edXMLHeader/TraceHeaderList/TraceHeader[1]/Timestamp",
                ),
                (
                    "AttachmentElementPrefixed",
                    "/AttachmentEncoded/Attachment/ContentTransferEncoded",
                ),
                ("ContentIdPrefixed", "/AttachmentEncoded/Attachment/ContentId"),
            ],
        )
        (non_standard,) = _find(result, "DateFormatNonStandard")
        self.assertEqual(non_standard.severity, Severity.INFO)
        self.assertEqual(non_standard.params["value"], "30/10/2020")
        self.assertEqual(non_standard.params["form"], "dd/MM/yyyy")
        self.assertFalse(any(f.is_error for f in result.findings))

    def test_edoc_update_fields_and_findings(self) -> None:
        result = self._read("edoc_update.edxml")
        doc = _envelope(result)
        self.assertEqual(result.signature_block, "xmldsig")
        self.assertEqual(doc.header.from_.organ_id, "000.00.00.G22")
        self.assertEqual(
            [t.organ_id for t in doc.header.to],
            ["000.00.00.H53", "000.00.12.H53", "000.00.00.G17"],
        )
        self.assertEqual(doc.header.document_id, "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT")
        self.assertEqual(doc.header.promulgation_info.promulgation_date, dt.date(2018, 9, 28))
        self.assertEqual(doc.header.due_date, dt.date(2018, 9, 28))
        self.assertEqual(
            doc.header.other_info.appendixes,
            ("Công văn về việc kết nối, liên thông phần mềm quản lý văn bản",),
        )
        business = doc.trace.business
        self.assertEqual(business.doc_type, BusinessDocType.UPDATE)
        assert business.document_info is not None
        self.assertTrue(business.document_info.document_info)
        self.assertTrue(business.document_info.document_receiver)
        self.assertEqual(
            [(r.organ_id, r.receiver_type) for r in business.document_info.receivers],
            [("000.00.00.H41", ReceiverType.REMOVED), ("000.00.00.H14", ReceiverType.ADDED)],
        )
        self.assertEqual(doc.attachments[0].size, 270823)
        self.assertEqual(
            sorted({code for code, _ in _codes(result)}),
            [
                "AttachmentElementPrefixed",
                "ContentIdPrefixed",
                "TimestampWithoutZone",
            ],
        )

    def test_status_processing_05(self) -> None:
        result = self._read("status_processing_05.edxml")
        status = _status(result)
        self.assertEqual(result.kind, "status")
        self.assertEqual(result.signature_block, "absent")
        self.assertEqual(result.decoded, ())
        self.assertEqual(status.status_code, StatusCode.PROCESSING)
        self.assertEqual(status.from_.organ_id, "000.00.00.H41")
        self.assertEqual(status.from_.organ_name, "UBND Tỉnh Nghệ An")
        self.assertEqual(status.response_for.organ_id, "000.00.00.G22")
        self.assertEqual(status.response_for.code, "7816/VPCP-TTĐT")
        self.assertEqual(status.response_for.promulgation_date, dt.date(2015, 9, 30))
        self.assertEqual(status.document_id, "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT")
        self.assertEqual(status.description, "Đang xử lý văn bản đến")
        self.assertEqual(status.timestamp, dt.datetime(2015, 9, 20, 11, 8, 36, tzinfo=VN_TZ))
        assert status.staff_info is not None
        self.assertEqual(status.staff_info.department, "Phong hanh chinh")
        self.assertEqual(status.staff_info.email, "ngoctram@nghean.vn")
        self.assertEqual(_codes(result), [("TimestampWithoutZone", f"{HEADER}/Timestamp")])

    def test_fixture_read_from_chunks_with_sinks(self) -> None:
        data = (REALWORLD / "edoc_new.edxml").read_bytes()
        sinks: dict[int, io.BytesIO] = {}

        def sink(index: int) -> io.BytesIO:
            return sinks.setdefault(index, io.BytesIO())

        chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
        streamed = read(iter(chunks), sink_factory=sink)
        whole = read(data)
        self.assertEqual(streamed.document, whole.document)
        self.assertIsNone(_envelope(streamed).attachments[0].content)
        self.assertEqual(sinks[0].getvalue(), _envelope(whole).attachments[0].content)
        self.assertEqual(streamed.findings, whole.findings)


class ToleranceTests(SynchronousTestCase):
    """Each deviation real senders make reads to the same model, with the right finding."""

    def test_writer_output_reads_clean(self) -> None:
        result = read(_sample_bytes())
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual(result.signature_block, "empty")
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])

    def test_prefix_agnostic(self) -> None:
        data = _sample_bytes()
        other_prefix = data.replace(b"edXML:", b"ns7:").replace(b"xmlns:edXML=", b"xmlns:ns7=")
        default_ns = data.replace(b"edXML:", b"").replace(b"xmlns:edXML=", b"xmlns=")
        for variant in (other_prefix, default_ns):
            self.assertNotEqual(variant, data)
            result = read(variant)
            self.assertEqual(result.document, sample_envelope())
            self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])

    def test_prefixed_root(self) -> None:
        data = (
            _sample_bytes()
            .replace(
                b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">',
                b'<edXML:edXML xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016" '
                b'xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">',
            )
            .replace(b"</edXML>", b"</edXML:edXML>")
        )
        self.assertEqual(read(data).document, sample_envelope())

    def test_attachments_in_no_namespace(self) -> None:
        data = _edit(_sample_bytes(), "<AttachmentEncoded>", '<AttachmentEncoded xmlns="">')
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual(_codes(result)[-1], ("AttachmentElementNoNamespace", "/AttachmentEncoded"))
        self.assertEqual(len(_find(result, "AttachmentElementNoNamespace")), 1)

    def test_one_attachment_encoded_per_file(self) -> None:
        data = _edit(
            _sample_bytes(),
            "</Attachment><Attachment>",
            "</Attachment></AttachmentEncoded><AttachmentEncoded><Attachment>",
        )
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual(len(result.decoded), 2)

    def test_cid_prefix_optional_on_both_sides(self) -> None:
        data = _sample_bytes()
        pdf_id = sample_envelope().attachments[0].content_id
        bare = _edit(data, f"<edXML:ContentId>cid:{pdf_id}", f"<edXML:ContentId>{pdf_id}")
        both = _edit(data, f"<ContentId>{pdf_id}", f"<ContentId>cid:{pdf_id}")
        result = read(bare)
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual(len(_find(result, "ContentIdUnprefixed")), 1)
        result = read(both)
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual(len(_find(result, "ContentIdPrefixed")), 1)

    def test_href_that_disagrees_with_content_id(self) -> None:
        pdf_id = sample_envelope().attachments[0].content_id
        data = _edit(_sample_bytes(), f'xlink:href="cid:{pdf_id}"', 'xlink:href="cid:other"')
        (finding,) = _find(read(data), "ReferenceHrefMismatch")
        self.assertEqual(finding.severity, Severity.WARNING)

    def test_business_spelling(self) -> None:
        data = _sample_bytes().replace(b"Bussiness", b"Business")
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        spelled = _find(result, "SpellingVariant")
        self.assertEqual(
            sorted(f.params["actual"] for f in spelled),
            ["Business", "BusinessDocReason", "BusinessDocType"],
        )
        self.assertTrue(all(f.severity is Severity.INFO for f in spelled))

    def test_order_independent(self) -> None:
        """Children in reverse order of their names (same-name siblings keep their order)."""
        root = etree.fromstring(_sample_bytes())
        for element in root.iter():
            children = list(element)
            if len(children) < 2:
                continue
            first_seen: dict[str, int] = {}
            for index, child in enumerate(children):
                first_seen.setdefault(str(child.tag), index)
            children.sort(key=lambda c: -first_seen[str(c.tag)])
            element[:] = children
        data = etree.tostring(root, xml_declaration=True, encoding="utf-8")
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])

    def test_whitespace_around_text_is_stripped(self) -> None:
        data = _edit(
            _sample_bytes(),
            "<edXML:OrganId>000.00.00.G22</edXML:OrganId>",
            "<edXML:OrganId>\n   000.00.00.G22 \t</edXML:OrganId>",
        )
        data = _edit(data, "<edXML:Priority>1<", "<edXML:Priority> 1 <")
        self.assertEqual(read(data).document, sample_envelope())

    def test_comments_and_processing_instructions_are_transparent(self) -> None:
        data = _edit(
            _sample_bytes(),
            "<edXML:CodeNumber>123</edXML:CodeNumber>",
            "<!-- số --><edXML:CodeNumber>1<!-- x -->2<?pi y?>3</edXML:CodeNumber><?app z?>",
        )
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])

    def test_text_not_nfc(self) -> None:
        nfd = unicodedata.normalize("NFD", "Bộ Nội vụ")
        data = _edit(_sample_bytes(), "<edXML:OrganName>Bộ Nội vụ<", f"<edXML:OrganName>{nfd}<")
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        self.assertIn(("TextNotNfc", f"{HEADER}/To[2]/OrganName"), _codes(result))

    def test_date_forms(self) -> None:
        cases = {
            "2025/03/05": [],
            "05/03/2025": ["DateFormatNonStandard"],
            "2025-03-05": ["DateFormatNonStandard"],
            "2025/3/5": ["DateFormatNonStandard"],
            "2025-03-05T00:00:00+07:00": ["DateFormatNonStandard"],
        }
        for text, expected in cases.items():
            data = _edit(
                _sample_bytes(),
                "<edXML:PromulgationDate>2025/03/05<",
                f"<edXML:PromulgationDate>{text}<",
            )
            result = read(data)
            doc = _envelope(result)
            self.assertEqual(doc.header.promulgation_info.promulgation_date, dt.date(2025, 3, 5))
            got = [f.code for f in result.findings if f.code != "TimestampWithoutZone"]
            self.assertEqual(got, expected, text)

    def test_impossible_promulgation_date_is_an_error(self) -> None:
        data = _edit(
            _sample_bytes(),
            "<edXML:PromulgationDate>2025/03/05<",
            "<edXML:PromulgationDate>2014/02/30<",
        )
        result = read(data)
        self.assertIsNone(_envelope(result).header.promulgation_info.promulgation_date)
        (finding,) = _find(result, "DateInvalid")
        self.assertEqual(finding.severity, Severity.ERROR)
        self.assertEqual(finding.path, f"{HEADER}/PromulgationInfo/PromulgationDate")
        self.assertEqual(finding.params["value"], "2014/02/30")

    def test_invalid_due_date_is_a_warning_and_empty_is_nothing(self) -> None:
        result = read(_edit(_sample_bytes(), "<edXML:DueDate>2025/03/12<", "<edXML:DueDate>mai<"))
        self.assertIsNone(_envelope(result).header.due_date)
        (finding,) = _find(result, "DateInvalid")
        self.assertEqual(finding.severity, Severity.WARNING)
        self.assertIsNone(finding.fault)
        result = read(_edit(_sample_bytes(), "<edXML:DueDate>2025/03/12<", "<edXML:DueDate><"))
        self.assertIsNone(_envelope(result).header.due_date)
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])

    def test_empty_promulgation_date_is_missing(self) -> None:
        data = _edit(
            _sample_bytes(), "<edXML:PromulgationDate>2025/03/05<", "<edXML:PromulgationDate><"
        )
        result = read(data)
        self.assertIn(
            ("MissingElement", f"{HEADER}/PromulgationInfo/PromulgationDate"), _codes(result)
        )

    def test_timestamp_with_offset(self) -> None:
        data = _edit(
            _sample_bytes(),
            "<edXML:Timestamp>2025/03/05 15:02:11<",
            "<edXML:Timestamp>2025-03-05T08:02:11Z<",
        )
        result = read(data)
        self.assertEqual(result.document, sample_envelope())  # the same instant
        self.assertEqual([f.code for f in result.findings], ["DateFormatNonStandard"])

    def test_numbers_read_tolerantly(self) -> None:
        data = _edit(_sample_bytes(), "<edXML:Priority>1<", "<edXML:Priority>01<")
        data = _edit(data, "<edXML:PageAmount>1<", "<edXML:PageAmount>+1<")
        data = _edit(data, "<edXML:Paper>0<", "<edXML:Paper>false<")
        self.assertEqual(read(data).document, sample_envelope())

    def test_unknown_codes_are_errors_with_the_raw_value(self) -> None:
        for old, new, element in [
            ("<edXML:Priority>1<", "<edXML:Priority>7<", "Priority"),
            ("<edXML:SteeringType>0<", "<edXML:SteeringType>x<", "SteeringType"),
            ("<edXML:BussinessDocType>0<", "<edXML:BussinessDocType>9<", "BussinessDocType"),
            ("<edXML:Paper>0<", "<edXML:Paper>maybe<", "Paper"),
        ]:
            result = read(_edit(_sample_bytes(), old, new))
            (finding,) = _find(result, "CodeUnknown")
            self.assertEqual(finding.severity, Severity.ERROR)
            self.assertEqual(finding.params["element"], element)
            self.assertEqual(finding.params["value"], new.split(">")[1].rstrip("<"))
            self.assertIn(new.split(">")[1].rstrip("<"), finding.message_en)

    def test_bad_amount_is_a_warning(self) -> None:
        result = read(_edit(_sample_bytes(), "<edXML:PageAmount>1<", "<edXML:PageAmount>một<"))
        self.assertIsNone(_envelope(result).header.other_info.page_amount)
        (finding,) = _find(result, "NumberInvalid")
        self.assertEqual(finding.severity, Severity.WARNING)

    def test_unknown_elements_are_kept_as_extensions(self) -> None:
        data = _edit(
            _sample_bytes(),
            "</edXML:DocumentId></edXML:MessageHeader>",
            "</edXML:DocumentId><edXML:ApplicationType>MCDT_DT</edXML:ApplicationType>"
            "</edXML:MessageHeader>",
        )
        data = _edit(
            data,
            "</edXML:OtherInfo>",
            '<edXML:ReplyFors/><x:Note xmlns:x="urn:x" a="1">ghi chú</x:Note></edXML:OtherInfo>',
        )
        data = _edit(data, "</edXML:Bussiness>", "<edXML:Extra>1</edXML:Extra></edXML:Bussiness>")
        result = read(data)
        doc = _envelope(result)
        self.assertEqual(
            doc.header.extensions,
            (
                Extension(
                    tag=f"{{{NS}}}ApplicationType",
                    xml=f'<edXML:ApplicationType xmlns:edXML="{NS}">MCDT_DT'
                    f"</edXML:ApplicationType>".encode(),
                ),
            ),
        )
        self.assertEqual(
            [e.tag for e in doc.header.other_info.extensions], [f"{{{NS}}}ReplyFors", "{urn:x}Note"]
        )
        self.assertEqual(
            doc.header.other_info.extensions[1].xml,
            '<x:Note xmlns:x="urn:x" a="1">ghi chú</x:Note>'.encode(),
        )
        self.assertEqual([e.tag for e in doc.trace.business.extensions], [f"{{{NS}}}Extra"])
        unknown = _find(result, "UnknownElement")
        self.assertEqual(len(unknown), 4)
        self.assertTrue(all(f.severity is Severity.INFO for f in unknown))
        self.assertEqual(unknown[0].path, f"{HEADER}/OtherInfo/ReplyFors")
        # Everything else read as before.
        self.assertEqual(
            attrs.evolve(
                doc,
                header=attrs.evolve(
                    doc.header,
                    extensions=(),
                    other_info=attrs.evolve(doc.header.other_info, extensions=()),
                ),
                trace=attrs.evolve(
                    doc.trace, business=attrs.evolve(doc.trace.business, extensions=())
                ),
            ),
            sample_envelope(),
        )

    def test_unknown_elements_elsewhere_are_ignored(self) -> None:
        data = _edit(
            _sample_bytes(),
            "</edXML:From>",
            "<edXML:OrganIdParent>x</edXML:OrganIdParent></edXML:From>",
        )
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        (finding,) = _find(result, "UnknownElementIgnored")
        self.assertEqual(finding.path, f"{HEADER}/From/OrganIdParent")

    def test_duplicate_single_element(self) -> None:
        data = _edit(
            _sample_bytes(), "<edXML:Content>", "<edXML:Subject>Khác</edXML:Subject><edXML:Content>"
        )
        result = read(data)
        self.assertEqual(result.document, sample_envelope())
        (finding,) = _find(result, "DuplicateElement")
        self.assertEqual(finding.severity, Severity.WARNING)


class SignatureBlockTests(SynchronousTestCase):
    def test_kinds(self) -> None:
        data = _sample_bytes()
        self.assertEqual(read(data).signature_block, "empty")
        absent = _edit(data, "<edXML:DigitalSignature/>", "")
        self.assertEqual(read(absent).signature_block, "absent")
        dsig = _edit(
            data,
            "<edXML:DigitalSignature/>",
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/>'
            "</ds:Signature>",
        )
        result = read(dsig)
        self.assertEqual(result.signature_block, "xmldsig")
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])
        nested = _edit(
            data,
            "<edXML:DigitalSignature/>",
            '<edXML:DigitalSignature><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>'
            "</edXML:DigitalSignature>",
        )
        self.assertEqual(read(nested).signature_block, "xmldsig")
        no_namespace = _edit(data, "<edXML:DigitalSignature/>", '<Signature xmlns=""/>')
        self.assertEqual(read(no_namespace).signature_block, "xmldsig")


class AttachmentTests(SynchronousTestCase):
    def test_decoded_aligned_with_attachments(self) -> None:
        result = read(_sample_bytes())
        doc = _envelope(result)
        self.assertEqual(len(result.decoded), len(doc.attachments))
        for attachment, decoded, original in zip(
            doc.attachments, result.decoded, sample_envelope().attachments, strict=True
        ):
            self.assertEqual(attachment.content, original.content)
            self.assertEqual(decoded.content, original.content)
            self.assertEqual(decoded.sha256, original.sha256)
            self.assertIsNone(decoded.error)
        self.assertEqual(result.decoded[0].head[:5], b"%PDF-")

    def test_invalid_base64(self) -> None:
        data = re.sub(
            rb"<ContentTransferEncoded>JVBER", b"<ContentTransferEncoded>J!BER", _sample_bytes()
        )
        result = read(data)
        (finding,) = _find(result, "AttachmentEncodingInvalid")
        self.assertEqual(finding.severity, Severity.ERROR)
        self.assertEqual(finding.path, "/AttachmentEncoded/Attachment[1]/ContentTransferEncoded")
        self.assertIsNotNone(result.decoded[0].error)

    def test_missing_content(self) -> None:
        data = re.sub(
            rb"<ContentTransferEncoded>JVBER[^<]*</ContentTransferEncoded>", b"", _sample_bytes()
        )
        result = read(data)
        self.assertIn(
            ("MissingElement", "/AttachmentEncoded/Attachment[1]/ContentTransferEncoded"),
            _codes(result),
        )
        self.assertEqual(len(result.decoded), 2)
        self.assertEqual(result.decoded[0].size, 0)
        self.assertIsNotNone(result.decoded[0].error)

    def test_manifest_mismatch(self) -> None:
        txt_id = sample_envelope().attachments[1].content_id
        data = _edit(_sample_bytes(), f"<ContentId>{txt_id}<", "<ContentId>stray<")
        result = read(data)
        (missing,) = _find(result, "AttachmentMissing")
        self.assertEqual(missing.severity, Severity.ERROR)
        self.assertEqual(missing.params["content_id"], txt_id)
        (unlisted,) = _find(result, "AttachmentNotInManifest")
        self.assertEqual(unlisted.severity, Severity.WARNING)
        self.assertEqual(unlisted.params["content_id"], "stray")

    def test_duplicate_content_id(self) -> None:
        pdf_id, txt_id = (a.content_id for a in sample_envelope().attachments)
        data = _sample_bytes().replace(txt_id.encode(), pdf_id.encode())
        codes = [f.code for f in read(data).findings]
        self.assertEqual(codes.count("ContentIdDuplicate"), 2)


class MissingPartsTests(SynchronousTestCase):
    def test_missing_from_gives_a_best_effort_model(self) -> None:
        data = re.sub(rb"<edXML:From>.*?</edXML:From>", b"", _sample_bytes())
        result = read(data)
        self.assertIn(("MissingElement", f"{HEADER}/From"), _codes(result))
        self.assertEqual(_envelope(result).header.from_.organ_id, "")
        self.assertEqual(_envelope(result).header.subject, sample_envelope().header.subject)

    def test_missing_mandatory_parts(self) -> None:
        cases = {
            rb"<edXML:To>.*?</edXML:To>": f"{HEADER}/To",
            rb"<edXML:DocumentId>000.00.00.H23[^<]*</edXML:DocumentId>": f"{HEADER}/DocumentId",
            rb"<edXML:Code>.*?</edXML:Code>": f"{HEADER}/Code",
            rb"<edXML:BussinessDocType>0</edXML:BussinessDocType>": f"{BUSINESS}/BussinessDocType",
            rb"<edXML:TraceHeaderList .*?</edXML:TraceHeaderList>": (
                "/edXMLEnvelope/edXMLHeader/TraceHeaderList"
            ),
        }
        for pattern, path in cases.items():
            data = re.sub(pattern, b"", _sample_bytes())
            result = read(data)
            missing = [f for f in result.findings if f.code == "MissingElement"]
            self.assertIn(path, [f.path for f in missing], pattern)
            self.assertTrue(all(f.is_error for f in missing))

    def test_replacement_without_recipients(self) -> None:
        envelope = sample_envelope()
        replace = attrs.evolve(
            envelope,
            trace=attrs.evolve(
                envelope.trace,
                business=attrs.evolve(
                    envelope.trace.business,
                    doc_type=BusinessDocType.REPLACE,
                    document_id="000.00.00.H23,2025/03/01,100/UBND-VP",
                    replacements=(
                        ReplacementInfo(
                            document_id="000.00.00.H23,2025/03/01,100/UBND-VP",
                            organ_ids=("000.00.00.G22",),
                        ),
                    ),
                ),
            ),
        )
        data = re.sub(rb"<edXML:OrganIdList>.*?</edXML:OrganIdList>", b"", write(replace))
        result = read(data)
        self.assertEqual(
            [(f.code, f.path) for f in result.findings if f.is_error],
            [
                (
                    "MissingElement",
                    f"{BUSINESS}/ReplacementInfoList/ReplacementInfo[1]/OrganIdList/OrganId",
                )
            ],
        )

    def test_no_message_header(self) -> None:
        data = re.sub(rb"<edXML:MessageHeader>.*?</edXML:MessageHeader>", b"", _sample_bytes())
        with self.assertRaises(NotEdxml) as caught:
            read(data)
        self.assertIn("MessageHeader", str(caught.exception))

    def test_status_without_code(self) -> None:
        data = (REALWORLD / "status_processing_05.edxml").read_bytes()
        data = data.replace(b"<edXML:StatusCode>05</edXML:StatusCode>", b"")
        result = read(data)
        self.assertEqual(result.kind, "status")
        self.assertIn(("MissingElement", f"{HEADER}/StatusCode"), _codes(result))


class StatusTests(SynchronousTestCase):
    def _status_bytes(self, code: str = "05", stamp: str = "2015/09/20 11:08:36") -> bytes:
        data = (REALWORLD / "status_processing_05.edxml").read_bytes()
        data = data.replace(b"<edXML:StatusCode>05<", f"<edXML:StatusCode>{code}<".encode())
        return data.replace(
            b"<edXML:Timestamp>2015/09/20 11:08:36<", f"<edXML:Timestamp>{stamp}<".encode()
        )

    def test_codes(self) -> None:
        for raw, code in [("5", StatusCode.PROCESSING), (" 01 ", StatusCode.ARRIVED)]:
            result = read(self._status_bytes(raw))
            self.assertEqual(_status(result).status_code, code)
            self.assertFalse(any(f.is_error for f in result.findings))

    def test_14_is_15(self) -> None:
        result = read(self._status_bytes("14"))
        self.assertEqual(_status(result).status_code, StatusCode.RECALL_AGREED)
        (finding,) = _find(result, "StatusCodeSynonym")
        self.assertEqual(finding.severity, Severity.INFO)

    def test_unknown_code(self) -> None:
        result = read(self._status_bytes("09"))
        (finding,) = _find(result, "CodeUnknown")
        self.assertEqual(finding.severity, Severity.ERROR)
        self.assertEqual(finding.params["value"], "09")

    def test_invalid_timestamp_is_an_error(self) -> None:
        result = read(self._status_bytes(stamp="2015/13/40 11:08:36"))
        self.assertIsNone(_status(result).timestamp)
        (finding,) = _find(result, "DateInvalid")
        self.assertEqual(finding.severity, Severity.ERROR)

    def test_old_day_first_timestamp(self) -> None:
        result = read(self._status_bytes(stamp="20/09/2015 11:08:36"))
        self.assertEqual(
            _status(result).timestamp, dt.datetime(2015, 9, 20, 11, 8, 36, tzinfo=VN_TZ)
        )
        self.assertEqual(
            sorted(f.code for f in result.findings),
            ["DateFormatNonStandard", "TimestampWithoutZone"],
        )

    def test_bkav_status_element_and_extension(self) -> None:
        data = self._status_bytes().replace(b"MessageHeader>", b"Status>")
        data = data.replace(b"</edXML:Status>", b"<edXML:Ack>1</edXML:Ack></edXML:Status>")
        result = read(data)
        status = _status(result)
        self.assertEqual(status.status_code, StatusCode.PROCESSING)
        self.assertEqual([e.tag for e in status.extensions], [f"{{{NS}}}Ack"])
        self.assertIn(("UnknownElement", "/edXMLEnvelope/edXMLHeader/Status/Ack"), _codes(result))


class RefusalTests(SynchronousTestCase):
    def test_deprecated_namespace(self) -> None:
        data = _sample_bytes().replace(NS.encode(), b"http://www.go.vn/eDoc")
        with self.assertRaises(NotEdxml) as caught:
            read(data)
        self.assertIn("refuses", str(caught.exception))
        self.assertIn("http://www.go.vn/eDoc", caught.exception.message_vi)

    def test_wrong_roots(self) -> None:
        for data in [
            b"<html/>",
            b"<edXML/>",
            f'<Envelope xmlns="{NS}"/>'.encode(),
            f'<edXML xmlns="{NS}"><x/></edXML>'.encode(),
            f'<edXML xmlns="{NS}"><edXMLEnvelope/></edXML>'.encode(),
        ]:
            with self.assertRaises(NotEdxml):
                read(data)

    def test_parser_errors_propagate(self) -> None:
        with self.assertRaises(HostileXML):
            read(b'<!DOCTYPE x [<!ENTITY a "b">]><edXML/>')
        with self.assertRaises(MalformedXML):
            read(b"<edXML><unclosed></edXML>")
        with self.assertRaises(TooLarge):
            read(_sample_bytes(), limits=Limits(max_bytes=1000))


class FindingCodeTests(SynchronousTestCase):
    def test_every_reader_code_has_both_languages(self) -> None:
        codes = {
            name: code
            for name, code in registry().items()
            if any(getattr(reader, attr) is code for attr in dir(reader))
        }
        self.assertGreaterEqual(len(codes), 20)
        for name, code in codes.items():
            self.assertRegex(name, r"^[A-Z][A-Za-z0-9]+$")
            self.assertNotEqual(code.en, code.vi)
            self.assertTrue(any(ord(c) > 0x7F for c in code.vi), name)
            if code.severity is Severity.ERROR:
                self.assertIsNotNone(code.fault, name)


class PropertyTests(SynchronousTestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(envelopes(), st.randoms(use_true_random=False))
    def test_shuffled_children_read_the_same(self, envelope: Envelope, rnd: object) -> None:
        """Any order of differently named siblings gives the same model."""
        import random

        assert isinstance(rnd, random.Random)
        root = etree.fromstring(write(envelope))
        for element in root.iter():
            children = list(element)
            names = list(dict.fromkeys(str(c.tag) for c in children))
            rnd.shuffle(names)
            rank = {name: i for i, name in enumerate(names)}
            children.sort(key=lambda c: rank[str(c.tag)])
            element[:] = children
        result = read(etree.tostring(root))
        self.assertEqual(result.document, envelope)
        self.assertFalse(any(f.is_error for f in result.findings))

    @settings(max_examples=30, deadline=None)
    @given(status_packets())
    def test_status_packets_read_clean(self, packet: StatusPacket) -> None:
        result = read(write(packet))
        self.assertEqual(result.document, packet)
        self.assertEqual([f.code for f in result.findings], ["TimestampWithoutZone"])
