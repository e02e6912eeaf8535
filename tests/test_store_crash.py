"""Crash safety: SIGKILL a real process mid-stream of writes; nothing acknowledged is lost.

The child writes blob-then-row for inbound envelopes from eight concurrent workers (so group commit
is in play), resends each document once (the duplicate must not become a second row) and prints a
message id only after its write returned, which is the moment a receipt would go out.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gateway import store as st
from gateway.blobs import BlobStore

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import datetime as dt, os, sys, uuid
from pathlib import Path
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from gateway.blobs import BlobStore
from gateway import store as st

root = Path(sys.argv[1])
blobs = BlobStore(root / "blobs")
store = st.Store.open(root / "gateway.db", reactor=reactor)
# A payload still streaming when the process dies: the temp file sweep_tmp must remove.
interrupted = blobs.writer()
interrupted.write(b"half of a large envelope")

def message(worker, n, ref):
    return st.NewMessage(
        id=str(uuid.uuid4()), direction="in", kind="envelope", sender="000.00.00.H23",
        document_id=f"000.00.00.H23,2024/05/06,{worker}-{n}/CV", business_type="0",
        blob=ref, arrived_at=dt.datetime.now(dt.UTC), recipients=("000.01.32.H23",),
    )

async def worker(w):
    n = 0
    while True:
        n += 1
        body = os.urandom(4096) + f"{w}-{n}".encode()
        ref = await threads.deferToThread(blobs.put, body)
        for attempt in range(2):
            msg = message(w, n, ref)
            now = dt.datetime.now(dt.UTC)
            result = await store.write(
                lambda c, m=msg, t=now: st.insert_inbound_message(
                    c, m, receipt_json='{"first": true}', now=t, actor="crash-test"
                )
            )
            if not result.duplicate:
                sys.stdout.write(result.message_id + "\n")
                sys.stdout.flush()

for w in range(8):
    Deferred.fromCoroutine(worker(w))
reactor.run()
"""


class CrashTests(SynchronousTestCase):
    def test_sigkill_mid_stream_loses_nothing_acknowledged(self) -> None:
        root = Path(self.mktemp()).resolve()
        root.mkdir()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.addCleanup(child.wait)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        assert child.stdout is not None and child.stderr is not None
        printed: list[str] = []
        deadline = time.monotonic() + 60
        while len(printed) < 400:
            line = child.stdout.readline()
            if not line:
                self.fail("child ended early: " + child.stderr.read().decode()[-2000:])
            printed.append(line.decode().strip())
            self.assertLess(time.monotonic(), deadline, "child too slow")
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        child.stderr.close()
        child.stdout.close()
        # Lines the pipe still held were printed before the kill; a torn last line was not.
        printed += [line.decode() for line in rest.split(b"\n")[:-1]]

        blobs = BlobStore(root / "blobs")
        self.assertGreaterEqual(blobs.sweep_tmp(), 1)
        self.assertEqual(list((root / "blobs" / "tmp").iterdir()), [])

        conn = sqlite3.connect(root / "gateway.db")
        self.addCleanup(conn.close)
        ids = [r[0] for r in conn.execute("SELECT id FROM messages")]
        self.assertEqual(len(ids), len(set(ids)))
        missing = set(printed) - set(ids)
        self.assertEqual(missing, set())
        # Each document once, although every one was sent twice.
        per_document = conn.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM messages GROUP BY document_id)"
        ).fetchone()[0]
        self.assertEqual(per_document, 1)
        for (sha256,) in conn.execute("SELECT blob_sha256 FROM messages"):
            self.assertTrue(blobs.verify(sha256), sha256)
        self.assertEqual(st.verify_audit_chain(conn), [])
        received = conn.execute("SELECT count(*) FROM audit WHERE action = 'received'").fetchone()[
            0
        ]
        self.assertEqual(received, len(ids))
        conn.close()

        # The store opens again over what the crash left and keeps working.
        reopened = st.Store.open_readonly(root / "gateway.db")
        self.addCleanup(reopened.close)
        self.assertEqual(reopened.execute("SELECT count(*) FROM messages").fetchone()[0], len(ids))
