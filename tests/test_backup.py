"""Backup, restore and verify (issue #7) on a real store with real blobs: a consistent copy taken
beside a writing store, restored onto an empty directory, re-verified; damage is named."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from nodekit import HOSTED_H23, REMOTE_G09, REMOTE_G22, NodeKit

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from gateway import backup
from gateway import store as st
from gateway.interfaces import Peer

PEER = Peer("node", "vpcp", "ab" * 32)


class BackupTests(TestCase):
    async def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        inbound = self.kit.inbound()
        for number in ("11", "12", "13"):
            await inbound.accept(
                self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number=number), PEER
            )
        await self.kit.outbound().submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22, REMOTE_G09]), self.kit.office()
        )
        self.data_dir = self.kit.config.node.data_dir
        self.db = self.kit.config.node.db_path
        (self.data_dir / "pki").mkdir(exist_ok=True)
        (self.data_dir / "pki" / "node.key").write_text("not a real key")

    def take(self, name: str = "backup") -> tuple[Path, dict[str, Any]]:
        dest = Path(self.mktemp()) / name
        manifest = backup.backup(self.db, self.data_dir, dest, node="test")
        return dest, manifest

    def counts(self, db: Path) -> dict[str, int]:
        conn = sqlite3.connect(db)
        try:
            return {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("messages", "deliveries", "statuses", "audit", "inbox")
            }
        finally:
            conn.close()

    async def test_backup_restore_verify_round_trip(self) -> None:
        dest, manifest = self.take()
        self.assertEqual(manifest["problems"], [])
        self.assertEqual(manifest["counts"]["messages"], self.counts(self.db)["messages"])
        self.assertEqual(oct(dest.stat().st_mode & 0o777), "0o700")
        self.assertEqual(oct((dest / "files" / "pki" / "node.key").stat().st_mode & 0o777), "0o600")
        restored = Path(self.mktemp()) / "data"
        report = backup.restore(dest, restored)
        self.assertTrue(report["ok"], report)
        self.assertEqual(self.counts(restored / "gateway.db"), self.counts(self.db))
        self.assertEqual((restored / "pki" / "node.key").read_text(), "not a real key")
        conn = st.Store.open_readonly(restored / "gateway.db")
        try:
            queued = conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'queued'"
            ).fetchone()
            self.assertGreater(queued[0], 0)  # pending work comes back with the data
            self.assertEqual(st.verify_audit_chain(conn), [])
        finally:
            conn.close()

    async def test_a_backup_taken_while_the_store_writes_is_a_snapshot(self) -> None:
        inbound = self.kit.inbound()
        writes = [
            Deferred.fromCoroutine(
                inbound.accept(
                    self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number=str(n)), PEER
                )
            )
            for n in range(100, 160)
        ]
        # The backup in a thread, the reactor free: envelopes keep committing meanwhile.
        dest, manifest = await deferToThread(self.take)
        await gatherResults(writes)
        restored = Path(self.mktemp()) / "data"
        report = backup.restore(dest, restored)
        self.assertTrue(report["ok"], report)
        counts = self.counts(restored / "gateway.db")
        self.assertEqual(counts["messages"], manifest["counts"]["messages"])
        self.assertLessEqual(counts["messages"], self.counts(self.db)["messages"])

    async def test_verify_names_the_messages_of_a_missing_or_altered_blob(self) -> None:
        rows = await self.kit.query(
            "SELECT id, blob_sha256 FROM messages WHERE direction = 'in' ORDER BY id LIMIT 2"
        )
        (first, first_blob), (second, second_blob) = rows
        self.kit.blobs.path(first_blob).unlink()
        altered = self.kit.blobs.path(second_blob)
        os.chmod(altered, 0o600)
        data = bytearray(altered.read_bytes())
        data[len(data) // 2] ^= 0x01
        altered.write_bytes(bytes(data))
        conn = st.Store.open_readonly(self.db)
        try:
            report = backup.verify(conn, self.kit.blobs.root)
        finally:
            conn.close()
        self.assertFalse(report.ok)
        found = {(p.sha256, p.problem): p.messages for p in report.blob_problems}
        self.assertIn(first, found[(first_blob, "missing")])
        self.assertIn(second, found[(second_blob, "altered")])
        # A backup of such a store says so, and still copies what it can.
        _, manifest = self.take()
        self.assertEqual(sorted(p["problem"] for p in manifest["problems"]), ["altered", "missing"])

    async def test_restore_refuses_a_non_empty_directory_and_an_unfinished_backup(self) -> None:
        dest, _ = self.take()
        busy = Path(self.mktemp())
        busy.mkdir()
        (busy / "gateway.db").write_text("a node's data")
        with self.assertRaises(backup.BackupError) as caught:
            backup.restore(dest, busy)
        self.assertIn("không phải thư mục rỗng", caught.exception.message_vi)
        self.assertEqual((busy / "gateway.db").read_text(), "a node's data")
        (dest / backup.MANIFEST).unlink()
        with self.assertRaises(backup.BackupError):
            backup.restore(dest, Path(self.mktemp()))

    async def test_a_damaged_backup_is_refused_or_reported(self) -> None:
        dest, _ = self.take()
        with open(dest / "gateway.db", "r+b") as handle:
            handle.seek(200)
            handle.write(b"\xff")
        with self.assertRaises(backup.BackupError):
            backup.restore(dest, Path(self.mktemp()) / "a")
        dest, _ = self.take("second")
        blob = next(p for p in (dest / "blobs").rglob("*") if p.is_file())
        blob.write_bytes(blob.read_bytes() + b" ")
        report = backup.restore(dest, Path(self.mktemp()) / "b")
        self.assertFalse(report["ok"])
        self.assertIn(blob.name, report["damaged"])
        self.assertEqual(json.loads((dest / backup.MANIFEST).read_text())["format"], backup.FORMAT)

    async def test_backup_refuses_a_non_empty_destination(self) -> None:
        dest, _ = self.take()
        with self.assertRaises(backup.BackupError):
            backup.backup(self.db, self.data_dir, dest, node="test")
