"""PDF signatures: signed test PDFs from tests/pdfkit.py, each verdict asserted."""

from __future__ import annotations

import datetime
import hashlib
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp as x509_ocsp
from ocspkit import HOUR, Entry, answer, with_ocsp
from pdfkit import Kit, make_kit, padded_pdf, sign, tsa
from pki import ORGAN_ID_G22, ORGAN_ID_H23, PERSON_NAME, PKIEntry

from twisted.trial.unittest import SynchronousTestCase

from edxml import pdfsig
from edxml.certificates import Problem
from edxml.findings import Fault, Severity, registry
from edxml.ocsp import OcspAnswer, OcspQuery
from edxml.pdfsig import (
    ChainState,
    Coverage,
    Legality,
    PdfVerdict,
    Revocation,
    Role,
    Timestamp,
)
from gateway.devpki import SIGNER_EKU, issue


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


def _forged_empty_crl(kit: Kit) -> x509.CertificateRevocationList:
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


DAY = datetime.timedelta(days=1)


def _issued(
    kit: Kit, name: str, not_before: datetime.datetime, not_after: datetime.datetime
) -> PKIEntry:
    return issue(
        name,
        kit.pki.agency_h23.cert.subject,
        issuer=kit.pki.intermediate,
        not_before=not_before,
        not_after=not_after,
        extended=SIGNER_EKU,
    )


def _crl_listing(
    kit: Kit, cert: x509.Certificate, revoked_at: datetime.datetime
) -> x509.CertificateRevocationList:
    now = datetime.datetime.now(datetime.UTC)
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(cert.serial_number)
        .revocation_date(revoked_at)
        .build()
    )
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(kit.pki.intermediate.cert.subject)
        .last_update(now - datetime.timedelta(hours=1))
        .next_update(now + 7 * DAY)
        .add_revoked_certificate(entry)
        .sign(kit.pki.intermediate.key, hashes.SHA256())  # type: ignore[arg-type]
    )


class TimestampTests(SynchronousTestCase):
    """A trusted signature timestamp moves the time the signer is judged at; nothing else does."""

    def setUp(self) -> None:
        self.kit = _kit()
        self.now = datetime.datetime.now(datetime.UTC)
        self.tsa = tsa(self.kit.pki.intermediate)
        self.stamp = self.now - 30 * DAY

    def test_expired_now_but_stamped_while_valid_is_legal(self) -> None:
        signed = sign(
            self.kit.unsigned,
            self.kit.pki.expired_agency,
            stamped_by=self.tsa,
            stamped_at=self.stamp,
        )
        verdict = check(signed)
        self.assertIs(verdict.legality, Legality.LEGAL, codes(verdict))
        (sig,) = verdict.signatures
        self.assertIs(sig.timestamp, Timestamp.TRUSTED)
        assert sig.timestamped_at is not None and sig.judged_at is not None
        self.assertLess(abs(sig.timestamped_at - self.stamp), datetime.timedelta(seconds=1))
        self.assertEqual(sig.judged_at, sig.timestamped_at)
        self.assertIs(sig.chain, ChainState.TRUSTED)
        self.assertIn("edXML Test TSA", sig.tsa or "")
        self.assertEqual(codes(verdict), {"PdfJudgedAtTimestamp"})
        finding = verdict.findings[0]
        self.assertIn("trusted timestamp", finding.message_en)
        self.assertIn("dấu thời gian tin cậy", finding.message_vi)
        out = sig.to_json()
        self.assertEqual(out["timestamp"]["state"], "trusted")  # type: ignore[index]

    def test_untrusted_authority_changes_nothing(self) -> None:
        foreign = tsa(self.kit.pki.untrusted_root, "foreign_tsa")
        signed = sign(
            self.kit.unsigned,
            self.kit.pki.expired_agency,
            stamped_by=foreign,
            stamped_at=self.stamp,
        )
        verdict = check(signed)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        (sig,) = verdict.signatures
        self.assertIs(sig.timestamp, Timestamp.UNTRUSTED)
        self.assertIs(sig.chain, ChainState.EXPIRED)
        self.assertLess(abs(sig.judged_at - self.now), datetime.timedelta(seconds=5))  # type: ignore[operator]
        self.assertEqual(codes(verdict), {"PdfTimestampUntrusted", "PdfSignerExpired"})

    def test_stamped_now_is_judged_now(self) -> None:
        signed = sign(self.kit.unsigned, self.kit.pki.agency_h23, stamped_by=self.tsa)
        verdict = check(signed)
        self.assertIs(verdict.legality, Legality.LEGAL)
        self.assertIs(verdict.signatures[0].timestamp, Timestamp.TRUSTED)

    def test_revoked_after_the_stamp_still_counts(self) -> None:
        signer = _issued(self.kit, "stamped_then_revoked", self.now - 90 * DAY, self.now + 90 * DAY)
        signed = sign(self.kit.unsigned, signer, stamped_by=self.tsa, stamped_at=self.stamp)
        later = pdfsig.validate_pdf(
            signed,
            trust=self.kit.pki.trust(),
            crls=[_crl_listing(self.kit, signer.cert, self.now - DAY)],
            now=self.now,
            sender_organ_id=ORGAN_ID_H23,
        )
        self.assertIs(later.signatures[0].revocation, Revocation.GOOD)
        self.assertIs(later.legality, Legality.LEGAL)
        before = pdfsig.validate_pdf(
            signed,
            trust=self.kit.pki.trust(),
            crls=[_crl_listing(self.kit, signer.cert, self.stamp - DAY)],
            now=self.now,
            sender_organ_id=ORGAN_ID_H23,
        )
        self.assertIs(before.signatures[0].revocation, Revocation.REVOKED)
        self.assertIs(before.legality, Legality.REFERENCE_ONLY)

    def test_without_a_stamp_a_revocation_counts(self) -> None:
        signer = _issued(self.kit, "revoked_unstamped", self.now - 90 * DAY, self.now + 90 * DAY)
        signed = sign(self.kit.unsigned, signer)
        verdict = pdfsig.validate_pdf(
            signed,
            trust=self.kit.pki.trust(),
            crls=[_crl_listing(self.kit, signer.cert, self.now - DAY)],
            now=self.now,
            sender_organ_id=ORGAN_ID_H23,
        )
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        self.assertIs(verdict.signatures[0].timestamp, Timestamp.NONE)


class OcspTests(SynchronousTestCase):
    URL = "http://ocsp.test.invalid/pdf"

    def setUp(self) -> None:
        self.kit = _kit()
        self.now = datetime.datetime.now(datetime.UTC)
        self.ca = self.kit.pki.intermediate
        self.signer = with_ocsp("pdf_ocsp", self.kit.pki.agency_h23.cert.subject, self.ca, self.URL)
        self.signed = sign(self.kit.unsigned, self.signer)
        self.query = OcspQuery(self.signer.cert, self.ca.cert)

    def validate(self, *answers: OcspAnswer, data: bytes | None = None) -> PdfVerdict:
        return pdfsig.validate_pdf(
            data or self.signed,
            trust=self.kit.pki.trust(),
            ocsp=answers,
            now=self.now,
            sender_organ_id=ORGAN_ID_H23,
        )

    def test_first_pass_wants_the_signer(self) -> None:
        (sig,) = self.validate().signatures
        self.assertIs(sig.revocation, Revocation.UNKNOWN)
        self.assertEqual([q.cert for q in sig.ocsp_wanted], [self.signer.cert])

    def test_good_answer(self) -> None:
        good = OcspAnswer.received(
            self.query, self.URL, answer(self.signer.cert, self.ca), self.now
        )
        verdict = self.validate(good)
        (sig,) = verdict.signatures
        self.assertIs(sig.revocation, Revocation.GOOD)
        self.assertEqual(sig.revocation_sources, ("ocsp",))
        self.assertEqual(sig.ocsp_wanted, ())
        self.assertEqual(verdict.findings, ())

    def test_revoked_answer(self) -> None:
        entry = Entry(x509_ocsp.OCSPCertStatus.REVOKED, self.now - HOUR)
        revoked = OcspAnswer.received(
            self.query, self.URL, answer(self.signer.cert, self.ca, entry), self.now
        )
        verdict = self.validate(revoked)
        self.assertIs(verdict.legality, Legality.REFERENCE_ONLY)
        self.assertEqual(codes(verdict), {"PdfSignerRevoked"})

    def test_unusable_answer_is_reported(self) -> None:
        failed = OcspAnswer.failed(
            self.query, self.URL, Problem("timed out", "hết thời gian chờ"), self.now
        )
        verdict = self.validate(failed)
        self.assertIs(verdict.legality, Legality.LEGAL)
        self.assertEqual(codes(verdict), {"PdfRevocationUnknown", "OcspUnavailable"})
        self.assertEqual(verdict.signatures[0].ocsp_wanted, ())

    def test_untrusted_signer_wants_nothing(self) -> None:
        impostor = with_ocsp(
            "pdf_impostor",
            self.kit.pki.agency_h23.cert.subject,
            self.kit.pki.untrusted_root,
            self.URL,
        )
        (sig,) = self.validate(data=sign(self.kit.unsigned, impostor)).signatures
        self.assertEqual(sig.ocsp_wanted, ())
