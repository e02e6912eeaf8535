"""Transports: one stored package goes to one peer (floor 3).

`SoapTransport` calls a peer's exchange face (`Deliver`, SOAP 1.1) over mutual TLS with treq;
`LocalTransport` hands the bytes to this node's own inbound, without a network hop. Both answer
with the peer's receipt or raise `TransientFailure` (worth retrying later) or `PermanentFailure`
(retrying cannot help), so the dispatcher never sees HTTP, SOAP or TLS.

A `Duplicate` refusal is success for the sender: the peer already holds the package, and its
fault carries the receipt of the first copy.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from typing import Any

import attrs
from lxml import etree
from zope.interface import implementer

import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred, DeferredLock
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from edxml import xmlsafe
from edxml.errors import EdxmlError
from edxml.xmlsafe import Limits
from gateway import soap
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
from gateway.soap import EXCHANGE_NS, Face, FaultCode, GatewayFault, Receipt, SoapVersion
from gateway.store import Store
from gateway.tls import ClientPolicy, TlsMaterial

__all__ = [
    "LocalTransport",
    "SoapTransport",
    "UploadOnce",
    "awaitable_receipt",
    "deliver_request",
    "outcome_of_fault",
    "parse_deliver_answer",
]

# A response is a receipt or a fault: small. A peer that answers megabytes is not a peer.
RESPONSE_LIMITS = Limits(max_bytes=1 << 20, max_depth=32, max_elements=10_000)


def deliver_request(payload: bytes, recipients: Sequence[str] = ()) -> bytes:
    """The SOAP 1.1 `Deliver` request carrying `payload` (the exact stored bytes) as base64,
    for `recipients` (none: every addressee)."""
    element = etree.Element(f"{{{EXCHANGE_NS}}}Deliver", nsmap={"gw": EXCHANGE_NS})
    etree.SubElement(element, f"{{{EXCHANGE_NS}}}Package").text = base64.b64encode(payload).decode(
        "ascii"
    )
    for organ_id in recipients:
        etree.SubElement(element, f"{{{EXCHANGE_NS}}}Recipient").text = organ_id
    return soap.envelope(SoapVersion.SOAP11, element)


def _transport_receipt(receipt: Receipt) -> TransportReceipt:
    return TransportReceipt(receipt.receipt_id, receipt.received_at, receipt.duplicate)


def outcome_of_fault(fault: GatewayFault) -> TransportReceipt:
    """What a peer's refusal means for the sender: `Duplicate` with its first receipt is a
    success; `Unavailable` is transient; every other code is permanent."""
    if fault.code is FaultCode.DUPLICATE and fault.first_receipt is not None:
        return attrs.evolve(_transport_receipt(fault.first_receipt), duplicate=True)
    if fault.code is FaultCode.UNAVAILABLE:
        raise TransientFailure(str(fault))
    raise PermanentFailure(str(fault), fault.code.value)


@implementer(ITransport)
class LocalTransport:
    """A recipient hosted on this node: the package goes straight to our own inbound."""

    log = Logger()

    def __init__(self, inbound: IInbound) -> None:
        self._inbound = inbound

    async def deliver(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        try:
            receipt = await self._inbound.accept(
                payload, Peer(kind="local", name="local"), (package.recipient,)
            )
        except GatewayFault as fault:
            return outcome_of_fault(fault)
        except CancelledError:
            raise
        except Exception as exc:
            # Our own inbound failing unexpectedly (disk, bug) is worth another try later.
            self.log.failure(
                "local delivery {delivery_id} failed unexpectedly", delivery_id=package.delivery_id
            )
            raise TransientFailure(f"local inbound failed: {type(exc).__name__}") from exc
        return _transport_receipt(receipt)


# --------------------------------------------------------------------------------- SOAP


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else (found.text or "")


def _receipt_of(element: etree._Element) -> Receipt:
    ns = f"{{{EXCHANGE_NS}}}"
    receipt_id = _text(element, f"{ns}ReceiptId")
    message_id = _text(element, f"{ns}MessageId")
    received_at = _text(element, f"{ns}ReceivedAt")
    duplicate = _text(element, f"{ns}Duplicate")
    if not receipt_id or received_at is None:
        raise ValueError("receipt without ReceiptId or ReceivedAt")
    when = dt.datetime.fromisoformat(received_at)
    if when.tzinfo is None:
        raise ValueError("receipt time without an offset")
    return Receipt(receipt_id, message_id or "", when, duplicate in {"true", "1"})


def parse_deliver_answer(status: int, body: bytes) -> TransportReceipt:
    """Read the peer's answer to `Deliver`: a receipt, or our GatewayFault detail mapped by
    `outcome_of_fault`. Anything else (an error page of any status, garbage, a fault without
    our detail) is transient: a proxy or a peer restarting says nothing about the package."""
    try:
        root = xmlsafe.parse(body, limits=RESPONSE_LIMITS)
    except EdxmlError:
        root = None
    if root is not None:
        ns = f"{{{EXCHANGE_NS}}}"
        if status == 200:
            found = root.find(f".//{ns}DeliverResponse/{ns}Receipt")
            if found is not None:
                try:
                    return _transport_receipt(_receipt_of(found))
                except ValueError as exc:
                    raise TransientFailure(f"unreadable receipt: {exc}") from None
        detail = root.find(f".//{ns}GatewayFault")
        if detail is not None:
            return outcome_of_fault(_fault_of(detail))
    if status == 200:
        raise TransientFailure("HTTP 200 without a DeliverResponse receipt")
    raise TransientFailure(f"HTTP {status} without a gateway fault")


def _fault_of(detail: etree._Element) -> GatewayFault:
    ns = f"{{{EXCHANGE_NS}}}"
    code_text = _text(detail, f"{ns}Code") or ""
    try:
        code = FaultCode(code_text)
    except ValueError:
        # A code from a newer contract: the peer refused, and we cannot tell why it would pass.
        code = FaultCode.RULE_VIOLATION
    first: Receipt | None = None
    found = detail.find(f"{ns}FirstReceipt")
    if found is not None:
        try:
            first = _receipt_of(found)
        except ValueError:
            first = None
    return GatewayFault(
        code, _text(detail, f"{ns}MessageEn"), _text(detail, f"{ns}MessageVi"), first_receipt=first
    )


@implementer(ITransport)
class SoapTransport:
    """`Deliver` on a peer's exchange face over mutual TLS, bounded by `route.timeout`."""

    log = Logger()

    def __init__(
        self,
        route: RouteConfig,
        material: TlsMaterial,
        *,
        reactor: Any,
        pool: HTTPConnectionPool | None = None,
    ) -> None:
        if route.url is None:
            raise ValueError(f"route {route.name} has no url")
        self._route = route
        self._url = route.url
        self._reactor = reactor
        agent = Agent(reactor, contextFactory=ClientPolicy(material), pool=pool)
        self._http = HTTPClient(agent)

    async def _post(self, payload: bytes, recipient: str) -> tuple[int, bytes]:
        response = await self._http.post(
            self._url,
            data=deliver_request(payload, (recipient,)),
            headers=Headers(
                {
                    "Content-Type": [SoapVersion.SOAP11.content_type],
                    "SOAPAction": [f'"{Face.EXCHANGE.action("Deliver")}"'],
                }
            ),
        )
        body: bytes = await treq.content(response)
        return response.code, body

    async def deliver(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        attempt: Deferred[tuple[int, bytes]] = Deferred.fromCoroutine(
            self._post(payload, package.recipient)
        )
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            attempt.cancel()

        # Not addTimeout: a cancelled treq request fails with ResponseNeverReceived, not
        # CancelledError, so the timeout is known by this flag instead.
        timer = self._reactor.callLater(self._route.timeout, expire)
        try:
            status, body = await attempt
        except Exception as exc:
            if expired:
                raise TransientFailure(f"no answer within {self._route.timeout:g}s") from None
            # Refused, reset, DNS, TLS handshake: the network's problem, not the package's.
            self.log.info(
                "delivery {delivery_id} on route {route} failed: {error}",
                delivery_id=package.delivery_id,
                route=self._route.name,
                error=type(exc).__name__,
            )
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from None
        finally:
            if timer.active():
                timer.cancel()
        return parse_deliver_answer(status, body)


def awaitable_receipt(value: Awaitable[TransportReceipt]) -> Deferred[TransportReceipt]:
    """A transport's answer as a Deferred (a coroutine or a Deferred), so it can be cancelled."""
    if isinstance(value, Deferred):
        return value

    async def wrap() -> TransportReceipt:
        return await value

    return Deferred.fromCoroutine(wrap())


class UploadOnce:
    """A route to a store-and-forward service (an axis, a hub) that addresses an upload by all
    its `To` elements: one upload serves every recipient of the message on the route. The first
    delivery uploads; the others (at the same time, later, or after a restart, from the store)
    are answered with its receipt. Subclasses implement `_upload`."""

    REMEMBERED = 10_000  # messages whose upload receipt is kept in memory

    def __init__(self, route: RouteConfig, *, clock: Any, store: Store | None = None) -> None:
        self._route = route
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

    async def _upload(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        raise NotImplementedError

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
