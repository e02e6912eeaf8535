"""gateway.soap: framing of SOAP 1.1/1.2 requests, hostile input, faults in both languages."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os

from lxml import etree

from twisted.trial.unittest import SynchronousTestCase

from edxml.findings import Fault, Finding, Severity
from edxml.xmlsafe import Limits
from gateway import soap
from gateway.soap import Face, FaultCode, GatewayFault, SoapVersion

S11 = soap.SOAP11_NS
S12 = soap.SOAP12_NS
OFF = soap.OFFICE_NS


def _envelope(ns: str, body: str, header: str = "") -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{ns}" xmlns:o="{OFF}">'
        f"{head}<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


MARK = "<o:MarkReceived><o:MessageId>m1</o:MessageId></o:MarkReceived>"


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes, /) -> None:
        self.hash.update(data)


class ParseTests(SynchronousTestCase):
    def _refused(
        self, body: bytes, content_type: str | None, action: str | None = None, **kwargs: object
    ) -> GatewayFault:
        with self.assertRaises(GatewayFault) as caught:
            soap.parse_request(body, content_type, action, **kwargs)  # type: ignore[arg-type]
        return caught.exception

    def test_soap11_with_soapaction(self) -> None:
        request = soap.parse_request(
            _envelope(S11, MARK), "text/xml; charset=utf-8", f'"{OFF}/MarkReceived"'
        )
        self.assertEqual(request.version, SoapVersion.SOAP11)
        self.assertEqual((request.operation, request.namespace), ("MarkReceived", OFF))
        self.assertEqual(request.action, f"{OFF}/MarkReceived")
        self.assertEqual(soap.child_texts(request.body_element, "MessageId"), ["m1"])

    def test_soap12_with_action_parameter(self) -> None:
        request = soap.parse_request(
            _envelope(S12, MARK),
            f'application/soap+xml; charset=utf-8; action="{OFF}/MarkReceived"',
        )
        self.assertEqual(request.version, SoapVersion.SOAP12)
        self.assertEqual(request.action, f"{OFF}/MarkReceived")
        self.assertEqual(soap.version_of("application/soap+xml"), SoapVersion.SOAP12)
        self.assertEqual(soap.version_of(None), SoapVersion.SOAP11)

    def test_missing_or_bare_soapaction_tolerated(self) -> None:
        for action in (None, '""', "MarkReceived"):
            request = soap.parse_request(_envelope(S11, MARK), "text/xml", action)
            self.assertEqual(request.operation, "MarkReceived")

    def test_wrong_action_refused(self) -> None:
        error = self._refused(_envelope(S11, MARK), "text/xml", f'"{OFF}/SendDocument"')
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertIn("MarkReceived", error.text_en)

    def test_version_mismatch_refused(self) -> None:
        error = self._refused(_envelope(S12, MARK), "text/xml")
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertIn("SOAP 1.1", error.text_en)

    def test_structure_refused(self) -> None:
        two = _envelope(S11, MARK + MARK)
        self.assertIn("exactly one", self._refused(two, "text/xml").text_en)
        not_soap = b'<Envelope xmlns="urn:x"><Body/></Envelope>'
        self.assertEqual(self._refused(not_soap, "text/xml").code, FaultCode.BAD_REQUEST)
        self.assertEqual(self._refused(b"", "text/xml").code, FaultCode.BAD_REQUEST)
        bad_type = self._refused(_envelope(S11, MARK), "application/json")
        self.assertIn("Content-Type", bad_type.text_en)

    def test_malformed_refused(self) -> None:
        error = self._refused(b"<s:Envelope xmlns:s='" + S11.encode() + b"'><s:Body>", "text/xml")
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertTrue(error.text_vi)

    def test_hostile_refused_without_expanding(self) -> None:
        laughs = (
            b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(
                f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode()
                for i in range(8)
            )
            + b"]>"
            + _envelope(S11, "<o:GetDirectory><o:Pattern>&i;</o:Pattern></o:GetDirectory>")[38:]
        )
        error = self._refused(laughs, "text/xml")
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertIn("DOCTYPE", error.text_en)
        xxe = (
            b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + _envelope(S11, "<o:GetDirectory><o:Pattern>&x;</o:Pattern></o:GetDirectory>")[38:]
        )
        error = self._refused(xxe, "text/xml")
        self.assertNotIn("root:", error.text_en)
        self.assertIn("DOCTYPE", error.text_en)

    def test_oversize_is_too_large(self) -> None:
        body = _envelope(
            S11, "<o:GetDirectory><o:Pattern>" + "x" * 5000 + "</o:Pattern></o:GetDirectory>"
        )
        error = self._refused(body, "text/xml", limits=Limits(max_bytes=1000))
        self.assertEqual(error.code, FaultCode.TOO_LARGE)
        deep = _envelope(
            S11, "<o:GetDirectory>" + "<o:x>" * 60 + "</o:x>" * 60 + "</o:GetDirectory>"
        )
        self.assertEqual(self._refused(deep, "text/xml").code, FaultCode.BAD_REQUEST)
        for version, status in ((SoapVersion.SOAP11, 500), (SoapVersion.SOAP12, 400)):
            response = soap.fault_response(version, error, Face.OFFICE)
            self.assertEqual(response.status, status)
            self.assertTrue(response.content_type.startswith(version.media_type))

    def test_must_understand(self) -> None:
        header = '<w:Security xmlns:w="urn:wsse" s:mustUnderstand="1"/>'
        body = _envelope(S11, MARK, header)
        self.assertIn("urn:wsse", self._refused(body, "text/xml").text_en)
        request = soap.parse_request(
            body, "text/xml", understood_headers=frozenset({"{urn:wsse}Security"})
        )
        self.assertEqual(len(request.header_elements), 1)


class ValidationTests(SynchronousTestCase):
    def test_xsd_rejects_bad_request_naming_the_path(self) -> None:
        body = (
            "<o:UpdateStatus><o:MessageId>m1</o:MessageId><o:OrganId>000.00.00.H23</o:OrganId>"
            "<o:StatusCode>01</o:StatusCode></o:UpdateStatus>"
        )
        request = soap.parse_request(_envelope(S11, body), "text/xml")
        with self.assertRaises(GatewayFault) as caught:
            soap.validate(request.body_element, Face.OFFICE)
        error = caught.exception
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertEqual(error.findings[0].path, "/UpdateStatus/StatusCode")
        self.assertIn("/UpdateStatus/StatusCode", error.text_en)

    def test_unknown_operation_and_wrong_face(self) -> None:
        request = soap.parse_request(_envelope(S11, "<o:Nope/>"), "text/xml")
        with self.assertRaises(GatewayFault):
            soap.validate(request.body_element, Face.OFFICE)
        request = soap.parse_request(_envelope(S11, MARK), "text/xml")
        with self.assertRaises(GatewayFault):
            soap.validate(request.body_element, Face.EXCHANGE)
        soap.validate(request.body_element, Face.OFFICE)

    def test_our_bad_response_is_a_bug(self) -> None:
        element = soap.send_document_response("m1", [])  # Delivery is required
        with self.assertRaises(ValueError):
            soap.validate(element, Face.OFFICE, response=True)

    def test_large_payload_beyond_libxml2_text_limit(self) -> None:
        payload = os.urandom(9_000_000)  # 12 MB of base64: past libxml2's 10 MB text node
        text = base64.b64encode(payload).decode()
        wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
        body = _envelope(
            S12, f"<o:SendDocument><o:Envelope>{wrapped}</o:Envelope></o:SendDocument>"
        )
        request = soap.parse_request(body, "application/soap+xml")
        soap.validate(request.body_element, Face.OFFICE)
        element = soap.child(request.body_element, "Envelope")
        assert element is not None
        digest = _HashSink()
        size = soap.decode_base64_to(element, digest)
        self.assertEqual(
            (size, digest.hash.digest()), (len(payload), hashlib.sha256(payload).digest())
        )
        self.assertIsNone(element.text)

    def test_bad_base64_is_bad_request(self) -> None:
        element = etree.Element(f"{{{OFF}}}Envelope")
        element.text = "not base64!"
        with self.assertRaises(GatewayFault) as caught:
            soap.decode_base64(element)
        self.assertEqual(caught.exception.findings[0].path, "/Envelope")


EXC = soap.EXCHANGE_NS
PACKAGE = f"{{{EXC}}}Package"


def _deliver(package_text: str, header: str = "", ns: str = S11) -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{ns}" xmlns:x="{EXC}">'
        f"{head}<s:Body><x:Deliver><x:Package>{package_text}</x:Package></x:Deliver></s:Body>"
        "</s:Envelope>"
    ).encode()


class StreamedPayloadTests(SynchronousTestCase):
    """parse_request from a file with the payload decoded while parsing (the exchange face)."""

    def _parse(self, body: bytes, **kwargs: object) -> soap.SoapRequest:
        return soap.parse_request(
            io.BytesIO(body),
            "text/xml",
            **kwargs,  # type: ignore[arg-type]
        )

    def _refused(self, body: bytes, **kwargs: object) -> GatewayFault:
        with self.assertRaises(GatewayFault) as caught:
            self._parse(body, payload=PACKAGE, **kwargs)
        return caught.exception

    def test_payload_decoded_and_kept_out_of_the_tree(self) -> None:
        payload = os.urandom(300_000)
        text = base64.b64encode(payload).decode()
        wrapped = "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))
        request = self._parse(_deliver(wrapped), payload=PACKAGE)
        self.assertEqual(request.payload, payload)
        element = soap.child(request.body_element, "Package")
        assert element is not None
        self.assertIsNone(element.text)
        # The contract still holds for what is left of the tree.
        soap.validate(request.body_element, Face.EXCHANGE)

    def test_same_request_read_from_bytes_or_file(self) -> None:
        body = _deliver(base64.b64encode(b"<edXML/>").decode(), ns=S12)
        whole = soap.parse_request(body, "application/soap+xml")
        streamed = soap.parse_request(io.BytesIO(body), "application/soap+xml", payload=PACKAGE)
        self.assertEqual(
            (whole.version, whole.operation, whole.namespace),
            (streamed.version, streamed.operation, streamed.namespace),
        )
        self.assertIsNone(whole.payload)
        element = soap.child(whole.body_element, "Package")
        assert element is not None
        self.assertEqual(soap.decode_base64(element), streamed.payload)
        # Without `payload`, a file is parsed whole into the tree, as bytes are.
        plain = soap.parse_request(io.BytesIO(body), "application/soap+xml")
        self.assertEqual(soap.child_text(plain.body_element, "Package"), "PGVkWE1MLz4=")

    def test_empty_and_missing_payload(self) -> None:
        self.assertEqual(self._parse(_deliver(""), payload=PACKAGE).payload, b"")
        body = _envelope(S11, MARK)
        self.assertIsNone(self._parse(body, payload=PACKAGE).payload)

    def test_only_the_operations_payload_counts(self) -> None:
        """A Package in a header is streamed too but is not the payload."""
        header = f"<x:Package>{base64.b64encode(b'header').decode()}</x:Package>"
        body = _deliver(base64.b64encode(b"body").decode(), header=header)
        self.assertEqual(self._parse(body, payload=PACKAGE).payload, b"body")

    def test_bad_base64_is_bad_request(self) -> None:
        for bad in ("not base64!", "QUJD=QUJD", "QUJDR", "QUJDxé"):
            error = self._refused(_deliver(bad))
            self.assertEqual(error.code, FaultCode.BAD_REQUEST)
            self.assertEqual(error.findings[0].path, "/Package")
            self.assertTrue(error.text_vi)

    def test_hostile_refused_on_the_streaming_path(self) -> None:
        xxe = b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + _deliver("&x;")[38:]
        error = self._refused(xxe)
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertIn("DOCTYPE", error.text_en)
        self.assertNotIn("root:", error.text_en)
        deep = _deliver("</x:Package>" + "<x:a>" * 60 + "</x:a>" * 60 + "<x:Package>")
        self.assertEqual(self._refused(deep).code, FaultCode.BAD_REQUEST)
        many = _deliver("</x:Package>" + "<x:a/>" * 600 + "<x:Package>")
        error = self._refused(many, limits=Limits(max_elements=500))
        self.assertEqual(error.code, FaultCode.BAD_REQUEST)
        self.assertIn("500", error.text_en)

    def test_size_checked_before_parsing(self) -> None:
        class Unreadable(io.BytesIO):
            def read(self, size: int | None = -1, /) -> bytes:
                raise AssertionError("read before the size was checked")

        body = _deliver("QUJD" * 2000)
        with self.assertRaises(GatewayFault) as caught:
            soap.parse_request(
                Unreadable(body), "text/xml", limits=Limits(max_bytes=1000), payload=PACKAGE
            )
        self.assertEqual(caught.exception.code, FaultCode.TOO_LARGE)


class FaultTests(SynchronousTestCase):
    def test_soap12_fault_in_both_languages(self) -> None:
        error = GatewayFault(FaultCode.FORBIDDEN)
        root = etree.fromstring(soap.fault(SoapVersion.SOAP12, error, Face.OFFICE))
        ns = {"s": S12, "o": OFF}
        texts = {t.get(soap.XML_LANG): t.text for t in root.iterfind(".//s:Reason/s:Text", ns)}
        self.assertEqual(
            texts, {"en": FaultCode.FORBIDDEN.message_en, "vi": FaultCode.FORBIDDEN.message_vi}
        )
        self.assertEqual(root.findtext(".//s:Code/s:Value", namespaces=ns), "soap:Sender")
        detail = root.find(".//s:Detail/o:GatewayFault", ns)
        assert detail is not None
        self.assertEqual(
            detail.findtext("o:MessageVi", namespaces=ns), FaultCode.FORBIDDEN.message_vi
        )
        self.assertEqual(detail.findtext("o:Retryable", namespaces=ns), "false")

    def test_soap11_fault_structure(self) -> None:
        error = GatewayFault(FaultCode.UNAVAILABLE, "store busy", "kho dữ liệu bận")
        root = etree.fromstring(soap.fault(SoapVersion.SOAP11, error, Face.EXCHANGE))
        fault = root.find(f".//{{{S11}}}Fault")
        assert fault is not None
        self.assertEqual(fault.findtext("faultcode"), "soap:Server")
        self.assertEqual(fault.findtext("faultstring"), "store busy")
        ns = {"x": soap.EXCHANGE_NS}
        detail = fault.find("detail/x:GatewayFault", ns)
        assert detail is not None
        self.assertEqual(detail.findtext("x:MessageVi", namespaces=ns), "kho dữ liệu bận")
        self.assertEqual(detail.findtext("x:Retryable", namespaces=ns), "true")
        self.assertEqual(soap.http_status(SoapVersion.SOAP12, error), 500)

    def test_every_code_has_both_languages(self) -> None:
        for code in FaultCode:
            self.assertTrue(code.message_en and code.message_vi, code)
            self.assertNotEqual(code.message_en, code.message_vi)
        self.assertEqual([c for c in FaultCode if c.retryable], [FaultCode.UNAVAILABLE])

    def test_from_findings_and_errors(self) -> None:
        warning = Finding("W", Severity.WARNING, "w", "w")
        refusal = Finding(
            "SecretMark", Severity.ERROR, "secret", "mật", "/x", fault=Fault.SECRET_DOCUMENT
        )
        error = GatewayFault.from_findings([warning, refusal])
        self.assertEqual(
            (error.code, error.text_vi, len(error.findings)), (FaultCode.SECRET_DOCUMENT, "mật", 2)
        )
        from edxml.errors import MalformedXML, TooLarge

        self.assertEqual(GatewayFault.from_edxml_error(TooLarge("big")).code, FaultCode.TOO_LARGE)
        self.assertEqual(
            GatewayFault.from_edxml_error(MalformedXML("bad")).code, FaultCode.SCHEMA_INVALID
        )

    def test_times_are_vietnam_time(self) -> None:
        t = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
        self.assertEqual(soap.format_time(t), "2026-11-25T09:30:00+07:00")
        with self.assertRaises(ValueError):
            soap.format_time(dt.datetime(2026, 11, 25))
