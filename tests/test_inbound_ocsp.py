"""Inbound with OCSP: a seal whose certificate names a real responder on loopback is checked
there before the envelope is accepted; a revoked seal is refused with 02; a responder that is
down is a finding in the stored verdict, never a lost or stuck envelope."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from e2e_kit import free_port
from nodekit import HOSTED_H23, REMOTE_G22, NodeKit
from ocspkit import Responder, with_ocsp

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent

from edxml import reader, signature
from edxml.codes import StatusCode
from edxml.model import StatusPacket
from gateway import store as st
from gateway.config import OcspConfig
from gateway.interfaces import Peer
from gateway.ocspclient import OcspClient
from gateway.soap import FaultCode, GatewayFault

PEER = Peer("node", "vpcp", "ab" * 32)
DAY = dt.timedelta(days=1)


class InboundOcspTests(TestCase):
    def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        self.responder = Responder(self.kit.pki.issuing, now=self.kit.now)
        self.responder.start()
        self.addCleanup(self.responder.stop)
        self.ocsp = OcspClient(self.kit.clock, OcspConfig(), http=HTTPClient(Agent(reactor)))
        self.inbound = self.kit.inbound(ocsp=self.ocsp)

    def seal(self, url: str | None = None) -> object:
        now = self.kit.now()
        seal = with_ocsp(
            "g22_ocsp",
            self.kit.pki.agencies[REMOTE_G22].cert.subject,
            self.kit.pki.issuing,
            url or self.responder.url,
            not_before=now - 30 * DAY,
            not_after=now + 365 * DAY,
        )
        self.responder.know(seal.cert)
        return seal

    def sealed(self, seal: object, number: str) -> bytes:
        data = self.kit.envelope(REMOTE_G22, [HOSTED_H23], number=number)
        return signature.sign(data, seal.key, seal.chain)  # type: ignore[attr-defined]

    async def verdict(self, message_id: str) -> dict[str, object]:
        msg = await self.kit.read(st.get_message, message_id=message_id)
        assert msg is not None
        result: dict[str, object] = json.loads(msg.verdict_json)
        return result

    async def test_good_answer_is_asked_once_per_validity(self) -> None:
        seal = self.seal()
        first = await self.inbound.accept(self.sealed(seal, "401"), PEER)
        verdict = await self.verdict(first.message_id)
        sig = verdict["signature"]
        assert isinstance(sig, dict)
        self.assertEqual(sig["state"], "valid")
        self.assertIn("ocsp", sig["revocation_sources"])
        self.assertEqual(self.responder.requests, [seal.cert.serial_number])  # type: ignore[attr-defined]
        self.kit.clock.advance(600)
        await self.inbound.accept(self.sealed(seal, "402"), PEER)
        self.assertEqual(len(self.responder.requests), 1)

    async def test_revoked_seal_is_refused_with_02(self) -> None:
        seal = self.seal()
        self.responder.revoke(seal.cert)  # type: ignore[attr-defined]
        try:
            await self.inbound.accept(self.sealed(seal, "403"), PEER)
        except GatewayFault as fault:
            self.assertIs(fault.code, FaultCode.UNTRUSTED_SIGNER)
            self.assertIn("SignerRevoked", {f.code for f in fault.findings})
        else:
            self.fail("a revoked seal was accepted")
        rows = await self.kit.query(
            "SELECT m.blob_sha256 FROM messages m WHERE m.direction = 'out' AND m.kind = 'status'"
        )
        [(sha,)] = rows
        packet = reader.read(self.kit.blobs.read(sha)).document
        assert isinstance(packet, StatusPacket)
        self.assertIs(packet.status_code, StatusCode.REJECTED)
        self.assertIn("revoked", packet.description)

    async def test_responder_down_is_a_finding_not_a_refusal(self) -> None:
        seal = self.seal(url=f"http://127.0.0.1:{free_port()}/ocsp")
        receipt = await self.inbound.accept(self.sealed(seal, "404"), PEER)
        verdict = await self.verdict(receipt.message_id)
        codes = {f["code"] for f in verdict["findings"]}  # type: ignore[union-attr, index]
        self.assertIn("OcspUnavailable", codes)
        self.assertIn("RevocationNotChecked", codes)
        # Within retry_after the next envelope does not wait for the dead responder again.
        await self.inbound.accept(self.sealed(seal, "405"), PEER)
        self.assertEqual(self.ocsp.requests, 1)
