"""The node's side of a provincial eDoc hub (gateway.hubroute, edxml.edochubmap), against the
real hub simulator on loopback and a real inbound (store, blobs, PKI): sending, the pull loop's
crash windows for documents and for statuses (which the hub forgets as it hands them over),
documents without a signed envelope, the hub's own 01 and 999, directory sync, the credential
probe, the token kept out of logs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from nodekit import HOSTED_H23, REMOTE_G09, REMOTE_G22, NodeKit
from zope.interface import implementer

from twisted.internet import defer, reactor
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from edxml import edochub, edochubmap, reader
from edxml.codes import StatusCode
from edxml.model import Envelope
from gateway import directory, dispatch, views
from gateway import store as st
from gateway.config import RouteConfig, RoutePattern, Secret, Transport
from gateway.edochubclient import HubClient
from gateway.edochubsim import HubOrganization, HubSimulator
from gateway.hubroute import CONFIRMED_BY_HUB, HubPuller, HubTransport, hub_directory_sync, probe
from gateway.interfaces import (
    IInbound,
    OutboundPackage,
    Peer,
    PermanentFailure,
    TransientFailure,
)
from gateway.pulling import axis_items
from gateway.soap import Receipt

OUR_TOKEN = "b3VyLWh1Yi10b2tlbi0wMTIzNDU2Nzg5YWI="
THEIR_TOKEN = "dGhlaXItaHViLXRva2VuLTAxMjM0NTY3ODk="
OTHER_TOKEN = "b3RoZXItaHViLXRva2VuLTAxMjM0NTY3ODk="


class Crash(Exception):
    """The process dying right after the inbound commit."""


@implementer(IInbound)
class CrashAfterCommit:
    def __init__(self, inbound: Any) -> None:
        self.inbound = inbound
        self.crashes = 1

    async def accept(
        self, package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Receipt:
        receipt: Receipt = await self.inbound.accept(package, peer, recipients)
        if self.crashes:
            self.crashes -= 1
            raise Crash()
        return receipt


@implementer(IInbound)
class CrashBeforeCommit:
    async def accept(
        self, package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Receipt:
        raise Crash()


def hub_route(url: str, account: str, token: str, name: str = "hub") -> RouteConfig:
    return RouteConfig(
        name,
        Transport.EDOC_HUB,
        (RoutePattern.parse("*"),),
        url=url,
        secret=Secret(token),
        account=account,
        pull_interval=None,
    )


class HubRouteTests(TestCase):
    timeout = 60

    async def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        self.sim = HubSimulator(
            [
                HubOrganization(HOSTED_H23, OUR_TOKEN, name="UBND tỉnh Hà Nam"),
                HubOrganization(REMOTE_G22, THEIR_TOKEN, name="Văn phòng Chính phủ"),
                HubOrganization(REMOTE_G09, OTHER_TOKEN, name="Bộ Nội vụ"),
            ],
            reactor=reactor,
        )
        self.url = await self.sim.start()
        self.addCleanup(self.sim.stop)
        self.route = hub_route(self.url, HOSTED_H23, OUR_TOKEN)
        self.ours = HubClient(self.url, HOSTED_H23, OUR_TOKEN, reactor=reactor, timeout=5)
        self.theirs = HubClient(self.url, REMOTE_G22, THEIR_TOKEN, reactor=reactor, timeout=5)
        self.logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def puller(self, inbound: Any = None) -> HubPuller:
        return HubPuller(
            self.route,
            self.ours,
            inbound or self.kit.inbound(),
            self.kit.store,
            clock=reactor,
            account_name="UBND tỉnh Hà Nam",
        )

    def transport(self, client: HubClient | None = None, **kw: Any) -> HubTransport:
        return HubTransport(self.route, client or self.ours, clock=reactor, **kw)

    async def send_from_the_other_side(self, number: str = "123") -> bytes:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number=number)
        route = hub_route(self.url, REMOTE_G22, THEIR_TOKEN)
        transport = HubTransport(route, self.theirs, clock=reactor)
        package = OutboundPackage(
            "d1", f"m-{number}", HOSTED_H23, "hub", "envelope", "0" * 64, 0, 1
        )
        receipt = await transport.deliver(package, data)
        self.assertTrue(receipt.receipt_id.isdigit())
        return data

    async def envelopes_in(self) -> list[tuple[Any, ...]]:
        return await self.kit.query(
            "SELECT id, state, blob_sha256 FROM messages WHERE direction = 'in'"
            " AND kind = 'envelope'"
        )

    async def items(self, message_type: str = "edoc") -> list[Any]:
        return await self.kit.read(axis_items, route="hub", message_type=message_type)

    # --- documents ---

    async def test_a_round_stores_the_signed_envelope_and_confirms(self) -> None:
        data = await self.send_from_the_other_side()
        [doc] = self.sim.documents.values()
        self.assertEqual([a.content_id for a in doc.attachments][-1:], ["att-3"])
        result = await self.puller().pull_once()
        self.assertEqual((result.listed, result.accepted, result.stopped), (1, 1, None))
        [(message_id, state, sha)] = await self.envelopes_in()
        self.assertEqual(state, "received")
        # The sender's exact signed bytes, not a rebuild from the hub's fields.
        self.assertEqual(self.kit.blobs.read(sha), data)
        [item] = await self.items()
        self.assertEqual(
            (item.axis_id, item.outcome, item.message_id, item.acked_status),
            (str(doc.hub_id), "accepted", message_id, "confirmed"),
        )
        self.assertTrue(all(n.taken for n in self.sim.notifications))
        # The hub wrote the 01 to the sender itself.
        self.assertEqual([(t.to_organ, t.trace.code) for t in self.sim.traces], [(REMOTE_G22, 1)])
        again = await self.puller().pull_once()
        self.assertEqual((again.listed, again.accepted), (0, 0))

    async def test_a_replayed_sender_token_never_reaches_our_store(self) -> None:
        # The real hub's replay path hands back the sender's SendDocument envelope unchanged,
        # its Signature/KeyInfo/Token included (§5.3): nothing of that is kept here.
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23])
        found = reader.read(data).document
        assert isinstance(found, Envelope)
        packet = edochubmap.outgoing_document(
            found, data, recipients=[HOSTED_H23], now=dt.datetime.now(dt.UTC)
        )
        request = edochub.send_document(packet, REMOTE_G22, THEIR_TOKEN)
        await self.theirs.send_document(packet)
        [doc] = self.sim.documents.values()
        doc.envelope = edochub.split_message(request.content_type, request.body).envelope
        self.assertIn(THEIR_TOKEN.encode(), doc.envelope)
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 1)
        [(_, _, sha)] = await self.envelopes_in()
        self.assertEqual(self.kit.blobs.read(sha), data)
        for path in Path(self.kit.config.node.blobs_dir).rglob("*"):
            if path.is_file():
                self.assertNotIn(THEIR_TOKEN.encode(), path.read_bytes())
        dumped = await self.kit.query("SELECT * FROM axis_items")
        self.assertNotIn(THEIR_TOKEN, repr(dumped))

    async def test_a_crash_after_the_commit_delivers_once(self) -> None:
        await self.send_from_the_other_side()
        with self.assertRaises(Crash):
            await self.puller(CrashAfterCommit(self.kit.inbound())).pull_once()
        self.assertFalse(self.sim.notifications[0].taken)
        result = await self.puller().pull_once()
        self.assertEqual((result.listed, result.duplicates, result.accepted), (1, 1, 0))
        self.assertEqual(len(await self.envelopes_in()), 1)
        [item] = await self.items()
        self.assertEqual((item.outcome, item.acked_status), ("duplicate", "confirmed"))
        inbox = await self.kit.query("SELECT count(*) FROM inbox")
        self.assertEqual(inbox, [(1,)])

    async def test_a_crash_before_the_commit_fetches_again(self) -> None:
        await self.send_from_the_other_side()
        with self.assertRaises(Crash):
            await self.puller(CrashBeforeCommit()).pull_once()
        self.assertEqual(await self.envelopes_in(), [])
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 1)
        self.assertEqual(self.sim.documents[min(self.sim.documents)].fetches, 2)

    async def test_a_lost_confirmation_is_confirmed_again_without_fetching(self) -> None:
        await self.send_from_the_other_side()
        self.sim.set_faults({"lost_confirms": 1})
        first = await self.puller().pull_once()
        self.assertEqual(first.accepted, 1)
        self.assertIsNotNone(first.stopped)
        [item] = await self.items()
        self.assertIsNone(item.acked_at)
        second = await self.puller().pull_once()
        self.assertEqual((second.acked_again, second.accepted), (1, 0))
        self.assertEqual(self.sim.documents[min(self.sim.documents)].fetches, 1)
        [item] = await self.items()
        self.assertEqual(item.acked_status, "confirmed")
        self.assertEqual(len(await self.envelopes_in()), 1)

    async def test_a_document_not_given_yet_waits(self) -> None:
        self.sim.set_faults({"not_ready": 2})  # for the documents sent from now on
        await self.send_from_the_other_side()
        for _ in range(2):
            result = await self.puller().pull_once()
            self.assertEqual((result.not_ready, result.accepted), (1, 0))
        [item] = await self.items()
        self.assertEqual((item.fetch_attempts, item.outcome), (2, None))
        self.assertIn("M.GetDocument", item.detail or "")
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 1)

    async def test_a_document_without_a_signed_envelope_is_refused_and_told(self) -> None:
        doc = edochub.OutgoingDocument(
            from_=edochub.Organization(REMOTE_G22, "Văn phòng Chính phủ"),
            to=(edochub.Organization(HOSTED_H23, "UBND tỉnh Hà Nam"),),
            document_id=f"{REMOTE_G22},2025/03/05,9/VPCP",
            code_number="9",
            code_notation="VPCP",
            place="Hà Nội",
            promulgation_date=dt.date(2025, 3, 5),
            subject="Không ký",
            timestamp=dt.datetime.now(dt.UTC),
        )
        await self.theirs.send_document(doc)
        result = await self.puller().pull_once()
        self.assertEqual((result.refused, result.accepted), (1, 0))
        self.assertEqual(await self.envelopes_in(), [])
        [item] = await self.items()
        self.assertEqual((item.outcome, item.acked_status), ("refused", "confirmed"))
        told = [(t.to_organ, t.trace.code) for t in self.sim.traces]
        self.assertEqual(sorted(told), [(REMOTE_G22, 1), (REMOTE_G22, 2)])
        two = next(t.trace for t in self.sim.traces if t.trace.code == 2)
        self.assertIn("edXML", two.description)
        self.assertEqual(two.from_.name, "UBND tỉnh Hà Nam")

    async def test_a_refused_envelope_is_confirmed_and_kept_as_a_refusal(self) -> None:
        # Signed by the wrong agency: the inbound refuses it (and queues a 02 to the sender).
        data = self.kit.sign_as(
            REMOTE_G09, self.kit.envelope(REMOTE_G22, [HOSTED_H23], number="77")
        )
        route = hub_route(self.url, REMOTE_G22, THEIR_TOKEN)
        package = OutboundPackage("d", "m", HOSTED_H23, "hub", "envelope", "0" * 64, 0, 1)
        await HubTransport(route, self.theirs, clock=reactor).deliver(package, data)
        result = await self.puller().pull_once()
        self.assertEqual(result.refused, 1)
        [item] = await self.items()
        self.assertEqual((item.outcome, item.acked_status), ("refused", "confirmed"))
        self.assertIn("SenderMismatch", item.detail or "")
        queued = await self.kit.query(
            "SELECT m.business_type, d.recipient FROM messages m JOIN deliveries d"
            " ON d.message_id = m.id WHERE m.direction = 'out' AND m.kind = 'status'"
        )
        self.assertEqual(queued, [("02", REMOTE_G22)])

    # --- sending ---

    async def _our_outgoing(self, recipients: Sequence[str]) -> tuple[str, list[Any], bytes]:
        sent = await self.kit.outbound().submit_envelope(
            self.kit.envelope(HOSTED_H23, list(recipients)), self.kit.office()
        )
        now = self.kit.now()
        claimed = await self.kit.store.write(
            lambda c: st.claim_due_deliveries(c, now=now, limit=10)
        )
        msg = await self.kit.read(st.get_message, message_id=sent.message_id)
        assert msg is not None
        return sent.message_id, claimed, self.kit.blobs.read(msg.blob_sha256)

    def _package(self, delivery: Any, kind: str = "envelope") -> OutboundPackage:
        return OutboundPackage(
            delivery.id,
            delivery.message_id,
            delivery.recipient,
            "hub",
            kind,
            "0" * 64,
            0,
            1,
            HOSTED_H23,
        )

    async def test_one_send_serves_every_recipient_on_the_hub(self) -> None:
        _, claimed, data = await self._our_outgoing([REMOTE_G22, REMOTE_G09])
        transport = self.transport(store=self.kit.store)
        first, second = await defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(transport.deliver(self._package(d), data))
                for d in claimed
            ]
        )
        self.assertEqual(first.receipt_id, second.receipt_id)
        [doc] = self.sim.documents.values()
        self.assertEqual(sorted(doc.to_organs), [REMOTE_G09, REMOTE_G22])
        self.assertEqual(self.sim.requests["SendDocument"], 1)
        # What the hub holds: its own fields (readable by any office system on it) and our
        # signed bytes as the last part.
        self.assertEqual(doc.attachments[-1].body, data)
        self.assertNotIn(OUR_TOKEN.encode(), doc.envelope)

    async def test_the_same_document_twice_is_a_duplicate_not_a_failure(self) -> None:
        _, [delivery], data = await self._our_outgoing([REMOTE_G22])
        await self.transport().deliver(self._package(delivery), data)
        again = await self.transport().deliver(self._package(delivery), data)
        self.assertTrue(again.duplicate)
        self.assertEqual(len(self.sim.documents), 1)

    async def test_what_the_hub_would_refuse_is_a_permanent_failure(self) -> None:
        doc: Envelope = self.kit.document(HOSTED_H23, [REMOTE_G22])
        header = doc.header
        no_subject = doc.__class__(
            header=header.__class__(**{**_fields(header), "subject": ""}),
            trace=doc.trace,
            manifest=doc.manifest,
            attachments=doc.attachments,
        )
        from edxml import writer

        data = self.kit.sign_as(HOSTED_H23, writer.write(no_subject))
        package = OutboundPackage("d", "m", REMOTE_G22, "hub", "envelope", "0" * 64, 0, 1)
        with self.assertRaises(PermanentFailure) as caught:
            await self.transport().deliver(package, data)
        self.assertIn("subject", str(caught.exception))
        self.assertEqual(self.sim.requests["SendDocument"], 0)

    async def test_an_unreachable_hub_is_worth_retrying(self) -> None:
        _, [delivery], data = await self._our_outgoing([REMOTE_G22])
        self.sim.set_faults({"http500": 1})
        with self.assertRaises(TransientFailure) as caught:
            await self.transport().deliver(self._package(delivery), data)
        self.assertIn("HTTP 500", str(caught.exception))
        receipt = await self.transport().deliver(self._package(delivery), data)
        self.assertTrue(receipt.receipt_id.isdigit())

    # --- statuses ---

    async def _sent_to_g22(self) -> tuple[str, str]:
        """Our document, sent on the hub to G22 and recorded as sent; its DocumentId."""
        message_id, [delivery], data = await self._our_outgoing([REMOTE_G22])
        receipt = await self.transport().deliver(self._package(delivery), data)
        now = self.kit.now()
        await self.kit.store.write(
            lambda c: st.mark_delivery_sent(
                c, delivery.id, now=now, receipt_json=dispatch.receipt_json(receipt)
            )
        )
        found = reader.read(data).document
        assert isinstance(found, Envelope)
        return message_id, found.header.document_id

    async def _their_status(self, code: StatusCode, document_id: str) -> None:
        await self.theirs.update_traces(
            from_=edochub.Organization(REMOTE_G22, "Văn phòng Chính phủ"),
            response_for=edochub.ResponseFor(HOSTED_H23, "123/UBND-VP", "2025/03/05", document_id),
            status=code,
            description="Đã tiếp nhận",
            timestamp=dt.datetime.now(dt.UTC),
            staff=edochub.StaffInfo(department="Văn thư", staff="Nguyễn Văn A"),
        )

    async def statuses_of(self, message_id: str) -> list[tuple[Any, ...]]:
        return await self.kit.query(
            "SELECT code, organ_id FROM statuses WHERE message_id = ? ORDER BY code", message_id
        )

    async def test_the_hubs_repeated_01_is_no_second_arrival(self) -> None:
        message_id, _ = await self._sent_to_g22()
        [hub_id] = self.sim.documents
        await self.theirs.confirm_received(hub_id)
        # Confirmed again a minute later (safe to repeat): the hub writes another 01.
        first = self.sim.traces[0].trace
        later = edochub.parse_time(first.timestamp) + dt.timedelta(minutes=1)
        self.sim._add_trace(hub_id, attrs.evolve(first, timestamp=edochub.format_time(later)))
        result = await self.puller().pull_once()
        self.assertEqual((result.accepted, result.duplicates), (1, 1))
        self.assertEqual(await self.statuses_of(message_id), [("01", REMOTE_G22)])
        items = await self.items("status")
        self.assertEqual(sorted(i.outcome for i in items), ["accepted", "duplicate"])
        [status_message] = {i.message_id for i in items}
        self.assertIsNotNone(status_message)

    async def test_their_statuses_are_recorded_once_even_when_replayed(self) -> None:
        message_id, document_id = await self._sent_to_g22()
        [hub_id] = self.sim.documents
        await self.theirs.confirm_received(hub_id)  # the hub writes 01 to us
        await self._their_status(StatusCode.ACCEPTED, document_id)
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 2)
        self.assertEqual(
            await self.statuses_of(message_id), [("01", REMOTE_G22), ("03", REMOTE_G22)]
        )
        self.assertTrue(all(not t.enable for t in self.sim.traces))
        items = await self.items("status")
        self.assertEqual({i.outcome for i in items}, {"accepted"})
        self.assertTrue(all(i.axis_id.startswith("trace:") for i in items))
        # A restarted node asks the hub to replay the last day: nothing is recorded twice.
        again = await self.puller().pull_once()
        self.assertEqual((again.accepted, again.listed), (0, 0))
        self.assertEqual(len(await self.statuses_of(message_id)), 2)

    async def test_a_trace_kept_before_a_crash_is_stored_from_its_kept_text(self) -> None:
        message_id, document_id = await self._sent_to_g22()
        await self._their_status(StatusCode.ACCEPTED, document_id)
        with self.assertRaises(Crash):
            await self.puller(CrashBeforeCommit()).pull_once()
        # The hub forgot it as it answered; our record of it is all there is.
        self.assertTrue(all(not t.enable for t in self.sim.traces))
        [item] = await self.items("status")
        self.assertIsNone(item.outcome)
        self.sim.traces.clear()  # not even a replay could bring it back
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 1)
        self.assertEqual(await self.statuses_of(message_id), [("03", REMOTE_G22)])

    def _999(self, document_id: str, sender: str = HOSTED_H23) -> edochub.Trace:
        return edochub.Trace(
            from_=edochub.Organization(REMOTE_G22),
            response_for=edochub.ResponseFor(sender, "123/UBND-VP", "", document_id),
            staff=edochub.StaffInfo(),
            code=999,
            description="Gui VPCP that bai",
            timestamp=edochub.format_time(dt.datetime.now(dt.UTC)),
        )

    async def test_the_hubs_999_fails_our_delivery_and_is_no_status(self) -> None:
        message_id, document_id = await self._sent_to_g22()
        # The kit routes G22 elsewhere; here it went on this hub.
        await self.kit.store.write(
            lambda c: c.execute(
                "UPDATE deliveries SET route = 'hub' WHERE message_id = ?", (message_id,)
            )
        )
        [hub_id] = self.sim.documents
        self.sim._add_trace(hub_id, self._999(document_id))
        self.sim._add_trace(hub_id, self._999("000.00.00.H23,2025/01/01,1/X"))  # not ours
        result = await self.puller().pull_once()
        self.assertEqual(result.ignored, 2)
        items = {i.axis_id: i for i in await self.items("status")}
        self.assertEqual({i.outcome for i in items.values()}, {"send-failed"})
        self.assertEqual(sorted(i.message_id or "" for i in items.values()), ["", message_id])
        self.assertEqual(await self.statuses_of(message_id), [])
        [(state, error)] = await self.kit.query(
            "SELECT state, last_error FROM deliveries WHERE message_id = ?", message_id
        )
        self.assertEqual(state, "failed")
        self.assertIn("999: Gui VPCP that bai", error)
        [(actor, subject)] = await self.kit.query(
            "SELECT actor, subject_type FROM audit WHERE action = 'undelivered'"
        )
        self.assertEqual((actor, subject), ("hub:hub", "delivery"))
        shown = await self.kit.read(views.show, key=message_id)
        self.assertEqual([i["outcome"] for i in shown["axis_items"]], ["send-failed"])
        self.assertEqual([e["action"] for e in shown["events"]][-1], "undelivered")
        # Replayed after a restart: the same trace changes nothing again.
        again = await self.puller().pull_once()
        self.assertEqual(again.ignored, 0)
        self.assertEqual(
            len(await self.kit.query("SELECT id FROM audit WHERE action = 'undelivered'")), 1
        )

    async def test_our_01_is_never_posted_our_03_is(self) -> None:
        data = await self.send_from_the_other_side()
        await self.puller().pull_once()
        queued = await self.kit.query(
            "SELECT d.id, d.message_id, d.recipient FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id WHERE m.kind = 'status' AND m.direction = 'out'"
        )
        [(delivery_id, status_message, recipient)] = queued
        self.assertEqual(recipient, REMOTE_G22)
        msg = await self.kit.read(st.get_message, message_id=status_message)
        assert msg is not None
        package = OutboundPackage(
            delivery_id, status_message, recipient, "hub", "status", "0" * 64, 0, 1
        )
        receipt = await self.transport().deliver(package, self.kit.blobs.read(msg.blob_sha256))
        self.assertEqual(receipt.receipt_id, CONFIRMED_BY_HUB)
        self.assertEqual(self.sim.requests["UpdateTraces"], 0)
        # A 03 of ours goes as UpdateTraces, and the hub files it for the sender.
        found = reader.read(data).document
        assert isinstance(found, Envelope)
        submitted = await self.kit.outbound().submit_status(
            _status(found, StatusCode.ACCEPTED), REMOTE_G22
        )
        msg = await self.kit.read(st.get_message, message_id=submitted.message_id)
        assert msg is not None
        package = OutboundPackage(
            "d3", submitted.message_id, REMOTE_G22, "hub", "status", "0" * 64, 0, 1
        )
        receipt = await self.transport().deliver(package, self.kit.blobs.read(msg.blob_sha256))
        self.assertEqual(receipt.receipt_id, "trace:03")
        self.assertEqual(
            sorted((t.to_organ, t.trace.code) for t in self.sim.traces),
            [(REMOTE_G22, 1), (REMOTE_G22, 3)],
        )
        # Posting it again (its answer lost) is answered by the hub as a duplicate: done.
        package = OutboundPackage(
            "d4", submitted.message_id + "x", REMOTE_G22, "hub", "status", "0" * 64, 0, 1
        )
        again = await self.transport().deliver(package, self.kit.blobs.read(msg.blob_sha256))
        self.assertTrue(again.duplicate)

    async def test_a_recall_crosses_the_hub_both_ways(self) -> None:
        data = await self.send_from_the_other_side()
        await self.puller().pull_once()
        found = reader.read(data).document
        assert isinstance(found, Envelope)
        h = found.header
        # G22 asks for it back: on the hub a 13 is filed under the recipient (§5.5).
        await self.theirs.update_traces(
            from_=edochub.Organization(REMOTE_G22, "Văn phòng Chính phủ"),
            response_for=edochub.ResponseFor(
                HOSTED_H23,
                f"{h.code.code_number}/{h.code.code_notation}",
                f"{h.promulgation_info.promulgation_date:%Y/%m/%d}",
                h.document_id,
            ),
            status=StatusCode.RECALL_REQUESTED,
            description="Thu hồi do sai sót",
            timestamp=dt.datetime.now(dt.UTC),
            staff=edochub.StaffInfo(staff="Nguyễn Văn A"),
        )
        result = await self.puller().pull_once()
        self.assertEqual(result.accepted, 1)
        # Nobody had picked it up here: withdrawn at once, and a 15 queued to G22.
        [(_, state, _)] = await self.envelopes_in()
        self.assertEqual(state, "withdrawn")
        queued = await self.kit.query(
            "SELECT d.id, m.id, m.business_type, m.blob_sha256 FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id WHERE m.kind = 'status' AND m.direction = 'out'"
            " AND m.business_type = '15'"
        )
        [(delivery_id, status_message, _, sha)] = queued
        package = OutboundPackage(
            delivery_id, status_message, REMOTE_G22, "hub", "status", sha, 0, 1
        )
        receipt = await self.transport().deliver(package, self.kit.blobs.read(sha))
        self.assertEqual(receipt.receipt_id, "trace:15")
        [agreed] = [t for t in await self.theirs.get_traces() if t.code == 15]
        self.assertEqual(agreed.response_for.document_id, h.document_id)
        self.assertEqual(agreed.from_.organ_id, HOSTED_H23)

    # --- directory, credentials, secrecy ---

    async def test_directory_sync_takes_the_hubs_organisations(self) -> None:
        sync = hub_directory_sync(self.route, self.ours, self.kit.store, clock=reactor)
        result = await sync.sync_once()
        assert result is not None
        agencies = {a.organ_id: a for a in await self.kit.read(directory.list_agencies)}
        self.assertEqual(agencies[REMOTE_G22].name, "Văn phòng Chính phủ")
        self.assertEqual(agencies[REMOTE_G22].source, "axis:hub")

    async def test_the_start_probe_tells_a_refused_token(self) -> None:
        store = self.kit.store

        async def findings() -> list[str]:
            [entry] = await store.read(lambda c: views.axes(c, [self.route]))
            return [f["code"] for f in entry["findings"]]

        self.assertTrue(await probe(self.route, self.ours, store, clock=reactor))
        self.assertEqual(await findings(), [])
        wrong = HubClient(self.url, HOSTED_H23, "d3JvbmctdG9rZW4tMDEyMzQ1Njc4OWFi", reactor=reactor)
        self.assertFalse(await probe(self.route, wrong, store, clock=reactor))
        # `gateway status` says so until a later start is accepted.
        self.assertEqual(await findings(), ["HubCredentialsRefused"])
        self.sim.set_faults({"http500": 1})
        self.assertIsNone(await probe(self.route, self.ours, store, clock=reactor))
        self.assertEqual(await findings(), ["HubCredentialsRefused"])
        self.assertTrue(await probe(self.route, self.ours, store, clock=reactor))
        self.assertEqual(await findings(), [])
        self.assertNotIn("d3JvbmctdG9rZW4", repr(await self.kit.query("SELECT * FROM audit")))

    async def test_a_token_revoked_while_running_shows_until_accepted_again(self) -> None:
        store = self.kit.store

        async def findings() -> list[str]:
            [entry] = await store.read(lambda c: views.axes(c, [self.route]))
            return [f["code"] for f in entry["findings"]]

        async def credential_events() -> list[str]:
            rows = await self.kit.query(
                "SELECT action FROM audit WHERE subject_type = 'route' ORDER BY id"
            )
            return [r[0] for r in rows]

        self.assertTrue(await probe(self.route, self.ours, store, clock=reactor))
        await self.puller().pull_once()  # accepted, as at start: nothing new recorded
        self.assertEqual(await credential_events(), ["hub-credentials-accepted"])
        revoked = HubClient(
            self.url, HOSTED_H23, "cmV2b2tlZC10b2tlbi0wMTIzNDU2Nzg5YQ==", reactor=reactor
        )
        stale = HubPuller(self.route, revoked, self.kit.inbound(), store, clock=reactor)
        for _ in range(3):
            result = await stale.pull_once()
            self.assertIsNotNone(result.stopped)
        self.assertEqual(await findings(), ["HubCredentialsRefused"])
        self.assertEqual(  # one record of the change, not one per round
            await credential_events(), ["hub-credentials-accepted", "hub-credentials-refused"]
        )
        # Fixed (a new token configured, the node restarted without a probe answer): the
        # first round the hub accepts clears it.
        await self.puller().pull_once()
        self.assertEqual(await findings(), [])
        self.assertEqual((await credential_events())[-1], "hub-credentials-accepted")

    async def test_the_token_is_never_logged_nor_stored(self) -> None:
        await self.send_from_the_other_side()
        await self.puller().pull_once()
        from twisted.logger import formatEvent

        text = "\n".join(formatEvent(e) + repr(e) for e in self.logged)
        for token in (OUR_TOKEN, THEIR_TOKEN):
            self.assertNotIn(token, text)
            for path in Path(self.kit.config.node.blobs_dir).rglob("*"):
                if path.is_file():
                    self.assertNotIn(token.encode(), path.read_bytes())
        self.assertNotIn(OUR_TOKEN, repr(self.route))


def _fields(header: Any) -> dict[str, Any]:
    import attrs

    return {f.name: getattr(header, f.name) for f in attrs.fields(type(header))}


def _status(doc: Envelope, code: StatusCode) -> Any:
    from edxml import model

    h = doc.header
    return model.StatusPacket(
        response_for=model.ResponseFor(
            organ_id=h.from_.organ_id,
            code=f"{h.code.code_number}/{h.code.code_notation}",
            promulgation_date=h.promulgation_info.promulgation_date,
            document_id=h.document_id,
        ),
        from_=model.Organization(organ_id=HOSTED_H23, organ_name="UBND tỉnh Hà Nam"),
        status_code=code,
        description="Đã tiếp nhận",
        timestamp=dt.datetime.now(dt.UTC),
        staff_info=model.StaffInfo(department="Văn thư", staff="Trần Thị B"),
    )
