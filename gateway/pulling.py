"""What the pull loops of the axes share (floor 5): the `axis_items` record of every item an
axis or hub held for us, the round tally, and the loop that runs rounds.

`axis_items` keeps, per route and the axis' own id of an item, what happened: first seen, fetch
attempts, the outcome and the stored message, the acknowledgement — so `gateway show` and an
auditor can follow an axis docId (national axis) or a hub document id (provincial hub) to the
document. A row whose outcome is NULL is unsettled: seen, not yet stored.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import attrs

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.store import utc_text

__all__ = ["AxisItem", "PullLoop", "PullRound", "Tally", "axis_items"]

T = TypeVar("T")


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


def seen(
    conn: sqlite3.Connection,
    route: str,
    axis_id: str,
    message_type: str,
    now: dt.datetime,
    *,
    sender: str | None = None,
    recipient: str | None = None,
    detail: str | None = None,
) -> AxisItem:
    """The item's row, inserted when first seen (with `detail`, e.g. what must be kept until it
    is stored), as it stands."""
    conn.execute(
        "INSERT INTO axis_items (route, axis_id, message_type, sender, recipient, first_seen_at,"
        " detail) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (route, axis_id) DO NOTHING",
        (route, axis_id, message_type, sender, recipient, utc_text(now), detail),
    )
    row = conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM axis_items WHERE route = ? AND axis_id = ?",
        (route, axis_id),
    ).fetchone()
    return AxisItem(*row)


def fetch_attempt(conn: sqlite3.Connection, route: str, axis_id: str, detail: str) -> None:
    conn.execute(
        "UPDATE axis_items SET fetch_attempts = fetch_attempts + 1, detail = ?"
        " WHERE route = ? AND axis_id = ?",
        (detail, route, axis_id),
    )


def settled(
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


def acked(
    conn: sqlite3.Connection, route: str, axis_id: str, status: str, now: dt.datetime
) -> None:
    conn.execute(
        "UPDATE axis_items SET acked_status = ?, acked_at = ? WHERE route = ? AND axis_id = ?",
        (status, utc_text(now), route, axis_id),
    )


def axis_items(
    conn: sqlite3.Connection,
    *,
    route: str | None = None,
    message_id: str | None = None,
    message_type: str | None = None,
    unsettled: bool = False,
) -> list[AxisItem]:
    """What the pull loops saw, newest first; of one route, of one stored message, of one type,
    or only what is not settled yet."""
    where, args = [], []
    for column, value in (
        ("route", route),
        ("message_id", message_id),
        ("message_type", message_type),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if unsettled:
        where.append("outcome IS NULL")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM axis_items{clause} ORDER BY first_seen_at DESC, axis_id",
        args,
    )
    return [AxisItem(*r) for r in rows]


@attrs.frozen
class PullRound:
    """What one round did, per outcome; `stopped` names why it ended early."""

    listed: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    not_ready: int = 0
    acked_again: int = 0
    ignored: int = 0
    stopped: str | None = None


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.stopped: str | None = None

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def result(self) -> PullRound:
        return PullRound(**self.counts, stopped=self.stopped)


class PullLoop:
    """Runs `pull_once` every `interval` seconds, at once again after a round that took
    something (more may have arrived meanwhile); a crashed round is logged and the loop goes
    on. Subclasses implement `pull_once`."""

    log = Logger()

    def __init__(
        self,
        name: str,
        interval: float | None,
        *,
        clock: Any,
        after_round: Callable[[], None] = lambda: None,
    ) -> None:
        self._name = name
        self._interval = interval
        self._clock = clock
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

    async def pull_once(self) -> PullRound:
        raise NotImplementedError

    async def _each(
        self, items: Iterable[T], take: Callable[[T, Tally], Awaitable[bool]], tally: Tally
    ) -> bool:
        """`take` each item in turn (counted as listed); False as soon as one says the round
        must stop, or the loop is stopping (a round ends at an item boundary)."""
        for item in items:
            tally.add("listed")
            if self._stopping:
                tally.stopped = "stopping"
                return False
            if not await take(item, tally):
                return False
        return True

    def _schedule(self, delay: float) -> None:
        self._timer = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._round = Deferred.fromCoroutine(self.pull_once())
        self._round.addBoth(self._done)

    def _done(self, result: object) -> None:
        self._round = None
        busy = False
        if isinstance(result, Failure):
            self.log.failure("pull round on {route} crashed", result, route=self._name)
        else:
            self._after_round()
            busy = isinstance(result, PullRound) and bool(result.accepted or result.duplicates)
        if self._running and self._interval is not None:
            self._schedule(0 if busy else self._interval)
