"""gateway.vxpsim, the national axis simulator, on 127.0.0.1 (port 0) with the real client
(gateway.vxpclient) and with raw SDK-shaped requests: routing of documents and status packets,
the inbox loop, the axis's refusals, the wire shape of answers, the control face, state kept
across a restart, and the `simulate vxp` command in a real subprocess.

Helpers here (SYSTEMS, SimTestCase, edoc, raw_call) are shared with test_vxpclient.py."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, cast

import treq
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.http_headers import Headers
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyRequest

from edxml import vxp
from edxml.codes import NS
from gateway.vxpclient import VxpClient, VxpRefused, VxpUnavailable
from gateway.vxpsim import System, VxpSimulator, fault_value

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = (FIXTURES / "sample_envelope.edxml").read_bytes()  # H23 -> G22, G09
STATUS_05 = (FIXTURES / "realworld" / "status_processing_05.edxml").read_bytes()  # H41 -> G22

H23, H23_VP, G22, G09, H41 = (
    "000.00.00.H23",
    "000.00.01.H23",
    "000.00.00.G22",
    "000.00.00.G09",
    "000.00.00.H41",
)
SECRETS = {
    "sys.h23": b"h23-secret-Xq7pZ",
    "sys.g22": b"g22-secret-Wm3kR",
    "sys.g09": b"g09-secret-Lb8tV",
    "sys.h41": b"h41-secret-Jc2nF",
}
AGENCIES = {
    "sys.h23": [H23, H23_VP],
    "sys.g22": [G22],
    "sys.g09": [G09],
    "sys.h41": [H41],
}


def systems() -> dict[str, System]:
    return {sid: System(SECRETS[sid], AGENCIES[sid]) for sid in SECRETS}


def edoc(
    sender: str, recipients: list[str], *, attachment: bytes = b"", subject: str = "V/v"
) -> bytes:
    """A small edXML envelope from `sender` to `recipients`, with one attachment."""
    to = "".join(
        f"<edXML:To><edXML:OrganId>{code}</edXML:OrganId></edXML:To>" for code in recipients
    )
    encoded = base64.b64encode(attachment).decode("ascii")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="{NS}">'
        f'<edXML:edXMLEnvelope xmlns:edXML="{NS}"><edXML:edXMLHeader><edXML:MessageHeader>'
        f"<edXML:From><edXML:OrganId>{sender}</edXML:OrganId></edXML:From>{to}"
        "<edXML:Code><edXML:CodeNumber>12</edXML:CodeNumber>"
        "<edXML:CodeNotation>UBND-VP</edXML:CodeNotation></edXML:Code>"
        f"<edXML:Subject>{subject}</edXML:Subject>"
        "</edXML:MessageHeader></edXML:edXMLHeader><edXML:edXMLBody/></edXML:edXMLEnvelope>"
        '<AttachmentEncoded><Attachment ContentID="a1"><ContentTransferEncoded>'
        f"{encoded}</ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>"
    ).encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def raw_call(
    url: str,
    system_id: str,
    op: str,
    params: dict[str, str],
    *,
    secret: bytes | None = None,
    body: bytes = b"",
    content_type: str = vxp.JSON_TYPE,
    timestamp: str = "25112026T132359+0522",
) -> tuple[int, Headers, bytes]:
    """One SDK-shaped request (the SDK's stale timestamp, its key spellings), raw answer."""
    signed = vxp.sign_request(
        params,
        system_id=system_id,
        secret=secret if secret is not None else SECRETS[system_id],
        timestamp=timestamp,
        content_type=content_type,
    )
    headers = Headers()
    for name, value in signed.headers:
        headers.addRawHeader(name, value)
    response = await treq.post(f"{url}/{op}", data=body or None, headers=headers, persistent=False)
    content = await treq.content(response)
    return response.code, response.headers, content


class SimTestCase(TestCase):
    """A simulator on 127.0.0.1:0 per test; `sim_options` for its constructor."""

    sim_options: ClassVar[dict[str, Any]] = {}

    def setUp(self) -> None:
        self.sim = self.make_sim(**self.sim_options)
        self.url = self.sim.listen()
        self.addCleanup(lambda: Deferred.fromCoroutine(self.sim.stop()))

    def make_sim(self, **options: Any) -> VxpSimulator:
        return VxpSimulator(systems(), reactor=reactor, **options)

    def client(self, system_id: str = "sys.h23", **options: Any) -> VxpClient:
        options.setdefault("timeout", 10.0)
        secret = options.pop("secret", SECRETS[system_id])
        url = options.pop("url", self.url)
        return VxpClient(url, system_id, secret, reactor=reactor, **options)

    def state(self) -> dict[str, Any]:
        return self.sim.state()


class RoutingTests(SimTestCase):
    async def test_send_list_get_acknowledge(self) -> None:
        h23, g22, g09 = self.client("sys.h23"), self.client("sys.g22"), self.client("sys.g09")
        doc_id = await h23.send_edoc(SAMPLE, from_=H23, message_type="edoc")
        self.assertRegex(doc_id, r"^[0-9a-f]{24}$")
        (item,) = await g22.received("edoc")
        self.assertEqual((item.from_, item.to, item.message_type), (H23, G22, "edoc"))
        self.assertEqual((item.status, item.service_type), ("initial", "eDoc"))
        self.assertNotEqual(item.doc_id, doc_id)  # the upload's id is the sender's
        self.assertIsNotNone(item.created_time)
        self.assertEqual(await g22.count("edoc"), 1)
        self.assertEqual(await g22.received("status"), ())
        self.assertEqual(await g22.get_edoc(item.doc_id), SAMPLE)
        await g22.update_status(item.doc_id, "done")
        self.assertEqual(await g22.received("edoc"), ())
        self.assertEqual(await g22.count("edoc"), 0)
        (other,) = await g09.received("edoc")  # the second recipient, another system
        self.assertEqual(other.to, G09)
        sent = {entry["toCode"]: entry for entry in await h23.sent_list(doc_id)}
        self.assertEqual(set(sent), {G22, G09})
        self.assertEqual(sent[G22]["receiveStatus"], "done")
        self.assertEqual(sent[G09]["receiveStatus"], "initial")
        self.assertEqual(sent[G22]["senderDocId"], doc_id)
        self.assertEqual(sent[G22]["receiverDocId"], item.doc_id)
        self.assertEqual(sent[G22]["notation"], "123/UBND-VP")
        self.assertEqual(await h23.received("edoc"), ())  # nothing for the sender

    async def test_an_agency_under_the_system_may_send(self) -> None:
        await self.client("sys.h23").send_edoc(
            edoc(H23_VP, [G22]), from_=H23_VP, message_type="edoc"
        )
        await self.client("sys.h23").send_edoc(
            edoc(H23, [G22]), from_="sys.h23", message_type="edoc"
        )
        self.assertEqual(len(await self.client("sys.g22").received("edoc")), 2)

    async def test_status_goes_to_response_for(self) -> None:
        await self.client("sys.h41").send_edoc(STATUS_05, from_=H41, message_type="status")
        g22 = self.client("sys.g22")
        self.assertEqual(await g22.received("edoc"), ())
        (item,) = await g22.received("status")
        self.assertEqual((item.from_, item.to, item.message_type), (H41, G22, "status"))
        self.assertEqual(await g22.count("status"), 1)
        self.assertEqual(await g22.get_edoc(item.doc_id), STATUS_05)

    async def test_sender_not_registered_for_the_system(self) -> None:
        with self.assertRaises(VxpRefused) as caught:
            await self.client("sys.h23").send_edoc(SAMPLE, from_=G22, message_type="edoc")
        self.assertEqual(
            caught.exception.error_desc,
            f"Don vi gui {G22} khong dung voi ma da dang ky: sys.h23",
        )
        self.assertEqual(caught.exception.error_code, "-1")
        self.assertEqual(self.state()["uploads"], 0)

    async def test_unknown_recipient_stores_nothing(self) -> None:
        with self.assertRaises(VxpRefused) as caught:
            await self.client().send_edoc(
                edoc(H23, [G22, "000.00.00.Z99"]), from_=H23, message_type="edoc"
            )
        self.assertEqual(caught.exception.error_desc, "Khong tim thay don vi nhan 000.00.00.Z99")
        self.assertEqual(self.state()["items"], [])
        self.assertEqual(self.state()["uploads"], 0)

    async def test_wrong_secret_is_refused_and_stores_nothing(self) -> None:
        with self.assertRaises(VxpRefused) as caught:
            await self.client(secret=b"not-the-secret").send_edoc(
                SAMPLE, from_=H23, message_type="edoc"
            )
        self.assertIn("Xac thuc khong thanh cong", caught.exception.error_desc)
        self.assertIn("hash-header", caught.exception.error_desc)
        self.assertTrue(caught.exception.error_desc.isascii())
        self.assertEqual(self.state()["uploads"], 0)
        with self.assertRaises(VxpRefused) as unknown:
            await VxpClient(self.url, "sys.nobody", b"x", reactor=reactor).received("edoc")
        self.assertIn("sys.nobody", unknown.exception.error_desc)

    async def test_not_edxml_and_bad_hash_file(self) -> None:
        with self.assertRaises(VxpRefused) as caught:
            await self.client().send_edoc(b"<!DOCTYPE x><x/>", from_=H23, message_type="edoc")
        self.assertIn("Tep edXML khong hop le", caught.exception.error_desc)
        params = {
            "from": H23,
            "servicetype": "eDoc",
            "messagetype": "edoc",
            "hash-file": vxp.lossy_hash_file(b"something else"),
        }
        code, _, body = await raw_call(
            self.url,
            "sys.h23",
            "sendEdoc",
            params,
            body=SAMPLE + b"\r\n",
            content_type=vxp.OCTET_STREAM,
        )
        answer = json.loads(body)
        self.assertEqual((code, answer["status"], answer["DocId"]), (200, "FAIL", ""))
        self.assertIn("hash-file", answer["ErrorDesc"])
        params["hash-file"] = vxp.lossy_hash_file(SAMPLE).upper()  # lossy, any case
        code, _, body = await raw_call(
            self.url,
            "sys.h23",
            "sendEdoc",
            params,
            body=SAMPLE + b"\r\n",
            content_type=vxp.OCTET_STREAM,
        )
        self.assertEqual(json.loads(body)["status"], "OK")

    async def test_sdk_spellings_and_idempotent_acknowledgment(self) -> None:
        await self.client().send_edoc(edoc(H23, [G22]), from_=H23, message_type="edoc")
        (item,) = await self.client("sys.g22").received("edoc")
        # The SDK's own shapes: `docid` in lowercase, stale timestamp, leftover parameters.
        params = {"docid": item.doc_id, "status": "processing", "filePath": "/var/edoc"}
        code, headers, body = await raw_call(
            self.url, "sys.g22", "updateStatus", params, body=b"{}"
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            headers.getRawHeaders(b"content-type"), [b"application/json; charset=UTF-8"]
        )
        self.assertEqual(
            json.loads(body), {"status": "OK", "ErrorCode": "0", "ErrorDesc": "Thanh cong"}
        )
        (still,) = await self.client("sys.g22").received("edoc")
        self.assertEqual(still.status, "processing")
        for _ in range(2):
            params = {"docid": item.doc_id, "status": "done"}
            code, _, body = await raw_call(self.url, "sys.g22", "updateStatus", params, body=b"{}")
            self.assertEqual(json.loads(body)["status"], "OK")
        (shown,) = self.state()["items"]
        self.assertEqual((shown["state"], shown["acks"]), ("done", 3))
        self.assertEqual(shown["ack_history"], ["processing", "done", "done"])
        self.assertEqual(await self.client("sys.g22").received("edoc"), ())
        with self.assertRaises(VxpRefused):
            await self.client("sys.g22").update_status(item.doc_id, "inbox")  # type: ignore[arg-type]

    async def test_failure_answers_keep_the_sdk_fields(self) -> None:
        code, _, body = await raw_call(
            self.url, "sys.g22", "getEdoc", {"docId": "nope"}, body=b"{}"
        )
        self.assertEqual(
            json.loads(body),
            {
                "status": "FAIL",
                "ErrorCode": "-1",
                "ErrorDesc": "Khong tim thay van ban nope",
                "data": "",
            },
        )
        code, _, body = await raw_call(self.url, "sys.g22", "getEdoc", {}, body=b"{}", secret=b"x")
        self.assertEqual(json.loads(body)["data"], "")
        params = {"from": H23, "servicetype": "eDoc", "messagetype": "edoc"}
        code, _, body = await raw_call(self.url, "sys.h23", "sendEdoc", params, secret=b"x")
        self.assertEqual(json.loads(body)["DocId"], "")
        code, _, body = await raw_call(self.url, "sys.h23", "noSuchOp", {})
        self.assertEqual((code, json.loads(body)["status"]), (404, "FAIL"))

    async def test_another_systems_item_is_not_served(self) -> None:
        await self.client().send_edoc(edoc(H23, [G22]), from_=H23, message_type="edoc")
        (item,) = await self.client("sys.g22").received("edoc")
        with self.assertRaises(VxpRefused):
            await self.client("sys.g09").get_edoc(item.doc_id)
        with self.assertRaises(VxpRefused):
            await self.client("sys.g09").update_status(item.doc_id, "done")

    async def test_operations_at_the_root_too(self) -> None:
        root = self.url.removesuffix("/XrdAdapter/adapter")
        self.assertNotEqual(root, self.url)
        doc_id = await self.client(url=root).send_edoc(
            edoc(H23, [G22]), from_=H23, message_type="edoc"
        )
        self.assertTrue(doc_id)


class SdkCaptureTests(SimTestCase):
    """The captured requests of docs/vxp.md Appendix A, byte for byte over a raw socket, are
    accepted (their stale 2026 timestamp too)."""

    def setUp(self) -> None:
        super().setUp()
        self.sim.register_system("sys.test.01", System(b"dummy-secret-ABC", ["000.00.00.A01"]))

    async def exchange(self, request: bytes) -> tuple[bytes, Any]:
        port = int(self.url.split(":")[2].split("/")[0])

        def talk() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                connection.sendall(request)
                received = b""
                while chunk := connection.recv(65536):
                    received += chunk
                return received

        answer = await deferToThread(talk)
        head, _, body = answer.rpartition(b"\r\n\r\n")
        return head, json.loads(body)

    async def test_a1_and_a2(self) -> None:
        a1 = (
            "POST /XrdAdapter/adapter/getReceivedEdocList HTTP/1.1\r\n"
            "XroadVnpt-systemid: sys.test.01\r\n"
            "XroadVnpt-servicetype: eDoc\r\n"
            "XroadVnpt-messagetype: edoc\r\n"
            "XroadVnpt-timestamp: 25112026T132359+0522\r\n"
            "Content-Type: application/json\r\n"
            "XroadVnpt-Content-Type: application/json\r\n"
            "XroadVnpt-sign-header-key: systemid;servicetype;messagetype;timestamp;Content-Type\r\n"
            'XroadVnpt-sign-header: {"XroadVnpt-systemid":"sys.test.01","XroadVnpt-servicetype":'
            '"eDoc","XroadVnpt-messagetype":"edoc","XroadVnpt-timestamp":"25112026T132359+0522",'
            '"XroadVnpt-Content-Type":"application/json"}\r\n'
            "XroadVnpt-hash-header: "
            "7184c8dbf7be4b0b127bc364d0aac3ddddac18353b44a70836c8ea177e3bab37\r\n"
            "User-Agent: JAVASDKAgent/1.0.0 XRoad/VPCP\r\n"
            "XroadVnpt-version: 3.0.201608\r\n"
            "Content-Length: 0\r\n"
            "Host: 127.0.0.1:18099\r\n"
            "Connection: close\r\n"
            "Accept-Encoding: gzip,deflate\r\n\r\n"
        )
        head, answer = await self.exchange(a1.encode())
        self.assertTrue(head.startswith(b"HTTP/1.1 200"))
        self.assertEqual(answer["status"], "OK")
        self.assertEqual(answer["data"], [])
        a2 = (
            "POST /XrdAdapter/adapter/updateStatus HTTP/1.1\r\n"
            "XroadVnpt-systemid: sys.test.01\r\n"
            "XroadVnpt-docid: d1\r\n"
            "XroadVnpt-timestamp: 25112026T132359+0612\r\n"
            "Content-Type: application/json\r\n"
            "XroadVnpt-Content-Type: application/json\r\n"
            "XroadVnpt-status: done\r\n"
            "XroadVnpt-sign-header-key: systemid;docid;timestamp;Content-Type;status\r\n"
            'XroadVnpt-sign-header: {"XroadVnpt-systemid":"sys.test.01","XroadVnpt-docid":"d1",'
            '"XroadVnpt-timestamp":"25112026T132359+0612","XroadVnpt-Content-Type":'
            '"application/json","XroadVnpt-status":"done"}\r\n'
            "XroadVnpt-hash-header: "
            "850c92c7939cc2d3e4c8f4c80816d7cca9a6e0946d960b29952c874e4cea1156\r\n"
            "User-Agent: JAVASDKAgent/1.0.0 XRoad/VPCP\r\n"
            "XroadVnpt-version: 3.0.201608\r\n"
            "Content-Length: 2\r\n"
            "Host: 127.0.0.1:18099\r\n"
            "Connection: close\r\n"
            "Expect: 100-continue\r\n"
            "Accept-Encoding: gzip,deflate\r\n\r\n{}"
        )
        head, answer = await self.exchange(a2.encode())
        self.assertIn(b"HTTP/1.1 100 Continue", head)
        # Authenticated; there is just no item d1.
        self.assertEqual(answer["ErrorDesc"], "Khong tim thay van ban d1")


class DirectoryTests(SimTestCase):
    sim_options: ClassVar[dict[str, Any]] = {
        "agencies": [
            {"id": "1", "pid": "", "code": H23, "name": "UBND tỉnh Hà Nam", "mail": "a@b.vn"},
            {
                "id": "2",
                "pid": "1",
                "code": "000.00.00.K10",
                "name": "UBND tỉnh Ninh Bình",
                "oldCode": "000.00.00.H23",
            },
        ]
    }

    async def test_agencies(self) -> None:
        found = {a.code: a for a in await self.client().agencies()}
        self.assertEqual(set(found), {H23, "000.00.00.K10"})
        self.assertEqual(found["000.00.00.K10"].old_code, H23)
        self.assertEqual(found[H23].name, "UBND tỉnh Hà Nam")

    async def test_register_and_delete_an_agency(self) -> None:
        body = json.dumps({"id": "", "pcode": "sys.g22", "code": "000.00.05.G22", "name": "Vu"})
        _, _, answer = await raw_call(self.url, "sys.g22", "registerAgency", {}, body=body.encode())
        self.assertEqual(json.loads(answer)["status"], "OK")
        await self.client().send_edoc(edoc(H23, ["000.00.05.G22"]), from_=H23, message_type="edoc")
        (item,) = await self.client("sys.g22").received("edoc")
        self.assertEqual(item.to, "000.00.05.G22")
        self.assertIn("000.00.05.G22", {a.code for a in await self.client().agencies()})
        params = {"AgencyCode": "000.00.05.G22"}
        _, _, answer = await raw_call(self.url, "sys.g22", "deleteAgency", params, body=b"{}")
        self.assertEqual(json.loads(answer)["status"], "OK")
        with self.assertRaises(VxpRefused):
            await self.client().send_edoc(
                edoc(H23, ["000.00.05.G22"]), from_=H23, message_type="edoc"
            )


class FaultTests(SimTestCase):
    async def test_duplicate_listing(self) -> None:
        self.sim.set_faults({"duplicate_listing": True})
        await self.client().send_edoc(edoc(H23, [G22]), from_=H23, message_type="edoc")
        g22 = self.client("sys.g22")
        listed = await g22.received("edoc")
        self.assertEqual(len(listed), 2)
        self.assertEqual(listed[0], listed[1])
        await g22.get_edoc(listed[0].doc_id)
        await g22.update_status(listed[0].doc_id, "done")
        (ghost,) = await g22.received("edoc")  # acknowledged, and listed once more as pending
        self.assertEqual((ghost.doc_id, ghost.status), (listed[0].doc_id, "initial"))
        self.assertEqual(await g22.get_edoc(ghost.doc_id), edoc(H23, [G22]))
        await g22.update_status(ghost.doc_id, "done")  # idempotent
        self.assertEqual(await g22.received("edoc"), ())
        self.assertEqual(self.state()["fault_hits"]["duplicate_listing"], 2)

    async def test_not_ready(self) -> None:
        self.sim.set_faults({"not_ready": 2})
        await self.client().send_edoc(edoc(H23, [G22]), from_=H23, message_type="edoc")
        g22 = self.client("sys.g22")
        (item,) = await g22.received("edoc")
        for _ in range(2):
            with self.assertRaises(VxpRefused) as caught:
                await g22.get_edoc(item.doc_id)
            self.assertEqual(caught.exception.error_desc, "Van ban chua san sang")
        self.assertEqual(await g22.get_edoc(item.doc_id), edoc(H23, [G22]))
        self.assertEqual(self.state()["fault_hits"]["not_ready"], 2)
        self.assertEqual(self.state()["items"][0]["fetches"], 1)

    async def test_lost_acks_leave_the_item_pending(self) -> None:
        self.sim.set_faults({"lost_acks": 1})
        await self.client().send_edoc(edoc(H23, [G22]), from_=H23, message_type="edoc")
        g22 = self.client("sys.g22")
        (item,) = await g22.received("edoc")
        with self.assertRaises(VxpUnavailable):
            await g22.update_status(item.doc_id, "done")
        (again,) = await g22.received("edoc")  # never acknowledged: still pending
        self.assertEqual(again.doc_id, item.doc_id)
        await g22.update_status(item.doc_id, "done")
        self.assertEqual(await g22.received("edoc"), ())
        self.assertEqual(self.state()["fault_hits"]["lost_acks"], 1)
        self.assertEqual(self.state()["items"][0]["ack_history"], ["done"])

    async def test_http500_has_no_effect(self) -> None:
        self.sim.set_faults({"http500": 1})
        code, _, body = await raw_call(
            self.url,
            "sys.h23",
            "sendEdoc",
            {"from": H23, "servicetype": "eDoc", "messagetype": "edoc"},
            body=SAMPLE + b"\r\n",
            content_type=vxp.OCTET_STREAM,
        )
        self.assertEqual(code, 500)
        self.assertIn(b"<html>", body)
        self.assertEqual(self.state()["uploads"], 0)
        self.assertEqual(self.state()["faults"]["http500"], 0)
        self.assertEqual(self.state()["requests"]["sendEdoc"], 1)

    async def test_date_header_carries_the_clock_offset(self) -> None:
        import email.utils
        import time

        self.sim.set_faults({"clock_offset": -7200})
        _, headers, _ = await raw_call(self.url, "sys.h23", "getAgenciesList", {})
        (date,) = headers.getRawHeaders(b"date", [])
        shown = email.utils.parsedate_to_datetime(date.decode()).timestamp()
        self.assertLess(abs(shown - (time.time() - 7200)), 3)

    def test_fault_values(self) -> None:
        self.assertEqual(fault_value("slow", "1.5"), 1.5)
        self.assertEqual(fault_value("http500", "3"), 3)
        self.assertIs(fault_value("duplicate_listing", "on"), True)
        self.assertEqual(fault_value("clock_offset", -30), -30.0)
        for name, value in (("nope", 1), ("http500", "-1"), ("slow", "x"), ("not_ready", True)):
            with self.assertRaises(ValueError):
                fault_value(name, value)


class ControlFaceTests(SimTestCase):
    async def post(self, name: str, payload: Any) -> tuple[int, Any]:
        base = self.url.removesuffix("/XrdAdapter/adapter")
        response = await treq.post(
            f"{base}/_sim/{name}", data=json.dumps(payload).encode(), persistent=False
        )
        return response.code, json.loads(await treq.content(response))

    async def get_state(self) -> dict[str, Any]:
        base = self.url.removesuffix("/XrdAdapter/adapter")
        response = await treq.get(f"{base}/_sim/state", persistent=False)
        result: dict[str, Any] = json.loads(await treq.content(response))
        return result

    async def test_state_faults_systems_agencies(self) -> None:
        code, answer = await self.post("faults", {"http500": 1, "slow": 0})
        self.assertEqual((code, answer["faults"]["http500"]), (200, 1))
        self.assertEqual((await self.post("faults", {"bogus": 1}))[0], 400)
        code, _ = await self.post(
            "systems",
            {"system_id": "sys.new", "secret": "new-secret-Qz", "agencies": ["000.00.00.N01"]},
        )
        self.assertEqual(code, 200)
        self.assertEqual((await self.post("systems", {"system_id": "x"}))[0], 400)
        code, answer = await self.post("agencies", [{"code": "000.00.00.N01", "name": "New"}])
        self.assertEqual((code, answer["agencies"]), (200, 1))
        client = VxpClient(self.url, "sys.new", b"new-secret-Qz", reactor=reactor)
        with self.assertRaises(VxpUnavailable):
            await client.agencies()  # the http500 set above
        (agency,) = await client.agencies()
        self.assertEqual(agency.code, "000.00.00.N01")
        await self.client().send_edoc(edoc(H23, ["000.00.00.N01"]), from_=H23, message_type="edoc")
        state = await self.get_state()
        (item,) = state["items"]
        self.assertEqual(
            (item["to"], item["recipient_system"], item["acknowledged"]),
            ("000.00.00.N01", "sys.new", False),
        )
        self.assertEqual(state["uploads"], 1)
        self.assertEqual(state["requests"]["getAgenciesList"], 2)
        self.assertEqual(state["fault_hits"], {"http500": 1})
        self.assertNotIn("new-secret-Qz", json.dumps(state))
        for secret in SECRETS.values():
            self.assertNotIn(secret.decode(), json.dumps(state))

    def test_refuses_peers_off_loopback(self) -> None:
        request = DummyRequest([b"state"])
        request.path = b"/_sim/state"  # type: ignore[attr-defined]
        request.method = b"GET"
        request.client = IPv4Address("TCP", "192.0.2.7", 40000)
        self.assertIn(b"loopback", self.sim.render(cast(Request, request)))
        self.assertEqual(request.responseCode, 403)


class PersistenceTests(TestCase):
    async def test_state_survives_a_restart(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        first = VxpSimulator(systems(), reactor=reactor, state_file=path)
        url = await first.start()
        first.register_system("sys.late", System(b"late-secret", ["000.00.00.L01"]), runtime=True)
        h23 = VxpClient(url, "sys.h23", SECRETS["sys.h23"], reactor=reactor)
        document = edoc(H23, [G22, "000.00.00.L01"], attachment=b"%PDF-1.4 tiny")
        await h23.send_edoc(document, from_=H23, message_type="edoc")
        g22 = VxpClient(url, "sys.g22", SECRETS["sys.g22"], reactor=reactor)
        (item,) = await g22.received("edoc")
        await g22.get_edoc(item.doc_id)
        await first.stop()
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertNotIn(b"h23-secret", path.read_bytes())  # configured secrets stay where they are

        second = VxpSimulator(systems(), reactor=reactor, state_file=path)
        url = await second.start()
        self.addCleanup(lambda: Deferred.fromCoroutine(second.stop()))
        g22 = VxpClient(url, "sys.g22", SECRETS["sys.g22"], reactor=reactor)
        (again,) = await g22.received("edoc")
        self.assertEqual(again.doc_id, item.doc_id)
        self.assertEqual(await g22.get_edoc(item.doc_id), document)
        late = VxpClient(url, "sys.late", b"late-secret", reactor=reactor)
        self.assertEqual(len(await late.received("edoc")), 1)
        state = second.state()
        self.assertEqual(state["uploads"], 1)
        self.assertEqual(
            {i["to"]: i["fetches"] for i in state["items"]}, {G22: 2, "000.00.00.L01": 0}
        )
        self.assertEqual(state["requests"]["sendEdoc"], 1)


class CliTests(TestCase):
    async def test_simulate_vxp_in_a_subprocess(self) -> None:
        directory = Path(self.mktemp()).resolve()
        directory.mkdir(parents=True)
        (directory / "h23.secret").write_bytes(SECRETS["sys.h23"] + b"\n")
        config = {
            "systems": [
                {
                    "system_id": "sys.h23",
                    "secret_file": "h23.secret",
                    "agencies": AGENCIES["sys.h23"],
                },
                {
                    "system_id": "sys.g22",
                    "secret_env": "TEST_VXP_G22",
                    "agencies": AGENCIES["sys.g22"],
                },
                {"system_id": "sys.g09", "secret": SECRETS["sys.g09"].decode(), "agencies": [G09]},
            ]
        }
        (directory / "systems.json").write_text(json.dumps(config))
        env = {**os.environ, "TEST_VXP_G22": SECRETS["sys.g22"].decode()}
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from gateway.clisim import simulate; sys.exit(simulate())",
                "vxp",
                "--listen",
                "127.0.0.1:0",
                "--systems",
                str(directory / "systems.json"),
                "--state-file",
                str(directory / "state.json"),
                "--fault",
                "not_ready=1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

        def kill() -> None:
            if process.poll() is None:
                process.kill()

        self.addCleanup(kill)
        assert process.stdout is not None and process.stderr is not None
        line = await deferToThread(process.stdout.readline)
        url = json.loads(line)["listening"]
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/XrdAdapter/adapter$")
        h23 = VxpClient(url, "sys.h23", SECRETS["sys.h23"], reactor=reactor)
        g22 = VxpClient(url, "sys.g22", SECRETS["sys.g22"], reactor=reactor)
        await h23.send_edoc(edoc(H23, [G22]), from_=H23, message_type="edoc")
        (item,) = await g22.received("edoc")
        with self.assertRaises(VxpRefused):
            await g22.get_edoc(item.doc_id)  # --fault not_ready=1
        self.assertEqual(await g22.get_edoc(item.doc_id), edoc(H23, [G22]))
        process.send_signal(signal.SIGTERM)
        code = await deferToThread(process.wait, 20)
        errors = process.stderr.read().decode()
        process.stdout.close()
        process.stderr.close()
        self.assertEqual(code, 0, errors)
        self.assertIn("inline secret", errors)
        self.assertIn("getEdoc", errors)
        for secret in SECRETS.values():
            self.assertNotIn(secret.decode(), errors)
        self.assertTrue((directory / "state.json").exists())

    def test_bad_systems_file_is_a_configuration_error(self) -> None:
        from click.testing import CliRunner

        from gateway.clisim import simulate

        runner = CliRunner()
        directory = Path(self.mktemp()).resolve()
        directory.mkdir(parents=True)
        systems_file = directory / "s.json"
        systems_file.write_text(json.dumps({"systems": [{"system_id": "x", "agencies": []}]}))
        args = ["vxp", "--listen", "127.0.0.1:0", "--systems", str(systems_file)]
        result = runner.invoke(simulate, args)
        self.assertEqual(result.exit_code, 78, result.output)
        self.assertIn("exactly one of secret_file, secret_env, secret", result.output)
        systems_file.write_text(json.dumps({"systems": [{"system_id": "x", "secret": "s"}]}))
        result = runner.invoke(simulate, [*args, "--fault", "nope=1"])
        self.assertEqual(result.exit_code, 78)
        self.assertIn("unknown fault", result.output)


class EndpointTests(SynchronousTestCase):
    def test_listen_forms(self) -> None:
        from gateway.clisim import endpoint_description

        self.assertEqual(endpoint_description("127.0.0.1:0"), "tcp:0:interface=127.0.0.1")
        self.assertEqual(endpoint_description("[::1]:8099"), "tcp6:8099:interface=\\:\\:1")
        self.assertEqual(endpoint_description("tcp:8099"), "tcp:8099")
