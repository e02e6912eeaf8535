"""The exchange face: peer nodes and axes call `Deliver` here over mutual TLS (floor 6).

Per request: who is calling (the TLS layer has verified the client chain; the leaf's SHA-256
must be a known node's when a list is configured) → the body, capped before parsing → hardened
SOAP parse and contract validation → the Package bytes → `IInbound.accept` → the receipt, which
the inbound hands out only after COMMIT. The body is parsed from the file twisted.web spooled it
to, in pieces, and the Package's base64 is decoded as it is parsed: the package's bytes exist
once, its base64 text never (a package of E bytes costs ≈ E, where request bytes, tree text,
its str, the decoded parts and their join cost over 5 E). Refusals are typed SOAP faults;
anything unexpected is `Unavailable`, so the sender retries instead of giving up on a package
we failed to take.

The body cap has two layers: `exchange_site()` builds requests that stop keeping bytes past the
cap while the body arrives (twisted.web alone buffers any size to disk), and the resource
refuses a body over the cap with `TooLarge` before any parse.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import IO, Any, cast
from urllib.parse import urlunsplit

import attrs
from cryptography import x509
from cryptography.x509.oid import NameOID

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from edxml.xmlsafe import DEFAULT_LIMITS, Limits
from gateway import soap
from gateway.auth import RateLimiter, too_many
from gateway.interfaces import IInbound, Peer
from gateway.soap import Face, FaultCode, GatewayFault, SoapResponse, SoapVersion
from gateway.tls import fingerprint, peer_certificate

__all__ = ["CappedRequest", "ExchangeResource", "exchange_site", "normal_fingerprint"]

_PACKAGE = f"{{{soap.EXCHANGE_NS}}}Package"
_RECIPIENT = f"{{{soap.EXCHANGE_NS}}}Recipient"


def normal_fingerprint(text: str) -> str:
    """SHA-256 fingerprints compare as lowercase hex without separators."""
    return text.replace(":", "").strip().lower()


class CappedRequest(Request):
    """A request that keeps at most `max_body + 1` body bytes: enough to know it is too big."""

    max_body: int = DEFAULT_LIMITS.max_bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body_seen = 0

    def handleContentChunk(self, data: bytes) -> None:
        room = self.max_body + 1 - self.body_seen
        self.body_seen += len(data)
        if room > 0:
            super().handleContentChunk(data[:room])


def exchange_site(resource: Resource, *, max_body: int, timeout: float = 60.0) -> Site:
    """A Site for the exchange face whose requests cap their body at `max_body` bytes."""
    limit = max_body

    class Capped(CappedRequest):
        max_body = limit

    site = Site(resource, timeout=timeout)
    site.requestFactory = Capped
    return site


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


class ExchangeResource(Resource):
    """POST `Deliver` (SOAP 1.1 or 1.2); GET `?wsdl` and `?xsd=exchange.xsd`."""

    isLeaf = True
    log = Logger()

    def __init__(
        self,
        inbound: IInbound,
        *,
        known_fingerprints: frozenset[str] | None,
        peer_names: Mapping[str, str] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        address: str | None = None,
        reactor: Any = None,
        rate: float = 0.0,
        clock: Any = None,
    ) -> None:
        """`peer_names` maps a fingerprint to the route name shown in Peer (else the leaf's CN);
        `address` is the URL the WSDL names (else the request's own); with `reactor`, parsing
        runs in its thread pool instead of the reactor thread, and `rate` (Deliver calls per
        second per peer certificate, `[limits] exchange_rate`; 0 no limit) runs on `clock` (else
        the reactor's)."""
        super().__init__()
        clock = clock or reactor
        if rate > 0 and clock is None:
            raise ValueError("a rate limit needs a clock")
        self._limiter = RateLimiter(rate, clock) if rate > 0 else None
        self._inbound = inbound
        self._known = (
            None
            if known_fingerprints is None
            else frozenset(normal_fingerprint(f) for f in known_fingerprints)
        )
        self._names = {normal_fingerprint(k): v for k, v in (peer_names or {}).items()}
        self._limits = limits
        # The SOAP request carries the package as base64 inside framing: its own, larger cap.
        self._request_limits = attrs.evolve(limits, max_bytes=soap.request_limit(limits.max_bytes))
        self._address = address
        self._reactor = reactor

    # --- GET: the contract ---

    def render_GET(self, request: Request) -> bytes:
        args: dict[bytes, list[bytes]] = request.args or {}
        # twisted.web drops a bare `?wsdl` from args (no value), so the raw query is read too.
        query = request.uri.partition(b"?")[2].lower().split(b"&")
        if b"wsdl" in query or b"wsdl" in args:
            request.setHeader(b"content-type", b"text/xml; charset=utf-8")
            return soap.served_wsdl(Face.EXCHANGE, self._address or _own_address(request))
        if args.get(b"xsd") == [Face.EXCHANGE.xsd_name.encode()]:
            request.setHeader(b"content-type", b"text/xml; charset=utf-8")
            return soap.xsd_bytes(Face.EXCHANGE)
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return "Use ?wsdl / Dùng ?wsdl\n".encode()

    # --- POST: Deliver ---

    def render_POST(self, request: Request) -> object:
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        d = Deferred.fromCoroutine(self._deliver(request))
        d.addCallback(self._write, request, gone)
        d.addErrback(self._broken, request, gone)
        return NOT_DONE_YET

    async def _deliver(self, request: Request) -> SoapResponse:
        content_type = _header(request, b"content-type")
        version = soap.version_of(content_type)
        peer_fp: str | None = None
        try:
            peer = self._peer(request)
            peer_fp = peer.fingerprint
            if self._limiter is not None and not self._limiter.allow(peer.fingerprint or ""):
                self.log.warn(
                    "peer {peer} over its rate limit", peer=peer.name, rate=self._limiter.rate
                )
                raise too_many(self._limiter.rate, "this node", "nút này")
            body = self._body(request)
            action = _header(request, b"soapaction")
            version, package, recipients = await self._run(self._decode, body, content_type, action)
            receipt = await self._inbound.accept(package, peer, recipients or None)
            return soap.ok_response(version, soap.deliver_response(receipt))
        except GatewayFault as refusal:
            self.log.info(
                "Deliver refused: {code}", code=refusal.code.value, peer_fingerprint=peer_fp
            )
            return soap.fault_response(version, refusal, Face.EXCHANGE)
        except Exception:
            self.log.failure("Deliver failed unexpectedly", peer_fingerprint=peer_fp)
            return soap.fault_response(version, GatewayFault(FaultCode.UNAVAILABLE), Face.EXCHANGE)

    def _peer(self, request: Request) -> Peer:
        cert = peer_certificate(request.transport)
        if cert is None:
            raise GatewayFault(
                FaultCode.UNAUTHORIZED,
                "a TLS client certificate of a known node is required",
                "Cần chứng thư TLS của một nút đã đăng ký",
            )
        print_ = fingerprint(cert)
        if self._known is not None and print_ not in self._known:
            raise GatewayFault(
                FaultCode.UNAUTHORIZED,
                "this client certificate is not one of a known node",
                "Chứng thư TLS này không thuộc nút nào đã đăng ký",
            )
        return Peer(
            kind="node", name=self._names.get(print_) or _common_name(cert), fingerprint=print_
        )

    def _body(self, request: Request) -> IO[bytes]:
        """The request body as the file twisted.web holds it (memory when small, a temporary
        file otherwise), checked against the cap before anything parses it."""
        cap = self._request_limits.max_bytes
        seen = getattr(request, "body_seen", None)
        declared = _header(request, b"content-length")
        too_big = seen is not None and seen > cap
        if declared is not None and declared.isdigit() and int(declared) > cap:
            too_big = True
        # twisted.web declares `content` as None on the class; a request with a body has a file.
        content = cast("IO[bytes] | None", request.content)
        if content is None:
            content = io.BytesIO()
        if not too_big:
            too_big = content.seek(0, io.SEEK_END) > cap
            content.seek(0)
        if too_big:
            raise GatewayFault(
                FaultCode.TOO_LARGE,
                f"the request exceeds the limit of {cap} bytes",
                f"Yêu cầu vượt quá giới hạn {cap} byte",
            )
        return content

    def _decode(
        self, body: IO[bytes], content_type: str | None, action: str | None
    ) -> tuple[SoapVersion, bytes, tuple[str, ...]]:
        parsed = soap.parse_request(
            body, content_type, action, limits=self._request_limits, payload=_PACKAGE
        )
        soap.validate(parsed.body_element, Face.EXCHANGE)
        data = parsed.payload
        if data is None:  # validate() makes this unreachable; kept for the type checker
            raise soap.bad_request("Deliver without Package", "Deliver thiếu Package", "/Deliver")
        if len(data) > self._limits.max_bytes:
            raise GatewayFault(
                FaultCode.TOO_LARGE,
                f"the package of {len(data)} bytes exceeds the limit of {self._limits.max_bytes}",
                f"Gói tin {len(data)} byte vượt quá giới hạn {self._limits.max_bytes} byte",
            )
        recipients = tuple(
            dict.fromkeys((e.text or "").strip() for e in parsed.body_element.iterfind(_RECIPIENT))
        )
        return parsed.version, data, recipients

    async def _run(
        self, fn: Callable[..., tuple[SoapVersion, bytes, tuple[str, ...]]], *args: Any
    ) -> tuple[SoapVersion, bytes, tuple[str, ...]]:
        if self._reactor is None:
            return fn(*args)
        result: tuple[SoapVersion, bytes, tuple[str, ...]] = await deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), fn, *args
        )
        return result

    def _write(self, answer: SoapResponse, request: Request, gone: list[Failure]) -> None:
        if gone:
            # The peer hung up; what it sent is committed (or not) all the same, and a resend
            # is answered as a Duplicate with the first receipt.
            self.log.info("Deliver client went away before the answer")
            return
        request.setResponseCode(answer.status)
        request.setHeader(b"content-type", answer.content_type.encode("ascii"))
        request.setHeader(b"content-length", str(len(answer.body)).encode("ascii"))
        request.write(answer.body)
        request.finish()

    def _broken(self, failure: Failure, request: Request, gone: list[Failure]) -> None:
        self.log.failure("Deliver answer could not be written", failure)
        if not gone:
            request.setResponseCode(500)
            request.finish()


def _header(request: Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


def _own_address(request: Request) -> str:
    scheme = "https" if request.isSecure() else "http"
    host = request.getHeader(b"host")
    if host is None:
        address = request.getHost()
        host = f"{address.host}:{address.port}".encode()
    return urlunsplit((scheme, host.decode("latin-1"), request.path.decode("latin-1"), "", ""))
