"""Inbound: limits, verdict, signature policy, sender binding, durable commit, receipt, and the
automatic statuses (01 for an accepted envelope, 02 with the reason for a refused one). Status
packets join the history of the document they report on. Real dev PKI, Store and BlobStore files,
an injected clock for every time."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import attrs
from nodekit import (
    FIXTURES,
    HOSTED,
    HOSTED_H23,
    HOSTED_VP,
    REMOTE_G09,
    REMOTE_G22,
    NodeKit,
)
from pki import make_pki

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from edxml import reader, signature, writer
from edxml.codes import Priority, StatusCode
from edxml.model import VN_TZ, Attachment, Envelope, Organization, StatusPacket
from gateway import statuses
from gateway import store as st
from gateway.interfaces import IInbound, Peer
from gateway.soap import FaultCode, GatewayFault, Receipt

PEER = Peer("node", "vpcp", "ab" * 32)


class InboundTests(TestCase):
    def setUp(self) -> None:
        self.kit = self.make_kit()
        self.inbound = self.kit.inbound()

    def make_kit(self, **kw: Any) -> NodeKit:
        kit = NodeKit.create(Path(self.mktemp()), reactor=reactor, **kw)
        self.addCleanup(kit.stop)
        return kit

    async def refused(self, package: bytes, inbound: Any = None) -> GatewayFault:
        try:
            await (inbound or self.inbound).accept(package, PEER)
        except GatewayFault as fault:
            return fault
        self.fail("accept() took what it should refuse")

    async def statuses_out(self, kit: NodeKit | None = None) -> list[tuple[str, StatusPacket]]:
        """Queued outbound status packets: (recipient, packet), oldest first."""
        kit = kit or self.kit
        rows = await kit.query(
            "SELECT d.recipient, m.blob_sha256 FROM messages m JOIN deliveries d"
            " ON d.message_id = m.id WHERE m.direction = 'out' AND m.kind = 'status'"
            " ORDER BY m.rowid"
        )
        out = []
        for recipient, sha in rows:
            doc = reader.read(kit.blobs.read(sha)).document
            assert isinstance(doc, StatusPacket)
            out.append((recipient, doc))
        return out

    async def inbound_messages(self, state: str) -> list[st.MessageRecord]:
        rows = await self.kit.query(
            "SELECT id FROM messages WHERE direction = 'in' AND state = ? ORDER BY rowid", state
        )
        found = [await self.kit.read(st.get_message, message_id=r[0]) for r in rows]
        return [m for m in found if m is not None]

    def test_provides_the_interface(self) -> None:
        self.assertTrue(IInbound.providedBy(self.inbound))

    # --- accepted envelopes ---

    async def test_accepts_a_signed_envelope_and_queues_01_per_hosted_recipient(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, HOSTED, priority=Priority.VERY_URGENT)
        receipt = await self.inbound.accept(data, PEER)
        self.assertFalse(receipt.duplicate)
        self.assertEqual(receipt.received_at, self.kit.now())
        msg = await self.kit.read(st.get_message, message_id=receipt.message_id)
        assert msg is not None
        self.assertEqual((msg.direction, msg.kind, msg.state), ("in", "envelope", "received"))
        self.assertEqual(self.kit.blobs.read(msg.blob_sha256), data)  # the exact bytes
        self.assertEqual(json.loads(msg.verdict_json)["signature"]["state"], "valid")
        stored_receipt = json.loads(msg.receipt_json or "{}")
        self.assertEqual(stored_receipt["receipt_id"], receipt.receipt_id)
        self.assertTrue(stored_receipt["received_at"].endswith("+07:00"))
        for organ in HOSTED:
            [item] = await self.kit.read(st.pending_inbox, organ_ids=[organ], limit=10)
            self.assertEqual(item.message.id, receipt.message_id)
        sent = await self.statuses_out()
        self.assertEqual([r for r, _ in sent], [REMOTE_G22, REMOTE_G22])
        self.assertEqual(sorted(p.from_.organ_id for _, p in sent), sorted(HOSTED))
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        for _, packet in sent:
            self.assertIs(packet.status_code, StatusCode.ARRIVED)
            self.assertEqual(packet.response_for, statuses.response_for(doc))
            self.assertEqual(packet.timestamp, self.kit.now().astimezone(VN_TZ))
        ranks = await self.kit.query(
            "SELECT priority_rank FROM deliveries d JOIN messages m ON m.id = d.message_id"
            " WHERE m.kind = 'status'"
        )
        self.assertEqual([r[0] for r in ranks], [2, 2])

    async def test_resent_envelope_gets_the_first_receipt_and_no_second_01(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        first = await self.inbound.accept(data, PEER)
        self.kit.clock.advance(300)
        again = await self.inbound.accept(data, PEER)
        self.assertEqual(
            again, Receipt(first.receipt_id, first.message_id, first.received_at, True)
        )
        self.assertEqual(len(await self.statuses_out()), 1)
        self.assertEqual(len(await self.inbound_messages("received")), 1)
        [item] = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_H23], limit=10)
        self.assertEqual(item.message.id, first.message_id)

    async def test_unsigned_envelope_accepted_where_the_route_makes_signing_optional(self) -> None:
        kit = self.make_kit(remote_signature="optional")
        receipt = await kit.inbound().accept(kit.envelope(REMOTE_G22, [HOSTED_VP]), PEER)
        self.assertFalse(receipt.duplicate)
        self.assertEqual(len(await self.statuses_out(kit)), 1)

    # --- refused envelopes ---

    async def test_tampered_envelope_is_refused_recorded_and_answered_with_02(self) -> None:
        good = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        tampered = good.replace("năm 2024".encode(), "năm 2025".encode(), 1)
        self.assertNotEqual(tampered, good)
        fault = await self.refused(tampered)
        self.assertIs(fault.code, FaultCode.SIGNATURE_INVALID)
        [rejected] = await self.inbound_messages("rejected")
        self.assertEqual(rejected.sender, REMOTE_G22)
        self.assertEqual(rejected.business_type, "0")  # its real one: v3 keys accepted rows only
        self.assertEqual(self.kit.blobs.read(rejected.blob_sha256), tampered)
        self.assertEqual(json.loads(rejected.verdict_json)["signature"]["state"], "invalid")
        self.assertEqual(await self.kit.read(st.pending_inbox, organ_ids=HOSTED, limit=10), [])
        [(recipient, packet)] = await self.statuses_out()
        self.assertEqual(recipient, REMOTE_G22)
        self.assertIs(packet.status_code, StatusCode.REJECTED)
        self.assertEqual(packet.from_.organ_id, HOSTED_H23)
        self.assertIn("Từ chối", packet.description)
        self.assertIn("Rejected", packet.description)
        # The refusal does not hold the idempotency key: the genuine envelope is then received.
        receipt = await self.inbound.accept(good, PEER)
        self.assertFalse(receipt.duplicate)
        self.assertEqual(len(await self.inbound_messages("received")), 1)

    async def test_broken_pdf_signature_is_refused_with_02_naming_it(self) -> None:
        """R5/R13: a PDF whose signature no longer matches its bytes refuses the document."""
        import pdfkit

        kit = pdfkit.make_kit()
        unsigned = reader.read(self.kit.envelope(REMOTE_G22, [HOSTED_H23])).document
        assert isinstance(unsigned, Envelope)
        first = unsigned.attachments[0]
        broken = Attachment.of(
            kit.tampered,
            content_id=first.content_id,
            attachment_name=first.attachment_name,
            content_type=first.content_type,
        )
        doc = attrs.evolve(unsigned, attachments=(broken, *unsigned.attachments[1:]))
        fault = await self.refused(self.kit.sign_as(REMOTE_G22, writer.write(doc)))
        self.assertIs(fault.code, FaultCode.SIGNATURE_INVALID)
        self.assertIn("PdfSignatureBroken", [f.code for f in fault.findings])
        [(recipient, packet)] = await self.statuses_out()
        self.assertEqual((recipient, packet.status_code), (REMOTE_G22, StatusCode.REJECTED))
        self.assertIn("PDF", packet.description)

    async def test_unsigned_envelope_refused_where_the_route_requires_a_signature(self) -> None:
        fault = await self.refused(self.kit.envelope(REMOTE_G22, [HOSTED_H23]))
        self.assertIs(fault.code, FaultCode.SIGNATURE_INVALID)
        self.assertEqual(len(await self.inbound_messages("rejected")), 1)
        [(_, packet)] = await self.statuses_out()
        self.assertIs(packet.status_code, StatusCode.REJECTED)
        self.assertTrue(packet.description.strip())

    async def test_another_agencys_seal_is_sender_mismatch(self) -> None:
        data = self.kit.sign_as(REMOTE_G09, self.kit.envelope(REMOTE_G22, [HOSTED_H23]))
        fault = await self.refused(data)
        self.assertIs(fault.code, FaultCode.SENDER_MISMATCH)
        self.assertIn(REMOTE_G09, fault.text_en)

    async def test_seal_from_an_unknown_ca_is_untrusted_signer(self) -> None:
        other = make_pki().agency_g22
        data = signature.sign(self.kit.envelope(REMOTE_G22, [HOSTED_H23]), other.key, other.chain)
        fault = await self.refused(data)
        self.assertIs(fault.code, FaultCode.UNTRUSTED_SIGNER)

    async def test_an_addressee_hosted_elsewhere_is_someone_elses(self) -> None:
        # One envelope to agencies on two nodes: each node takes it for its own.
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23, REMOTE_G09])
        receipt = await self.inbound.accept(data, PEER)
        inbox = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_H23], limit=10)
        self.assertEqual([i.message.id for i in inbox], [receipt.message_id])
        self.assertEqual(await self.kit.read(st.deliveries_for, message_id=receipt.message_id), [])
        [(to, packet)] = await self.statuses_out()
        self.assertEqual((to, packet.status_code), (REMOTE_G22, StatusCode.ARRIVED))

    async def test_an_envelope_for_nobody_here_is_unknown_recipient(self) -> None:
        fault = await self.refused(self.kit.signed_envelope(REMOTE_G22, [REMOTE_G09]))
        self.assertIs(fault.code, FaultCode.UNKNOWN_RECIPIENT)
        self.assertIn(REMOTE_G09, fault.text_en)

    async def test_a_hand_over_for_a_non_addressee_is_refused(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        try:
            await self.inbound.accept(data, PEER, [HOSTED_VP])
        except GatewayFault as fault:
            self.assertIs(fault.code, FaultCode.RULE_VIOLATION)
            self.assertIn(HOSTED_VP, fault.text_en)
        else:
            self.fail("accepted a hand-over for an agency the envelope is not addressed to")

    async def test_too_large_is_refused_before_parsing(self) -> None:
        kit = self.make_kit(max_envelope="1KB")
        fault = await self.refused(kit.signed_envelope(REMOTE_G22, [HOSTED_H23]), kit.inbound())
        self.assertIs(fault.code, FaultCode.TOO_LARGE)

    async def test_realworld_fixtures_are_refused_with_typed_faults(self) -> None:
        files = sorted((FIXTURES / "realworld").glob("*.edxml"))
        self.assertEqual(len(files), 3)
        for path in files:
            fault = await self.refused(path.read_bytes())
            self.assertIsInstance(fault.code, FaultCode, path.name)
            self.assertIsNot(fault.code, FaultCode.UNAVAILABLE, path.name)

    async def test_garbage_is_refused_and_not_recorded(self) -> None:
        for junk in (b"", b"\x00\xff", b"<edXML/>", b'<?xml version="1.0"?><a>'):
            fault = await self.refused(junk)
            self.assertIsNot(fault.code, FaultCode.UNAVAILABLE)
        self.assertEqual((await self.kit.query("SELECT count(*) FROM messages"))[0][0], 0)

    # --- status packets ---

    async def _sent_document(self) -> tuple[str, Envelope]:
        outbound = self.kit.outbound()
        data = self.kit.envelope(HOSTED_H23, [REMOTE_G22, REMOTE_G09])
        sent = await outbound.submit_envelope(data, self.kit.office())
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        return sent.message_id, doc

    async def test_status_03_joins_the_history_of_our_document(self) -> None:
        message_id, doc = await self._sent_document()
        self.kit.clock.advance(3600)
        packet = statuses.from_office(
            statuses.response_for(doc),
            Organization(organ_id=REMOTE_G22, organ_name="Văn phòng Chính phủ"),
            StatusCode.ACCEPTED,
            at=self.kit.now(),
        )
        receipt = await self.inbound.accept(writer.write(packet), PEER)
        self.assertFalse(receipt.duplicate)
        [status] = await self.kit.read(st.status_history, message_id=message_id)
        self.assertEqual((status.organ_id, status.code), (REMOTE_G22, "03"))
        self.assertEqual(status.reported_at, st.utc_text(self.kit.now()))
        msg = await self.kit.read(st.get_message, message_id=receipt.message_id)
        assert msg is not None
        self.assertEqual((msg.kind, msg.direction), ("status", "in"))
        self.assertEqual(status.blob_sha256, msg.blob_sha256)

    async def test_a_resent_status_is_acknowledged_once(self) -> None:
        """A peer that lost our receipt resends the same bytes: same receipt, one history line."""
        message_id, doc = await self._sent_document()
        packet = writer.write(
            statuses.from_office(
                statuses.response_for(doc),
                Organization(organ_id=REMOTE_G22, organ_name="Văn phòng Chính phủ"),
                StatusCode.DONE,
                at=self.kit.now(),
            )
        )
        first = await self.inbound.accept(packet, PEER)
        again = await self.inbound.accept(packet, PEER)
        self.assertTrue(again.duplicate)
        self.assertEqual((again.message_id, again.receipt_id), (first.message_id, first.receipt_id))
        history = await self.kit.read(st.status_history, message_id=message_id)
        self.assertEqual([h.code for h in history], ["06"])

    async def test_status_from_an_agency_we_did_not_send_to_is_refused(self) -> None:
        message_id, doc = await self._sent_document()
        packet = statuses.from_office(
            statuses.response_for(doc),
            Organization(organ_id="000.00.00.G01", organ_name="Bộ khác"),
            StatusCode.DONE,
            at=self.kit.now(),
        )
        fault = await self.refused(writer.write(packet))
        self.assertIs(fault.code, FaultCode.RULE_VIOLATION)
        self.assertEqual(await self.kit.read(st.status_history, message_id=message_id), [])

    async def test_recall_request_is_recorded_on_the_received_document(self) -> None:
        receipt = await self.inbound.accept(
            self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23]), PEER
        )
        doc = reader.read(self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])).document
        assert isinstance(doc, Envelope)
        packet = statuses.recall_request(
            statuses.response_for(doc),
            Organization(organ_id=REMOTE_G22, organ_name="Văn phòng Chính phủ"),
            at=self.kit.now(),
        )
        await self.inbound.accept(writer.write(packet), PEER)
        [status] = await self.kit.read(st.status_history, message_id=receipt.message_id)
        self.assertEqual((status.organ_id, status.code), (REMOTE_G22, "13"))

    # --- atomic automatic statuses ---

    def _break_deliveries(self) -> None:
        """A real failure inside the write transaction: the next delivery row cannot be added."""
        conn = sqlite3.connect(self.kit.store.path, isolation_level=None)
        conn.execute(
            "CREATE TRIGGER no_delivery BEFORE INSERT ON deliveries"
            " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )
        conn.close()

    def _mend_deliveries(self) -> None:
        conn = sqlite3.connect(self.kit.store.path, isolation_level=None)
        conn.execute("DROP TRIGGER no_delivery")
        conn.close()

    async def test_envelope_and_its_01_commit_together(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        self._break_deliveries()
        with self.assertRaises(sqlite3.IntegrityError):
            await self.inbound.accept(data, PEER)
        # No receipt, nothing kept: the sender retries, and then the 01 is not lost.
        self.assertEqual((await self.kit.query("SELECT count(*) FROM messages"))[0][0], 0)
        self._mend_deliveries()
        receipt = await self.inbound.accept(data, PEER)
        self.assertFalse(receipt.duplicate)
        [(_, packet)] = await self.statuses_out()
        self.assertIs(packet.status_code, StatusCode.ARRIVED)

    async def test_refusal_and_its_02_commit_together(self) -> None:
        self._break_deliveries()
        fault = await self.refused(self.kit.envelope(REMOTE_G22, [HOSTED_H23]))
        self.assertIs(fault.code, FaultCode.SIGNATURE_INVALID)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.IntegrityError)), 1)
        self.assertEqual(await self.inbound_messages("rejected"), [])
