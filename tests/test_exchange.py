"""The exchange face over mutual TLS on loopback, called by zeep (an independent SOAP client that
knows only the served WSDL) from a thread while the reactor serves."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import os
import ssl
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions
from zope.interface import implementer

from twisted.internet import defer, endpoints, reactor, task
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from edxml.xmlsafe import Limits
from gateway import devpki
from gateway.exchange import ExchangeResource, exchange_site
from gateway.interfaces import IInbound, Peer
from gateway.soap import EXCHANGE_NS, SOAP11_NS, FaultCode, Receipt, request_limit
from gateway.tls import TlsMaterial, server_options

AGENCIES = {"000.00.00.H23": "UBND tỉnh Hà Nam"}
WHEN = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
PAYLOAD = "<edXMLEnvelope>Công văn số 12/UBND-VP</edXMLEnvelope>".encode()


@implementer(IInbound)
class RecordingInbound:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, Peer]] = []
        self.recipients: list[Sequence[str] | None] = []
        self.error: Exception | None = None
        self.on_accept: Callable[[], object] = lambda: None

    async def accept(
        self, package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Receipt:
        self.recipients.append(recipients)
        self.on_accept()
        self.received.append((package, peer))
        if self.error is not None:
            raise self.error
        return Receipt("r-1", "m-1", WHEN)


class ExchangeFaceTests(TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.pki = devpki.generate(node_name="node A", agencies=AGENCIES).write(
            Path("exchange-pki").absolute()
        )

    async def serve(
        self, known: frozenset[str] | None = None, max_bytes: int = 1 << 20, **kw: Any
    ) -> str:
        self.inbound = RecordingInbound()
        resource = ExchangeResource(
            self.inbound,
            known_fingerprints=known,
            peer_names={self.pki.node.fingerprint: "node-a"},
            limits=Limits(max_bytes=max_bytes),
            reactor=reactor,
            **kw,
        )
        pki = self.pki
        tls = TlsMaterial(
            key_pem=pki.node.key_pem, chain_pem=pki.node.chain_pem, trusted_pem=pki.root.cert_pem
        )
        endpoint = endpoints.SSL4ServerEndpoint(
            reactor, 0, server_options(tls), interface="127.0.0.1"
        )
        site = exchange_site(resource, max_body=request_limit(max_bytes))  # as the service does
        port: Any = await endpoint.listen(site)
        self.addCleanup(port.stopListening)
        return f"https://localhost:{port.getHost().port}/exchange"

    def session(self, *, with_cert: bool = True) -> requests.Session:
        session = requests.Session()
        # Else REQUESTS_CA_BUNDLE from the environment overrides `verify` (requests#3829).
        session.trust_env = False
        # No keep-alive: a connection left open would outlive the test (a dirty reactor).
        session.headers["Connection"] = "close"
        node = self.pki.node
        if with_cert:
            session.cert = (str(node.chain_path), str(node.key_path))
        session.verify = str(self.pki.root.cert_path)
        self.addCleanup(session.close)
        return session

    async def zeep_deliver(self, url: str, payload: bytes, **kw: Any) -> Any:
        def call() -> Any:
            transport = zeep.Transport(session=self.session())
            try:
                client = zeep.Client(url + "?wsdl", transport=transport)
                return client.service.Deliver(Package=payload, **kw)
            finally:
                transport.session.close()

        return await deferToThread(call)

    async def fault_code(self, url: str, payload: bytes) -> str:
        try:
            await self.zeep_deliver(url, payload)
        except zeep.exceptions.Fault as fault:
            code = fault.detail.find(f".//{{{EXCHANGE_NS}}}Code")
            return str(code.text)
        self.fail("no fault")

    async def test_zeep_delivers_and_gets_the_receipt(self) -> None:
        url = await self.serve(known=frozenset({self.pki.node.fingerprint}))
        answer = await self.zeep_deliver(url, PAYLOAD)
        self.assertEqual(answer.ReceiptId, "r-1")
        self.assertEqual(answer.MessageId, "m-1")
        self.assertEqual(answer.ReceivedAt, WHEN)
        self.assertFalse(answer.Duplicate)
        [(package, peer)] = self.inbound.received
        self.assertEqual(package, PAYLOAD)
        self.assertEqual(peer, Peer("node", "node-a", self.pki.node.fingerprint))
        self.assertEqual(self.inbound.recipients, [None])  # no Recipient: every addressee

    async def test_zeep_names_the_recipients_of_a_hand_over(self) -> None:
        url = await self.serve(known=frozenset({self.pki.node.fingerprint}))
        await self.zeep_deliver(url, PAYLOAD, Recipient=["000.00.00.G22", "000.00.00.G09"])
        self.assertEqual(self.inbound.recipients, [("000.00.00.G22", "000.00.00.G09")])

    async def test_a_peer_over_its_rate_is_told_to_come_back(self) -> None:
        clock = task.Clock()
        url = await self.serve(rate=2.0, clock=clock)  # a burst of two, then two per second
        for _ in range(2):
            await self.zeep_deliver(url, PAYLOAD)
        try:
            await self.zeep_deliver(url, PAYLOAD)
        except zeep.exceptions.Fault as fault:
            detail = fault.detail
        else:
            self.fail("a third call within the same second was taken")
        ns = {"x": EXCHANGE_NS}
        self.assertEqual(detail.findtext(".//x:Code", namespaces=ns), FaultCode.UNAVAILABLE.value)
        self.assertEqual(detail.findtext(".//x:Retryable", namespaces=ns), "true")
        self.assertIn("2/s", detail.findtext(".//x:MessageEn", namespaces=ns))
        self.assertIn("nút này", detail.findtext(".//x:MessageVi", namespaces=ns))
        self.assertEqual(len(self.inbound.received), 2)  # the refused one never reached inbound
        clock.advance(0.5)  # half a second: one token back
        await self.zeep_deliver(url, PAYLOAD)
        self.assertEqual(len(self.inbound.received), 3)

    async def test_wsdl_names_this_address(self) -> None:
        url = await self.serve()
        session = self.session()
        wsdl = await deferToThread(lambda: session.get(url + "?wsdl", timeout=10))
        self.assertEqual(wsdl.status_code, 200)
        self.assertIn(f'location="{url}"'.encode(), wsdl.content)
        xsd = await deferToThread(lambda: session.get(url + "?xsd=exchange.xsd", timeout=10))
        self.assertIn(b'targetNamespace="urn:edxml-gateway:exchange:1"', xsd.content)

    async def test_no_client_certificate_is_refused(self) -> None:
        url = await self.serve()
        session = self.session(with_cert=False)
        with self.assertRaises(requests.exceptions.RequestException):
            await deferToThread(lambda: session.get(url + "?wsdl", timeout=10))

    async def test_unknown_fingerprint_is_unauthorized(self) -> None:
        url = await self.serve(known=frozenset({"ab" * 32}))
        self.assertEqual(await self.fault_code(url, PAYLOAD), "Unauthorized")
        self.assertEqual(self.inbound.received, [])

    async def test_oversize_is_too_large_before_parsing(self) -> None:
        url = await self.serve(max_bytes=4000)
        self.assertEqual(await self.fault_code(url, b"x" * 5000), "TooLarge")
        self.assertEqual(self.inbound.received, [])
        # The limit is on the package: its base64 in a SOAP request is a third larger.
        huge = await self.serve(max_bytes=4000)
        self.assertEqual(await self.fault_code(huge, b"x" * 200_000), "TooLarge")
        self.assertEqual(self.inbound.received, [])

    async def test_package_just_under_the_limit_is_accepted(self) -> None:
        url = await self.serve(max_bytes=100_000)
        package = b"<edXML/>" + b" " * 99_000
        await self.zeep_deliver(url, package)
        self.assertEqual([p for p, _ in self.inbound.received], [package])

    async def test_unexpected_error_is_unavailable(self) -> None:
        url = await self.serve()
        self.inbound.error = RuntimeError("disk on fire")
        self.assertEqual(await self.fault_code(url, PAYLOAD), "Unavailable")
        self.flushLoggedErrors(RuntimeError)

    async def post_file(self, url: str, path: Path, content_type: str = "text/xml") -> int:
        """POST a request body from a file, streamed (http.client sends it in blocks)."""

        def call() -> int:
            context = ssl.create_default_context(cafile=str(self.pki.root.cert_path))
            node = self.pki.node
            context.load_cert_chain(str(node.chain_path), str(node.key_path))
            parts = urlsplit(url)
            connection = http.client.HTTPSConnection(
                "localhost", parts.port, context=context, timeout=60
            )
            try:
                with path.open("rb") as body:
                    connection.request(
                        "POST",
                        parts.path,
                        body=body,
                        headers={
                            "Content-Type": f"{content_type}; charset=utf-8",
                            "Content-Length": str(path.stat().st_size),
                            "Connection": "close",
                        },
                    )
                response = connection.getresponse()
                response.read()
                return response.status
            finally:
                connection.close()

        return await deferToThread(call)

    async def test_30mb_deliver_decoded_once_in_bounded_memory(self) -> None:
        """The Package's base64 is decoded from the spooled request as it is parsed: Python's
        peak while the request is received, parsed, decoded and handed over is about the
        package itself, not the request + its text + the decoded parts + their join (≈ 4.7x)."""
        block_bytes, blocks = 3 * 256 * 1024, 40  # 30 MiB of package, 40 MiB of base64
        digest = hashlib.sha256()
        request_path = Path("deliver-30mb.xml").absolute()
        with request_path.open("wb") as out:
            out.write(
                f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP11_NS}" '
                f'xmlns:x="{EXCHANGE_NS}"><s:Body><x:Deliver><x:Package>'.encode()
            )
            for _ in range(blocks):
                block = os.urandom(block_bytes)
                digest.update(block)
                out.write(base64.b64encode(block))
            out.write(b"</x:Package></x:Deliver></s:Body></s:Envelope>")
        size = block_bytes * blocks
        url = await self.serve(max_bytes=size + 1024)
        peaks: list[int] = []
        self.inbound.on_accept = lambda: peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.start()
        try:
            status = await self.post_file(url, request_path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertEqual(status, 200)
        [(package, _)] = self.inbound.received
        self.assertEqual(len(package), size)
        self.assertEqual(hashlib.sha256(package).digest(), digest.digest())
        # The package itself, growth slack of its buffer, and pieces.
        bound = int(size * 1.25) + 8 * 1024 * 1024
        self.assertLess(peaks[0], bound, f"peak {peaks[0]:,} at accept for {size:,}")
        self.assertLess(peak, bound, f"peak {peak:,} for {size:,}")

    async def test_hostile_request_refused_on_the_streaming_path(self) -> None:
        url = await self.serve()
        package = base64.b64encode(PAYLOAD).decode()
        deliver = (
            f'<s:Envelope xmlns:s="{SOAP11_NS}" xmlns:x="{EXCHANGE_NS}"><s:Body>'
            f"<x:Deliver><x:Package>{{}}</x:Package></x:Deliver></s:Body></s:Envelope>"
        )
        cases = {
            "xxe": '<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + deliver.format("&x;"),
            "laughs": '<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            + deliver.format("&b;"),
            "deep": deliver.format(package + "</x:Package>" + "<x:a>" * 60 + "</x:a>" * 60)[
                : -len("</x:Package></x:Deliver></s:Body></s:Envelope>")
            ]
            + "<x:Package/></x:Deliver></s:Body></s:Envelope>",
            "bad base64": deliver.format("QUJD=QUJD"),
            "not xml": deliver.format(package)[:-9],
        }
        for name, text in cases.items():
            path = Path(f"hostile-{name.replace(' ', '-')}.xml").absolute()
            path.write_text(text, encoding="utf-8")
            status = await self.post_file(url, path)
            self.assertEqual(status, 500, name)  # SOAP 1.1: every fault is 500
        self.assertEqual(self.inbound.received, [])
        await self.zeep_deliver(url, PAYLOAD)  # and the face still serves
        self.assertEqual([p for p, _ in self.inbound.received], [PAYLOAD])

    def tearDown(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.05, d.callback, None)  # type: ignore[attr-defined]
        return d
