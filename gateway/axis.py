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

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from zope.interface import implementer

from twisted.internet.defer import Deferred
from twisted.logger import Logger

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
from gateway.pulling import (
    AxisItem,
    PullLoop,
    PullRound,
    Tally,
    acked,
    axis_items,
    fetch_attempt,
    seen,
    settled,
)
from gateway.soap import FaultCode, GatewayFault
from gateway.store import Store, utc_text
from gateway.transports import UploadOnce
from gateway.vxpclient import AckStatus, MessageType, VxpClient, VxpRefused, VxpUnavailable

__all__ = ["AxisClock", "AxisPuller", "DirectorySync", "VxpTransport", "axis_items"]

MESSAGE_TYPES: tuple[MessageType, ...] = ("edoc", "status")


@implementer(ITransport)
class VxpTransport(UploadOnce):
    """sendEdoc: one stored package uploaded to the axis. The axis' DocId is the receipt.

    The axis addresses an upload by its `To` elements, all of them: one upload serves every
    recipient of the message on this route (see `UploadOnce`), so an envelope to five agencies
    is uploaded once, not five times (25 copies at the axis)."""

    log = Logger()

    def __init__(
        self, route: RouteConfig, client: VxpClient, *, clock: Any, store: Store | None = None
    ) -> None:
        super().__init__(route, clock=clock, store=store)
        self._client = client

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


# --- the pull loop -------------------------------------------------------------------------------


class AxisPuller(PullLoop):
    """Takes what the axis holds for this node, every `route.pull_interval` seconds."""

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
        super().__init__(route.name, route.pull_interval, clock=clock, after_round=after_round)
        self._route = route
        self._client = client
        self._inbound = inbound
        self._store = store
        self._peer = Peer(kind="axis", name=route.name)

    async def pull_once(self) -> PullRound:
        """One round over both message types."""
        tally = Tally()
        for message_type in MESSAGE_TYPES:
            if not await self._pull(message_type, tally):
                break
        result = tally.result()
        if result.listed:
            self.log.info(
                "pulled from {route}: {round}", route=self._route.name, round=attrs.asdict(result)
            )
        return result

    async def _pull(self, message_type: MessageType, tally: Tally) -> bool:
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
        once: dict[str, ListedItem] = {}
        for item in items:
            once.setdefault(item.doc_id, item)  # real axes list an item twice
        return await self._each(
            once.values(), lambda item, t: self._take(item, message_type, t), tally
        )

    async def _write(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        return await self._store.write(job)

    async def _take(self, item: ListedItem, message_type: str, tally: Tally) -> bool:
        route, now = self._route.name, now_of(self._clock)
        known: AxisItem = await self._write(
            lambda c: seen(
                c, route, item.doc_id, message_type, now, sender=item.from_, recipient=item.to
            )
        )
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
            await self._write(lambda c: fetch_attempt(c, route, item.doc_id, why))
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
                lambda c: settled(
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
            lambda c: settled(
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
            lambda c: acked(c, self._route.name, axis_id, status, now_of(self._clock))
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


async def axis_agencies(client: VxpClient) -> list[directory.AxisAgency]:
    """The national axis' agency list (getAgenciesList) as directory entries."""
    return [
        directory.AxisAgency(code=a.code or "", name=a.name or "", id=a.id, pid=a.pid)
        for a in await client.agencies()
    ]


class DirectorySync:
    """An axis' or hub's agency list merged into the directory every `route.directory_sync`
    seconds. `fetch` gives the list (raising one of `unavailable` when it cannot)."""

    log = Logger()

    def __init__(
        self,
        route: RouteConfig,
        fetch: Callable[[], Awaitable[list[directory.AxisAgency]]],
        store: Store,
        *,
        clock: Any,
        unavailable: tuple[type[Exception], ...] = (VxpUnavailable, VxpRefused),
    ) -> None:
        self._route = route
        self._fetch = fetch
        self._unavailable = unavailable
        self._store = store
        self._clock = clock
        self._periodic = Periodic(
            f"directory sync on {route.name}",
            self.sync_once,
            every=route.directory_sync,
            clock=clock,
        )

    @classmethod
    def of_axis(
        cls, route: RouteConfig, client: VxpClient, store: Store, *, clock: Any
    ) -> DirectorySync:
        return cls(route, lambda: axis_agencies(client), store, clock=clock)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def sync_once(self) -> directory.SyncResult | None:
        try:
            entries = await self._fetch()
        except self._unavailable as exc:
            self.log.warn(
                "cannot fetch the agency list of {route}: {error}",
                route=self._route.name,
                error=str(exc),
            )
            return None
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
