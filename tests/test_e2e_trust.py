"""Issue #4, "Done when": every trust fixture gets the right verdict and the right automatic
status between two real nodes (A hosts H23 and sends, B hosts H40 and judges; see e2e_kit).

PDF attachments travel the normal way (A's office → SendDocument → A seals → B): B's inbox shows
the PDF's LegalValidity and A's GetSendStatus the automatic 01, or 02 naming the PDF problem.
Envelope signatures are injected straight into B's exchange face as node A would (mutual TLS with
A's node certificate), so that a bad seal reaches B at all; each refusal must leave a 02 to H23
with its reason in B's store. Every certificate comes from the shared dev CA of `gateway init`,
except the foreign one (tests/pki's untrusted_agency).

One node pair serves the whole class: each test uses its own document number.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pdfkit
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from e2e_kit import (
    H23,
    H40,
    NAMES,
    Node,
    cli_json,
    document_id,
    envelope,
    make_pair,
    office_client,
    poll,
)
from lxml import etree
from make_sample import minimal_pdf
from pki import ORGAN_ID_G22, make_pki
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from zeep.exceptions import Fault as ZeepFault

from twisted.trial.unittest import SynchronousTestCase

from edxml import reader, signature, writer
from edxml.codes import StatusCode
from edxml.model import Attachment, Envelope, ResponseFor, StatusPacket
from gateway import devpki
from gateway.interfaces import PermanentFailure
from gateway.soap import OFFICE_NS, Face, FaultCode, SoapVersion
from gateway.store import Store
from gateway.transports import deliver_request, parse_deliver_answer

ED = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
CRL_FILE = "data/pki/dev-issuing.crl.pem"
DAY = datetime.timedelta(days=1)
GW = {"gw": OFFICE_NS}
BROKEN_EN = "is broken: the document was altered after signing"
BROKEN_VI = "trên tệp PDF không còn toàn vẹn"


def _load_issued(name: str, key_pem: bytes, chain_pem: bytes) -> devpki.Issued:
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    chain = tuple(x509.load_pem_x509_certificates(chain_pem))
    return devpki.Issued(name=name, key=key, cert=chain[0], chain=chain)


@attrs.frozen
class DevCA:
    """Node A's dev CA (as `gateway init` wrote it) and what the tests issue from it."""

    issuing: devpki.Issued
    seal_h23: devpki.Issued  # the very seal node A signs with
    person: devpki.Issued
    expired_h23: devpki.Issued
    seal_g22: devpki.Issued
    revoked_h23: devpki.Issued

    @classmethod
    def of(cls, a: Node) -> DevCA:
        pki = a.directory / "data" / "pki"
        issuing = _load_issued(
            "issuing",
            (pki / "ca" / "issuing.key.pem").read_bytes(),
            (pki / "ca" / "issuing.crt.pem").read_bytes(),
        )
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

        def leaf(name: str, subject: x509.Name, *, expired: bool = False) -> devpki.Issued:
            return devpki.issue(
                name,
                subject,
                issuer=issuing,
                not_before=now - 30 * DAY,
                not_after=now - DAY if expired else now + 365 * DAY,
                extended=devpki.SIGNER_EKU,
            )

        h23 = devpki.agency_subject(H23, NAMES[H23])
        return cls(
            issuing=issuing,
            seal_h23=_load_issued(
                "seal_h23", (pki / f"{H23}.key").read_bytes(), (pki / f"{H23}.pem").read_bytes()
            ),
            # tests/pki's official of H23 (title, OU naming the agency), under the dev CA.
            person=leaf("person", make_pki().person.cert.subject),
            expired_h23=leaf("expired_h23", h23, expired=True),
            seal_g22=leaf("seal_g22", devpki.agency_subject(ORGAN_ID_G22, "Văn phòng Chính phủ")),
            revoked_h23=leaf("revoked_h23", h23),
        )

    def crl(self, revoked: x509.Certificate) -> bytes:
        """A CRL of the dev issuing CA listing `revoked`, PEM."""
        now = datetime.datetime.now(datetime.UTC)
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.serial_number)
            .revocation_date(now - datetime.timedelta(hours=2))
            .build()
        )
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.cert.subject)
            .last_update(now - datetime.timedelta(hours=1))
            .next_update(now + 7 * DAY)
            .add_revoked_certificate(entry)
            .sign(self.issuing.key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return crl.public_bytes(serialization.Encoding.PEM)


class _LegacySigner(XMLSigner):
    """signxml refuses to produce SHA-1; old senders did (as in tests/test_signature.py)."""

    def check_deprecated_methods(self) -> None:
        pass


class TrustNodes(SynchronousTestCase):
    """Nodes A and B started once per class; B trusts the dev root, with `b_crls`. The helpers
    drive both ends: A's office face for PDFs, B's exchange face for injected envelopes."""

    b_crls: ClassVar[tuple[str, ...]] = ()
    a: ClassVar[Node]
    b: ClassVar[Node]
    ca: ClassVar[DevCA]
    base: ClassVar[Path]
    office_a: ClassVar[Any]
    office_b: ClassVar[Any]

    @classmethod
    def setUpClass(cls) -> None:
        cls.base = Path(tempfile.mkdtemp(prefix="e2e-trust-"))
        cls.a, cls.b = make_pair(cls.base, b_crls=cls.b_crls)
        try:
            cls.ca = DevCA.of(cls.a)
            cls.prepare()
            cls.a.start()
            cls.b.start()
            cls.office_a = office_client(cls.a)
            cls.office_b = office_client(cls.b)
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def prepare(cls) -> None:
        """Before the nodes start: the files B reads, the servers the certificates name."""

    @classmethod
    def tearDownClass(cls) -> None:
        cls._teardown()

    @classmethod
    def _teardown(cls) -> None:
        for name in ("office_a", "office_b"):
            client = getattr(cls, name, None)
            if client is not None:
                client.transport.session.close()
        cls.a.stop()
        cls.b.stop()
        shutil.rmtree(cls.base, ignore_errors=True)

    # --- PDF attachments, sent through A's office face ---

    def with_pdf(self, number: str, pdf: bytes) -> bytes:
        """The sample envelope H23 → H40, unsigned, with `pdf` as its PDF attachment."""
        doc = reader.read(envelope(H23, [H40], number)).document
        assert isinstance(doc, Envelope)
        first = doc.attachments[0]
        self.assertEqual(first.content_type, "application/pdf")
        attached = Attachment.of(
            pdf,
            content_id=first.content_id,
            attachment_name=first.attachment_name,
            content_type=first.content_type,
        )
        return writer.write(attrs.evolve(doc, attachments=(attached, *doc.attachments[1:])))

    def send_pdf(self, number: str, pdf: bytes) -> str:
        """The sample envelope with `pdf` as its PDF attachment, sent H23 → H40 through A's
        office face; A's MessageId."""
        sent = self.office_a.service.SendDocument(Envelope=self.with_pdf(number, pdf))
        message_id: str = sent.MessageId
        return message_id

    def history_at_a(self, message_id: str) -> list[Any]:
        """A's GetSendStatus history for H40, once it holds the automatic status."""

        def statuses() -> list[Any] | None:
            status = self.office_a.service.GetSendStatus(MessageId=message_id)
            recipient = {r.OrganId: r for r in status.Recipient}[H40]
            return list(recipient.History.Status) if recipient.History else None

        return poll("the automatic status at A", statuses, timeout=20)

    def in_b_inbox(self, number: str) -> Any:
        wanted = document_id(H23, number)

        def found() -> list[Any]:
            docs = self.office_b.service.ReceiveDocuments(OrganId=H40, Max=50)
            return [d for d in docs if d.DocumentId == wanted]

        [doc] = poll(f"document {number} in B's inbox", found, timeout=20)
        return doc

    def assertAccepted(self, number: str, pdf: bytes, legal: str) -> Any:
        message_id = self.send_pdf(number, pdf)
        doc = self.in_b_inbox(number)
        self.assertEqual(doc.Verdict.SignatureState, "valid")
        self.assertEqual(doc.Verdict.LegalValidity, legal, list(doc.Verdict.FindingCode))
        self.assertEqual([s.Code for s in self.history_at_a(message_id)], ["01"])
        return doc

    def fault_detail(self, code: FaultCode, call: Any, *args: Any, **kwargs: Any) -> Any:
        """`call` raises a SOAP fault with our detail and `code`; the detail element."""
        with self.assertRaises(ZeepFault) as caught:
            call(*args, **kwargs)
        detail = caught.exception.detail.find("gw:GatewayFault", GW)
        self.assertIsNotNone(detail, etree.tostring(caught.exception.detail))
        self.assertEqual(detail.findtext("gw:Code", namespaces=GW), code.value)
        return detail

    # --- envelope signatures, injected into B's exchange face as node A ---

    def deliver_as_a(self, package: bytes) -> Any:
        """POST Deliver to B over mutual TLS with A's node certificate: B's receipt, or the
        PermanentFailure its fault means."""
        pki = self.a.directory / "data" / "pki"
        with requests.Session() as session:
            session.trust_env = False
            response = session.post(
                self.b.exchange_url,
                data=deliver_request(package),
                headers={
                    "Content-Type": SoapVersion.SOAP11.content_type,
                    "SOAPAction": f'"{Face.EXCHANGE.action("Deliver")}"',
                },
                cert=(str(pki / "node.pem"), str(pki / "node.key")),
                verify=str(pki / "root.pem"),
                timeout=30,
            )
        return parse_deliver_answer(response.status_code, response.content)

    def sealed(self, number: str, entry: devpki.Issued | None = None) -> bytes:
        entry = entry or self.ca.seal_h23
        return signature.sign(envelope(H23, [H40], number), entry.key, entry.chain)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = Store.open_readonly(self.b.db_path)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise AssertionError(f"{sql}: {exc}") from exc
        finally:
            conn.close()

    def assertRefusedWith02(self, number: str, package: bytes, *codes: FaultCode) -> str:
        """B refuses `package` with one of `codes`, keeps it `rejected`, and queues a 02 to H23
        about it; the 02's Description."""
        with self.assertRaises(PermanentFailure) as caught:
            self.deliver_as_a(package)
        self.assertIn(caught.exception.code, [c.value for c in codes], str(caught.exception))
        wanted = document_id(H23, number)
        self.assertEqual(
            self.rows(
                "SELECT state FROM messages WHERE direction = 'in' AND kind = 'envelope'"
                " AND document_id = ?",
                wanted,
            ),
            [("rejected",)],
        )
        [(digest,)] = self.rows(
            "SELECT m.blob_sha256 FROM messages m JOIN deliveries d ON d.message_id = m.id"
            " WHERE m.direction = 'out' AND m.kind = 'status' AND m.business_type = '02'"
            " AND m.document_id = ? AND d.recipient = ?",
            wanted,
            H23,
        )
        blob = self.b.directory / "data" / "blobs" / digest[:2] / digest
        packet = reader.read(blob.read_bytes()).document
        assert isinstance(packet, StatusPacket)
        self.assertIs(packet.status_code, StatusCode.REJECTED)
        self.assertEqual((packet.document_id, packet.from_.organ_id), (wanted, H40))
        self.assertIn("Từ chối tiếp nhận", packet.description)
        self.assertIn("Rejected", packet.description)
        return packet.description

    def stored_verdict(self, number: str) -> dict[str, Any]:
        [(state, verdict)] = self.rows(
            "SELECT state, verdict_json FROM messages WHERE direction = 'in'"
            " AND kind = 'envelope' AND document_id = ?",
            document_id(H23, number),
        )
        self.assertEqual(state, "received")
        data: dict[str, Any] = json.loads(verdict)
        return data


class TrustEndToEnd(TrustNodes):
    b_crls = (CRL_FILE,)

    @classmethod
    def prepare(cls) -> None:
        (cls.b.directory / CRL_FILE).write_bytes(cls.ca.crl(cls.ca.revoked_h23.cert))

    def test_person_then_seal_is_valid(self) -> None:
        unsigned = minimal_pdf(pdfkit.LINES)
        pdf = pdfkit.sign(
            pdfkit.sign(unsigned, self.ca.person, "NguoiKy"), self.ca.seal_h23, "ConDau"
        )
        doc = self.assertAccepted("801", pdf, "valid")
        self.assertNotIn("PdfSignatureBroken", doc.Verdict.FindingCode)

    def test_tampered_pdf_is_refused_by_the_sender(self) -> None:
        """A's own office face judges the PDF before sealing: nothing broken leaves A."""
        pdf = pdfkit.tamper(pdfkit.sign(minimal_pdf(pdfkit.LINES), self.ca.seal_h23))
        detail = self.fault_detail(FaultCode.SIGNATURE_INVALID, self.send_pdf, "802", pdf)
        self.assertIn(BROKEN_EN, detail.findtext("gw:MessageEn", default="", namespaces=GW))
        self.assertIn(BROKEN_VI, detail.findtext("gw:MessageVi", default="", namespaces=GW))
        self.fault_detail(
            FaultCode.NOT_FOUND,
            self.office_a.service.GetSendStatus,
            DocumentId=document_id(H23, "802"),
        )

    def test_expired_signer_is_reference_only(self) -> None:
        pdf = pdfkit.sign(minimal_pdf(pdfkit.LINES), self.ca.expired_h23)
        doc = self.assertAccepted("803", pdf, "invalid")
        self.assertIn("PdfSignerExpired", doc.Verdict.FindingCode)

    def test_other_agency_is_reference_only(self) -> None:
        pdf = pdfkit.sign(minimal_pdf(pdfkit.LINES), self.ca.seal_g22)
        doc = self.assertAccepted("804", pdf, "invalid")
        self.assertIn("PdfNotBySender", doc.Verdict.FindingCode)

    def test_foreign_root_is_reference_only(self) -> None:
        pdf = pdfkit.sign(minimal_pdf(pdfkit.LINES), make_pki().untrusted_agency)
        doc = self.assertAccepted("805", pdf, "invalid")
        self.assertIn("PdfSignerUntrusted", doc.Verdict.FindingCode)

    def test_revoked_signer_is_reference_only(self) -> None:
        pdf = pdfkit.sign(minimal_pdf(pdfkit.LINES), self.ca.revoked_h23)
        doc = self.assertAccepted("806", pdf, "invalid")
        self.assertIn("PdfSignerRevoked", doc.Verdict.FindingCode)

    def test_correct_seal_gets_a_receipt(self) -> None:
        receipt = self.deliver_as_a(self.sealed("901"))
        self.assertFalse(receipt.duplicate)
        self.assertTrue(receipt.receipt_id)
        self.assertEqual(self.stored_verdict("901")["signature"]["state"], "valid")

    def test_wrapped_header_is_refused(self) -> None:
        """XSW: a second MessageHeader, naming another subject, slipped in after signing."""
        root = etree.fromstring(self.sealed("902"))
        header = root.find(f"{ED}edXMLEnvelope/{ED}edXMLHeader")
        assert header is not None
        original = header.find(f"{ED}MessageHeader")
        assert original is not None
        evil = etree.fromstring(etree.tostring(original))
        subject = evil.find(f"{ED}Subject")
        assert subject is not None
        subject.text = "Lệnh chuyển tiền khẩn"
        header.insert(header.index(original) + 1, evil)
        package = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        description = self.assertRefusedWith02("902", package, FaultCode.SIGNATURE_INVALID)
        self.assertIn("chữ ký", description.lower())

    def test_tampered_text_is_refused(self) -> None:
        sealed = self.sealed("903")
        tampered = sealed.replace("tình hình".encode(), b"tinh hinh", 1)
        self.assertNotEqual(tampered, sealed)
        description = self.assertRefusedWith02("903", tampered, FaultCode.SIGNATURE_INVALID)
        self.assertIn("chữ ký", description.lower())

    def test_other_agencys_seal_is_sender_mismatch(self) -> None:
        package = self.sealed("904", self.ca.seal_g22)
        description = self.assertRefusedWith02("904", package, FaultCode.SENDER_MISMATCH)
        self.assertIn(ORGAN_ID_G22, description)
        self.assertIn(H23, description)

    def test_sha1_seal_is_accepted_with_a_warning(self) -> None:
        data = envelope(H23, [H40], "905").replace(
            b"<edXML:DigitalSignature/>",
            f'<ds:Signature xmlns:ds="{DSIG}" Id="placeholder"/>'.encode(),
        )
        seal = self.ca.seal_h23
        signer = _LegacySigner(
            signature_algorithm=SignatureMethod.RSA_SHA1,
            digest_algorithm=DigestAlgorithm.SHA1,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        signed = signer.sign(etree.fromstring(data), key=seal.key, cert=list(seal.chain))
        package = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
        receipt = self.deliver_as_a(package)
        self.assertFalse(receipt.duplicate)
        verdict = self.stored_verdict("905")
        self.assertEqual(verdict["signature"]["state"], "valid")
        codes = [f["code"] for f in verdict["findings"]]
        self.assertIn("SignatureWeakAlgorithm", codes)

    def test_tampered_pdf_is_refused_at_the_recipient_with_02_naming_it(self) -> None:
        """The same PDF from a sender that does not check (sealed and delivered as A would):
        B refuses it and its 02 to H23 names the broken PDF signature in both languages."""
        pdf = pdfkit.tamper(pdfkit.sign(minimal_pdf(pdfkit.LINES), self.ca.seal_h23))
        seal = self.ca.seal_h23
        package = signature.sign(self.with_pdf("906", pdf), seal.key, seal.chain)
        description = self.assertRefusedWith02("906", package, FaultCode.SIGNATURE_INVALID)
        self.assertIn(BROKEN_VI, description)
        self.assertIn(BROKEN_EN, description)
        self.assertLess(description.index(BROKEN_VI), description.index(BROKEN_EN))


class RulesEndToEnd(TrustNodes):
    """Issue #5 (and #4's "counted in statistics") across the two nodes: what the office systems
    see of the rules, and what each node's `gateway stats` counts of the traffic."""

    def stats(self, node: Node) -> dict[tuple[str, str], dict[str, int]]:
        result = cli_json(node, "stats", "--recount")
        return {(r["agency"], r["direction"]): r for r in result["rows"]}

    def test_the_office_systems_see_the_rules_and_the_stats_count_them(self) -> None:
        before_a, before_b = self.stats(self.a), self.stats(self.b)
        unsigned = minimal_pdf(pdfkit.LINES)
        legal = pdfkit.sign(
            pdfkit.sign(unsigned, self.ca.person, "NguoiKy"), self.ca.seal_h23, "ConDau"
        )
        doc = reader.read(self.with_pdf("821", legal)).document
        assert isinstance(doc, Envelope)
        asked = document_id(H40, "17")
        business = attrs.evolve(doc.trace.business, paper=True)
        doc = attrs.evolve(
            doc,
            header=attrs.evolve(
                doc.header,
                response_for=(ResponseFor(organ_id=H40, code="17/UBND-VP", document_id=asked),),
            ),
            trace=attrs.evolve(doc.trace, business=business),
        )
        sent = self.office_a.service.SendDocument(Envelope=writer.write(doc))
        self.assertIn("PaperCopyRequired", list(sent.FindingCode))
        received = self.in_b_inbox("821")
        self.assertTrue(received.PaperRequired)
        self.assertEqual(list(received.InReplyTo), [asked])
        self.assertEqual(received.DueDate, datetime.date(2025, 3, 12))
        self.assertIsNotNone(received.LegalReceivedAt)
        self.assertIn("PaperCopyRequired", list(received.Verdict.FindingCode))
        self.assertEqual(received.Verdict.LegalValidity, "valid")
        expired = pdfkit.sign(unsigned, self.ca.expired_h23)
        self.send_pdf("822", expired)
        self.in_b_inbox("822")
        after_b = self.stats(self.b)
        key = (H40, "in")
        gained = {
            name: after_b[key][name] - before_b.get(key, {}).get(name, 0)
            for name in ("documents", "legal", "reference_only", "paper_required")
        }
        self.assertEqual(
            gained, {"documents": 2, "legal": 1, "reference_only": 1, "paper_required": 1}
        )
        after_a = poll(
            "A's count of the two documents and their 01s",
            lambda: (
                s
                if (s := self.stats(self.a))[(H23, "out")]["on_time"]
                >= before_a.get((H23, "out"), {}).get("on_time", 0) + 2
                else None
            ),
            timeout=20,
        )
        self.assertEqual(
            after_a[(H23, "out")]["documents"] - before_a.get((H23, "out"), {}).get("documents", 0),
            2,
        )

    def test_numbers_from_the_office_face(self) -> None:
        first = self.office_a.service.IssueDocumentId(
            OrganId=H23, Notation="UBND-VP", Register="e2e"
        )
        second = self.office_a.service.IssueDocumentId(
            OrganId=H23, Notation="UBND-VP", Register="e2e"
        )
        self.assertEqual((first.CodeNumber, second.CodeNumber), ("01", "02"))
        self.assertTrue(second.DocumentId.startswith(f"{H23},"))
        self.assertTrue(second.DocumentId.endswith(",02/UBND-VP"))
        self.fault_detail(
            FaultCode.FORBIDDEN, self.office_a.service.IssueDocumentId, OrganId=H40, Notation="X"
        )

    def test_a_directory_imported_beside_the_running_node(self) -> None:
        path = self.a.directory / "agencies.json"
        path.write_text(
            json.dumps(
                [
                    {"organ_id": H23, "name": NAMES[H23]},
                    {"organ_id": H40, "name": NAMES[H40], "kind": "province"},
                ]
            ),
            encoding="utf-8",
        )
        imported = cli_json(self.a, "directory", "import", str(path))
        self.assertEqual(imported["added"], 2)
        listed = {a.OrganId: a for a in self.office_a.service.GetDirectory()}
        self.assertEqual(listed[H40].Name, NAMES[H40])
        self.assertEqual(listed[H40].Route, "peer")
        # Every recipient must now be in it: G22 is not.
        doc = reader.read(envelope(H23, [H40], "823")).document
        assert isinstance(doc, Envelope)
        stranger = attrs.evolve(doc.header.to[0], organ_id=ORGAN_ID_G22)
        doc = attrs.evolve(doc, header=attrs.evolve(doc.header, to=(*doc.header.to, stranger)))
        detail = self.fault_detail(
            FaultCode.UNKNOWN_RECIPIENT,
            self.office_a.service.SendDocument,
            Envelope=writer.write(doc),
        )
        self.assertIn(ORGAN_ID_G22, detail.findtext("gw:MessageEn", default="", namespaces=GW))
