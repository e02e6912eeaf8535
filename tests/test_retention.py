"""Archive passes, legal holds and retention (issue #7) on a real store, real blobs and the node's
real dev key: settled messages go into sealed, chained archive files that verify offline; only
archived, due, unheld messages are purged; a blob is never deleted under a new reference."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import attrs
from nodekit import HOSTED_H23, REMOTE_G22, NodeKit

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.trial.unittest import TestCase

from gateway import archive, retention, views
from gateway import store as st
from gateway.config import ArchiveConfig, RetentionConfig
from gateway.interfaces import Peer

PEER = Peer("node", "vpcp", "ab" * 32)
DAY = 86400.0


class RetentionTests(TestCase):
    async def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        self.inbound = self.kit.inbound()

    def blocking_write(self, job: Any) -> Any:
        """What the daemon gives a pass running in a thread: a store write, waited for."""
        return blockingCallFromThread(
            reactor, lambda: Deferred.fromCoroutine(self.kit.store.write(job))
        )

    async def settled(self, number: str) -> str:
        """An inbound envelope picked up by the office system, its 01 sent: nothing pending."""
        receipt = await self.inbound.accept(
            self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number=number), PEER
        )
        now = self.kit.now()
        await self.kit.store.write(
            lambda c: st.mark_received(c, [receipt.message_id], [HOSTED_H23], now=now, actor="t")
        )
        claimed = await self.kit.store.write(
            lambda c: st.claim_due_deliveries(c, now=now, limit=50)
        )
        for delivery in claimed:
            await self.kit.store.write(
                functools.partial(
                    st.mark_delivery_sent, delivery_id=delivery.id, now=now, receipt_json="{}"
                )
            )
        return receipt.message_id

    def config(self, **archive_kw: Any) -> Any:
        return attrs.evolve(
            self.kit.config, archive=ArchiveConfig(**{"after": 90 * DAY, **archive_kw})
        )

    async def run_archive(self, config: Any, days_later: float = 100) -> retention.ArchivePass:
        now = self.kit.now() + dt.timedelta(days=days_later)
        result: retention.ArchivePass = await deferToThread(
            retention.archive_pass, config, self.blocking_write, now=now
        )
        return result

    async def test_settled_old_messages_go_into_a_sealed_chain(self) -> None:
        settled = [await self.settled(n) for n in ("21", "22", "23")]
        waiting = await self.inbound.accept(
            self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number="24"), PEER
        )  # in the inbox still: not settled
        config = self.config(max_messages=2)
        result = await self.run_archive(config)
        # Three envelopes and their three 01s, two per file.
        self.assertEqual((result.messages, len(result.files)), (6, 3))
        report = archive.verify_directory(retention.archive_dir(config))
        self.assertTrue(report.ok, report.to_json())
        archived = dict(await self.kit.query("SELECT id, archived_in FROM messages"))
        self.assertTrue(all(archived[m] for m in settled))
        self.assertIsNone(archived[waiting.message_id])
        rows = await self.kit.query("SELECT sequence, file_name FROM archives ORDER BY sequence")
        self.assertEqual([r[0] for r in rows], [1, 2, 3])
        self.assertEqual([r[1] for r in rows], list(result.files))
        # Nothing new: the next pass writes nothing; too young: nothing either.
        self.assertEqual((await self.run_archive(config)).messages, 0)

    async def test_a_young_message_is_not_archived(self) -> None:
        await self.settled("31")
        self.assertEqual((await self.run_archive(self.config(), days_later=10)).messages, 0)

    async def test_a_file_sealed_but_not_recorded_is_set_aside(self) -> None:
        await self.settled("41")
        config = self.config()
        directory = retention.archive_dir(config)
        directory.mkdir(parents=True)
        name = archive.archive_file_name(config.node.name, 1)
        (directory / name).write_bytes(b"what a crash left")
        result = await self.run_archive(config)
        self.assertEqual(len(result.orphans), 1)
        self.assertTrue(archive.verify_directory(directory).ok)

    async def purge(self, config: Any, days_later: float) -> retention.PurgePass:
        now = self.kit.now() + dt.timedelta(days=days_later)
        result: retention.PurgePass = await deferToThread(
            retention.purge_pass, config, self.blocking_write, now=now
        )
        return result

    async def test_retention_purges_only_archived_due_and_unheld(self) -> None:
        kept_by_hold = await self.settled("51")
        purged = await self.settled("52")
        not_archived = await self.inbound.accept(
            self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number="53"), PEER
        )
        config = self.config()
        await self.run_archive(config)
        held_document = (
            await self.kit.query("SELECT document_id FROM messages WHERE id = ?", kept_by_hold)
        )[0][0]
        now = self.kit.now()
        await self.kit.store.write(
            lambda c: retention.set_hold(c, held_document, reason="thanh tra", now=now, actor="t")
        )
        periods = tuple(
            (k, 365 * DAY if k.startswith(("in_", "out_")) else None)
            for k, _ in RetentionConfig().periods
        )
        config = attrs.evolve(config, retention=RetentionConfig(periods))
        blob = (await self.kit.query("SELECT blob_sha256 FROM messages WHERE id = ?", purged))[0][0]
        self.assertEqual((await self.purge(config, days_later=200)).messages, 0)  # not due yet
        result = await self.purge(config, days_later=400)
        self.assertGreaterEqual(result.held, 1)
        self.assertGreater(result.blobs_deleted, 0)
        ids = {r[0] for r in await self.kit.query("SELECT id FROM messages")}
        self.assertIn(kept_by_hold, ids)
        self.assertNotIn(purged, ids)
        self.assertIn(not_archived.message_id, ids)
        [(archived_in,)] = await self.kit.query(
            "SELECT archived_in FROM purged WHERE message_id = ?", purged
        )
        self.assertTrue(archived_in.endswith(".zip"))
        self.assertFalse(self.kit.blobs.exists(blob))
        self.assertEqual(await self.kit.read(st.verify_audit_chain), [])
        actions = {r[0] for r in await self.kit.query("SELECT action FROM audit")}
        self.assertTrue({"archived", "purged", "hold-set"} <= actions)
        # What was purged is still provable from its archive file.
        self.assertTrue(archive.verify_directory(retention.archive_dir(config)).ok)

    async def test_a_purged_blob_is_never_named_again_by_a_new_row(self) -> None:
        store = st.Store.open(
            Path(self.mktemp() + ".db"), reactor=reactor, blobs=self.kit.blobs.root
        )
        self.addCleanup(lambda: Deferred.fromCoroutine(store.stop()))
        ref = self.kit.blobs.put(b"<edXML>old bytes</edXML>")
        self.kit.blobs.path(ref.sha256).unlink()  # deleted by a purge a moment ago
        msg = st.NewMessage(
            id="m-again",
            direction="in",
            kind="envelope",
            sender=REMOTE_G22,
            document_id="d",
            business_type="0",
            blob=ref,
            arrived_at=self.kit.now(),
        )
        with self.assertRaises(st.BlobMissing):
            await store.write(
                lambda c: st.insert_inbound_message(
                    c, msg, receipt_json=None, now=msg.arrived_at, actor="t"
                )
            )

    async def test_show_of_a_document_names_its_purged_envelope_beside_what_is_left(self) -> None:
        envelope = await self.settled("61")
        config = self.config()
        await self.run_archive(config)
        # Envelopes that came in go after a year; the 01s we sent about them stay forever.
        periods = tuple(
            (k, 365 * DAY if k.startswith("in_") else None) for k, _ in RetentionConfig().periods
        )
        config = attrs.evolve(config, retention=RetentionConfig(periods))
        [(document_id,)] = await self.kit.query(
            "SELECT document_id FROM messages WHERE id = ?", envelope
        )
        self.assertEqual((await self.purge(config, days_later=400)).messages, 1)
        shown = await self.kit.read(views.show, key=document_id)
        self.assertEqual((shown["kind"], shown["direction"]), ("status", "out"))
        self.assertEqual([g["message_id"] for g in shown["purged"]], [envelope])
        self.assertTrue(shown["purged"][0]["archived_in"].endswith(".zip"))
        self.assertIsNone(await self.kit.read(views.show, key=envelope))
        self.assertEqual(
            [g["kind"] for g in await self.kit.read(views.purged, key=envelope)], ["envelope"]
        )
