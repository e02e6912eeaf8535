"""The daemon, composed (floor 7): store, both faces, the dispatcher, from one configuration.

`Node` owns every long-lived part and starts and stops them in order: the store first (it must
drain last), then the dispatcher, then the faces that accept work. Nothing here decides anything;
it only wires the pieces that the lower floors test one by one. The reactor is injected.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

from zope.interface import implementer

from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource
from twisted.web.server import Site

from gateway import certcheck, hubroute
from gateway.axis import AxisClock, AxisPuller, DirectorySync, VxpTransport
from gateway.blobs import BlobStore
from gateway.calendar import OfficeCalendar
from gateway.config import Config, RouteConfig, Transport
from gateway.dispatch import Dispatcher
from gateway.exchange import ExchangeResource, exchange_site
from gateway.inbound import Inbound
from gateway.interfaces import IOutbound, ITransport
from gateway.metrics import CertExpiry, MetricsResource, WithMetrics
from gateway.ocspclient import OcspClient
from gateway.office import OfficeResource
from gateway.outbound import Outbound
from gateway.periodic import Periodic
from gateway.pulling import PullLoop
from gateway.push import EVERY, OfficePusher
from gateway.retention import Maintenance
from gateway.router import Router
from gateway.soap import GatewayFault, request_limit
from gateway.store import Store
from gateway.tls import TlsMaterial, server_options
from gateway.transports import LocalTransport, SoapTransport
from gateway.vxpclient import VxpClient


def tls_material(config: Config, route_tls: Any = None) -> TlsMaterial:
    tls = route_tls or config.node.tls
    trusted = [tls.ca] if tls.ca is not None else []
    return TlsMaterial.from_files(tls.key, tls.cert, trusted)


class Node:
    """One running gateway node."""

    log = Logger()

    def __init__(self, config: Config, *, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.ports: dict[str, Any] = {}
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        self.axis_loops: list[PullLoop | DirectorySync] = []
        self.axis_clock: AxisClock | None = None
        self.maintenance: Maintenance | None = None
        self.pushes: list[Periodic] = []
        self.pool = ThreadPool(minthreads=1, maxthreads=4, name="edxml-cpu")

    async def start(self) -> None:
        config, reactor = self.config, self.reactor
        node = config.node
        node.data_dir.mkdir(parents=True, exist_ok=True)
        self.pool.start()
        self.store = Store.open(node.db_path, reactor=reactor, blobs=node.blobs_dir)
        blobs = BlobStore(node.blobs_dir)
        await reactor_thread(reactor, blobs.sweep_tmp)
        router = Router(config)
        outbound = Outbound(config, self.store, blobs, router, clock=reactor, pool=self.pool)
        ocsp = OcspClient.for_reactor(reactor, config.trust.ocsp)
        inbound = Inbound(
            config,
            self.store,
            blobs,
            outbound,
            router,
            clock=reactor,
            pool=self.pool,
            ocsp=ocsp,
        )
        transports: dict[str, ITransport] = {}
        self.axis_clock = AxisClock(self.store, clock=reactor)
        for route in config.routes:
            if route.transport is Transport.LOCAL:
                transports[route.name] = LocalTransport(inbound)
            elif route.transport is Transport.SOAP:
                transports[route.name] = SoapTransport(
                    route, tls_material(config, route.tls), reactor=reactor
                )
            elif route.transport is Transport.VXP:
                client = self._vxp_client(route)
                transports[route.name] = VxpTransport(
                    route, client, clock=reactor, store=self.store
                )
                if route.pull_interval is not None:
                    self.axis_loops.append(
                        AxisPuller(route, client, inbound, self.store, clock=reactor)
                    )
                if route.directory_sync is not None:
                    self.axis_loops.append(
                        DirectorySync.of_axis(route, client, self.store, clock=reactor)
                    )
            elif route.transport is Transport.EDOC_HUB:
                self._hub_route(route, transports, inbound, router)
        self.dispatcher = Dispatcher(
            self.store,
            blobs,
            transports,
            config.retry,
            reactor=reactor,
            random=random.SystemRandom().random,
            concurrency={r.name: r.max_concurrency for r in config.routes},
            interval=1.0,
            ack_due=OfficeCalendar(config.calendar).end_of_working_day,
        )
        await self.dispatcher.start()
        self.maintenance = Maintenance(config, self.store, reactor=reactor)
        self.maintenance.start()
        for credential in config.offices:
            if credential.push_url is not None and credential.token is not None:
                pusher = OfficePusher(credential, self.store, clock=reactor)
                self.pushes.append(
                    Periodic(
                        f"push to {credential.name}", pusher.push_once, every=EVERY, clock=reactor
                    )
                )
        for periodic in self.pushes:
            periodic.start()
        for loop in self.axis_loops:
            if isinstance(loop, PullLoop):
                loop.set_after_round(self.dispatcher.poke)
            loop.start()
        known, peer_names = config.known_peers()
        exchange = ExchangeResource(
            inbound,
            known_fingerprints=known,
            peer_names=peer_names,
            limits=config.limits.xml_limits(),
            address=node.exchange_url,
            reactor=reactor,
            rate=config.limits.exchange_rate,
        )
        max_body = request_limit(config.limits.max_envelope_bytes)
        site = exchange_site(exchange, max_body=max_body)
        tls_factory = TLSMemoryBIOFactory(server_options(tls_material(config)), False, site)
        self.ports["exchange"] = await endpoints.serverFromString(
            reactor, node.exchange_listen
        ).listen(tls_factory)
        office = OfficeResource(
            config, self.store, blobs, _Poking(outbound, self.dispatcher), reactor=reactor
        )
        office_factory: Any = Site(self._with_metrics(office, ocsp))
        if node.office_tls is not None:
            # Office systems may present a client certificate (client_cert_fingerprint
            # credentials); it is verified against office_tls_ca when offered.
            office_factory = TLSMemoryBIOFactory(
                server_options(tls_material(config, node.office_tls), require_client=False),
                False,
                office_factory,
            )
        self.ports["office"] = await endpoints.serverFromString(reactor, node.office_listen).listen(
            office_factory
        )
        self.log.info(
            "node {name} serving office {office} and exchange {exchange}",
            name=node.name,
            office=node.office_url,
            exchange=node.exchange_url,
        )

    def _with_metrics(self, office: Resource, ocsp: OcspClient | None) -> Resource:
        """The office site, with /metrics when [metrics] names a token."""
        token = self.config.metrics_token
        if token is None or self.store is None:
            return office
        now = datetime.datetime.now(datetime.UTC)
        report = certcheck.check(self.config, now=now)
        certificates = [
            CertExpiry(c.role, c.subject_of, c.subject or str(c.path), c.not_after)
            for c in report.statuses
            if c.kind == "certificate" and c.not_after is not None
        ]

        def extra() -> list[tuple[str, dict[str, object], float]]:
            cached = len(ocsp.known()) if ocsp is not None else 0
            return [("gateway_ocsp_answers_cached", {}, float(cached))]

        metrics = MetricsResource(
            self.store, token, clock=self.reactor, certificates=certificates, extra=extra
        )
        return WithMetrics(office, metrics)

    def _hub_route(
        self,
        route: RouteConfig,
        transports: dict[str, ITransport],
        inbound: Inbound,
        router: Router,
    ) -> None:
        assert self.store is not None
        limits = self.config.limits
        # A GetDocument answer holds the files twice (as parts, and in the signed envelope
        # as Base64), the parts' Base64 text too.
        client = hubroute.hub_client(
            route,
            reactor=self.reactor,
            max_document_bytes=3 * limits.max_envelope_bytes,
            clock_observer=self.axis_clock.observer(route) if self.axis_clock else None,
        )

        def serves(organ_id: str) -> bool:
            try:
                return router.route_for(organ_id).name == route.name
            except GatewayFault:
                return False

        transports[route.name] = hubroute.HubTransport(
            route, client, clock=self.reactor, store=self.store, serves=serves, pool=self.pool
        )
        account = self.config.agency(route.account or "")
        if route.pull_interval is not None:
            self.axis_loops.append(
                hubroute.HubPuller(
                    route,
                    client,
                    inbound,
                    self.store,
                    clock=self.reactor,
                    account_name=account.name if account is not None else "",
                )
            )
        if route.directory_sync is not None:
            self.axis_loops.append(
                hubroute.hub_directory_sync(route, client, self.store, clock=self.reactor)
            )
        Deferred.fromCoroutine(hubroute.probe(route, client, self.store, clock=self.reactor))

    def _vxp_client(self, route: RouteConfig) -> VxpClient:
        assert route.url is not None and route.system_id is not None and route.secret is not None
        return VxpClient(
            route.url,
            route.system_id,
            route.secret.reveal().encode(),
            reactor=self.reactor,
            timeout=route.timeout,
            max_edoc_bytes=self.config.limits.max_envelope_bytes,
            clock_observer=self.axis_clock.observer(route) if self.axis_clock else None,
        )

    async def stop(self) -> None:
        for port in self.ports.values():
            await port.stopListening()
        for loop in self.axis_loops:
            await loop.stop()
        for periodic in self.pushes:
            await periodic.stop()
        if self.maintenance is not None:
            await self.maintenance.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.store is not None:
            await self.store.stop()
        self.pool.stop()
        self.log.info("node {name} stopped", name=self.config.node.name)


@implementer(IOutbound)
class _Poking:
    """Outbound as the office face sees it, waking the dispatcher as soon as work is queued."""

    def __init__(self, outbound: Outbound, dispatcher: Dispatcher) -> None:
        self._outbound = outbound
        self._dispatcher = dispatcher

    async def submit_envelope(
        self, package: bytes, office: Any, reference: str | None = None
    ) -> Any:
        result = await self._outbound.submit_envelope(package, office, reference)
        self._dispatcher.poke()
        return result

    async def submit_status(self, packet: Any, recipient: str, **kw: Any) -> Any:
        result = await self._outbound.submit_status(packet, recipient, **kw)
        self._dispatcher.poke()
        return result


async def reactor_thread(reactor: Any, fn: Any) -> Any:
    from twisted.internet.threads import deferToThreadPool

    return await deferToThreadPool(reactor, reactor.getThreadPool(), fn)
