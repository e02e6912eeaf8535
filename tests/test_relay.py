"""The provincial-axis role (issue #6): a relay node stores and forwards what it does not host,
appending its TraceHeader and keeping the earlier ones, refuses loops and unknown destinations,
and forwards status packets towards the document's sender. Real store, blobs, PKI and clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodekit import HOSTED_H23, HOSTED_VP, REMOTE_G09, REMOTE_G22, UNROUTED, NodeKit

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from edxml import reader, signature, trace, writer
from edxml.codes import Priority, StatusCode
from edxml.model import Envelope, Organization
from gateway import statuses
from gateway import store as st
from gateway.interfaces import Peer
from gateway.soap import FaultCode, GatewayFault

PEER = Peer("node", "vpcp", "ab" * 32)
RELAY = "000.00.99.H23"  # the provincial axis's own OrganId
# A second destination behind another route, so one envelope can be forwarded two ways.
OTHER_ROUTE = f"""
[route:north]
transport = soap
url = https://127.0.0.1:9444/exchange
organ_ids = {UNROUTED}
"""


class RelayTests(TestCase):
    def setUp(self) -> None:
        self.kit = NodeKit.create(
            Path(self.mktemp()),
            reactor=reactor,
            node_extra=f"organ_id = {RELAY}\nrelay = on\n",
            extra=OTHER_ROUTE,
        )
        self.addCleanup(self.kit.stop)
        self.inbound = self.kit.inbound()

    async def refused(self, package: bytes, asked: Any = None) -> GatewayFault:
        try:
            await self.inbound.accept(package, PEER, asked)
        except GatewayFault as fault:
            return fault
        self.fail("the relay took what it should refuse")

    async def test_forwards_with_its_hop_appended_and_the_seal_intact(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [REMOTE_G09])
        receipt = await self.inbound.accept(data, PEER)
        msg = await self.kit.read(st.get_message, message_id=receipt.message_id)
        assert msg is not None and msg.forward_sha256 is not None
        self.assertEqual(self.kit.blobs.read(msg.blob_sha256), data)  # the exact bytes kept
        onward = self.kit.blobs.read(msg.forward_sha256)
        doc, before = reader.read(onward).document, reader.read(data).document
        assert isinstance(doc, Envelope) and isinstance(before, Envelope)
        self.assertEqual(doc.trace.traces, (*before.trace.traces, doc.trace.traces[-1]))
        self.assertEqual(doc.trace.traces[-1].organ_id, RELAY)
        self.assertEqual(doc.trace.traces[-1].timestamp, self.kit.now())
        verdict = signature.verify(onward, self.kit.trust(), now=self.kit.now())
        self.assertTrue(verdict.is_valid, verdict)
        self.assertEqual(verdict.hops_after_signing, 1)
        [delivery] = await self.kit.read(st.deliveries_for, message_id=msg.id)
        self.assertEqual(
            (delivery.recipient, delivery.route, delivery.state), (REMOTE_G09, "vpcp", "queued")
        )
        # The relay is no addressee: it says neither 01 nor anything else.
        outbound = await self.kit.query("SELECT count(*) FROM messages WHERE direction = 'out'")
        self.assertEqual(outbound, [(0,)])

    async def test_hosted_addressees_get_it_and_the_others_are_forwarded(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_VP, REMOTE_G09])
        receipt = await self.inbound.accept(data, PEER)
        inbox = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_VP], limit=5)
        self.assertEqual([i.message.id for i in inbox], [receipt.message_id])
        deliveries = await self.kit.read(st.deliveries_for, message_id=receipt.message_id)
        self.assertEqual([d.recipient for d in deliveries], [REMOTE_G09])
        codes = await self.kit.query(
            "SELECT business_type FROM messages WHERE direction = 'out' AND kind = 'status'"
        )
        self.assertEqual(codes, [("01",)])  # from the hosted addressee only

    async def test_each_hand_over_adds_its_recipient_once(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [REMOTE_G09, UNROUTED])
        first = await self.inbound.accept(data, PEER, [REMOTE_G09])
        again = await self.inbound.accept(data, PEER, [UNROUTED])
        third = await self.inbound.accept(data, PEER, [REMOTE_G09])
        self.assertFalse(first.duplicate)
        self.assertTrue(again.duplicate and third.duplicate)
        self.assertEqual({again.message_id, third.message_id}, {first.message_id})
        deliveries = await self.kit.read(st.deliveries_for, message_id=first.message_id)
        self.assertEqual(
            sorted((d.recipient, d.route) for d in deliveries),
            [(REMOTE_G09, "vpcp"), (UNROUTED, "north")],
        )

    async def test_a_loop_is_refused(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [REMOTE_G09])
        been_here = trace.append_hop(data, RELAY, self.kit.now())
        fault = await self.refused(been_here)
        self.assertIs(fault.code, FaultCode.RULE_VIOLATION)
        self.assertIn(RELAY, fault.text_en)
        self.assertIn("vòng lặp", (fault.text_vi or "").lower())
        rows = await self.kit.query(
            "SELECT direction, state, forward_sha256 FROM messages WHERE kind = 'envelope'"
        )
        self.assertEqual(rows, [("in", "rejected", None)])
        # Nothing goes on; the sender hears why, from the relay itself.
        replies = await self.kit.query(
            "SELECT m.sender, m.business_type, d.recipient FROM deliveries d"
            " JOIN messages m ON m.id = d.message_id"
        )
        self.assertEqual(replies, [(RELAY, "02", REMOTE_G22)])

    async def test_an_unknown_destination_is_refused(self) -> None:
        nowhere = "000.00.77.H77"
        fault = await self.refused(self.kit.signed_envelope(REMOTE_G22, [nowhere]))
        self.assertIs(fault.code, FaultCode.UNKNOWN_RECIPIENT)
        self.assertIn(nowhere, fault.text_en)

    async def test_a_bad_seal_is_refused_before_it_travels_on(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [REMOTE_G09]).replace(
            b"<edXML:Subject>", "<edXML:Subject>Sửa: ".encode()
        )
        fault = await self.refused(data)
        self.assertIs(fault.code, FaultCode.SIGNATURE_INVALID)
        forwarded = await self.kit.query(
            "SELECT count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id"
            " WHERE m.kind = 'envelope'"
        )
        self.assertEqual(forwarded, [(0,)])

    async def test_a_status_goes_on_towards_the_documents_sender(self) -> None:
        doc = reader.read(self.kit.envelope(REMOTE_G22, [REMOTE_G09])).document
        assert isinstance(doc, Envelope)
        packet = writer.write(
            statuses.from_office(
                statuses.response_for(doc),
                Organization(organ_id=REMOTE_G09, organ_name="Bộ Nội vụ"),
                StatusCode.ACCEPTED,
                at=self.kit.now(),
            )
        )
        packet = self.kit.sign_as(REMOTE_G09, packet)
        receipt = await self.inbound.accept(packet, PEER, [REMOTE_G22])
        again = await self.inbound.accept(packet, PEER, [REMOTE_G22])
        self.assertTrue(again.duplicate)
        msg = await self.kit.read(st.get_message, message_id=receipt.message_id)
        assert msg is not None
        self.assertEqual((msg.kind, msg.direction, msg.forward_sha256), ("status", "in", None))
        [delivery] = await self.kit.read(st.deliveries_for, message_id=msg.id)
        self.assertEqual((delivery.recipient, delivery.route), (REMOTE_G22, "vpcp"))
        self.assertEqual(await self.kit.query("SELECT count(*) FROM statuses"), [(0,)])

    async def test_a_status_goes_on_as_urgently_as_the_document_it_is_about(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [REMOTE_G09], priority=Priority.VERY_URGENT)
        await self.inbound.accept(data, PEER)
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        packet = writer.write(
            statuses.arrived(
                statuses.response_for(doc),
                Organization(organ_id=REMOTE_G09, organ_name="Bộ Nội vụ"),
                at=self.kit.now(),
            )
        )
        receipt = await self.inbound.accept(self.kit.sign_as(REMOTE_G09, packet), PEER)
        [delivery] = await self.kit.read(st.deliveries_for, message_id=receipt.message_id)
        self.assertEqual((delivery.recipient, delivery.priority_rank), (REMOTE_G22, 2))

    async def test_a_relay_hosting_the_sender_records_the_status_as_ever(self) -> None:
        # Addressed to a hosted agency, a status is this node's business, relay or not.
        outbound = self.kit.outbound()
        sent = await outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22]), self.kit.office()
        )
        doc = reader.read(self.kit.envelope(HOSTED_H23, [REMOTE_G22])).document
        assert isinstance(doc, Envelope)
        packet = statuses.from_office(
            statuses.response_for(doc),
            Organization(organ_id=REMOTE_G22, organ_name="Văn phòng Chính phủ"),
            StatusCode.ACCEPTED,
            at=self.kit.now(),
        )
        await self.inbound.accept(writer.write(packet), PEER)
        [line] = await self.kit.read(st.status_history, message_id=sent.message_id)
        self.assertEqual(line.code, "03")
