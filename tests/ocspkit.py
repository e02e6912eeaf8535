"""OCSP for tests: certificates that name a responder, answers signed as a CA would, and a real
responder on loopback (stdlib HTTP server in a thread) that misbehaves on request.

    responder = Responder(issuer)                    # answers for `issuer`'s certificates
    responder.start(); self.addCleanup(responder.stop)
    leaf = with_ocsp("seal", subject, issuer, responder.url)
    responder.revoke(leaf.cert)                      # or .mode = "try_later" | "garbage" | ...
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from gateway.devpki import SIGNER_EKU, Issued, issue, key_usage

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def aia(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
            )
        ]
    )


def with_ocsp(
    name: str,
    subject: x509.Name,
    issuer: Issued,
    url: str,
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A signing certificate by `issuer` whose AIA names the responder at `url`."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return issue(
        name,
        subject,
        issuer=issuer,
        not_before=not_before or now - 30 * DAY,
        not_after=not_after or now + 365 * DAY,
        extended=SIGNER_EKU,
        extensions=(aia(url),),
    )


def delegate(issuer: Issued, *, ocsp_signing: bool = True, name: str = "ocsp") -> Issued:
    """A responder certificate issued by `issuer` (with id-kp-OCSPSigning unless told not to)."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    purposes = (
        (ExtendedKeyUsageOID.OCSP_SIGNING,) if ocsp_signing else (ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    return issue(
        name,
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"{name} responder")]),
        issuer=issuer,
        not_before=now - DAY,
        not_after=now + 365 * DAY,
        usage=key_usage(sign=True),
        extended=purposes,
    )


@attrs.frozen
class Entry:
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD
    revoked_at: datetime.datetime | None = None
    reason: x509.ReasonFlags | None = None


def answer(
    cert: x509.Certificate,
    issuer: Issued,
    entry: Entry = Entry(),
    *,
    signer: Issued | None = None,
    this_update: datetime.datetime | None = None,
    next_update: datetime.datetime | bool | None = True,
    algorithm: hashes.HashAlgorithm | None = None,
    by_hash: bool = False,
    signer_as_issuer: Issued | None = None,
    now: datetime.datetime | None = None,
) -> bytes:
    """A DER OCSP response about `cert`: signed by `issuer` or by `signer` (a delegate, which is
    then embedded and named by key hash when `by_hash`). `next_update=True` is an hour ahead,
    False or None omits it. `signer_as_issuer` signs in the
    issuer's name without embedding itself (a forgery, when it is not the issuer)."""
    now = now or datetime.datetime.now(datetime.UTC)
    this = this_update or now - HOUR
    nxt = this + 2 * HOUR if next_update is True else (next_update or None)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=issuer.cert,
        algorithm=algorithm or hashes.SHA1(),
        cert_status=entry.status,
        this_update=this,
        next_update=nxt,
        revocation_time=entry.revoked_at,
        revocation_reason=entry.reason,
    )
    who = signer or signer_as_issuer or issuer
    encoding = ocsp.OCSPResponderEncoding.HASH if by_hash else ocsp.OCSPResponderEncoding.NAME
    builder = builder.responder_id(encoding, who.cert)
    if signer is not None:
        builder = builder.certificates([signer.cert])
    response = builder.sign(who.key, hashes.SHA256())  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)


def unsuccessful(status: ocsp.OCSPResponseStatus = ocsp.OCSPResponseStatus.TRY_LATER) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


MODES = ("answer", "try_later", "garbage", "http500", "hang")


class Responder:
    """A real OCSP responder on 127.0.0.1 for one issuing CA, in a daemon thread.

    `mode`: "answer" (the default), "try_later" (a signed-off unsuccessful response), "garbage"
    (200 with bytes that are no OCSP), "http500", "hang" (reads the request, never answers until
    stopped). `requests` lists the serial of each request that arrived. Answers are dated by
    `now` (default: the wall clock), so that a test clock and the responder agree.
    """

    def __init__(
        self,
        issuer: Issued,
        *,
        signer: Issued | None = None,
        now: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self.issuer = issuer
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC))
        self.signer = signer
        self.mode = "answer"
        self.entries: dict[int, Entry] = {}
        self.requests: list[int] = []
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.certs: dict[int, x509.Certificate] = {}

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/ocsp"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def know(self, *certs: x509.Certificate) -> None:
        for cert in certs:
            self.certs[cert.serial_number] = cert

    def revoke(self, cert: x509.Certificate, at: datetime.datetime | None = None) -> None:
        self.know(cert)
        when = at or self.now() - 2 * HOUR
        self.entries[cert.serial_number] = Entry(
            ocsp.OCSPCertStatus.REVOKED, when, x509.ReasonFlags.key_compromise
        )

    def respond(self, body: bytes) -> tuple[int, bytes]:
        request = ocsp.load_der_ocsp_request(body)
        serial = request.serial_number
        self.requests.append(serial)
        if self.mode == "try_later":
            return 200, unsuccessful()
        if self.mode == "garbage":
            return 200, b"this is not an OCSP response"
        if self.mode == "http500":
            return 500, b"internal error"
        cert = self.certs.get(serial)
        if cert is None:
            return 200, unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        entry = self.entries.get(serial, Entry())
        return 200, answer(cert, self.issuer, entry, signer=self.signer, now=self.now())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if responder.mode == "hang":
                    responder._release.wait(60)
                    return
                code, data = responder.respond(body)
                self.send_response(code)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def requested(responder: Responder, certs: Sequence[x509.Certificate]) -> list[int]:
    """How many requests arrived for each of `certs`, in order."""
    return [responder.requests.count(c.serial_number) for c in certs]
