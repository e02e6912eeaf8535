"""/metrics (R22's monitoring side): Prometheus text from a real store, served beside the office
face on a real loopback Site, only to the bearer of the metrics token."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from nodekit import HOSTED_H23, REMOTE_G22, NodeKit

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from gateway.config import Secret
from gateway.interfaces import Peer
from gateway.metrics import CertExpiry, MetricsResource, WithMetrics

TOKEN = "metrics-token-0123456789abcdef"


class Face(Resource):
    isLeaf = True

    def render_GET(self, request: object) -> bytes:
        return b"the office face"


class MetricsTests(TestCase):
    def setUp(self) -> None:
        self.kit = NodeKit.create(Path(self.mktemp()), reactor=reactor)
        self.addCleanup(self.kit.stop)
        expiry = CertExpiry(
            "agency-seal", HOSTED_H23, "CN=UBND", self.kit.now() + dt.timedelta(days=10)
        )
        metrics = MetricsResource(
            self.kit.store,
            Secret(TOKEN),
            clock=self.kit.clock,
            certificates=[expiry],
            extra=lambda: [("gateway_ocsp_answers_cached", {}, 3.0)],
        )
        site = Site(WithMetrics(Face(), metrics), timeout=None)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    async def get(self, path: str, token: str | None = TOKEN) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await treq.get(self.base + path, headers=headers, persistent=False)
        return response.code, (await response.text())

    async def test_R22_metrics_report_queues_inbox_and_certificates(self) -> None:
        outbound = self.kit.outbound()
        await outbound.submit_envelope(
            self.kit.envelope(HOSTED_H23, [REMOTE_G22]), self.kit.office()
        )
        await self.kit.inbound(outbound).accept(
            self.kit.signed_envelope(REMOTE_G22, [HOSTED_H23], number="77"),
            Peer("node", "vpcp", "ab" * 32),
        )
        self.kit.clock.advance(120)
        code, text = await self.get("/metrics")
        self.assertEqual(code, 200)
        self.assertIn('gateway_deliveries{state="queued",route="vpcp"} 2', text)  # envelope and 01
        self.assertIn('gateway_delivery_oldest_seconds{route="vpcp"} 120', text)
        self.assertIn(f'gateway_inbox_pending{{organ_id="{HOSTED_H23}"}} 1', text)
        self.assertIn(f'gateway_inbox_oldest_seconds{{organ_id="{HOSTED_H23}"}} 120', text)
        self.assertIn('gateway_messages{direction="in",kind="envelope",state="received"} 1', text)
        self.assertIn(
            "gateway_certificate_expiry_seconds"
            f'{{role="agency-seal",of="{HOSTED_H23}",subject="CN=UBND"}} 863880',
            text,
        )
        self.assertIn("gateway_ocsp_answers_cached 3", text)
        self.assertIn("# TYPE gateway_deliveries gauge", text)

    async def test_only_the_bearer_of_the_token(self) -> None:
        self.assertEqual((await self.get("/metrics", token=None))[0], 401)
        self.assertEqual((await self.get("/metrics", token="wrong-token-0123456789abcdef"))[0], 401)

    async def test_every_other_path_is_the_office_face(self) -> None:
        self.assertEqual(await self.get("/office", token=None), (200, "the office face"))
        self.assertEqual(await self.get("/metrics/x", token=None), (200, "the office face"))
        self.assertEqual(await self.get("/", token=None), (200, "the office face"))
