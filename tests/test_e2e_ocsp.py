"""Issue #4 across two real nodes: revocation by OCSP, and a PDF's signing time proven by a
trusted timestamp.

Node B holds no CRL: what it knows about revocation comes from the OCSP responder that the
certificates name (tests/ocspkit.Responder, a real HTTP server on loopback answering for the dev
issuing CA). Envelopes are injected into B's exchange face as node A would; PDFs travel through
A's office face. Each gets its verdict and its automatic status: 01, or 02 with the reason.
"""

from __future__ import annotations

import datetime
from typing import ClassVar

import pdfkit
from e2e_kit import H23, NAMES, free_port
from make_sample import minimal_pdf
from ocspkit import Responder, with_ocsp
from test_e2e_trust import TrustNodes

from gateway import devpki
from gateway.soap import FaultCode

HOUR = datetime.timedelta(hours=1)


class OcspEndToEnd(TrustNodes):
    responder: ClassVar[Responder]
    good: ClassVar[devpki.Issued]
    revoked: ClassVar[devpki.Issued]
    dead: ClassVar[devpki.Issued]
    person_revoked: ClassVar[devpki.Issued]
    tsa: ClassVar[devpki.Issued]

    @classmethod
    def prepare(cls) -> None:
        cls.responder = Responder(cls.ca.issuing)
        cls.responder.start()
        h23 = devpki.agency_subject(H23, NAMES[H23])
        url = cls.responder.url
        cls.good = with_ocsp("ocsp_good", h23, cls.ca.issuing, url)
        cls.revoked = with_ocsp("ocsp_revoked", h23, cls.ca.issuing, url)
        cls.dead = with_ocsp("ocsp_dead", h23, cls.ca.issuing, f"http://127.0.0.1:{free_port()}/")
        cls.person_revoked = with_ocsp(
            "ocsp_person", cls.ca.person.cert.subject, cls.ca.issuing, url
        )
        cls.tsa = pdfkit.tsa(cls.ca.issuing)
        cls.responder.know(cls.good.cert)
        cls.responder.revoke(cls.revoked.cert)
        cls.responder.revoke(cls.person_revoked.cert)

    @classmethod
    def _teardown(cls) -> None:
        super()._teardown()
        responder = getattr(cls, "responder", None)
        if responder is not None:
            responder.stop()

    def test_seal_vouched_for_by_ocsp_gets_a_receipt(self) -> None:
        receipt = self.deliver_as_a(self.sealed("911", self.good))
        self.assertFalse(receipt.duplicate)
        sig = self.stored_verdict("911")["signature"]
        self.assertEqual(sig["state"], "valid")
        self.assertEqual(sig["revocation_sources"], ["ocsp"])
        self.assertIn(self.good.cert.serial_number, self.responder.requests)

    def test_seal_revoked_by_ocsp_is_refused_with_02(self) -> None:
        description = self.assertRefusedWith02(
            "912", self.sealed("912", self.revoked), FaultCode.UNTRUSTED_SIGNER
        )
        self.assertIn("thu hồi", description)
        self.assertIn("revoked", description)

    def test_responder_down_is_accepted_with_a_finding(self) -> None:
        receipt = self.deliver_as_a(self.sealed("913", self.dead))
        self.assertFalse(receipt.duplicate)
        codes = [f["code"] for f in self.stored_verdict("913")["findings"]]
        self.assertIn("OcspUnavailable", codes)

    def test_pdf_signer_revoked_by_ocsp_is_reference_only(self) -> None:
        pdf = pdfkit.sign(minimal_pdf(pdfkit.LINES), self.person_revoked)
        doc = self.assertAccepted("811", pdf, "invalid")
        self.assertIn("PdfSignerRevoked", doc.Verdict.FindingCode)

    def test_pdf_of_an_expired_seal_stamped_while_valid_is_valid(self) -> None:
        # The dev CA exists since a day before `gateway init`: the seal lived inside that day.
        now = datetime.datetime.now(datetime.UTC)
        expired = devpki.issue(
            "expired_stamped",
            devpki.agency_subject(H23, NAMES[H23]),
            issuer=self.ca.issuing,
            not_before=now - 20 * HOUR,
            not_after=now - HOUR,
            extended=devpki.SIGNER_EKU,
        )
        pdf = pdfkit.sign(
            minimal_pdf(pdfkit.LINES), expired, stamped_by=self.tsa, stamped_at=now - 10 * HOUR
        )
        doc = self.assertAccepted("812", pdf, "valid")
        self.assertIn("PdfJudgedAtTimestamp", doc.Verdict.FindingCode)
        self.assertNotIn("PdfSignerExpired", doc.Verdict.FindingCode)
