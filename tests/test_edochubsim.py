"""gateway.edochubsim, the BKAV eDoc hub simulator, on 127.0.0.1 (port 0) with the real client
(gateway.edochubclient): send → pending → get → confirm → gone, statuses both ways (deleted once
read), the hub's refusals, every fault, the control face, and the token kept out of logs."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import attrs
from lxml import etree

import treq
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.test.requesthelper import DummyRequest

from edxml import edochub
from edxml.codes import StatusCode
from edxml.edochub import (
    EDOC_NS,
    Attachment,
    ErrorKind,
    Organization,
    OutgoingDocument,
    ResponseFor,
    StaffInfo,
)
from gateway.clihub import load_organizations, parse_faults
from gateway.clisim import SimConfigError
from gateway.edochubclient import HubClient, HubRefused, HubUnavailable
from gateway.edochubsim import HubOrganization, HubSimulator, fault_value

A, B, C = "000.00.01.H99", "000.00.02.H99", "000.00.03.H99"
TOKENS = {
    A: "QWdlbmN5LUEtdG9rZW4tMDAwMDE=",
    B: "QWdlbmN5LUItdG9rZW4tMDAwMDI=",
    C: "QWdlbmN5LUMtdG9rZW4tMDAwMDM=",
}
PDF = b"%PDF-1.4\r\n\x00\xff--boundary-like\r\n" * 50
NOW = dt.datetime.now(dt.UTC)


def organizations() -> list[HubOrganization]:
    return [
        HubOrganization(code, TOKENS[code], name=f"Agency {code[-5:]}", email="x@example.invalid")
        for code in TOKENS
    ]


def document(sender: str = A, to: tuple[str, ...] = (B,), **changes: Any) -> OutgoingDocument:
    doc = OutgoingDocument(
        from_=Organization(sender, f"Agency {sender[-5:]}"),
        to=tuple(Organization(code) for code in to),
        document_id=f"{sender},2024/05/10,123/UBND-VP",
        code_number="123",
        code_notation="UBND-VP",
        place="Phủ Lý",
        promulgation_date=dt.date(2024, 5, 10),
        subject="Về việc thử nghiệm",
        timestamp=NOW,
        attachments=(Attachment("decision.pdf", "application/pdf", PDF),),
    )
    return attrs.evolve(doc, **changes)


class HubTestCase(TestCase):
    def setUp(self) -> None:
        self.sim = HubSimulator(organizations(), reactor=reactor)
        self.url = self.sim.listen()
        self.addCleanup(lambda: Deferred.fromCoroutine(self.sim.stop()))
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def client(self, organ_id: str = A, **options: Any) -> HubClient:
        options.setdefault("timeout", 5.0)
        token = options.pop("token", None) or TOKENS[organ_id]
        return HubClient(options.pop("url", self.url), organ_id, token, reactor=reactor, **options)

    async def status(self, sender: HubClient, about: str, code: StatusCode, *, to: str = A) -> bool:
        return await sender.update_traces(
            from_=Organization(sender.organ_id, "me"),
            response_for=ResponseFor(to, about, "2024/05/10", f"{to},2024/05/10,{about}"),
            status=code,
            description="mô tả",
            timestamp=NOW,
            staff=StaffInfo(department="Văn thư", staff="Clerk"),
        )

    def logged(self) -> str:
        return "\n".join(formatEvent(e) + repr(e) for e in self.events)


class FlowTests(HubTestCase):
    async def test_send_pending_get_confirm_gone(self) -> None:
        a, b = self.client(A), self.client(B)
        self.assertTrue(await a.check_permission())
        hub_id = await a.send_document(document())
        self.assertEqual(await b.pending(), (hub_id,))
        self.assertEqual(await a.pending(), ())
        doc = await b.get_document(hub_id)
        self.assertEqual(doc.document_id, f"{A},2024/05/10,123/UBND-VP")
        self.assertEqual(doc.code, "123/UBND-VP")
        self.assertEqual(doc.subject, "Về việc thử nghiệm")
        self.assertEqual([t.organ_id for t in doc.to], [B])
        self.assertEqual([(x.name, x.data) for x in doc.attachments], [("decision.pdf", PDF)])
        self.assertEqual(await b.pending(), (hub_id,))  # GetDocument marks nothing
        await b.confirm_received(hub_id)
        self.assertEqual(await b.pending(), ())
        again = await b.get_document(hub_id)  # re-download after confirmation is allowed
        self.assertEqual(again.attachments[0].data, PDF)
        # the kept envelope has no Signature: the sender's token is never replayed
        self.assertNotIn(TOKENS[A].encode(), self.sim.documents[hub_id].envelope)
        (arrived,) = await a.get_traces()
        self.assertEqual(arrived.status, StatusCode.ARRIVED)
        self.assertEqual(arrived.from_.organ_id, B)
        self.assertEqual(arrived.response_for.code, "123/UBND-VP")
        self.assertEqual(await a.get_traces(), ())  # deleted once read
        replay = await a.get_traces(NOW - dt.timedelta(minutes=5))
        self.assertEqual([t.code for t in replay], [1])
        self.assertEqual(await a.get_traces(), ())  # a replay consumes nothing either

    async def test_statuses_both_ways(self) -> None:
        a, b = self.client(A), self.client(B)
        await a.send_document(document())
        self.assertTrue(await self.status(b, "123/UBND-VP", StatusCode.ACCEPTED))
        self.assertFalse(await self.status(b, "123/UBND-VP", StatusCode.ACCEPTED))  # duplicate
        self.assertTrue(await self.status(b, "123/UBND-VP", StatusCode.PROCESSING))
        self.assertTrue(await self.status(b, "123/UBND-VP", StatusCode.PROCESSING))  # 5 repeats
        codes = [t.status for t in await a.get_traces()]
        self.assertEqual(sorted(c.value for c in codes if c), ["03", "05", "05"])
        # a recall request goes the other way: from the sender, about its own document
        self.assertTrue(await self.status(a, "123/UBND-VP", StatusCode.RECALL_REQUESTED, to=B))
        (recall,) = await b.get_traces()
        self.assertEqual(recall.status, StatusCode.RECALL_REQUESTED)
        self.assertTrue(await self.status(b, "123/UBND-VP", StatusCode.RECALL_AGREED))
        (agreed,) = await a.get_traces()
        self.assertEqual(agreed.status, StatusCode.RECALL_AGREED)
        self.assertEqual(await b.get_traces(), ())
        with self.assertRaises(HubRefused) as caught:
            await self.status(b, "999/NONE", StatusCode.ACCEPTED)
        self.assertEqual(caught.exception.code, "M.UpdateStatusDoc")
        self.assertIs(caught.exception.kind, ErrorKind.NOT_FOUND)

    async def test_a_replacement_is_no_duplicate_and_reaches_the_recipient_whole(self) -> None:
        a, b = self.client(A), self.client(B)
        first = await a.send_document(document())
        earlier = f"{A},2024/05/10,123/UBND-VP"
        second = await a.send_document(
            document(
                business_doc_type=3,
                business_document_id=earlier,
                replacements=(edochub.Replacement(earlier, (B,)),),
            )
        )  # the same DocumentId: only a new document (type 0) is checked for duplicates
        self.assertEqual(await b.pending(), (first, second))
        got = await b.get_document(second)
        self.assertEqual(got.business_doc_type, 3)
        traces = etree.fromstring(got.trace_header_list)
        self.assertEqual(
            traces.findtext(f".//{{{EDOC_NS}}}ReplacementInfo/{{{EDOC_NS}}}DocumentId"), earlier
        )
        # Two documents from A with one docCode, both to B: a status is filed under the first.
        self.assertTrue(await self.status(b, "123/UBND-VP", StatusCode.ACCEPTED))
        self.assertEqual([t.hub_id for t in self.sim.traces if t.trace.code == 3], [first])

    async def test_refusals(self) -> None:
        a, b, c = self.client(A), self.client(B), self.client(C)
        hub_id = await a.send_document(document())
        with self.assertRaises(HubRefused) as caught:
            await a.send_document(document())
        self.assertEqual(
            (caught.exception.code, caught.exception.kind), ("M.Exist", ErrorKind.DUPLICATE)
        )
        with self.assertRaises(HubRefused) as caught:
            await c.get_document(hub_id)
        self.assertEqual(caught.exception.code, "M.GetDocumentCheckAllow")
        with self.assertRaises(HubRefused) as caught:
            await b.confirm_received(424242)
        self.assertEqual(caught.exception.code, "M.ConfirmReceived")
        with self.assertRaises(HubRefused) as caught:
            await a.send_document(document(promulgation_date=dt.date(2999, 1, 1), document_id="x"))
        self.assertEqual(
            (caught.exception.code, caught.exception.kind), ("PromulgationDate", ErrorKind.INVALID)
        )
        self.assertEqual(len(self.sim.documents), 1)
        directory = await c.organizations()
        self.assertEqual(sorted(o.organ_id for o in directory), sorted(TOKENS))

    async def test_wrong_token_is_refused_and_nothing_stored(self) -> None:
        wrong = "V3JvbmctdG9rZW4tZm9yLXRlc3Q="
        a = self.client(A, token=wrong)
        with self.assertRaises(HubRefused) as caught:
            await a.send_document(document())
        self.assertEqual(
            (caught.exception.code, caught.exception.kind), ("Permission", ErrorKind.AUTH)
        )
        with self.assertRaises(HubRefused) as caught:
            await self.status(a, "123/UBND-VP", StatusCode.ACCEPTED)
        self.assertEqual(caught.exception.code, "Permission")
        for call in (a.pending, a.get_traces, a.organizations):
            with self.assertRaises(HubRefused) as caught:
                await call()
            self.assertEqual((caught.exception.code, caught.exception.kind), ("", ErrorKind.AUTH))
        self.assertFalse(await a.check_permission())
        self.assertFalse(await self.client("000.00.09.H99", token=wrong).check_permission())
        self.assertEqual(
            (self.sim.documents, self.sim.traces, self.sim.notifications), ({}, [], [])
        )
        for text in (repr(a), str(caught.exception), caught.exception.message_vi, self.logged()):
            self.assertNotIn(wrong, text)

    async def test_the_token_never_in_logs_reprs_or_errors(self) -> None:
        a, b = self.client(A), self.client(B, timeout=0.3)
        hub_id = await a.send_document(document())
        await b.get_document(hub_id)
        await b.confirm_received(hub_id)
        await a.get_traces()
        texts = [repr(a), str(a)]
        self.sim.set_faults({"http500": 1})
        with self.assertRaises(HubUnavailable) as unavailable:
            await b.pending()
        texts += [str(unavailable.exception), unavailable.exception.message_vi]
        self.sim.set_faults({"slow": 1.0})
        with self.assertRaises(HubUnavailable) as unavailable:
            await b.pending()
        texts += [str(unavailable.exception), repr(unavailable.exception)]
        self.sim.set_faults({"slow": 0})
        with self.assertRaises(HubRefused) as refused:
            await b.get_document(hub_id + 1000)
        texts += [str(refused.exception), repr(refused.exception), repr(refused.exception.report)]
        texts.append(json.dumps(self.sim.state()))
        texts.append(self.logged())
        self.assertIn("eDoc hub", self.logged())
        for token in TOKENS.values():
            for text in texts:
                self.assertNotIn(token, text)


class WireTests(HubTestCase):
    async def raw(self, action: str, envelope: bytes) -> tuple[int, bytes]:
        response = await treq.post(
            self.url,
            data=envelope,
            headers=Headers({"SOAPAction": [action], "Content-Type": ["text/xml; charset=utf-8"]}),
            persistent=False,
        )
        return response.code, await treq.content(response)

    async def test_unknown_action_qualified_wrapper_and_status(self) -> None:
        request = edochub.get_pending_document_ids(B, TOKENS[B])
        envelope = edochub.split_message(request.content_type, request.body).envelope
        code, body = await self.raw("NoSuchAction", envelope)
        self.assertEqual(code, 200)
        self.assertRaises(edochub.HubProtocolError, edochub.parse_pending, body)
        code, body = await self.raw('"GetPendingDocumentIds"', envelope)  # quotes stripped
        self.assertEqual(edochub.parse_pending(body), ())  # and plain text/xml accepted
        qualified = envelope.replace(
            b"<GetPendingDocumentIdsRequest>",
            b'<GetPendingDocumentIdsRequest xmlns="http://www.e-doc.vn/Schema/">',
        )
        code, body = await self.raw("GetPendingDocumentIds", qualified)
        self.assertRaises(edochub.HubProtocolError, edochub.parse_pending, body)  # empty Body
        await self.client(A).send_document(document())
        status = edochub.update_traces(
            B,
            TOKENS[B],
            from_=Organization(B),
            response_for=ResponseFor(A, "123/UBND-VP"),
            status=StatusCode.ACCEPTED,
            description="",
            timestamp=NOW,
            staff=StaffInfo(),
        )
        status_envelope = edochub.split_message(status.content_type, status.body).envelope
        code, body = await self.raw(
            "UpdateTraces",
            status_envelope.replace(b"<Status>", b"<edXML:Status>", 1).replace(
                b"</Status>", b"</edXML:Status>"
            ),
        )
        with self.assertRaises(edochub.HubRefusal) as caught:
            edochub.parse_simple(body, "UpdateTraces")
        self.assertEqual(caught.exception.code, "M.UpdateTraces")
        self.assertEqual(self.sim.traces, [])

    async def test_hostile_request_is_a_fault_without_effect(self) -> None:
        hostile = (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<SOAP-ENV:Body>&a;</SOAP-ENV:Body></SOAP-ENV:Envelope>"
        )
        code, body = await self.raw("SendDocument", hostile)
        self.assertEqual(code, 500)
        self.assertIn(b"Fault", body)
        self.assertEqual(self.sim.documents, {})

    async def test_garbage_and_no_server_are_unavailable(self) -> None:
        port = reactor.listenTCP(0, Site(_HtmlPage()), interface="127.0.0.1")  # type: ignore[arg-type]
        address = cast(IPv4Address, port.getHost())
        garbage = self.client(A, url=f"http://127.0.0.1:{address.port}/hub")
        with self.assertRaises(HubUnavailable) as caught:
            await garbage.pending()
        self.assertIn("not a hub answer", caught.exception.reason)
        await cast("Deferred[None]", port.stopListening())
        with self.assertRaises(HubUnavailable) as caught:
            await garbage.pending()
        self.assertIn("Connection", caught.exception.reason)


class _HtmlPage(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html")
        return b"<html><body>Gateway Timeout</body></html>"


class FaultTests(HubTestCase):
    async def test_http500_has_no_effect(self) -> None:
        a, b = self.client(A), self.client(B)
        self.sim.set_faults({"http500": 1})
        with self.assertRaises(HubUnavailable) as caught:
            await a.send_document(document())
        self.assertEqual(caught.exception.reason, "HTTP 500")
        self.assertEqual(self.sim.documents, {})
        hub_id = await a.send_document(document())
        self.assertEqual(await b.pending(), (hub_id,))
        self.assertEqual(self.sim.fault_hits["http500"], 1)

    async def test_slow_answer_times_out_but_takes_effect(self) -> None:
        a = self.client(A, timeout=0.3)
        self.sim.set_faults({"slow": 0.8})
        with self.assertRaises(HubUnavailable) as caught:
            await a.send_document(document())
        self.assertIn("no answer within 0.3 s", caught.exception.reason)
        self.assertEqual(len(self.sim.documents), 1)  # stored all the same
        patient = self.client(B, timeout=3.0)
        self.assertEqual(len(await patient.pending()), 1)
        self.assertEqual(self.sim.fault_hits["slow"], 2)

    async def test_listed_but_not_yet_fetchable(self) -> None:
        a, b = self.client(A), self.client(B)
        self.sim.set_faults({"not_ready": 2})
        hub_id = await a.send_document(document())
        self.sim.set_faults({"not_ready": 0})
        self.assertEqual(await b.pending(), (hub_id,))
        for _ in range(2):
            with self.assertRaises(HubRefused) as caught:
                await b.get_document(hub_id)
            self.assertEqual(
                (caught.exception.code, caught.exception.kind), ("M.GetDocument", ErrorKind.HUB)
            )
        self.assertEqual((await b.get_document(hub_id)).attachments[0].data, PDF)
        self.assertEqual(self.sim.fault_hits["not_ready"], 2)

    async def test_lost_confirm_leaves_the_document_pending(self) -> None:
        a, b = self.client(A), self.client(B)
        hub_id = await a.send_document(document())
        self.sim.set_faults({"lost_confirms": 1})
        with self.assertRaises(HubUnavailable):
            await b.confirm_received(hub_id)
        self.assertEqual(await b.pending(), (hub_id,))
        self.assertEqual(await a.get_traces(), ())
        await b.confirm_received(hub_id)
        self.assertEqual(await b.pending(), ())
        self.assertEqual([t.code for t in await a.get_traces()], [1])
        self.assertEqual(self.sim.fault_hits["lost_confirms"], 1)

    def test_fault_values(self) -> None:
        self.assertEqual(fault_value("slow", "1.5"), 1.5)
        self.assertEqual(fault_value("http500", 2), 2)
        for name, value in [("nope", 1), ("http500", -1), ("http500", True), ("slow", "x")]:
            self.assertRaises(ValueError, fault_value, name, value)
        self.assertEqual(parse_faults(("http500=3",)), {"http500": 3})
        self.assertRaises(SimConfigError, parse_faults, ("http500",))


class ControlFaceTests(HubTestCase):
    async def test_state_faults_organizations(self) -> None:
        base = self.url.rsplit("/services/", 1)[0]
        response = await treq.post(
            f"{base}/_sim/faults", data=json.dumps({"http500": 2}).encode(), persistent=False
        )
        self.assertEqual(
            (response.code, json.loads(await treq.content(response))["faults"]["http500"]), (200, 2)
        )
        response = await treq.post(f"{base}/_sim/faults", data=b'{"bogus": 1}', persistent=False)
        self.assertEqual(response.code, 400)
        await treq.content(response)
        self.sim.set_faults({"http500": 0})
        new = [{"organ_id": "000.00.04.H99", "token": "TmV3LW9yZ2FuLXRva2VuLTAwMDA0", "name": "D"}]
        response = await treq.post(
            f"{base}/_sim/organizations", data=json.dumps(new).encode(), persistent=False
        )
        self.assertEqual(response.code, 200)
        await treq.content(response)
        d = self.client("000.00.04.H99", token="TmV3LW9yZ2FuLXRva2VuLTAwMDA0")
        self.assertTrue(await d.check_permission())
        response = await treq.get(f"{base}/_sim/state", persistent=False)
        text = (await treq.content(response)).decode()
        state = json.loads(text)
        self.assertIn("000.00.04.H99", state["organizations"])
        self.assertNotIn("TmV3LW9yZ2FuLXRva2VuLTAwMDA0", text)
        response = await treq.get(f"{base}/_sim/nothing", persistent=False)
        self.assertEqual(response.code, 404)
        await treq.content(response)


class LoopbackOnlyTests(SynchronousTestCase):
    def test_refuses_peers_off_loopback(self) -> None:
        sim = HubSimulator(organizations(), reactor=reactor)
        request = DummyRequest([b"state"])
        request.path = b"/_sim/state"  # type: ignore[attr-defined]
        request.method = b"GET"
        request.client = IPv4Address("TCP", "192.0.2.7", 40000)
        self.assertIn(b"loopback", sim.render(cast(Request, request)))
        self.assertEqual(request.responseCode, 403)


class ConfigTests(SynchronousTestCase):
    def test_organizations_file(self) -> None:
        folder = Path(self.mktemp())
        folder.mkdir()
        (folder / "a.token").write_text(TOKENS[A] + "\n")
        path = folder / "orgs.json"
        path.write_text(
            json.dumps(
                {
                    "organizations": [
                        {"organ_id": A, "token_file": "a.token", "name": "A"},
                        {"organ_id": B, "token": TOKENS[B], "active": False},
                    ]
                }
            )
        )
        orgs, warnings = load_organizations(path)
        self.assertEqual(
            [(o.organ_id, o.token, o.active) for o in orgs],
            [(A, TOKENS[A], True), (B, TOKENS[B], False)],
        )
        self.assertEqual(len(warnings), 1)
        self.assertNotIn(TOKENS[A], repr(orgs))
        for bad in [
            {"organizations": []},
            {"organizations": [{"organ_id": A}]},
            {"organizations": [{"organ_id": A, "token": "t", "token_env": "X"}]},
            {"organizations": [{"organ_id": A, "token": "t"}, {"organ_id": A, "token": "u"}]},
            {"organizations": [{"organ_id": A, "token": "t", "active": "yes"}]},
        ]:
            path.write_text(json.dumps(bad))
            self.assertRaises(SimConfigError, load_organizations, path)


class CliTests(TestCase):
    async def test_simulate_edoc_hub_in_a_subprocess(self) -> None:
        directory = Path(self.mktemp()).resolve()
        directory.mkdir(parents=True)
        (directory / "a.token").write_text(TOKENS[A] + "\n")
        config = {
            "organizations": [
                {"organ_id": A, "token_file": "a.token", "name": "A"},
                {"organ_id": B, "token_env": "TEST_HUB_TOKEN_B"},
            ]
        }
        (directory / "orgs.json").write_text(json.dumps(config))
        env = {**os.environ, "TEST_HUB_TOKEN_B": TOKENS[B]}
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from gateway.clihub import edoc_hub; sys.exit(edoc_hub())",
                "--listen",
                "127.0.0.1:0",
                "--organizations",
                str(directory / "orgs.json"),
                "--fault",
                "lost_confirms=1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

        def kill() -> None:
            if process.poll() is None:
                process.kill()

        self.addCleanup(kill)
        assert process.stdout is not None and process.stderr is not None
        line = await deferToThread(process.stdout.readline)
        url = json.loads(line)["listening"]
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/services/EdocService$")
        a = HubClient(url, A, TOKENS[A], reactor=reactor, timeout=5.0)
        b = HubClient(url, B, TOKENS[B], reactor=reactor, timeout=5.0)
        hub_id = await a.send_document(document())
        with self.assertRaises(HubUnavailable):
            await b.confirm_received(hub_id)  # --fault lost_confirms=1
        await b.confirm_received(hub_id)
        self.assertEqual(await b.pending(), ())
        process.send_signal(signal.SIGTERM)
        code = await deferToThread(process.wait, 20)
        errors = process.stderr.read().decode()
        process.stdout.close()
        process.stderr.close()
        self.assertEqual(code, 0, errors)
        self.assertIn("ConfirmReceived", errors)
        for token in TOKENS.values():
            self.assertNotIn(token, errors)

    def test_bad_organizations_file_is_a_configuration_error(self) -> None:
        from click.testing import CliRunner

        from gateway.clihub import edoc_hub

        path = Path(self.mktemp())
        path.write_text('{"organizations": "none"}')
        result = CliRunner().invoke(
            edoc_hub, ["--listen", "127.0.0.1:0", "--organizations", str(path)]
        )
        self.assertEqual(result.exit_code, 78, result.output)
        result = CliRunner().invoke(edoc_hub, ["--listen", "nowhere", "--organizations", str(path)])
        self.assertEqual(result.exit_code, 78, result.output)
