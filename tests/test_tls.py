"""Mutual TLS on loopback with the development PKI: real sockets, real handshakes."""

from __future__ import annotations

from zope.interface import implementer

import treq
from treq.client import HTTPClient
from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, ResponseFailed
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from gateway import devpki
from gateway.tls import ClientPolicy, TlsMaterial, fingerprint, peer_certificate, server_options

AGENCIES = {"000.00.00.H23": "UBND tỉnh Hà Nam"}


def material(entry: devpki.Issued, trusted: devpki.Issued) -> TlsMaterial:
    return TlsMaterial(
        key_pem=entry.key_pem, chain_pem=entry.chain_pem, trusted_pem=trusted.cert_pem
    )


class WhoAmI(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        cert = peer_certificate(request.transport)
        return fingerprint(cert).encode() if cert is not None else b"anonymous"


class MutualTLSTests(TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ours = devpki.generate(node_name="node A", agencies=AGENCIES, offices=["eoffice"])
        cls.theirs = devpki.generate(node_name="stranger", agencies=AGENCIES)

    def setUp(self) -> None:
        options = server_options(material(self.ours.node, self.ours.root))
        endpoint = endpoints.SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1")
        d = endpoint.listen(Site(WhoAmI()))

        def listening(port: object) -> None:
            self.port = port
            self.addCleanup(port.stopListening)  # type: ignore[attr-defined]

        return d.addCallback(listening)  # type: ignore[return-value]

    def client(self, tls: TlsMaterial) -> HTTPClient:
        return HTTPClient(Agent(reactor, contextFactory=ClientPolicy(tls)))  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port.getHost().port}/"  # type: ignore[attr-defined]

    async def test_known_node_is_served_and_identified(self) -> None:
        client = self.client(material(self.ours.node, self.ours.root))
        response = await client.get(self.url)
        body = await treq.content(response)
        self.assertEqual(response.code, 200)
        self.assertEqual(body.decode(), self.ours.node.fingerprint)

    async def test_office_client_certificate_is_identified_too(self) -> None:
        office = self.ours.offices["eoffice"]
        response = await self.client(material(office, self.ours.root)).get(self.url)
        self.assertEqual((await treq.content(response)).decode(), office.fingerprint)

    async def test_certificate_from_another_pki_is_refused(self) -> None:
        stranger = self.client(material(self.theirs.node, self.ours.root))
        with self.assertRaises(ResponseFailed):
            await stranger.get(self.url)

    async def test_client_refuses_a_server_outside_its_trust(self) -> None:
        distrustful = self.client(material(self.ours.node, self.theirs.root))
        with self.assertRaises(ResponseFailed):
            await distrustful.get(self.url)

    async def test_client_without_certificate_is_refused(self) -> None:
        from twisted.internet import ssl

        trust = ssl.Certificate.loadPEM(self.ours.root.cert_pem)
        host = "localhost"

        @implementer(IPolicyForHTTPS)
        class NoCertPolicy:
            def creatorForNetloc(self, hostname: bytes, port: int) -> object:
                return ssl.optionsForClientTLS(host, trustRoot=trust)

        anonymous = HTTPClient(Agent(reactor, contextFactory=NoCertPolicy()))
        with self.assertRaises(ResponseFailed):
            await anonymous.get(self.url)

    def tearDown(self) -> defer.Deferred[None]:
        # Let the TLS connections of the test close before the reactor is checked for leftovers.
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.05, d.callback, None)  # type: ignore[attr-defined]
        return d
