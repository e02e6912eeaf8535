"""The office face over TLS: an office system authenticated by its client certificate alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import requests
from test_office import StoringOutbound, make_config

from twisted.internet import defer, endpoints, reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from gateway import devpki
from gateway import store as st
from gateway.blobs import BlobStore
from gateway.config import OfficeConfig
from gateway.office import OfficeResource
from gateway.soap import OFFICE_NS, SoapVersion
from gateway.tls import TlsMaterial, server_options

H23 = "000.00.00.H23"
GET_DIRECTORY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    f'<soap:Body><o:GetDirectory xmlns:o="{OFFICE_NS}"/></soap:Body></soap:Envelope>'
).encode()


class OfficeClientCertificateTests(TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ours = devpki.generate(node_name="node", agencies={H23: "UBND"}, offices=["eoffice"])
        cls.theirs = devpki.generate(node_name="other", agencies={H23: "UBND"}, offices=["eoffice"])

    async def serve(self) -> str:
        base = Path(self.mktemp()).resolve()
        self.pki = self.ours.write(base / "pki")
        self.other = self.theirs.write(base / "other")
        store = st.Store.open(base / "gateway.db", reactor=reactor)
        self.addCleanup(store.stop)
        blobs = BlobStore(base / "blobs")
        office = self.pki.offices["eoffice"]
        config = make_config("https://localhost/office")
        by_certificate = OfficeConfig("eoffice", (H23,), client_cert_fingerprint=office.fingerprint)
        config = attrs.evolve(config, offices=(*config.offices, by_certificate))
        resource = OfficeResource(
            config, store, blobs, StoringOutbound(config, store, blobs), reactor=reactor
        )
        material = TlsMaterial(
            key_pem=self.pki.node.key_pem,
            chain_pem=self.pki.node.chain_pem,
            trusted_pem=self.pki.root.cert_pem,
        )
        endpoint = endpoints.SSL4ServerEndpoint(
            reactor, 0, server_options(material, require_client=False), interface="127.0.0.1"
        )
        port: Any = await endpoint.listen(Site(resource))
        self.addCleanup(port.stopListening)
        return f"https://localhost:{port.getHost().port}/office"

    async def post(self, url: str, cert: devpki.Issued | None) -> requests.Response:
        def call() -> requests.Response:
            with requests.Session() as session:
                session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
                session.headers["Connection"] = "close"
                session.verify = str(self.pki.root.cert_path)
                if cert is not None:
                    session.cert = (str(cert.chain_path), str(cert.key_path))
                return session.post(
                    url,
                    data=GET_DIRECTORY,
                    headers={"Content-Type": SoapVersion.SOAP11.content_type, "SOAPAction": '""'},
                )

        return await deferToThread(call)

    async def test_certificate_alone_authenticates(self) -> None:
        url = await self.serve()
        answer = await self.post(url, self.pki.offices["eoffice"])
        self.assertEqual(answer.status_code, 200, answer.text)
        self.assertIn(H23, answer.text)

    async def test_no_certificate_and_no_token_is_unauthorized(self) -> None:
        url = await self.serve()
        answer = await self.post(url, None)
        self.assertEqual(answer.status_code, 500)
        self.assertIn("Unauthorized", answer.text)

    async def test_certificate_of_another_pki_is_refused_at_the_handshake(self) -> None:
        url = await self.serve()
        with self.assertRaises(requests.exceptions.RequestException):
            await self.post(url, self.other.offices["eoffice"])

    def tearDown(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.05, d.callback, None)  # type: ignore[attr-defined]
        return d
