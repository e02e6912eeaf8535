"""What the HTTP clients of the axes share (floor 1): one-connection-per-request agents that
verify TLS like a browser, bodies read under a cap (or streamed, cancellable), error pages
drained, a network failure as one readable line, and the server's clock from its Date header."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable
from typing import Any, Final

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
    PotentialDataLoss,
    ResponseDone,
)
from twisted.web.iweb import IAgent, IResponse

__all__ = [
    "HttpError",
    "Oversized",
    "drain",
    "network_reason",
    "one_shot_agent",
    "read_body",
    "server_offset",
    "stream_body",
]

ERROR_BODY: Final = 64 << 10  # what is read of an HTTP error page before giving up


class HttpError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Oversized(Exception):
    pass


def one_shot_agent(reactor: Any, timeout: float) -> IAgent:
    """An Agent that verifies TLS like a browser and opens one connection per request, as the
    axes' own clients do: nothing is left open between polls."""
    pool = HTTPConnectionPool(reactor, persistent=False)
    return Agent(
        reactor, contextFactory=BrowserLikePolicyForHTTPS(), connectTimeout=timeout, pool=pool
    )


async def read_body(response: IResponse, cap: int) -> bytes:
    if isinstance(response.length, int) and response.length > cap:
        raise Oversized()
    chunks: list[bytes] = []
    size = 0

    def collect(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > cap:
            raise Oversized()
        chunks.append(data)

    await stream_body(response, collect)
    return b"".join(chunks)


class _BodyStream(Protocol):
    """treq's `collect`, plus what a timeout needs: cancelling closes the connection, so a
    stalled axis is not left holding it (and a cancelled body is not read to its end)."""

    def __init__(self, done: Deferred[None], sink: Callable[[bytes], object]) -> None:
        self._done = done
        self._sink = sink

    def dataReceived(self, data: bytes) -> None:
        if self._done.called:
            return
        try:
            self._sink(data)
        except BaseException:
            self.abort()
            self._done.errback(Failure())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._done.callback(None)
        else:
            self._done.errback(reason)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


def stream_body(response: IResponse, sink: Callable[[bytes], object]) -> Deferred[None]:
    """Feed the body of `response` to `sink` as it arrives; fires when it has all come."""
    protocols: list[_BodyStream] = []
    done: Deferred[None] = Deferred(lambda _: protocols[0].abort())
    protocol = _BodyStream(done, sink)
    protocols.append(protocol)
    if response.length == 0:
        done.callback(None)
    else:
        response.deliverBody(protocol)
    return done


async def drain(response: IResponse) -> None:
    # The status is the answer; the page only has to be read off the connection (bounded).
    try:
        await read_body(response, ERROR_BODY)
    except Exception:
        return


def network_reason(exc: BaseException) -> str:
    reasons: Any = getattr(exc, "reasons", None) or ()
    if reasons:  # twisted.web's ResponseFailed and friends wrap Failures
        inner = getattr(reasons[0], "value", reasons[0])
        if isinstance(inner, BaseException):
            return network_reason(inner)
    text = str(exc) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
    return text if len(text) <= 200 else text[:197] + "..."


def server_offset(response: IResponse, sent: float, arrived: float) -> float | None:
    """How far the server's clock is ahead of ours (seconds, against the midpoint of sending
    and arriving), from its Date header; None without a readable one."""
    values = response.headers.getRawHeaders(b"date")
    if not values:
        return None
    try:
        server = email.utils.parsedate_to_datetime(values[0].decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=dt.UTC)
    return server.timestamp() - (sent + arrived) / 2
