"""A real node core in a temp dir, for tests: dev PKI, gateway.conf, Store, BlobStore, pools.

    kit = NodeKit.create(Path(tmp), reactor=reactor)     # in a trial TestCase (real reactor)
    self.addCleanup(kit.stop)                            # returns a Deferred: trial waits for it
    data = kit.envelope(REMOTE_G22, [HOSTED_H23])        # unsigned edXML bytes
    signed = kit.sign_as(REMOTE_G22, data)               # sealed by that agency's dev seal

The dev PKI (one root, one issuing CA, a seal for every agency in `AGENCIES`, hosted or not) is
generated once per test process and written into each kit's directory: RSA key generation is the
slow part. Hosted agencies are `HOSTED`; `REMOTE` agencies live behind the soap route `vpcp`, whose
envelope-signature policy a test chooses. Time comes from a `task.Clock` the kit owns (`kit.clock`,
started at `T0`), so nothing depends on the wall clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool

from edxml import reader, signature, writer
from edxml.codes import Priority
from edxml.model import Envelope, Organization
from gateway import devpki
from gateway.blobs import BlobStore
from gateway.config import Config, OfficeConfig, loads
from gateway.inbound import Inbound
from gateway.ocspclient import OcspClient
from gateway.outbound import Outbound
from gateway.router import Router
from gateway.store import Store

T = TypeVar("T")

HOSTED_H23 = "000.00.00.H23"  # UBND tỉnh Hà Nam, hosted here
HOSTED_VP = "000.00.01.H23"  # Văn phòng UBND tỉnh, hosted here
REMOTE_G22 = "000.00.00.G22"  # Văn phòng Chính phủ, behind route `vpcp`
REMOTE_G09 = "000.00.00.G09"  # Bộ Nội vụ, behind route `vpcp`
UNROUTED = "000.00.00.H40"  # no route serves it
HOSTED = (HOSTED_H23, HOSTED_VP)
REMOTE = (REMOTE_G22, REMOTE_G09)
AGENCIES = {
    HOSTED_H23: "Ủy ban nhân dân tỉnh Hà Nam",
    HOSTED_VP: "Văn phòng Ủy ban nhân dân tỉnh Hà Nam",
    REMOTE_G22: "Văn phòng Chính phủ",
    REMOTE_G09: "Bộ Nội vụ",
}
OFFICE_TOKEN = "dev-office-token-0123456789abcdef"
H23_TOKEN = "h23-office-token-0123456789abcdef"

# 2025-03-06 09:00 +07:00: after the sample's PromulgationDate, inside the dev PKI's validity.
T0 = dt.datetime(2025, 3, 6, 2, 0, 0, tzinfo=dt.UTC)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = FIXTURES / "sample_envelope.edxml"


@functools.cache
def _pki() -> devpki.DevPKI:
    return devpki.generate(
        node_name="Nút thử nghiệm",
        agencies=AGENCIES,
        now=T0 - dt.timedelta(days=30),
    )


@functools.cache
def _sample() -> Envelope:
    doc = reader.read(SAMPLE.read_bytes()).document
    assert isinstance(doc, Envelope)
    return doc


def config_text(
    pki: devpki.DevPKI,
    *,
    remote_signature: str = "required",
    max_envelope: str = "150MB",
    extra: str = "",
    node_extra: str = "",
) -> str:
    def path(entry: devpki.Issued, what: str) -> str:
        return str(getattr(entry, f"{what}_path"))

    agencies = "\n".join(
        f"[agency:{organ}]\nname = {AGENCIES[organ]}\n"
        f"signing_key = {path(pki.agencies[organ], 'key')}\n"
        f"signing_cert = {path(pki.agencies[organ], 'chain')}\n"
        for organ in HOSTED
    )
    return f"""
[node]
name = Nút thử nghiệm
data_dir = data
office_listen = tcp:0:interface=127.0.0.1
office_url = http://127.0.0.1:8440/office
exchange_listen = tcp:0:interface=127.0.0.1
exchange_url = https://127.0.0.1:8443/exchange
tls_cert = {path(pki.node, "chain")}
tls_key = {path(pki.node, "key")}
tls_ca = {path(pki.root, "cert")}
{node_extra}
{agencies}
[office:dev]
token_file = office.token
organ_ids = {", ".join(HOSTED)}

[office:h23]
token_file = h23.token
organ_ids = {HOSTED_H23}

[route:local]
transport = local

[route:vpcp]
transport = soap
url = https://127.0.0.1:9443/exchange
organ_ids = {", ".join(REMOTE)}
require_envelope_signature = {remote_signature}

[trust]
roots = {path(pki.root, "cert")}
intermediates = {path(pki.issuing, "cert")}

[limits]
max_envelope_bytes = {max_envelope}
{extra}"""


@attrs.define
class NodeKit:
    """Everything below the faces of one node, on real files under `directory`."""

    directory: Path
    pki: devpki.DevPKI
    config: Config
    store: Store
    blobs: BlobStore
    pool: ThreadPool
    clock: Clock
    reactor: Any

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        reactor: Any,
        remote_signature: str = "required",
        max_envelope: str = "150MB",
        extra: str = "",
        node_extra: str = "",
    ) -> NodeKit:
        directory = directory.resolve()
        (directory / "data").mkdir(parents=True, exist_ok=True)
        pki = _pki().write(directory / "pki")
        (directory / "office.token").write_text(OFFICE_TOKEN)
        (directory / "h23.token").write_text(H23_TOKEN)
        text = config_text(
            pki,
            remote_signature=remote_signature,
            max_envelope=max_envelope,
            extra=extra,
            node_extra=node_extra,
        )
        config = loads(text, base_dir=directory, environ={})
        store = Store.open(config.node.db_path, reactor=reactor, blobs=config.node.blobs_dir)
        blobs = BlobStore(config.node.blobs_dir)
        pool = ThreadPool(minthreads=1, maxthreads=2, name="nodekit-cpu")
        pool.start()
        clock = Clock()
        clock.advance(T0.timestamp())
        return cls(directory, pki, config, store, blobs, pool, clock, reactor)

    def stop(self) -> Deferred[None]:
        self.pool.stop()
        return Deferred.fromCoroutine(self.store.stop())

    def office(self, name: str = "dev") -> OfficeConfig:
        return next(o for o in self.config.offices if o.name == name)

    # --- the logic layer, composed as the service will ---

    def router(self) -> Router:
        return Router(self.config)

    def outbound(self) -> Outbound:
        return Outbound(
            self.config,
            self.store,
            self.blobs,
            self.router(),
            clock=self.clock,
            pool=self.pool,
            reactor=self.reactor,
        )

    def inbound(self, outbound: Outbound | None = None, ocsp: OcspClient | None = None) -> Inbound:
        return Inbound(
            self.config,
            self.store,
            self.blobs,
            outbound or self.outbound(),
            self.router(),
            clock=self.clock,
            pool=self.pool,
            trust=None,
            reactor=self.reactor,
            ocsp=ocsp,
        )

    async def read(self, job: Callable[..., T], **kwargs: Any) -> T:
        """A store read job with keyword arguments, e.g. `await kit.read(st.get_message,
        message_id=...)`."""
        return await self.store.read(functools.partial(job, **kwargs))

    async def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await self.store.read(lambda conn: conn.execute(sql, params).fetchall())

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.UTC)

    def trust(self) -> signature.Trust:
        return signature.Trust.from_pem(self.pki.root.cert_pem, self.pki.issuing.cert_pem)

    # --- documents ---

    def envelope(
        self,
        sender: str,
        recipients: Sequence[str],
        *,
        number: str = "123",
        priority: Priority = Priority.NORMAL,
    ) -> bytes:
        """The fixture's Công văn, re-addressed and renumbered (DocumentId follows), unsigned."""
        return writer.write(self.document(sender, recipients, number=number, priority=priority))

    def document(
        self,
        sender: str,
        recipients: Sequence[str],
        *,
        number: str = "123",
        priority: Priority = Priority.NORMAL,
    ) -> Envelope:
        """`envelope` as the model, for a test to change before writing it."""
        doc = _sample()
        header = doc.header
        code = attrs.evolve(header.code, code_number=number)
        day = header.promulgation_info.promulgation_date
        assert day is not None
        document_id = f"{sender},{day:%Y/%m/%d},{code}"
        header = attrs.evolve(
            header,
            from_=attrs.evolve(header.from_, organ_id=sender, organ_name=AGENCIES.get(sender, "")),
            to=tuple(_org(organ) for organ in recipients),
            code=code,
            document_id=document_id,
            other_info=attrs.evolve(header.other_info, priority=priority),
        )
        return attrs.evolve(doc, header=header)

    def sign_as(self, organ_id: str, data: bytes) -> bytes:
        seal = self.pki.agencies[organ_id]
        key = load_pem_private_key(seal.key_pem, password=None)
        return signature.sign(data, key, seal.chain)

    def signed_envelope(self, sender: str, recipients: Iterable[str], **kw: Any) -> bytes:
        return self.sign_as(sender, self.envelope(sender, list(recipients), **kw))


def _org(organ_id: str) -> Organization:
    return Organization(
        organ_id=organ_id,
        organization_in_charge=AGENCIES.get(organ_id, ""),
        organ_name=AGENCIES.get(organ_id, organ_id),
    )
