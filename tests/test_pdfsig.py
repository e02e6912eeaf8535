"""PDF signatures: signed test PDFs from tests/pdfkit.py, each verdict asserted."""

from __future__ import annotations

import datetime
import hashlib
import time

from pdfkit import Kit, make_kit, padded_pdf, sign
from pki import ORGAN_ID_G22, ORGAN_ID_H23, PERSON_NAME

from twisted.trial.unittest import SynchronousTestCase

from edxml import pdfsig
from edxml.findings import Fault, Severity, registry
from edxml.pdfsig import ChainState, Coverage, Legality, PdfVerdict, Revocation, Role


def _kit() -> Kit:
    return make_kit()


def check(data: bytes, *, crls: bool = True, sender: str | None = ORGAN_ID_H23) -> PdfVerdict:
    kit = _kit()
    return pdfsig.validate_pdf(
        data,
        trust=kit.pki.trust(),
        crls=[kit.crl] if crls else [],
        now=datetime.datetime.now(datetime.UTC),
        sender_organ_id=sender,
    )


def codes(verdict: PdfVerdict) -> set[str]:
    return {f.code for f in verdict.findings}


class VerdictTests(SynchronousTestCase):
    def test_seal_of_sender_is_legal(self) -> None:
        verdict = check(_kit().seal)
        self.assertIs(verdict.legality, Legality.LEGAL)
        (sig,) = verdict.signatures
        self.assertTrue(sig.intact)
        self.assertIs(sig.chain, ChainState.TRUSTED)
        self.assertIsNone(sig.chain_reason)
        self.assertIs(sig.revocation, Revocation.GOOD)
        self.assertIs(sig.role, Role.SEAL)
        self.assertTrue(sig.by_sender)
        self.assertEqual(sig.organ_id, ORGAN_ID_H23)
        self.assertEqual(sig.organization, "UBND tỉnh Hà Nam")
        self.assertIs(sig.coverage, Coverage.ENTIRE_DOCUMENT)
        self.assertEqual(sig.modification, "none")
        assert sig.signing_time is not None
        self.assertEqual(sig.signing_time.utcoffset(), datetime.timedelta(0))
        self.assertLess(
            abs(sig.signing_time - datetime.datetime.now(datetime.UTC)), datetime.timedelta(hours=1)
        )
        self.assertEqual(verdict.findings, ())

    def test_without_crl_revocation_is_unknown_but_still_legal(self) -> None:
        verdict = check(_kit().seal, crls=False)
        self.assertIs(verdict.legality, Legality.LEGAL)
        self.assertIs(verdict.signatures[0].revocation, Revocation.UNKNOWN)
        self.assertEqual(codes(verdict), {"PdfRevocationUnknown"})

    def test_person_then_seal(self) -> None:
        verdict = check(_kit().person_then_seal)
        self.assertIs(verdict.legality, Legality.LEGAL)
        person, seal = verdict.signatures
        self.assertEqual(person.field_name, "NguoiKy")
        self.assertEqual(person.signer.common_name, PERSON_NAME)
        self.assertIs(person.role, Role.PERSON)
        self.assertTrue(person.by_sender)  # OrganId in the person's OU
        self.assertIs(person.coverage, Coverage.LATER_REVISIONS_ADDED)
        self.assertTrue(person.allowed_updates_only)  # the seal is an allowed incremental update
        self.assertEqual(seal.field_name, "ConDau")
        self.assertIs(seal.role, Role.SEAL)
        self.assertIs(seal.coverage, Coverage.ENTIRE_DOCUMENT)
        self.assertEqual(verdict.findings, ())

    def test_person_alone_of_the_sender_is_legal(self) -> None:
        kit = _kit()
        verdict = check(sign(kit.unsigned, kit.pki.person))
        self.assertIs(verdict.legality, Legality.LEGAL)
        self.assertIs(verdict.signatures[0].role, Role.PERSON)

    def test_tampered_is_broken(self) -> None:
        verdict = check(_kit().tampered)
        self.assertIs(verdict.legality, Legality.BROKEN)
        self.assertFalse(verdict.signatures[0].intact)
        (finding,) = verdict.findings
        self.assertEqual(finding.code, "PdfSignatureBroken")
        self.assertIs(finding.severity, Severity.ERROR)
        self.assertIs(finding.fault, Fault.SIGNATURE_INVALID)
        self.assertIn("Signature1", finding.message_en)
        self.assertIn("toàn vẹn", finding.message_vi)

    def test_broken_wins_over_a_good_signature(self) -> None:
        kit = _kit()
        tampered_person = kit.person_then_seal.replace(b"So: 123", b"So: 124", 1)
        verdict = check(tampered_person)
        self.assertIs(verdict.legality, Legality.BROKEN)
        self.assertFalse(all(s.intact for s in verdict.signatures))

    def test_expired_signer(self) -> None:
        verdict = check(_kit().expired)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        (sig,) = verdict.signatures
        self.assertTrue(sig.intact)
        self.assertIs(sig.chain, ChainState.EXPIRED)
        assert sig.chain_reason is not None
        self.assertIn("expired", sig.chain_reason.en)
        self.assertIn("PdfSignerExpired", codes(verdict))

    def test_revoked_signer(self) -> None:
        verdict = check(_kit().revoked)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        (sig,) = verdict.signatures
        self.assertIs(sig.chain, ChainState.TRUSTED)
        self.assertIs(sig.revocation, Revocation.REVOKED)
        self.assertIsNotNone(sig.revoked_at)
        self.assertEqual(codes(verdict), {"PdfSignerRevoked"})

    def test_revoked_signer_without_the_crl_is_unknown(self) -> None:
        verdict = check(_kit().revoked, crls=False)
        self.assertIs(verdict.signatures[0].revocation, Revocation.UNKNOWN)
        self.assertIs(verdict.legality, Legality.LEGAL)  # only the CRLs given are consulted

    def test_crl_not_signed_by_the_issuer_is_ignored(self) -> None:
        kit = _kit()
        forged = pdfsig.validate_pdf(
            kit.revoked,
            trust=kit.pki.trust(),
            crls=[_forged_empty_crl(kit)],
            now=datetime.datetime.now(datetime.UTC),
            sender_organ_id=ORGAN_ID_H23,
        )
        self.assertIs(forged.signatures[0].revocation, Revocation.UNKNOWN)

    def test_untrusted_root(self) -> None:
        verdict = check(_kit().untrusted)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        (sig,) = verdict.signatures
        self.assertIs(sig.chain, ChainState.UNTRUSTED)
        self.assertEqual(sig.organ_id, ORGAN_ID_H23)  # it claims the sender's names: no matter
        self.assertIn("PdfSignerUntrusted", codes(verdict))

    def test_not_by_sender(self) -> None:
        verdict = check(_kit().g22)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        (sig,) = verdict.signatures
        self.assertEqual(sig.organ_id, ORGAN_ID_G22)
        self.assertFalse(sig.by_sender)
        self.assertEqual(codes(verdict), {"PdfNotBySender"})
        self.assertIs(check(_kit().g22, sender=ORGAN_ID_G22).legality, Legality.LEGAL)
        self.assertIs(check(_kit().seal, sender=None).legality, Legality.REFERENCE_ONLY)

    def test_unsigned(self) -> None:
        verdict = check(_kit().unsigned)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        self.assertEqual(verdict.signatures, ())
        self.assertEqual(codes(verdict), {"PdfUnsigned"})

    def test_modified_after_signing(self) -> None:
        verdict = check(_kit().added_after_seal)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        (sig,) = verdict.signatures
        self.assertTrue(sig.intact)
        self.assertIs(sig.coverage, Coverage.LATER_REVISIONS_ADDED)
        self.assertFalse(sig.allowed_updates_only)
        self.assertEqual(codes(verdict), {"PdfModifiedAfterSigning"})

    def test_unreadable(self) -> None:
        verdict = check(b"%PDF-1.7\nthis is not a PDF body\n%%EOF\n")
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        self.assertEqual(codes(verdict), {"PdfUnreadable"})

    def test_too_large(self) -> None:
        kit = _kit()
        verdict = pdfsig.validate_pdf(
            kit.seal,
            trust=kit.pki.trust(),
            now=datetime.datetime.now(datetime.UTC),
            sender_organ_id=ORGAN_ID_H23,
            max_bytes=100,
        )
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        self.assertEqual(codes(verdict), {"PdfTooLargeToValidate"})

    def test_naive_now_refused(self) -> None:
        kit = _kit()
        with self.assertRaises(ValueError):
            pdfsig.validate_pdf(
                kit.seal, trust=kit.pki.trust(), now=datetime.datetime.now(), sender_organ_id=None
            )

    def test_codes_registered_bilingual(self) -> None:
        ours = {k: v for k, v in registry().items() if k.startswith("Pdf")}
        self.assertGreaterEqual(len(ours), 9)
        for code in ours.values():
            self.assertTrue(code.en and code.vi and code.en != code.vi)


def _forged_empty_crl(kit: Kit) -> object:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(kit.pki.intermediate.cert.subject)
        .last_update(now - datetime.timedelta(hours=1))
        .next_update(now + datetime.timedelta(days=7))
        .sign(kit.pki.untrusted_root.key, hashes.SHA256())  # type: ignore[arg-type]
    )


class TimingTests(SynchronousTestCase):
    def test_large_signed_pdfs(self) -> None:
        """Validate 1 MB and 20 MB signed PDFs; print validate time against sha256 of the bytes."""
        kit = _kit()
        for size in (1 << 20, 20 << 20):
            signed = sign(padded_pdf(size), kit.pki.agency_h23)
            start = time.perf_counter()
            verdict = check(signed)
            validate = time.perf_counter() - start
            start = time.perf_counter()
            hashlib.sha256(signed).digest()
            digest = time.perf_counter() - start
            self.assertIs(verdict.legality, Legality.LEGAL)
            print(
                f"\n{len(signed)} bytes: validate {validate * 1000:.0f} ms,",
                f"sha256 {digest * 1000:.1f} ms",
            )
