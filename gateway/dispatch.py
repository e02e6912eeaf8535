"""The dispatcher: due deliveries go to their route's transport, best first, retried on schedule
(floor 5).

A loop on the injected clock claims due deliveries (the store orders them: priority desc, due
time, id, and marks them `sending` in the same transaction), reads each payload from the blob
store in a thread, hands it to the route's transport and records the outcome: `sent` with the
peer's receipt, `retry_wait` until now + `RetryConfig.delay` for a transient failure, `failed` for
a permanent one or after `max_attempts`. `poke()` wakes the loop when something is queued.

It claims no more deliveries than there are free sending slots, so a Hỏa tốc delivery queued
behind a thousand normal ones waits for one slot at most, not for a claimed backlog. A route's
concurrency is bounded by a DeferredSemaphore of `route.max_concurrency`. A claimed delivery is
held by exactly one send until it is marked; `stop()` waits for the sends (cancelling those
still running after its grace period, which records them as transient failures), so nothing is
left `sending` — and if the process dies instead, `start()` requeues what was.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.blobs import BlobStore
from gateway.config import RetryConfig
from gateway.interfaces import (
    ITransport,
    OutboundPackage,
    PermanentFailure,
    TransientFailure,
    TransportReceipt,
)
from gateway.store import (
    DeliveryRecord,
    MessageRecord,
    StateConflict,
    Store,
    claim_due_deliveries,
    get_message,
    mark_delivery_failed,
    mark_delivery_retry,
    mark_delivery_sent,
    requeue_interrupted,
)
from gateway.transports import awaitable_receipt

__all__ = ["Dispatcher", "receipt_json"]

ACTOR = "dispatcher"


def receipt_json(receipt: TransportReceipt) -> str:
    return json.dumps(
        {
            "receipt_id": receipt.receipt_id,
            "received_at": receipt.received_at.isoformat(),
            "duplicate": receipt.duplicate,
        },
        sort_keys=True,
    )


class Dispatcher:
    log = Logger()

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        transports: Mapping[str, ITransport],
        retry: RetryConfig,
        *,
        reactor: Any,
        random: Callable[[], float],
        concurrency: Mapping[str, int] | None = None,
        clock: IReactorTime | None = None,
        interval: float = 5.0,
        stop_grace: float = 30.0,
        ack_due: Callable[[dt.datetime], dt.datetime] | None = None,
    ) -> None:
        """`concurrency` maps a route name to its `max_concurrency` (default 4 each); `reactor`
        runs the blob reads in its thread pool, `clock` (default: the reactor) drives the loop
        and stamps times; `interval` is how often the store is asked when nothing pokes;
        `ack_due` says by when a delivery sent at a given time should be acknowledged (R13)."""
        self._store = store
        self._blobs = blobs
        self._transports = dict(transports)
        self._retry = retry
        self._reactor = reactor
        self._clock: IReactorTime = clock if clock is not None else reactor
        self._random = random
        self._interval = interval
        self._stop_grace = stop_grace
        self._ack_due = ack_due
        limits = dict(concurrency or {})
        self._limits = {name: max(1, limits.get(name, 4)) for name in self._transports}
        self._semaphores = {name: DeferredSemaphore(limit) for name, limit in self._limits.items()}
        self._inflight: dict[int, Deferred[None]] = {}
        self._inflight_routes: dict[int, str] = {}
        self._sends: dict[int, Deferred[TransportReceipt]] = {}
        self._unmarked: set[int] = set()  # sent or failed, but the store could not record it
        self._call: IDelayedCall | None = None
        self._pumping = False
        self._again = False
        self._running = False
        # Counters for tests and `gateway status`.
        self.sent = 0
        self.retried = 0
        self.failed = 0

    # --- lifecycle ---

    async def start(self) -> None:
        """Requeue deliveries a previous run left `sending`, then start the loop."""
        now = self.now()
        count = await self._store.write(
            lambda conn: requeue_interrupted(conn, now=now, actor=ACTOR)
        )
        if count:
            self.log.info("requeued {count} interrupted deliveries", count=count)
        self._running = True
        self._schedule(0)

    async def stop(self) -> None:
        """Stop claiming; wait for the sends in flight (cancelled after the grace period)."""
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        pending = list(self._inflight.values())
        if not pending:
            return
        timer = self._clock.callLater(self._stop_grace, self._cancel_sends)
        await DeferredList(pending, consumeErrors=True)
        if timer.active():
            timer.cancel()

    def _cancel_sends(self) -> None:
        for send in list(self._sends.values()):
            send.cancel()

    def poke(self) -> None:
        """Something was queued: look at once instead of at the next tick."""
        if not self._running:
            return
        if self._pumping:
            self._again = True
        else:
            self._schedule(0)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.seconds(), dt.UTC)

    @property
    def running(self) -> bool:
        return self._running

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    # --- the loop ---

    def _schedule(self, delay: float) -> None:
        if self._call is not None and self._call.active():
            if delay > 0:
                return
            self._call.cancel()
        self._call = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._call = None
        d = Deferred.fromCoroutine(self._loop_once())
        d.addErrback(lambda f: self.log.failure("dispatcher tick failed", f))

    async def _loop_once(self) -> None:
        if not self._running or self._pumping:
            return
        self._pumping = True
        try:
            started = await self.pump()
        except Exception as exc:
            # The store refusing writes (disk full) must not stop the loop: look again later.
            self.log.warn("dispatcher cannot claim now: {error}", error=f"{type(exc).__name__}")
            started = []
        finally:
            self._pumping = False
        if not self.running:
            return
        if started or self._again:
            self._again = False
            self._schedule(0)
        else:
            self._schedule(self._interval)

    def _free(self) -> dict[str, int]:
        """Free sending slots per known route."""
        busy: dict[str, int] = {}
        for route in self._inflight_routes.values():
            busy[route] = busy.get(route, 0) + 1
        return {name: max(0, limit - busy.get(name, 0)) for name, limit in self._limits.items()}

    async def pump(self) -> list[Deferred[None]]:
        """Claim, route by route, as many due deliveries as that route has free slots, and start
        sending them; the returned Deferreds fire when each is marked. The loop calls this; so
        may tests. Deliveries naming a route this node does not know are claimed one at a time,
        to be marked failed."""
        now = self.now()
        if self._unmarked:
            ids = sorted(self._unmarked - set(self._inflight))
            await self._store.write(
                lambda conn: requeue_interrupted(conn, now=now, actor=ACTOR, only=ids)
            )
            self._unmarked.difference_update(ids)
        free = {name: n for name, n in self._free().items() if n > 0}
        if not free or not self._transports:
            return []
        known = tuple(self._limits)

        def claim(conn: sqlite3.Connection) -> list[tuple[DeliveryRecord, MessageRecord | None]]:
            claimed = [
                d
                for name, n in free.items()
                for d in claim_due_deliveries(conn, now=now, limit=n, actor=ACTOR, route=name)
            ]
            claimed += claim_due_deliveries(
                conn, now=now, limit=1, actor=ACTOR, exclude_routes=known
            )
            claimed.sort(key=lambda d: (-d.priority_rank, d.due_at, d.id))
            return [(d, get_message(conn, d.message_id)) for d in claimed]

        claimed = await self._store.write(claim)
        started: list[Deferred[None]] = []
        for delivery, message in claimed:
            done = Deferred.fromCoroutine(self._deliver(delivery, message))
            self._inflight[delivery.id] = done
            self._inflight_routes[delivery.id] = delivery.route
            done.addBoth(self._finished, delivery.id)
            started.append(done)
        return started

    def _finished(self, result: object, delivery_id: int) -> None:
        self._inflight.pop(delivery_id, None)
        self._inflight_routes.pop(delivery_id, None)
        if self._running:
            self.poke()
        if isinstance(result, Failure):
            self.log.failure("delivery {delivery_id} crashed", result, delivery_id=delivery_id)

    async def _deliver(self, delivery: DeliveryRecord, message: MessageRecord | None) -> None:
        transport = self._transports.get(delivery.route)
        if message is None or transport is None:
            why = "no such message" if message is None else f"no transport for {delivery.route}"
            await self._mark_failed(delivery, why)
            return
        semaphore = self._semaphores[delivery.route]
        await semaphore.acquire()
        try:
            package = OutboundPackage(
                delivery_id=str(delivery.id),
                message_id=delivery.message_id,
                recipient=delivery.recipient,
                route=delivery.route,
                kind=message.kind,
                blob_sha256=message.payload_sha256,
                sender=message.sender,
                priority_rank=delivery.priority_rank,
                attempt=delivery.attempts,
            )
            try:
                payload: bytes = await deferToThreadPool(
                    self._reactor,
                    self._reactor.getThreadPool(),
                    self._blobs.read,
                    message.payload_sha256,
                )
                send = awaitable_receipt(transport.deliver(package, payload))
                self._sends[delivery.id] = send
                try:
                    receipt = await send
                finally:
                    self._sends.pop(delivery.id, None)
            except PermanentFailure as refusal:
                await self._mark_failed(delivery, str(refusal))
            except TransientFailure as problem:
                await self._mark_transient(delivery, str(problem))
            except Exception as exc:
                # Cancelled at stop, a blob that cannot be read now, a transport bug: retry later.
                await self._mark_transient(delivery, f"{type(exc).__name__}: {exc}")
            else:
                await self._mark_sent(delivery, receipt)
        finally:
            semaphore.release()

    # --- outcomes ---

    async def _mark(
        self, delivery: DeliveryRecord, job: Callable[[sqlite3.Connection], None]
    ) -> None:
        try:
            await self._store.write(job)
        except StateConflict:
            # An admin cancelled or requeued it meanwhile: their decision stands.
            self.log.warn(
                "delivery {delivery_id} changed state while sending", delivery_id=delivery.id
            )
        except Exception as exc:
            # The store cannot write (disk full, I/O error): the row stays `sending`. It is
            # requeued as soon as the store writes again; sent already, it is answered as a
            # duplicate by the peer, never delivered twice.
            self._unmarked.add(delivery.id)
            self.log.warn(
                "delivery {delivery_id}: its outcome could not be stored ({error}); it will be"
                " requeued",
                delivery_id=delivery.id,
                error=type(exc).__name__,
            )

    async def _mark_sent(self, delivery: DeliveryRecord, receipt: TransportReceipt) -> None:
        now = self.now()
        text = receipt_json(receipt)
        due = self._ack_due(now) if self._ack_due is not None else None
        await self._mark(
            delivery,
            lambda conn: mark_delivery_sent(
                conn, delivery.id, now=now, receipt_json=text, actor=ACTOR, ack_due=due
            ),
        )
        self.sent += 1
        self.log.info(
            "delivery {delivery_id} sent on {route}",
            delivery_id=delivery.id,
            route=delivery.route,
            receipt_id=receipt.receipt_id,
            duplicate=receipt.duplicate,
        )

    async def _mark_transient(self, delivery: DeliveryRecord, error: str) -> None:
        if delivery.attempts >= self._retry.max_attempts:
            await self._mark_failed(
                delivery, f"gave up after {delivery.attempts} attempts: {error}"
            )
            return
        now = self.now()
        wait = self._retry.delay(delivery.attempts, self._random())
        next_at = now + dt.timedelta(seconds=wait)
        await self._mark(
            delivery,
            lambda conn: mark_delivery_retry(
                conn, delivery.id, now=now, next_at=next_at, error=error, actor=ACTOR
            ),
        )
        self.retried += 1
        self.log.info(
            "delivery {delivery_id} will retry in {wait:.0f}s",
            delivery_id=delivery.id,
            wait=wait,
            attempt=delivery.attempts,
            error=error,
        )

    async def _mark_failed(self, delivery: DeliveryRecord, error: str) -> None:
        now = self.now()
        await self._mark(
            delivery,
            lambda conn: mark_delivery_failed(conn, delivery.id, now=now, error=error, actor=ACTOR),
        )
        self.failed += 1
        self.log.warn(
            "delivery {delivery_id} failed",
            delivery_id=delivery.id,
            route=delivery.route,
            error=error,
        )
