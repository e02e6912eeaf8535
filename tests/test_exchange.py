"""The exchange face over mutual TLS on loopback, called by zeep (an independent SOAP client that
knows only the served WSDL) from a thread while the reactor serves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
from zope.interface import implementer

from twisted.internet import defer, endpoints, reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from edxml.xmlsafe import Limits
from gateway import devpki
from gateway.exchange import ExchangeResource, exchange_site
from gateway.interfaces import IInbound, Peer
from gateway.soap import EXCHANGE_NS, Receipt, request_limit
from gateway.tls import TlsMaterial, server_options

AGENCIES = {"000.00.00.H23": "UBND tỉnh Hà Nam"}
WHEN = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
PAYLOAD = "<edXMLEnvelope>Công văn số 12/UBND-VP</edXMLEnvelope>".encode()


@implementer(IInbound)
class RecordingInbound:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, Peer]] = []
        self.error: Exception | None = None

    async def accept(self, package: bytes, peer: Peer) -> Receipt:
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

    async def serve(self, known: frozenset[str] | None = None, max_bytes: int = 1 << 20) -> str:
        self.inbound = RecordingInbound()
        resource = ExchangeResource(
            self.inbound,
            known_fingerprints=known,
            peer_names={self.pki.node.fingerprint: "node-a"},
            limits=Limits(max_bytes=max_bytes),
            reactor=reactor,
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

    async def zeep_deliver(self, url: str, payload: bytes) -> Any:
        def call() -> Any:
            transport = zeep.Transport(session=self.session())
            try:
                client = zeep.Client(url + "?wsdl", transport=transport)
                return client.service.Deliver(Package=payload)
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

    def tearDown(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.05, d.callback, None)  # type: ignore[attr-defined]
        return d
