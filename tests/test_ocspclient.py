"""gateway.ocspclient against a real responder on loopback (tests/ocspkit.Responder): answers,
the cache, shared requests, and every way a responder fails becoming a reason, not a crash."""

from __future__ import annotations

import datetime as dt
import time

from e2e_kit import free_port
from ocspkit import HOUR, Responder, with_ocsp
from pki import make_pki

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent

from edxml.ocsp import OcspQuery, OcspState, judge
from gateway.config import OcspConfig
from gateway.ocspclient import OcspClient


class OcspClientTests(TestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.ca = self.pki.intermediate
        self.responder = Responder(self.ca)
        self.responder.start()
        self.addCleanup(self.responder.stop)

    def query(self, url: str | None = None, name: str = "seal") -> OcspQuery:
        leaf = with_ocsp(name, self.pki.agency_h23.cert.subject, self.ca, url or self.responder.url)
        self.responder.know(leaf.cert)
        return OcspQuery(leaf.cert, self.ca.cert)

    def client(self, **config: object) -> OcspClient:
        return OcspClient(reactor, OcspConfig(**config))  # type: ignore[arg-type]

    def state(self, query: OcspQuery, client: OcspClient) -> OcspState:
        (answer,) = client.known()
        now = dt.datetime.now(dt.UTC)
        return judge(answer, query.cert, query.issuer, now).state

    async def test_good_answer_is_kept_and_not_asked_again(self) -> None:
        client, query = self.client(), self.query()
        (first,) = await client.ask([query])
        self.assertIsNotNone(first.response)
        self.assertEqual(first.url, self.responder.url)
        self.assertIs(self.state(query, client), OcspState.GOOD)
        (again,) = await client.ask([query])
        self.assertEqual(again, first)
        self.assertEqual(self.responder.requests, [query.cert.serial_number])
        self.assertEqual(client.requests, 1)

    async def test_revoked_answer(self) -> None:
        client, query = self.client(), self.query()
        self.responder.revoke(query.cert)
        await client.ask([query])
        self.assertIs(self.state(query, client), OcspState.REVOKED)

    async def test_concurrent_asks_share_one_request(self) -> None:
        client, query = self.client(), self.query()
        one, two = client.ask([query]), client.ask([query])
        self.assertEqual(await one, await two)
        self.assertEqual(len(self.responder.requests), 1)

    async def test_several_certificates_at_once(self) -> None:
        client = self.client()
        queries = [self.query(name=f"seal{i}") for i in range(3)]
        answers = await client.ask(queries)
        self.assertEqual([a.key for a in answers], [q.key for q in queries])
        self.assertEqual(
            sorted(self.responder.requests), sorted(q.cert.serial_number for q in queries)
        )

    async def test_unreachable_responder_is_a_reason_and_is_not_asked_again_soon(self) -> None:
        client = self.client(retry_after=60.0)
        query = self.query(url=f"http://127.0.0.1:{free_port()}/ocsp")
        (answer,) = await client.ask([query])
        self.assertIsNone(answer.response)
        assert answer.failure is not None
        self.assertIn("unreachable", answer.failure.en)
        self.assertIn("không kết nối được", answer.failure.vi)
        await client.ask([query])
        self.assertEqual(client.requests, 1)
        self.assertEqual(client.known(), (answer,))

    async def test_failure_is_asked_again_after_retry_after(self) -> None:
        client = self.client(retry_after=0.0)
        query = self.query(url=f"http://127.0.0.1:{free_port()}/ocsp")
        await client.ask([query])
        await client.ask([query])
        self.assertEqual(client.requests, 2)

    async def test_a_hanging_responder_times_out(self) -> None:
        self.responder.mode = "hang"
        client, query = self.client(timeout=1.0), self.query()
        started = time.monotonic()
        (answer,) = await client.ask([query])
        self.assertLess(time.monotonic() - started, 10)
        assert answer.failure is not None
        self.assertIn("no answer within 1 s", answer.failure.en)
        self.assertIn("không có phản hồi trong 1 giây", answer.failure.vi)

    async def test_http_error(self) -> None:
        self.responder.mode = "http500"
        (answer,) = await self.client().ask([self.query()])
        assert answer.failure is not None
        self.assertEqual(answer.failure.en, "HTTP 500")

    async def test_an_answer_that_proves_nothing_is_kept_only_as_a_failure(self) -> None:
        self.responder.mode = "garbage"
        client, query = self.client(retry_after=60.0), self.query()
        (answer,) = await client.ask([query])
        self.assertIsNotNone(answer.response)  # it came; judging it is edxml's business
        self.assertIs(self.state(query, client), OcspState.UNUSABLE)
        await client.ask([query])
        self.assertEqual(client.requests, 1)  # not asked again within retry_after
        quick = self.client(retry_after=0.0)
        await quick.ask([query])
        self.responder.mode = "answer"
        await quick.ask([query])
        self.assertIs(self.state(query, quick), OcspState.GOOD)

    async def test_try_later(self) -> None:
        self.responder.mode = "try_later"
        client, query = self.client(), self.query()
        await client.ask([query])
        self.assertIs(self.state(query, client), OcspState.UNUSABLE)

    async def test_hosts_not_allowed_are_not_asked(self) -> None:
        client, query = self.client(hosts=("ocsp.ca.gov.vn",)), self.query()
        (answer,) = await client.ask([query])
        self.assertEqual(self.responder.requests, [])
        assert answer.failure is not None
        self.assertIn("ocsp_hosts", answer.failure.en)
        allowed = self.client(hosts=("127.0.0.1",))
        (good,) = await allowed.ask([query])
        self.assertIsNotNone(good.response)

    async def test_answers_expire_at_their_next_update(self) -> None:
        clock = Clock()
        clock.advance(time.time())
        client = OcspClient(clock, OcspConfig(), http=HTTPClient(Agent(reactor)))
        query = self.query()
        await client.ask([query])
        self.assertEqual(len(client.known()), 1)
        clock.advance(3 * HOUR.total_seconds())  # the responder's answers say "next in 1 h"
        self.assertEqual(client.known(), ())
        await client.ask([query])
        self.assertEqual(len(self.responder.requests), 2)

    async def test_cache_is_bounded(self) -> None:
        client = OcspClient(reactor, OcspConfig(), max_cached=2)
        queries = [self.query(name=f"bounded{i}") for i in range(3)]
        for query in queries:
            await client.ask([query])
        self.assertEqual([a.key for a in client.known()], [q.key for q in queries[1:]])

    def test_off_means_no_client(self) -> None:
        self.assertIsNone(OcspClient.for_reactor(reactor, OcspConfig(enabled=False)))  # type: ignore[arg-type]
        self.assertIsNotNone(OcspClient.for_reactor(reactor, OcspConfig()))  # type: ignore[arg-type]
