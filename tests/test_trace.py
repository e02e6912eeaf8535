"""Hops appended by relays (edxml.trace): the bytes stay as received, the sender's seal holds."""

from __future__ import annotations

import datetime as dt
import re

from lxml import etree

from twisted.trial.unittest import SynchronousTestCase

from edxml import check, trace
from edxml import signature as sig
from edxml.codes import NS
from edxml.model import Envelope
from edxml.reader import read
from edxml.signature import SignatureState, Trust

try:
    from tests.pki import make_pki
    from tests.test_signature import envelope
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from pki import make_pki  # type: ignore[no-redef, import-not-found]
    from test_signature import envelope  # type: ignore[no-redef, import-not-found]

AT = dt.datetime(2026, 12, 3, 9, 15, 7, tzinfo=dt.UTC)
P = "000.00.99.H23"
Q = "000.00.99.H40"


class AppendTests(SynchronousTestCase):
    def test_hop_goes_right_after_the_last_trace_header_and_nothing_else_moves(self) -> None:
        data = envelope()
        out = trace.append_hop(data, P, AT)
        hop = (
            f"<edXML:TraceHeader><edXML:OrganId>{P}</edXML:OrganId>"
            "<edXML:Timestamp>2026/12/03 16:15:07</edXML:Timestamp></edXML:TraceHeader>"
        ).encode()
        self.assertEqual(out.replace(hop, b"", 1), data)
        end = data.index(b"</edXML:TraceHeader>") + len(b"</edXML:TraceHeader>")
        self.assertEqual(out[end : end + len(hop)], hop)

    def test_the_reader_sees_every_hop_in_order(self) -> None:
        out = trace.append_hop(trace.append_hop(envelope(), P, AT), Q, AT)
        doc = read(out).document
        assert isinstance(doc, Envelope)
        self.assertEqual([t.organ_id for t in doc.trace.traces], ["000.00.00.H23", P, Q])

    def test_default_namespace_trace_headers(self) -> None:
        # The root's default namespace is edXML's, so an unprefixed TraceHeader is one too.
        plain = envelope().replace(
            b"<edXML:TraceHeader><edXML:OrganId>000.00.00.H23</edXML:OrganId>\n"
            b"      <edXML:Timestamp>2025/03/05 15:02:11</edXML:Timestamp></edXML:TraceHeader>",
            b"<TraceHeader><OrganId>000.00.00.H23</OrganId>"
            b"<Timestamp>2025/03/05 15:02:11</Timestamp></TraceHeader>",
        )
        out = trace.append_hop(plain, P, AT)
        root = etree.fromstring(out)
        headers = trace.trace_headers(root)
        self.assertEqual(len(headers), 2)
        self.assertEqual(headers[1].findtext(f"{{{NS}}}OrganId"), P)

    def test_a_look_alike_end_tag_in_a_comment_is_not_trusted(self) -> None:
        data = envelope().replace(
            b"<edXML:Bussiness>", b"<!-- </edXML:TraceHeader> --><edXML:Bussiness>"
        )
        with self.assertRaises(trace.TraceNotWritable):
            trace.append_hop(data, P, AT)

    def test_no_trace_header_no_hop(self) -> None:
        data = re.sub(
            rb"<edXML:TraceHeader>.*?</edXML:TraceHeader>", b"", envelope(), flags=re.DOTALL
        )
        with self.assertRaises(trace.TraceNotWritable):
            trace.append_hop(data, P, AT)

    def test_organ_id_is_escaped(self) -> None:
        out = trace.append_hop(envelope(), "A&B<C", AT)
        self.assertIn(b"<edXML:OrganId>A&amp;B&lt;C</edXML:OrganId>", out)

    def test_hostile_bytes_are_refused_before_anything(self) -> None:
        from edxml.errors import HostileXML

        data = (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + envelope().split(b"?>", 1)[1]
        )
        with self.assertRaises(HostileXML):
            trace.append_hop(data, P, AT)


class SealTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.trust = Trust(roots=[self.pki.root.cert])
        entry = self.pki.agency_h23
        self.signed = sig.sign(envelope(), entry.key, entry.chain)

    def test_the_seal_holds_after_two_hops_and_says_so(self) -> None:
        out = trace.append_hop(trace.append_hop(self.signed, P, AT), Q, AT)
        verdict = sig.verify(out, self.trust)
        self.assertIs(verdict.state, SignatureState.VALID, verdict)
        self.assertEqual(verdict.hops_after_signing, 2)
        self.assertEqual(sig.verify(self.signed, self.trust).hops_after_signing, 0)

    def test_the_report_marks_which_trace_headers_the_seal_covers(self) -> None:
        out = trace.append_hop(self.signed, P, AT)
        report = check.examine(out, trust=self.trust, now=AT)
        shown = report.to_json()["trace"]
        self.assertEqual(
            [(t["organ_id"], t["signed"]) for t in shown], [("000.00.00.H23", True), (P, False)]
        )

    def test_a_changed_origin_still_breaks_the_seal(self) -> None:
        out = trace.append_hop(self.signed, P, AT).replace(
            b"2025/03/05 15:02:11", b"2025/03/05 15:02:12"
        )
        self.assertIs(sig.verify(out, self.trust).state, SignatureState.INVALID)

    def test_a_hop_carrying_more_than_a_hop_is_not_left_out(self) -> None:
        out = trace.append_hop(self.signed, P, AT).replace(
            f"<edXML:OrganId>{P}</edXML:OrganId>".encode(),
            f"<edXML:OrganId>{P}</edXML:OrganId><edXML:Subject>Khác</edXML:Subject>".encode(),
        )
        self.assertIs(sig.verify(out, self.trust).state, SignatureState.INVALID)

    def test_a_hop_slipped_before_the_origin_breaks_the_seal(self) -> None:
        hop = (
            f"<edXML:TraceHeader><edXML:OrganId>{P}</edXML:OrganId>"
            "<edXML:Timestamp>2026/12/03 16:15:07</edXML:Timestamp></edXML:TraceHeader>"
        ).encode()
        out = self.signed.replace(b"<edXML:TraceHeader>", hop + b"<edXML:TraceHeader>", 1)
        self.assertIs(sig.verify(out, self.trust).state, SignatureState.INVALID)

    def test_the_origin_itself_is_never_left_out(self) -> None:
        # Signed without any trace header, then given one: the seal cannot cover it.
        bare = re.sub(
            rb"<edXML:TraceHeader>.*?</edXML:TraceHeader>", b"", envelope(), flags=re.DOTALL
        )
        entry = self.pki.agency_h23
        signed = sig.sign(bare, entry.key, entry.chain)
        forged = signed.replace(
            b"<edXML:Bussiness>",
            f"<edXML:TraceHeader><edXML:OrganId>{P}</edXML:OrganId>"
            "<edXML:Timestamp>2026/12/03 16:15:07</edXML:Timestamp></edXML:TraceHeader>"
            "<edXML:Bussiness>".encode(),
        )
        self.assertIs(sig.verify(forged, self.trust).state, SignatureState.INVALID)

    def test_too_many_hops_are_not_searched(self) -> None:
        out = self.signed
        for i in range(trace.MAX_HOPS + 1):
            out = trace.append_hop(out, f"000.00.99.H{i:02d}", AT)
        self.assertIs(sig.verify(out, self.trust).state, SignatureState.INVALID)
