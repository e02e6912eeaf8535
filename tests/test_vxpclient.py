"""gateway.vxpclient against the simulator (gateway.vxpsim) on 127.0.0.1: each fault becomes
the right error (VxpUnavailable to try again, VxpRefused for the axis's FAIL), a 5 MB document
survives base64-in-JSON, the secret shows nowhere, the clock observer sees the axis's offset,
and requests have the SDK's wire shape."""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any, ClassVar, cast

from test_vxpsim import (
    G09,
    G22,
    H23,
    SAMPLE,
    SECRETS,
    SimTestCase,
    edoc,
    free_port,
)

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from edxml import vxp
from edxml.vxp import VxpProtocolError, VxpTooLarge
from gateway.vxpclient import VxpClient, VxpRefused, VxpUnavailable


class FaultTests(SimTestCase):
    async def test_slow_axis_times_out_then_a_longer_timeout_succeeds(self) -> None:
        self.sim.set_faults({"slow": 1.0})
        started = time.monotonic()
        with self.assertRaises(VxpUnavailable) as caught:
            await self.client("sys.g22", timeout=0.3).received("edoc")
        self.assertLess(time.monotonic() - started, 0.9)
        self.assertIn("no answer within 0.3 s", str(caught.exception))
        self.assertIn("không liên lạc được", caught.exception.message_vi)
        self.assertEqual(await self.client("sys.g22", timeout=5.0).received("edoc"), ())

    async def test_http500_is_unavailable_then_succeeds(self) -> None:
        self.sim.set_faults({"http500": 2})
        for _ in range(2):
            with self.assertRaises(VxpUnavailable) as caught:
                await self.client().send_edoc(SAMPLE, from_=H23, message_type="edoc")
            self.assertIn("HTTP 500", caught.exception.reason)
        self.assertEqual(self.state()["uploads"], 0)
        await self.client().send_edoc(SAMPLE, from_=H23, message_type="edoc")
        self.assertEqual(self.state()["uploads"], 1)

    async def test_drop_after_commit_makes_a_duplicate_upload(self) -> None:
        self.sim.set_faults({"drop_after_commit": 1})
        document = edoc(H23, [G22])
        with self.assertRaises(VxpUnavailable):
            await self.client().send_edoc(document, from_=H23, message_type="edoc")
        self.assertEqual(self.state()["uploads"], 1)  # stored, though the sender never heard
        await self.client().send_edoc(document, from_=H23, message_type="edoc")
        listed = await self.client("sys.g22").received("edoc")
        self.assertEqual(len(listed), 2)
        self.assertNotEqual(listed[0].doc_id, listed[1].doc_id)
        shas = {item["sha256"] for item in self.state()["items"]}
        self.assertEqual(len(shas), 1)
        self.assertEqual(self.state()["fault_hits"]["drop_after_commit"], 1)

    async def test_not_ready_is_refused_until_ready(self) -> None:
        self.sim.set_faults({"not_ready": 3})
        await self.client().send_edoc(SAMPLE, from_=H23, message_type="edoc")
        g22 = self.client("sys.g22")
        (item,) = await g22.received("edoc")
        for _ in range(3):
            with self.assertRaises(VxpRefused) as caught:
                await g22.get_edoc(item.doc_id)
            self.assertEqual(caught.exception.error_desc, "Van ban chua san sang")
        self.assertEqual(await g22.get_edoc(item.doc_id), SAMPLE)

    async def test_duplicate_listing_is_seen_as_the_axis_sends_it(self) -> None:
        self.sim.set_faults({"duplicate_listing": True})
        await self.client().send_edoc(SAMPLE, from_=H23, message_type="edoc")
        g09 = self.client("sys.g09")
        first, second = await g09.received("edoc")
        self.assertEqual(first.doc_id, second.doc_id)
        self.assertEqual(first.to, G09)

    async def test_connection_refused_is_unavailable(self) -> None:
        client = self.client(url=f"http://127.0.0.1:{free_port()}/XrdAdapter/adapter")
        with self.assertRaises(VxpUnavailable) as caught:
            await client.received("edoc")
        self.assertIn("refused", caught.exception.reason.lower())


class DocumentTests(SimTestCase):
    async def test_a_5_mb_document_round_trip(self) -> None:
        attachment = os.urandom(5 * 1024 * 1024)
        document = edoc(H23, [G22], attachment=attachment)
        self.assertGreater(len(document), 6_900_000)
        await self.client().send_edoc(document, from_=H23, message_type="edoc")
        g22 = self.client("sys.g22", max_edoc_bytes=8 * 1024 * 1024)
        (item,) = await g22.received("edoc")
        self.assertEqual(await g22.get_edoc(item.doc_id), document)
        small = self.client("sys.g22", max_edoc_bytes=1024 * 1024)
        with self.assertRaises(VxpTooLarge):
            await small.get_edoc(item.doc_id)

    async def test_description_goes_without_diacritics(self) -> None:
        await self.client().send_edoc(SAMPLE, from_=H23, message_type="edoc")
        g22 = self.client("sys.g22")
        (item,) = await g22.received("edoc")
        await g22.update_status(item.doc_id, "fail", "Không đọc được chữ ký số")
        self.assertEqual(self.sim.items[item.doc_id].description, "Khong doc duoc chu ky so")
        self.assertEqual(self.sim.items[item.doc_id].state, "fail")

    async def test_parameters_that_cannot_be_signed_are_refused_before_sending(self) -> None:
        with self.assertRaises(VxpProtocolError):
            await self.client().send_edoc(SAMPLE, from_="Ủy ban", message_type="edoc")
        self.assertEqual(self.state()["requests"], {})


class SecretTests(SimTestCase):
    async def test_the_secret_shows_nowhere(self) -> None:
        events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        secret = SECRETS["sys.h23"]
        client = self.client("sys.h23")
        raised: list[BaseException] = []
        await client.send_edoc(SAMPLE, from_=H23, message_type="edoc")
        for attempt in (
            client.send_edoc(SAMPLE, from_=G22, message_type="edoc"),  # refused
            self.client("sys.h23", url=f"http://127.0.0.1:{free_port()}").received("edoc"),
            self.client("sys.h23", secret=b"wrong" + secret).received("edoc"),
        ):
            try:
                await attempt
            except (VxpRefused, VxpUnavailable) as exc:
                raised.append(exc)
        self.sim.set_faults({"http500": 1})
        try:
            await client.received("edoc")
        except VxpUnavailable as exc:
            raised.append(exc)
        self.assertEqual(len(raised), 4)
        texts = [repr(client), repr(self.sim.systems["sys.h23"]), repr(self.sim.items)]
        texts += [str(exc) + repr(exc) + repr(vars(exc)) for exc in raised]
        texts += [formatEvent(event) + repr(event) for event in events]
        self.assertGreater(len(events), 5)
        for text in texts:
            self.assertNotIn(secret.decode(), text)
            self.assertNotIn(repr(secret), text)
            self.assertNotIn(secret.hex(), text)


class ClockTests(SimTestCase):
    sim_options: ClassVar[dict[str, Any]] = {"faults": {"clock_offset": 3600.0}}

    async def test_the_observer_hears_the_axis_clock_offset(self) -> None:
        seen: list[tuple[float, float]] = []
        client = self.client(clock_observer=lambda offset, rtt: seen.append((offset, rtt)))
        await client.received("edoc")
        await client.agencies()
        self.assertEqual(len(seen), 2)
        for offset, round_trip in seen:
            self.assertLess(abs(offset - 3600), 2)
            self.assertGreaterEqual(round_trip, 0)
            self.assertLess(round_trip, 2)

    async def test_now_is_the_reactors_so_a_fake_clock_shows(self) -> None:
        clock = Clock()
        clock.advance(time.time() - 100)  # our clock 100 s behind: the axis looks 100 s ahead
        seen: list[float] = []
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        client = VxpClient(
            self.url,
            "sys.g22",
            SECRETS["sys.g22"],
            reactor=clock,
            agent=agent,
            clock_observer=lambda offset, rtt: seen.append(offset),
        )
        await client.received("edoc")
        (offset,) = seen
        self.assertLess(abs(offset - 3700), 2)
        self.assertEqual(clock.getDelayedCalls(), [])  # the timeout timer was cancelled


class _Recorder(Resource):
    """Answers every request with `answer`, keeping what came."""

    isLeaf = True

    def __init__(self, answer: bytes, code: int = 200, **by_op: bytes) -> None:
        super().__init__()
        self.answer = answer
        self.by_op = by_op
        self.code = code
        self.seen: list[tuple[bytes, list[tuple[bytes, bytes]], bytes]] = []

    def render_POST(self, request: Request) -> bytes:
        headers = [
            (k, v) for k, values in request.requestHeaders.getAllRawHeaders() for v in values
        ]
        content = cast(IO[bytes], request.content)
        self.seen.append((request.path, headers, content.read()))
        request.setResponseCode(self.code)
        return self.by_op.get(request.path.rsplit(b"/", 1)[-1].decode(), self.answer)


class _Stalling(Resource):
    """Sends the headers and the start of a getEdoc answer, then nothing."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.lost: Deferred[None] = Deferred()

    def render_POST(self, request: Request) -> object:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"100000")
        request.write(b'{"status":"OK","ErrorCode":"0","ErrorDesc":"x","data":"QUJD')
        request.notifyFinish().addErrback(lambda _: self.lost.callback(None))
        return NOT_DONE_YET


class WireTests(TestCase):
    def serve(self, resource: Resource) -> str:
        port = reactor.listenTCP(0, Site(resource, timeout=None), interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = cast(IPv4Address, port.getHost())
        return f"http://127.0.0.1:{address.port}/XrdAdapter/adapter"

    def client(self, url: str, **options: Any) -> VxpClient:
        return VxpClient(url, "sys.h23", SECRETS["sys.h23"], reactor=reactor, **options)

    async def test_requests_have_the_sdk_shape(self) -> None:
        ok = vxp.response_json(True, "0", "Thanh cong", data="", DocId="0123")
        recorder = _Recorder(ok, getReceivedEdocList=vxp.response_json(True, "0", "x", data=[]))
        client = self.client(self.serve(recorder))
        await client.received("status")
        await client.get_edoc("d1")
        await client.send_edoc(b"<edXML/>", from_=H23, message_type="status")
        await client.update_status("d1", "done")
        (path1, list_headers, list_body), (path2, get_headers, get_body) = recorder.seen[:2]
        (path3, send_headers, send_body), (_, ack_headers, ack_body) = recorder.seen[2:]
        self.assertEqual(path1, b"/XrdAdapter/adapter/getReceivedEdocList")
        self.assertEqual(
            (path2, path3), (b"/XrdAdapter/adapter/getEdoc", b"/XrdAdapter/adapter/sendEdoc")
        )
        self.assertEqual((list_body, get_body, ack_body), (b"", b"{}", b"{}"))
        self.assertEqual(send_body, b"<edXML/>\r\n")
        lowered = {k.lower(): v for k, v in list_headers}
        self.assertEqual(lowered[b"user-agent"], b"JAVASDKAgent/1.0.0 XRoad/VPCP")
        self.assertEqual(lowered[b"xroadvnpt-version"], b"3.0.201608")
        self.assertEqual(lowered[b"content-type"], b"application/json")
        self.assertEqual(lowered[b"xroadvnpt-messagetype"], b"status")
        self.assertEqual(
            lowered[b"xroadvnpt-sign-header-key"],
            b"systemid;servicetype;messagetype;timestamp;Content-Type",
        )
        vxp.parse_timestamp(lowered[b"xroadvnpt-timestamp"].decode())
        get_names = {k.lower() for k, _ in get_headers}
        self.assertIn(b"xroadvnpt-docid", get_names)
        self.assertNotIn(b"xroadvnpt-filepath", get_names)
        self.assertNotIn(b"xroadvnpt-servicetype", get_names)  # nothing left from earlier calls
        send = {k.lower(): v for k, v in send_headers}
        self.assertEqual(send[b"content-type"], b"application/octet-stream")
        self.assertEqual(send[b"xroadvnpt-hash-file"], vxp.lossy_hash_file(b"<edXML/>").encode())
        ack = {k.lower(): v for k, v in ack_headers}
        self.assertIn(b'"XroadVnpt-docId":"d1"', ack[b"xroadvnpt-sign-header"])
        self.assertEqual(send[b"xroadvnpt-systemid"], b"sys.h23")
        for _, headers, _ in recorder.seen:
            signed = {k.decode().lower(): v.decode() for k, v in headers}
            vxp.verify_request(signed, lambda system_id: SECRETS.get(system_id))

    async def test_an_error_page_with_200_is_unavailable(self) -> None:
        client = self.client(self.serve(_Recorder(b"<html><body>Proxy error</body></html>")))
        with self.assertRaises(VxpUnavailable) as caught:
            await client.received("edoc")
        self.assertIn("not a VXP answer", caught.exception.reason)
        with self.assertRaises(VxpUnavailable):
            await client.get_edoc("d1")

    async def test_a_4xx_with_our_json_is_the_axis_answer(self) -> None:
        fail = vxp.response_json(False, "-1", "Khong ho tro", data="")
        client = self.client(self.serve(_Recorder(fail, code=404)))
        with self.assertRaises(VxpRefused) as caught:
            await client.get_edoc("d1")
        self.assertEqual(caught.exception.error_desc, "Khong ho tro")

    async def test_an_ok_answer_without_its_payload_is_unavailable(self) -> None:
        client = self.client(self.serve(_Recorder(vxp.response_json(True, "0", "Thanh cong"))))
        with self.assertRaises(VxpUnavailable):
            await client.send_edoc(b"<edXML/>", from_=H23, message_type="edoc")
        listed = json.dumps({"status": "OK", "ErrorCode": 0, "ErrorDesc": "x"}).encode()
        client = self.client(self.serve(_Recorder(listed)))
        self.assertEqual(await client.received("edoc"), ())

    async def test_a_timeout_mid_body_closes_the_connection(self) -> None:
        stalling = _Stalling()
        client = self.client(self.serve(stalling), timeout=0.3)
        with self.assertRaises(VxpUnavailable) as caught:
            await client.get_edoc("d1")
        self.assertIn("no answer within 0.3 s", caught.exception.reason)
        await stalling.lost.addTimeout(5, reactor)  # the axis sees the connection go

    def test_repr_and_endpoint(self) -> None:
        client = VxpClient(
            "https://vxp.example/XrdAdapter/adapter/", "sys.h23", b"s3cr3t", reactor=reactor
        )
        self.assertEqual(client.endpoint, "https://vxp.example/XrdAdapter/adapter")
        self.assertNotIn("s3cr3t", repr(client) + repr(vars(client)))
        with self.assertRaises(ValueError):
            VxpClient("ftp://x", "s", b"k", reactor=reactor)
