"""Recall (R14) end to end inside one node that hosts both agencies: H23's office system sends a
document to VP over the local route, then recalls it. The real Outbound (signing), Inbound and
office face operations, a real Store and BlobStore; deliveries are pumped by hand (claim → the
local inbound → sent) so that every step is deterministic. The office operations are called on
the resource directly (the SOAP framing is covered by test_office and the e2e tests)."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree
from nodekit import HOSTED_H23, HOSTED_VP, REMOTE_G22, NodeKit

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from edxml import reader, writer
from edxml.codes import BusinessDocType, StatusCode
from edxml.model import Business, Envelope, Organization, StatusPacket, TraceHeaderList
from gateway import statuses
from gateway import store as st
from gateway.interfaces import Peer
from gateway.office import OfficeResource
from gateway.soap import OFFICE_NS, FaultCode, GatewayFault

LOCAL = Peer("local", "local")
PEER = Peer("node", "vpcp", "ab" * 32)


def _op(name: str, **fields: str) -> etree._Element:
    element = etree.Element(f"{{{OFFICE_NS}}}{name}")
    for key, value in fields.items():
        etree.SubElement(element, f"{{{OFFICE_NS}}}{key}").text = value
    return element


def _texts(element: etree._Element, name: str) -> list[str]:
    return [e.text or "" for e in element.iter(f"{{{OFFICE_NS}}}{name}")]


class RecallTests(TestCase):
    def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        self.outbound = self.kit.outbound()
        self.inbound = self.kit.inbound(self.outbound)
        self.office = OfficeResource(
            self.kit.config, self.kit.store, self.kit.blobs, self.outbound, reactor=reactor
        )
        self.dev = self.kit.office("dev")

    async def pump(self) -> int:
        """Deliver everything due through the local inbound until the queues are empty."""
        delivered = 0
        while True:
            now = self.kit.now()
            claimed = await self.kit.store.write(
                functools.partial(st.claim_due_deliveries, now=now, limit=50)
            )
            if not claimed:
                return delivered
            for delivery in claimed:
                msg = await self.kit.read(st.get_message, message_id=delivery.message_id)
                assert msg is not None
                await self.inbound.accept(self.kit.blobs.read(msg.blob_sha256), LOCAL)
                await self.kit.store.write(
                    functools.partial(
                        st.mark_delivery_sent, delivery_id=delivery.id, now=now, receipt_json=None
                    )
                )
                delivered += 1

    async def send(self) -> tuple[str, str, str]:
        """H23 → VP, delivered and answered 01: (original id, DocumentId, VP's inbound id)."""
        data = self.kit.envelope(HOSTED_H23, [HOSTED_VP])
        sent = await self.outbound.submit_envelope(data, self.dev)
        await self.pump()
        original = await self.kit.read(st.get_message, message_id=sent.message_id)
        assert original is not None
        [item] = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_VP], limit=10)
        return sent.message_id, original.document_id, item.message.id

    async def history(self, message_id: str) -> list[tuple[str, str]]:
        rows = await self.kit.read(st.status_history, message_id=message_id)
        return [(s.organ_id, s.code) for s in rows]

    async def state(self, message_id: str) -> str:
        msg = await self.kit.read(st.get_message, message_id=message_id)
        assert msg is not None
        return msg.state

    async def actions(self, message_id: str) -> list[str]:
        rows = await self.kit.query(
            "SELECT action FROM audit WHERE subject_type = 'message' AND subject_id = ?"
            " ORDER BY id",
            message_id,
        )
        return [r[0] for r in rows]

    async def test_recall_before_pickup_withdraws_and_answers_15_by_itself(self) -> None:
        original, document_id, target = await self.send()
        self.assertEqual(await self.history(original), [(HOSTED_VP, "01")])
        answer = await self.office._op_RecallDocument(
            _op("RecallDocument", DocumentId=document_id, Reason="Gửi nhầm"), self.dev
        )
        revoke_id = _texts(answer, "MessageId")[0]
        self.assertNotEqual(revoke_id, original)
        self.assertEqual(await self.state(original), "recalled")
        self.assertIn("recalled", await self.actions(original))
        await self.pump()
        self.assertEqual(await self.state(target), "withdrawn")
        self.assertIn("withdrawn", await self.actions(target))
        self.assertEqual(await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_VP], limit=10), [])
        # 15 came back by itself, after the 01 and nothing else (a revoke gets no 01).
        self.assertEqual(await self.history(original), [(HOSTED_VP, "01"), (HOSTED_VP, "15")])
        status = await self.office._op_GetSendStatus(
            _op("GetSendStatus", DocumentId=document_id), self.dev
        )
        self.assertEqual(_texts(status, "MessageId"), [original])
        self.assertEqual(_texts(status, "LatestStatus"), ["15"])
        # Recalling again costs nothing new: the revoke is found by its key, no second 15;
        # with another reason too (the first revoke stands).
        for reason in ("Gửi nhầm", "Lý do khác"):
            again = await self.office._op_RecallDocument(
                _op("RecallDocument", DocumentId=document_id, Reason=reason), self.dev
            )
            self.assertEqual(_texts(again, "MessageId")[0], revoke_id)
            self.assertEqual(await self.pump(), 0)
        self.assertEqual(st.verify_audit_chain(st.Store.open_readonly(self.kit.store.path)), [])

    async def test_recall_after_pickup_waits_for_the_office_answer(self) -> None:
        original, document_id, target = await self.send()
        await self.kit.store.write(
            lambda c: st.mark_received(c, [target], [HOSTED_VP], now=self.kit.now(), actor="t")
        )
        await self.office._op_RecallDocument(
            _op("RecallDocument", DocumentId=document_id), self.dev
        )
        await self.pump()
        self.assertEqual(await self.state(target), "delivered")
        self.assertEqual(await self.history(original), [(HOSTED_VP, "01")])
        inbox = await self.office._op_ReceiveDocuments(
            _op("ReceiveDocuments", OrganId=HOSTED_VP), self.dev
        )
        self.assertEqual(_texts(inbox, "Kind"), ["revoke"])
        self.assertEqual(_texts(inbox, "DocumentId"), [document_id])

        await self.office._op_AnswerRecall(
            _op("AnswerRecall", OrganId=HOSTED_VP, DocumentId=document_id, Agree="false"),
            self.dev,
        )
        await self.pump()
        self.assertEqual(await self.history(original), [(HOSTED_VP, "01"), (HOSTED_VP, "16")])
        self.assertEqual(await self.state(target), "delivered")

        await self.office._op_AnswerRecall(
            _op("AnswerRecall", OrganId=HOSTED_VP, DocumentId=document_id, Agree="true"),
            self.dev,
        )
        await self.pump()
        self.assertEqual(
            await self.history(original),
            [(HOSTED_VP, "01"), (HOSTED_VP, "16"), (HOSTED_VP, "15")],
        )
        self.assertEqual(await self.state(target), "withdrawn")
        self.assertEqual(await self.state(original), "recalled")

    async def test_an_answer_nobody_asked_for_is_refused_and_changes_nothing(self) -> None:
        original, document_id, target = await self.send()
        await self.kit.store.write(
            lambda c: st.mark_received(c, [target], [HOSTED_VP], now=self.kit.now(), actor="t")
        )
        before = await self.kit.query("SELECT count(*) FROM messages")
        for agree in ("true", "false"):
            with self.assertRaises(GatewayFault) as caught:
                await self.office._op_AnswerRecall(
                    _op("AnswerRecall", OrganId=HOSTED_VP, DocumentId=document_id, Agree=agree),
                    self.dev,
                )
            self.assertIs(caught.exception.code, FaultCode.NOT_FOUND)
            self.assertIn("recall", caught.exception.text_en)
            self.assertIn("thu hồi", caught.exception.text_vi)
        self.assertEqual(await self.kit.query("SELECT count(*) FROM messages"), before)
        self.assertEqual(await self.pump(), 0)
        self.assertEqual(await self.history(original), [(HOSTED_VP, "01")])
        self.assertEqual(await self.state(target), "delivered")

    async def test_status_13_before_pickup_is_handled_as_a_revoke(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        receipt = await self.inbound.accept(data, PEER)
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        packet = statuses.recall_request(
            statuses.response_for(doc), statuses_org(REMOTE_G22), at=self.kit.now()
        )
        await self.inbound.accept(writer.write(packet), PEER)
        self.assertEqual(await self.state(receipt.message_id), "withdrawn")
        self.assertEqual(await self.history(receipt.message_id), [(REMOTE_G22, "13")])
        codes = await self.queued_status_codes(REMOTE_G22)
        self.assertEqual(codes, ["01", "15"])

    async def test_status_13_after_pickup_goes_to_the_office_inbox(self) -> None:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        receipt = await self.inbound.accept(data, PEER)
        await self.kit.store.write(
            lambda c: st.mark_received(
                c, [receipt.message_id], [HOSTED_H23], now=self.kit.now(), actor="t"
            )
        )
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        packet = statuses.recall_request(
            statuses.response_for(doc), statuses_org(REMOTE_G22), at=self.kit.now()
        )
        await self.inbound.accept(writer.write(packet), PEER)
        self.assertEqual(await self.state(receipt.message_id), "delivered")
        inbox = await self.office._op_ReceiveDocuments(
            _op("ReceiveDocuments", OrganId=HOSTED_H23), self.dev
        )
        self.assertEqual(_texts(inbox, "Kind"), ["revoke"])
        self.assertEqual(await self.queued_status_codes(REMOTE_G22), ["01"])

    async def test_revoke_of_an_unknown_document_is_answered_16_with_the_reason(self) -> None:
        doc = reader.read(self.kit.envelope(REMOTE_G22, [HOSTED_H23], number="77")).document
        assert isinstance(doc, Envelope)
        missing = "000.00.00.G22,2025/03/05,999/VPCP"
        revoke = Envelope(
            header=doc.header,
            trace=TraceHeaderList(
                business=Business(doc_type=BusinessDocType.REVOKE, document_id=missing)
            ),
        )
        data = self.kit.sign_as(REMOTE_G22, writer.write(revoke))
        receipt = await self.inbound.accept(data, PEER)
        self.assertFalse(receipt.duplicate)
        self.assertEqual(await self.state(receipt.message_id), "received")
        self.assertEqual(await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_H23], limit=9), [])
        [packet] = await self.queued_statuses(REMOTE_G22)
        self.assertIs(packet.status_code, StatusCode.RECALL_REFUSED)
        self.assertEqual(packet.response_for.document_id, missing)
        self.assertIn("No document", packet.description)
        self.assertIn("Không có văn bản", packet.description)

    async def queued_statuses(self, recipient: str) -> list[StatusPacket]:
        rows = await self.kit.query(
            "SELECT m.blob_sha256 FROM messages m JOIN deliveries d ON d.message_id = m.id"
            " WHERE m.direction = 'out' AND m.kind = 'status' AND d.recipient = ?"
            " ORDER BY m.rowid",
            recipient,
        )
        found = []
        for (sha,) in rows:
            packet = reader.read(self.kit.blobs.read(sha)).document
            assert isinstance(packet, StatusPacket)
            found.append(packet)
        return found

    async def queued_status_codes(self, recipient: str) -> list[str]:
        return [p.status_code.value for p in await self.queued_statuses(recipient)]


def statuses_org(organ_id: str) -> Organization:
    return Organization(organ_id=organ_id, organ_name="Văn phòng Chính phủ")
