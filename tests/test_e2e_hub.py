"""The provincial SOAP hub end to end (issue #8), three real processes on loopback
(tests/hub_kit.py):

agency node A (H23) → the BKAV eDoc hub simulator → agency node B (H40) on `edoc-hub` routes:
A's SendDocument, B's GetPendingDocumentIds → GetDocument → accept → ConfirmReceived, the hub's
own status 01, B's 03 and 06 with UpdateTraces, A's GetTraces; then the same with the simulator
injecting each of its faults; then B killed with SIGKILL after storing a document but before the
hub took its confirmation, restarted: nothing lost, nothing handed over twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

try:
    from tests.e2e_kit import (
        H23,
        H40,
        NAMES,
        Node,
        WorldTestCase,
        cli_json,
        document_id,
        envelope,
        poll,
        rows,
    )
    from tests.hub_kit import ROUTE, HubWorld, make_world
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from e2e_kit import (  # type: ignore[no-redef, import-not-found]
        H23,
        H40,
        NAMES,
        Node,
        WorldTestCase,
        cli_json,
        document_id,
        envelope,
        poll,
        rows,
    )
    from hub_kit import ROUTE, HubWorld, make_world  # type: ignore[no-redef, import-not-found]

TIMEOUT = 30.0
CLERK = {"Name": "Nguyễn Thị Văn Thư", "Department": "Văn phòng"}
RECEIVED = "Đã tiếp nhận"


class _World(WorldTestCase):
    world: ClassVar[HubWorld]
    world_factory = staticmethod(make_world)
    prefix = "hub-"
    timeout = TIMEOUT

    def hub_document(self, number: str) -> Any:
        """The hub's record of the document (polled until A has uploaded it)."""
        return poll(
            f"document {number} at the hub",
            lambda: self.world.sim.document(document_id(H23, number)),
            timeout=TIMEOUT,
        )

    def trace_items_at_a(self, number: str) -> list[tuple[Any, ...]]:
        """A's axis items for the traces it read about the document: (type, outcome)."""
        return rows(
            self.world.a,
            "SELECT i.message_type, i.outcome FROM axis_items i JOIN messages m"
            " ON m.id = i.message_id WHERE i.route = ? AND i.axis_id LIKE 'trace:%'"
            " AND m.document_id = ? ORDER BY i.axis_id",
            ROUTE,
            document_id(H23, number),
        )

    def round_trip(self, number: str) -> tuple[str, Any]:
        """A sends; B receives, picks up, reports 03 and 06; A sees 01, 03, 06. The sent
        message id and B's inbox item."""
        office_a = self.client(self.world.a)
        sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], number))
        self.assertEqual([(d.OrganId, d.State) for d in sent.Delivery], [(H40, "queued")])
        return sent.MessageId, self.picked_up_and_answered(number, sent.MessageId)

    def picked_up_and_answered(self, number: str, message_id: str) -> Any:
        """B's office takes the document from its inbox and reports 03 then 06, each seen at A
        before the next (statuses made back to back may overtake each other on the way, as
        they may between any two nodes); A sees the hub's 01 first. B's inbox item."""
        office_a, office_b = self.client(self.world.a), self.client(self.world.b)
        got = self.arrival_at_b(office_b, number)
        self.assertEqual((got.Kind, got.From), ("new", H23))
        self.assertEqual(got.Verdict.SignatureState, "valid")
        self.assertEqual(office_b.service.MarkReceived(MessageId=[got.MessageId]), 1)
        self.assertEqual(self.history_at_a(office_a, message_id, 1), ["01"])
        office_b.service.UpdateStatus(
            MessageId=got.MessageId,
            OrganId=H40,
            StatusCode="03",
            Description=RECEIVED,
            Staff=CLERK,
        )
        self.assertEqual(self.history_at_a(office_a, message_id, 2), ["01", "03"])
        office_b.service.UpdateStatus(
            MessageId=got.MessageId, OrganId=H40, StatusCode="06", Staff=CLERK
        )
        self.assertEqual(self.history_at_a(office_a, message_id, 3), ["01", "03", "06"])
        return got

    def assertSettled(
        self, number: str, message_id: str, got: Any, *, outcomes: tuple[str, ...] = ("accepted",)
    ) -> Any:
        """Everything the contract says holds once a round trip is over. The hub's document."""
        world = self.world
        a, b = world.a, world.b
        doc = self.hub_document(number)
        hub_id = str(doc["hub_id"])
        # A: delivered on the hub route with SendDocument, the receipt the hub's numeric id.
        [(recipient, route, state, receipt)] = rows(
            a,
            "SELECT recipient, route, state, receipt_json FROM deliveries WHERE message_id = ?",
            message_id,
        )
        self.assertEqual((recipient, route, state), (H40, ROUTE, "sent"))
        self.assertEqual(json.loads(receipt)["receipt_id"], hub_id)
        # B holds A's exact signed bytes, once, and its axis item says how it got them.
        [(a_digest,)] = rows(a, "SELECT blob_sha256 FROM messages WHERE id = ?", message_id)
        self.assertEqual(hashlib.sha256(got.Envelope).hexdigest(), a_digest)
        kept = rows(
            b,
            "SELECT id, blob_sha256 FROM messages WHERE direction = 'in' AND kind = 'envelope'"
            " AND document_id = ?",
            document_id(H23, number),
        )
        self.assertEqual(kept, [(got.MessageId, a_digest)])
        [item] = rows(
            b,
            "SELECT message_type, outcome, message_id, acked_status, acked_at FROM axis_items"
            " WHERE route = ? AND axis_id = ?",
            ROUTE,
            hub_id,
        )
        self.assertEqual(item[0], "edoc")
        self.assertIn(item[1], outcomes)
        self.assertEqual((item[2], item[3]), (got.MessageId, "confirmed"))
        self.assertIsNotNone(item[4])
        # B's statuses went out on the hub route and all ended `sent`: 01 without UpdateTraces
        # (the hub made its own), 03 and 06 with it.
        poll(
            "B's status deliveries sent",
            lambda: all(r[2] == "sent" for r in self.b_statuses(number)),
            timeout=TIMEOUT,
        )
        self.assertEqual(
            self.b_statuses(number),
            [(code, H23, "sent", ROUTE) for code in ("01", "03", "06")],
        )
        # A: one status per trace, in order, from H40; 01 the hub's (staff EdocAdapter).
        self.assertEqual(
            rows(
                a,
                "SELECT organ_id, code FROM statuses WHERE message_id = ? ORDER BY id",
                message_id,
            ),
            [(H40, "01"), (H40, "03"), (H40, "06")],
        )
        # Each trace A read from the hub recorded once, as a status item.
        self.assertEqual(self.trace_items_at_a(number), [("status", "accepted")] * 3)
        office_a = self.client(a)
        status = office_a.service.GetSendStatus(MessageId=message_id)
        [at_b] = status.Recipient
        self.assertEqual((at_b.OrganId, at_b.State, at_b.LatestStatus), (H40, "sent", "06"))
        history = at_b.History.Status
        self.assertEqual([s.Reporter for s in history], [H40] * 3)
        self.assertEqual(history[0].Staff.Name if history[0].Staff else None, "EdocAdapter")
        self.assertEqual(history[1].Description, RECEIVED)
        self.assertEqual(history[1].Staff.Name if history[1].Staff else None, CLERK["Name"])
        # The hub: B's notification taken, one trace per code, each read (disabled) by A.
        state = world.sim.state()
        mine = [n for n in state["notifications"] if n["hub_id"] == doc["hub_id"]]
        self.assertEqual([(n["receiver"], n["taken"]) for n in mine], [(H40, True)])
        traces = [t for t in state["traces"] if t["hub_id"] == doc["hub_id"]]
        self.assertEqual(
            sorted((t["from"], t["to"], t["code"]) for t in traces),
            [(H40, H23, 1), (H40, H23, 3), (H40, H23, 6)],
        )
        self.assertEqual([t["trace_id"] for t in traces if t["enable"]], [])
        self.assertGreaterEqual(doc["fetches"], 1)
        self.assertOnceAtB(number)
        return doc

    def b_statuses(self, number: str) -> list[tuple[Any, ...]]:
        """B's outgoing statuses about the document: (code, recipient, state, route)."""
        return rows(
            self.world.b,
            "SELECT m.business_type, d.recipient, d.state, d.route FROM messages m"
            " JOIN deliveries d ON d.message_id = m.id WHERE m.direction = 'out'"
            " AND m.kind = 'status' AND m.document_id = ? ORDER BY m.created_at, m.id",
            document_id(H23, number),
        )

    def assertOnceAtB(self, number: str) -> None:
        """One stored copy of the document at B, put in the inbox once, in nobody's inbox any
        more."""
        b = self.world.b
        kept = rows(
            b,
            "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'envelope'"
            " AND document_id = ? AND state <> 'rejected'",
            document_id(H23, number),
        )
        self.assertEqual(kept, [(1,)])
        entries = rows(
            b,
            "SELECT i.organ_id, i.acked_at IS NOT NULL FROM inbox i JOIN messages m"
            " ON m.id = i.message_id WHERE m.document_id = ?",
            document_id(H23, number),
        )
        self.assertEqual(entries, [(H40, 1)])
        self.assertEqual(self.in_b_inbox(self.client(b), number), [])

    def assertNoTokenLeak(self) -> None:
        searched = list(self.world.searched_files())
        # Not vacuous: both nodes' logs and the blobs B stored (A's envelope at least) are read.
        for node in self.world.nodes:
            self.assertIn(node.stderr_path, searched)
        self.assertTrue(
            any("blobs" in p.parts and self.world.b.directory in p.parents for p in searched)
        )
        self.assertEqual(self.world.token_leaks(), [])

    def assertAuditIntact(self, *nodes: Node) -> None:
        for node in nodes:
            report = cli_json(node, "audit", "verify")
            self.assertEqual((report["intact"], report["problems"]), (True, []), node.name)


class _PullLoopCrash(_World):
    """SIGKILL of B after it stored a document, before the hub took its confirmation (the
    simulator loses every ConfirmReceived). It runs last, in the same three processes, after
    the faults (`test_k…` sorts after `test_6…`)."""

    __test__ = False

    def test_killed_after_storing_before_confirming(self) -> None:
        world, number = self.world, "802"
        lost_before = world.sim.state()["fault_hits"].get("lost_confirms", 0)
        world.sim.faults(lost_confirms=10_000)
        office_a = self.client(world.a)
        sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], number))
        doc = self.hub_document(number)

        def stored_not_confirmed() -> bool:
            item = rows(
                world.b,
                "SELECT outcome, acked_at FROM axis_items WHERE route = ? AND axis_id = ?",
                ROUTE,
                str(doc["hub_id"]),
            )
            lost = world.sim.state()["fault_hits"].get("lost_confirms", 0) - lost_before
            return bool(item) and item[0][0] is not None and item[0][1] is None and lost >= 1

        try:
            poll(
                "B holding the document, the hub not told",
                stored_not_confirmed,
                timeout=TIMEOUT,
                every=0.05,
            )
            world.b.kill()
        finally:
            world.sim.clear_faults()
        # Stored before the kill; the hub still has it pending for B, and no 01 yet.
        self.assertEqual(
            rows(
                world.b,
                "SELECT count(*) FROM messages WHERE direction = 'in' AND document_id = ?",
                document_id(H23, number),
            ),
            [(1,)],
        )
        state = world.sim.state()
        self.assertEqual(
            [n["taken"] for n in state["notifications"] if n["hub_id"] == doc["hub_id"]], [False]
        )
        self.assertEqual([t for t in state["traces"] if t["hub_id"] == doc["hub_id"]], [])
        world.b.start()

        got = self.picked_up_and_answered(number, sent.MessageId)
        # Handed over once: one stored copy, one inbox entry, one automatic 01 made at B and
        # one 01 (the hub's) at A.
        self.assertSettled(number, sent.MessageId, got, outcomes=("accepted", "duplicate"))
        self.assertEqual(
            rows(
                world.a,
                "SELECT count(*) FROM statuses WHERE message_id = ? AND code = '01'",
                sent.MessageId,
            ),
            [(1,)],
        )
        self.assertAuditIntact(world.a, world.b)
        self.assertNoTokenLeak()


class HubEndToEnd(_PullLoopCrash):
    __test__ = True

    def test_1_a_document_and_its_statuses_cross_the_hub(self) -> None:
        message_id, got = self.round_trip("801")
        self.assertSettled("801", message_id, got)
        shown = cli_json(self.world.b, "show", got.MessageId)
        self.assertEqual(shown["verdict"]["signature"]["state"], "valid")
        [item] = shown["axis_items"]
        self.assertEqual(
            (item["route"], item["outcome"], item["acked_status"]), (ROUTE, "accepted", "confirmed")
        )
        self.assertAuditIntact(self.world.a, self.world.b)
        self.assertNoTokenLeak()

    def test_2_directory_from_the_hub(self) -> None:
        # B's route has directory_sync: GetOrganizations at start fills its directory.
        def listed() -> dict[str, Any] | None:
            found = {a["organ_id"]: a for a in cli_json(self.world.b, "directory", "list")}
            return found if set(found) >= {H23, H40} else None

        found = poll("the hub's organisations in B's directory", listed, timeout=TIMEOUT)
        self.assertEqual(set(found), {H23, H40})
        for organ_id, agency in found.items():
            self.assertEqual(agency["name"], NAMES[organ_id])
            self.assertTrue(agency["source"].endswith(ROUTE), agency)
        # A's route has none: `gateway directory sync` asks the hub at once; a second time
        # changes nothing.
        synced = cli_json(self.world.a, "directory", "sync")
        self.assertEqual((synced["route"], synced["listed"], synced["added"]), (ROUTE, 2, 2))
        again = cli_json(self.world.a, "directory", "sync", "--route", ROUTE)
        self.assertEqual((again["added"], again["changed"], again["removed"]), (0, 0, 0))

    def _with_fault(self, number: str, **fault: Any) -> Any:
        """A round trip with the fault set before A sends, cleared after; the fault hits it
        caused."""
        before = self.world.sim.state()["fault_hits"]
        self.world.sim.faults(**fault)
        try:
            message_id, got = self.round_trip(number)
        finally:
            self.world.sim.clear_faults()
        self.assertSettled(
            number,
            message_id,
            got,
            outcomes=("accepted", "duplicate") if "lost_confirms" in fault else ("accepted",),
        )
        after = self.world.sim.state()["fault_hits"]
        return {k: after.get(k, 0) - before.get(k, 0) for k in fault}

    def test_3_slow_answers(self) -> None:
        self._with_fault("803", slow=1.5)

    def test_4_server_errors(self) -> None:
        hits = self._with_fault("804", http500=3)
        self.assertEqual(hits, {"http500": 3})

    def test_5_listed_but_not_in_the_database_yet(self) -> None:
        hits = self._with_fault("805", not_ready=2)
        self.assertEqual(hits, {"not_ready": 2})
        doc = self.hub_document("805")
        self.assertEqual(doc["not_ready"], 0)
        [(attempts,)] = rows(
            self.world.b,
            "SELECT fetch_attempts FROM axis_items WHERE route = ? AND axis_id = ?",
            ROUTE,
            str(doc["hub_id"]),
        )
        self.assertGreaterEqual(attempts, 3)

    def test_7_recall_before_and_after_pickup(self) -> None:
        """R14 across the hub: A's recall goes as a signed revoke (BusinessDocType 1, a hub
        document of its own), B's 15 or 16 comes back as a trace. Not yet picked up at B:
        withdrawn there, 15 at once. Picked up: B's office sees the revoke and answers 16. The
        hub's 01 for each revoke is no new arrival at A."""
        office_a, office_b = self.client(self.world.a), self.client(self.world.b)
        early = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "807")).MessageId
        late = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "808")).MessageId
        self.assertEqual(self.history_at_a(office_a, early, 1), ["01"])
        self.assertEqual(self.history_at_a(office_a, late, 1), ["01"])
        picked = self.arrival_at_b(office_b, "808")
        self.assertEqual(office_b.service.MarkReceived(MessageId=[picked.MessageId]), 1)

        office_a.service.RecallDocument(DocumentId=document_id(H23, "807"), Reason="Gửi nhầm")
        self.assertEqual(self.history_at_a(office_a, early, 2), ["01", "15"])
        self.assertEqual(self.in_b_inbox(office_b, "807"), [])
        self.assertEqual(
            rows(
                self.world.b,
                "SELECT business_type, state FROM messages WHERE direction = 'in'"
                " AND kind = 'envelope' AND document_id = ? ORDER BY business_type",
                document_id(H23, "807"),
            ),
            [("0", "withdrawn"), ("1", "received")],
        )

        office_a.service.RecallDocument(DocumentId=document_id(H23, "808"), Reason="Sai số")
        revoke = poll(
            "the revoke in B's inbox",
            lambda: [
                d
                for d in office_b.service.ReceiveDocuments(OrganId=H40, Max=50)
                if d.Kind == "revoke" and d.DocumentId == document_id(H23, "808")
            ],
            timeout=TIMEOUT,
        )[0]
        self.assertEqual(revoke.From, H23)
        office_b.service.AnswerRecall(
            DocumentId=document_id(H23, "808"), OrganId=H40, Agree=False, Reason="Đã xử lý"
        )
        self.assertEqual(self.history_at_a(office_a, late, 2), ["01", "16"])
        # On the hub the revokes are documents of their own (BusinessDocType 1, the original's
        # DocumentId); each confirmation made a 01, each answer a trace from B to A. A revoke's
        # 01 may come after B's answer (B queues its 15 before it confirms), and a trace read
        # at the hub is settled at A a moment later (written down first, then taken): wait for
        # all six read and nothing unsettled at A, then A's histories hold no second 01.
        ours = {document_id(H23, n) for n in ("807", "808")}

        def all_read_and_settled() -> list[tuple[str, str, int]] | None:
            state = self.world.sim.state()
            hub_ids = {d["hub_id"] for d in state["documents"] if d["document_id"] in ours}
            mine = [t for t in state["traces"] if t["hub_id"] in hub_ids]
            unsettled = rows(
                self.world.a,
                "SELECT count(*) FROM axis_items WHERE route = ? AND message_type = 'status'"
                " AND outcome IS NULL",
                ROUTE,
            )
            if len(hub_ids) != 4 or len(mine) != 6 or any(t["enable"] for t in mine):
                return None
            return (
                sorted((t["from"], t["to"], t["code"]) for t in mine)
                if unsettled == [(0,)]
                else None
            )

        traces = poll("every trace read and settled at A", all_read_and_settled, timeout=TIMEOUT)
        self.assertEqual(traces, sorted([(H40, H23, 1)] * 4 + [(H40, H23, 15), (H40, H23, 16)]))
        self.assertEqual(self.history_at_a(office_a, early, 2), ["01", "15"])
        self.assertEqual(self.history_at_a(office_a, late, 2), ["01", "16"])
        self.assertAuditIntact(self.world.a, self.world.b)
        self.assertNoTokenLeak()

    def test_6_confirmations_lost(self) -> None:
        hits = self._with_fault("806", lost_confirms=2)
        self.assertEqual(hits, {"lost_confirms": 2})
