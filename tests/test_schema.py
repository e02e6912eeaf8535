"""Our XSDs: they compile as XSD 1.0, accept what the writer emits and nothing looser."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import attrs
import xmlschema
from lxml import etree
from make_sample import sample_envelope

from twisted.trial.unittest import SynchronousTestCase

from edxml import schema
from edxml.codes import NS
from edxml.findings import Severity
from edxml.model import Attachment, Reference
from edxml.reader import read
from edxml.writer import write

REPO_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
REALWORLD = Path(__file__).parent / "fixtures" / "realworld"
STATUS = (REALWORLD / "status_processing_05.edxml").read_bytes()


def _sample() -> bytes:
    return write(sample_envelope())


def _edit(data: bytes, old: str, new: str) -> bytes:
    text = data.decode("utf-8")
    assert old in text, old
    return text.replace(old, new, 1).encode("utf-8")


def _status_written() -> bytes:
    result = read(STATUS)
    return write(result.document)


class CompileTests(SynchronousTestCase):
    def test_files_are_where_setup_cfg_installs_them_from(self) -> None:
        for name in ("edxml-common.xsd", "edxml-envelope.xsd", "edxml-status.xsd"):
            self.assertTrue((REPO_SCHEMAS / name).is_file(), name)
        setup = (REPO_SCHEMAS.parent / "setup.cfg").read_text()
        self.assertIn("schemas/edxml-envelope.xsd", setup)

    def test_independent_xsd_10_processor_accepts_them(self) -> None:
        """xmlschema checks XSD 1.0 rules (e.g. Unique Particle Attribution) on its own."""
        for kind in ("envelope", "status"):
            compiled = xmlschema.XMLSchema10(str(REPO_SCHEMAS / f"edxml-{kind}.xsd"))
            self.assertEqual(compiled.target_namespace, NS)
        compiled = xmlschema.XMLSchema10(str(REPO_SCHEMAS / "edxml-envelope.xsd"))
        self.assertTrue(compiled.is_valid(_sample().decode("utf-8")))

    def test_load_is_cached(self) -> None:
        self.assertIs(schema.load("envelope"), schema.load("envelope"))
        self.assertIsNot(schema.load("envelope"), schema.load("status"))

    def test_unknown_kind(self) -> None:
        with self.assertRaises(ValueError):
            schema.load("common")

    def test_one_schema_per_thread(self) -> None:
        seen: list[object] = []
        results: list[tuple[int, int]] = []

        def work() -> None:
            seen.append(schema.load("envelope"))
            for _ in range(20):
                good = schema.validate(_sample(), "envelope")
                bad = schema.validate(_edit(_sample(), ">2025/03/05<", ">2025-03-05<"), "envelope")
                results.append((len(good), len(bad)))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(len({id(s) for s in seen}), 4)
        self.assertEqual(set(results), {(0, 1)})


class LocationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.saved = os.environ.get(schema.ENV_VAR)

    def tearDown(self) -> None:
        if self.saved is None:
            os.environ.pop(schema.ENV_VAR, None)
        else:
            os.environ[schema.ENV_VAR] = self.saved

    def test_default_is_the_repository(self) -> None:
        os.environ.pop(schema.ENV_VAR, None)
        self.assertEqual(schema.schema_dir(), REPO_SCHEMAS)

    def test_environment_override(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for path in REPO_SCHEMAS.glob("edxml-*.xsd"):
                shutil.copy(path, tmp)
            # A copy that no longer knows status code 05 shows the override is used.
            common = Path(tmp) / "edxml-common.xsd"
            common.write_text(common.read_text().replace('<xs:enumeration value="05"/>', ""))
            os.environ[schema.ENV_VAR] = tmp
            self.assertEqual(schema.schema_dir(), Path(tmp))
            findings = schema.validate(_status_written(), "status")
            self.assertEqual(len(findings), 1)
            self.assertIn("StatusCode", findings[0].message_en)

    def test_missing_directory(self) -> None:
        os.environ[schema.ENV_VAR] = "/nonexistent/edxml-schemas"
        with self.assertRaises(schema.SchemaNotFound):
            schema.load("envelope")


class AcceptTests(SynchronousTestCase):
    def test_writer_output_is_valid(self) -> None:
        self.assertEqual(schema.validate(_sample(), "envelope"), ())
        self.assertEqual(schema.validate(_status_written(), "status"), ())

    def test_tree_and_bytes_agree(self) -> None:
        for data, kind in [
            (_sample(), "envelope"),
            ((REALWORLD / "edoc_new.edxml").read_bytes(), "envelope"),
            (STATUS, "status"),
        ]:
            result = read(data)
            self.assertEqual(schema.validate(result.root, kind), schema.validate(data, kind))

    def test_signed_forms_are_accepted(self) -> None:
        dsig = _edit(
            _sample(),
            "<edXML:DigitalSignature/>",
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
            "<ds:Anything/></ds:SignedInfo></ds:Signature>",
        )
        filled = _edit(
            _sample(),
            "<edXML:DigitalSignature/>",
            '<edXML:DigitalSignature a="1">text<x:Foo xmlns:x="urn:x"/></edXML:DigitalSignature>',
        )
        absent = _edit(_sample(), "<edXML:DigitalSignature/>", "")
        for data in (dsig, filled, absent):
            self.assertEqual(schema.validate(data, "envelope"), ())

    def test_extensions_where_the_reader_keeps_them(self) -> None:
        data = _edit(
            _sample(),
            "</edXML:MessageHeader>",
            "<edXML:ApplicationType>MCDT_DT</edXML:ApplicationType>"
            '<y:Z xmlns:y="urn:y"/></edXML:MessageHeader>',
        )
        data = _edit(
            data, "</edXML:OtherInfo>", '<x:Note xmlns:x="urn:x">n</x:Note></edXML:OtherInfo>'
        )
        data = _edit(data, "</edXML:Bussiness>", '<x:Note xmlns:x="urn:x"/></edXML:Bussiness>')
        self.assertEqual(schema.validate(data, "envelope"), ())
        status = _edit(
            _status_written(), "</edXML:MessageHeader>", "<edXML:Ack/></edXML:MessageHeader>"
        )
        self.assertEqual(schema.validate(status, "status"), ())

    def test_big_envelope_validated_from_the_reader_tree(self) -> None:
        """The tree the reader keeps has no base64 text, and validates as it is."""
        content = os.urandom(3 * 1024 * 1024)
        envelope = attrs.evolve(
            sample_envelope(),
            attachments=(
                Attachment.of(content, content_id="a", attachment_name="a.bin", content_type="x/y"),
            ),
            manifest=(Reference(content_id="a", attachment_name="a.bin", content_type="x/y"),),
        )
        result = read(write(envelope), sink_factory=lambda _: _Null())
        assert result.root is not None
        encoded = result.root.find(f"{{{NS}}}AttachmentEncoded/{{{NS}}}Attachment")
        assert encoded is not None
        self.assertIsNone(encoded.find(f"{{{NS}}}ContentTransferEncoded").text)  # type: ignore[union-attr]
        self.assertLess(len(etree.tostring(result.root)), 20_000)
        self.assertEqual(schema.validate(result.root, "envelope"), ())


class _Null:
    def write(self, data: bytes) -> None:
        pass


class StrictnessTests(SynchronousTestCase):
    """Each deviation from what the writer emits is one SchemaInvalid ERROR, with its path."""

    def assertInvalid(self, data: bytes, kind: str, path: str) -> None:
        findings = schema.validate(data, kind)
        self.assertTrue(findings, path)
        self.assertTrue(all(f.code == "SchemaInvalid" for f in findings))
        self.assertTrue(all(f.severity is Severity.ERROR for f in findings))
        self.assertTrue(all(f.fault is not None for f in findings))
        self.assertEqual(findings[0].path, path)

    def test_envelope_deviations(self) -> None:
        header = "/edXMLEnvelope/edXMLHeader/MessageHeader"
        sample = _sample()
        subject = re.search(rb"<edXML:Subject>.*?</edXML:Subject>", sample).group(0)  # type: ignore[union-attr]
        cases: list[tuple[Callable[[bytes], bytes], str]] = [
            (
                lambda d: _edit(d, ">2025/03/05<", ">2025-03-05<"),
                f"{header}/PromulgationInfo/PromulgationDate",
            ),
            (
                lambda d: _edit(d, ">2025/03/05<", ">05/03/2025<"),
                f"{header}/PromulgationInfo/PromulgationDate",
            ),
            (lambda d: _edit(d, ">2025/03/12<", ">2025/13/12<"), f"{header}/DueDate"),
            (
                lambda d: _edit(d, "<edXML:Priority>1<", "<edXML:Priority>5<"),
                f"{header}/OtherInfo/Priority",
            ),
            (
                lambda d: _edit(d, "<edXML:Priority>1<", "<edXML:Priority>01<"),
                f"{header}/OtherInfo/Priority",
            ),
            (
                lambda d: _edit(d, "<edXML:SteeringType>0<", "<edXML:SteeringType>3<"),
                f"{header}/SteeringType",
            ),
            (
                lambda d: _edit(d, "<edXML:BussinessDocType>0<", "<edXML:BussinessDocType>4<"),
                "/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/BussinessDocType",
            ),
            (
                lambda d: d.replace(b"Bussiness", b"Business"),
                "/edXMLEnvelope/edXMLHeader/TraceHeaderList/Business",
            ),
            (
                lambda d: _edit(d, "15:02:11<", "15:02<"),
                "/edXMLEnvelope/edXMLHeader/TraceHeaderList/TraceHeader/Timestamp",
            ),
            (
                lambda d: d.replace(subject, b"").replace(
                    b"<edXML:SignerInfo>", subject + b"<edXML:SignerInfo>"
                ),
                f"{header}/Content",
            ),
            (
                lambda d: re.sub(
                    rb"<edXML:DocumentId>[^<]*</edXML:DocumentId></edXML:Mess", b"</edXML:Mess", d
                ),
                f"{header}",
            ),
            (
                lambda d: _edit(d, "</edXML:OtherInfo>", "<edXML:ReplyFors/></edXML:OtherInfo>"),
                f"{header}/OtherInfo/ReplyFors",
            ),
            (
                lambda d: _edit(d, "<edXML:DigitalSignature/>", "<edXML:Signature/>"),
                "/edXMLEnvelope/edXMLHeader/Signature",
            ),
            (
                lambda d: _edit(d, "<AttachmentEncoded>", '<AttachmentEncoded xmlns="">'),
                "/AttachmentEncoded",
            ),
            (
                lambda d: _edit(
                    d, "<ContentTransferEncoded>JVBER", "<ContentTransferEncoded>J!BER"
                ),
                "/AttachmentEncoded/Attachment[1]/ContentTransferEncoded",
            ),
            (
                lambda d: _edit(d, "<edXML:ContentId>cid:", "<edXML:ContentId>"),
                "/edXMLEnvelope/edXMLBody/edXMLManifest/Reference[1]/ContentId",
            ),
            (
                lambda d: _edit(
                    d, "<edXML:OrganId>000.00.00.G22<", "<edXML:OrganId>000.00.00 G22<"
                ),
                f"{header}/To[1]/OrganId",
            ),
        ]
        for mutate, path in cases:
            self.assertInvalid(mutate(sample), "envelope", path)

    def test_status_deviations(self) -> None:
        header = "/edXMLEnvelope/edXMLHeader/MessageHeader"
        written = _status_written()
        for code in ("14", "09", "5", "00", "17"):
            data = _edit(written, "<edXML:StatusCode>05<", f"<edXML:StatusCode>{code}<")
            self.assertInvalid(data, "status", f"{header}/StatusCode")
        self.assertInvalid(
            _edit(written, "2015/09/20 11:08:36", "20/09/2015 11:08:36"),
            "status",
            f"{header}/Timestamp",
        )
        # The real-world sample itself: From children in another order.
        self.assertInvalid(STATUS, "status", f"{header}/From/OrganizationInCharge")
        # An envelope is not a status packet and vice versa.
        self.assertTrue(schema.validate(_sample(), "status"))
        self.assertTrue(schema.validate(written, "envelope"))

    def test_realworld_envelopes_report_their_order_and_namespace_defects(self) -> None:
        findings = schema.validate((REALWORLD / "edoc_new.edxml").read_bytes(), "envelope")
        paths = [f.path for f in findings]
        self.assertIn("/edXMLEnvelope/edXMLHeader/MessageHeader/DocumentId", paths)
        self.assertIn("/edXMLEnvelope/edXMLHeader/Signature", paths)
        messages = " ".join(f.message_en for f in findings)
        self.assertRegex(messages, r"line \d+")
        self.assertTrue(
            all(
                f.message_vi.startswith("Không hợp lệ theo lược đồ XSD của gói tin văn bản")
                for f in findings
            )
        )
