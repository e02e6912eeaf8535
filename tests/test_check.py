"""The composed verdict over one document (edxml.check) and `gateway inspect --trust`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from pki import make_pki

from twisted.trial.unittest import SynchronousTestCase

from edxml import check, signature
from gateway.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = (FIXTURES / "sample_envelope.edxml").read_bytes()
STATUS = (FIXTURES / "realworld" / "status_processing_05.edxml").read_bytes()


def codes(report: check.Report) -> list[str]:
    return [f.code for f in report.findings]


class ExamineTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.trust = signature.Trust(roots=(self.pki.root.cert,))
        self.signed = signature.sign(SAMPLE, self.pki.agency_h23.key, self.pki.agency_h23.chain)

    def test_signed_sample_is_acceptable_and_valid(self) -> None:
        report = check.examine(self.signed, trust=self.trust)
        self.assertTrue(report.acceptable, codes(report))
        assert report.signature is not None
        self.assertIs(report.signature.state, signature.SignatureState.VALID)
        self.assertEqual(report.kind, "envelope")
        self.assertEqual(len(report.attachments), 2)

    def test_tampered_signed_sample_is_refused(self) -> None:
        tampered = self.signed.replace("V/v báo cáo".encode(), b"V/v bao cao", 1)
        self.assertNotEqual(tampered, self.signed)
        report = check.examine(tampered, trust=self.trust)
        self.assertFalse(report.acceptable)
        self.assertIn("SignatureInvalid", codes(report))

    def test_one_finding_per_missing_element(self) -> None:
        bad = re.sub(rb"<edXML:OrganId>000\.00\.00\.H23</edXML:OrganId>", b"", SAMPLE, count=1)
        report = check.examine(bad)
        at_path = [f.code for f in report.findings if f.path and f.path.endswith("/From/OrganId")]
        self.assertEqual(at_path, ["OrganIdMissing"])
        self.assertFalse(report.acceptable)

    def test_schema_deviation_is_a_warning_unless_strict(self) -> None:
        tolerant = check.examine(STATUS)
        self.assertIn("SchemaDeviation", codes(tolerant))
        self.assertNotIn("SchemaInvalid", codes(tolerant))
        self.assertTrue(tolerant.acceptable)
        strict = check.examine(STATUS, strict_schema=True)
        self.assertIn("SchemaInvalid", codes(strict))
        self.assertFalse(strict.acceptable)

    def test_errors_sort_first(self) -> None:
        report = check.examine((FIXTURES / "realworld" / "edoc_new.edxml").read_bytes())
        severities = [f.severity.value for f in report.findings]
        ranks = ["error", "warning", "info"]
        self.assertEqual(severities, sorted(severities, key=ranks.index))

    def test_refusal_for_unreadable_bytes(self) -> None:
        report = check.examine(b"\x00\x01 not xml")
        self.assertFalse(report.acceptable)
        assert report.refusal is not None
        self.assertEqual(report.refusal.code, "MalformedXML")
        self.assertEqual(report.to_json()["kind"], "unknown")


class InspectWithTrustTests(SynchronousTestCase):
    def test_inspect_trust_gives_valid_signature(self) -> None:
        pki = make_pki()
        signed = signature.sign(SAMPLE, pki.agency_h23.key, pki.agency_h23.chain)
        doc = Path(self.mktemp())
        doc.write_bytes(signed)
        root = Path(self.mktemp())
        root.write_bytes(pki.root.cert_pem)
        result = CliRunner().invoke(main, ["inspect", "--json", "--trust", str(root), str(doc)])
        report = json.loads(result.stdout)
        self.assertEqual(result.exit_code, 0, report["findings"])
        self.assertEqual(report["signature"]["state"], "valid")
        self.assertEqual(report["signature"]["signer"]["organ_id"], "000.00.00.H23")

    def test_inspect_wrong_trust_refuses(self) -> None:
        pki = make_pki()
        signed = signature.sign(SAMPLE, pki.agency_h23.key, pki.agency_h23.chain)
        doc = Path(self.mktemp())
        doc.write_bytes(signed)
        other = Path(self.mktemp())
        other.write_bytes(pki.untrusted_root.cert_pem)
        result = CliRunner().invoke(main, ["inspect", "--json", "--trust", str(other), str(doc)])
        report = json.loads(result.stdout)
        self.assertEqual(result.exit_code, 65)
        self.assertIn("SignerUntrusted", [f["code"] for f in report["findings"]])


class FindingPathTests(SynchronousTestCase):
    def test_every_module_names_paths_in_one_dialect(self) -> None:
        """Reader, rules, schema, attachments and signature all say /edXMLEnvelope/... ."""
        for path in [*(FIXTURES / "realworld").glob("*.edxml"), FIXTURES / "sample_envelope.edxml"]:
            for f in check.examine(path.read_bytes(), strict_schema=True).findings:
                if f.path is not None:
                    self.assertRegex(f.path, r"^/(edXMLEnvelope|AttachmentEncoded)(/|$)", f)


def envelope_with_pdf(pdf: bytes) -> bytes:
    """The sample envelope (sender H23) carrying `pdf` as its document."""
    import attrs
    from make_sample import sample_envelope

    from edxml import writer
    from edxml.model import Attachment

    env = sample_envelope()
    first = env.attachments[0]
    signed = Attachment.of(
        pdf,
        content_id=first.content_id,
        attachment_name=first.attachment_name,
        content_type=first.content_type,
        description=first.description,
    )
    return writer.write(attrs.evolve(env, attachments=(signed, *env.attachments[1:])))


class LegalValidityTests(SynchronousTestCase):
    """R5: the document's verdict from its PDF signatures, in examine and `gateway inspect`."""

    def setUp(self) -> None:
        from pdfkit import make_kit

        self.kit = make_kit()
        self.trust = signature.Trust(roots=(self.kit.pki.root.cert,))

    def legality(self, pdf: bytes, **kw: Any) -> tuple[str | None, list[str]]:
        report = check.examine(envelope_with_pdf(pdf), trust=self.trust, **kw)
        legal = report.legality.value if report.legality else None
        return legal, codes(report)

    def test_seal_of_the_sender_is_legal(self) -> None:
        self.assertEqual(self.legality(self.kit.seal)[0], "legal")
        self.assertEqual(self.legality(self.kit.person_then_seal)[0], "legal")

    def test_unsigned_or_foreign_is_reference_only(self) -> None:
        for pdf in (self.kit.unsigned, self.kit.g22, self.kit.untrusted):
            self.assertEqual(self.legality(pdf)[0], "reference-only")

    def test_tampered_pdf_is_broken_and_refused(self) -> None:
        report = check.examine(envelope_with_pdf(self.kit.tampered), trust=self.trust)
        self.assertEqual(report.legality.value if report.legality else None, "broken")
        self.assertIn("PdfSignatureBroken", codes(report))
        self.assertFalse(report.acceptable)

    def test_revoked_signer_is_reference_only_given_the_crl(self) -> None:
        self.assertEqual(self.legality(self.kit.revoked)[0], "legal")  # no CRL: unknown
        legal, found = self.legality(self.kit.revoked, crls=(self.kit.crl,))
        self.assertEqual(legal, "reference-only")
        self.assertIn("PdfSignerRevoked", found)

    def test_inspect_offline_with_trust_and_crl(self) -> None:
        from cryptography.hazmat.primitives import serialization

        doc = Path(self.mktemp())
        doc.write_bytes(envelope_with_pdf(self.kit.revoked))
        root = Path(self.mktemp())
        root.write_bytes(self.kit.pki.root.cert_pem)
        crl = Path(self.mktemp())
        crl.write_bytes(self.kit.crl.public_bytes(serialization.Encoding.DER))
        result = CliRunner().invoke(
            main, ["inspect", "--json", "--trust", str(root), "--crl", str(crl), str(doc)]
        )
        report = json.loads(result.stdout)
        self.assertEqual(report["legal_validity"], "reference-only")
        pdf = report["attachments"][0]["pdf"]
        self.assertEqual(pdf["signatures"][0]["revocation"], "revoked")
