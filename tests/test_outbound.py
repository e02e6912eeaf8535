"""Outbound: an office system's envelope is judged, authorised, routed, sealed with the agency's
key and stored as signed with one delivery per recipient; statuses are queued at their document's
priority. Real dev PKI, real Store and BlobStore files, the real reactor for the store threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from nodekit import (
    HOSTED_H23,
    HOSTED_VP,
    REMOTE_G09,
    REMOTE_G22,
    UNROUTED,
    NodeKit,
)

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from edxml import reader, signature, writer
from edxml.codes import Priority, StatusCode
from edxml.model import Envelope, StatusPacket
from gateway import statuses
from gateway import store as st
from gateway.blobs import BlobRef
from gateway.interfaces import IOutbound
from gateway.outbound import Outbound, Seal
from gateway.soap import FaultCode, GatewayFault


class OutboundTests(TestCase):
    def setUp(self) -> None:
        self.kit = self.make_kit()
        self.outbound = self.kit.outbound()

    def make_kit(self, **kw: Any) -> NodeKit:
        kit = NodeKit.create(Path(self.mktemp()), reactor=reactor, **kw)
        self.addCleanup(kit.stop)
        return kit

    async def fault_of(self, package: bytes, office: str = "dev") -> GatewayFault:
        try:
            await self.outbound.submit_envelope(package, self.kit.office(office))
        except GatewayFault as fault:
            return fault
        self.fail("submit_envelope accepted what it should refuse")

    async def message_count(self) -> int:
        return int((await self.kit.query("SELECT count(*) FROM messages"))[0][0])

    def test_provides_the_interface(self) -> None:
        self.assertTrue(IOutbound.providedBy(self.outbound))

    async def test_signs_and_stores_one_delivery_per_recipient(self) -> None:
        data = self.kit.envelope(HOSTED_H23, [REMOTE_G22, REMOTE_G09, HOSTED_VP])
        submitted = await self.outbound.submit_envelope(data, self.kit.office())
        self.assertEqual(
            [(d.recipient, d.route, d.state) for d in submitted.deliveries],
            [
                (REMOTE_G22, "vpcp", "queued"),
                (REMOTE_G09, "vpcp", "queued"),
                (HOSTED_VP, "local", "queued"),
            ],
        )
        msg = await self.kit.read(st.get_message, message_id=submitted.message_id)
        assert msg is not None
        self.assertEqual((msg.direction, msg.kind, msg.sender), ("out", "envelope", HOSTED_H23))
        stored = self.kit.blobs.read(msg.blob_sha256)
        self.assertNotEqual(stored, data)
        verdict = signature.verify(stored, self.kit.trust(), now=self.kit.now())
        self.assertTrue(verdict.is_valid, verdict.reason)
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.organ_id, HOSTED_H23)
        # Signed bytes are what the office sent plus the signature: same document.
        self.assertEqual(reader.read(stored).document, reader.read(data).document)

    async def test_priority_rank_orders_the_deliveries(self) -> None:
        express = self.kit.envelope(
            HOSTED_H23, [REMOTE_G22], number="1", priority=Priority.EXPRESS_TIMED
        )
        normal = self.kit.envelope(HOSTED_H23, [REMOTE_G22], number="2")
        urgent = self.kit.envelope(HOSTED_H23, [REMOTE_G22], number="3", priority=Priority.URGENT)
        for data in (normal, express, urgent):
            await self.outbound.submit_envelope(data, self.kit.office())
        claimed = await self.kit.store.write(
            lambda conn: st.claim_due_deliveries(conn, now=self.kit.now(), limit=10)
        )
        self.assertEqual([d.priority_rank for d in claimed], [3, 1, 0])

    async def test_office_may_not_send_as_another_agency(self) -> None:
        fault = await self.fault_of(self.kit.envelope(HOSTED_VP, [REMOTE_G22]), office="h23")
        self.assertIs(fault.code, FaultCode.FORBIDDEN)
        self.assertEqual(await self.message_count(), 0)

    async def test_nobody_sends_as_an_agency_hosted_elsewhere(self) -> None:
        fault = await self.fault_of(self.kit.envelope(REMOTE_G22, [HOSTED_H23]))
        self.assertIs(fault.code, FaultCode.FORBIDDEN)

    async def test_one_unknown_recipient_refuses_the_whole_submission(self) -> None:
        fault = await self.fault_of(self.kit.envelope(HOSTED_H23, [REMOTE_G22, UNROUTED]))
        self.assertIs(fault.code, FaultCode.UNKNOWN_RECIPIENT)
        self.assertIn(UNROUTED, fault.text_en)
        self.assertEqual(await self.message_count(), 0)

    async def test_office_resend_returns_the_first_submission(self) -> None:
        data = self.kit.envelope(HOSTED_H23, [REMOTE_G22, REMOTE_G09])
        first = await self.outbound.submit_envelope(data, self.kit.office())
        self.kit.clock.advance(60)
        again = await self.outbound.submit_envelope(data, self.kit.office())
        self.assertEqual(again, first)
        self.assertEqual(await self.message_count(), 1)
        rows = await self.kit.query("SELECT count(*) FROM deliveries")
        self.assertEqual(rows[0][0], 2)

    async def test_the_same_document_id_with_other_content_is_refused(self) -> None:
        doc = self.kit.document(HOSTED_H23, [REMOTE_G22])
        first = await self.outbound.submit_envelope(writer.write(doc), self.kit.office())
        changed = attrs.evolve(doc, header=attrs.evolve(doc.header, subject="Trích yếu đã sửa"))
        fault = await self.fault_of(writer.write(changed))
        self.assertIs(fault.code, FaultCode.DUPLICATE)
        self.assertIn(first.message_id, fault.text_en)
        self.assertIn("cập nhật", fault.text_vi or "")
        assert fault.first_receipt is not None
        self.assertEqual(fault.first_receipt.message_id, first.message_id)
        self.assertTrue(fault.first_receipt.duplicate)
        # Nothing changed: one message, its deliveries, no audit event for the refused one.
        self.assertEqual(await self.message_count(), 1)
        actions = await self.kit.query(
            "SELECT action FROM audit WHERE subject_id = ? ORDER BY id", first.message_id
        )
        self.assertEqual([a for (a,) in actions], ["accepted"])
        # The same bytes again are still a resend, answered with the first submission.
        again = await self.outbound.submit_envelope(writer.write(doc), self.kit.office())
        self.assertEqual(again, first)

    async def test_office_resend_costs_no_signature(self) -> None:
        signed: list[int] = []

        class Counting(Outbound):
            def _sign_and_keep(self, package: bytes, seal: Seal) -> BlobRef:
                signed.append(len(package))
                return super()._sign_and_keep(package, seal)

        kit = self.kit
        outbound = Counting(
            kit.config,
            kit.store,
            kit.blobs,
            kit.router(),
            clock=kit.clock,
            pool=kit.pool,
            reactor=kit.reactor,
        )
        data = kit.envelope(HOSTED_H23, [REMOTE_G22])
        first = await outbound.submit_envelope(data, kit.office())
        again = await outbound.submit_envelope(data, kit.office())
        self.assertEqual(again, first)
        self.assertEqual(len(signed), 1)
        actions = await kit.query(
            "SELECT action FROM audit WHERE subject_id = ? ORDER BY id", first.message_id
        )
        self.assertEqual([a for (a,) in actions], ["accepted", "duplicate"])

    async def test_unreadable_and_invalid_packages_get_typed_faults(self) -> None:
        fault = await self.fault_of(b"<edXML>not closed")
        self.assertIsNot(fault.code, FaultCode.UNAVAILABLE)
        # An envelope already sealed elsewhere cannot be sealed again by this node.
        sealed = self.kit.signed_envelope(HOSTED_H23, [REMOTE_G22])
        fault = await self.fault_of(sealed)
        self.assertIs(fault.code, FaultCode.RULE_VIOLATION)
        self.assertEqual(await self.message_count(), 0)

    async def test_status_packet_is_not_a_document(self) -> None:
        sent = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22]), self.kit.office()
        )
        msg = await self.kit.read(st.get_message, message_id=sent.message_id)
        assert msg is not None
        doc = reader.read(self.kit.blobs.read(msg.blob_sha256)).document
        assert isinstance(doc, Envelope)
        packet = statuses.recall_request(
            statuses.response_for(doc),
            statuses.reporter(self.kit.config, HOSTED_H23),
            at=self.kit.now(),
        )
        from edxml import writer

        fault = await self.fault_of(writer.write(packet))
        self.assertIs(fault.code, FaultCode.BAD_REQUEST)

    async def test_too_large_is_refused_before_parsing(self) -> None:
        kit = self.make_kit(max_envelope="1KB")
        fault = None
        try:
            await kit.outbound().submit_envelope(b"x" * 2048, kit.office())
        except GatewayFault as exc:
            fault = exc
        assert fault is not None
        self.assertIs(fault.code, FaultCode.TOO_LARGE)

    async def test_status_goes_at_its_documents_priority(self) -> None:
        data = self.kit.envelope(HOSTED_H23, [REMOTE_G22], priority=Priority.EXPRESS)
        sent = await self.outbound.submit_envelope(data, self.kit.office())
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        packet = statuses.recall_request(
            statuses.response_for(doc),
            statuses.reporter(self.kit.config, HOSTED_H23),
            at=self.kit.now(),
            reason="Gửi nhầm",
        )
        queued = await self.outbound.submit_status(packet, REMOTE_G22)
        self.assertNotEqual(queued.message_id, sent.message_id)
        [delivery] = await self.kit.read(st.deliveries_for, message_id=queued.message_id)
        self.assertEqual((delivery.recipient, delivery.route), (REMOTE_G22, "vpcp"))
        self.assertEqual(delivery.priority_rank, 3)
        msg = await self.kit.read(st.get_message, message_id=queued.message_id)
        assert msg is not None
        self.assertEqual((msg.direction, msg.kind), ("out", "status"))
        back = reader.read(self.kit.blobs.read(msg.blob_sha256)).document
        assert isinstance(back, StatusPacket)
        self.assertIs(back.status_code, StatusCode.RECALL_REQUESTED)
        self.assertEqual(back.response_for.document_id, doc.header.document_id)
        assert back.timestamp is not None
        self.assertEqual(back.timestamp.utcoffset().total_seconds(), 7 * 3600)  # type: ignore[union-attr]

    async def test_status_to_nowhere_is_unknown_recipient(self) -> None:
        doc = reader.read(self.kit.envelope(HOSTED_H23, [REMOTE_G22])).document
        assert isinstance(doc, Envelope)
        packet = statuses.arrived(
            statuses.response_for(doc),
            statuses.reporter(self.kit.config, HOSTED_H23),
            at=self.kit.now(),
        )
        with self.assertRaises(GatewayFault) as caught:
            await self.outbound.submit_status(packet, UNROUTED)
        self.assertIs(caught.exception.code, FaultCode.UNKNOWN_RECIPIENT)
