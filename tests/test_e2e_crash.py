"""SIGKILL of the receiving node while 500 envelopes stream into it (issue #3, "Done when").

A's office system sends 500 envelopes to H40 from a few threads; A's dispatcher streams them to B
over mutual TLS. Once some have arrived, B is killed with SIGKILL (no drain, no checkpoint). What
must hold:
- at the moment of the kill, every delivery A had marked `sent` (it held B's receipt) is already
  in B's store: a receipt is only ever returned after a durable commit;
- after B restarts, A's retries complete (nothing left queued, sending or waiting, none failed);
- every one of the 500 is in B exactly once, inbox included: a resent envelope is answered with
  the first receipt, never delivered twice;
- B's audit chain verifies.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from e2e_kit import (
    H23,
    H40,
    Node,
    cli_json,
    document_id,
    drained,
    envelope,
    make_pair,
    office_client,
    poll,
    rows,
)

from twisted.trial.unittest import SynchronousTestCase

COUNT = 500
SENDERS = 4
KILL_AFTER = 60  # envelopes B has receipted before the kill


def sent_to_b(a: Node) -> set[str]:
    """DocumentIds whose delivery to H40 A has marked sent (B's receipt in hand)."""
    return {
        doc
        for (doc,) in rows(
            a,
            "SELECT m.document_id FROM deliveries d JOIN messages m ON m.id = d.message_id"
            " WHERE d.recipient = ? AND m.kind = 'envelope' AND d.state = 'sent'",
            H40,
        )
    }


def received_by_b(b: Node) -> Counter[str]:
    return Counter(
        doc
        for (doc,) in rows(
            b,
            "SELECT document_id FROM messages WHERE direction = 'in' AND kind = 'envelope'"
            " AND sender = ?",
            H23,
        )
    )


class CrashTests(SynchronousTestCase):
    def test_slow_but_required_sigkill_receiver_during_500_envelope_stream(self) -> None:
        started = time.monotonic()
        a, b = make_pair(Path(self.mktemp()))
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        a.start()
        b.start()
        numbers = [f"9{n:04d}" for n in range(COUNT)]
        expected = {document_id(H23, n) for n in numbers}
        packages = [envelope(H23, [H40], n) for n in numbers]

        clients = [office_client(a) for _ in range(SENDERS)]
        for client in clients:
            self.addCleanup(client.transport.session.close)

        def send_share(index: int) -> int:
            client = clients[index]
            for package in packages[index::SENDERS]:
                client.service.SendDocument(Envelope=package)
            return len(packages[index::SENDERS])

        with ThreadPoolExecutor(SENDERS) as pool:
            futures = [pool.submit(send_share, i) for i in range(SENDERS)]
            poll(
                f"{KILL_AFTER} receipts from B",
                lambda: len(sent_to_b(a)) >= KILL_AFTER or None,
                timeout=60,
                every=0.05,
            )
            b.kill()
            killed_at = time.monotonic()
            self.assertEqual(sum(f.result(timeout=120) for f in futures), COUNT)
        submitted = time.monotonic()

        # Receipts A got before the kill: in flight they may take a moment to be recorded.
        time.sleep(0.5)
        receipted = sent_to_b(a)
        at_kill = received_by_b(b)  # B's store as SIGKILL left it (WAL not checkpointed)
        self.assertLess(len(receipted), COUNT, "B was killed too late to prove anything")
        self.assertEqual(receipted - set(at_kill), set(), "receipted but not in B's store")
        self.assertEqual([d for d, n in at_kill.items() if n != 1], [])

        b.start()
        restarted = time.monotonic()

        poll("A's retries to H40 to complete", lambda: drained(a, H40), timeout=60, every=0.2)
        done = time.monotonic()
        states = dict(
            rows(
                a,
                "SELECT d.state, count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id"
                " WHERE d.recipient = ? AND m.kind = 'envelope' GROUP BY d.state",
                H40,
            )
        )
        self.assertEqual(states, {"sent": COUNT})
        # Let B's own work (statuses 01 back to A) settle before its store is read and verified.
        self.assertEqual(b.stop(), 0)

        final = received_by_b(b)
        self.assertEqual(set(final), expected)
        self.assertEqual([d for d, n in final.items() if n != 1], [], "delivered twice")
        self.assertEqual(rows(b, "SELECT count(*) FROM inbox WHERE organ_id = ?", H40), [(COUNT,)])
        report = cli_json(b, "audit", "verify")
        self.assertEqual((report["intact"], report["problems"]), (True, []))
        self.assertEqual(cli_json(a, "audit", "verify")["intact"], True)
        print(
            f"\ncrash e2e: {len(at_kill)} in B at SIGKILL ({len(receipted)} receipted); "
            f"kill at {killed_at - started:.1f}s, all submitted {submitted - started:.1f}s, "
            f"B restarted {restarted - started:.1f}s, drained {done - started:.1f}s, "
            f"total {time.monotonic() - started:.1f}s"
        )
