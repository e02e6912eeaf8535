"""The axes end to end (issue #6), four real processes on loopback (tests/axis_kit.py):

agency node A (Hà Nam) → provincial axis node P (a relay) → the VXP simulator (national axis) →
agency node B (Hưng Yên), and B's statuses 01, 03, 06 back the same way, with the trace list
showing every hop; then the same with the simulator injecting each of its faults; then B killed
with SIGKILL inside its pull loop, restarted: nothing lost, nothing handed over twice.
"""

from __future__ import annotations

from typing import Any, ClassVar

try:
    from tests.axis_kit import RELAY, AxisWorld, make_world
    from tests.e2e_kit import (
        H23,
        H40,
        WorldTestCase,
        cli_json,
        document_id,
        envelope,
        poll,
        rows,
    )
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from axis_kit import RELAY, AxisWorld, make_world  # type: ignore[no-redef, import-not-found]
    from e2e_kit import (  # type: ignore[no-redef, import-not-found]
        H23,
        H40,
        WorldTestCase,
        cli_json,
        document_id,
        envelope,
        poll,
        rows,
    )

TIMEOUT = 60.0


class _World(WorldTestCase):
    world: ClassVar[AxisWorld]
    world_factory = staticmethod(make_world)
    prefix = "axes-"
    timeout = TIMEOUT

    def round_trip(self, number: str) -> tuple[str, Any]:
        """A sends; B receives, picks up, reports 03 and 06; A sees 01, 03, 06. The sent
        message id and B's inbox item."""
        office_a, office_b = self.client(self.world.a), self.client(self.world.b)
        sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], number))
        got = self.arrival_at_b(office_b, number)
        self.assertEqual((got.Kind, got.From), ("new", H23))
        self.assertEqual(office_b.service.MarkReceived(MessageId=[got.MessageId]), 1)
        self.assertEqual(self.history_at_a(office_a, sent.MessageId, 1), ["01"])
        office_b.service.UpdateStatus(
            MessageId=got.MessageId, OrganId=H40, StatusCode="03", Description="Đã tiếp nhận"
        )
        self.assertEqual(self.history_at_a(office_a, sent.MessageId, 2), ["01", "03"])
        office_b.service.UpdateStatus(MessageId=got.MessageId, OrganId=H40, StatusCode="06")
        self.assertEqual(self.history_at_a(office_a, sent.MessageId, 3), ["01", "03", "06"])
        return sent.MessageId, got

    def assertOnceAtB(self, number: str) -> None:
        """One stored copy of the document at B, in nobody's inbox any more."""
        kept = rows(
            self.world.b,
            "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'envelope'"
            " AND document_id = ? AND state <> 'rejected'",
            document_id(H23, number),
        )
        self.assertEqual(kept, [(1,)])
        self.assertEqual(self.in_b_inbox(self.client(self.world.b), number), [])


class _PullLoopCrash(_World):
    """SIGKILL of B inside its pull loop: once while it fetches (the simulator answers slowly),
    once after it stored a document but before the axis heard its acknowledgement (the
    simulator loses every acknowledgement). They run last, in the same four processes, after the
    faults (`test_k…` sorts after `test_7…`)."""

    __test__ = False

    def _kill_b_when(self, what: str, probe: Any) -> None:
        poll(what, probe, timeout=TIMEOUT, every=0.05)
        self.world.b.kill()
        self.world.sim.faults(slow=0, lost_acks=0)
        self.world.b.start()

    def _items_to_b(self) -> list[Any]:
        return [
            i
            for i in self.world.sim.state()["items"]
            if i["to"] == H40 and i["messagetype"] == "edoc"
        ]

    def _item_to_b(self, after: int) -> Any:
        """The simulator's record of the document for H40 uploaded after the first `after`."""
        items = self._items_to_b()
        return items[after] if len(items) > after else None

    def test_killed_while_fetching(self) -> None:
        before = len(self._items_to_b())
        self.world.sim.faults(slow=1.5)
        office_a = self.client(self.world.a)
        sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "701"))

        def fetching() -> Any:
            item = self._item_to_b(before)
            return item is not None and item["fetches"] >= 1

        self._kill_b_when("B fetching the document", fetching)
        self.assertEqual(
            rows(
                self.world.b,
                "SELECT count(*) FROM messages WHERE document_id = ?",
                document_id(H23, "701"),
            ),
            [(0,)],
        )
        self._finish("701", sent.MessageId, before)

    def test_killed_after_storing_before_acknowledging(self) -> None:
        # Every acknowledgement B sends is lost on the way: B holds the document, the axis
        # still lists it, B keeps trying to say `done` — and is killed in that state.
        before = len(self._items_to_b())
        self.world.sim.faults(lost_acks=10_000)
        office_a = self.client(self.world.a)
        sent = office_a.service.SendDocument(Envelope=envelope(H23, [H40], "702"))

        def stored_not_acked() -> bool:
            kept = rows(
                self.world.b,
                "SELECT count(*) FROM messages WHERE direction = 'in' AND document_id = ?",
                document_id(H23, "702"),
            )
            item = self._item_to_b(before)
            lost = self.world.sim.state()["fault_hits"].get("lost_acks", 0)
            return kept == [(1,)] and item is not None and not item["acknowledged"] and lost >= 2

        self._kill_b_when("B holding the document, the axis not yet told", stored_not_acked)
        self._finish("702", sent.MessageId, before)

    def _finish(self, number: str, message_id: str, before: int) -> None:
        office_a, office_b = self.client(self.world.a), self.client(self.world.b)
        got = self.arrival_at_b(office_b, number)
        self.assertEqual(office_b.service.MarkReceived(MessageId=[got.MessageId]), 1)
        office_b.service.UpdateStatus(MessageId=got.MessageId, OrganId=H40, StatusCode="03")
        self.assertEqual(self.history_at_a(office_a, message_id, 2), ["01", "03"])
        self.assertOnceAtB(number)
        # The axis item is settled and acknowledged; nothing left pending for B.
        poll(
            "the axis acknowledgement",
            lambda: (self._item_to_b(before) or {}).get("acknowledged"),
            timeout=TIMEOUT,
        )
        report = cli_json(self.world.b, "audit", "verify")
        self.assertTrue(report["intact"], report)


class AxesEndToEnd(_PullLoopCrash):
    __test__ = True

    def test_1_a_document_and_its_statuses_cross_both_axes(self) -> None:
        _, got = self.round_trip("601")
        world = self.world
        # The route it took: H23's own TraceHeader under its seal, then P's hop outside it.
        shown = cli_json(world.b, "show", got.MessageId)
        trace = [(t["organ_id"], t["signed"]) for t in shown["trace"]]
        self.assertEqual(trace[0], (H23, True))
        self.assertEqual(trace[-1], (RELAY, False))
        self.assertEqual(shown["verdict"]["signature"]["state"], "valid")
        self.assertEqual(shown["verdict"]["signature"]["hops_after_signing"], 1)
        [item] = shown["axis_items"]
        self.assertEqual(
            (item["route"], item["outcome"], item["acked_status"]), ("national", "accepted", "done")
        )
        # At P: kept as received, forwarded with its hop, one delivery on the national axis.
        [(relayed_id,)] = rows(
            world.p,
            "SELECT id FROM messages WHERE kind = 'envelope' AND document_id = ?",
            document_id(H23, "601"),
        )
        relayed = cli_json(world.p, "show", relayed_id)
        self.assertEqual(relayed["direction"], "in")
        self.assertIsNotNone(relayed["forward_sha256"])
        self.assertEqual(
            [(d["recipient"], d["route"], d["state"]) for d in relayed["deliveries"]],
            [(H40, "national", "sent")],
        )
        # The statuses went B → axis → P → A; P kept each as received and forwarded it.
        relayed_statuses = rows(
            world.p,
            "SELECT m.business_type, d.recipient, d.route, d.state FROM messages m"
            " JOIN deliveries d ON d.message_id = m.id WHERE m.kind = 'status'"
            " AND m.document_id = ? ORDER BY m.arrived_at",
            document_id(H23, "601"),
        )
        self.assertEqual(
            relayed_statuses,
            [(code, H23, "hanam", "sent") for code in ("01", "03", "06")],
        )
        # The simulator saw every item acknowledged.
        state = world.sim.state()
        mine = [i for i in state["items"] if i["to"] in (H40, H23)]
        self.assertEqual({i["messagetype"] for i in mine}, {"edoc", "status"})
        self.assertTrue(all(i["acknowledged"] for i in mine), mine)
        self.assertOnceAtB("601")
        # B's directory came from the axis' agency list; a sync asked for now changes nothing.
        listed = {a["organ_id"]: a["source"] for a in cli_json(world.b, "directory", "list")}
        self.assertEqual(listed, {H23: "axis:national", H40: "axis:national"})
        synced = cli_json(world.b, "directory", "sync")
        self.assertEqual((synced["listed"], synced["added"], synced["removed"]), (2, 0, 0))
        # A relay node that hosts nobody is still a node: its status reads.
        status_p = cli_json(world.p, "status")
        self.assertTrue(status_p["relay"])
        self.assertEqual(status_p["axes"][0]["findings"], [])

    def _with_fault(self, number: str, **fault: Any) -> None:
        self.world.sim.faults(**fault)
        try:
            self.round_trip(number)
        finally:
            self.world.sim.faults(
                slow=0, http500=0, drop_after_commit=0, not_ready=0, duplicate_listing=False
            )
        self.assertOnceAtB(number)

    def test_2_slow_answers(self) -> None:
        self._with_fault("602", slow=0.3)

    def test_3_server_errors(self) -> None:
        self._with_fault("603", http500=4)

    def test_4_upload_stored_but_answer_lost(self) -> None:
        before = self.world.sim.state()["uploads"]
        self._with_fault("604", drop_after_commit=1)
        # P uploaded again after the lost answer: the axis held two copies; B kept one.
        self.assertGreater(self.world.sim.state()["uploads"] - before, 4)

    def test_5_duplicate_listings(self) -> None:
        self._with_fault("605", duplicate_listing=True)

    def test_6_listed_but_not_downloadable_yet(self) -> None:
        self._with_fault("606", not_ready=2)
        [(attempts,)] = rows(
            self.world.b,
            "SELECT i.fetch_attempts FROM axis_items i JOIN messages m ON m.id = i.message_id"
            " WHERE m.document_id = ?",
            document_id(H23, "606"),
        )
        self.assertGreaterEqual(attempts, 3)

    def test_7_axis_clock_skew_is_a_finding(self) -> None:
        self.world.sim.faults(clock_offset=900)
        try:
            self.round_trip("607")

            def skewed() -> Any:
                axes = cli_json(self.world.b, "status")["axes"]
                return [f for a in axes for f in a["findings"] if f["code"] == "AxisClockSkew"]

            [finding] = poll("the skew finding", skewed, timeout=TIMEOUT)
            self.assertIn("national", finding["message_en"])
            self.assertIn("lệch", finding["message_vi"])
        finally:
            self.world.sim.faults(clock_offset=0)
