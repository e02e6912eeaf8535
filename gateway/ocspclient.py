"""Asking OCSP responders (floor 2, trust): the network half of `edxml.ocsp`.

`edxml` judges revocation from the evidence it is given; when a verdict says whom it could still
ask (`Report.ocsp_queries`: certificates of chains already verified to a trusted root, so the
responder URL is one a trusted CA wrote), this client asks, over HTTP POST, with one bounded
timeout per responder, and keeps the answers:

* a usable answer until its nextUpdate (or `max_age` when it has none), so that a busy signer
  costs one request per validity period, not one per document;
* a failure (unreachable, timeout, HTTP error, an answer that proves nothing) for `retry_after`
  seconds, so that a responder that is down costs one timeout a minute, not one per document;
  the verdict then carries the reason (`OcspUnavailable`) instead of waiting again.

Concurrent asks for one certificate share one request. The cache is bounded (oldest out).
Nothing here decides anything: every answer goes back into `edxml.check.examine`.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

import attrs

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from edxml.certificates import Problem
from edxml.ocsp import (
    DEFAULT_MAX_AGE,
    MAX_RESPONSE_BYTES,
    CertKey,
    OcspAnswer,
    OcspQuery,
    OcspState,
    judge,
    valid_until,
)
from gateway.config import OcspConfig
from gateway.httpcall import HttpError, Oversized, drain, network_reason, read_body

MAX_CACHED: Final = 10_000
_CONTENT_TYPE: Final = b"application/ocsp-request"


@attrs.frozen
class _Kept:
    answer: OcspAnswer
    until: dt.datetime


class OcspClient:
    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        config: OcspConfig,
        *,
        http: HTTPClient | None = None,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        max_cached: int = MAX_CACHED,
    ) -> None:
        self._reactor = reactor
        self._config = config
        self._max_age = max_age
        self._max_cached = max_cached
        self._kept: OrderedDict[CertKey, _Kept] = OrderedDict()
        self._asking: dict[CertKey, defer.Deferred[OcspAnswer]] = {}
        if http is None:
            pool = HTTPConnectionPool(reactor, persistent=False)
            agent = Agent(reactor, connectTimeout=config.timeout, pool=pool)
            http = HTTPClient(agent)
        self._http = http
        self.requests = 0  # responders asked, for `gateway status` and tests

    @classmethod
    def for_reactor(cls, reactor: IReactorTCP, config: OcspConfig) -> OcspClient | None:
        """The daemon's client, or None when [trust] ocsp = off."""
        return cls(reactor, config) if config.enabled else None  # type: ignore[arg-type]

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._reactor.seconds(), dt.UTC)

    def known(self) -> tuple[OcspAnswer, ...]:
        """Every answer still kept (usable ones, and failures within `retry_after`)."""
        now = self.now()
        for key in [k for k, kept in self._kept.items() if kept.until <= now]:
            del self._kept[key]
        return tuple(kept.answer for kept in self._kept.values())

    async def ask(self, queries: Iterable[OcspQuery]) -> tuple[OcspAnswer, ...]:
        """An answer for each query (fetched, or kept from before); never raises for what a
        responder does."""
        waits = [self._answer(query) for query in queries]
        results = await defer.gatherResults(waits, consumeErrors=True)
        return tuple(results)

    def _answer(self, query: OcspQuery) -> defer.Deferred[OcspAnswer]:
        key = query.key
        kept = self._kept.get(key)
        if kept is not None and kept.until > self.now():
            return defer.succeed(kept.answer)
        asking = self._asking.get(key)
        if asking is None:
            asking = defer.Deferred.fromCoroutine(self._fetch(query))
            self._asking[key] = asking

            def done(result: object) -> object:
                self._asking.pop(key, None)
                if isinstance(result, OcspAnswer):
                    self._keep(query, result)
                return result

            asking.addBoth(done)
        # Each waiter gets its own Deferred: one waiter's cancellation must not cancel the rest.
        mine: defer.Deferred[OcspAnswer] = defer.Deferred()

        def relay(result: OcspAnswer | Failure) -> OcspAnswer | Failure:
            if isinstance(result, Failure):
                mine.errback(result)
            else:
                mine.callback(result)
            return result

        asking.addBoth(relay)
        return mine

    def _keep(self, query: OcspQuery, answer: OcspAnswer) -> None:
        now = self.now()
        status = judge(answer, query.cert, query.issuer, now, max_age=self._max_age)
        if status.state is OcspState.UNUSABLE:
            until = now + dt.timedelta(seconds=self._config.retry_after)
        else:
            until = valid_until(answer, self._max_age)
        self._kept[query.key] = _Kept(answer, until)
        self._kept.move_to_end(query.key)
        while len(self._kept) > self._max_cached:
            self._kept.popitem(last=False)

    async def _fetch(self, query: OcspQuery) -> OcspAnswer:
        urls = [u for u in query.urls if self._allowed(u)]
        if not urls:
            listed = ", ".join(query.urls)
            return OcspAnswer.failed(
                query,
                query.urls[0] if query.urls else "",
                Problem(
                    f"not asked: no responder of {listed} is in [trust] ocsp_hosts",
                    f"không hỏi: máy chủ {listed} không có trong [trust] ocsp_hosts",
                ),
                self.now(),
            )
        answer: OcspAnswer | None = None
        for url in urls:
            answer = await self._post(query, url)
            if answer.response is not None:
                break
        assert answer is not None
        return answer

    def _allowed(self, url: str) -> bool:
        if not self._config.hosts:
            return True
        return (urlsplit(url).hostname or "").lower() in self._config.hosts

    async def _post(self, query: OcspQuery, url: str) -> OcspAnswer:
        self.requests += 1
        attempt = defer.Deferred.fromCoroutine(self._exchange(url, query.request()))
        # However the cancelled request fails (treq wraps it), a timeout is reported as one.
        attempt.addTimeout(
            self._config.timeout,
            self._reactor,
            onTimeoutCancel=lambda result, timeout: Failure(defer.TimeoutError(timeout)),
        )
        try:
            body = await attempt
        except defer.TimeoutError:
            problem = Problem(
                f"no answer within {self._config.timeout:g} s",
                f"không có phản hồi trong {self._config.timeout:g} giây",
            )
        except Oversized:
            problem = Problem(
                f"the answer is over {MAX_RESPONSE_BYTES} bytes",
                f"phản hồi vượt quá {MAX_RESPONSE_BYTES} byte",
            )
        except HttpError as exc:
            problem = Problem(f"HTTP {exc.code}", f"lỗi HTTP {exc.code}")
        except Exception as exc:
            problem = Problem(
                f"unreachable ({network_reason(exc)})",
                f"không kết nối được ({network_reason(exc)})",
            )
        else:
            self.log.info(
                "OCSP answer from {url} for serial {serial:X}",
                url=url,
                serial=query.cert.serial_number,
            )
            return OcspAnswer.received(query, url, body, self.now())
        self.log.warn(
            "OCSP responder {url} unusable for serial {serial:X}: {problem}",
            url=url,
            serial=query.cert.serial_number,
            problem=problem.en,
        )
        return OcspAnswer.failed(query, url, problem, self.now())

    async def _exchange(self, url: str, request: bytes) -> bytes:
        response = await self._http.post(
            url,
            data=request,
            unbuffered=True,
            headers=Headers(
                {b"Content-Type": [_CONTENT_TYPE], b"Accept": [b"application/ocsp-response"]}
            ),
        )
        if response.code != 200:
            await drain(response)
            raise HttpError(response.code)
        return await read_body(response, MAX_RESPONSE_BYTES)
