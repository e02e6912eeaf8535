"""A job run again and again on the reactor's clock (floor 1): the directory sync, the archive
and retention pass. One run at a time; the next starts `every` seconds after one ends, whatever
its outcome (a failure is logged, never stops the schedule); `stop()` waits for a run under way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

__all__ = ["Periodic"]


class Periodic:
    log = Logger()

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[Any]],
        *,
        every: float | None,
        clock: Any,
        first: float = 0.0,
    ) -> None:
        self._name = name
        self._job = job
        self._every = every
        self._clock = clock
        self._first = first
        self._timer: IDelayedCall | None = None
        self._running: Deferred[Any] | None = None
        self._stopped = False

    def start(self) -> None:
        if self._every is not None:
            self._timer = self._clock.callLater(self._first, self._tick)

    def _tick(self) -> None:
        async def run() -> Any:
            return await self._job()

        self._running = Deferred.fromCoroutine(run())
        self._running.addErrback(lambda f: self.log.failure("{name} failed", f, name=self._name))
        self._running.addBoth(self._next)

    def _next(self, _: object) -> None:
        self._running = None
        if not self._stopped and self._every is not None:
            self._timer = self._clock.callLater(self._every, self._tick)

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._running is not None:
            await self._running
