"""edxml.edochub: the requests the BKAV eDoc hub expects (bytes and namespaces, §2.4), the SwA
framing both ways, the hub's answers (Report/ErrorList and every error code, §4.4), trace
codes (§6), and hostile or broken answers refused."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import attrs
from lxml import etree

from twisted.trial.unittest import SynchronousTestCase

from edxml import edochub
from edxml.codes import StatusCode
from edxml.edochub import (
    EDOC_NS,
    SOAP_NS,
    Attachment,
    ErrorKind,
    HubProtocolError,
    HubRefusal,
    Message,
    Organization,
    OutgoingDocument,
    Part,
    ResponseFor,
    StaffInfo,
    TraceStatus,
)

TOKEN = "c2VjcmV0LXRva2VuLWZvci10ZXN0cz0="
ME, OTHER = "000.00.01.H99", "000.00.02.H99"
E = "{" + EDOC_NS + "}"
S = "{" + SOAP_NS + "}"
MOMENT = dt.datetime(2024, 5, 10, 2, 30, tzinfo=dt.UTC)  # 09:30 in Vietnam


def document(**changes: Any) -> OutgoingDocument:
    doc = OutgoingDocument(
        from_=Organization(ME, "Sender agency", "Province X"),
        to=(Organization(OTHER, "Receiver agency"),),
        document_id=f"{ME},2024/05/10,123/UBND-VP",
        code_number="123",
        code_notation="UBND-VP",
        place="City",
        promulgation_date=dt.date(2024, 5, 10),
        subject="Subject text",
        timestamp=MOMENT,
        attachments=(
            Attachment("decision.pdf", "application/pdf", b"%PDF-1.4\r\n--x\r\n\x00\xff"),
        ),
    )
    return attrs.evolve(doc, **changes)


def root_of(request: edochub.Request) -> etree._Element:
    message = edochub.split_message(request.content_type, request.body)
    return etree.fromstring(message.envelope)


def answer(action: str, inner: str) -> bytes:
    return edochub.wrapped(action, inner)


def report(ok: bool, *errors: tuple[str, str]) -> str:
    return edochub.report_xml(ok, errors)


class RequestTests(SynchronousTestCase):
    def test_body_wrappers_are_unqualified(self) -> None:
        cases = [
            (edochub.get_pending_document_ids(ME, TOKEN), "GetPendingDocumentIdsRequest"),
            (edochub.get_document(ME, TOKEN, 1052), "GetDocumentRequest"),
            (edochub.confirm_received(ME, TOKEN, 1052), "ConfirmReceived"),
            (edochub.get_traces(ME, TOKEN), "GetTraces"),
            (edochub.get_organizations(ME, TOKEN), "GetOrganizations"),
        ]
        for request, wrapper in cases:
            root = root_of(request)
            self.assertEqual(root.tag, S + "Envelope")
            self.assertEqual(root.prefix, "SOAP-ENV")
            body = root.find(S + "Body")
            assert body is not None
            element = body[0]
            self.assertEqual(element.tag, wrapper)  # no namespace at all
            self.assertNotIn(None, element.nsmap)  # and no default namespace in scope
            self.assertEqual(element.findtext("OrganId"), ME)
            self.assertEqual(element.findtext("Token"), TOKEN)
            self.assertEqual(dict(request.headers)["SOAPAction"], request.action)
            self.assertIn(request.action, edochub.ACTIONS)
            self.assertTrue(request.content_type.startswith('multipart/related; type="text/xml"'))

    def test_exact_bytes_of_get_document(self) -> None:
        request = edochub.get_document(ME, TOKEN, 1052)
        envelope = edochub.split_message(request.content_type, request.body).envelope
        self.assertEqual(
            envelope.decode(),
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_NS}"><SOAP-ENV:Header/><SOAP-ENV:Body>'
            f"<GetDocumentRequest><OrganId>{ME}</OrganId><Token>{TOKEN}</Token>"
            "<DocumentId>1052</DocumentId></GetDocumentRequest>"
            "</SOAP-ENV:Body></SOAP-ENV:Envelope>",
        )
        self.assertEqual(request.action, "GetDocument")  # bare word, no quotes, no URI

    def test_document_id_must_be_a_positive_integer(self) -> None:
        for bad in (0, -1, True):
            self.assertRaises(ValueError, edochub.get_document, ME, TOKEN, bad)

    def test_get_traces_timestamp(self) -> None:
        root = root_of(edochub.get_traces(ME, TOKEN, MOMENT))
        self.assertEqual(root.findtext(f"{S}Body/GetTraces/TimeStamp"), "2024/05/10 09:30:00")

    def test_check_permission_is_in_the_header(self) -> None:
        root = root_of(edochub.check_permission(ME, TOKEN))
        probe = root.find(f"{S}Header/CheckPermission")
        assert probe is not None
        self.assertEqual(probe.findtext("Token"), TOKEN)
        body = root.find(S + "Body")
        assert body is not None
        self.assertEqual(len(body), 0)

    def test_update_traces_status_unqualified_signature_qualified(self) -> None:
        request = edochub.update_traces(
            OTHER,
            TOKEN,
            from_=Organization(OTHER, "Receiver agency"),
            response_for=ResponseFor(ME, "123/UBND-VP", "2024/05/10", f"{ME},2024/05/10,123"),
            status=StatusCode.ACCEPTED,
            description="Đã tiếp nhận",
            timestamp=MOMENT,
            staff=StaffInfo(department="Van thu", staff="Clerk"),
        )
        root = root_of(request)
        self.assertEqual(root.findtext(f"{S}Header/{E}Signature/{E}KeyInfo/{E}Token"), TOKEN)
        status = root.find(f"{S}Body/Status")
        assert status is not None
        self.assertNotIn(None, status.nsmap)
        self.assertEqual(status.findtext("StatusCode"), "03")
        self.assertEqual(status.findtext("Timestamp"), "2024/05/10 09:30:00")
        self.assertEqual(status.findtext("ResponseFor/OrganId"), ME)
        self.assertEqual(status.findtext("StaffInfo/Staff"), "Clerk")
        self.assertEqual(status.findtext("Description"), "Đã tiếp nhận")
        self.assertEqual(
            [c.tag for c in status],
            ["From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"],
        )

    def test_send_document_header_manifest_and_parts(self) -> None:
        doc = document()
        request = edochub.send_document(doc, ME, TOKEN, boundary="BOUNDARY-1")
        self.assertIn('boundary="BOUNDARY-1"', request.content_type)
        message = edochub.split_message(request.content_type, request.body)
        root = etree.fromstring(message.envelope)
        header = root.find(S + "Header")
        assert header is not None
        self.assertEqual(
            [c.tag for c in header],
            [E + "MessageHeader", E + "TraceHeaderList", E + "Signature", E + "ErrorList"],
        )
        mh = header.find(E + "MessageHeader")
        assert mh is not None
        for child in mh.iter():
            self.assertEqual(etree.QName(child).namespace, EDOC_NS, child.tag)
        self.assertEqual(mh.findtext(f"{E}From/{E}OrganizationInCharge"), "Province X")
        self.assertEqual(mh.findtext(f"{E}PromulgationInfo/{E}PromulgationDate"), "2024/05/10")
        self.assertEqual(
            header.findtext(f"{E}TraceHeaderList/{E}TraceHeader/{E}Timestamp"),
            "2024/05/10 09:30:00",
        )
        self.assertEqual(header.findtext(f"{E}TraceHeaderList/{E}Business/{E}BusinessDocType"), "0")
        ref = root.find(f"{S}Body/{E}Manifest/{E}Reference")
        assert ref is not None
        self.assertEqual(ref.get("{http://www.w3.org/1999/xlink}href"), "cid:att-1")
        self.assertEqual(ref.findtext(E + "AttachmentName"), "decision.pdf")
        part = message.part("cid:att-1")
        assert part is not None
        self.assertEqual(part.body, doc.attachments[0].data)
        self.assertEqual(part.content_type, "application/pdf")

    def test_replies_updates_and_replacements_say_what_they_act_on(self) -> None:
        earlier = f"{ME},2024/05/01,100/UBND-VP"
        doc = document(
            response_for=(ResponseFor(OTHER, "7/SYT", "2024/05/02", f"{OTHER},2024/05/02,7/SYT"),),
            business_doc_type=3,
            business_document_id=earlier,
            update_info=edochub.UpdateInfo(1, 1, (edochub.ReceiverChange(OTHER, 0),)),
            replacements=(edochub.Replacement(earlier, (OTHER, ME)),),
        )
        root = root_of(edochub.send_document(doc, ME, TOKEN))
        mh = root.find(f"{S}Header/{E}MessageHeader")
        assert mh is not None
        self.assertEqual(mh[-1].tag, E + "ResponseFor")  # after SteeringType
        self.assertEqual(
            [(c.tag.removeprefix(E), c.text) for c in mh[-1]],
            [
                ("OrganId", OTHER),
                ("Code", "7/SYT"),
                ("PromulgationDate", "2024/05/02"),
                ("DocumentId", f"{OTHER},2024/05/02,7/SYT"),
            ],
        )
        business = root.find(f"{S}Header/{E}TraceHeaderList/{E}Business")
        assert business is not None
        for child in business.iter():
            self.assertEqual(etree.QName(child).namespace, EDOC_NS, child.tag)
        self.assertEqual(
            [c.tag.removeprefix(E) for c in business],
            [
                "DocumentId",
                "BusinessDocType",
                "BusinessDocReason",
                "Paper",
                "BusinessDocumentInfo",
                "ReplacementInfoList",
                "StaffInfo",
            ],
        )
        self.assertEqual(business.findtext(E + "DocumentId"), earlier)
        info = business.find(E + "BusinessDocumentInfo")
        assert info is not None
        self.assertEqual(
            (info.findtext(E + "DocumentInfo"), info.findtext(E + "DocumentReceiver")), ("1", "1")
        )
        receiver = info.find(f"{E}ReceiverList/{E}Receiver")
        assert receiver is not None
        self.assertEqual(
            (receiver.findtext(E + "ReceiverType"), receiver.findtext(E + "OrganId")), ("0", OTHER)
        )
        replaced = business.find(f"{E}ReplacementInfoList/{E}ReplacementInfo")
        assert replaced is not None
        self.assertEqual(replaced.findtext(E + "DocumentId"), earlier)
        self.assertEqual(
            [o.text for o in replaced.iterfind(f"{E}OrganIdList/{E}OrganId")], [OTHER, ME]
        )
        # A new document says none of it.
        plain = root_of(edochub.send_document(document(), ME, TOKEN))
        plain_business = plain.find(f"{S}Header/{E}TraceHeaderList/{E}Business")
        assert plain_business is not None
        self.assertEqual(
            [c.tag.removeprefix(E) for c in plain_business],
            ["BusinessDocType", "BusinessDocReason", "Paper", "StaffInfo"],
        )
        self.assertIsNone(plain.find(f"{S}Header/{E}MessageHeader/{E}ResponseFor"))

    def test_request_repr_hides_the_token(self) -> None:
        for request in (
            edochub.send_document(document(), ME, TOKEN),
            edochub.get_traces(ME, TOKEN),
        ):
            self.assertIn(TOKEN.encode(), request.body)
            self.assertNotIn(TOKEN, repr(request))

    def test_text_is_escaped(self) -> None:
        doc = document(subject='A & B <c> "d"')
        root = root_of(edochub.send_document(doc, ME, TOKEN))
        self.assertEqual(root.findtext(f"{S}Header/{E}MessageHeader/{E}Subject"), 'A & B <c> "d"')

    def test_bad_credentials_text_is_refused_before_sending(self) -> None:
        self.assertRaises(ValueError, edochub.get_traces, ME, "")
        self.assertRaises(ValueError, edochub.get_traces, ME, " padded ")
        self.assertRaises(ValueError, edochub.send_document, document(to=()), ME, TOKEN)


class MultipartTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        parts = (
            Part("a1", "application/pdf", b"\r\n--not-the-boundary\r\n\x00"),
            Part("a2", "text/plain", b""),
        )
        content_type, body = edochub.multipart_related(Message(b"<e/>", parts), boundary="B")
        self.assertEqual(
            content_type,
            'multipart/related; type="text/xml"; boundary="B"; start="<root.envelope@edoc-hub>"',
        )
        message = edochub.split_message(content_type, body)
        self.assertEqual(message.envelope, b"<e/>")
        self.assertEqual(
            [(p.content_id, p.body) for p in message.parts], [("a1", parts[0].body), ("a2", b"")]
        )
        self.assertIn(b"Content-Transfer-Encoding: 8bit", body)

    def test_boundary_inside_a_part_is_refused(self) -> None:
        parts = (Part("a1", "application/pdf", b"xx--B yy"),)
        self.assertRaises(
            ValueError, edochub.multipart_related, Message(b"<e/>", parts), boundary="B"
        )
        bad_cid = (Part("a b", "text/plain", b""),)
        self.assertRaises(ValueError, edochub.multipart_related, Message(b"<e/>", bad_cid))

    def test_foreign_multipart_start_lf_and_base64(self) -> None:
        body = (
            b"--MIMEBoundary_x\n"
            b"Content-Type: application/octet-stream\nContent-ID: <0.att@apache.org>\n"
            b"Content-Transfer-Encoding: base64\n\naGVs\nbG8=\n"
            b"--MIMEBoundary_x\n"
            b'Content-Type: application/xop+xml; charset=UTF-8; type="text/xml"\n'
            b"Content-ID: <0.root@apache.org>\n\n<root/>\n"
            b"--MIMEBoundary_x--\n"
        )
        content_type = (
            'multipart/related; boundary=MIMEBoundary_x; type="application/xop+xml"; '
            'start="<0.root@apache.org>"; start-info="text/xml"'
        )
        message = edochub.split_message(content_type, body)
        self.assertEqual(message.envelope, b"<root/>")
        self.assertEqual(message.parts[0].body, b"hello")
        self.assertEqual(message.parts[0].content_id, "0.att@apache.org")

    def test_single_part_and_broken_multipart(self) -> None:
        self.assertEqual(
            edochub.split_message("text/xml; charset=utf-8", b"<x/>").envelope, b"<x/>"
        )
        self.assertEqual(edochub.split_message(None, b"<x/>").envelope, b"<x/>")
        for content_type, body in [
            ("multipart/related", b"--B\r\n\r\nx\r\n--B--"),
            ('multipart/related; boundary="B"', b"no parts at all"),
            ('multipart/related; boundary="B"', b"--B\r\nContent-ID: <r>\r\n\r\n<x/>"),
            (
                'multipart/related; boundary="B"',
                b"--B\r\nContent-Transfer-Encoding: base64\r\n\r\n!!\r\n--B--",
            ),
        ]:
            self.assertRaises(HubProtocolError, edochub.split_message, content_type, body)

    def test_base64_text_of_parts(self) -> None:
        data = bytes(range(256)) * 3
        text = base64.encodebytes(data)  # with line breaks
        self.assertEqual(edochub.decode_part_text(text), data)
        self.assertEqual(edochub.decode_part_text(edochub.base64_text(data)), data)
        self.assertEqual(edochub.decode_part_text(b"%PDF-1.4 raw"), b"%PDF-1.4 raw")
        self.assertEqual(edochub.decode_part_text(b"abc"), b"abc")  # not a whole quantum


class AnswerTests(SynchronousTestCase):
    def test_send_document_success(self) -> None:
        data = answer("SendDocument", report(True) + "<edXML:DocumentId>1052</edXML:DocumentId>")
        self.assertEqual(edochub.parse_send_document(data), 1052)

    def test_every_error_code_has_its_kind(self) -> None:
        table = {
            "CheckPermission": ErrorKind.AUTH,
            "Permission": ErrorKind.AUTH,
            "CheckSignature": ErrorKind.AUTH,
            "M.OrganId": ErrorKind.INVALID,
            "M.DocumentId": ErrorKind.INVALID,
            "M.GetDocument": ErrorKind.HUB,
            "M.GetDocumentCheckAllow": ErrorKind.NOT_FOUND,
            "M.ConfirmReceived": ErrorKind.NOT_FOUND,
            "M.UpdateTraces": ErrorKind.HUB,
            "M.UpdateStatusDoc": ErrorKind.NOT_FOUND,
            "M.UpdateStatus": ErrorKind.HUB,
            "M.UpdateTrace": ErrorKind.HUB,
            "M.GetTraces": ErrorKind.HUB,
            "M.GetOrganizations": ErrorKind.HUB,
            "M.CheckPermission": ErrorKind.HUB,
            "M.SendDocument": ErrorKind.HUB,
            "M.Exist": ErrorKind.DUPLICATE,
            "M.SaveDocError": ErrorKind.HUB,
            "N.MessageHeader.From.OrganId": ErrorKind.INVALID,
            "N.MessageHeader.TraceHeaderList.TraceHeader": ErrorKind.INVALID,
            "N.MessageHeader.ErrorList": ErrorKind.INVALID,
            "R.MessageHeader.Subject": ErrorKind.INVALID,
            "T.MessageHeader.DocumentType.Type": ErrorKind.INVALID,
            "M.MessageHeader.Code": ErrorKind.INVALID,
            "MessageHeader.Subject": ErrorKind.INVALID,
            "MessageHeader.Content": ErrorKind.INVALID,
            "PromulgationDate": ErrorKind.INVALID,
            "DocumentId": ErrorKind.INVALID,
            "R.AttachmentName": ErrorKind.INVALID,
            "Something.New": ErrorKind.UNKNOWN,
        }
        for code, kind in table.items():
            data = answer("SendDocument", report(False, (code, f"text of {code}")))
            with self.assertRaises(HubRefusal) as caught:
                edochub.parse_send_document(data)
            self.assertEqual((caught.exception.code, caught.exception.kind), (code, kind), code)
            self.assertEqual(caught.exception.description, f"text of {code}")
            self.assertIn(code, caught.exception.message_en)
            self.assertIn("từ chối", caught.exception.message_vi)
        duplicate = answer(
            "UpdateTraces", report(False, ("M.UpdateTraces", "Exist trace on esb with ..."))
        )
        with self.assertRaises(HubRefusal) as caught:
            edochub.parse_simple(duplicate, "UpdateTraces")
        self.assertIs(caught.exception.kind, ErrorKind.DUPLICATE)

    def test_empty_error_list_is_wrong_credentials(self) -> None:
        for action in ("GetPendingDocumentIds", "GetTraces", "GetOrganizations"):
            data = answer(action, report(False))
            parse = {
                "GetPendingDocumentIds": edochub.parse_pending,
                "GetTraces": edochub.parse_traces,
                "GetOrganizations": edochub.parse_organizations,
            }[action]
            with self.assertRaises(HubRefusal) as caught:
                parse(data)
            self.assertIs(caught.exception.kind, ErrorKind.AUTH)
            self.assertEqual(caught.exception.code, "")

    def test_several_errors_are_all_kept(self) -> None:
        data = answer("ConfirmReceived", report(False, ("M.OrganId", "a"), ("M.DocumentId", "b")))
        with self.assertRaises(HubRefusal) as caught:
            edochub.parse_simple(data, "ConfirmReceived")
        self.assertEqual(len(caught.exception.report.errors), 2)
        self.assertTrue(
            edochub.parse_simple(answer("ConfirmReceived", report(True)), "ConfirmReceived").ok
        )

    def test_not_answers(self) -> None:
        fault = edochub.answer_envelope(
            "<soapenv:Fault><faultcode>soapenv:Server</faultcode>"
            "<faultstring>boom</faultstring></soapenv:Fault>"
        )
        hostile = (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b'<soapenv:Envelope xmlns:soapenv="' + SOAP_NS.encode() + b'">'
            b"<soapenv:Body>&b;</soapenv:Body></soapenv:Envelope>"
        )
        xxe = (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
        )
        soap12 = (
            b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
        )
        for data in [
            fault,
            edochub.answer_envelope(""),  # unknown action
            hostile,
            xxe,
            b"<html><body>Proxy error</body></html>",
            b"not xml at all",
            b"",
            soap12,
            answer("GetTraces", "<edXML:Other/>"),
            edochub.wrapped("GetPendingDocumentIds", "<edXML:Nothing/>"),
        ]:
            for parse in (edochub.parse_traces, edochub.parse_pending):
                self.assertRaises(HubProtocolError, parse, data)
        with self.assertRaises(HubProtocolError) as caught:
            edochub.parse_traces(fault)
        self.assertIn("boom", caught.exception.message_en)
        self.assertIn("SOAP", caught.exception.message_vi)

    def test_pending_organizations(self) -> None:
        data = answer(
            "GetPendingDocumentIds",
            "<edXML:DocumentIds><edXML:DocumentId>1052</edXML:DocumentId>"
            "<edXML:DocumentId>1057</edXML:DocumentId><edXML:DocumentId>1052</edXML:DocumentId>"
            "</edXML:DocumentIds>",
        )
        self.assertEqual(edochub.parse_pending(data), (1052, 1057))
        empty = answer("GetPendingDocumentIds", "<edXML:DocumentIds/>")
        self.assertEqual(edochub.parse_pending(empty), ())
        bad = answer(
            "GetPendingDocumentIds",
            "<edXML:DocumentIds><edXML:DocumentId>x</edXML:DocumentId></edXML:DocumentIds>",
        )
        self.assertRaises(HubProtocolError, edochub.parse_pending, bad)
        org = Organization(ME, "Sở A", "UBND tỉnh", email="a@example.invalid")
        orgs = answer(
            "GetOrganizations",
            f"<edXML:Organizations>{edochub.organization_xml(org)}</edXML:Organizations>",
        )
        self.assertEqual(edochub.parse_organizations(orgs), (org,))


def trace_answer(*codes: int) -> bytes:
    traces = "".join(
        edochub.trace_xml(
            edochub.Trace(
                from_=Organization(OTHER, "Receiver"),
                response_for=ResponseFor(ME, "123/UBND-VP", "2024/05/10 00:00:00", "x"),
                staff=StaffInfo(staff="Clerk"),
                code=code,
                description="d",
                timestamp="2024/05/10 10:15:00",
            )
        )
        for code in codes
    )
    return answer("GetTraces", f"<edXML:Traces>{traces}</edXML:Traces>")


class TraceTests(SynchronousTestCase):
    def test_codes_map_to_our_status_codes(self) -> None:
        codes = (1, 2, 3, 4, 5, 6, 13, 15, 16)
        traces = edochub.parse_traces(trace_answer(*codes))
        self.assertEqual(
            [t.status for t in traces],
            [StatusCode(f"{c:02d}") for c in codes],
        )
        self.assertTrue(all(t.kind is TraceStatus.STATUS for t in traces))
        self.assertIn(b"<edXML:StatusCode>3</edXML:StatusCode>", trace_answer(3))  # unpadded
        first = traces[0]
        self.assertEqual(first.from_.organ_id, OTHER)
        self.assertEqual(first.response_for.code, "123/UBND-VP")
        self.assertEqual(first.staff.staff, "Clerk")
        self.assertEqual(first.moment, dt.datetime(2024, 5, 10, 10, 15, tzinfo=edochub.VIETNAM))

    def test_999_is_a_send_failure_and_unknown_codes_are_kept(self) -> None:
        failed, unknown = edochub.parse_traces(trace_answer(999, 7))
        self.assertIs(failed.kind, TraceStatus.SEND_FAILED)
        self.assertIsNone(failed.status)
        self.assertIs(unknown.kind, TraceStatus.UNKNOWN)
        self.assertEqual(unknown.code, 7)
        self.assertEqual(edochub.parse_traces(answer("GetTraces", "<edXML:Traces/>")), ())
        self.assertEqual(edochub.hub_code(StatusCode.RECALL_AGREED), "15")

    def test_non_numeric_code_is_not_an_answer(self) -> None:
        data = trace_answer(3).replace(b">3</edXML:StatusCode>", b">x</edXML:StatusCode>")
        self.assertRaises(HubProtocolError, edochub.parse_traces, data)

    def test_times_and_dates(self) -> None:
        self.assertEqual(edochub.format_time(MOMENT), "2024/05/10 09:30:00")
        self.assertRaises(ValueError, edochub.format_time, dt.datetime(2024, 5, 10))
        self.assertEqual(edochub.parse_date("10/05/2024"), dt.date(2024, 5, 10))
        self.assertEqual(edochub.parse_date("2024/05/10 00:00:00"), dt.date(2024, 5, 10))
        self.assertIsNone(edochub.parse_date("May 10"))
        self.assertEqual(
            edochub.parse_time("10/05/2024 09:30:00"), edochub.parse_time("2024/05/10 09:30:00")
        )
        self.assertIsNone(edochub.parse_time("soon"))


REBUILT = f"""<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Header>
<edXML:MessageHeader xmlns:edXML="{EDOC_NS}">
 <edXML:From><edXML:OrganId>{ME}</edXML:OrganId><edXML:OrganName>Sender</edXML:OrganName>
  <edXML:OrganInCharge>Province X</edXML:OrganInCharge></edXML:From>
 <edXML:To><edXML:OrganId>{OTHER}</edXML:OrganId></edXML:To>
 <edXML:To><edXML:OrganId>000.00.03.H99</edXML:OrganId></edXML:To>
 <edXML:DocumentId>{ME},2024/05/10,123/UBND-VP</edXML:DocumentId>
 <edXML:Code><edXML:CodeNumber>123</edXML:CodeNumber>
  <edXML:CodeNotation>UBND-VP</edXML:CodeNotation></edXML:Code>
 <edXML:PromulgationInfo><edXML:PromulgationDate>10/05/2024</edXML:PromulgationDate>
 </edXML:PromulgationInfo><edXML:Subject>Subject</edXML:Subject>
</edXML:MessageHeader>
<edXML:TraceHeaderList xmlns:edXML="{EDOC_NS}"><edXML:TraceHeader>
 <edXML:OrganId>{ME}</edXML:OrganId><edXML:Timestamp>10/05/2024 09:30:00</edXML:Timestamp>
 </edXML:TraceHeader><edXML:Bussiness><edXML:BussinessDocType>2</edXML:BussinessDocType>
 </edXML:Bussiness></edXML:TraceHeaderList>
<edXML:Signature xmlns:edXML="{EDOC_NS}"><edXML:KeyInfo><edXML:Token>SENDER-TOKEN</edXML:Token>
</edXML:KeyInfo></edXML:Signature>
</soapenv:Header><soapenv:Body>
<edXML:Manifest xmlns:edXML="{EDOC_NS}">
 <edXML:Reference xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:3f2c-uuid"
   xlink:type="application/pdf"><edXML:AttachmentName>decision.pdf</edXML:AttachmentName>
 <edXML:Description>Quyết định</edXML:Description></edXML:Reference>
 <edXML:Reference href="cid:second"><edXML:AttachmentName>b.txt</edXML:AttachmentName>
 </edXML:Reference>
</edXML:Manifest></soapenv:Body></soapenv:Envelope>""".encode()


class DocumentTests(SynchronousTestCase):
    def test_rebuild_path_quirks_and_base64_parts(self) -> None:
        pdf = b"%PDF-1.4\n\x00\x01binary"
        parts = (
            Part("3f2c-uuid", "application/pdf", base64.encodebytes(pdf)),
            Part("second", "text/plain", base64.b64encode(b"hello")),
        )
        content_type, body = edochub.multipart_related(Message(REBUILT, parts))
        message = edochub.split_message(content_type, body)
        doc = edochub.parse_document(message, 1052)
        self.assertEqual(doc.hub_id, 1052)
        self.assertEqual(doc.code, "123/UBND-VP")
        self.assertEqual(doc.from_.in_charge, "Province X")  # OrganInCharge read too
        self.assertEqual([t.organ_id for t in doc.to], [OTHER, "000.00.03.H99"])
        self.assertEqual(doc.promulgation_date, dt.date(2024, 5, 10))  # dd/MM/yyyy read
        self.assertEqual(doc.business_doc_type, 2)  # Bussiness spelling read
        self.assertEqual(
            [(a.name, a.content_type, a.data) for a in doc.attachments],
            [("decision.pdf", "application/pdf", pdf), ("b.txt", "text/plain", b"hello")],
        )
        self.assertEqual(doc.attachments[0].description, "Quyết định")
        self.assertNotIn(b"SENDER-TOKEN", doc.message_header + doc.trace_header_list)
        self.assertNotIn("SENDER-TOKEN", repr(doc))

    def test_missing_part_or_header_and_error_report(self) -> None:
        self.assertRaises(HubProtocolError, edochub.parse_document, Message(REBUILT), 1)
        bare = edochub.answer_envelope(f'<edXML:Manifest xmlns:edXML="{EDOC_NS}"/>')
        self.assertRaises(HubProtocolError, edochub.parse_document, Message(bare), 1)
        refused = edochub.answer_envelope(
            report(False, ("M.GetDocumentCheckAllow", "no")).replace(
                "<edXML:Report>", f'<edXML:Report xmlns:edXML="{EDOC_NS}">', 1
            )
        )
        with self.assertRaises(HubRefusal) as caught:
            edochub.parse_document(Message(refused), 1)
        self.assertIs(caught.exception.kind, ErrorKind.NOT_FOUND)
