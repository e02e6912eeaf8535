"""The dispatcher on a real SQLite store and blob directory, with a transport the test scripts
and a task.Clock for time (the store's own threads run on the real reactor)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zope.interface import implementer

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from gateway.blobs import BlobStore
from gateway.config import RetryConfig
from gateway.dispatch import Dispatcher
from gateway.interfaces import (
    ITransport,
    OutboundPackage,
    PermanentFailure,
    TransientFailure,
    TransportReceipt,
)
from gateway.store import (
    DeliveryRecord,
    NewDelivery,
    NewMessage,
    Store,
    claim_due_deliveries,
    deliveries_for,
    insert_outbound_message_with_deliveries,
    utc_text,
)

START = 1_800_000_000.0  # 2027-01-15, a fixed clock
RECEIVED = dt.datetime(2027, 1, 15, 8, 0, tzinfo=dt.UTC)
HOA_TOC = 3


@implementer(ITransport)
class ScriptedTransport:
    """Answers from `script` ("ok", "transient", "permanent" or a Deferred to wait for, then ok);
    "ok" once the script is empty. Counts concurrent sends."""

    def __init__(self, *script: str | defer.Deferred[None]) -> None:
        self.script = list(script)
        self.calls: list[OutboundPackage] = []
        self.payloads: list[bytes] = []
        self.active = 0
        self.max_active = 0

    async def deliver(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        self.calls.append(package)
        self.payloads.append(payload)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            step = self.script.pop(0) if self.script else "ok"
            if isinstance(step, defer.Deferred):
                await step
                step = "ok"
            if step == "transient":
                raise TransientFailure("peer down")
            if step == "permanent":
                raise PermanentFailure("RuleViolation: refused", "RuleViolation")
            return TransportReceipt(f"r-{package.delivery_id}", RECEIVED)
        finally:
            self.active -= 1


class Draws:
    """The injected random(): hands out the given numbers in turn, then repeats the last."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


class DispatcherTests(TestCase):
    def setUp(self) -> None:
        root = Path(self.mktemp())
        root.mkdir()
        self.blobs = BlobStore(root / "blobs")
        self.store = Store.open(root / "gateway.db", reactor=reactor)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.store.stop()))
        self.clock = task.Clock()
        self.clock.advance(START)
        self.payload = "<edXMLEnvelope>Công văn</edXMLEnvelope>".encode()
        self.blob = self.blobs.put(self.payload)
        self.count = 0

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.UTC)

    def message(self, priority: int = 0, route: str = "peer") -> Callable[..., Any]:
        self.count += 1
        msg = NewMessage(
            id=f"m-{self.count}",
            direction="out",
            kind="envelope",
            sender="000.00.00.H23",
            document_id=f"000.00.00.H23,2027/01/15,{self.count}/UBND-VP",
            business_type="0",
            blob=self.blob,
            arrived_at=self.now(),
            recipients=("000.00.00.G22",),
            priority=priority,
        )
        now = self.now()

        def job(conn: sqlite3.Connection) -> Any:
            return insert_outbound_message_with_deliveries(
                conn,
                msg,
                [NewDelivery("000.00.00.G22", route)],
                receipt_json=None,
                now=now,
                actor="test",
            )

        return job

    async def queue(self, n: int = 1, priority: int = 0, route: str = "peer") -> list[str]:
        jobs = [self.message(priority, route) for _ in range(n)]

        def all_of(conn: sqlite3.Connection) -> list[str]:
            return [job(conn).message_id for job in jobs]

        return await self.store.write(all_of)

    async def deliveries(self) -> list[DeliveryRecord]:
        def job(conn: sqlite3.Connection) -> list[DeliveryRecord]:
            ids = [r[0] for r in conn.execute("SELECT id FROM messages ORDER BY created_at, id")]
            return [d for m in ids for d in deliveries_for(conn, m)]

        return await self.store.read(job)

    def dispatcher(
        self,
        transport: ITransport,
        retry: RetryConfig | None = None,
        random: Callable[[], float] = lambda: 0.5,
        concurrency: int = 4,
        idle_route: bool = False,
    ) -> Dispatcher:
        transports = {"peer": transport}
        limits = {"peer": concurrency}
        if idle_route:
            # A second route with nothing to send: its free slots are not the busy route's.
            transports["local"] = ScriptedTransport()
            limits["local"] = 4
        return Dispatcher(
            self.store,
            self.blobs,
            transports,
            retry or RetryConfig(),
            reactor=reactor,
            random=random,
            concurrency=limits,
            clock=self.clock,
            stop_grace=10.0,
        )

    async def pump(self, dispatcher: Dispatcher) -> int:
        started = await dispatcher.pump()
        await defer.gatherResults(started)
        return len(started)

    # --- retries ---

    async def test_retries_follow_the_schedule_with_jitter_bounds(self) -> None:
        retry = RetryConfig(schedule=(30.0, 120.0), jitter=0.2, max_attempts=5)
        transport = ScriptedTransport("transient", "transient", "ok")
        dispatcher = self.dispatcher(transport, retry, Draws(0.0, 0.999))
        await self.queue()

        self.assertEqual(await self.pump(dispatcher), 1)
        [row] = await self.deliveries()
        first_wait = 30.0 * 0.8  # lowest jitter draw
        self.assertEqual(row.state, "retry_wait")
        self.assertEqual(
            row.next_attempt_at, utc_text(self.now() + dt.timedelta(seconds=first_wait))
        )

        self.clock.advance(first_wait - 0.5)
        self.assertEqual(await self.pump(dispatcher), 0)  # not due yet
        self.clock.advance(0.5)
        self.assertEqual(await self.pump(dispatcher), 1)
        [row] = await self.deliveries()
        second_wait = 120.0 * (0.8 + 0.4 * 0.999)  # highest draw, within 1 + jitter
        self.assertLessEqual(second_wait, 120.0 * 1.2)
        self.assertEqual(row.state, "retry_wait")
        self.assertEqual(
            row.next_attempt_at, utc_text(self.now() + dt.timedelta(seconds=second_wait))
        )

        self.clock.advance(second_wait)
        self.assertEqual(await self.pump(dispatcher), 1)
        [row] = await self.deliveries()
        self.assertEqual(row.state, "sent")
        self.assertEqual(row.attempts, 3)
        self.assertEqual(json.loads(row.receipt_json or "")["receipt_id"], f"r-{row.id}")
        self.assertEqual(transport.payloads, [self.payload] * 3)
        self.assertEqual([p.attempt for p in transport.calls], [1, 2, 3])

    async def test_failed_after_max_attempts(self) -> None:
        retry = RetryConfig(schedule=(10.0,), jitter=0.0, max_attempts=3)
        transport = ScriptedTransport(*["transient"] * 10)
        dispatcher = self.dispatcher(transport, retry)
        await self.queue()
        for _ in range(5):
            await self.pump(dispatcher)
            self.clock.advance(10.0)
        [row] = await self.deliveries()
        self.assertEqual(row.state, "failed")
        self.assertEqual(len(transport.calls), 3)
        self.assertIn("gave up after 3 attempts", row.last_error or "")

    async def test_permanent_failure_fails_at_once(self) -> None:
        transport = ScriptedTransport("permanent")
        dispatcher = self.dispatcher(transport)
        await self.queue()
        await self.pump(dispatcher)
        self.clock.advance(100_000)
        self.assertEqual(await self.pump(dispatcher), 0)
        [row] = await self.deliveries()
        self.assertEqual(row.state, "failed")
        self.assertEqual(len(transport.calls), 1)
        self.assertIn("RuleViolation", row.last_error or "")

    async def test_unknown_route_fails(self) -> None:
        dispatcher = self.dispatcher(ScriptedTransport())
        await self.queue(route="nowhere")
        await self.pump(dispatcher)
        [row] = await self.deliveries()
        self.assertEqual(row.state, "failed")
        self.assertIn("no transport for nowhere", row.last_error or "")

    # --- order and bounds ---

    async def test_hoa_toc_queued_after_a_thousand_normal_is_sent_first(self) -> None:
        await self.queue(1000)
        self.clock.advance(1)
        [urgent] = await self.queue(1, priority=HOA_TOC)
        transport = ScriptedTransport()
        dispatcher = self.dispatcher(transport, concurrency=1)
        await self.pump(dispatcher)
        self.assertEqual(transport.calls[0].message_id, urgent)
        self.assertEqual(transport.calls[0].priority_rank, HOA_TOC)

    async def test_route_concurrency_is_never_exceeded(self) -> None:
        gates: list[defer.Deferred[None]] = [defer.Deferred() for _ in range(6)]
        transport = ScriptedTransport(*gates)
        dispatcher = self.dispatcher(transport, concurrency=2, idle_route=True)
        await self.queue(6)
        first = await dispatcher.pump()
        self.assertEqual(len(first), 2)
        self.assertEqual(await dispatcher.pump(), [])  # no free slot: nothing more claimed
        states = sorted(d.state for d in await self.deliveries())
        self.assertEqual(states, ["queued"] * 4 + ["sending"] * 2)
        for released in range(1, 7):
            gates[released - 1].callback(None)
            await self.settle(lambda n=released: dispatcher.sent == n)  # type: ignore[misc]
            first += await dispatcher.pump()
            self.assertLessEqual(transport.active, 2)
        await defer.gatherResults(first)
        self.assertLessEqual(transport.max_active, 2)
        self.assertEqual([d.state for d in await self.deliveries()], ["sent"] * 6)

    # --- the loop, start and stop ---

    async def settle(self, condition: Callable[[], bool]) -> None:
        for _ in range(300):
            self.clock.advance(0)
            if condition():
                return
            await task.deferLater(reactor, 0.01, lambda: None)
        self.fail("the dispatcher did not settle")

    async def test_loop_sends_what_is_poked(self) -> None:
        transport = ScriptedTransport()
        dispatcher = self.dispatcher(transport)
        await dispatcher.start()
        await self.queue(3)
        dispatcher.poke()
        await self.settle(lambda: dispatcher.sent == 3)
        await dispatcher.stop()
        self.assertEqual([d.state for d in await self.deliveries()], ["sent"] * 3)

    async def test_restart_requeues_sending_rows(self) -> None:
        await self.queue(2)
        now = self.now()
        # A node that died mid-send left both claimed.
        await self.store.write(lambda conn: claim_due_deliveries(conn, now=now, limit=10))
        self.assertEqual([d.state for d in await self.deliveries()], ["sending"] * 2)
        transport = ScriptedTransport()
        dispatcher = self.dispatcher(transport)
        await dispatcher.start()
        await self.settle(lambda: dispatcher.sent == 2)
        await dispatcher.stop()
        rows = await self.deliveries()
        self.assertEqual([d.state for d in rows], ["sent"] * 2)
        self.assertEqual([d.attempts for d in rows], [2, 2])

    async def test_stop_waits_then_cancels_and_leaves_nothing_sending(self) -> None:
        never: defer.Deferred[None] = defer.Deferred()
        transport = ScriptedTransport(never)
        dispatcher = self.dispatcher(transport)
        await self.queue()
        await dispatcher.start()
        await self.settle(lambda: transport.active == 1)
        stopped = defer.Deferred.fromCoroutine(dispatcher.stop())
        await task.deferLater(reactor, 0.02, lambda: None)
        self.assertNoResult(stopped)
        self.clock.advance(10.0)  # the grace period
        await stopped
        [row] = await self.deliveries()
        self.assertEqual(row.state, "retry_wait")
        self.assertEqual(dispatcher.in_flight, 0)


class FullStore:
    """The real store, whose writes fail while `full` (SQLite's own error for a full disk)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.full = False

    async def write(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return await self.store.write(job)

    async def read(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        return await self.store.read(job)


class DiskFullTests(TestCase):
    setUp = DispatcherTests.setUp
    now = DispatcherTests.now
    message = DispatcherTests.message
    queue = DispatcherTests.queue
    deliveries = DispatcherTests.deliveries

    async def test_an_outcome_the_store_could_not_keep_is_sent_again_once_it_can(self) -> None:
        await self.queue()
        full = FullStore(self.store)
        gate: defer.Deferred[None] = defer.Deferred()
        transport = ScriptedTransport(gate)
        dispatcher = Dispatcher(
            full,  # type: ignore[arg-type]
            self.blobs,
            {"peer": transport},
            RetryConfig(),
            reactor=reactor,
            random=lambda: 0.5,
            concurrency={"peer": 4},
            clock=self.clock,
        )
        started = await dispatcher.pump()
        full.full = True  # the disk fills while the peer answers
        gate.callback(None)
        await defer.gatherResults(started)
        [row] = await self.deliveries()
        self.assertEqual(row.state, "sending")  # nothing recorded: the store is full
        with self.assertRaises(sqlite3.OperationalError):  # the loop catches it (test below)
            await dispatcher.pump()
        full.full = False  # room again
        await defer.gatherResults(await dispatcher.pump())
        [row] = await self.deliveries()
        self.assertEqual(row.state, "sent")
        self.assertEqual(len(transport.calls), 2)  # sent again: the peer answers as a duplicate
        events = await self.store.read(
            lambda c: [r[0] for r in c.execute("SELECT action FROM audit ORDER BY id")]
        )
        self.assertIn("queued", events[2:])

    async def test_the_loop_goes_on_while_the_store_cannot_write(self) -> None:
        full = FullStore(self.store)
        dispatcher = Dispatcher(
            full,  # type: ignore[arg-type]
            self.blobs,
            {"peer": ScriptedTransport()},
            RetryConfig(),
            reactor=reactor,
            random=lambda: 0.5,
            concurrency={"peer": 4},
            clock=self.clock,
            interval=1.0,
        )
        await dispatcher.start()
        full.full = True
        for _ in range(3):  # ticks come and fail to claim, and the next one is still scheduled
            self.clock.advance(1.0)
            await task.deferLater(reactor, 0, lambda: None)
            self.assertEqual(len(self.clock.getDelayedCalls()), 1, "the loop stopped")
        full.full = False
        await self.queue()
        self.clock.advance(1.0)
        for _ in range(50):
            if (await self.deliveries())[0].state == "sent":
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual((await self.deliveries())[0].state, "sent")
        await dispatcher.stop()
