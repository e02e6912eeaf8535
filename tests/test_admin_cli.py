"""The read-only admin commands: status, queue, show, audit verify — against a real store."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from edxml.model import VN_TZ
from gateway import store
from gateway.blobs import BlobStore
from gateway.cli import EX_DATAERR, EX_NOINPUT, main

SAMPLE_CONF = Path(__file__).parents[1] / "gateway.conf"
NOW = dt.datetime(2026, 11, 25, 9, 30, tzinfo=VN_TZ)


def cli(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(main, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None


class AdminCommandTests(TestCase):
    async def asyncSetUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "gateway.conf"
        shutil.copy(SAMPLE_CONF, self.conf)
        db = self.dir / "data" / "gateway.db"
        db.parent.mkdir(parents=True)
        blobs = BlobStore(self.dir / "data" / "blobs")
        self.store = store.Store.open(db, reactor=reactor)
        self.ids = []
        for n, priority in enumerate((0, 0, 3)):
            ref = blobs.put(f"<edXML>{n}</edXML>".encode())
            msg = store.NewMessage(
                id=f"m{n}",
                direction="out",
                kind="envelope",
                sender="000.00.00.H23",
                document_id=f"000.00.00.H23,2026/11/25,{n}/UBND-VP",
                business_type="0",
                blob=ref,
                arrived_at=NOW,
                recipients=("000.00.00.G22",),
                priority=priority,
                subject="V/v thử nghiệm",
            )

            def job(conn: sqlite3.Connection, msg: store.NewMessage = msg) -> store.InsertResult:
                return store.insert_outbound_message_with_deliveries(
                    conn,
                    msg,
                    [store.NewDelivery(recipient="000.00.00.G22", route="peer")],
                    receipt_json=None,
                    now=NOW,
                    actor="test",
                )

            self.ids.append((await self.store.write(job)).message_id)
        await self.store.stop()

    def setUp(self) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(self.asyncSetUp())

    def test_status_counts_the_queue(self) -> None:
        code, payload = cli("status", "-c", str(self.conf))
        self.assertEqual(code, 0)
        self.assertEqual(payload["deliveries"], {"queued": 3})
        self.assertEqual(payload["office_url"], "http://127.0.0.1:8440/office")

    def test_queue_lists_hoa_toc_first(self) -> None:
        code, rows = cli("queue", "-c", str(self.conf))
        self.assertEqual(code, 0)
        self.assertEqual([r["message_id"] for r in rows], ["m2", "m0", "m1"])
        self.assertTrue(rows[0]["due_at"].endswith("+07:00"))

    def test_show_by_id_and_by_document_id(self) -> None:
        code, by_id = cli("show", "-c", str(self.conf), "m1")
        self.assertEqual(code, 0)
        self.assertEqual(by_id["recipients"], ["000.00.00.G22"])
        self.assertEqual(by_id["deliveries"][0]["state"], "queued")
        self.assertEqual(
            [(e["subject_type"], e["action"]) for e in by_id["events"]],
            [("delivery", "queued"), ("message", "accepted")],
        )
        code, by_doc = cli("show", "-c", str(self.conf), "000.00.00.H23,2026/11/25,1/UBND-VP")
        self.assertEqual(by_doc["id"], "m1")
        code, _ = cli("show", "-c", str(self.conf), "nothing-like-this")
        self.assertEqual(code, EX_NOINPUT)

    def test_audit_verify_detects_a_row_changed_behind_its_back(self) -> None:
        code, payload = cli("audit", "verify", "-c", str(self.conf))
        self.assertEqual(code, 0)
        self.assertTrue(payload["intact"])
        conn = sqlite3.connect(self.dir / "data" / "gateway.db")
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
        conn.commit()
        conn.close()
        code, payload = cli("audit", "verify", "-c", str(self.conf))
        self.assertEqual(code, EX_DATAERR)
        self.assertIn(2, [p["row"] for p in payload["problems"]])

    def test_read_commands_never_write(self) -> None:
        db = self.dir / "data" / "gateway.db"
        before = db.read_bytes()
        for args in (("status",), ("queue",), ("show", "m0"), ("audit", "verify")):
            cli(*args, "-c", str(self.conf))
        self.assertEqual(db.read_bytes(), before)

    def test_cancel_then_requeue_is_audited(self) -> None:
        conf = str(self.conf)
        code, rows = cli("cancel", "-c", conf, "m0")
        self.assertEqual(code, 0)
        self.assertEqual([(r["before"], r["after"]) for r in rows], [("queued", "cancelled")])
        code, _ = cli("cancel", "-c", conf, "m0")
        self.assertEqual(code, EX_DATAERR)  # nothing left to cancel
        code, _ = cli("requeue", "-c", conf, "m1")
        self.assertEqual(code, EX_DATAERR)  # queued, not failed: nothing to requeue
        code, rows = cli("requeue", "-c", conf, "000.00.00.H23,2026/11/25,0/UBND-VP")
        self.assertEqual(code, 0)
        self.assertEqual([(r["before"], r["after"]) for r in rows], [("cancelled", "queued")])
        _, shown = cli("show", "-c", conf, "m0")
        actions = [(e["action"], e["actor"].split(":")[0]) for e in shown["events"]]
        self.assertIn(("cancelled", "cli"), actions)
        self.assertIn(("requeued", "cli"), actions)
        code, payload = cli("audit", "verify", "-c", conf)
        self.assertEqual(code, 0, payload)
