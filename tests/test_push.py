"""Pushes to office systems (`push_url`): a signed wake-up over real HTTP on loopback when a
document or a status waits, none when nothing new waits, a reminder when it still waits, a
growing pause after a refused push, the token never sent; and the configuration's rules."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import attrs
from nodekit import HOSTED_H23, HOSTED_VP, OFFICE_TOKEN, REMOTE_G22, NodeKit

from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from edxml import reader, writer
from edxml.model import Envelope, Organization
from gateway import statuses
from gateway import store as st
from gateway.config import ConfigError, loads
from gateway.httpcall import one_shot_agent
from gateway.interfaces import Peer
from gateway.push import EVERY, REMIND, SIGNATURE_HEADER, OfficePusher

try:
    from tests.test_config import BASE, section_edit
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from test_config import BASE, section_edit  # type: ignore[no-redef, import-not-found]

PEER = Peer("node", "vpcp", "ab" * 32)


class OfficeSystem(Resource):
    """The office system's callback: keeps what it got, answers `code`."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[dict[str, Any], dict[bytes, list[bytes]], bytes]] = []
        self.code = 204

    def render_POST(self, request: Request) -> bytes:
        assert request.content is not None
        body = request.content.read()
        headers = dict(request.requestHeaders.getAllRawHeaders())
        self.got.append((json.loads(body), headers, body))
        request.setResponseCode(self.code)
        return b""


class PushTests(TestCase):
    async def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        self.office_system = OfficeSystem()
        port = reactor.listenTCP(0, Site(self.office_system), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/edxml-callback"
        self.office = attrs.evolve(self.kit.office(), push_url=url)
        self.pusher = OfficePusher(
            self.office,
            self.kit.store,
            clock=self.kit.clock,
            agent=one_shot_agent(reactor, 5.0),
        )
        self.inbound = self.kit.inbound()

    async def arrive(self, number: str) -> str:
        data = self.kit.signed_envelope(REMOTE_G22, [HOSTED_VP], number=number)
        return (await self.inbound.accept(data, PEER)).message_id

    def last(self) -> dict[str, Any]:
        return self.office_system.got[-1][0]

    async def test_a_document_waiting_is_pushed_once_signed_then_reminded(self) -> None:
        self.assertIsNone(await self.pusher.push_once())  # nothing waits: nothing sent
        self.assertEqual(self.office_system.got, [])
        await self.arrive("31")
        self.assertTrue(await self.pusher.push_once())
        payload, headers, body = self.office_system.got[0]
        self.assertEqual(payload["event"], "pending")
        self.assertEqual(payload["documents"], {HOSTED_VP: 1})
        self.assertTrue(payload["at"].endswith("+07:00"))
        expected = hmac.new(OFFICE_TOKEN.encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(headers[SIGNATURE_HEADER.encode()], [f"sha256={expected}".encode()])
        for value in [body, *(v for vs in headers.values() for v in vs)]:
            self.assertNotIn(OFFICE_TOKEN.encode(), value)  # signed with it, never sent
        # Nothing new: no second push; a second document: pushed at once.
        self.kit.clock.advance(EVERY)
        self.assertIsNone(await self.pusher.push_once())
        await self.arrive("32")
        self.assertTrue(await self.pusher.push_once())
        self.assertEqual(self.last()["documents"], {HOSTED_VP: 2})
        # Still waiting after REMIND: pushed again.
        self.kit.clock.advance(REMIND)
        self.assertTrue(await self.pusher.push_once())
        self.assertEqual(len(self.office_system.got), 3)
        # Taken and acknowledged: nothing waits, nothing is pushed.
        waiting = await self.kit.read(st.pending_inbox, organ_ids=[HOSTED_VP], limit=10)
        now = self.kit.now()
        await self.kit.store.write(
            functools.partial(
                st.mark_received,
                message_ids=[i.message.id for i in waiting],
                organ_ids=[HOSTED_VP],
                now=now,
                actor="t",
            )
        )
        self.kit.clock.advance(REMIND)
        self.assertIsNone(await self.pusher.push_once())
        self.assertEqual(len(self.office_system.got), 3)

    async def status_for_a_sent_document(self) -> None:
        """H23 sent a document to G22, whose 01 came back."""
        sent = await self.kit.outbound().submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22]), self.office
        )
        msg = await self.kit.read(st.get_message, message_id=sent.message_id)
        assert msg is not None
        doc = reader.read(self.kit.blobs.read(msg.blob_sha256)).document
        assert isinstance(doc, Envelope)
        arrived = statuses.arrived(
            statuses.response_for(doc),
            Organization(organ_id=REMOTE_G22, organ_name="Văn phòng Chính phủ"),
            at=self.kit.now(),
        )
        await self.inbound.accept(writer.write(arrived), PEER)

    async def test_a_status_for_a_sent_document_is_pushed(self) -> None:
        await self.status_for_a_sent_document()
        self.assertTrue(await self.pusher.push_once())
        self.assertEqual(self.last()["statuses"], {HOSTED_H23: 1})
        self.assertEqual(self.last()["documents"], {})

    async def test_news_is_news_after_the_newest_was_taken(self) -> None:
        await self.arrive("61")
        newest = await self.arrive("62")
        self.assertTrue(await self.pusher.push_once())
        now = self.kit.now()
        await self.kit.store.write(  # the office took the newer one only
            functools.partial(
                st.mark_received, message_ids=[newest], organ_ids=[HOSTED_VP], now=now, actor="t"
            )
        )
        self.kit.clock.advance(EVERY)
        self.assertIsNone(await self.pusher.push_once())  # nothing new: 61 was told already
        await self.status_for_a_sent_document()
        self.assertTrue(await self.pusher.push_once())  # a new status, at once
        self.assertEqual(
            (self.last()["documents"], self.last()["statuses"]), ({HOSTED_VP: 1}, {HOSTED_H23: 1})
        )

    async def test_a_refused_push_waits_longer_each_time(self) -> None:
        await self.arrive("41")
        self.office_system.code = 503
        self.assertFalse(await self.pusher.push_once())
        self.assertIsNone(await self.pusher.push_once())  # within the pause: not tried
        self.kit.clock.advance(2 * EVERY)
        self.assertFalse(await self.pusher.push_once())
        self.kit.clock.advance(2 * EVERY)  # the pause doubled: still waiting
        self.assertIsNone(await self.pusher.push_once())
        self.kit.clock.advance(2 * EVERY)
        self.office_system.code = 200
        self.assertTrue(await self.pusher.push_once())
        self.assertEqual(len(self.office_system.got), 3)

    async def test_an_office_system_that_is_down_costs_a_warning(self) -> None:
        await self.arrive("51")
        down = OfficePusher(
            attrs.evolve(self.office, push_url="http://127.0.0.1:9/edxml-callback"),
            self.kit.store,
            clock=self.kit.clock,
            agent=one_shot_agent(reactor, 5.0),
        )
        self.assertFalse(await down.push_once())


class PushConfigTests(TestCase):
    def load(self, office: str) -> Any:
        text = section_edit(BASE, "office:qlvb", office)
        return loads(text, base_dir=Path(self.mktemp()), check_files=False)

    def test_push_needs_a_token_and_warns_over_plain_http(self) -> None:
        fingerprint = "ab" * 32
        with self.assertRaises(ConfigError) as caught:
            self.load(
                f"organ_ids = {HOSTED_H23}\nclient_cert_fingerprint = {fingerprint}\n"
                "push_url = https://qlvb.example/cb"
            )
        self.assertIn("push_url", str(caught.exception))
        conf = self.load(
            f"organ_ids = {HOSTED_H23}\ntoken_file = t\npush_url = http://qlvb.example/cb"
        )
        self.assertIn("push_url", " ".join(str(w) for w in conf.warnings))
        local = self.load(
            f"organ_ids = {HOSTED_H23}\ntoken_file = t\npush_url = http://127.0.0.1:9000/cb"
        )
        self.assertNotIn("push_url", " ".join(str(w) for w in local.warnings))
