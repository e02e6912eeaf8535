"""The SQLite store: group commit, savepoints, idempotency, deliveries, statuses, inbox, audit
chain, read-only handles and migrations. Real database files, the real reactor for the writer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import attrs

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gateway import store as st
from gateway.blobs import BlobRef
from gateway.migrations import (
    CURRENT_VERSION,
    MIGRATIONS,
    Migration,
    MigrationError,
    apply_migrations,
)

T0 = dt.datetime(2024, 5, 6, 1, 2, 3, tzinfo=dt.UTC)
SENDER = "000.00.00.H23"
RECIPIENTS = ("000.01.32.H23", "000.02.32.H23")


def envelope(
    number: int,
    *,
    direction: str = "in",
    blob: BlobRef | None = None,
    priority: int = 0,
    sender: str = SENDER,
) -> st.NewMessage:
    return st.NewMessage(
        id=str(uuid.uuid4()),
        direction=direction,
        kind="envelope",
        sender=sender,
        document_id=f"{sender},2024/05/06,{number}/QĐ-UBND",
        business_type="0",
        blob=blob or BlobRef(hashlib.sha256(str(number).encode()).hexdigest(), 10),
        arrived_at=T0,
        recipients=RECIPIENTS,
        priority=priority,
        code_number=str(number),
        code_notation="QĐ-UBND",
        subject="Về việc thử nghiệm",
    )


def inbound(number: int, **kwargs: Any) -> Any:
    msg = envelope(number, **kwargs)
    receipt = json.dumps({"message_id": msg.id})

    def job(conn: sqlite3.Connection) -> st.InsertResult:
        return st.insert_inbound_message(conn, msg, receipt_json=receipt, now=T0, actor="test")

    return job


class StoreTestCase(TestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp() + ".db")
        self.store = st.Store.open(self.path, reactor=reactor)
        self.addCleanup(self._stop)

    def _stop(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self.store.stop())

    def fresh(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path)
        self.addCleanup(conn.close)
        return conn


class GroupCommitTests(StoreTestCase):
    async def test_concurrent_writes_share_transactions(self) -> None:
        seen_at_fire: list[int] = []

        def check_visible(result: st.InsertResult) -> st.InsertResult:
            # Fired after COMMIT: a connection that did not exist before sees the row.
            with sqlite3.connect(self.path) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM messages WHERE id = ?", (result.message_id,)
                ).fetchone()
            conn.close()
            seen_at_fire.append(row[0])
            return result

        pending = [
            Deferred.fromCoroutine(self.store.write(inbound(n))).addCallback(check_visible)
            for n in range(200)
        ]
        results = await gatherResults(pending)
        self.assertEqual(len({r.message_id for r in results}), 200)
        self.assertEqual(seen_at_fire, [1] * 200)
        self.assertEqual(self.store.jobs, 200)
        self.assertLess(self.store.transactions, 200)
        count = self.fresh().execute("SELECT count(*) FROM messages").fetchone()[0]
        self.assertEqual(count, 200)

    async def test_failing_job_rolls_back_alone(self) -> None:
        def bad(conn: sqlite3.Connection) -> None:
            st.insert_inbound_message(conn, envelope(999), receipt_json=None, now=T0, actor="test")
            raise ValueError("job changed its mind")

        gate = self._hold_writer()
        good_before = Deferred.fromCoroutine(self.store.write(inbound(1)))
        failing = Deferred.fromCoroutine(self.store.write(bad))
        good_after = Deferred.fromCoroutine(self.store.write(inbound(2)))
        transactions = self.store.transactions
        gate.set()
        await gatherResults([good_before, good_after])
        with self.assertRaises(ValueError):
            await failing
        # The holding job's group commits, then all three share the next one.
        self.assertEqual(self.store.transactions, transactions + 2)
        rows = self.fresh().execute("SELECT code_number FROM messages ORDER BY 1").fetchall()
        self.assertEqual(rows, [("1",), ("2",)])
        self.assertEqual(st.verify_audit_chain(self.fresh()), [])

    def _hold_writer(self) -> Any:
        """Block the writer thread so that the next writes queue up into one group."""
        gate = threading.Event()
        entered = threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            entered.set()
            gate.wait(10)

        Deferred.fromCoroutine(self.store.write(hold))
        entered.wait(10)
        return gate

    async def test_reads_see_committed_state(self) -> None:
        first = await self.store.write(inbound(7))
        record = await self.store.read(lambda c: st.get_message(c, first.message_id))
        assert record is not None
        self.assertEqual(record.code_number, "7")
        self.assertEqual(record.recipients, tuple(sorted(RECIPIENTS)))
        self.assertEqual(record.state, "received")
        self.assertEqual(record.arrived_at, "2024-05-06T01:02:03.000000Z")

        def sneaky(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM messages")

        with self.assertRaises(sqlite3.OperationalError):
            await self.store.read(sneaky)

    async def test_stop_drains_and_truncates_wal(self) -> None:
        pending = [Deferred.fromCoroutine(self.store.write(inbound(n))) for n in range(50)]
        await self.store.stop()
        await gatherResults(pending)
        wal = Path(f"{self.path}-wal")
        self.assertTrue(not wal.exists() or wal.stat().st_size == 0)
        with self.assertRaises(st.StoreClosed):
            await self.store.write(inbound(51))
        count = self.fresh().execute("SELECT count(*) FROM messages").fetchone()[0]
        self.assertEqual(count, 50)


class MessageTests(StoreTestCase):
    async def test_resent_envelope_returns_first_receipt(self) -> None:
        msg = envelope(42)
        again = attrs.evolve(msg, id=str(uuid.uuid4()))

        def insert(m: st.NewMessage, receipt: str) -> Any:
            return lambda c: st.insert_inbound_message(
                c, m, receipt_json=receipt, now=T0, actor="exchange"
            )

        first = await self.store.write(insert(msg, '{"receipt":"first"}'))
        second = await self.store.write(insert(again, '{"receipt":"second"}'))
        self.assertEqual(first, st.InsertResult(msg.id, False, '{"receipt":"first"}'))
        self.assertEqual(second, st.InsertResult(msg.id, True, '{"receipt":"first"}'))
        conn = self.fresh()
        self.assertEqual(conn.execute("SELECT count(*) FROM messages").fetchone()[0], 1)
        self.assertEqual(conn.execute("SELECT count(*) FROM inbox").fetchone()[0], 2)
        actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id")]
        self.assertEqual(actions, ["received", "duplicate"])
        # The same document from another sender, or outbound, is a different key.
        other = await self.store.write(insert(envelope(42, sender="000.00.00.H24"), "{}"))
        self.assertFalse(other.duplicate)

    async def test_outbound_deliveries_claim_in_priority_order(self) -> None:
        normal = [envelope(n, direction="out") for n in range(5)]
        express = envelope(100, direction="out", priority=3)
        urgent = envelope(101, direction="out", priority=1)
        for offset, msg in enumerate([*normal, urgent, express]):
            due = T0 + dt.timedelta(seconds=offset)
            await self.store.write(
                lambda c, m=msg, d=due: st.insert_outbound_message_with_deliveries(
                    c,
                    m,
                    [st.NewDelivery(r, "peer") for r in RECIPIENTS],
                    receipt_json=None,
                    now=T0,
                    actor="office",
                    due_at=d,
                )
            )
        claimed = await self.store.write(lambda c: st.claim_due_deliveries(c, now=T0, limit=6))
        self.assertEqual(
            [(d.message_id, d.recipient) for d in claimed],
            [(m.id, r) for m in (express, urgent, normal[0]) for r in RECIPIENTS],
        )
        self.assertTrue(all(d.state == "sending" and d.attempts == 1 for d in claimed))
        later = T0 + dt.timedelta(minutes=5)
        first, second, third = claimed[0].id, claimed[1].id, claimed[2].id
        await self.store.write(
            lambda c: st.mark_delivery_sent(c, first, now=T0, receipt_json='{"ok":1}')
        )
        await self.store.write(
            lambda c: st.mark_delivery_retry(c, second, now=T0, next_at=later, error="timeout")
        )
        await self.store.write(
            lambda c: st.mark_delivery_failed(c, third, now=T0, error="unknown recipient")
        )
        with self.assertRaises(st.StateConflict):
            await self.store.write(
                lambda c: st.mark_delivery_sent(c, first, now=T0, receipt_json=None)
            )
        # The retry is not due yet; the rest of the queue comes next.
        nxt = await self.store.write(lambda c: st.claim_due_deliveries(c, now=T0, limit=100))
        self.assertNotIn(second, [d.id for d in nxt])
        self.assertEqual(len(nxt), 14 - 6)
        due_later = await self.store.write(
            lambda c: st.claim_due_deliveries(c, now=later, limit=100)
        )
        self.assertEqual([d.id for d in due_later], [second])
        self.assertEqual(due_later[0].attempts, 2)
        requeued = await self.store.write(lambda c: st.requeue_interrupted(c, now=later))
        # Left sending: three of the first claim, all of the second, the re-claimed retry.
        self.assertEqual(requeued, 3 + len(nxt) + 1)
        states = await self.store.read(lambda c: st.deliveries_for(c, express.id))
        self.assertEqual([d.state for d in states], ["sent", "queued"])
        self.assertEqual(states[0].sent_at, "2024-05-06T01:02:03.000000Z")
        self.assertEqual(st.verify_audit_chain(self.fresh()), [])

    async def test_statuses_of_one_document_leave_one_at_a_time(self) -> None:
        """01 then 03 then 06 to the same sender: the next leaves only once the one before is
        sent (or finally failed), so the sender's history keeps their order (R10)."""
        queued = []
        for n, code in enumerate(("01", "03", "06")):
            msg = attrs.evolve(
                envelope(7, direction="out"),
                kind="status",
                business_type=code,
                blob=BlobRef(hashlib.sha256(code.encode()).hexdigest(), 10),
                recipients=(SENDER,),
            )
            queued.append(msg.id)
            await self.store.write(
                lambda c, m=msg, d=T0 + dt.timedelta(seconds=n): (
                    st.insert_outbound_message_with_deliveries(
                        c,
                        m,
                        [st.NewDelivery(SENDER, "peer")],
                        receipt_json=None,
                        now=T0,
                        actor="inbound",
                        due_at=d,
                    )
                )
            )
        other = attrs.evolve(
            envelope(8, direction="out"), kind="status", business_type="01", recipients=(SENDER,)
        )
        await self.store.write(
            lambda c: st.insert_outbound_message_with_deliveries(
                c,
                other,
                [st.NewDelivery(SENDER, "peer")],
                receipt_json=None,
                now=T0,
                actor="inbound",
            )
        )
        order = []
        for _ in range(3):
            claimed = await self.store.write(lambda c: st.claim_due_deliveries(c, now=T0, limit=10))
            ours = [d for d in claimed if d.message_id in queued]
            self.assertEqual(len(ours), 1)  # never two statuses of one document in flight
            order.append(ours[0].message_id)
            await self.store.write(
                lambda c, i=ours[0].id: st.mark_delivery_sent(c, i, now=T0, receipt_json=None)
            )
        self.assertEqual(order, queued)
        # Another document's status was never held back.
        states = await self.store.read(lambda c: st.deliveries_for(c, other.id))
        self.assertNotEqual(states[0].state, "queued")

    async def test_statuses_history_and_latest(self) -> None:
        msg = envelope(5, direction="out")
        await self.store.write(
            lambda c: st.insert_outbound_message_with_deliveries(
                c, msg, [], receipt_json=None, now=T0, actor="office"
            )
        )
        for minute, (organ, code) in enumerate(
            [
                (RECIPIENTS[0], "01"),
                (RECIPIENTS[1], "01"),
                (RECIPIENTS[0], "03"),
                (RECIPIENTS[0], "06"),
            ]
        ):
            status = st.NewStatus(msg.id, organ, code, T0 + dt.timedelta(minutes=minute))
            await self.store.write(
                lambda c, s=status: st.record_status(c, s, now=T0, actor="exchange")
            )
        history = await self.store.read(lambda c: st.status_history(c, msg.id))
        self.assertEqual(
            [(s.organ_id, s.code) for s in history],
            [
                (RECIPIENTS[0], "01"),
                (RECIPIENTS[1], "01"),
                (RECIPIENTS[0], "03"),
                (RECIPIENTS[0], "06"),
            ],
        )
        latest = await self.store.read(lambda c: st.latest_statuses(c, msg.id))
        self.assertEqual(
            [(s.organ_id, s.code) for s in latest], [(RECIPIENTS[0], "06"), (RECIPIENTS[1], "01")]
        )

    async def test_inbox_pickup_per_recipient(self) -> None:
        ids = [(await self.store.write(inbound(n))).message_id for n in range(3)]
        mine = await self.store.read(lambda c: st.pending_inbox(c, [RECIPIENTS[0]], 10))
        self.assertEqual([i.message.id for i in mine], ids)
        self.assertEqual({i.organ_id for i in mine}, {RECIPIENTS[0]})
        acked = await self.store.write(
            lambda c: st.mark_received(c, ids[:2], [RECIPIENTS[0]], now=T0, actor="office-a")
        )
        self.assertEqual(sorted(acked), sorted(ids[:2]))
        mine = await self.store.read(lambda c: st.pending_inbox(c, [RECIPIENTS[0]], 10))
        self.assertEqual([i.message.id for i in mine], ids[2:])
        # Not delivered until every hosted recipient has picked it up.
        record = await self.store.read(lambda c: st.get_message(c, ids[0]))
        assert record is not None
        self.assertEqual(record.state, "received")
        await self.store.write(
            lambda c: st.mark_received(c, [ids[0]], [RECIPIENTS[1]], now=T0, actor="office-b")
        )
        record = await self.store.read(lambda c: st.get_message(c, ids[0]))
        assert record is not None
        self.assertEqual(record.state, "delivered")
        again = await self.store.write(
            lambda c: st.mark_received(c, [ids[0]], RECIPIENTS, now=T0, actor="office-b")
        )
        self.assertEqual(again, [])


class AuditTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp() + ".db")
        apply_migrations(self.path)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(self.conn.close)
        self.conn.execute("BEGIN IMMEDIATE")
        for n in range(1000):
            st.append_audit(
                self.conn,
                at=T0 + dt.timedelta(seconds=n),
                actor="test",
                action="received",
                subject_type="message",
                subject_id=f"m{n}",
                detail={"n": n, "text": "Công văn"},
            )
        self.conn.execute("COMMIT")

    def test_chain_verifies(self) -> None:
        self.assertEqual(st.verify_audit_chain(self.conn), [])
        first = self.conn.execute("SELECT prev_hash FROM audit WHERE id = 1").fetchone()[0]
        self.assertEqual(first, st.GENESIS_HASH)

    def test_update_and_delete_refused(self) -> None:
        with self.assertRaisesRegex(sqlite3.IntegrityError, "append-only"):
            self.conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 5")
        with self.assertRaisesRegex(sqlite3.IntegrityError, "append-only"):
            self.conn.execute("DELETE FROM audit WHERE id = 1000")

    def _behind_the_back(self, sql: str) -> None:
        raw = sqlite3.connect(self.path, isolation_level=None)
        triggers = [
            r[0]
            for r in raw.execute(
                "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'audit_no_%'"
            )
        ]
        raw.execute("DROP TRIGGER audit_no_update")
        raw.execute("DROP TRIGGER audit_no_delete")
        raw.execute(sql)
        for ddl in triggers:
            raw.execute(ddl)
        raw.close()

    def test_edited_row_is_reported(self) -> None:
        self._behind_the_back(
            'UPDATE audit SET detail_json = \'{"n":999,"text":"Công văn"}\' WHERE id = 500'
        )
        self.assertEqual(
            st.verify_audit_chain(self.conn),
            [st.AuditProblem(500, "hash does not match the row's content")],
        )

    def test_deleted_row_is_reported(self) -> None:
        self._behind_the_back("DELETE FROM audit WHERE id = 700")
        problems = st.verify_audit_chain(self.conn)
        self.assertEqual({p.row_id for p in problems}, {701})

    def test_missing_trigger_is_reported(self) -> None:
        self.conn.execute("DROP TRIGGER audit_no_delete")
        self.assertEqual(
            st.verify_audit_chain(self.conn),
            [st.AuditProblem(0, "trigger audit_no_delete is missing")],
        )


class ReadOnlyAndMigrationTests(SynchronousTestCase):
    def test_readonly_handle_refuses_writes(self) -> None:
        path = Path(self.mktemp() + ".db")
        apply_migrations(path)
        conn = st.Store.open_readonly(path)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("SELECT count(*) FROM messages").fetchone()[0], 0)
        for sql in ("DELETE FROM messages", "CREATE TABLE x (a)", "PRAGMA user_version = 9"):
            with self.assertRaises(sqlite3.OperationalError):
                conn.execute(sql)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], CURRENT_VERSION)

    def _version_one_with_data(self) -> Path:
        path = Path(self.mktemp() + ".db")
        report = apply_migrations(path, MIGRATIONS[:1])
        self.assertTrue(report.created)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        msg = envelope(1)
        conn.execute(
            "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,"
            " state, blob_sha256, size, arrived_at, created_at)"
            " VALUES (?, 'in', 'envelope', ?, ?, '0', 'received', ?, 10, 'x', 'x')",
            (msg.id, msg.sender, msg.document_id, msg.blob.sha256),
        )
        st.append_audit(
            conn, at=T0, actor="v1", action="received", subject_type="message", subject_id=msg.id
        )
        conn.execute("COMMIT")
        conn.close()
        return path

    def test_upgrade_keeps_data_and_makes_backup(self) -> None:
        path = self._version_one_with_data()
        report = apply_migrations(path)
        self.assertEqual((report.from_version, report.to_version), (1, CURRENT_VERSION))
        self.assertEqual(report.backup, path.with_name(path.name + ".pre-v2.bak"))
        assert report.backup is not None
        backup = sqlite3.connect(report.backup)
        self.addCleanup(backup.close)
        self.assertEqual(backup.execute("PRAGMA user_version").fetchone()[0], 1)
        self.assertEqual(backup.execute("SELECT count(*) FROM messages").fetchone()[0], 1)
        conn = sqlite3.connect(path)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], CURRENT_VERSION)
        self.assertEqual(conn.execute("SELECT count(*) FROM messages").fetchone()[0], 1)
        self.assertEqual(conn.execute("SELECT count(*) FROM statuses").fetchone()[0], 0)
        self.assertEqual(st.verify_audit_chain(conn), [])
        # Already current: nothing to do, no second backup.
        self.assertIsNone(apply_migrations(path).backup)

    def test_failed_migration_leaves_file_byte_identical(self) -> None:
        path = self._version_one_with_data()
        before = path.read_bytes()
        broken = (
            *MIGRATIONS,
            Migration(CURRENT_VERSION + 1, "broken", "CREATE TABLE ok_so_far (a);\nNOT SQL;\n"),
        )
        with self.assertRaises(MigrationError):
            apply_migrations(path, broken)
        self.assertEqual(path.read_bytes(), before)
        self.assertFalse(Path(f"{path}-wal").exists() and Path(f"{path}-wal").stat().st_size)

    def test_newer_database_is_refused(self) -> None:
        path = Path(self.mktemp() + ".db")
        apply_migrations(path)
        with self.assertRaisesRegex(MigrationError, "newer"):
            apply_migrations(path, MIGRATIONS[:1])


class RefusalKeyTests(StoreTestCase):
    def insert(self, msg: st.NewMessage, state: str = "received") -> Any:
        return lambda c: st.insert_inbound_message(
            c, msg, receipt_json="{}", now=T0, actor="exchange", state=state
        )

    async def test_refusals_hold_no_idempotency_key(self) -> None:
        refused = envelope(8)
        twice = attrs.evolve(refused, id=str(uuid.uuid4()))
        good = attrs.evolve(refused, id=str(uuid.uuid4()))
        for msg in (refused, twice):
            result = await self.store.write(self.insert(msg, "rejected"))
            self.assertEqual((result.message_id, result.duplicate), (msg.id, False))
        first = await self.store.write(self.insert(good))
        self.assertEqual((first.message_id, first.duplicate), (good.id, False))
        resent = await self.store.write(self.insert(attrs.evolve(good, id=str(uuid.uuid4()))))
        self.assertEqual((resent.message_id, resent.duplicate), (good.id, True))
        rows = self.fresh().execute("SELECT business_type FROM messages").fetchall()
        self.assertEqual(rows, [("0",)] * 3)

    async def test_automatic_replies_commit_with_the_message_or_not_at_all(self) -> None:
        msg = envelope(9)
        reply = st.OutboundReply(
            attrs.evolve(envelope(10, direction="out"), kind="status", business_type="01"),
            (st.NewDelivery(SENDER, "peer"),),
        )
        clash = st.OutboundReply(attrs.evolve(reply.message, id=msg.id), reply.deliveries)

        def job(replies: list[st.OutboundReply]) -> Any:
            return lambda c: st.insert_inbound_with_replies(
                c, msg, replies, receipt_json="{}", now=T0, actor="exchange"
            )

        with self.assertRaises(sqlite3.IntegrityError):
            await self.store.write(job([reply, clash]))
        conn = self.fresh()
        self.assertEqual(conn.execute("SELECT count(*) FROM messages").fetchone()[0], 0)
        result = await self.store.write(job([reply]))
        self.assertFalse(result.duplicate)
        kinds = conn.execute("SELECT direction, kind FROM messages ORDER BY rowid").fetchall()
        self.assertEqual(kinds, [("in", "envelope"), ("out", "status")])
        self.assertEqual(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0], 1)

    async def test_lookups_prefer_the_document_to_its_revoke(self) -> None:
        original = envelope(11, direction="out", priority=2)
        revoke = attrs.evolve(original, id=str(uuid.uuid4()), business_type="1", priority=0)
        for msg in (original, revoke):
            await self.store.write(
                lambda c, m=msg: st.insert_outbound_message_with_deliveries(
                    c, m, [], receipt_json=None, now=T0, actor="office"
                )
            )
        doc = original.document_id
        self.assertEqual(
            await self.store.read(lambda c: st.sent_to(c, doc, RECIPIENTS[0])), original.id
        )
        self.assertIsNone(await self.store.read(lambda c: st.sent_to(c, doc, "000.00.00.G01")))
        latest = await self.store.read(lambda c: st.latest_outbound(c, doc))
        assert latest is not None
        self.assertEqual(latest.id, original.id)
        self.assertEqual(await self.store.read(lambda c: st.document_rank(c, doc)), 2)
        self.assertEqual(
            await self.store.read(lambda c: st.outbound_by_key(c, SENDER, doc, "1")), revoke.id
        )
        got = await self.store.write(
            lambda c: st.mark_recalled(c, original.id, now=T0, actor="office")
        )
        self.assertTrue(got)
        again = await self.store.write(
            lambda c: st.mark_recalled(c, original.id, now=T0, actor="office")
        )
        self.assertFalse(again)


class MigrationV3Tests(SynchronousTestCase):
    def test_v3_moves_the_key_off_refusals_and_restores_their_business_type(self) -> None:
        path = Path(self.mktemp() + ".db")
        apply_migrations(path, MIGRATIONS[:2])
        conn = sqlite3.connect(path, isolation_level=None)
        msg = envelope(1)
        for row_id, state, business in (
            ("r1", "rejected", "0:rejected:r1"),
            ("a1", "received", "0"),
        ):
            conn.execute(
                "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,"
                " state, blob_sha256, size, arrived_at, created_at)"
                " VALUES (?, 'in', 'envelope', ?, ?, ?, ?, ?, 10, 'x', 'x')",
                (row_id, msg.sender, msg.document_id, business, state, msg.blob.sha256),
            )
        conn.close()
        report = apply_migrations(path)
        self.assertEqual((report.from_version, report.to_version), (2, CURRENT_VERSION))
        self.assertEqual(report.backup, path.with_name(path.name + ".pre-v3.bak"))
        conn = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(conn.close)
        rows = conn.execute("SELECT id, business_type FROM messages ORDER BY id").fetchall()
        self.assertEqual(rows, [("a1", "0"), ("r1", "0")])
        # Another refusal of the same key is stored; a twin of the accepted one is not.
        conn.execute("BEGIN IMMEDIATE")
        refused = attrs.evolve(msg, id="r2")
        self.assertFalse(
            st.insert_inbound_message(
                conn, refused, receipt_json=None, now=T0, actor="t", state="rejected"
            ).duplicate
        )
        twin = st.insert_inbound_message(conn, msg, receipt_json=None, now=T0, actor="t")
        self.assertEqual((twin.message_id, twin.duplicate), ("a1", True))
        conn.execute("COMMIT")


class StatusResendTests(StoreTestCase):
    async def test_the_same_status_bytes_again_are_one_report(self) -> None:
        doc = envelope(9, direction="out")
        await self.store.write(
            lambda c: st.insert_outbound_message_with_deliveries(
                c,
                doc,
                [st.NewDelivery(RECIPIENTS[0], "peer")],
                receipt_json=None,
                now=T0,
                actor="office",
            )
        )
        packet = BlobRef(hashlib.sha256(b"status 03 packet").hexdigest(), 16)

        def status_message() -> st.NewMessage:
            return attrs.evolve(
                envelope(9),
                kind="status",
                sender=RECIPIENTS[0],
                business_type="03",
                blob=packet,
                recipients=(SENDER,),
            )

        line = st.NewStatus(message_id=doc.id, organ_id=RECIPIENTS[0], code="03", reported_at=T0)
        first = await self.store.write(
            lambda c: st.insert_inbound_status(
                c, status_message(), line, receipt_json='{"receipt_id": "r1"}', now=T0, actor="t"
            )
        )
        again = await self.store.write(
            lambda c: st.insert_inbound_status(
                c, status_message(), line, receipt_json='{"receipt_id": "r2"}', now=T0, actor="t"
            )
        )
        self.assertFalse(first.duplicate)
        self.assertTrue(again.duplicate)
        self.assertEqual(
            (again.message_id, again.receipt_json), (first.message_id, first.receipt_json)
        )
        history = await self.store.read(lambda c: st.status_history(c, doc.id))
        self.assertEqual([h.code for h in history], ["03"])
        self.assertEqual(st.verify_audit_chain(self.fresh()), [])


class MigrationV8Tests(SynchronousTestCase):
    def test_v8_keeps_every_axis_item_and_admits_the_hubs_outcomes(self) -> None:
        path = Path(self.mktemp() + ".db")
        apply_migrations(path, MIGRATIONS[:7])
        conn = sqlite3.connect(path, isolation_level=None)
        rows = [
            (
                "national",
                "ax-1",
                "edoc",
                "G22",
                "H23",
                "t1",
                2,
                "accepted",
                "m1",
                None,
                "t2",
                "done",
                "t3",
            ),
            (
                "national",
                "ax-2",
                "status",
                None,
                None,
                "t4",
                1,
                None,
                None,
                "FAIL",
                None,
                None,
                None,
            ),
        ]
        conn.executemany(f"INSERT INTO axis_items VALUES ({', '.join('?' * 13)})", rows)
        with self.assertRaises(sqlite3.IntegrityError):  # v7 knew only the national axis
            conn.execute("UPDATE axis_items SET acked_status = 'confirmed' WHERE axis_id = 'ax-1'")
        conn.close()
        report = apply_migrations(path)
        self.assertEqual((report.from_version, report.to_version), (7, CURRENT_VERSION))
        conn = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("SELECT * FROM axis_items ORDER BY axis_id").fetchall(), rows)
        conn.execute(
            "INSERT INTO axis_items (route, axis_id, message_type, first_seen_at, outcome,"
            " acked_status) VALUES ('hub', 'trace:1', 'status', 't', 'send-failed', 'read')"
        )
        conn.execute("UPDATE axis_items SET acked_status = 'confirmed' WHERE axis_id = 'ax-1'")
        with self.assertRaises(sqlite3.IntegrityError):
            conn.execute("UPDATE axis_items SET outcome = 'lost' WHERE axis_id = 'ax-1'")
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(axis_items)")}
        self.assertTrue({"axis_items_unacked", "axis_items_unsettled"} <= indexes)


class MigrationV9Tests(SynchronousTestCase):
    def test_v9_keeps_apart_what_waits_and_triggers_keep_it(self) -> None:
        path = Path(self.mktemp() + ".db")
        apply_migrations(path, MIGRATIONS[:8])
        conn = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(conn.close)
        message = (
            "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,"
            " state, blob_sha256, size, arrived_at, created_at, arrived_day)"
            " VALUES (?, ?, 'envelope', ?, ?, '0', ?, ?, 1, 't', 't', '2026-01-01')"
        )
        conn.execute(message, ("out-1", "out", "000.00.00.H23", "d1", "accepted", "a" * 64))
        conn.execute(message, ("in-1", "in", "000.00.00.G22", "d2", "received", "b" * 64))
        status = (
            "INSERT INTO statuses (id, message_id, organ_id, code, reported_at, received_at)"
            " VALUES (?, ?, 'x', '01', 't', 't')"
        )
        for number, message_id in ((1, "out-1"), (2, "out-1"), (3, "in-1")):
            conn.execute(status, (number, message_id))
        audit = (
            "INSERT INTO audit (at, actor, action, subject_type, subject_id, detail_json,"
            " prev_hash, hash) VALUES ('t', 't', ?, 'status', ?, '{}', 'p', 'h')"
        )
        conn.execute(audit, ("picked_up", "1"))
        report = apply_migrations(path)
        self.assertEqual((report.from_version, report.to_version), (8, CURRENT_VERSION))

        def waiting() -> list[tuple[int, str]]:
            return conn.execute("SELECT * FROM statuses_waiting ORDER BY status_id").fetchall()

        # Status 1 was picked up, 3 is about a document we received: only 2 waits.
        self.assertEqual(waiting(), [(2, "000.00.00.H23")])
        conn.execute(status, (4, "out-1"))
        conn.execute(status, (5, "in-1"))
        self.assertEqual(waiting(), [(2, "000.00.00.H23"), (4, "000.00.00.H23")])
        conn.execute(audit, ("picked_up", "2"))
        conn.execute(audit, ("other", "4"))  # only a pickup takes it out
        self.assertEqual(waiting(), [(4, "000.00.00.H23")])
        conn.execute("DELETE FROM statuses WHERE id = 4")  # a retention purge
        self.assertEqual(waiting(), [])
