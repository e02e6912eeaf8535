"""QCVN 102 ↔ the eDoc hub's packets (edxml.edochubmap): what the hub gets of an envelope, that
the signed bytes travel untouched, statuses both ways (the recall turned around), and traces as
deterministic status packets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
from hypothesis import given
from hypothesis import strategies as hs

from twisted.trial.unittest import SynchronousTestCase

from edxml import edochub, edochubmap, model, reader, writer
from edxml.codes import BusinessDocType, ReceiverType, StatusCode

SAMPLE = Path(__file__).resolve().parent / "fixtures" / "sample_envelope.edxml"
G22, G09, H23 = "000.00.00.G22", "000.00.00.G09", "000.00.00.H23"
NOW = dt.datetime(2025, 3, 6, 2, 30, tzinfo=dt.UTC)


def _sample() -> tuple[bytes, model.Envelope]:
    data = SAMPLE.read_bytes()
    doc = reader.read(data).document
    assert isinstance(doc, model.Envelope)
    return data, doc


def _trace(code: int = 3, **kw: object) -> edochub.Trace:
    fields: dict[str, object] = {
        "from_": edochub.Organization(G22, "Văn phòng Chính phủ"),
        "response_for": edochub.ResponseFor(
            H23, "123/UBND-VP", "2025/03/05 00:00:00", f"{H23},2025/03/05,123/UBND-VP"
        ),
        "staff": edochub.StaffInfo(department="Văn thư", staff="Nguyễn Văn A"),
        "code": code,
        "description": "Đã tiếp nhận",
        "timestamp": "2025/03/06 09:30:00",
    }
    fields.update(kw)
    return edochub.Trace(**fields)  # type: ignore[arg-type]


class OutgoingTests(SynchronousTestCase):
    def test_the_hubs_fields_files_and_the_signed_bytes(self) -> None:
        data, doc = _sample()
        out = edochubmap.outgoing_document(doc, data, recipients=[G22], now=NOW)
        h = doc.header
        self.assertEqual([o.organ_id for o in out.to], [G22])  # only those this hub serves
        self.assertEqual(out.document_id, h.document_id)
        self.assertEqual((out.code_number, out.code_notation), ("123", "UBND-VP"))
        self.assertEqual(out.promulgation_date, h.promulgation_info.promulgation_date)
        self.assertEqual(out.subject, h.subject)
        self.assertEqual(out.from_.organ_id, h.from_.organ_id)
        files = {a.name: a for a in out.attachments}
        for att in doc.attachments:
            self.assertEqual(files[att.attachment_name].data, att.content)
        last = out.attachments[-1]
        self.assertEqual(last.name, edochubmap.ENVELOPE_ATTACHMENT)
        self.assertIs(last.data, data)  # the exact bytes: the seal goes with them

    def test_what_the_hub_requires_is_checked_before_sending(self) -> None:
        data, doc = _sample()
        h = doc.header
        cases = {
            "recipients": (doc, [G09 + "x"]),
            "promulgation date": (
                attrs.evolve(
                    doc,
                    header=attrs.evolve(
                        h,
                        promulgation_info=attrs.evolve(h.promulgation_info, promulgation_date=None),
                    ),
                ),
                [G22],
            ),
            "number": (
                attrs.evolve(
                    doc, header=attrs.evolve(h, code=attrs.evolve(h.code, code_notation=""))
                ),
                [G22],
            ),
            "subject": (attrs.evolve(doc, header=attrs.evolve(h, subject="")), [G22]),
        }
        for what, (envelope, to) in cases.items():
            with self.assertRaises(edochubmap.MappingError) as caught:
                edochubmap.outgoing_document(envelope, data, recipients=to, now=NOW)
            self.assertIn(what, caught.exception.message_en)
            self.assertTrue(caught.exception.message_vi)

    def test_what_a_reply_update_or_replacement_acts_on_reaches_the_hub(self) -> None:
        data, doc = _sample()
        earlier = f"{H23},2025/02/01,100/UBND-VP"
        doc = attrs.evolve(
            doc,
            header=attrs.evolve(
                doc.header,
                response_for=(
                    model.ResponseFor(
                        G22, "7/VPCP", dt.date(2025, 3, 1), f"{G22},2025/03/01,7/VPCP"
                    ),
                ),
            ),
            trace=attrs.evolve(
                doc.trace,
                business=attrs.evolve(
                    doc.trace.business,
                    doc_type=BusinessDocType.REPLACE,
                    document_id=earlier,
                    document_info=model.BusinessDocumentInfo(
                        document_info=True,
                        document_receiver=False,
                        receivers=(model.Receiver(G09, ReceiverType.REMOVED),),
                    ),
                    replacements=(model.ReplacementInfo(earlier, (G22, G09)),),
                ),
            ),
        )
        out = edochubmap.outgoing_document(doc, data, recipients=[G22], now=NOW)
        self.assertEqual(
            out.response_for,
            (edochub.ResponseFor(G22, "7/VPCP", "2025/03/01", f"{G22},2025/03/01,7/VPCP"),),
        )
        self.assertEqual((out.business_doc_type, out.business_document_id), (3, earlier))
        self.assertEqual(
            out.update_info, edochub.UpdateInfo(1, 0, (edochub.ReceiverChange(G09, 0),))
        )
        self.assertEqual(out.replacements, (edochub.Replacement(earlier, (G22, G09)),))
        plain = edochubmap.outgoing_document(_sample()[1], data, recipients=[G22], now=NOW)
        self.assertEqual((plain.update_info, plain.replacements), (None, ()))

    def test_a_received_document_gives_back_the_envelope_part(self) -> None:
        data, doc = _sample()
        out = edochubmap.outgoing_document(doc, data, recipients=[G22], now=NOW)
        received = edochub.ReceivedDocument(
            hub_id=7,
            document_id=out.document_id,
            code="123/UBND-VP",
            from_=out.from_,
            to=out.to,
            subject=out.subject,
            promulgation_date=out.promulgation_date,
            business_doc_type=0,
            message_header=b"",
            trace_header_list=b"",
            attachments=out.attachments,
        )
        self.assertEqual(edochubmap.signed_envelope(received), data)
        without = attrs.evolve(received, attachments=out.attachments[:-1])
        self.assertIsNone(edochubmap.signed_envelope(without))


class StatusTests(SynchronousTestCase):
    def _packet(self, code: StatusCode) -> model.StatusPacket:
        return model.StatusPacket(
            response_for=model.ResponseFor(
                organ_id=H23,
                code="123/UBND-VP",
                promulgation_date=dt.date(2025, 3, 5),
                document_id=f"{H23},2025/03/05,123/UBND-VP",
            ),
            from_=model.Organization(organ_id=G22, organ_name="Văn phòng Chính phủ"),
            status_code=code,
            description="",
            timestamp=NOW,
            staff_info=model.StaffInfo(department="Văn thư", staff="Nguyễn Văn A"),
        )

    def test_a_status_as_the_hub_wants_it(self) -> None:
        trace = edochubmap.hub_trace(self._packet(StatusCode.ACCEPTED), recipient=H23)
        self.assertEqual(trace["response_for"].organ_id, H23)
        self.assertEqual(trace["response_for"].promulgation_date, "2025/03/05")
        self.assertEqual(trace["status"], StatusCode.ACCEPTED)
        self.assertEqual(trace["description"], StatusCode.ACCEPTED.label_vi)  # never empty
        self.assertEqual(trace["staff"].staff, "Nguyễn Văn A")

    def test_a_recall_request_is_filed_under_the_recipient_and_turned_back(self) -> None:
        packet = attrs.evolve(
            self._packet(StatusCode.RECALL_REQUESTED),
            from_=model.Organization(organ_id=H23, organ_name="UBND tỉnh Hà Nam"),
        )
        trace = edochubmap.hub_trace(packet, recipient=G22)
        self.assertEqual(trace["response_for"].organ_id, G22)  # the hub's §5.5 direction
        # As G22 reads it from the hub: From the issuer, ResponseFor the recipient.
        read = edochubmap.status_packet(
            _trace(
                13,
                from_=edochub.Organization(H23, "UBND tỉnh Hà Nam"),
                response_for=edochub.ResponseFor(G22, "123/UBND-VP", "2025/03/05", ""),
            )
        )
        assert read is not None
        self.assertEqual(read.response_for.organ_id, H23)  # ours names the document's sender
        self.assertEqual(read.response_for.document_id, f"{H23},2025/03/05,123/UBND-VP")

    def test_a_trace_is_a_valid_status_packet_the_same_every_time(self) -> None:
        packet = edochubmap.status_packet(_trace())
        assert packet is not None
        data = writer.write(packet)
        self.assertEqual(writer.write(edochubmap.status_packet(_trace())), data)  # type: ignore[arg-type]
        read = reader.read(data)
        self.assertEqual([f for f in read.findings if f.is_error], [])
        assert isinstance(read.document, model.StatusPacket)
        self.assertEqual(read.document.status_code, StatusCode.ACCEPTED)
        self.assertEqual(read.document.timestamp, dt.datetime(2025, 3, 6, 2, 30, tzinfo=dt.UTC))
        self.assertEqual(read.document.from_.organ_name, "Văn phòng Chính phủ")

    def test_the_hubs_own_codes_are_not_statuses(self) -> None:
        self.assertIsNone(edochubmap.status_packet(_trace(999)))
        self.assertIsNone(edochubmap.status_packet(_trace(42)))
        self.assertIsNone(edochubmap.status_packet(_trace(timestamp="soon")))

    @given(
        hs.text(max_size=40),
        hs.sampled_from([1, 2, 3, 4, 5, 6, 13, 15, 16, 999]),
        hs.text(max_size=20),
    )
    def test_a_kept_trace_reads_back_equal_with_the_same_key(
        self, description: str, code: int, staff: str
    ) -> None:
        trace = _trace(code, description=description, staff=edochub.StaffInfo(staff=staff))
        back = edochubmap.trace_from_json(edochubmap.trace_json(trace))
        self.assertEqual(back, trace)
        self.assertEqual(edochubmap.trace_key(back), edochubmap.trace_key(trace))
        other = attrs.evolve(trace, code=trace.code + 1)
        self.assertNotEqual(edochubmap.trace_key(other), edochubmap.trace_key(trace))
