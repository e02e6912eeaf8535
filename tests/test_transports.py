"""Transports against a real exchange face over mutual TLS on loopback, and the local transport."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from zope.interface import implementer

from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gateway import devpki
from gateway.config import RouteConfig, RoutePattern, Transport
from gateway.exchange import ExchangeResource, exchange_site
from gateway.interfaces import (
    IInbound,
    OutboundPackage,
    Peer,
    PermanentFailure,
    TransientFailure,
    TransportReceipt,
)
from gateway.soap import FaultCode, GatewayFault, Receipt
from gateway.tls import TlsMaterial, server_options
from gateway.transports import LocalTransport, SoapTransport, parse_deliver_answer

AGENCIES = {"000.00.00.H23": "UBND tỉnh Hà Nam"}
WHEN = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
RECEIPT = Receipt("r-1", "m-1", WHEN)
PAYLOAD = "<edXMLEnvelope>Văn bản số 1</edXMLEnvelope>".encode()
PACKAGE = OutboundPackage("7", "m-out", "000.00.00.G22", "peer", "envelope", "0" * 64, 0, 1)


@implementer(IInbound)
class RecordingInbound:
    """Records what arrives and answers what the test set: a receipt, a fault, or never."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Peer]] = []
        self.recipients: list[Sequence[str] | None] = []
        self.answer: Receipt | GatewayFault | defer.Deferred[Receipt] = RECEIPT

    async def accept(
        self, package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Receipt:
        self.recipients.append(recipients)
        self.received.append((package, peer))
        if isinstance(self.answer, GatewayFault):
            raise self.answer
        if isinstance(self.answer, defer.Deferred):
            return await self.answer
        return self.answer


def material(entry: devpki.Issued, trusted: devpki.Issued) -> TlsMaterial:
    return TlsMaterial(
        key_pem=entry.key_pem, chain_pem=entry.chain_pem, trusted_pem=trusted.cert_pem
    )


def route(url: str, timeout: float = 10.0) -> RouteConfig:
    return RouteConfig("peer", Transport.SOAP, (RoutePattern.parse("*"),), url, timeout=timeout)


class SoapTransportTests(TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ours = devpki.generate(node_name="node A", agencies=AGENCIES)
        cls.theirs = devpki.generate(node_name="stranger", agencies=AGENCIES)

    async def serve(self, pki: devpki.DevPKI) -> str:
        self.inbound = RecordingInbound()
        resource = ExchangeResource(self.inbound, known_fingerprints=None)
        options = server_options(material(pki.node, pki.root))
        endpoint = endpoints.SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1")
        port: Any = await endpoint.listen(exchange_site(resource, max_body=1 << 20))
        self.addCleanup(port.stopListening)
        return f"https://localhost:{port.getHost().port}/exchange"

    def transport(self, url: str, timeout: float = 10.0) -> SoapTransport:
        return SoapTransport(
            route(url, timeout), material(self.ours.node, self.ours.root), reactor=reactor
        )

    async def test_receipt_round_trip(self) -> None:
        url = await self.serve(self.ours)
        got = await self.transport(url).deliver(PACKAGE, PAYLOAD)
        self.assertEqual(got, TransportReceipt("r-1", WHEN, duplicate=False))
        [(package, peer)] = self.inbound.received
        self.assertEqual(package, PAYLOAD)
        self.assertEqual(peer.kind, "node")
        self.assertEqual(peer.fingerprint, self.ours.node.fingerprint)
        # The hand-over names the delivery's recipient (a relay forwards to that one).
        self.assertEqual(self.inbound.recipients, [(PACKAGE.recipient,)])

    async def test_duplicate_is_success_with_the_first_receipt(self) -> None:
        url = await self.serve(self.ours)
        self.inbound.answer = GatewayFault(FaultCode.DUPLICATE, first_receipt=RECEIPT)
        got = await self.transport(url).deliver(PACKAGE, PAYLOAD)
        self.assertEqual(got, TransportReceipt("r-1", WHEN, duplicate=True))

    async def test_rule_violation_is_permanent(self) -> None:
        url = await self.serve(self.ours)
        self.inbound.answer = GatewayFault(FaultCode.RULE_VIOLATION)
        with self.assertRaises(PermanentFailure) as caught:
            await self.transport(url).deliver(PACKAGE, PAYLOAD)
        self.assertEqual(caught.exception.code, "RuleViolation")

    async def test_unavailable_is_transient(self) -> None:
        url = await self.serve(self.ours)
        self.inbound.answer = GatewayFault(FaultCode.UNAVAILABLE)
        with self.assertRaises(TransientFailure):
            await self.transport(url).deliver(PACKAGE, PAYLOAD)

    async def test_connection_refused_is_transient(self) -> None:
        endpoint = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        port: Any = await endpoint.listen(
            exchange_site(
                ExchangeResource(RecordingInbound(), known_fingerprints=None), max_body=10
            )
        )
        number = port.getHost().port
        await port.stopListening()
        with self.assertRaises(TransientFailure):
            await self.transport(f"https://localhost:{number}/exchange").deliver(PACKAGE, PAYLOAD)

    async def test_server_of_another_pki_is_transient(self) -> None:
        url = await self.serve(self.theirs)
        with self.assertRaises(TransientFailure):
            await self.transport(url).deliver(PACKAGE, PAYLOAD)
        self.assertEqual(self.inbound.received, [])

    async def test_slow_server_times_out_as_transient(self) -> None:
        url = await self.serve(self.ours)
        self.inbound.answer = defer.Deferred()
        started = reactor.seconds()  # type: ignore[attr-defined]
        with self.assertRaises(TransientFailure) as caught:
            await self.transport(url, timeout=0.3).deliver(PACKAGE, PAYLOAD)
        self.assertIn("no answer within", str(caught.exception))
        self.assertLess(reactor.seconds() - started, 5)  # type: ignore[attr-defined]

    def tearDown(self) -> defer.Deferred[None]:
        # Let the TLS connections of the test close before the reactor is checked for leftovers.
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.05, d.callback, None)  # type: ignore[attr-defined]
        return d


class AnswerParsingTests(SynchronousTestCase):
    def test_html_error_page_is_transient(self) -> None:
        with self.assertRaises(TransientFailure):
            parse_deliver_answer(502, b"<html><body>Bad gateway</body></html>")

    def test_garbage_is_transient(self) -> None:
        with self.assertRaises(TransientFailure):
            parse_deliver_answer(200, b"\x00not xml")

    def test_entities_are_not_expanded(self) -> None:
        bomb = b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
        with self.assertRaises(TransientFailure):
            parse_deliver_answer(200, bomb)


class LocalTransportTests(SynchronousTestCase):
    def deliver(self, inbound: RecordingInbound) -> defer.Deferred[TransportReceipt]:
        return defer.Deferred.fromCoroutine(LocalTransport(inbound).deliver(PACKAGE, PAYLOAD))

    def test_hands_the_bytes_to_our_own_inbound(self) -> None:
        inbound = RecordingInbound()
        got = self.successResultOf(self.deliver(inbound))
        self.assertEqual(got, TransportReceipt("r-1", WHEN))
        self.assertEqual(inbound.received, [(PAYLOAD, Peer(kind="local", name="local"))])

    def test_faults_map_like_the_network(self) -> None:
        inbound = RecordingInbound()
        inbound.answer = GatewayFault(FaultCode.DUPLICATE, first_receipt=RECEIPT)
        self.assertTrue(self.successResultOf(self.deliver(inbound)).duplicate)
        inbound.answer = GatewayFault(FaultCode.UNAVAILABLE)
        self.failureResultOf(self.deliver(inbound), TransientFailure)
        inbound.answer = GatewayFault(FaultCode.SENDER_MISMATCH)
        failure = self.failureResultOf(self.deliver(inbound), PermanentFailure)
        self.assertEqual(failure.value.code, "SenderMismatch")
