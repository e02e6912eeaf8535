"""The node's side of the national axis (gateway.axis), against the real simulator on loopback
and a real inbound (store, blobs, PKI): upload, the pull loop's crash windows, duplicates,
not-yet-downloadable items, refusals acknowledged `fail`, directory sync, the axis clock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodekit import HOSTED_H23, HOSTED_VP, REMOTE_G09, REMOTE_G22, NodeKit
from zope.interface import implementer

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from gateway import directory, dispatch, views
from gateway import store as st
from gateway.axis import AxisClock, AxisPuller, DirectorySync, VxpTransport, axis_items
from gateway.config import RouteConfig, RoutePattern, Transport
from gateway.interfaces import (
    IInbound,
    OutboundPackage,
    Peer,
    PermanentFailure,
    TransportReceipt,
)
from gateway.soap import GatewayFault, Receipt
from gateway.vxpclient import VxpClient
from gateway.vxpsim import System, VxpSimulator

SECRET = b"axis-test-secret-0123456789"
OURS = "sys.node.under.test"
THEIRS = "sys.the.other.side"


class Crash(Exception):
    """The process dying right after the inbound commit."""


@implementer(IInbound)
class CrashAfterCommit:
    """The real inbound, and then a crash once (the commit of the message or of its refusal
    has happened)."""

    def __init__(self, inbound: Any) -> None:
        self.inbound = inbound
        self.crashes = 1
        self.accepted: list[Receipt] = []

    async def accept(
        self, package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Receipt:
        try:
            receipt = await self.inbound.accept(package, peer, recipients)
        except GatewayFault:
            if self.crashes:  # the refusal (and its 02) committed, then the crash
                self.crashes -= 1
                raise Crash() from None
            raise
        self.accepted.append(receipt)
        if self.crashes:
            self.crashes -= 1
            raise Crash()
        return receipt


def vxp_route(url: str) -> RouteConfig:
    return RouteConfig(
        "national", Transport.VXP, (RoutePattern.parse("*"),), url=url, system_id=OURS
    )


class AxisTests(TestCase):
    timeout = 60

    async def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        self.sim = VxpSimulator(
            systems={
                OURS: System(SECRET, {HOSTED_H23, HOSTED_VP}),
                THEIRS: System(SECRET, {REMOTE_G22, REMOTE_G09}),
            },
            reactor=reactor,
            agencies=[
                {"code": REMOTE_G22, "name": "Văn phòng Chính phủ", "id": "1", "pid": ""},
                {"code": REMOTE_G09, "name": "Bộ Nội vụ", "id": "2", "pid": ""},
            ],
        )
        url = await self.sim.start()
        self.addCleanup(self.sim.stop)
        self.ours = VxpClient(url, OURS, SECRET, reactor=reactor, timeout=5)
        self.theirs = VxpClient(url, THEIRS, SECRET, reactor=reactor, timeout=5)
        self.route = vxp_route(url)

    def puller(self, inbound: Any = None) -> AxisPuller:
        return AxisPuller(
            self.route, self.ours, inbound or self.kit.inbound(), self.kit.store, clock=reactor
        )

    async def upload_from_the_other_side(self, number: str = "123") -> bytes:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number=number)
        await self.theirs.send_edoc(data, from_=REMOTE_G22, message_type="edoc")
        return data

    async def envelopes_in(self) -> list[tuple[Any, ...]]:
        return await self.kit.query(
            "SELECT id, state FROM messages WHERE direction = 'in' AND kind = 'envelope'"
        )

    async def test_a_round_stores_hands_over_and_acknowledges(self) -> None:
        data = await self.upload_from_the_other_side()
        result = await self.puller().pull_once()
        self.assertEqual((result.listed, result.accepted, result.stopped), (1, 1, None))
        [(message_id, state)] = await self.envelopes_in()
        self.assertEqual(state, "received")
        msg = await self.kit.read(st.get_message, message_id=message_id)
        assert msg is not None
        self.assertEqual(self.kit.blobs.read(msg.blob_sha256), data)
        [item] = self.sim.state()["items"]
        self.assertTrue(item["acknowledged"])
        self.assertEqual(item["ack_history"], ["done"])
        [kept] = await self.kit.read(axis_items, route="national")
        self.assertEqual(
            (kept.outcome, kept.message_id, kept.acked_status), ("accepted", message_id, "done")
        )
        # Nothing more to take.
        again = await self.puller().pull_once()
        self.assertEqual(again.listed, 0)

    async def test_a_crash_after_the_commit_delivers_once(self) -> None:
        await self.upload_from_the_other_side()
        crashing = CrashAfterCommit(self.kit.inbound())
        first = self.puller(crashing)
        with self.assertRaises(Crash):
            await first.pull_once()
        [item] = self.sim.state()["items"]
        self.assertFalse(item["acknowledged"])  # the axis was never told
        second = await self.puller().pull_once()
        self.assertEqual((second.duplicates, second.accepted), (1, 0))
        [(message_id, _)] = await self.envelopes_in()
        inbox = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_H23], limit=10)
        self.assertEqual([i.message.id for i in inbox], [message_id])
        # One 01 for the one copy.
        codes = await self.kit.query(
            "SELECT business_type FROM messages WHERE direction = 'out' AND kind = 'status'"
        )
        self.assertEqual(codes, [("01",)])
        self.assertTrue(self.sim.state()["items"][0]["acknowledged"])

    async def test_an_item_settled_here_and_listed_again_is_acknowledged_unfetched(self) -> None:
        await self.upload_from_the_other_side()
        self.sim.faults.update({"duplicate_listing": True})
        first = await self.puller().pull_once()
        self.assertEqual(first.accepted, 1)
        fetches = self.sim.state()["items"][0]["fetches"]
        second = await self.puller().pull_once()
        self.assertEqual(second.acked_again, 1)
        self.assertEqual(self.sim.state()["items"][0]["fetches"], fetches)
        self.assertEqual(len(await self.envelopes_in()), 1)

    async def test_a_duplicate_upload_is_kept_once(self) -> None:
        data = await self.upload_from_the_other_side()
        await self.theirs.send_edoc(data, from_=REMOTE_G22, message_type="edoc")
        result = await self.puller().pull_once()
        self.assertEqual((result.accepted, result.duplicates), (1, 1))
        self.assertEqual(len(await self.envelopes_in()), 1)
        self.assertTrue(all(i["acknowledged"] for i in self.sim.state()["items"]))

    async def test_not_yet_downloadable_waits_for_the_next_round(self) -> None:
        self.sim.faults.update({"not_ready": 2})
        await self.upload_from_the_other_side()
        for _ in range(2):
            result = await self.puller().pull_once()
            self.assertEqual((result.not_ready, result.accepted), (1, 0))
            self.assertFalse(self.sim.state()["items"][0]["acknowledged"])
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 1)
        [kept] = await self.kit.read(axis_items, route="national")
        self.assertEqual(kept.fetch_attempts, 3)

    async def test_a_refused_package_is_acknowledged_fail_and_answered_02(self) -> None:
        broken = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23]).replace(
            b"<edXML:Subject>", "<edXML:Subject>Đã sửa ".encode()
        )
        await self.theirs.send_edoc(broken, from_=REMOTE_G22, message_type="edoc")
        result = await self.puller().pull_once()
        self.assertEqual(result.refused, 1)
        [item] = self.sim.state()["items"]
        self.assertEqual(item["ack_history"], ["fail"])
        [kept] = await self.kit.read(axis_items, route="national")
        self.assertEqual(kept.outcome, "refused")
        self.assertIn("SignatureInvalid", kept.detail or "")
        codes = await self.kit.query(
            "SELECT business_type FROM messages WHERE direction = 'out' AND kind = 'status'"
        )
        self.assertEqual(codes, [("02",)])

    async def test_a_crash_after_a_refusal_answers_02_once(self) -> None:
        broken = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23]).replace(
            b"<edXML:Subject>", "<edXML:Subject>Đã sửa ".encode()
        )
        await self.theirs.send_edoc(broken, from_=REMOTE_G22, message_type="edoc")
        with self.assertRaises(Crash):
            await self.puller(CrashAfterCommit(self.kit.inbound())).pull_once()
        result = await self.puller().pull_once()
        self.assertEqual(result.refused, 1)
        self.assertEqual(self.sim.state()["items"][0]["ack_history"], ["fail"])
        rows = await self.kit.query(
            "SELECT direction, kind, state, business_type FROM messages ORDER BY direction"
        )
        self.assertEqual(
            rows, [("in", "envelope", "rejected", "0"), ("out", "status", "accepted", "02")]
        )
        again = await self.kit.query("SELECT count(*) FROM audit WHERE action = 'refused-again'")
        self.assertEqual(again, [(1,)])

    async def test_an_unreachable_axis_ends_the_round(self) -> None:
        await self.upload_from_the_other_side()
        self.sim.faults.update({"http500": 1})
        result = await self.puller().pull_once()
        self.assertIn("listing edoc", result.stopped or "")
        self.assertEqual(await self.envelopes_in(), [])
        self.assertEqual((await self.puller().pull_once()).accepted, 1)

    async def test_the_transport_uploads_as_the_sender(self) -> None:
        transport = VxpTransport(self.route, self.ours, clock=reactor)
        data = self.kit.signed_envelope(HOSTED_H23, [REMOTE_G22])
        package = OutboundPackage(
            "1", "m", REMOTE_G22, "national", "envelope", "0" * 64, 0, 1, HOSTED_H23
        )
        receipt = await transport.deliver(package, data)
        [item] = self.sim.state()["items"]
        self.assertEqual(
            (item["from"], item["to"], item["uploadDocId"]),
            (HOSTED_H23, REMOTE_G22, receipt.receipt_id),
        )

    async def test_one_upload_serves_every_recipient_of_a_message(self) -> None:
        transport = VxpTransport(self.route, self.ours, clock=reactor, store=self.kit.store)
        data = self.kit.signed_envelope(HOSTED_H23, [REMOTE_G22, REMOTE_G09])
        packages = [
            OutboundPackage(str(i), "m-1", to, "national", "envelope", "0" * 64, 0, 1, HOSTED_H23)
            for i, to in enumerate((REMOTE_G22, REMOTE_G09))
        ]
        first, second = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(transport.deliver(p, data)) for p in packages]
        )
        self.assertEqual(first.receipt_id, second.receipt_id)
        state = self.sim.state()
        self.assertEqual(state["uploads"], 1)
        self.assertEqual(sorted(i["to"] for i in state["items"]), sorted([REMOTE_G22, REMOTE_G09]))

    async def test_after_a_restart_the_stored_upload_answers_for_the_rest(self) -> None:
        sent = await self.kit.outbound().submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22, REMOTE_G09]), self.kit.office()
        )
        now = self.kit.now()
        claimed = await self.kit.store.write(lambda c: st.claim_due_deliveries(c, now=now, limit=1))
        receipt = TransportReceipt("68edb8c8c2dcb14db773ce44", now)
        await self.kit.store.write(
            lambda c: st.mark_delivery_sent(
                c, claimed[0].id, now=now, receipt_json=dispatch.receipt_json(receipt)
            )
        )
        # A fresh transport (the daemon restarted) for the other recipient on the same route.
        route = RouteConfig("vpcp", Transport.VXP, (RoutePattern.parse("*"),), url=self.sim.url)
        transport = VxpTransport(route, self.ours, clock=reactor, store=self.kit.store)
        other = REMOTE_G09 if claimed[0].recipient == REMOTE_G22 else REMOTE_G22
        package = OutboundPackage(
            "2", sent.message_id, other, "vpcp", "envelope", "0" * 64, 0, 1, HOSTED_H23
        )
        again = await transport.deliver(package, b"never uploaded")
        self.assertEqual(again.receipt_id, receipt.receipt_id)
        self.assertEqual(self.sim.state()["uploads"], 0)

    async def test_the_axis_refusing_an_upload_is_permanent(self) -> None:
        transport = VxpTransport(self.route, self.ours, clock=reactor)
        data = self.kit.signed_envelope(REMOTE_G09, [REMOTE_G22])
        # G09 is not registered under our system: the axis says so.
        package = OutboundPackage(
            "1", "m", REMOTE_G22, "national", "envelope", "0" * 64, 0, 1, REMOTE_G09
        )
        with self.assertRaises(PermanentFailure) as caught:
            await transport.deliver(package, data)
        self.assertIn("khong dung voi ma da dang ky", str(caught.exception))

    async def test_directory_sync_merges_and_local_entries_win(self) -> None:
        now = self.kit.now()
        local = directory.Agency(REMOTE_G09, "Bộ Nội vụ (tên địa phương)", source="import")
        await self.kit.store.write(
            lambda c: directory.import_agencies(c, [local], now=now, actor="test")
        )
        sync = DirectorySync.of_axis(self.route, self.ours, self.kit.store, clock=reactor)
        result = await sync.sync_once()
        assert result is not None
        self.assertEqual((result.added, result.kept_local, result.removed), (1, 1, 0))
        agencies = {a.organ_id: a for a in await self.kit.read(directory.list_agencies)}
        self.assertEqual(agencies[REMOTE_G22].source, "axis:national")
        self.assertEqual(agencies[REMOTE_G09].name, "Bộ Nội vụ (tên địa phương)")

    async def test_directory_sync_refuses_a_list_that_shrank_suddenly(self) -> None:
        now = self.kit.now()
        many = [directory.AxisAgency(f"000.00.{i:02d}.G22", f"Cơ quan {i}") for i in range(10)]
        first = await self.kit.store.write(
            lambda c: directory.sync_from_axis(c, "national", many, now=now, actor="t")
        )
        self.assertEqual(first.added, 10)
        fewer = await self.kit.store.write(
            lambda c: directory.sync_from_axis(c, "national", many[:3], now=now, actor="t")
        )
        self.assertIsNotNone(fewer.refused)
        self.assertEqual(len(await self.kit.read(directory.list_agencies)), 10)
        smaller = await self.kit.store.write(
            lambda c: directory.sync_from_axis(c, "national", many[:6], now=now, actor="t")
        )
        self.assertEqual((smaller.removed, smaller.refused), (4, None))

    async def test_the_axis_clock_is_recorded_and_judged(self) -> None:
        self.sim.faults.update({"clock_offset": 600})
        clock = AxisClock(self.kit.store, clock=reactor)
        client = VxpClient(
            self.sim.url,
            OURS,
            SECRET,
            reactor=reactor,
            timeout=5,
            clock_observer=clock.observer(self.route),
        )
        await client.received("edoc")
        for _ in range(50):
            rows = await self.kit.query("SELECT route, offset_seconds FROM axis_clock")
            if rows:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        [(route, offset)] = rows
        self.assertEqual(route, "national")
        self.assertLess(abs(offset - 600), 3)
        [axis] = await self.kit.store.read(lambda c: views.axes(c, [self.route]))
        self.assertEqual([f["code"] for f in axis["findings"]], ["AxisClockSkew"])
