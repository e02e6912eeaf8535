"""The contracts, judged by zeep (an independent client): it loads each WSDL with its XSD, builds
every request, which gateway.soap parses and validates; it reads our responses and our faults."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import zeep
from lxml import etree
from zeep.exceptions import Fault as ZeepFault

from twisted.trial.unittest import SynchronousTestCase

from edxml.findings import Finding, Severity
from gateway import soap
from gateway.soap import Face, FaultCode, GatewayFault, SoapVersion

VN = dt.timezone(dt.timedelta(hours=7))
T0 = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
ENVELOPE = b"<edXML>" + bytes(range(256)) + b"</edXML>"

# One valid set of arguments per operation, as an office system would pass them to zeep.
REQUESTS: dict[str, dict[str, Any]] = {
    "SendDocument": {"Envelope": ENVELOPE, "ClientReference": "VB-2026-001"},
    "GetSendStatus": {"DocumentId": "000.00.00.H23,2026/11/25,12/QĐ-UBND"},
    "ReceiveDocuments": {"OrganId": "000.00.00.H23", "Max": 5},
    "MarkReceived": {"MessageId": ["m1", "m2"]},
    "UpdateStatus": {
        "MessageId": "m1",
        "OrganId": "000.00.00.H23",
        "StatusCode": "03",
        "Description": "Đã tiếp nhận",
        "Staff": {"Name": "Nguyễn Văn A", "Department": "Văn thư"},
    },
    "ReceiveStatuses": {"OrganId": "000.00.00.H23"},
    "MarkStatusesReceived": {"StatusId": ["s1"]},
    "RecallDocument": {"DocumentId": "000.00.00.H23,2026/11/25,12/QĐ-UBND", "Reason": "Sai sót"},
    "AnswerRecall": {
        "DocumentId": "000.00.00.H23,2026/11/25,12/QĐ-UBND",
        "OrganId": "000.00.00.G01",
        "Agree": True,
    },
    "GetDirectory": {"Pattern": "H23"},
    "IssueDocumentId": {"OrganId": "000.00.00.H23", "Notation": "UBND-VP", "Register": "cv"},
    "Deliver": {"Package": ENVELOPE},
}


@attrs.frozen
class _Reply:
    """The part of requests.Response that zeep's process_reply reads."""

    status_code: int
    content: bytes
    headers: dict[str, str]
    encoding: str = "utf-8"


def _client(face: Face) -> zeep.Client:
    return zeep.Client(str(soap.contract_path(face.wsdl_name)))


def _bindings(client: zeep.Client) -> dict[SoapVersion, Any]:
    found = {}
    for binding in client.wsdl.bindings.values():
        version = SoapVersion.SOAP12 if "Soap12" in binding.name.localname else SoapVersion.SOAP11
        found[version] = binding
    return found


def _request_headers(version: SoapVersion, face: Face, operation: str) -> tuple[str, str | None]:
    action = face.action(operation)
    if version is SoapVersion.SOAP11:
        return "text/xml; charset=utf-8", f'"{action}"'
    return f'application/soap+xml; charset=utf-8; action="{action}"', None


def _reply(client: zeep.Client, binding: Any, operation: str, response: soap.SoapResponse) -> Any:
    reply = _Reply(response.status, response.body, {"Content-Type": response.content_type})
    return binding.process_reply(client, binding.get(operation), reply)


class ContractTests(SynchronousTestCase):
    def test_every_operation_in_both_bindings(self) -> None:
        for face in Face:
            bindings = _bindings(_client(face))
            self.assertEqual(set(bindings), set(SoapVersion))
            for binding in bindings.values():
                self.assertEqual(sorted(binding._operations), sorted(face.operations))
                for name in face.operations:
                    self.assertEqual(binding.get(name).soapaction, face.action(name))
        self.assertEqual(set(REQUESTS), set(soap.OFFICE_OPERATIONS + soap.EXCHANGE_OPERATIONS))

    def test_fault_codes_match_the_contracts(self) -> None:
        for face in Face:
            tree = etree.parse(str(soap.contract_path(face.xsd_name)))
            values = tree.xpath(
                "//xs:simpleType[@name='FaultCode']//xs:enumeration/@value",
                namespaces={"xs": soap.XSD_NS},
            )
            self.assertEqual(sorted(values), sorted(c.value for c in FaultCode))

    def test_every_element_is_documented(self) -> None:
        ns = {"xs": soap.XSD_NS}
        for face in Face:
            tree = etree.parse(str(soap.contract_path(face.xsd_name)))
            named = tree.xpath(
                "//xs:element | //xs:simpleType[@name] | //xs:complexType[@name]", namespaces=ns
            )
            self.assertGreater(len(named), 5)
            for node in named:
                docs = node.xpath("xs:annotation/xs:documentation", namespaces=ns)
                self.assertTrue(docs, f"{face.value}: {node.get('name')} is not documented")

    def test_zeep_requests_parse_and_validate(self) -> None:
        for face in Face:
            client = _client(face)
            for version, binding in _bindings(client).items():
                for operation in face.operations:
                    message = binding._create(operation, (), REQUESTS[operation], client=client)
                    # zeep returns (envelope, headers) from _create in 4.x
                    envelope = message[0] if isinstance(message, tuple) else message
                    body = etree.tostring(envelope)
                    content_type, action = _request_headers(version, face, operation)
                    request = soap.parse_request(body, content_type, action)
                    self.assertEqual(request.version, version)
                    self.assertEqual(request.operation, operation)
                    self.assertEqual(request.namespace, face.namespace)
                    soap.validate(request.body_element, face)
        request = soap.parse_request(
            etree.tostring(
                _client(Face.OFFICE).create_message(
                    _client(Face.OFFICE).service, "SendDocument", **REQUESTS["SendDocument"]
                )
            ),
            "text/xml",
            None,
        )
        payload = soap.child(request.body_element, "Envelope")
        assert payload is not None
        self.assertEqual(soap.decode_base64(payload), ENVELOPE)

    def test_responses_read_by_zeep(self) -> None:
        client = _client(Face.OFFICE)
        staff = soap.Staff(name="Nguyễn Văn A")
        history = (
            soap.StatusEntry("01", T0, "000.00.00.G01"),
            soap.StatusEntry("03", T0 + dt.timedelta(hours=1), "000.00.00.G01", "Nhận", staff),
        )
        cases: list[tuple[str, Any, Any]] = [
            (
                "SendDocument",
                soap.send_document_response("m1", [soap.Delivery("000.00.00.G01", "queued")]),
                lambda r: (r.MessageId, r.Delivery[0].OrganId, r.Delivery[0].State),
            ),
            (
                "GetSendStatus",
                soap.get_send_status_response(
                    "m1",
                    "D1",
                    [soap.RecipientStatus("000.00.00.G01", "sent", T0, "03", history)],
                ),
                lambda r: (
                    r.Recipient[0].SentAt,
                    [s.Code for s in r.Recipient[0].History.Status],
                    r.Recipient[0].History.Status[1].Staff.Name,
                ),
            ),
            (
                "ReceiveDocuments",
                soap.receive_documents_response(
                    [
                        soap.InboundDocument(
                            "m2",
                            "new",
                            ENVELOPE,
                            soap.Verdict("valid", "valid", ("SchemaDeviation",)),
                            T0,
                            T0,
                            "D1",
                            "000.00.00.H23",
                        )
                    ]
                ),
                lambda r: (r[0].Envelope, r[0].Verdict.FindingCode),
            ),
            ("MarkReceived", soap.mark_received_response(2), lambda r: r),
            ("UpdateStatus", soap.update_status_response("s9"), lambda r: r),
            (
                "ReceiveStatuses",
                soap.receive_statuses_response([soap.StatusEvent("s1", "D1", history[1], "m1")]),
                lambda r: (r[0].StatusId, r[0].Status.Code),
            ),
            ("MarkStatusesReceived", soap.mark_statuses_received_response(1), lambda r: r),
            (
                "RecallDocument",
                soap.recall_document_response("m3", [soap.Delivery("000.00.00.G01", "queued")]),
                lambda r: (r.MessageId, len(r.Delivery)),
            ),
            ("AnswerRecall", soap.answer_recall_response(), lambda r: r),
            (
                "GetDirectory",
                soap.get_directory_response(
                    [soap.Agency("000.00.00.G01", "Sở Tư pháp", "local", "000.00.00.H23")]
                ),
                lambda r: [(a.OrganId, a.Name, a.Parent, a.Route) for a in r],
            ),
            (
                "IssueDocumentId",
                soap.issue_document_id_response(
                    "07", "UBND-VP", "000.00.00.H23,2026/03/04,07/UBND-VP", 2026
                ),
                lambda r: (r.CodeNumber, r.DocumentId, r.Year),
            ),
        ]
        expected = {
            "SendDocument": ("m1", "000.00.00.G01", "queued"),
            "GetSendStatus": (T0.astimezone(VN), ["01", "03"], "Nguyễn Văn A"),
            "ReceiveDocuments": (ENVELOPE, ["SchemaDeviation"]),
            "MarkReceived": 2,
            "UpdateStatus": "s9",
            "ReceiveStatuses": ("s1", "03"),
            "MarkStatusesReceived": 1,
            "RecallDocument": ("m3", 1),
            "AnswerRecall": True,
            "GetDirectory": [("000.00.00.G01", "Sở Tư pháp", "000.00.00.H23", "local")],
            "IssueDocumentId": ("07", "000.00.00.H23,2026/03/04,07/UBND-VP", 2026),
        }
        for version, binding in _bindings(client).items():
            for operation, element, pick in cases:
                soap.validate(element, Face.OFFICE, response=True)
                result = _reply(client, binding, operation, soap.ok_response(version, element))
                self.assertEqual(pick(result), expected[operation], (version, operation))

        exchange = _client(Face.EXCHANGE)
        receipt = soap.Receipt("r1", "m1", T0, duplicate=False)
        element = soap.deliver_response(receipt)
        soap.validate(element, Face.EXCHANGE, response=True)
        for version, binding in _bindings(exchange).items():
            result = _reply(exchange, binding, "Deliver", soap.ok_response(version, element))
            self.assertEqual(
                (result.ReceiptId, result.MessageId, result.ReceivedAt, result.Duplicate),
                ("r1", "m1", T0, False),
            )
            self.assertEqual(result.ReceivedAt.utcoffset(), dt.timedelta(hours=7))

    def test_faults_raised_by_zeep(self) -> None:
        finding = Finding("OrganIdMissing", Severity.ERROR, "no OrganId", "thiếu mã", "/x/From")
        first = soap.Receipt("r1", "m1", T0, duplicate=True)
        for face in Face:
            client = _client(face)
            operation = face.operations[0]
            for version, binding in _bindings(client).items():
                for error in (
                    GatewayFault(FaultCode.DUPLICATE, first_receipt=first),
                    GatewayFault(FaultCode.RULE_VIOLATION, findings=[finding]),
                    GatewayFault(FaultCode.UNAVAILABLE),
                ):
                    response = soap.fault_response(version, error, face)
                    with self.assertRaises(ZeepFault) as caught:
                        _reply(client, binding, operation, response)
                    fault = caught.exception
                    detail = fault.detail
                    ns = {"g": face.namespace}
                    self.assertEqual(
                        detail.findtext("g:GatewayFault/g:Code", namespaces=ns), error.code.value
                    )
                    self.assertEqual(fault.message, error.text_en)
                    server = error.code is FaultCode.UNAVAILABLE
                    if version is SoapVersion.SOAP11:
                        self.assertEqual(fault.code, "soap:Server" if server else "soap:Client")
                    else:
                        self.assertEqual(fault.code, "soap:Receiver" if server else "soap:Sender")
                        self.assertEqual(fault.subcodes[0].localname, error.code.value)
                    gf = detail.find("g:GatewayFault", namespaces=ns)
                    schema_ok = etree.XMLSchema(etree.parse(str(soap.contract_path(face.xsd_name))))
                    self.assertTrue(schema_ok.validate(gf), schema_ok.error_log)

    def test_served_wsdl_points_at_the_node(self) -> None:
        address = "https://127.0.0.1:8443/office"
        served = soap.served_wsdl(Face.OFFICE, address)
        root = etree.fromstring(served)
        locations = root.xpath("//*[local-name()='address']/@location")
        self.assertEqual(locations, [address, address])
        imports = root.xpath("//xs:import/@schemaLocation", namespaces={"xs": soap.XSD_NS})
        self.assertEqual(imports, [address + "?xsd=office.xsd"])
        self.assertIn(b"GatewayFault", soap.xsd_bytes(Face.OFFICE))
