"""OCSP without I/O (edxml.ocsp) and revocation from OCSP answers beside CRLs (edxml.revocation),
down to the envelope verdict and the report's queries."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp as x509_ocsp
from ocspkit import HOUR, Entry, answer, delegate, unsuccessful, with_ocsp
from pki import ORGAN_ID_H23, make_pki
from test_certificates import fresh_seal, make_crl
from test_signature import envelope

from twisted.trial.unittest import SynchronousTestCase

from edxml import check, signature
from edxml.certificates import Problem, Trust
from edxml.ocsp import OcspAnswer, OcspQuery, OcspState, cert_key, judge, ocsp_urls, valid_until
from edxml.revocation import RevocationState, Source, revocation
from gateway.devpki import CA_USAGE, issue

URL = "http://ocsp.test.invalid/ocsp"
NOW = datetime.datetime.now(datetime.UTC)


def got(query: OcspQuery, der: bytes, url: str = URL) -> OcspAnswer:
    return OcspAnswer.received(query, url, der, NOW)


class QueryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.leaf = with_ocsp("leaf", self.pki.agency_h23.cert.subject, self.pki.intermediate, URL)

    def test_urls_from_authority_information_access(self) -> None:
        self.assertEqual(ocsp_urls(self.leaf.cert), (URL,))
        self.assertEqual(ocsp_urls(self.pki.agency_h23.cert), ())

    def test_request_names_the_certificate(self) -> None:
        query = OcspQuery(self.leaf.cert, self.pki.intermediate.cert)
        request = x509_ocsp.load_der_ocsp_request(query.request())
        self.assertEqual(request.serial_number, self.leaf.cert.serial_number)
        self.assertIsInstance(request.hash_algorithm, hashes.SHA1)
        self.assertEqual(request.issuer_key_hash, query.key.issuer_key_sha1)
        self.assertEqual(query.urls, (URL,))

    def test_key_hash_is_the_subject_key_identifier_method(self) -> None:
        # RFC 5280's method 1 key identifier is the same SHA-1 over the key's bits.
        ski = x509.SubjectKeyIdentifier.from_public_key(self.pki.intermediate.cert.public_key())
        key = cert_key(self.leaf.cert, self.pki.intermediate.cert)
        self.assertEqual(key.issuer_key_sha1, ski.digest)


class JudgeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.ca = self.pki.intermediate
        self.leaf = fresh_seal(self.pki)
        self.query = OcspQuery(self.leaf.cert, self.ca.cert)

    def judged(self, der: bytes, **kwargs: object) -> OcspState:
        status = judge(got(self.query, der), self.leaf.cert, self.ca.cert, NOW, **kwargs)  # type: ignore[arg-type]
        self.last = status
        return status.state

    def assertUnusable(self, der: bytes, en: str, vi: str) -> None:
        self.assertIs(self.judged(der), OcspState.UNUSABLE)
        problem = self.last.problem
        assert problem is not None
        self.assertIn(en, problem.en)
        self.assertIn(vi, problem.vi)
        self.assertIn(URL, problem.en)

    def test_good(self) -> None:
        self.assertIs(self.judged(answer(self.leaf.cert, self.ca)), OcspState.GOOD)
        self.assertIsNone(self.last.problem)
        assert self.last.next_update is not None
        self.assertGreater(self.last.next_update, NOW)

    def test_revoked_with_time_and_reason(self) -> None:
        at = NOW - 3 * HOUR
        entry = Entry(x509_ocsp.OCSPCertStatus.REVOKED, at, x509.ReasonFlags.key_compromise)
        self.assertIs(self.judged(answer(self.leaf.cert, self.ca, entry)), OcspState.REVOKED)
        self.assertEqual(self.last.revoked_at, at.replace(microsecond=0))
        self.assertEqual(self.last.reason, "keyCompromise")

    def test_unknown(self) -> None:
        entry = Entry(x509_ocsp.OCSPCertStatus.UNKNOWN)
        self.assertIs(self.judged(answer(self.leaf.cert, self.ca, entry)), OcspState.UNKNOWN)
        assert self.last.problem is not None
        self.assertIn("does not know", self.last.problem.en)

    def test_delegated_responder(self) -> None:
        responder = delegate(self.ca)
        der = answer(self.leaf.cert, self.ca, signer=responder)
        self.assertIs(self.judged(der), OcspState.GOOD)
        by_hash = answer(self.leaf.cert, self.ca, signer=responder, by_hash=True)
        self.assertIs(self.judged(by_hash), OcspState.GOOD)

    def test_delegate_without_ocsp_signing_purpose(self) -> None:
        der = answer(self.leaf.cert, self.ca, signer=delegate(self.ca, ocsp_signing=False))
        self.assertUnusable(der, "not for OCSP signing", "không có mục đích ký OCSP")

    def test_delegate_of_another_ca(self) -> None:
        der = answer(self.leaf.cert, self.ca, signer=delegate(self.pki.untrusted_root))
        self.assertUnusable(der, "not issued by the certificate's CA", "không do đơn vị cấp")

    def test_forged_in_the_cas_name(self) -> None:
        # A self-made CA under the real one's name signs "good" about the real one's certificate.
        fake = issue(
            "fake_ca",
            self.ca.cert.subject,
            issuer=None,
            not_before=NOW - DAYS,
            not_after=NOW + DAYS,
            ca=True,
            usage=CA_USAGE,
        )
        forged = answer(self.leaf.cert, self.ca, signer_as_issuer=fake)
        self.assertUnusable(forged, "does not verify", "không hợp lệ")

    def test_signed_by_another_subscriber_of_the_ca(self) -> None:
        # An agency seal of the same CA is no responder.
        other = answer(self.leaf.cert, self.ca, signer=self.pki.agency_g22)
        self.assertUnusable(other, "not for OCSP signing", "không có mục đích ký OCSP")

    def test_bad_signature(self) -> None:
        der = bytearray(answer(self.leaf.cert, self.ca))
        der[-5] ^= 0x01  # inside the signature value, the last field
        self.assertUnusable(bytes(der), "does not verify", "không hợp lệ")

    def test_about_another_certificate(self) -> None:
        der = answer(self.pki.agency_g22.cert, self.ca)
        self.assertUnusable(der, "another certificate", "chứng thư số khác")

    def test_sha256_cert_id(self) -> None:
        der = answer(self.leaf.cert, self.ca, algorithm=hashes.SHA256())
        self.assertIs(self.judged(der), OcspState.GOOD)

    def test_stale_and_future_and_max_age(self) -> None:
        old = answer(
            self.leaf.cert,
            self.ca,
            this_update=NOW - 5 * HOUR,
            next_update=NOW - 2 * HOUR,
        )
        self.assertUnusable(old, "out of date", "hết hạn")
        future = answer(self.leaf.cert, self.ca, this_update=NOW + 2 * HOUR)
        self.assertUnusable(future, "in the future", "tương lai")
        open_ended = answer(self.leaf.cert, self.ca, this_update=NOW - 2 * HOUR, next_update=None)
        self.assertIs(self.judged(open_ended), OcspState.GOOD)
        self.assertIs(
            self.judged(open_ended, max_age=datetime.timedelta(hours=1)), OcspState.UNUSABLE
        )

    def test_unsuccessful_and_garbage_and_no_answer(self) -> None:
        self.assertUnusable(unsuccessful(), "answered try_later", "trả lời lỗi")
        self.assertUnusable(b"garbage", "not an OCSP response", "không phải phản hồi OCSP")
        failure = OcspAnswer.failed(
            self.query, URL, Problem("unreachable (timeout)", "không kết nối được"), NOW
        )
        status = judge(failure, self.leaf.cert, self.ca.cert, NOW)
        self.assertIs(status.state, OcspState.UNUSABLE)
        assert status.problem is not None
        self.assertIn("unreachable (timeout)", status.problem.en)

    def test_valid_until(self) -> None:
        good = got(self.query, answer(self.leaf.cert, self.ca))
        self.assertGreater(valid_until(good), NOW)
        failed = OcspAnswer.failed(self.query, URL, Problem("x", "x"), NOW)
        self.assertEqual(valid_until(failed), NOW)
        open_ended = got(self.query, answer(self.leaf.cert, self.ca, next_update=None))
        self.assertEqual(valid_until(open_ended, datetime.timedelta(hours=3)), NOW + 3 * HOUR)

    def test_naive_now_is_a_caller_bug(self) -> None:
        with self.assertRaises(ValueError):
            judge(got(self.query, b""), self.leaf.cert, self.ca.cert, datetime.datetime(2025, 1, 1))


class RevocationWithOcspTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.ca = self.pki.intermediate
        self.leaf = with_ocsp("leaf", self.pki.agency_h23.cert.subject, self.ca, URL)
        self.chain = (self.leaf.cert, self.ca.cert, self.pki.root.cert)
        self.root_crl = make_crl(self.pki.root)
        self.query = OcspQuery(self.leaf.cert, self.ca.cert)

    def test_an_answer_covers_the_signer(self) -> None:
        good = got(self.query, answer(self.leaf.cert, self.ca))
        result = revocation(self.chain, [self.root_crl], NOW, ocsp=[good])
        self.assertIs(result.state, RevocationState.GOOD)
        self.assertEqual(set(result.sources), {Source.CRL, Source.OCSP})
        self.assertEqual(result.wanted, ())

    def test_uncovered_signer_with_a_responder_is_wanted(self) -> None:
        result = revocation(self.chain, [self.root_crl], NOW)
        self.assertIs(result.state, RevocationState.UNKNOWN)
        self.assertEqual([q.cert for q in result.wanted], [self.leaf.cert])
        # A CRL covering it settles it: nothing to ask.
        crl = make_crl(self.ca)
        self.assertEqual(revocation(self.chain, [crl, self.root_crl], NOW).wanted, ())
        # Without a responder in the certificate there is nobody to ask.
        plain = fresh_seal(self.pki)
        chain = (plain.cert, self.ca.cert, self.pki.root.cert)
        self.assertEqual(revocation(chain, [self.root_crl], NOW).wanted, ())

    def test_asked_and_unusable_is_reported_not_wanted_again(self) -> None:
        failed = OcspAnswer.failed(self.query, URL, Problem("timed out", "hết thời gian"), NOW)
        result = revocation(self.chain, [self.root_crl], NOW, ocsp=[failed])
        self.assertIs(result.state, RevocationState.UNKNOWN)
        self.assertEqual(result.wanted, ())
        self.assertEqual(len(result.ocsp_problems), 1)
        self.assertIn("timed out", result.ocsp_problems[0].en)

    def test_revoked_by_ocsp(self) -> None:
        entry = Entry(x509_ocsp.OCSPCertStatus.REVOKED, NOW - 2 * HOUR)
        revoked = got(self.query, answer(self.leaf.cert, self.ca, entry))
        result = revocation(self.chain, [self.root_crl], NOW, ocsp=[revoked])
        self.assertIs(result.state, RevocationState.REVOKED)
        self.assertEqual(result.revoked_cert, self.leaf.cert)
        self.assertIsNone(result.revoked_by)

    def test_either_source_revoking_wins(self) -> None:
        good = got(self.query, answer(self.leaf.cert, self.ca))
        listed = make_crl(self.ca, (self.leaf.cert,))
        result = revocation(self.chain, [listed, self.root_crl], NOW, ocsp=[good])
        self.assertIs(result.state, RevocationState.REVOKED)

    def test_an_answer_for_another_pair_does_not_count(self) -> None:
        other = fresh_seal(self.pki)
        about_other = got(OcspQuery(other.cert, self.ca.cert), answer(other.cert, self.ca))
        result = revocation(self.chain, [self.root_crl], NOW, ocsp=[about_other])
        self.assertIs(result.state, RevocationState.UNKNOWN)

    def test_revocation_after_the_signing_time(self) -> None:
        signed = NOW - 10 * DAYS
        entry = Entry(x509_ocsp.OCSPCertStatus.REVOKED, NOW - 2 * HOUR)
        revoked = got(self.query, answer(self.leaf.cert, self.ca, entry))
        later = revocation(self.chain, [self.root_crl], NOW, ocsp=[revoked], at=signed)
        self.assertIs(later.state, RevocationState.GOOD)
        listed = make_crl(self.ca, (self.leaf.cert,))
        by_crl = revocation(self.chain, [listed, self.root_crl], NOW, at=signed)
        self.assertIs(by_crl.state, RevocationState.GOOD)

    def test_invalidity_date_before_the_signing_time(self) -> None:
        signed = NOW - 10 * DAYS
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(self.leaf.cert.serial_number)
            .revocation_date(NOW - HOUR)
            .add_extension(x509.InvalidityDate(NOW - 20 * DAYS), critical=False)
            .build()
        )
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca.cert.subject)
            .last_update(NOW - HOUR)
            .next_update(NOW + DAYS)
            .add_revoked_certificate(entry)
            .sign(self.ca.key, hashes.SHA256())  # type: ignore[arg-type]
        )
        result = revocation(self.chain, [crl, self.root_crl], NOW, at=signed)
        self.assertIs(result.state, RevocationState.REVOKED)


DAYS = datetime.timedelta(days=1)


class EnvelopeVerdictTests(SynchronousTestCase):
    """The whole way through signature.verify and check.examine."""

    def setUp(self) -> None:
        self.pki = make_pki()
        self.ca = self.pki.intermediate
        self.seal = with_ocsp("seal", self.pki.agency_h23.cert.subject, self.ca, URL)
        self.data = signature.sign(envelope(), self.seal.key, list(self.seal.chain))
        self.trust = Trust(roots=[self.pki.root.cert])
        self.root_crl = make_crl(self.pki.root)
        self.query = OcspQuery(self.seal.cert, self.ca.cert)

    def test_first_pass_asks_for_the_seal(self) -> None:
        report = check.examine(self.data, trust=self.trust, crls=(self.root_crl,), now=NOW)
        self.assertEqual([q.cert for q in report.ocsp_queries], [self.seal.cert])
        assert report.signature is not None
        self.assertTrue(report.signature.is_valid)
        self.assertFalse(report.signature.revocation_checked)
        self.assertEqual(
            report.signature.signer.organ_id if report.signature.signer else None, ORGAN_ID_H23
        )

    def test_second_pass_with_a_good_answer(self) -> None:
        good = got(self.query, answer(self.seal.cert, self.ca))
        report = check.examine(
            self.data, trust=self.trust, crls=(self.root_crl,), ocsp=(good,), now=NOW
        )
        assert report.signature is not None
        self.assertTrue(report.signature.is_valid)
        self.assertTrue(report.signature.revocation_checked)
        self.assertEqual(set(report.signature.revocation_sources), {"crl", "ocsp"})
        self.assertEqual(report.ocsp_queries, ())
        self.assertNotIn("RevocationNotChecked", {f.code for f in report.findings})
        self.assertEqual(report.to_json()["signature"]["revocation_sources"], ["crl", "ocsp"])

    def test_revoked_answer_refuses(self) -> None:
        entry = Entry(
            x509_ocsp.OCSPCertStatus.REVOKED, NOW - 2 * HOUR, x509.ReasonFlags.key_compromise
        )
        revoked = got(self.query, answer(self.seal.cert, self.ca, entry))
        report = check.examine(self.data, trust=self.trust, ocsp=(revoked,), now=NOW)
        assert report.signature is not None
        self.assertIs(report.signature.state, signature.SignatureState.INVALID)
        self.assertIn("SignerRevoked", {f.code for f in report.findings})
        self.assertFalse(report.acceptable)

    def test_unreachable_responder_is_a_finding(self) -> None:
        failed = OcspAnswer.failed(
            self.query, URL, Problem("connection refused", "bị từ chối kết nối"), NOW
        )
        report = check.examine(self.data, trust=self.trust, ocsp=(failed,), now=NOW)
        assert report.signature is not None
        self.assertTrue(report.signature.is_valid)
        found = [f for f in report.findings if f.code == "OcspUnavailable"]
        self.assertEqual(len(found), 1)
        self.assertIn("connection refused", found[0].message_en)
        self.assertIn("bị từ chối kết nối", found[0].message_vi)
        self.assertEqual(report.ocsp_queries, ())
        self.assertTrue(report.acceptable)

    def test_untrusted_chain_asks_nobody(self) -> None:
        impostor = with_ocsp(
            "impostor", self.pki.agency_h23.cert.subject, self.pki.untrusted_root, URL
        )
        data = signature.sign(envelope(), impostor.key, list(impostor.chain))
        report = check.examine(data, trust=self.trust, now=NOW)
        self.assertEqual(report.ocsp_queries, ())
