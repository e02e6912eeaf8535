"""The data through bad days (issue #7), with real nodes (tests/e2e_kit.py):

- a backup taken while envelopes stream in restores onto an empty directory into a node whose
  `gateway verify` is clean, that holds every document whose receipt was returned before the
  backup's snapshot, and that resumes what it had pending;
- B's data directory on a small filesystem that fills up while envelopes stream in: B refuses
  with Unavailable, A retries, nothing is lost or doubled, and B carries on by itself, without a
  restart, once the filesystem has room again.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

try:
    from tests.e2e_kit import (
        H23,
        H40,
        Node,
        cli_json,
        envelope,
        make_pair,
        office_client,
        poll,
        rows,
    )
    from tests.e2e_kit import (
        drained as drained_to,
    )
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from e2e_kit import (  # type: ignore[no-redef, import-not-found]
        H23,
        H40,
        Node,
        cli_json,
        envelope,
        make_pair,
        office_client,
        poll,
        rows,
    )
    from e2e_kit import (
        drained as drained_to,
    )

SENDERS = 4


def receipts_at_a(a: Node) -> dict[str, dt.datetime]:
    """DocumentId → when A recorded B's receipt (`sent_at`), for deliveries to H40."""
    return {
        doc: dt.datetime.strptime(sent, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        for doc, sent in rows(
            a,
            "SELECT m.document_id, d.sent_at FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id WHERE d.recipient = ? AND m.kind = 'envelope'"
            " AND d.state = 'sent'",
            H40,
        )
    }


def documents_in(db: Path) -> Counter[str]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return Counter(
            doc
            for (doc,) in conn.execute(
                "SELECT document_id FROM messages WHERE direction = 'in' AND kind = 'envelope'"
                " AND sender = ?",
                (H23,),
            )
        )
    finally:
        conn.close()


def drained(a: Node) -> bool:
    return drained_to(a, H40)


def pending_in(db: Path) -> int:
    """Deliveries of the store at `db` still queued, sending or waiting to retry."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending', 'retry_wait')"
        ).fetchone()
        return int(found[0])
    finally:
        conn.close()


def quiet(node: Node) -> bool:
    """Nothing of the node's own left to send."""
    (left,) = rows(
        node,
        "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending', 'retry_wait')",
    )[0]
    return left == 0


class _Stream(SynchronousTestCase):
    def stream(self, a: Node, count: int, first: int) -> tuple[ThreadPoolExecutor, list[Any]]:
        clients = [office_client(a) for _ in range(SENDERS)]
        for client in clients:
            self.addCleanup(client.transport.session.close)
        packages = [envelope(H23, [H40], str(n)) for n in range(first, first + count)]

        def share(index: int) -> int:
            for package in packages[index::SENDERS]:
                clients[index].service.SendDocument(Envelope=package)
            return len(packages[index::SENDERS])

        pool = ThreadPoolExecutor(SENDERS)
        return pool, [pool.submit(share, i) for i in range(SENDERS)]


class BackupUnderLoad(_Stream):
    def test_backup_while_envelopes_stream_in_restores_clean(self) -> None:
        a, b = make_pair(Path(self.mktemp()))
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        a.start()
        b.start()
        count = 100
        pool, futures = self.stream(a, count, 1000)
        with pool:
            poll("25 receipts from B", lambda: len(receipts_at_a(a)) >= 25 or None, timeout=60)
            dest = b.directory.parent / "backup"
            manifest = cli_json(b, "backup", str(dest))
            self.assertEqual(sum(f.result(timeout=120) for f in futures), count)
        poll("A's deliveries to B to complete", lambda: drained(a), timeout=90)
        snapshot = dt.datetime.strptime(manifest["snapshot_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.UTC
        )
        receipts = receipts_at_a(a)
        self.assertLess(manifest["counts"]["messages"], count * 2, "backup taken too late")
        # Restore onto an empty directory, and check it without the node.
        restored = b.directory.parent / "restored"
        answer = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "restore", str(dest), str(restored), "--json"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(answer.returncode, 0, answer.stderr.decode(errors="replace"))
        report = json.loads(answer.stdout)
        self.assertTrue(report["ok"], report)
        kept = documents_in(restored / "gateway.db")
        self.assertEqual([d for d, n in kept.items() if n != 1], [])
        before = {d for d, at in receipts.items() if at < snapshot}
        self.assertGreater(len(before), 0)
        self.assertEqual(before - set(kept), set(), "receipted before the snapshot, not restored")
        self.assertEqual(set(kept) - set(receipts), set(), "restored without a receipt")
        # Every receipt B had returned when the snapshot was taken is in it; the only ones in
        # it and not yet recorded by A are those whose answer was on the wire (B's in-flight).
        self.assertLessEqual(len(kept) - len(before), 8)
        # The restored data, run as B: verify is clean, its pending 01s go out, chain intact.
        b.stop()
        b.conf.write_text(
            b.conf.read_text().replace("data_dir = data", f"data_dir = {restored}"),
            encoding="utf-8",
        )
        for name in ("pki", "office.token"):
            self.assertTrue((restored / name).exists(), name)
        verify = cli_json(b, "verify")
        self.assertTrue(verify["ok"], verify)
        self.assertEqual(verify["audit_problems"], [])
        b.start()

        # B's Node object still names its old data directory: read the restored store itself.
        poll(
            "the restored node's pending statuses to go out",
            lambda: pending_in(restored / "gateway.db") == 0,
            timeout=90,
        )
        self.assertEqual(cli_json(b, "audit", "verify")["intact"], True)


class DiskFull(_Stream):
    SIZE = "2m"

    def mount(self, where: Path, size: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            self.skipTest(f"a tmpfs cannot be mounted here: {done.stderr.decode().strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", str(where)], check=False)

    def test_a_full_disk_refuses_keeps_and_recovers_without_restart(self) -> None:
        base = Path(self.mktemp()).resolve()
        # B's data directory is a small filesystem of its own, mounted before `gateway init`.
        self.mount(base / "b" / "data", self.SIZE)
        a, b = make_pair(base)
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        a.start()
        b.start()
        assert b.process is not None
        pid = b.process.pid
        count = 200
        pool, futures = self.stream(a, count, 5000)
        with pool:
            self.assertEqual(sum(f.result(timeout=180) for f in futures), count)

        def refused_for_lack_of_space() -> Any:
            errors = rows(
                a,
                "SELECT last_error FROM deliveries WHERE recipient = ? AND state = 'retry_wait'",
                H40,
            )
            return [e for (e,) in errors if e and "Unavailable" in e] or None

        poll("B refusing with Unavailable", refused_for_lack_of_space, timeout=120)
        at_full = receipts_at_a(a)
        self.assertLess(len(at_full), count, "the filesystem never filled")
        held = documents_in(b.db_path)
        self.assertEqual(set(at_full) - set(held), set(), "receipted but not kept")
        # Room again: no restart, B takes the rest as A retries.
        subprocess.run(["mount", "-o", "remount,size=256m", str(b.directory / "data")], check=True)
        poll("A's deliveries to B to complete", lambda: drained(a), timeout=180)
        assert b.process is not None
        self.assertEqual((b.process.pid, b.process.poll()), (pid, None), "B was restarted")
        final = documents_in(b.db_path)
        self.assertEqual(len(final), count)
        self.assertEqual([d for d, n in final.items() if n != 1], [], "delivered twice")
        states = dict(
            rows(
                a,
                "SELECT d.state, count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id"
                " WHERE d.recipient = ? AND m.kind = 'envelope' GROUP BY d.state",
                H40,
            )
        )
        self.assertEqual(states, {"sent": count})

        # B's own pending work (its 01s) also resumes by itself.
        poll("B's statuses to go out", lambda: quiet(b), timeout=120)
        verify = cli_json(b, "verify")
        self.assertTrue(verify["ok"], verify)


class ArchiveCommands(_Stream):
    def test_archive_run_verify_hold_and_purge_from_the_cli(self) -> None:
        a, b = make_pair(Path(self.mktemp()))
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        a.start()
        b.start()
        pool, futures = self.stream(a, 3, 9000)
        with pool:
            self.assertEqual(sum(f.result(timeout=60) for f in futures), 3)
        poll("A's deliveries to B to complete", lambda: drained(a), timeout=60)
        documents = sorted(receipts_at_a(a))
        a.stop()
        a.conf.write_text(
            a.conf.read_text()
            + "\n[archive]\nafter = 1s\ninterval = off\n\n[retention]\nout_accepted = 2s\n",
            encoding="utf-8",
        )
        time.sleep(2.1)
        done = cli_json(a, "archive", "run")
        self.assertGreaterEqual(done["messages"], 3)
        directory = Path(done["directory"])
        checked = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "archive", "verify", str(directory), "--json"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(checked.returncode, 0, checked.stdout.decode(errors="replace"))
        self.assertTrue(json.loads(checked.stdout)["ok"])
        self.assertEqual(len(cli_json(a, "archive", "list")), len(done["files"]))
        held = documents[0]
        self.assertTrue(cli_json(a, "hold", "set", held, "--reason", "thanh tra 2026")["held"])
        purged = cli_json(a, "purge")
        self.assertGreaterEqual(purged["messages"], 2)
        self.assertGreaterEqual(purged["held"], 1)
        self.assertEqual(cli_json(a, "show", held)["document_id"], held)
        gone = cli_json(a, "show", documents[1])
        self.assertTrue(gone["purged"][0]["archived_in"].endswith(".zip"))
        self.assertTrue(cli_json(a, "verify")["ok"])
        self.assertTrue(cli_json(a, "audit", "verify")["intact"])
        # One flipped byte anywhere in a file, and the offline check says where.
        target = sorted(directory.glob("*.zip"))[0]
        data = bytearray(target.read_bytes())
        data[len(data) // 3] ^= 0x20
        target.write_bytes(bytes(data))
        broken = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "archive", "verify", str(directory), "--json"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(broken.returncode, 65)
        self.assertFalse(json.loads(broken.stdout)["ok"])
