"""The regulation's rules at the node (issue #5): what the inbound and outbound pipelines do with
them, on a real store, blob directory and dev PKI (tests/nodekit), time from the kit's clock
(T0 = Thursday 2025-03-06 09:00 in Hà Nội; the sample was signed on Wednesday 2025-03-05)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import attrs
from nodekit import HOSTED, HOSTED_H23, HOSTED_VP, REMOTE_G09, REMOTE_G22, NodeKit

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from edxml import writer
from edxml.codes import BusinessDocType, Priority, ReceiverType
from edxml.model import (
    BusinessDocumentInfo,
    Envelope,
    Organization,
    Receiver,
    ReplacementInfo,
    ResponseFor,
)
from gateway import admin, directory, documents, numbering, views
from gateway import store as st
from gateway.config import VIETNAM
from gateway.interfaces import Peer
from gateway.overdue import overdue
from gateway.soap import FaultCode, GatewayFault

PEER = Peer("node", "vpcp", "ab" * 32)
HOUR = 3600


class RulesAtTheNode(TestCase):
    def setUp(self) -> None:
        self.kit = self.make_kit()
        self.outbound = self.kit.outbound()
        self.inbound = self.kit.inbound(self.outbound)

    def make_kit(self, extra: str = "") -> NodeKit:
        kit = NodeKit.create(Path(self.mktemp()), reactor=reactor, extra=extra)
        self.addCleanup(kit.stop)
        return kit

    # --- helpers ---

    def changed(self, doc: Envelope, **header: Any) -> Envelope:
        return attrs.evolve(doc, header=attrs.evolve(doc.header, **header))

    def business(self, doc: Envelope, **changes: Any) -> Envelope:
        business = attrs.evolve(doc.trace.business, **changes)
        return attrs.evolve(doc, trace=attrs.evolve(doc.trace, business=business))

    async def accept(self, doc: Envelope, sender: str = REMOTE_G22) -> st.MessageRecord:
        receipt = await self.inbound.accept(self.kit.sign_as(sender, writer.write(doc)), PEER)
        msg = await self.kit.read(st.get_message, message_id=receipt.message_id)
        assert msg is not None
        return msg

    async def refused(self, call: Any, *args: Any) -> GatewayFault:
        try:
            await call(*args)
        except GatewayFault as fault:
            return fault
        self.fail("accepted what should be refused")

    async def count(self, sql: str, *args: Any) -> int:
        return int((await self.kit.query(sql, *args))[0][0])

    def verdict_codes(self, msg: st.MessageRecord) -> list[str]:
        return [f["code"] for f in json.loads(msg.verdict_json)["findings"]]

    # --- R1 ---

    async def test_R1_secret_envelope_is_refused_and_only_the_refusal_is_kept(self) -> None:
        doc = self.kit.document(REMOTE_G22, [HOSTED_H23])
        secret = self.changed(
            doc, other_info=attrs.evolve(doc.header.other_info, sphere_of_promulgation="Tối mật")
        )
        package = self.kit.sign_as(REMOTE_G22, writer.write(secret))
        fault = await self.refused(self.inbound.accept, package, PEER)
        self.assertIs(fault.code, FaultCode.SECRET_DOCUMENT)
        self.assertIn("Tối mật", fault.text_vi or "")
        self.assertEqual(
            await self.count("SELECT count(*) FROM messages WHERE direction = 'in'"), 0
        )
        stored = [
            p.read_bytes()
            for p in (self.kit.config.node.data_dir / "blobs").rglob("*")
            if p.is_file()
        ]
        self.assertNotIn(package, stored)
        self.assertFalse(
            any(secret.header.subject.encode() in b for b in stored)
        )  # not even in a 02
        [(code, sender)] = await self.kit.query("SELECT code, sender FROM refusals")
        self.assertEqual((code, sender), ("SecretDocument", REMOTE_G22))
        # The sender is told (R6): one 02 about it, queued back.
        self.assertEqual(
            await self.count(
                "SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'status'"
                " AND business_type = '02'"
            ),
            1,
        )

    async def test_R1_secret_document_from_the_office_is_refused_before_anything_is_kept(
        self,
    ) -> None:
        doc = self.changed(
            self.kit.document(HOSTED_H23, [REMOTE_G22]), subject="(MẬT) Phương án bảo vệ"
        )
        fault = await self.refused(
            self.outbound.submit_envelope, writer.write(doc), self.kit.office()
        )
        self.assertIs(fault.code, FaultCode.SECRET_DOCUMENT)
        self.assertEqual(await self.count("SELECT count(*) FROM messages"), 0)
        self.assertEqual(
            await self.count("SELECT count(*) FROM refusals WHERE direction = 'out'"), 1
        )

    # --- R7 ---

    async def test_R7_paper_copy_flag_is_stored_and_reported(self) -> None:
        doc = self.business(self.kit.document(REMOTE_G22, [HOSTED_H23], number="701"), paper=True)
        msg = await self.accept(doc)
        self.assertEqual(msg.paper_required, 1)
        self.assertIn("PaperCopyRequired", self.verdict_codes(msg))
        # Outbound to the Government: the sender's answer says so.
        sent = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22], number="702"), self.kit.office()
        )
        self.assertIn("PaperCopyRequired", sent.findings)

    # --- R9 ---

    async def test_R9_urgent_documents_come_first_in_the_inbox(self) -> None:
        for n in range(3):
            await self.accept(self.kit.document(REMOTE_G22, [HOSTED_H23], number=f"90{n}"))
            self.kit.clock.advance(60)
        urgent = await self.accept(
            self.kit.document(REMOTE_G22, [HOSTED_H23], number="909", priority=Priority.EXPRESS)
        )
        items = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_H23], limit=10)
        self.assertEqual(items[0].message.id, urgent.id)
        self.assertEqual(len(items), 4)

    async def test_R9_a_late_issue_is_noted_both_ways(self) -> None:
        self.kit.clock.advance(5 * HOUR)  # 14:00 on the 6th: after the next working morning
        msg = await self.accept(self.kit.document(REMOTE_G22, [HOSTED_H23], number="910"))
        self.assertEqual(msg.late_issue, 1)
        self.assertIn("LateIssue", self.verdict_codes(msg))
        sent = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22], number="911"), self.kit.office()
        )
        self.assertIn("LateIssue", sent.findings)

    # --- R11 ---

    async def load_directory(self, *agencies: directory.Agency) -> None:
        now = self.kit.now()
        await self.kit.store.write(
            lambda c: directory.import_agencies(c, agencies, now=now, actor="test")
        )

    async def test_R11_a_loaded_directory_refuses_unknown_and_ceased_recipients(self) -> None:
        await self.load_directory(
            directory.Agency(
                HOSTED_H23,
                "UBND tỉnh Hà Nam",
                valid_to=dt.date(2025, 3, 1),
                successor="000.00.00.H42",
            ),
            directory.Agency(REMOTE_G22, "Văn phòng Chính phủ"),
        )
        unknown = await self.refused(
            self.outbound.submit_envelope,
            self.kit.envelope(HOSTED_VP, [REMOTE_G09], number="111"),
            self.kit.office(),
        )
        self.assertIs(unknown.code, FaultCode.UNKNOWN_RECIPIENT)
        self.assertIn(REMOTE_G09, unknown.text_en)
        ceased = await self.refused(
            self.outbound.submit_envelope,
            self.kit.envelope(HOSTED_VP, [HOSTED_H23], number="112"),
            self.kit.office(),
        )
        self.assertIn("ceased on 2025-03-01", ceased.text_en)
        self.assertIn("000.00.00.H42", ceased.text_en)
        self.assertIn("kế thừa", ceased.text_vi or "")
        sent = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_VP, [REMOTE_G22], number="113"), self.kit.office()
        )
        self.assertEqual([d.recipient for d in sent.deliveries], [REMOTE_G22])

    async def test_R11_a_loaded_directory_refuses_unknown_senders(self) -> None:
        await self.load_directory(directory.Agency(REMOTE_G22, "Văn phòng Chính phủ"))
        package = self.kit.signed_envelope(REMOTE_G09, [HOSTED_H23], number="114")
        fault = await self.refused(self.inbound.accept, package, PEER)
        self.assertIs(fault.code, FaultCode.RULE_VIOLATION)
        self.assertIn("not in the agency directory", fault.text_en)
        await self.accept(self.kit.document(REMOTE_G22, [HOSTED_H23], number="115"))

    async def test_R11_an_empty_directory_leaves_routing_to_the_patterns(self) -> None:
        sent = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G09], number="116"), self.kit.office()
        )
        self.assertEqual([d.route for d in sent.deliveries], ["vpcp"])

    async def test_R11_the_directory_can_name_the_route(self) -> None:
        await self.load_directory(
            directory.Agency(REMOTE_G09, "Bộ Nội vụ", route="vpcp"),
            directory.Agency(REMOTE_G22, "Văn phòng Chính phủ", route="no-such-route"),
        )
        sent = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G09, REMOTE_G22], number="117"),
            self.kit.office(),
        )
        self.assertEqual(
            {d.recipient: d.route for d in sent.deliveries},
            {REMOTE_G09: "vpcp", REMOTE_G22: "vpcp"},
        )

    # --- R12 ---

    async def test_R12_numbers_are_unique_under_concurrency_and_restart_each_year(self) -> None:
        now, day = self.kit.now(), dt.date(2025, 12, 30)

        def issue(conn: Any) -> numbering.IssuedNumber:
            return numbering.issue_number(
                conn, organ_id=HOSTED_H23, notation="UBND-VP", date=day, now=now, actor="test"
            )

        db = self.kit.store.path
        # The daemon's writer thread and CLI-like writers on their own connections, at once.
        from_cli: list[int] = []

        def cli_like() -> None:
            for _ in range(5):
                from_cli.append(admin.write(db, issue).number)

        threads = [threading.Thread(target=cli_like) for _ in range(4)]
        for thread in threads:
            thread.start()
        from_daemon = [(await self.kit.store.write(issue)).number for _ in range(20)]
        await deferToThread(lambda: [t.join() for t in threads])
        numbers = sorted(from_daemon + from_cli)
        self.assertEqual(numbers, list(range(1, 41)))
        first = numbering.code_number(1)
        self.assertEqual(first, "01")
        new_year = await self.kit.store.write(
            lambda c: numbering.issue_number(
                c,
                organ_id=HOSTED_H23,
                notation="UBND-VP",
                date=dt.date(2026, 1, 1),
                now=now,
                actor="t",
            )
        )
        self.assertEqual((new_year.number, new_year.code_number), (1, "01"))
        self.assertEqual(new_year.document_id, "000.00.00.H23,2026/01/01,01/UBND-VP")
        other = await self.kit.store.write(
            lambda c: numbering.issue_number(
                c,
                organ_id=HOSTED_H23,
                notation="QĐ-UBND",
                date=day,
                now=now,
                actor="t",
                register="qd",
            )
        )
        self.assertEqual(other.code_number, "01")  # another register counts on its own
        bad = await self.refused(
            self.kit.store.write,
            lambda c: numbering.issue_number(
                c, organ_id=HOSTED_H23, notation="UB ND", date=day, now=now, actor="t"
            ),
        )
        self.assertIs(bad.code, FaultCode.BAD_REQUEST)

    # --- R14 ---

    async def test_R14_update_and_replace_reach_the_office_system_as_linked_events(self) -> None:
        original = self.kit.document(REMOTE_G22, list(HOSTED), number="301")
        first = await self.accept(original)
        target = original.header.document_id
        info = BusinessDocumentInfo(
            document_info=True,
            document_receiver=True,
            receivers=(Receiver(HOSTED_VP, ReceiverType.REMOVED),),
        )
        update = self.business(
            self.changed(original, to=(Organization(organ_id=HOSTED_H23, organ_name="UBND"),)),
            doc_type=BusinessDocType.UPDATE,
            document_id=target,
            document_info=info,
        )
        updated = await self.accept(update)
        self.assertNotEqual(updated.id, first.id)  # its own message, the original kept as it was
        replace = self.business(
            self.changed(original, code=attrs.evolve(original.header.code, code_number="302")),
            doc_type=BusinessDocType.REPLACE,
            document_id=target,
            replacements=(ReplacementInfo(target, (HOSTED_H23,)),),
        )
        replace = self.changed(replace, document_id=f"{REMOTE_G22},2025/03/05,302/UBND-VP")
        replaced = await self.accept(replace)
        changes = await self.kit.read(documents.changes_of, message_id=first.id)
        self.assertEqual(
            sorted((organ, change, by) for organ, change, by, _ in changes),
            sorted(
                [
                    (HOSTED_H23, "updated", updated.id),
                    (HOSTED_VP, "removed", updated.id),
                    (HOSTED_H23, "superseded", replaced.id),
                ]
            ),
        )
        links = await self.kit.read(documents.links_to, document_id=target)
        self.assertEqual(
            {(link.kind, link.message_id) for link in links},
            {("updates", updated.id), ("replaces", replaced.id)},
        )
        inbox = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_H23], limit=10)
        kinds = {i.message.id: i.message.business_type for i in inbox}
        self.assertEqual(kinds, {first.id: "0", updated.id: "2", replaced.id: "3"})
        # `gateway show` tells an auditor the whole story of the original.
        shown = await self.kit.read(views.show, key=first.id)
        assert shown is not None
        self.assertEqual(
            sorted((r["kind"], r["message_id"]) for r in shown["referred_by"]),
            sorted([("updates", updated.id), ("replaces", replaced.id)]),
        )
        self.assertEqual(len(shown["changes"]), 3)
        self.assertTrue(all(c["at"].endswith("+07:00") for c in shown["changes"]))
        later = await self.kit.read(views.show, key=replaced.id)
        assert later is not None
        self.assertIn({"kind": "replaces", "document_id": target}, later["refers_to"])

    # --- R16 ---

    async def test_R16_replies_link_both_ways_and_the_overdue_report(self) -> None:
        asked = self.kit.document(REMOTE_G22, [HOSTED_H23], number="401")  # DueDate 2025-03-12
        request = await self.accept(asked)
        self.assertEqual(request.due_date, "2025-03-12")
        late = await self.kit.read(overdue, today=dt.date(2025, 3, 13))
        self.assertEqual(
            [(o.direction, o.document_id, o.waiting_for) for o in late],
            [("in", asked.header.document_id, (HOSTED_H23,))],
        )
        self.assertEqual(late[0].days_late, 1)
        self.assertEqual(await self.kit.read(overdue, today=dt.date(2025, 3, 12)), [])
        reply = self.changed(
            self.kit.document(HOSTED_H23, [REMOTE_G22], number="402"),
            response_for=(
                ResponseFor(
                    organ_id=REMOTE_G22, code="401/UBND-VP", document_id=asked.header.document_id
                ),
            ),
            due_date=None,
        )
        sent = await self.outbound.submit_envelope(writer.write(reply), self.kit.office())
        links = await self.kit.read(documents.links_to, document_id=asked.header.document_id)
        self.assertEqual(
            [(link.kind, link.message_id, link.direction) for link in links],
            [("response_for", sent.message_id, "out")],
        )
        self.assertEqual(
            await self.kit.read(documents.links_from, message_id=sent.message_id),
            [("response_for", asked.header.document_id)],
        )
        self.assertEqual(await self.kit.read(overdue, today=dt.date(2025, 3, 13)), [])
        # Outbound the other way round: we wait for G22's answer to a document of ours.
        ours = await self.outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22], number="403"), self.kit.office()
        )
        waiting = await self.kit.read(overdue, today=dt.date(2025, 3, 20))
        self.assertEqual(
            [(o.direction, o.message_id, o.waiting_for) for o in waiting],
            [("out", ours.message_id, (REMOTE_G22,))],
        )

    # --- R19 ---

    async def test_R19_legal_receipt_time_per_recipient(self) -> None:
        self.kit.clock.advance(9 * HOUR + 30 * 60)  # 18:30 on Thursday: after office hours
        msg = await self.accept(self.kit.document(REMOTE_G22, list(HOSTED), number="501"))
        rows = await self.kit.query(
            "SELECT organ_id, legal_received_at, ack_due_at FROM inbox WHERE message_id = ?"
            " ORDER BY organ_id",
            msg.id,
        )
        friday = dt.datetime(2025, 3, 7, 7, 30, tzinfo=VIETNAM).astimezone(dt.UTC)
        close = dt.datetime(2025, 3, 7, 17, 0, tzinfo=VIETNAM).astimezone(dt.UTC)
        self.assertEqual(
            rows, [(o, st.utc_text(friday), st.utc_text(close)) for o in sorted(HOSTED)]
        )
        self.assertEqual(
            msg.arrived_at, st.utc_text(self.kit.now())
        )  # the real instant is kept too

    # --- R21 ---

    async def test_R21_a_number_used_twice_is_reported_never_merged(self) -> None:
        first = self.kit.document(REMOTE_G22, [HOSTED_H23], number="601")
        await self.accept(first)
        again = self.changed(
            first,
            promulgation_info=attrs.evolve(
                first.header.promulgation_info, promulgation_date=dt.date(2025, 3, 6)
            ),
            document_id=f"{REMOTE_G22},2025/03/06,601/UBND-VP",
        )
        second = await self.accept(again)
        self.assertIn("DuplicateNumber", self.verdict_codes(second))
        self.assertEqual(
            await self.count(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'envelope'"
            ),
            2,
        )
        finding = next(
            f for f in json.loads(second.verdict_json)["findings"] if f["code"] == "DuplicateNumber"
        )
        self.assertIn(first.header.document_id, finding["message_en"])
        # The same document resent is a duplicate acknowledged once, not a DuplicateNumber.
        receipt = await self.inbound.accept(self.kit.sign_as(REMOTE_G22, writer.write(first)), PEER)
        self.assertTrue(receipt.duplicate)
