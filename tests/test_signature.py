"""XML signatures of edXML packets: sign, verify against explicit trust, refuse wrapping attacks."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from twisted.trial.unittest import SynchronousTestCase

from edxml import signature as sig
from edxml.codes import DSIG_NS, NS
from edxml.errors import HostileXML, NotEdxml
from edxml.findings import Fault, Severity, registry
from edxml.signature import SignatureState, Trust, WeakPolicy
from gateway import devpki

try:
    from tests.pki import PKIEntry, make_pki
    from tests.test_certificates import SIGNING, fresh_seal, issue, make_crl
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from pki import PKIEntry, make_pki  # type: ignore[no-redef, import-not-found]
    from test_certificates import (  # type: ignore[no-redef, import-not-found]
        SIGNING,
        fresh_seal,
        issue,
        make_crl,
    )

E = f"{{{NS}}}"
DS = f"{{{DSIG_NS}}}"
HEADER = f"{E}edXMLEnvelope/{E}edXMLHeader"
_HERE = Path(__file__).parent
REALWORLD = _HERE / "fixtures" / "realworld"  # kept byte for byte by the reader tests
PLACEHOLDER = f'<ds:Signature xmlns:ds="{DSIG_NS}" Id="placeholder"/>'
EMPTY_SLOT = "<edXML:DigitalSignature/>"
ATTACHMENT = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def envelope(
    *,
    subject: str = "V/v báo cáo tình hình thực hiện nhiệm vụ quý I năm 2025",
    slot: str = EMPTY_SLOT,
    attachment: bytes = ATTACHMENT,
    header_id: str | None = None,
    extra_header: str = "",
) -> bytes:
    """A small realistic envelope (standards.md §2.11), written by hand."""
    encoded = base64.encodebytes(attachment).decode("ascii")
    hid = f' Id="{header_id}"' if header_id else ""
    subject = subject.replace("&", "&amp;").replace("<", "&lt;")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<edXML xmlns="{NS}">
 <edXML:edXMLEnvelope xmlns:edXML="{NS}">
  <edXML:edXMLHeader>
   <edXML:MessageHeader{hid}>
    <edXML:From><edXML:OrganId>000.00.00.H23</edXML:OrganId>
      <edXML:OrganizationInCharge>UBND tỉnh Hà Nam</edXML:OrganizationInCharge>
      <edXML:OrganName>UBND tỉnh Hà Nam</edXML:OrganName></edXML:From>
    <edXML:To><edXML:OrganId>000.00.00.G22</edXML:OrganId>
      <edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:To>
    <edXML:Code><edXML:CodeNumber>123</edXML:CodeNumber><edXML:CodeNotation>UBND-VP</edXML:CodeNotation></edXML:Code>
    <edXML:PromulgationInfo><edXML:Place>Hà Nam</edXML:Place>
      <edXML:PromulgationDate>2025/03/05</edXML:PromulgationDate></edXML:PromulgationInfo>
    <edXML:DocumentType><edXML:Type>18</edXML:Type>
      <edXML:TypeName>Công văn</edXML:TypeName></edXML:DocumentType>
    <edXML:Subject>{subject}</edXML:Subject>
    <edXML:Content>{subject}</edXML:Content>
    <edXML:SignerInfo><edXML:Competence>KT. CHỦ TỊCH</edXML:Competence>
      <edXML:Position>PHÓ CHỦ TỊCH</edXML:Position>
      <edXML:FullName>Nguyễn Văn A</edXML:FullName></edXML:SignerInfo>
    <edXML:DueDate>2025/03/12</edXML:DueDate>
    <edXML:ToPlaces><edXML:Place>Văn phòng Chính phủ</edXML:Place></edXML:ToPlaces>
    <edXML:OtherInfo><edXML:Priority>0</edXML:Priority>
      <edXML:SphereOfPromulgation>Liên thông văn bản quốc gia</edXML:SphereOfPromulgation>
      <edXML:TyperNotation>VP</edXML:TyperNotation><edXML:PromulgationAmount>1</edXML:PromulgationAmount>
      <edXML:PageAmount>2</edXML:PageAmount></edXML:OtherInfo>
    <edXML:SteeringType>0</edXML:SteeringType>
    <edXML:DocumentId>000.00.00.H23,2025/03/05,123/UBND-VP</edXML:DocumentId>
   </edXML:MessageHeader>
   <edXML:TraceHeaderList id="9f2c01ab" version="1.0" mustUnderstand="1"
        actor="http://schemas.xmlsoap.org/soap/actor/next">
    <edXML:TraceHeader><edXML:OrganId>000.00.00.H23</edXML:OrganId>
      <edXML:Timestamp>2025/03/05 15:02:11</edXML:Timestamp></edXML:TraceHeader>
    <edXML:Bussiness><edXML:BussinessDocType>0</edXML:BussinessDocType>
      <edXML:BussinessDocReason>Văn bản điện tử mới</edXML:BussinessDocReason>
      <edXML:Paper>0</edXML:Paper></edXML:Bussiness>
   </edXML:TraceHeaderList>{extra_header}
   {slot}
  </edXML:edXMLHeader>
  <edXML:edXMLBody Id="body"><edXML:edXMLManifest version="1.0">
    <edXML:Reference xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:3f0e9a52"
        xlink:role="XLinkRole" xlink:type="simple">
      <edXML:Description>File dinh kem 1</edXML:Description>
      <edXML:AttachmentName>123-UBND-VP.pdf</edXML:AttachmentName>
      <edXML:ContentType>application/pdf</edXML:ContentType><edXML:ContentId>cid:3f0e9a52</edXML:ContentId>
    </edXML:Reference></edXML:edXMLManifest></edXML:edXMLBody>
 </edXML:edXMLEnvelope>
 <AttachmentEncoded><Attachment><ContentType>application/pdf</ContentType><ContentId>3f0e9a52</ContentId>
   <Description>File dinh kem 1</Description>
   <ContentTransferEncoded>{encoded}</ContentTransferEncoded>
   <AttachmentName>123-UBND-VP.pdf</AttachmentName></Attachment></AttachmentEncoded>
</edXML>
""".encode()


class _LegacySigner(XMLSigner):
    """signxml refuses to produce SHA-1; old senders did, so tests must be able to."""

    def check_deprecated_methods(self) -> None:
        pass


def signxml_sign(
    data: bytes,
    entry: PKIEntry,
    *,
    method: SignatureMethod = SignatureMethod.RSA_SHA256,
    digest: DigestAlgorithm = DigestAlgorithm.SHA256,
    reference_uri: Any = None,
    c14n: CanonicalizationMethod = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
) -> bytes:
    """Sign with signxml directly (placeholder in `data`), bypassing edxml.signature.sign."""
    signer = _LegacySigner(signature_algorithm=method, digest_algorithm=digest, c14n_algorithm=c14n)
    assert isinstance(entry.key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    root = etree.fromstring(data)
    signed = signer.sign(root, key=entry.key, cert=list(entry.chain), reference_uri=reference_uri)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def codes(verdict: sig.SignatureVerdict) -> list[str]:
    return [f.code for f in verdict.findings]


class _Base(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.trust = Trust(roots=[self.pki.root.cert])

    def signed(self, entry: PKIEntry | None = None, **kw: Any) -> bytes:
        entry = entry or self.pki.agency_h23
        return sig.sign(envelope(**kw), entry.key, entry.chain)

    def assertRefused(self, verdict: sig.SignatureVerdict, code: str) -> None:
        self.assertIs(verdict.state, SignatureState.INVALID, verdict)
        self.assertIn(code, codes(verdict))
        self.assertFalse(verdict.is_valid)
        self.assertIsNone(verdict.signed_data)


class SignTests(_Base):
    def test_sign_then_verify_exact_bytes(self) -> None:
        data = self.signed()
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertTrue(verdict.is_valid)
        self.assertEqual(verdict.errors, ())
        self.assertTrue(verdict.covers_document)
        self.assertFalse(verdict.revocation_checked)
        self.assertIn("RevocationNotChecked", codes(verdict))
        self.assertEqual(verdict.signature_method, SignatureMethod.RSA_SHA256.value)
        self.assertEqual(verdict.digest_method, DigestAlgorithm.SHA256.value)
        self.assertEqual(
            verdict.c14n_method, CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
        )
        self.assertFalse(verdict.weak)
        self.assertEqual(verdict.certificates, 2)
        self.assertEqual(len(verdict.chain), 3)
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.organ_id, "000.00.00.H23")
        self.assertEqual(verdict.signer.fingerprint_sha256, self.pki.agency_h23.fingerprint)

    def test_signed_data_is_the_document_without_its_signature(self) -> None:
        data = self.signed()
        verdict = sig.verify(data, self.trust)
        assert verdict.signed_data is not None
        signed = etree.fromstring(verdict.signed_data)
        self.assertEqual(signed.findall(f".//{DS}Signature"), [])
        self.assertEqual(
            signed.findtext(f"{HEADER}/{E}MessageHeader/{E}DocumentId"),
            "000.00.00.H23,2025/03/05,123/UBND-VP",
        )
        # The attachment is inside the signed scope.
        encoded = signed.findtext(f"{E}AttachmentEncoded/{E}Attachment/{E}ContentTransferEncoded")
        self.assertEqual(base64.b64decode(encoded or ""), ATTACHMENT)

    def test_output_shape(self) -> None:
        data = self.signed()
        self.assertTrue(data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n'))
        root = tree(data)
        signatures = root.findall(f".//{DS}Signature")
        self.assertEqual(len(signatures), 1)
        header = root.find(HEADER)
        assert header is not None
        self.assertIs(signatures[0].getparent(), header)
        # It took the place of DigitalSignature: right after TraceHeaderList.
        self.assertEqual(
            [etree.QName(c).localname for c in header],
            ["MessageHeader", "TraceHeaderList", "Signature"],
        )
        self.assertEqual(root.findall(f".//{E}DigitalSignature"), [])
        self.assertEqual(len(signatures[0].findall(f".//{DS}X509Certificate")), 2)
        self.assertEqual([r.get("URI") for r in signatures[0].iter(f"{DS}Reference")], [""])
        original = tree(envelope()).findtext(f".//{{{NS}}}ContentTransferEncoded")
        self.assertEqual(root.findtext(f".//{{{NS}}}ContentTransferEncoded"), original)

    def test_appended_when_there_is_no_slot(self) -> None:
        data = self.signed(slot="")
        header = tree(data).find(HEADER)
        assert header is not None
        self.assertEqual(header[-1].tag, f"{DS}Signature")
        self.assertIs(sig.verify(data, self.trust).state, SignatureState.VALID)

    def test_ecdsa_key(self) -> None:
        data = self.signed(self.pki.ec_agency)
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertEqual(verdict.signature_method, SignatureMethod.ECDSA_SHA256.value)

    def test_resigning_is_refused(self) -> None:
        data = self.signed()
        key, chain = self.pki.agency_h23.key, self.pki.agency_h23.chain
        self.assertRaises(sig.AlreadySigned, sig.sign, data, key, chain)
        legacy = (REALWORLD / "edoc_new.edxml").read_bytes()
        self.assertRaises(sig.AlreadySigned, sig.sign, legacy, key, chain)
        self.assertRaises(
            sig.AlreadySigned,
            sig.sign,
            envelope(slot="<edXML:DigitalSignature>x</edXML:DigitalSignature>"),
            key,
            chain,
        )

    def test_not_an_envelope(self) -> None:
        key, chain = self.pki.agency_h23.key, self.pki.agency_h23.chain
        self.assertRaises(NotEdxml, sig.sign, b"<a/>", key, chain)
        self.assertRaises(NotEdxml, sig.sign, f'<edXML xmlns="{NS}"/>'.encode(), key, chain)

    def test_root_with_an_id_is_refused(self) -> None:
        # signxml would sign "#x" (the root by its Id) instead of URI="": not our profile.
        data = envelope().replace(b"<edXML xmlns=", b'<edXML Id="x" xmlns=', 1)
        key, chain = self.pki.agency_h23.key, self.pki.agency_h23.chain
        self.assertRaises(sig.SigningError, sig.sign, data, key, chain)

    def test_key_and_certificate_must_match(self) -> None:
        self.assertRaises(
            ValueError, sig.sign, envelope(), self.pki.agency_g22.key, self.pki.agency_h23.chain
        )
        self.assertRaises(ValueError, sig.sign, envelope(), self.pki.agency_h23.key, ())
        # Keys are objects loaded once by the caller, never PEM parsed on every signature.
        self.assertRaises(
            TypeError, sig.sign, envelope(), self.pki.agency_h23.key_pem, self.pki.agency_h23.chain
        )

    def test_comments_and_pis_inside_the_root_survive_signing(self) -> None:
        data = envelope().replace(
            b"<edXML:edXMLBody", b"<!-- ghi chu --><?audit x?><edXML:edXMLBody"
        )
        signed = sig.sign(data, self.pki.agency_h23.key, self.pki.agency_h23.chain)
        self.assertIn(b"<!-- ghi chu -->", signed)
        verdict = sig.verify(signed, self.trust)
        self.assertIs(verdict.state, SignatureState.VALID)
        assert verdict.signed_data is not None
        # C14N without comments drops the comment but covers the processing instruction.
        self.assertNotIn(b"ghi chu", verdict.signed_data)
        self.assertIn(b"<?audit x?>", verdict.signed_data)
        tampered = signed.replace(b"<?audit x?>", b"<?audit y?>")
        self.assertIs(sig.verify(tampered, self.trust).state, SignatureState.INVALID)

    def test_comment_added_after_signing_is_not_signed_content(self) -> None:
        data = self.signed().replace(b"<edXML:Subject>", b"<!-- injected --><edXML:Subject>")
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.VALID)
        assert verdict.signed_data is not None
        self.assertNotIn(b"injected", verdict.signed_data)

    def test_pretty_printing_breaks_the_signature(self) -> None:
        data = self.signed()
        reparsed = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
        for rewritten in (
            etree.tostring(reparsed, pretty_print=True, xml_declaration=True, encoding="UTF-8"),
            etree.tostring(reparsed, xml_declaration=True, encoding="UTF-8"),
        ):
            self.assertRefused(sig.verify(rewritten, self.trust), "SignatureInvalid")

    def test_reencoding_is_harmless(self) -> None:
        # C14N works on characters, not bytes: a UTF-16 copy still verifies.
        data = self.signed()
        utf16 = etree.tostring(tree(data), xml_declaration=True, encoding="UTF-16")
        self.assertIs(sig.verify(utf16, self.trust).state, SignatureState.VALID)


class TamperTests(_Base):
    def test_text_node_changed(self) -> None:
        data = self.signed()
        tampered = data.replace(b"<edXML:CodeNumber>123<", b"<edXML:CodeNumber>124<")
        self.assertNotEqual(data, tampered)
        verdict = sig.verify(tampered, self.trust)
        self.assertRefused(verdict, "SignatureInvalid")
        finding = verdict.errors[0]
        self.assertEqual(finding.fault, Fault.SIGNATURE_INVALID)
        self.assertIn("Digest mismatch", finding.message_en)

    def test_attachment_base64_changed(self) -> None:
        data = self.signed()
        root = tree(data)
        element = root.find(f".//{{{NS}}}ContentTransferEncoded")
        assert element is not None and element.text is not None
        text = element.text
        swapped = "B" if text[20] != "B" else "C"
        element.text = text[:20] + swapped + text[21:]
        tampered = data.replace(text.encode(), element.text.encode())
        self.assertNotEqual(data, tampered)
        self.assertRefused(sig.verify(tampered, self.trust), "SignatureInvalid")

    def test_attribute_changed(self) -> None:
        tampered = self.signed().replace(b'id="9f2c01ab"', b'id="9f2c01ac"')
        self.assertRefused(sig.verify(tampered, self.trust), "SignatureInvalid")

    def test_signature_value_changed(self) -> None:
        root = tree(self.signed())
        value = root.find(f".//{DS}SignatureValue")
        assert value is not None and value.text
        raw = bytearray(base64.b64decode(value.text))
        raw[7] ^= 1
        value.text = base64.b64encode(bytes(raw)).decode()
        verdict = sig.verify(serialise(root), self.trust)
        self.assertRefused(verdict, "SignatureInvalid")

    @settings(max_examples=15, deadline=None)
    @given(
        subject=st.text(
            st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")),
            min_size=1,
            max_size=40,
        ),
        extra=st.sampled_from(["x", " ", "ạ", "0"]),
    )
    def test_any_subject_signs_and_any_change_is_caught(self, subject: str, extra: str) -> None:
        pki = make_pki()
        trust = Trust(roots=[pki.root.cert])
        data = sig.sign(envelope(subject=subject), pki.agency_h23.key, pki.agency_h23.chain)
        self.assertIs(sig.verify(data, trust).state, SignatureState.VALID)
        root = tree(data)
        node = root.find(f"{HEADER}/{E}MessageHeader/{E}Subject")
        assert node is not None
        node.text = (node.text or "") + extra
        verdict = sig.verify(serialise(root), trust)
        self.assertIs(verdict.state, SignatureState.INVALID)


class TrustTests(_Base):
    def test_wrong_trust_anchor(self) -> None:
        verdict = sig.verify(self.signed(), Trust(roots=[self.pki.untrusted_root.cert]))
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertEqual([f.code for f in verdict.errors], ["SignerUntrusted"])
        self.assertEqual(verdict.errors[0].fault, Fault.UNTRUSTED_SIGNER)
        self.assertIn("no chain to a trusted root", verdict.reason)
        # Integrity was fine: the signed bytes are still reported, trust is what failed.
        self.assertIsNotNone(verdict.signed_data)

    def test_impostor_with_the_same_names(self) -> None:
        verdict = sig.verify(self.signed(self.pki.untrusted_agency), self.trust)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertIn("SignerUntrusted", codes(verdict))
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.organ_id, "000.00.00.H23")  # claims are not trust

    def test_expired_signer(self) -> None:
        data = self.signed(self.pki.expired_agency)
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertIn("SignerUntrusted", codes(verdict))
        self.assertIn("expired", verdict.reason)
        month_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        self.assertIs(sig.verify(data, self.trust, now=month_ago).state, SignatureState.VALID)

    def test_not_yet_valid(self) -> None:
        long_ago = self.pki.agency_h23.cert.not_valid_before_utc - datetime.timedelta(days=1)
        verdict = sig.verify(self.signed(), self.trust, now=long_ago)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertIn("not valid before", verdict.reason)

    def test_naive_now_is_refused(self) -> None:
        self.assertRaises(
            ValueError, sig.verify, self.signed(), self.trust, now=datetime.datetime(2025, 1, 1)
        )

    def test_missing_digital_signature_usage(self) -> None:
        verdict = sig.verify(self.signed(self.pki.no_signing_usage), self.trust)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertIn("SignerUntrusted", codes(verdict))
        self.assertIn("digitalSignature", verdict.reason)

    def test_legacy_root_without_key_usage(self) -> None:
        data = self.signed(self.pki.legacy_agency)
        verdict = sig.verify(data, Trust(roots=[self.pki.legacy_root.cert]))
        self.assertIs(verdict.state, SignatureState.VALID, verdict)

    def test_intermediate_from_trust_when_keyinfo_has_only_the_leaf(self) -> None:
        entry = self.pki.agency_h23
        data = sig.sign(envelope(), entry.key, [entry.cert])
        self.assertEqual(sig.verify(data, self.trust).state, SignatureState.INVALID)
        with_intermediate = Trust(
            roots=[self.pki.root.cert], intermediates=[self.pki.intermediate.cert]
        )
        verdict = sig.verify(data, with_intermediate)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertEqual(verdict.certificates, 1)

    def test_keyinfo_order_does_not_matter(self) -> None:
        entry = self.pki.agency_h23
        data = sig.sign(envelope(), entry.key, entry.chain)
        root = tree(data)
        x509_data = root.find(f".//{DS}X509Data")
        assert x509_data is not None
        x509_data[:] = list(reversed(list(x509_data)))
        verdict = sig.verify(serialise(root), self.trust)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.fingerprint_sha256, entry.fingerprint)

    def test_end_entity_cannot_issue(self) -> None:
        # A seal certificate (CA=false) used to issue a "signer" must not make a chain.
        now = datetime.datetime.now(datetime.UTC)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuer = self.pki.agency_h23
        cert = issue("Kẻ mạo danh", key, issuer, ca=False, usage=SIGNING, now=now)
        data = sig.sign(envelope(), key, [cert, *issuer.chain])
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertIn("SignerUntrusted", codes(verdict))

    def test_issuer_without_cert_sign_usage(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca = issue(
            "CA chỉ được ký số",
            ca_key,
            self.pki.intermediate,
            ca=True,
            usage=x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            now=now,
        )
        ca_entry = PKIEntry(name="bad_ca", key=ca_key, cert=ca, chain=(ca,))
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        leaf = issue("Người ký", leaf_key, ca_entry, ca=False, usage=SIGNING, now=now)
        data = sig.sign(envelope(), leaf_key, [leaf, ca, self.pki.intermediate.cert])
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertIn("SignerUntrusted", codes(verdict))

    def test_short_rsa_key_is_weak(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        cert = issue("Khóa ngắn", key, self.pki.intermediate, ca=False, usage=SIGNING, now=now)
        data = sig.sign(envelope(), key, [cert, self.pki.intermediate.cert])
        warned = sig.verify(data, self.trust)
        self.assertIs(warned.state, SignatureState.VALID)
        self.assertTrue(warned.weak)
        self.assertIn("RSA-1024", str(warned.findings))
        refused = sig.verify(data, self.trust, weak=WeakPolicy.REJECT)
        self.assertIs(refused.state, SignatureState.INVALID)

    def test_trust_from_pem(self) -> None:
        trust = Trust.from_pem(self.pki.root.cert_pem, self.pki.intermediate.cert_pem)
        self.assertEqual(trust.roots, (self.pki.root.cert,))
        self.assertEqual(trust.intermediates, (self.pki.intermediate.cert,))
        self.assertIs(sig.verify(self.signed(), trust).state, SignatureState.VALID)

    def test_trust_from_a_mixed_bundle(self) -> None:
        bundle = self.pki.intermediate.cert_pem + self.pki.root.cert_pem
        trust = Trust.from_pem_bundle(bundle, self.pki.legacy_root.cert_pem)
        self.assertEqual(trust.roots, (self.pki.root.cert, self.pki.legacy_root.cert))
        self.assertEqual(trust.intermediates, (self.pki.intermediate.cert,))
        only_intermediate = Trust.from_pem_bundle(self.pki.intermediate.cert_pem)
        self.assertEqual(only_intermediate.roots, ())
        verdict = sig.verify(self.signed(), only_intermediate)
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)

    def test_verdict_to_json(self) -> None:
        verdict = sig.verify(self.signed(), self.trust)
        out = json.loads(json.dumps(verdict.to_json(), ensure_ascii=False))
        self.assertEqual(out["state"], "valid")
        self.assertEqual(out["signer"]["organ_id"], "000.00.00.H23")
        self.assertEqual(out["signer"]["common_name"], "UBND tỉnh Hà Nam")
        self.assertEqual(out["findings"][0]["code"], "RevocationNotChecked")
        self.assertNotIn("signed_data", out)
        self.assertIsNone(sig.verify(envelope(), self.trust).to_json()["signer"])

    def test_pki_shorthands(self) -> None:
        self.assertIs(self.pki.seal_key(), self.pki.agency_h23.key)
        data = sig.sign(envelope(), self.pki.seal_key(), self.pki.seal_chain())
        self.assertIs(sig.verify(data, self.pki.trust()).state, SignatureState.VALID)

    def test_trust_must_be_explicit(self) -> None:
        self.assertRaises(TypeError, sig.verify, self.signed(), [self.pki.root.cert])
        self.assertRaises(TypeError, Trust, roots=[self.pki.root.cert_pem])
        verdict = sig.verify(self.signed(), Trust(roots=()))
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)
        self.assertTrue(verdict.reason.startswith("no trust anchors"))


class WeakAlgorithmTests(_Base):
    def sha1_signed(self) -> bytes:
        return signxml_sign(
            envelope(slot=PLACEHOLDER),
            self.pki.agency_h23,
            method=SignatureMethod.RSA_SHA1,
            digest=DigestAlgorithm.SHA1,
        )

    def test_sha1_warns_under_warn(self) -> None:
        verdict = sig.verify(self.sha1_signed(), self.trust, weak=WeakPolicy.WARN)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertTrue(verdict.weak)
        weak = [f for f in verdict.findings if f.code == "SignatureWeakAlgorithm"]
        self.assertEqual(len(weak), 2)  # the signature method and the digest
        self.assertEqual({f.severity for f in weak}, {Severity.WARNING})
        self.assertEqual(verdict.signature_method, SignatureMethod.RSA_SHA1.value)

    def test_sha1_rejected_under_reject(self) -> None:
        verdict = sig.verify(self.sha1_signed(), self.trust, weak=WeakPolicy.REJECT)
        self.assertIs(verdict.state, SignatureState.INVALID)
        self.assertEqual(set(codes(verdict)), {"SignatureWeakAlgorithm"})
        self.assertIn("weak algorithm", verdict.reason)
        weak = [f for f in verdict.findings if f.code == "SignatureWeakAlgorithm"]
        self.assertEqual({f.severity for f in weak}, {Severity.ERROR})
        self.assertTrue(all(f.fault is Fault.SIGNATURE_INVALID for f in weak))

    def test_sha1_tampered_is_still_caught(self) -> None:
        tampered = self.sha1_signed().replace(b">123<", b">124<")
        self.assertRefused(sig.verify(tampered, self.trust), "SignatureInvalid")


class DescribeTests(_Base):
    def test_describe_intact(self) -> None:
        verdict = sig.describe(self.signed(self.pki.person))
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)
        self.assertTrue(verdict.reason.startswith("no trust anchors"))
        self.assertIn("SignatureTrustNotConfigured", codes(verdict))
        self.assertEqual(verdict.certificates, 2)
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.common_name, "Nguyễn Văn A")
        self.assertEqual(verdict.signer.organ_id, "000.00.00.H23")
        self.assertEqual(verdict.signature_method, SignatureMethod.RSA_SHA256.value)

    def test_describe_expired_is_not_judged_on_time(self) -> None:
        verdict = sig.describe(self.signed(self.pki.expired_agency))
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)

    def test_describe_tampered(self) -> None:
        tampered = self.signed().replace(b">123<", b">124<")
        self.assertIs(sig.describe(tampered).state, SignatureState.INVALID)

    def test_describe_unsigned(self) -> None:
        self.assertIs(sig.describe(envelope()).state, SignatureState.ABSENT)


class CertificateTests(_Base):
    def test_truncated_certificate_in_xmldsig_signature(self) -> None:
        for index in (0, 1):  # the signer's own certificate, then the intermediate
            root = tree(self.signed())
            certificates = root.findall(f".//{DS}X509Certificate")
            certificates[index].text = "MIIFqTCCBJG"
            verdict = sig.verify(serialise(root), self.trust)
            self.assertIs(verdict.state, SignatureState.UNVERIFIABLE, verdict)
            self.assertEqual([f.code for f in verdict.errors], ["CertificateMalformed"])
            self.assertIn("truncated", verdict.errors[0].message_en)
            self.assertEqual(verdict.certificates, 2)

    def test_base64_that_is_not_a_certificate(self) -> None:
        root = tree(self.signed())
        element = root.find(f".//{DS}X509Certificate")
        assert element is not None
        element.text = base64.b64encode(b"not a certificate at all").decode()
        verdict = sig.verify(serialise(root), self.trust)
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)
        self.assertIn("CertificateMalformed", codes(verdict))

    def test_no_certificate(self) -> None:
        root = tree(self.signed())
        x509_data = root.find(f".//{DS}X509Data")
        assert x509_data is not None
        for child in list(x509_data):
            x509_data.remove(child)
        etree.SubElement(x509_data, f"{DS}X509SubjectName").text = "CN=user05"
        verdict = sig.verify(serialise(root), self.trust)
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)
        self.assertEqual(codes(verdict), ["SignatureMalformed"])
        self.assertEqual(verdict.certificates, 0)


class StructureTests(_Base):
    def test_signature_value_missing(self) -> None:
        root = tree(self.signed())
        value = root.find(f".//{DS}SignatureValue")
        assert value is not None
        parent = value.getparent()
        assert parent is not None
        parent.remove(value)
        verdict = sig.verify(serialise(root), self.trust)
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE, verdict)
        self.assertEqual(codes(verdict), ["SignatureMalformed"])

    def test_unknown_algorithm(self) -> None:
        for element in ("SignatureMethod", "CanonicalizationMethod", "DigestMethod"):
            root = tree(self.signed())
            method = root.find(f".//{DS}{element}")
            assert method is not None
            method.set("Algorithm", "urn:example:gost-2012")
            verdict = sig.verify(serialise(root), self.trust)
            self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)
            self.assertEqual(codes(verdict), ["SignatureMalformed"])
            self.assertIn(f"unsupported {element}", verdict.findings[0].message_en)
            self.assertIn(
                "urn:example:gost-2012",
                (verdict.signature_method, verdict.c14n_method, verdict.digest_method),
            )

    def test_hostile_xml_is_refused_by_the_parser(self) -> None:
        hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>'
        self.assertRaises(HostileXML, sig.verify, hostile, self.trust)
        self.assertRaises(HostileXML, sig.describe, hostile)


class AbsentTests(_Base):
    def test_empty_digital_signature(self) -> None:
        verdict = sig.verify(envelope(), self.trust)
        self.assertIs(verdict.state, SignatureState.ABSENT)
        self.assertEqual(codes(verdict), ["SignatureAbsent"])
        self.assertEqual(verdict.findings[0].severity, Severity.INFO)
        self.assertEqual(verdict.errors, ())
        self.assertIsNone(verdict.signer)

    def test_no_slot_at_all(self) -> None:
        self.assertIs(sig.verify(envelope(slot=""), self.trust).state, SignatureState.ABSENT)

    def test_slot_with_foreign_content(self) -> None:
        data = envelope(slot="<edXML:DigitalSignature>MIIB…</edXML:DigitalSignature>")
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.UNVERIFIABLE)
        self.assertEqual(codes(verdict), ["SignatureMalformed"])


class RealWorldTests(_Base):
    def test_signed_samples_are_unverifiable_not_crashes(self) -> None:
        for name in ("edoc_new.edxml", "edoc_update.edxml"):
            data = (REALWORLD / name).read_bytes()
            for weak in WeakPolicy:
                verdict = sig.verify(data, self.trust, weak=weak)
                self.assertIs(verdict.state, SignatureState.UNVERIFIABLE, (name, verdict))
                found = codes(verdict)
                self.assertIn("SignatureNamespaceWrong", found)
                self.assertIn("CertificateMalformed", found)
                self.assertEqual(found.count("SignatureWeakAlgorithm"), 2)
                self.assertTrue(verdict.weak)
                self.assertEqual(verdict.signature_method, SignatureMethod.RSA_SHA1.value)
                self.assertEqual(verdict.certificates, 1)
                self.assertIsNone(verdict.signer)
                severity = Severity.ERROR if weak is WeakPolicy.REJECT else Severity.WARNING
                self.assertTrue(
                    all(
                        f.severity is severity
                        for f in verdict.findings
                        if f.code == "SignatureWeakAlgorithm"
                    )
                )
            self.assertIs(sig.describe(data).state, SignatureState.UNVERIFIABLE)

    def test_unsigned_status_sample(self) -> None:
        data = (REALWORLD / "status_processing_05.edxml").read_bytes()
        self.assertIs(sig.verify(data, self.trust).state, SignatureState.ABSENT)


class ScopeTests(_Base):
    """Signature wrapping (XSW) and partial-scope signatures are refused."""

    def header(self, root: etree._Element) -> etree._Element:
        header = root.find(HEADER)
        assert header is not None
        return header

    def forge(self, message_header: etree._Element) -> etree._Element:
        forged = copy.deepcopy(message_header)
        code = forged.find(f"{E}Code/{E}CodeNumber")
        assert code is not None
        code.text = "999"
        return forged

    def test_second_message_header_inserted(self) -> None:
        root = tree(self.signed())
        header = self.header(root)
        header.insert(0, self.forge(header[0]))
        self.assertRefused(sig.verify(serialise(root), self.trust), "SignatureInvalid")

    def test_original_moved_into_object(self) -> None:
        root = tree(self.signed())
        header = self.header(root)
        original = header[0]
        signature = header.find(f"{DS}Signature")
        assert signature is not None
        header.replace(original, self.forge(original))
        holder = etree.SubElement(signature, f"{DS}Object")
        holder.append(original)
        verdict = sig.verify(serialise(root), self.trust)
        self.assertRefused(verdict, "SignatureScopeInvalid")

    def test_original_moved_into_extension_element(self) -> None:
        root = tree(self.signed())
        header = self.header(root)
        original = header[0]
        header.replace(original, self.forge(original))
        extension = etree.SubElement(root, f"{E}Extension")
        extension.append(original)
        self.assertRefused(sig.verify(serialise(root), self.trust), "SignatureInvalid")

    def test_whole_signed_packet_wrapped_in_a_forged_one(self) -> None:
        original = tree(self.signed())
        outer = tree(envelope())
        header = self.header(outer)
        code = header.find(f"{E}MessageHeader/{E}Code/{E}CodeNumber")
        assert code is not None
        code.text = "999"
        slot = header.find(f"{E}DigitalSignature")
        signature = self.header(original).find(f"{DS}Signature")
        assert slot is not None and signature is not None
        header.replace(slot, copy.deepcopy(signature))
        etree.SubElement(outer, f"{E}Extension").append(original)
        verdict = sig.verify(serialise(outer), self.trust)
        self.assertRefused(verdict, "SignatureScopeInvalid")  # two Signatures in the document
        # Even with the inner one stripped, the digest no longer matches.
        inner = outer.find(f"{E}Extension//{DS}Signature")
        assert inner is not None
        inner_parent = inner.getparent()
        assert inner_parent is not None
        inner_parent.remove(inner)
        self.assertRefused(sig.verify(serialise(outer), self.trust), "SignatureInvalid")

    def test_signature_moved(self) -> None:
        places = [
            lambda root: root.find(f"{E}edXMLEnvelope/{E}edXMLBody"),
            lambda root: root,
            lambda root: root.find(f"{E}AttachmentEncoded"),
            lambda root: root.find(f"{E}edXMLEnvelope"),
            lambda root: root.find(f"{HEADER}/{E}MessageHeader"),
        ]
        for place in places:
            root = tree(self.signed())
            signature = self.header(root).find(f"{DS}Signature")
            assert signature is not None
            target = place(root)
            assert target is not None
            target.append(signature)
            verdict = sig.verify(serialise(root), self.trust)
            self.assertRefused(verdict, "SignatureScopeInvalid")
            self.assertIn("must be a child of", verdict.reason + str(verdict.findings))

    def test_signature_inside_digital_signature_slot(self) -> None:
        root = tree(self.signed())
        header = self.header(root)
        signature = header.find(f"{DS}Signature")
        assert signature is not None
        slot = etree.Element(f"{E}DigitalSignature")
        header.replace(signature, slot)
        slot.append(signature)
        self.assertRefused(sig.verify(serialise(root), self.trust), "SignatureScopeInvalid")

    def test_two_signatures(self) -> None:
        root = tree(self.signed())
        header = self.header(root)
        signature = header.find(f"{DS}Signature")
        assert signature is not None
        header.append(copy.deepcopy(signature))
        self.assertRefused(sig.verify(serialise(root), self.trust), "SignatureScopeInvalid")

    def test_reference_to_part_of_the_tree(self) -> None:
        data = signxml_sign(
            envelope(slot=PLACEHOLDER, header_id="hdr"), self.pki.agency_h23, reference_uri="#hdr"
        )
        # signxml alone accepts it: the refusal below is ours.
        config = SignatureConfiguration(location=f"./{E}edXMLEnvelope/{E}edXMLHeader/")
        XMLVerifier().verify(data, x509_cert=self.pki.agency_h23.cert, expect_config=config)
        verdict = sig.verify(data, self.trust)
        self.assertRefused(verdict, "SignatureScopeInvalid")
        self.assertIn('URI="#hdr"', str(verdict.findings))

    def test_several_references(self) -> None:
        data = signxml_sign(
            envelope(slot=PLACEHOLDER, header_id="hdr"),
            self.pki.agency_h23,
            reference_uri=["#hdr", "#body"],
        )
        self.assertRefused(sig.verify(data, self.trust), "SignatureScopeInvalid")

    def test_reference_count(self) -> None:
        for count in (0, 2):
            root = tree(self.signed())
            signed_info = root.find(f".//{DS}SignedInfo")
            reference = root.find(f".//{DS}Reference")
            assert signed_info is not None and reference is not None
            signed_info.remove(reference)
            for _ in range(count):
                signed_info.append(copy.deepcopy(reference))  # each one URI=""
            verdict = sig.verify(serialise(root), self.trust)
            self.assertRefused(verdict, "SignatureScopeInvalid")
            self.assertIn(f"{count} References", str(verdict.findings))

    def test_duplicated_id_attributes(self) -> None:
        data = signxml_sign(
            envelope(slot=PLACEHOLDER, header_id="hdr"), self.pki.agency_h23, reference_uri="#hdr"
        )
        root = tree(data)
        header = self.header(root)
        original = header[0]
        forged = self.forge(original)
        header.replace(original, forged)  # the forged header keeps Id="hdr"
        etree.SubElement(root, f"{E}Extension").append(original)  # so does the signed one
        self.assertEqual(len(root.xpath("//*[@Id='hdr']")), 2)
        self.assertRefused(sig.verify(serialise(root), self.trust), "SignatureScopeInvalid")

    def test_extra_transform(self) -> None:
        root = tree(self.signed())
        transforms = root.find(f".//{DS}Reference/{DS}Transforms")
        assert transforms is not None
        xpath = etree.SubElement(
            transforms, f"{DS}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"
        )
        etree.SubElement(xpath, f"{DS}XPath").text = "not(ancestor-or-self::edXML:MessageHeader)"
        self.assertRefused(sig.verify(serialise(root), self.trust), "SignatureScopeInvalid")


class FindingCodeTests(SynchronousTestCase):
    def test_codes_are_registered_in_both_languages(self) -> None:
        known = registry()
        for code in (
            "SignatureAbsent",
            "SignatureNamespaceWrong",
            "CertificateMalformed",
            "SignatureMalformed",
            "SignatureWeakAlgorithm",
            "SignatureScopeInvalid",
            "SignatureInvalid",
            "SignerUntrusted",
            "RevocationNotChecked",
            "SignatureTrustNotConfigured",
        ):
            self.assertIn(code, known)
            self.assertTrue(known[code].en)
            self.assertTrue(any(ord(ch) > 127 for ch in known[code].vi), code)
        self.assertIs(known["SignerUntrusted"].fault, Fault.UNTRUSTED_SIGNER)
        self.assertIs(known["SignatureInvalid"].fault, Fault.SIGNATURE_INVALID)
        self.assertIs(known["SignatureAbsent"].severity, Severity.INFO)


class LargeTests(_Base):
    def test_attachment_over_libxml2_text_limit(self) -> None:
        # 8 MB of binary is 10.8 MB of base64 in one text node: beyond libxml2's default 10 MB.
        blob = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)
        data = self.signed(attachment=blob)
        self.assertGreater(len(data), 10_000_000)
        self.assertIs(sig.verify(data, self.trust).state, SignatureState.VALID)
        tampered = data.replace(b"</ContentTransferEncoded>", b"AAAA</ContentTransferEncoded>")
        self.assertRefused(sig.verify(tampered, self.trust), "SignatureInvalid")


def signxml_accepts(data: bytes, entry: PKIEntry) -> bool:
    """signxml's own verdict on integrity (key from the given certificate, any algorithm)."""
    config = SignatureConfiguration(
        location=f"./{E}edXMLEnvelope/{E}edXMLHeader/",
        expect_references=1,
        signature_methods=frozenset(SignatureMethod) - {SignatureMethod.HMAC_SHA1},
        digest_algorithms=frozenset(DigestAlgorithm),
    )
    try:
        XMLVerifier().verify(data, x509_cert=entry.cert, expect_config=config)
    except Exception:  # any refusal: invalid, malformed, unparsable
        return False
    return True


def varied_envelope(prefix: str, default_root: bool, attribute: str, blank: str) -> bytes:
    """envelope() with another prefix, an unprefixed or prefixed root, an extra attribute."""
    text = envelope(slot=PLACEHOLDER).decode()
    text = text.replace("edXML:", f"{prefix}:").replace("xmlns:edXML=", f"xmlns:{prefix}=")
    if not default_root:
        text = text.replace(f'<edXML xmlns="{NS}">', f'<{prefix}:edXML xmlns:{prefix}="{NS}">')
        text = text.replace("</edXML>", f"</{prefix}:edXML>")
        for name in ("AttachmentEncoded", "Attachment", "ContentType", "ContentId"):
            text = text.replace(f"<{name}>", f"<{prefix}:{name}>")
            text = text.replace(f"</{name}>", f"</{prefix}:{name}>")
    text = text.replace(
        "<edXML:MessageHeader>".replace("edXML", prefix),
        f'<{prefix}:MessageHeader xmlns:x="urn:x" x:note="{attribute}">',
    )
    return text.replace("\n   <", f"\n{blank}<", 3).encode()


class CrossCheckTests(_Base):
    """Our verification agrees with signxml's on signatures signxml makes, and on their mutants."""

    @settings(max_examples=25, deadline=None)
    @given(
        prefix=st.sampled_from(["edXML", "e", "ns1", "ds"]),
        default_root=st.booleans(),
        attribute=st.text(st.sampled_from('ab &<>"ạ\t'), max_size=5),
        blank=st.sampled_from(["   ", "\t", "", "\n\n "]),
        ecdsa=st.booleans(),
        c14n=st.sampled_from(
            [
                CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
                CanonicalizationMethod.CANONICAL_XML_1_0,
                CanonicalizationMethod.CANONICAL_XML_1_1,
            ]
        ),
        sha1=st.booleans(),
        target=st.sampled_from(["Subject", "attribute", "DigestValue", "SignatureValue", "base64"]),
        where=st.integers(min_value=0, max_value=10_000),
        new=st.sampled_from("AZaz09"),
    )
    def test_agrees_with_signxml(
        self,
        prefix: str,
        default_root: bool,
        attribute: str,
        blank: str,
        ecdsa: bool,
        c14n: CanonicalizationMethod,
        sha1: bool,
        target: str,
        where: int,
        new: str,
    ) -> None:
        entry = self.pki.ec_agency if ecdsa else self.pki.agency_h23
        escaped = attribute.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        data = signxml_sign(
            varied_envelope(prefix, default_root, escaped, blank),
            entry,
            method=(SignatureMethod.ECDSA_SHA1 if ecdsa else SignatureMethod.RSA_SHA1)
            if sha1
            else (SignatureMethod.ECDSA_SHA256 if ecdsa else SignatureMethod.RSA_SHA256),
            digest=DigestAlgorithm.SHA1 if sha1 else DigestAlgorithm.SHA256,
            c14n=c14n,
        )
        self.assertTrue(signxml_accepts(data, entry))
        verdict = sig.verify(data, self.trust)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertEqual(verdict.c14n_method, c14n.value)

        # One ASCII byte changed inside a text node or an attribute value of the signed bytes.
        spans = {
            "Subject": rb"Subject>([^<]+)<",
            "attribute": rb'id="([^"]+)"',
            "DigestValue": rb"DigestValue>([^<]+)<",
            "SignatureValue": rb"SignatureValue>([^<]+)<",
            "base64": rb"ContentTransferEncoded>([^<]+)<",
        }
        found = re.search(spans[target], data)
        assert found is not None
        positions = [i for i in range(found.start(1), found.end(1)) if data[i : i + 1].isalnum()]
        position = positions[where % len(positions)]
        mutated = data[:position] + new.encode() + data[position + 1 :]
        ours = sig.verify(mutated, self.trust).is_valid
        theirs = signxml_accepts(mutated, entry)
        self.assertEqual(ours, theirs, (target, position, mutated == data))
        if mutated != data and target in ("Subject", "attribute", "base64"):
            self.assertFalse(ours)


class FaithfulnessTests(_Base):
    def test_redundant_prefixes_are_digested_as_written(self) -> None:
        # The root binds the envelope's namespace as default, the header as edXML: too; a
        # hardened-parser tree rewrote `<x:Extra>` to `<edXML:Extra>` and broke valid signatures.
        data = envelope(slot=PLACEHOLDER, extra_header=f'<Extra xmlns="{NS}"><edXML:In/></Extra>')
        signed = signxml_sign(data, self.pki.agency_h23)
        self.assertTrue(signxml_accepts(signed, self.pki.agency_h23))
        self.assertIs(sig.verify(signed, self.trust).state, SignatureState.VALID)

    def test_processing_instruction_before_the_root_is_covered(self) -> None:
        # URI="" is the whole document: a stylesheet PI added before the root after signing
        # changes it (signxml digests the root element alone and would accept this).
        signed = self.signed()
        body = signed.split(b"?>\n", 1)[1]
        added = b'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet href="x.xsl"?>' + body
        self.assertRefused(sig.verify(added, self.trust), "SignatureInvalid")

    def test_signed_data_is_not_kept_for_big_packets(self) -> None:
        blob = hashlib.sha256(b"big").digest() * (sig.SIGNED_DATA_MAX // 32 + 1)
        verdict = sig.verify(self.signed(attachment=blob), self.trust)
        self.assertIs(verdict.state, SignatureState.VALID)
        self.assertIsNone(verdict.signed_data)


class RevocationTests(_Base):
    def setUp(self) -> None:
        super().setUp()
        self.seal = fresh_seal(self.pki)
        self.data = self.signed(self.seal)
        self.root_crl = make_crl(self.pki.root)

    def test_revoked_signer_is_invalid(self) -> None:
        crl = make_crl(self.pki.intermediate, (self.seal.cert,))
        verdict = sig.verify(self.data, self.trust, crls=[crl, self.root_crl])
        self.assertIs(verdict.state, SignatureState.INVALID, verdict)
        self.assertTrue(verdict.revocation_checked)
        [finding] = [f for f in verdict.findings if f.code == "SignerRevoked"]
        self.assertIs(finding.severity, Severity.ERROR)
        self.assertIs(finding.fault, Fault.UNTRUSTED_SIGNER)
        self.assertIn("UBND tỉnh Hà Nam", finding.message_en)
        revoked_at = crl.get_revoked_certificate_by_serial_number(self.seal.cert.serial_number)
        assert revoked_at is not None
        when = revoked_at.revocation_date_utc.isoformat(timespec="seconds")
        self.assertIn(when, finding.message_en)
        self.assertIn("thu hồi", finding.message_vi)
        self.assertNotIn("RevocationNotChecked", codes(verdict))

    def test_same_crls_not_listing_it_are_good(self) -> None:
        crl = make_crl(self.pki.intermediate, (self.pki.agency_g22.cert,))
        verdict = sig.verify(self.data, self.trust, crls=[crl, self.root_crl])
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertTrue(verdict.revocation_checked)
        self.assertEqual(verdict.findings, ())

    def test_missing_issuer_crl_is_named(self) -> None:
        crl = make_crl(self.pki.intermediate)
        verdict = sig.verify(self.data, self.trust, crls=[crl])
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertFalse(verdict.revocation_checked)
        [finding] = verdict.findings
        self.assertEqual(finding.code, "RevocationNotChecked")
        self.assertIs(finding.severity, Severity.INFO)
        self.assertIn("Root CA", finding.message_en)
        self.assertNotIn("Issuing CA", finding.message_en)

    def test_forged_crl_is_ignored_with_a_finding(self) -> None:
        forged = make_crl(self.pki.intermediate, (), signer=devpki.rsa_key())
        real = make_crl(self.pki.intermediate, (self.seal.cert,))
        verdict = sig.verify(self.data, self.trust, crls=[forged, self.root_crl])
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertIn("RevocationListProblem", codes(verdict))
        self.assertIn("RevocationNotChecked", codes(verdict))
        both = sig.verify(self.data, self.trust, crls=[forged, real, self.root_crl])
        self.assertIn("SignerRevoked", codes(both))

    def test_stale_crl_is_reported(self) -> None:
        stale = make_crl(self.pki.intermediate, next_update=-datetime.timedelta(days=1))
        verdict = sig.verify(self.data, self.trust, crls=[stale, self.root_crl])
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertTrue(verdict.revocation_checked)
        self.assertEqual(codes(verdict), ["RevocationListProblem"])
        self.assertIn("out of date", verdict.findings[0].message_en)

    def test_revoked_intermediate(self) -> None:
        root_crl = make_crl(self.pki.root, (self.pki.intermediate.cert,))
        verdict = sig.verify(
            self.data, self.trust, crls=[make_crl(self.pki.intermediate), root_crl]
        )
        self.assertIs(verdict.state, SignatureState.INVALID, verdict)
        [finding] = [f for f in verdict.findings if f.code == "SignerRevoked"]
        self.assertIn("Issuing CA", finding.message_en)
