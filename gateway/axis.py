"""The national axis (VXP) seen from this node (floor 5): the transport that uploads, the pull
loop that takes what the axis holds for us, the directory sync, and the axis' clock.

The pull loop (`AxisPuller`), for `edoc` then `status`: list the inbox (getReceivedEdocList),
and for each item not yet settled here: fetch it (getEdoc), hand it to `Inbound.accept` — the
durable commit and the node's duplicate detection — then record the outcome and acknowledge it
to the axis (updateStatus `done`, or `fail` for a package this node refused for good). The order
makes a crash anywhere harmless:

- before the commit: the axis still lists the item; it is fetched again next round;
- after the commit, before the acknowledgement: it is fetched again and `accept` answers it as a
  duplicate (same envelope key, or same status bytes), so the office system sees it once; it is
  then acknowledged;
- after the acknowledgement: the axis lists it no more (or lists it again, a fault of real axes:
  an item already settled here is acknowledged again without being fetched).

An item listed but not yet downloadable (getEdoc FAIL) is left for the next round and counted;
it is never acknowledged `fail` for that, since `fail` would drop it at the axis. When the axis
is unreachable the round stops and the next one starts after `pull_interval`.

`axis_items` keeps, per route and axis docId, what happened: first seen, fetch attempts, the
outcome and the stored message, the acknowledgement — so `gateway show` and an auditor can follow
an axis docId to the document.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from zope.interface import implementer

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from edxml.vxp import ListedItem
from gateway import directory
from gateway.config import RouteConfig
from gateway.interfaces import (
    IInbound,
    ITransport,
    OutboundPackage,
    Peer,
    PermanentFailure,
    TransientFailure,
    TransportReceipt,
)
from gateway.outbound import now_of
from gateway.periodic import Periodic
from gateway.soap import FaultCode, GatewayFault
from gateway.store import Store, utc_text
from gateway.vxpclient import AckStatus, MessageType, VxpClient, VxpRefused, VxpUnavailable

__all__ = ["AxisClock", "AxisPuller", "DirectorySync", "VxpTransport", "axis_items"]

MESSAGE_TYPES: tuple[MessageType, ...] = ("edoc", "status")


@implementer(ITransport)
class VxpTransport:
    """sendEdoc: one stored package uploaded to the axis. The axis' DocId is the receipt.

    The axis addresses an upload by its `To` elements, all of them: one upload serves every
    recipient of the message on this route. The first delivery uploads; the others (at the same
    time, later, or after a restart, from the store) are answered with its receipt, so an
    envelope to five agencies is uploaded once, not five times (25 copies at the axis)."""

    log = Logger()
    REMEMBERED = 10_000  # messages whose upload receipt is kept in memory

    def __init__(
        self, route: RouteConfig, client: VxpClient, *, clock: Any, store: Store | None = None
    ) -> None:
        self._route = route
        self._client = client
        self._clock = clock
        self._store = store
        self._locks: dict[str, DeferredLock] = {}
        self._uploaded: OrderedDict[str, TransportReceipt] = OrderedDict()

    async def deliver(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        lock = self._locks.setdefault(package.message_id, DeferredLock())
        await lock.acquire()
        try:
            receipt = self._uploaded.get(package.message_id) or await self._sibling(package)
            if receipt is None:
                receipt = await self._upload(package, payload)
            self._uploaded[package.message_id] = receipt
            self._uploaded.move_to_end(package.message_id)
            while len(self._uploaded) > self.REMEMBERED:
                self._uploaded.popitem(last=False)
            return receipt
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(package.message_id, None)

    async def _sibling(self, package: OutboundPackage) -> TransportReceipt | None:
        """The receipt of another delivery of the same message already uploaded on this route."""
        if self._store is None:
            return None
        route, message_id = self._route.name, package.message_id
        found = await self._store.read(
            lambda c: c.execute(
                "SELECT receipt_json FROM deliveries WHERE message_id = ? AND route = ?"
                " AND state = 'sent' AND receipt_json IS NOT NULL LIMIT 1",
                (message_id, route),
            ).fetchone()
        )
        if found is None:
            return None
        data = json.loads(found[0])
        return TransportReceipt(
            data["receipt_id"], dt.datetime.fromisoformat(data["received_at"]), duplicate=False
        )

    async def _upload(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        message_type: MessageType = "status" if package.kind == "status" else "edoc"
        # The axis checks `from` against the system and the agencies registered under it.
        sender = package.sender or self._route.system_id or ""
        try:
            doc_id = await self._client.send_edoc(payload, from_=sender, message_type=message_type)
        except VxpUnavailable as exc:
            raise TransientFailure(str(exc)) from None
        except VxpRefused as refusal:
            # The axis answered FAIL: sender not registered, recipient unknown, bad signature
            # header. Sending the same bytes again cannot change its answer.
            raise PermanentFailure(
                f"the axis refused the package: {refusal.error_desc} ({refusal.error_code})",
                FaultCode.RULE_VIOLATION.value,
            ) from None
        self.log.info(
            "delivery {delivery_id} uploaded to {route} as {axis_id}",
            delivery_id=package.delivery_id,
            route=self._route.name,
            axis_id=doc_id,
        )
        return TransportReceipt(doc_id, now_of(self._clock))


# --- axis items (store jobs) --------------------------------------------------------------------


@attrs.frozen
class AxisItem:
    route: str
    axis_id: str
    message_type: str
    sender: str | None
    recipient: str | None
    first_seen_at: str
    fetch_attempts: int
    outcome: str | None
    message_id: str | None
    detail: str | None
    stored_at: str | None
    acked_status: str | None
    acked_at: str | None


_ITEM_COLUMNS = (
    "route, axis_id, message_type, sender, recipient, first_seen_at, fetch_attempts, outcome,"
    " message_id, detail, stored_at, acked_status, acked_at"
)


def _seen(
    conn: sqlite3.Connection, route: str, item: ListedItem, message_type: str, now: dt.datetime
) -> AxisItem:
    conn.execute(
        "INSERT INTO axis_items (route, axis_id, message_type, sender, recipient, first_seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (route, axis_id) DO NOTHING",
        (route, item.doc_id, message_type, item.from_, item.to, utc_text(now)),
    )
    row = conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM axis_items WHERE route = ? AND axis_id = ?",
        (route, item.doc_id),
    ).fetchone()
    return AxisItem(*row)


def _fetch_attempt(conn: sqlite3.Connection, route: str, axis_id: str, detail: str) -> None:
    conn.execute(
        "UPDATE axis_items SET fetch_attempts = fetch_attempts + 1, detail = ?"
        " WHERE route = ? AND axis_id = ?",
        (detail, route, axis_id),
    )


def _settled(
    conn: sqlite3.Connection,
    route: str,
    axis_id: str,
    *,
    outcome: str,
    message_id: str | None,
    detail: str | None,
    now: dt.datetime,
) -> None:
    conn.execute(
        "UPDATE axis_items SET outcome = ?, message_id = ?, detail = ?, stored_at = ?,"
        " fetch_attempts = fetch_attempts + 1 WHERE route = ? AND axis_id = ?",
        (outcome, message_id, detail, utc_text(now), route, axis_id),
    )


def _acked(
    conn: sqlite3.Connection, route: str, axis_id: str, status: str, now: dt.datetime
) -> None:
    conn.execute(
        "UPDATE axis_items SET acked_status = ?, acked_at = ? WHERE route = ? AND axis_id = ?",
        (status, utc_text(now), route, axis_id),
    )


def axis_items(
    conn: sqlite3.Connection, *, route: str | None = None, message_id: str | None = None
) -> list[AxisItem]:
    """What the pull loops saw, newest first; of one route, or of one stored message."""
    where, args = [], []
    if route is not None:
        where.append("route = ?")
        args.append(route)
    if message_id is not None:
        where.append("message_id = ?")
        args.append(message_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM axis_items{clause} ORDER BY first_seen_at DESC, axis_id",
        args,
    )
    return [AxisItem(*r) for r in rows]


# --- the pull loop -------------------------------------------------------------------------------


@attrs.frozen
class PullRound:
    """What one round did, per outcome; `stopped` names why it ended early."""

    listed: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    not_ready: int = 0
    acked_again: int = 0
    stopped: str | None = None


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.stopped: str | None = None

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def result(self) -> PullRound:
        return PullRound(**self.counts, stopped=self.stopped)


class AxisPuller:
    """Takes what the axis holds for this node, every `route.pull_interval` seconds."""

    log = Logger()

    def __init__(
        self,
        route: RouteConfig,
        client: VxpClient,
        inbound: IInbound,
        store: Store,
        *,
        clock: Any,
        after_round: Callable[[], None] = lambda: None,
    ) -> None:
        self._route = route
        self._client = client
        self._inbound = inbound
        self._store = store
        self._clock = clock
        self._peer = Peer(kind="axis", name=route.name)
        self._after_round = after_round
        self._running = False
        self._stopping = False
        self._round: Deferred[PullRound] | None = None
        self._timer: IDelayedCall | None = None

    def set_after_round(self, callback: Callable[[], None]) -> None:
        """Called after each round (the daemon wakes its dispatcher: pulled statuses and
        relayed packages wait to go on)."""
        self._after_round = callback

    def start(self) -> None:
        self._running = True
        self._schedule(0)

    async def stop(self) -> None:
        self._running = False
        self._stopping = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._round is not None:
            # A round ends at an item boundary or on its bounded HTTP calls: wait for it.
            await self._round

    def _schedule(self, delay: float) -> None:
        self._timer = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._round = Deferred.fromCoroutine(self.pull_once())
        self._round.addBoth(self._done)

    def _done(self, result: object) -> None:
        self._round = None
        busy = False
        if isinstance(result, Failure):
            self.log.failure("pull round on {route} crashed", result, route=self._route.name)
        else:
            self._after_round()
            # A round that took something may have left more (the axis lists a backlog in
            # one answer, but more arrives meanwhile): the next one starts at once.
            busy = isinstance(result, PullRound) and bool(result.accepted or result.duplicates)
        if self._running and self._route.pull_interval is not None:
            self._schedule(0 if busy else self._route.pull_interval)

    async def pull_once(self) -> PullRound:
        """One round over both message types."""
        tally = _Tally()
        for message_type in MESSAGE_TYPES:
            if not await self._pull(message_type, tally):
                break
        result = tally.result()
        if result.listed:
            self.log.info(
                "pulled from {route}: {round}", route=self._route.name, round=attrs.asdict(result)
            )
        return result

    async def _pull(self, message_type: MessageType, tally: _Tally) -> bool:
        try:
            items = await self._client.received(message_type)
        except (VxpUnavailable, VxpRefused) as exc:
            tally.stopped = f"listing {message_type}: {exc}"
            self.log.warn(
                "cannot list {message_type} on {route}: {error}",
                message_type=message_type,
                route=self._route.name,
                error=str(exc),
            )
            return False
        seen: set[str] = set()
        for item in items:
            if item.doc_id in seen:  # real axes list an item twice
                continue
            seen.add(item.doc_id)
            tally.add("listed")
            if self._stopping:
                tally.stopped = "stopping"
                return False
            if not await self._take(item, message_type, tally):
                return False
        return True

    async def _write(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        return await self._store.write(job)

    async def _take(self, item: ListedItem, message_type: str, tally: _Tally) -> bool:
        route, now = self._route.name, now_of(self._clock)
        known: AxisItem = await self._write(lambda c: _seen(c, route, item, message_type, now))
        if known.outcome is not None:
            # Settled here already (the axis lost our acknowledgement or lists it again).
            tally.add("acked_again")
            return await self._ack(item.doc_id, "fail" if known.outcome == "refused" else "done")
        try:
            data = await self._client.get_edoc(item.doc_id)
        except VxpRefused as refusal:
            # Listed but not downloadable yet: left where it is, tried next round.
            tally.add("not_ready")
            why = refusal.error_desc or "FAIL"
            await self._write(lambda c: _fetch_attempt(c, route, item.doc_id, why))
            return True
        except VxpUnavailable as exc:
            tally.stopped = f"fetching {item.doc_id}: {exc}"
            return False
        recipients = (item.to,) if item.to else None
        try:
            receipt = await self._inbound.accept(data, self._peer, recipients)
        except GatewayFault as fault:
            if fault.code is FaultCode.UNAVAILABLE:
                # Our own trouble (disk, a bug): not the package's; try again next round.
                tally.stopped = f"storing {item.doc_id}: {fault.text_en}"
                return False
            tally.add("refused")
            detail, reason = f"{fault.code.value}: {fault.text_en}", fault.text_en
            await self._write(
                lambda c: _settled(
                    c,
                    route,
                    item.doc_id,
                    outcome="refused",
                    message_id=None,
                    detail=detail,
                    now=now_of(self._clock),
                )
            )
            return await self._ack(item.doc_id, "fail", reason)
        outcome = "duplicate" if receipt.duplicate else "accepted"
        tally.add("duplicates" if receipt.duplicate else "accepted")
        await self._write(
            lambda c: _settled(
                c,
                route,
                item.doc_id,
                outcome=outcome,
                message_id=receipt.message_id,
                detail=None,
                now=now_of(self._clock),
            )
        )
        return await self._ack(item.doc_id, "done")

    async def _ack(self, axis_id: str, status: AckStatus, description: str | None = None) -> bool:
        try:
            await self._client.update_status(axis_id, status, description)
        except (VxpUnavailable, VxpRefused) as exc:
            # Stored here, not acknowledged there: it comes again and is answered as settled.
            self.log.warn(
                "cannot acknowledge {axis_id} on {route}: {error}",
                axis_id=axis_id,
                route=self._route.name,
                error=str(exc),
            )
            return not isinstance(exc, VxpUnavailable)
        await self._write(
            lambda c: _acked(c, self._route.name, axis_id, status, now_of(self._clock))
        )
        return True


# --- the axis' clock (R20) ------------------------------------------------------------------------


class AxisClock:
    """The offset of each axis' clock to ours, from its answers' Date headers; written to the
    store at most once a minute per route (and at once when it crosses the route's bound),
    where `gateway status` and /metrics read it."""

    log = Logger()
    WRITE_EVERY = 60.0

    def __init__(self, store: Store, *, clock: Any) -> None:
        self._store = store
        self._clock = clock
        self._written: dict[str, tuple[float, bool]] = {}
        self.latest: dict[str, tuple[float, float]] = {}

    def observer(self, route: RouteConfig) -> Callable[[float, float], None]:
        def observe(offset: float, round_trip: float) -> None:
            self.latest[route.name] = (offset, round_trip)
            now = self._clock.seconds()
            skewed = abs(offset) > route.max_clock_skew
            last = self._written.get(route.name)
            if last is not None and last[1] == skewed and now - last[0] < self.WRITE_EVERY:
                return
            self._written[route.name] = (now, skewed)
            if skewed:
                self.log.warn(
                    "the clock of {route} is {offset:.1f}s off ours (more than {bound:g}s)",
                    route=route.name,
                    offset=offset,
                    bound=route.max_clock_skew,
                )
            when = now_of(self._clock)
            d = self._store.write(
                lambda c: c.execute(
                    "INSERT INTO axis_clock (route, offset_seconds, round_trip_seconds,"
                    " measured_at) VALUES (?, ?, ?, ?) ON CONFLICT (route) DO UPDATE SET"
                    " offset_seconds = excluded.offset_seconds,"
                    " round_trip_seconds = excluded.round_trip_seconds,"
                    " measured_at = excluded.measured_at",
                    (route.name, offset, round_trip, utc_text(when)),
                )
            )
            Deferred.fromCoroutine(_quietly(d))

        return observe


async def _quietly(job: Awaitable[Any]) -> None:
    try:
        await job
    except Exception:
        Logger().failure("could not record an axis clock reading")


def clock_readings(conn: sqlite3.Connection) -> list[tuple[str, float, float, str]]:
    return [
        (r[0], r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT route, offset_seconds, round_trip_seconds, measured_at FROM axis_clock"
            " ORDER BY route"
        )
    ]


# --- directory sync -------------------------------------------------------------------------------


class DirectorySync:
    """The axis' agency list merged into the directory every `route.directory_sync` seconds."""

    log = Logger()

    def __init__(self, route: RouteConfig, client: VxpClient, store: Store, *, clock: Any) -> None:
        self._route = route
        self._client = client
        self._store = store
        self._clock = clock
        self._periodic = Periodic(
            f"directory sync on {route.name}",
            self.sync_once,
            every=route.directory_sync,
            clock=clock,
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def sync_once(self) -> directory.SyncResult | None:
        try:
            listed = await self._client.agencies()
        except (VxpUnavailable, VxpRefused) as exc:
            self.log.warn(
                "cannot fetch the agency list of {route}: {error}",
                route=self._route.name,
                error=str(exc),
            )
            return None
        entries = [
            directory.AxisAgency(code=a.code or "", name=a.name or "", id=a.id, pid=a.pid)
            for a in listed
        ]
        now = now_of(self._clock)
        result: directory.SyncResult = await self._store.write(
            lambda c: directory.sync_from_axis(
                c, self._route.name, entries, now=now, actor=f"axis:{self._route.name}"
            )
        )
        self.log.info(
            "directory synced from {route}: {result}",
            route=self._route.name,
            result=result.to_json(),
        )
        return result
