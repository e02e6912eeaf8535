"""End to end: two `gateway run` subprocesses on loopback, mutual TLS between them, zeep as the
office system of each (driven only by the WSDL each node serves). Issue #3, "Done when".

Each test gets its own pair (A hosts H23, B hosts H40; see e2e_kit) and ends by checking that
`gateway audit verify` finds both hash chains intact after everything it did.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from e2e_kit import (
    H23,
    H40,
    Node,
    cli_json,
    document_id,
    envelope,
    history_at,
    make_pair,
    office_client,
    poll,
    rows,
)
from lxml import etree
from zeep.exceptions import Fault as ZeepFault

from twisted.trial.unittest import SynchronousTestCase

from edxml import signature
from edxml.codes import Priority
from gateway.push import SIGNATURE_HEADER
from gateway.soap import OFFICE_NS, FaultCode

GW = {"gw": OFFICE_NS}
ACTIVE = ("queued", "sending", "retry_wait")


class TwoNodes(SynchronousTestCase):
    def setUp(self) -> None:
        self.a, self.b = make_pair(Path(self.mktemp()))
        self.addCleanup(self.a.stop)
        self.addCleanup(self.b.stop)
        self.a.start()
        self.b.start()

    def client(self, node: Node) -> Any:
        client = office_client(node)
        self.addCleanup(client.transport.session.close)
        return client

    def rows(self, node: Node, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return rows(node, sql, *args)

    def history_at_a(self, office_a: Any, message_id: str, count: int) -> list[str]:
        """The status codes A's GetSendStatus shows for H40, once there are `count` of them."""
        return history_at(office_a, message_id, H40, count, timeout=20)

    def assertAuditIntact(self, *nodes: Node) -> None:
        for node in nodes:
            report = cli_json(node, "audit", "verify")
            self.assertEqual((report["intact"], report["problems"]), (True, []), node.name)
            self.assertGreater(report["rows"], 0)

    def assertFault(self, code: FaultCode, call: Any, **kwargs: Any) -> ZeepFault:
        with self.assertRaises(ZeepFault) as caught:
            call(**kwargs)
        detail = caught.exception.detail.find("gw:GatewayFault", GW)
        self.assertIsNotNone(detail, etree.tostring(caught.exception.detail))
        self.assertEqual(detail.findtext("gw:Code", namespaces=GW), code.value)
        return caught.exception


class ExchangeTests(TwoNodes):
    def test_document_and_statuses_travel_between_nodes(self) -> None:
        """A's office sends H23 → H40; B's office receives the exact signed bytes A stored,
        reports 03 then 06; A's GetSendStatus shows 01 (automatic), 03, 06 in that order."""
        office_a, office_b = self.client(self.a), self.client(self.b)
        sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "101"))
        self.assertEqual([(d.OrganId, d.State) for d in sent.Delivery], [(H40, "queued")])

        inbox = poll(
            "the document in B's inbox",
            lambda: office_b.service.ReceiveDocuments(OrganId=H40),
            timeout=20,
        )
        self.assertEqual(len(inbox), 1)
        got = inbox[0]
        self.assertEqual(
            (got.Kind, got.From, got.DocumentId), ("new", H23, document_id(H23, "101"))
        )

        # The exact bytes A signed and stored, sealed by H23's dev certificate.
        stored = cli_json(self.a, "show", sent.MessageId)
        self.assertEqual(hashlib.sha256(got.Envelope).hexdigest(), stored["blob_sha256"])
        digest = stored["blob_sha256"]
        blob = self.a.directory / "data" / "blobs" / digest[:2] / digest
        self.assertEqual(got.Envelope, blob.read_bytes())
        root = (self.a.directory / "data" / "pki" / "root.pem").read_bytes()
        verdict = signature.verify(got.Envelope, signature.Trust.from_pem(root))
        self.assertTrue(verdict.is_valid, verdict.reason)
        self.assertIsNotNone(verdict.signer)
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.organ_id, H23)
        self.assertEqual([d["state"] for d in stored["deliveries"]], ["sent"])

        self.assertEqual(office_b.service.MarkReceived(MessageId=[got.MessageId]), 1)
        self.assertEqual(office_b.service.ReceiveDocuments(OrganId=H40), [])
        # Each report waits for the previous one to be seen at A, as statuses made seconds apart
        # are: two sent back to back may overtake each other (see StatusOrderTests).
        self.assertEqual(self.history_at_a(office_a, sent.MessageId, 1), ["01"])
        office_b.service.UpdateStatus(
            MessageId=got.MessageId, OrganId=H40, StatusCode="03", Description="Đã tiếp nhận"
        )
        self.assertEqual(self.history_at_a(office_a, sent.MessageId, 2), ["01", "03"])
        office_b.service.UpdateStatus(MessageId=got.MessageId, OrganId=H40, StatusCode="06")
        self.assertEqual(self.history_at_a(office_a, sent.MessageId, 3), ["01", "03", "06"])
        status = office_a.service.GetSendStatus(DocumentId=document_id(H23, "101"))
        recipient = status.Recipient[0]
        self.assertEqual((recipient.State, recipient.LatestStatus), ("sent", "06"))
        self.assertEqual([s.Reporter for s in recipient.History.Status], [H40] * 3)
        self.assertEqual(recipient.History.Status[1].Description, "Đã tiếp nhận")
        # A's office system hears the same three, once.
        events = office_a.service.ReceiveStatuses(OrganId=H23)
        self.assertEqual([e.Status.Code for e in events], ["01", "03", "06"])
        self.assertAuditIntact(self.a, self.b)

    def test_other_content_under_a_sent_document_id_is_refused(self) -> None:
        """The same envelope again is a resend (the first answer); the same DocumentId with other
        bytes is refused `Duplicate`, the first message named in FirstReceipt, nothing sent."""
        office_a, office_b = self.client(self.a), self.client(self.b)
        first = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "105"))
        again = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "105"))
        self.assertEqual(again.MessageId, first.MessageId)
        with self.assertRaises(ZeepFault) as caught:
            office_a.service.SendDocument(
                Envelope=envelope(H23, [H40], "105", priority=Priority.URGENT)
            )
        detail = caught.exception.detail.find(f"{{{OFFICE_NS}}}GatewayFault")
        ns = {"gw": OFFICE_NS}
        self.assertEqual(detail.findtext("gw:Code", namespaces=ns), FaultCode.DUPLICATE.value)
        self.assertEqual(
            detail.findtext("gw:FirstReceipt/gw:MessageId", namespaces=ns), first.MessageId
        )
        self.assertIn("BusinessDocType 2", detail.findtext("gw:MessageEn", namespaces=ns))
        self.assertTrue(detail.findtext("gw:MessageVi", namespaces=ns))
        inbox = poll(
            "the document in B's inbox",
            lambda: office_b.service.ReceiveDocuments(OrganId=H40),
            timeout=20,
        )
        self.assertEqual([d.DocumentId for d in inbox], [document_id(H23, "105")])
        self.assertEqual(
            rows(self.a, "SELECT count(*) FROM messages WHERE kind = 'envelope'"), [(1,)]
        )

    def test_peer_down_then_back(self) -> None:
        """B stopped: three envelopes are accepted at once and wait in retry_wait with growing
        attempts; B started again: each arrives in B's inbox exactly once."""
        office_a = self.client(self.a)
        self.assertEqual(self.b.stop(), 0)
        numbers = ["201", "202", "203"]
        for number in numbers:
            sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], number))
            self.assertEqual([d.State for d in sent.Delivery], ["queued"])

        def waiting(at_least: int) -> list[dict[str, Any]] | None:
            rows = cli_json(self.a, "queue", "--route", "peer")
            ready = len(rows) == 3 and all(
                r["state"] == "retry_wait" and r["attempts"] >= at_least and r["last_error"]
                for r in rows
            )
            return rows if ready else None

        first = poll("3 deliveries in retry_wait", lambda: waiting(1), timeout=20)
        self.assertEqual({r["document_id"] for r in first}, {document_id(H23, n) for n in numbers})
        before = {r["id"]: r["attempts"] for r in first}
        later = poll("attempts to grow", lambda: waiting(max(before.values()) + 1), timeout=20)
        for row in later:
            self.assertGreater(row["attempts"], before[row["id"]])

        self.b.start()
        office_b = self.client(self.b)
        poll("A's queue to drain", lambda: cli_json(self.a, "queue") == [], timeout=30)
        inbox = office_b.service.ReceiveDocuments(OrganId=H40, Max=50)
        self.assertEqual(
            sorted(d.DocumentId for d in inbox), sorted(document_id(H23, n) for n in numbers)
        )
        stored = self.rows(
            self.b,
            "SELECT document_id, count(*) FROM messages"
            " WHERE direction = 'in' AND kind = 'envelope' GROUP BY document_id",
        )
        self.assertEqual(Counter(dict(stored)), Counter({document_id(H23, n): 1 for n in numbers}))
        sent = self.rows(
            self.a, "SELECT state, count(*) FROM deliveries WHERE route = 'peer' GROUP BY state"
        )
        self.assertEqual(sent, [("sent", 3)])
        self.assertAuditIntact(self.a, self.b)

    def test_office_credential_confined_to_its_agency(self) -> None:
        """A's office credential (H23) cannot send as H40 nor read H40's inbox; nothing leaves."""
        office_a = self.client(self.a)
        fault = self.assertFault(
            FaultCode.FORBIDDEN,
            office_a.service.SendDocument,
            Envelope=envelope(H40, [H23], "301"),
        )
        self.assertIn(H40, fault.message)
        self.assertFault(FaultCode.FORBIDDEN, office_a.service.ReceiveDocuments, OrganId=H40)
        # B's credential on B: its own inbox is fine, H23's is not.
        office_b = self.client(self.b)
        self.assertEqual(office_b.service.ReceiveDocuments(OrganId=H40), [])
        self.assertFault(FaultCode.FORBIDDEN, office_b.service.ReceiveDocuments, OrganId=H23)
        self.assertEqual(self.rows(self.a, "SELECT count(*) FROM messages"), [(0,)])
        self.assertEqual(cli_json(self.a, "queue"), [])

    def test_audit_verify_detects_a_changed_row(self) -> None:
        """After a real exchange, both chains verify; a row changed behind the node's back (the
        append-only triggers dropped, as an attacker with the file would) is found."""
        office_a, office_b = self.client(self.a), self.client(self.b)
        office_a.service.SendDocument(Envelope=envelope(H23, [H40], "401"))
        poll("arrival at B", lambda: office_b.service.ReceiveDocuments(OrganId=H40), timeout=20)
        self.assertAuditIntact(self.a, self.b)
        self.assertEqual(self.b.stop(), 0)
        conn = sqlite3.connect(self.b.db_path, isolation_level=None)
        try:
            (trigger,) = conn.execute(
                "SELECT sql FROM sqlite_schema WHERE name = 'audit_no_update'"
            ).fetchone()
            # The append-only trigger is put back afterwards: only the row itself betrays it.
            conn.execute("DROP TRIGGER audit_no_update")
            conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
            conn.execute(trigger)
        finally:
            conn.close()
        report = cli_json(self.b, "audit", "verify", ok=(65,))
        self.assertFalse(report["intact"])
        self.assertEqual(
            report["problems"], [{"row": 2, "reason": "hash does not match the row's content"}]
        )


class VerdictTests(TwoNodes):
    def test_inbox_verdict_shows_the_valid_seal(self) -> None:
        """B checked H23's seal against the shared dev root: its office system must be told."""
        office_a, office_b = self.client(self.a), self.client(self.b)
        office_a.service.SendDocument(Envelope=envelope(H23, [H40], "102"))
        inbox = poll(
            "arrival at B", lambda: office_b.service.ReceiveDocuments(OrganId=H40), timeout=20
        )
        self.assertEqual(inbox[0].Verdict.SignatureState, "valid")
        self.assertIn("RevocationNotChecked", inbox[0].Verdict.FindingCode)


class StatusOrderTests(TwoNodes):
    def test_statuses_reported_back_to_back_keep_their_order(self) -> None:
        """B's office reports 03 and 06 the moment each document arrives (while B's automatic 01
        is still on its way): A must still show 01, 03, 06 for every document."""
        office_a, office_b = self.client(self.a), self.client(self.b)
        numbers = [f"50{n}" for n in range(6)]
        sent = [
            office_a.service.SendDocument(Envelope=envelope(H23, [H40], n)).MessageId
            for n in numbers
        ]
        seen: list[Any] = []

        def arrived() -> bool:
            for doc in office_b.service.ReceiveDocuments(OrganId=H40, Max=50):
                office_b.service.MarkReceived(MessageId=[doc.MessageId])
                for code in ("03", "06"):
                    office_b.service.UpdateStatus(
                        MessageId=doc.MessageId, OrganId=H40, StatusCode=code
                    )
                seen.append(doc)
            return len(seen) == len(numbers)

        poll("every document at B", arrived, timeout=20, every=0.02)
        for message_id in sent:
            self.assertEqual(self.history_at_a(office_a, message_id, 3), ["01", "03", "06"])


class RecallTests(TwoNodes):
    def test_recall_before_and_after_pickup(self) -> None:
        """R14 between two nodes. Not yet picked up at B: B withdraws it and answers 15 by itself.
        Already picked up: B's office gets the revoke and its answer (16 here) reaches A."""
        office_a, office_b = self.client(self.a), self.client(self.b)
        early = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "701")).MessageId
        late = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "702")).MessageId
        self.history_at_a(office_a, early, 1)  # both arrived: their 01 came back
        self.history_at_a(office_a, late, 1)
        [picked] = [
            d
            for d in office_b.service.ReceiveDocuments(OrganId=H40, Max=10)
            if d.DocumentId == document_id(H23, "702")
        ]
        office_b.service.MarkReceived(MessageId=[picked.MessageId])

        office_a.service.RecallDocument(DocumentId=document_id(H23, "701"), Reason="Gửi nhầm")
        self.assertEqual(self.history_at_a(office_a, early, 2), ["01", "15"])
        inbox = office_b.service.ReceiveDocuments(OrganId=H40, Max=10)
        self.assertNotIn(document_id(H23, "701"), [d.DocumentId for d in inbox])

        office_a.service.RecallDocument(DocumentId=document_id(H23, "702"), Reason="Sai số")
        revoke = poll(
            "the revoke in B's inbox",
            lambda: [
                d
                for d in office_b.service.ReceiveDocuments(OrganId=H40, Max=10)
                if d.Kind == "revoke"
            ],
            timeout=20,
        )[0]
        self.assertEqual(revoke.DocumentId, document_id(H23, "702"))
        office_b.service.AnswerRecall(
            DocumentId=document_id(H23, "702"), OrganId=H40, Agree=False, Reason="Đã xử lý"
        )
        self.assertEqual(self.history_at_a(office_a, late, 2), ["01", "16"])
        self.assertAuditIntact(self.a, self.b)


class _Callback(http.server.BaseHTTPRequestHandler):
    got: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.append((self.headers[SIGNATURE_HEADER], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class PushTests(SynchronousTestCase):
    def test_the_receiving_office_is_told_then_pulls(self) -> None:
        """B's office system has a push_url: a document from A makes B's node POST a signed
        wake-up there; the office then pulls the document as usual."""
        self.a, self.b = make_pair(Path(self.mktemp()))
        self.addCleanup(self.a.stop)
        self.addCleanup(self.b.stop)
        handler = type("Handler", (_Callback,), {"got": []})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        self.addCleanup(server.server_close)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        office = f"organ_ids = {H40}\n"
        text = self.b.conf.read_text(encoding="utf-8")
        self.assertIn(office, text)
        url = f"http://127.0.0.1:{server.server_address[1]}/cb"
        self.b.conf.write_text(text.replace(office, f"{office}push_url = {url}\n", 1))
        self.a.start()
        self.b.start()
        office_a, office_b = office_client(self.a), office_client(self.b)
        self.addCleanup(office_a.transport.session.close)
        self.addCleanup(office_b.transport.session.close)
        office_a.service.SendDocument(Envelope=envelope(H23, [H40], "601"))
        [(header, body)] = poll("a push at B's office", lambda: handler.got[:1], timeout=20)
        token = (self.b.directory / "data" / "office.token").read_text().strip()
        expected = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(header, f"sha256={expected}")
        self.assertEqual(json.loads(body)["documents"], {H40: 1})
        [got] = office_b.service.ReceiveDocuments(OrganId=H40)
        self.assertEqual(got.DocumentId, document_id(H23, "601"))
