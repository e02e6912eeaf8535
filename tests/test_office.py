"""The office face, called by zeep (an independent client) loading the WSDL the face serves, over
a real twisted.web Site on 127.0.0.1 with a real SQLite store and blob directory.

The outbound side is a small IOutbound that really stores (insert_outbound_message_with_deliveries)
and stands in for the local transport and the sender node's status handling: an envelope to a
hosted agency lands in its inbox at once, and a status packet is recorded in the history of the
outbound envelope it answers. The real Outbound replaces it in `service`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import attrs
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault as ZeepFault
from zeep.transports import Transport as ZeepTransport
from zope.interface import implementer

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from edxml import reader
from edxml.codes import BusinessDocType, StatusCode
from edxml.model import Envelope, StatusPacket
from edxml.writer import write
from gateway import statuses
from gateway import store as st
from gateway.auth import Authenticator, bearer_token, require_acts_for
from gateway.blobs import BlobStore
from gateway.config import (
    AgencyConfig,
    Config,
    LimitsConfig,
    NodeConfig,
    OfficeConfig,
    RouteConfig,
    RoutePattern,
    Secret,
    TlsConfig,
    Transport,
)
from gateway.interfaces import IOutbound, Submitted, SubmittedDelivery
from gateway.office import OfficeResource
from gateway.soap import OFFICE_NS, WSDL_SOAP11_NS, WSDL_SOAP12_NS, FaultCode, GatewayFault

SAMPLE = Path(__file__).resolve().parent / "fixtures" / "sample_envelope.edxml"
H23 = "000.00.00.H23"  # sender of the sample
G22 = "000.00.00.G22"  # recipient of the sample, hosted here
G09 = "000.00.00.G09"  # recipient of the sample, behind a peer node
TOKEN_H23 = "token-for-H23-0123456789abcdef"
TOKEN_G22 = "token-for-G22-0123456789abcdef"
GATEWAY_NS = {"gw": OFFICE_NS}


def make_config(office_url: str, *, office_rate: float = 0.0) -> Config:
    pem = Path("unused.pem")
    return Config(
        path=None,
        node=NodeConfig(
            name="test node",
            organ_id=None,
            data_dir=Path("data"),
            office_listen="tcp:0:interface=127.0.0.1",
            exchange_listen="tcp:0:interface=127.0.0.1",
            office_url=office_url,
            exchange_url="https://127.0.0.1:1/exchange",
            tls=TlsConfig(pem, pem, pem),
        ),
        agencies=(
            AgencyConfig(H23, "UBND tỉnh Hà Nam", pem, pem),
            AgencyConfig(G22, "Văn phòng Chính phủ", pem, pem),
        ),
        offices=(
            OfficeConfig("hanam", (H23,), Secret(TOKEN_H23), "inline"),
            OfficeConfig("vpcp", (G22,), Secret(TOKEN_G22), "inline"),
        ),
        routes=(
            RouteConfig(
                "local", Transport.LOCAL, (RoutePattern.parse(H23), RoutePattern.parse(G22))
            ),
            RouteConfig(
                "bnv", Transport.SOAP, (RoutePattern.parse(G09),), url="https://127.0.0.1:2/x"
            ),
        ),
        limits=LimitsConfig(office_rate=office_rate),
    )


@implementer(IOutbound)
class StoringOutbound:
    """Stores what it is given through the store's job functions; no signing, no network."""

    def __init__(self, config: Config, store: st.Store, blobs: BlobStore) -> None:
        self.config = config
        self.store = store
        self.blobs = blobs
        self.statuses: list[tuple[StatusPacket, str]] = []

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def submit_envelope(
        self, package: bytes, office: OfficeConfig, reference: str | None = None
    ) -> Submitted:
        document = reader.read(package).document
        assert isinstance(document, Envelope)
        require_acts_for(office, document.header.from_.organ_id)
        blob = self.blobs.put(package)
        now = self._now()
        recipients = tuple(o.organ_id for o in document.header.to)
        outbound = st.NewMessage(
            id=uuid.uuid4().hex,
            direction="out",
            kind="envelope",
            sender=document.header.from_.organ_id,
            document_id=document.header.document_id,
            business_type=str(int(document.business_type)),
            blob=blob,
            arrived_at=now,
            recipients=recipients,
        )
        routes = {r: self.config.routes_for(r)[0].name for r in recipients}
        deliveries = [st.NewDelivery(r, route) for r, route in routes.items()]
        hosted = [r for r in recipients if self.config.hosts(r)]
        inbound = attrs.evolve(outbound, id=uuid.uuid4().hex, direction="in")

        def job(conn: Any) -> st.InsertResult:
            result = st.insert_outbound_message_with_deliveries(
                conn, outbound, deliveries, receipt_json=None, now=now, actor="test"
            )
            st.insert_inbound_message(
                conn,
                inbound,
                receipt_json=None,
                now=now,
                actor="local",
                inbox_for=hosted,
            )
            return result

        result = await self.store.write(job)
        stored = await self.store.read(lambda c: st.deliveries_for(c, result.message_id))
        return Submitted(
            result.message_id,
            tuple(SubmittedDelivery(str(d.id), d.recipient, d.route, d.state) for d in stored),
        )

    async def submit_status(self, packet: StatusPacket, recipient: str) -> Submitted:
        self.statuses.append((packet, recipient))
        blob = self.blobs.put(write(packet))
        now = self._now()
        status_message = st.NewMessage(
            id=uuid.uuid4().hex,
            direction="out",
            kind="status",
            sender=packet.from_.organ_id,
            document_id=packet.document_id,
            business_type="0",
            blob=blob,
            arrived_at=now,
            recipients=(recipient,),
        )

        def job(conn: Any) -> st.InsertResult:
            result = st.insert_outbound_message_with_deliveries(
                conn,
                status_message,
                [st.NewDelivery(recipient, "local")],
                receipt_json=None,
                now=now,
                actor="test",
            )
            # The sender's node (this one) receives it: history of the envelope it answers.
            row = conn.execute(
                "SELECT id FROM messages WHERE direction = 'out' AND kind = 'envelope'"
                " AND document_id = ? AND sender = ? AND business_type = '0'",
                (packet.document_id, recipient),
            ).fetchone()
            if row is not None:
                st.record_status(
                    conn,
                    st.NewStatus(
                        row[0],
                        packet.from_.organ_id,
                        packet.status_code.value,
                        packet.timestamp or now,
                        description=packet.description,
                        staff_json=statuses.staff_json(packet.staff_info),
                    ),
                    now=now,
                    actor="test",
                )
            return result

        result = await self.store.write(job)
        return Submitted(result.message_id, ())


class OfficeFaceTests(TestCase):
    """zeep against the served WSDL; the real reactor serves while zeep blocks in a thread."""

    def setUp(self) -> None:
        base = Path(self.mktemp()).resolve()
        base.mkdir(parents=True)
        self.store = st.Store.open(base / "gateway.db", reactor=reactor)
        self.addCleanup(self.store.stop)
        self.blobs = BlobStore(base / "blobs")
        self.site = Site(Resource(), timeout=None)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.url = f"http://127.0.0.1:{self.port.getHost().port}/office"
        self.config = make_config(self.url)
        self.outbound = StoringOutbound(self.config, self.store, self.blobs)
        self.site.resource = OfficeResource(
            self.config, self.store, self.blobs, self.outbound, reactor=reactor
        )
        self.sample = SAMPLE.read_bytes()
        self.sample_id = "000.00.00.H23,2025/03/05,123/UBND-VP"

    async def client(self, token: str | None) -> Any:
        def make() -> zeep.Client:
            session = requests.Session()
            # One connection per call: none is left open for the reactor's cleanliness check.
            session.headers["Connection"] = "close"
            if token is not None:
                session.headers["Authorization"] = f"Bearer {token}"
            self.addCleanup(session.close)
            return zeep.Client(self.url + "?wsdl", transport=ZeepTransport(session=session))

        return await deferToThread(make)

    async def http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """A raw request outside zeep, on a connection the server closes once it has answered."""
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        reply: requests.Response = await deferToThread(
            requests.request, method, url, headers=headers, timeout=10, **kwargs
        )
        return reply

    async def call(self, client: Any, operation: str, **kwargs: Any) -> Any:
        return await deferToThread(getattr(client.service, operation), **kwargs)

    async def fault(self, client: Any, operation: str, **kwargs: Any) -> ZeepFault:
        try:
            await self.call(client, operation, **kwargs)
        except ZeepFault as fault:
            return fault
        self.fail(f"{operation} did not fault")

    def assertCode(self, fault: ZeepFault, code: FaultCode) -> None:
        detail = fault.detail.find("gw:GatewayFault", GATEWAY_NS)
        self.assertIsNotNone(detail, etree.tostring(fault.detail))
        self.assertEqual(detail.findtext("gw:Code", namespaces=GATEWAY_NS), code.value)
        self.assertEqual(detail.findtext("gw:MessageEn", namespaces=GATEWAY_NS).strip() != "", True)
        self.assertEqual(detail.findtext("gw:MessageVi", namespaces=GATEWAY_NS).strip() != "", True)

    async def test_served_contract(self) -> None:
        wsdl = await self.http("GET", self.url + "?wsdl")
        self.assertEqual(wsdl.status_code, 200)
        root = etree.fromstring(wsdl.content)
        locations = [
            node.get("location")
            for ns in (WSDL_SOAP11_NS, WSDL_SOAP12_NS)
            for node in root.iter(f"{{{ns}}}address")
        ]
        self.assertEqual(locations, [self.url, self.url])
        xsd = await self.http("GET", self.url + "?xsd=office.xsd")
        self.assertEqual(xsd.status_code, 200)
        self.assertIn(b'targetNamespace="urn:edxml-gateway:office:1"', xsd.content)
        missing = await self.http("GET", self.url + "?xsd=../../etc")
        self.assertEqual(missing.status_code, 404)

    async def test_document_round_trip(self) -> None:
        """Every operation once: H23 sends to G22 (hosted) and G09 (peer); G22 reads, marks,
        reports 03 then 06; H23 sees the history and the status events; recall and its answer."""
        hanam = await self.client(TOKEN_H23)
        vpcp = await self.client(TOKEN_G22)

        sent = await self.call(hanam, "SendDocument", Envelope=self.sample, ClientReference="x")
        states = {d.OrganId: d.State for d in sent.Delivery}
        self.assertEqual(states, {G22: "queued", G09: "queued"})

        inbox = await self.call(vpcp, "ReceiveDocuments", OrganId=G22, Max=5)
        self.assertEqual(len(inbox), 1)
        document = inbox[0]
        self.assertEqual(document.Envelope, self.sample)  # the exact stored bytes
        self.assertEqual((document.Kind, document.From), ("new", H23))
        self.assertEqual(document.DocumentId, self.sample_id)
        self.assertEqual(document.Verdict.LegalValidity, "undetermined")
        self.assertEqual(document.ArrivedAt.utcoffset(), dt.timedelta(hours=7))
        self.assertEqual(document.LegalReceivedAt, document.ArrivedAt)

        marked = await self.call(vpcp, "MarkReceived", MessageId=[document.MessageId])
        self.assertEqual(marked, 1)
        self.assertEqual(await self.call(vpcp, "MarkReceived", MessageId=[document.MessageId]), 0)
        self.assertEqual(await self.call(vpcp, "ReceiveDocuments", OrganId=G22), [])

        status_id = await self.call(
            vpcp,
            "UpdateStatus",
            MessageId=document.MessageId,
            OrganId=G22,
            StatusCode="03",
            Description="Đã tiếp nhận",
            Staff={"Name": "Nguyễn Văn B", "Department": "Văn thư"},
        )
        self.assertTrue(status_id)
        packet, recipient = self.outbound.statuses[-1]
        self.assertEqual(recipient, H23)
        self.assertEqual(packet.status_code, StatusCode.ACCEPTED)
        self.assertEqual(packet.from_.organ_id, G22)
        self.assertEqual(packet.response_for.document_id, self.sample_id)
        self.assertEqual(packet.response_for.organ_id, H23)
        self.assertEqual(packet.response_for.code, "123/UBND-VP")
        self.assertEqual(packet.staff_info.staff if packet.staff_info else "", "Nguyễn Văn B")
        await self.call(
            vpcp, "UpdateStatus", DocumentId=self.sample_id, OrganId=G22, StatusCode="06"
        )

        by_message = await self.call(hanam, "GetSendStatus", MessageId=sent.MessageId)
        by_document = await self.call(hanam, "GetSendStatus", DocumentId=self.sample_id)
        self.assertEqual(by_message, by_document)
        self.assertEqual(by_message.DocumentId, self.sample_id)
        recipients = {r.OrganId: r for r in by_message.Recipient}
        self.assertEqual(recipients[G22].LatestStatus, "06")
        history = recipients[G22].History.Status
        self.assertEqual([s.Code for s in history], ["03", "06"])
        self.assertEqual(history[0].Description, "Đã tiếp nhận")
        self.assertEqual(history[0].Reporter, G22)
        # The person who reported it, through the sender's node and back out of its face.
        self.assertEqual(history[0].Staff.Name, "Nguyễn Văn B")
        self.assertEqual(history[0].Staff.Department, "Văn thư")
        self.assertEqual(history[0].Timestamp.utcoffset(), dt.timedelta(hours=7))
        self.assertIsNone(recipients[G09].LatestStatus)

        events = await self.call(hanam, "ReceiveStatuses", OrganId=H23)
        self.assertEqual([e.Status.Code for e in events], ["03", "06"])
        self.assertEqual({e.DocumentId for e in events}, {self.sample_id})
        self.assertEqual(await self.call(vpcp, "ReceiveStatuses", OrganId=G22), [])
        # Another agency's credential cannot take H23's events off the queue.
        ids = [e.StatusId for e in events]
        self.assertEqual(await self.call(vpcp, "MarkStatusesReceived", StatusId=ids), 0)
        self.assertEqual(await self.call(hanam, "MarkStatusesReceived", StatusId=ids[:1]), 1)
        left = await self.call(hanam, "ReceiveStatuses", OrganId=H23, Max=10)
        self.assertEqual([e.StatusId for e in left], ids[1:])

        recall = await self.call(
            hanam, "RecallDocument", DocumentId=self.sample_id, Reason="Sai sót số liệu"
        )
        self.assertNotEqual(recall.MessageId, sent.MessageId)
        self.assertEqual({d.OrganId for d in recall.Delivery}, {G22, G09})
        revokes = await self.call(vpcp, "ReceiveDocuments", OrganId=G22)
        self.assertEqual([d.Kind for d in revokes], ["revoke"])
        revoke = reader.read(revokes[0].Envelope).document
        assert isinstance(revoke, Envelope)
        self.assertEqual(revoke.business_type, BusinessDocType.REVOKE)
        self.assertEqual(revoke.trace.business.document_id, self.sample_id)
        self.assertEqual(revoke.trace.business.reason, "Sai sót số liệu")
        self.assertEqual(revoke.attachments, ())

        ok = await self.call(
            vpcp, "AnswerRecall", DocumentId=self.sample_id, OrganId=G22, Agree=True
        )
        self.assertTrue(ok)
        packet, recipient = self.outbound.statuses[-1]
        self.assertEqual((packet.status_code, recipient), (StatusCode.RECALL_AGREED, H23))

        directory = await self.call(hanam, "GetDirectory")
        self.assertEqual(
            [(a.OrganId, a.Route) for a in directory],
            [(G09, "bnv"), (G22, "local"), (H23, "local")],
        )
        found = await self.call(hanam, "GetDirectory", Pattern="hà nam")
        self.assertEqual([a.OrganId for a in found], [H23])

    async def test_credential_confined_to_its_agencies(self) -> None:
        hanam = await self.client(TOKEN_H23)
        vpcp = await self.client(TOKEN_G22)
        # G22's credential sending the sample, whose From is H23.
        fault = await self.fault(vpcp, "SendDocument", Envelope=self.sample)
        self.assertCode(fault, FaultCode.FORBIDDEN)
        self.assertIn(H23, fault.message)
        sent = await self.call(hanam, "SendDocument", Envelope=self.sample)
        # H23 reading G22's inbox, reporting as G22, answering a recall as G22.
        for operation, kwargs in (
            ("ReceiveDocuments", {"OrganId": G22}),
            ("UpdateStatus", {"DocumentId": self.sample_id, "OrganId": G22, "StatusCode": "03"}),
            ("AnswerRecall", {"DocumentId": self.sample_id, "OrganId": G22, "Agree": False}),
            ("ReceiveStatuses", {"OrganId": G22}),
        ):
            self.assertCode(await self.fault(hanam, operation, **kwargs), FaultCode.FORBIDDEN)
        # G22 reading H23's send status or recalling H23's document.
        for operation, kwargs in (
            ("GetSendStatus", {"MessageId": sent.MessageId}),
            ("GetSendStatus", {"DocumentId": self.sample_id}),
            ("RecallDocument", {"DocumentId": self.sample_id, "Reason": "x"}),
            ("ReceiveStatuses", {"OrganId": H23}),
        ):
            self.assertCode(await self.fault(vpcp, operation, **kwargs), FaultCode.FORBIDDEN)
        # Marking H23's … no: G22's inbox item as H23 changes nothing.
        inbox = await self.call(vpcp, "ReceiveDocuments", OrganId=G22)
        self.assertEqual(await self.call(hanam, "MarkReceived", MessageId=[inbox[0].MessageId]), 0)
        self.assertEqual(len(await self.call(vpcp, "ReceiveDocuments", OrganId=G22)), 1)
        self.assertEqual(self.outbound.statuses, [])

    async def test_unauthorized(self) -> None:
        for token in (None, "wrong-token-0123456789abcdef"):
            client = await self.client(token)
            fault = await self.fault(client, "GetDirectory")
            self.assertCode(fault, FaultCode.UNAUTHORIZED)
            self.assertNotIn("wrong-token", fault.message + etree.tostring(fault.detail).decode())

    async def test_fault_in_both_languages_and_soap12(self) -> None:
        hanam = await self.client(TOKEN_H23)
        fault = await self.fault(hanam, "GetSendStatus", MessageId="no-such-message")
        self.assertCode(fault, FaultCode.NOT_FOUND)
        detail = fault.detail.find("gw:GatewayFault", GATEWAY_NS)
        self.assertIn("Không tìm thấy", detail.findtext("gw:MessageVi", namespaces=GATEWAY_NS))
        fault = await self.fault(
            hanam, "UpdateStatus", DocumentId=self.sample_id, OrganId=H23, StatusCode="02"
        )
        self.assertCode(fault, FaultCode.BAD_REQUEST)
        # The SOAP 1.2 binding of the same WSDL: Reason in English and Vietnamese.
        service = hanam.bind("OfficeService", "OfficeSoap12")
        try:
            await deferToThread(service.ReceiveDocuments, OrganId=G22)
        except ZeepFault as fault12:
            self.assertCode(fault12, FaultCode.FORBIDDEN)
        else:
            self.fail("SOAP 1.2 ReceiveDocuments of another agency did not fault")
        result = await deferToThread(service.ReceiveDocuments, OrganId=H23)
        self.assertEqual(result, [])

    async def test_raw_soap12_reason_languages(self) -> None:
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope">'
            f'<e:Body><ReceiveDocuments xmlns="{OFFICE_NS}"><OrganId>{G22}</OrganId>'
            "</ReceiveDocuments></e:Body></e:Envelope>"
        ).encode()
        reply = await self.http(
            "POST",
            self.url,
            data=body,
            headers={
                "Content-Type": "application/soap+xml; charset=utf-8",
                "Authorization": f"Bearer {TOKEN_H23}",
            },
        )
        self.assertEqual(reply.status_code, 400)
        root = etree.fromstring(reply.content)
        ns = {"e": "http://www.w3.org/2003/05/soap-envelope"}
        texts = {
            t.get("{http://www.w3.org/XML/1998/namespace}lang"): t.text
            for t in root.iterfind(".//e:Reason/e:Text", ns)
        }
        self.assertEqual(set(texts), {"en", "vi"})
        self.assertEqual(root.findtext(".//e:Subcode/e:Value", namespaces=ns), "gw:Forbidden")

    async def test_too_large_before_parsing(self) -> None:
        small = attrs_evolve_config(self.config, max_envelope_bytes=1024)
        self.site.resource = OfficeResource(
            small, self.store, self.blobs, self.outbound, reactor=reactor
        )
        hanam = await self.client(TOKEN_H23)
        # 1 KB envelopes: the request may be 4/3 of that plus 64 KB of SOAP framing.
        fault = await self.fault(hanam, "SendDocument", Envelope=b"x" * 60_000)
        self.assertCode(fault, FaultCode.TOO_LARGE)
        count = await self.store.read(
            lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0]
        )
        self.assertEqual(count, 0)


def attrs_evolve_config(config: Config, **limits: Any) -> Config:
    return attrs.evolve(config, limits=attrs.evolve(config.limits, **limits))


class AuthenticatorTests(SynchronousTestCase):
    def test_bearer(self) -> None:
        self.assertEqual(bearer_token("Bearer abc"), "abc")
        self.assertEqual(bearer_token("bearer   abc "), "abc")
        self.assertIsNone(bearer_token("Basic abc"))
        self.assertIsNone(bearer_token("Bearer "))
        self.assertIsNone(bearer_token(None))

    def test_token_and_confinement(self) -> None:
        auth = Authenticator(make_config("http://x/office"), clock=Clock())
        office = auth.authenticate(f"Bearer {TOKEN_G22}")
        self.assertEqual(office.name, "vpcp")
        require_acts_for(office, G22)
        with self.assertRaises(GatewayFault) as caught:
            require_acts_for(office, H23)
        self.assertEqual(caught.exception.code, FaultCode.FORBIDDEN)
        for header in (None, "Bearer nope-0123456789abcdef", f"Basic {TOKEN_G22}"):
            with self.assertRaises(GatewayFault) as caught:
                auth.authenticate(header)
            self.assertEqual(caught.exception.code, FaultCode.UNAUTHORIZED)

    def test_rate_limit_per_credential(self) -> None:
        clock = Clock()
        auth = Authenticator(make_config("http://x/office", office_rate=2.0), clock=clock)
        auth.authenticate(f"Bearer {TOKEN_H23}")
        auth.authenticate(f"Bearer {TOKEN_H23}")
        with self.assertRaises(GatewayFault) as caught:
            auth.authenticate(f"Bearer {TOKEN_H23}")
        self.assertEqual(caught.exception.code, FaultCode.UNAVAILABLE)
        self.assertTrue(caught.exception.retryable)
        # Another credential has its own bucket; time refills the first one.
        auth.authenticate(f"Bearer {TOKEN_G22}")
        clock.advance(0.5)
        auth.authenticate(f"Bearer {TOKEN_H23}")
        with self.assertRaises(GatewayFault):
            auth.authenticate(f"Bearer {TOKEN_H23}")
