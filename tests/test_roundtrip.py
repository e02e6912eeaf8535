"""Properties tying writer, XSD and reader together over generated valid models."""

from __future__ import annotations

import datetime as dt
import io

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import dates, documents, envelopes, status_packets, timestamps

from twisted.trial.unittest import SynchronousTestCase

from edxml import dates as edxml_dates
from edxml import schema
from edxml.codes import NS, BusinessDocType, StatusCode
from edxml.model import VN_TZ, Envelope, Extension, StatusPacket
from edxml.reader import read
from edxml.writer import write

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_KIND = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(test: SynchronousTestCase, doc: Envelope | StatusPacket) -> bytes:
    data = write(doc)
    result = read(data)
    test.assertEqual(result.document, doc)
    test.assertEqual(schema.validate(data, doc.kind), ())
    test.assertEqual(write(result.document), data)
    # Our own output only ever draws the one note about the standard's zone-less timestamps.
    test.assertEqual({f.code for f in result.findings}, {"TimestampWithoutZone"})
    return data


class RoundTripTests(SynchronousTestCase):
    @PROPERTY
    @given(documents())
    def test_read_of_write_is_identity(self, doc: Envelope | StatusPacket) -> None:
        self.assertEqual(read(write(doc)).document, doc)

    @PROPERTY
    @given(documents())
    def test_write_output_validates(self, doc: Envelope | StatusPacket) -> None:
        self.assertEqual(schema.validate(write(doc), doc.kind), ())

    @PROPERTY
    @given(documents())
    def test_write_is_a_fixed_point(self, doc: Envelope | StatusPacket) -> None:
        data = write(doc)
        self.assertEqual(write(read(data).document), data)

    @PROPERTY
    @given(documents())
    def test_no_error_findings_on_writer_output(self, doc: Envelope | StatusPacket) -> None:
        result = read(write(doc))
        self.assertEqual([f for f in result.findings if f.is_error], [])
        self.assertEqual({f.code for f in result.findings}, {"TimestampWithoutZone"})

    @PROPERTY
    @given(envelopes())
    def test_attachment_bytes_survive(self, envelope: Envelope) -> None:
        result = read(write(envelope))
        assert isinstance(result.document, Envelope)
        for got, original, decoded in zip(
            result.document.attachments, envelope.attachments, result.decoded, strict=True
        ):
            self.assertEqual(got.content, original.content)
            self.assertEqual(decoded.sha256, original.sha256)

    @PROPERTY
    @given(envelopes(max_files=3))
    def test_streamed_read_equals_memory_read(self, envelope: Envelope) -> None:
        sinks: dict[int, io.BytesIO] = {}
        data = write(envelope)
        chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
        result = read(iter(chunks), sink_factory=lambda i: sinks.setdefault(i, io.BytesIO()))
        self.assertEqual(result.document, envelope)
        self.assertEqual(
            [sinks[i].getvalue() for i in range(len(envelope.attachments))],
            [a.content for a in envelope.attachments],
        )


class EveryKindTests(SynchronousTestCase):
    """Each BussinessDocType and each StatusCode, explicitly, in every example."""

    @PER_KIND
    @given(st.data())
    def test_every_business_doc_type(self, data: st.DataObject) -> None:
        for doc_type in BusinessDocType:
            envelope = data.draw(envelopes(doc_type=doc_type, max_files=1), label=doc_type.name)
            self.assertEqual(envelope.trace.business.doc_type, doc_type)
            _check(self, envelope)

    @PER_KIND
    @given(st.data())
    def test_every_status_code(self, data: st.DataObject) -> None:
        for code in StatusCode:
            packet = data.draw(status_packets(status_code=code), label=code.name)
            self.assertEqual(packet.status_code, code)
            _check(self, packet)


class ExtensionRoundTripTests(SynchronousTestCase):
    @PER_KIND
    @given(envelopes(max_files=1), status_packets())
    def test_extensions_survive(self, envelope: Envelope, packet: StatusPacket) -> None:
        mine = Extension(
            tag=f"{{{NS}}}ApplicationType",
            xml=f'<edXML:ApplicationType xmlns:edXML="{NS}">MCDT_DT'
            f"</edXML:ApplicationType>".encode(),
        )
        foreign = Extension(
            tag="{urn:x}Note",
            xml='<x:Note xmlns:x="urn:x" k="v"><x:i>ghi chú</x:i></x:Note>'.encode(),
        )
        envelope = attrs.evolve(
            envelope,
            header=attrs.evolve(
                envelope.header,
                extensions=(mine, foreign),
                other_info=attrs.evolve(envelope.header.other_info, extensions=(foreign,)),
            ),
            trace=attrs.evolve(
                envelope.trace,
                business=attrs.evolve(envelope.trace.business, extensions=(foreign,)),
            ),
        )
        packet = attrs.evolve(packet, extensions=(mine,))
        for doc in (envelope, packet):
            data = write(doc)
            result = read(data)
            self.assertEqual(result.document, doc)
            self.assertEqual(schema.validate(data, doc.kind), ())
            self.assertEqual(write(result.document), data)
            self.assertIn("UnknownElement", {f.code for f in result.findings})


class DateTests(SynchronousTestCase):
    @given(dates())
    def test_date_round_trip(self, value: dt.date) -> None:
        text = edxml_dates.format_date(value)
        parsed = edxml_dates.parse_date(text)
        self.assertEqual((parsed.value, parsed.form), (value, "yyyy/MM/dd"))
        self.assertTrue(parsed.standard)

    @given(timestamps())
    def test_timestamp_round_trip(self, value: dt.datetime) -> None:
        text = edxml_dates.format_timestamp(value)
        parsed = edxml_dates.parse_timestamp(text)
        self.assertEqual(parsed.value, value)
        self.assertTrue(parsed.standard)
        self.assertFalse(parsed.zoned)

    @given(
        st.datetimes(
            min_value=dt.datetime(2001, 1, 1),
            max_value=dt.datetime(2034, 12, 31),
            timezones=st.sampled_from(
                [dt.UTC, VN_TZ, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]
            ),
        )
    )
    def test_iso_timestamps_keep_their_instant(self, value: dt.datetime) -> None:
        value = value.replace(microsecond=0)
        parsed = edxml_dates.parse_timestamp(value.isoformat())
        self.assertEqual(parsed.value, value)
        self.assertTrue(parsed.zoned)
        written = edxml_dates.format_timestamp(value)
        self.assertEqual(edxml_dates.parse_timestamp(written).value, value)

    def test_forms(self) -> None:
        cases = {
            "2025/03/05": (dt.date(2025, 3, 5), "yyyy/MM/dd"),
            "05/03/2025": (dt.date(2025, 3, 5), "dd/MM/yyyy"),
            "5/3/2025": (dt.date(2025, 3, 5), "d/M/yyyy"),
            "2025-03-05": (dt.date(2025, 3, 5), "yyyy-MM-dd"),
            "05.03.2025": (dt.date(2025, 3, 5), "dd.MM.yyyy"),
            "2025/03/05 10:00:00": (dt.date(2025, 3, 5), "yyyy/MM/dd HH:mm:ss"),
            " 2025/03/05\n": (dt.date(2025, 3, 5), "yyyy/MM/dd"),
            "": (None, "empty"),
            "   ": (None, "empty"),
            "2014/02/30": (None, "invalid"),
            "2025/13/01": (None, "invalid"),
            "2025/03/05 25:00:00": (None, "invalid"),
            "ngày 5 tháng 3": (None, "invalid"),
            "2025/03-05": (None, "invalid"),
        }
        for text, (value, form) in cases.items():
            parsed = edxml_dates.parse_date(text)
            self.assertEqual((parsed.value, parsed.form), (value, form), text)

    def test_timestamp_forms(self) -> None:
        vn = dt.datetime(2015, 9, 20, 11, 8, 36, tzinfo=VN_TZ)
        cases = {
            "2015/09/20 11:08:36": (vn, "yyyy/MM/dd HH:mm:ss", False),
            "20/09/2015 11:08:36": (vn, "dd/MM/yyyy HH:mm:ss", False),
            "2015-09-20T11:08:36": (vn, "yyyy-MM-ddTHH:mm:ss", False),
            "2015-09-20T04:08:36Z": (vn, "yyyy-MM-ddTHH:mm:ssZ", True),
            "2015-09-20T11:08:36+07:00": (vn, "yyyy-MM-ddTHH:mm:ss±hh:mm", True),
            "2015-09-20T11:08:36.250+0700": (
                vn.replace(microsecond=250000),
                "yyyy-MM-ddTHH:mm:ss.fff±hh:mm",
                True,
            ),
            "2015/09/20": (vn.replace(hour=0, minute=0, second=0), "yyyy/MM/dd", False),
            "2015/09/20 11:08": (vn.replace(second=0), "yyyy/MM/dd HH:mm", False),
        }
        for text, (value, form, zoned) in cases.items():
            parsed = edxml_dates.parse_timestamp(text)
            self.assertEqual((parsed.value, parsed.form, parsed.zoned), (value, form, zoned), text)
        for bad in ("2015/09/20 24:00:00", "2015/09/20 11:60:00", "2015-09-20T11:08:36+25:00"):
            self.assertEqual(edxml_dates.parse_timestamp(bad).form, "invalid", bad)

    def test_format_refuses_naive(self) -> None:
        with self.assertRaises(ValueError):
            edxml_dates.format_timestamp(dt.datetime(2025, 1, 1))
        self.assertEqual(edxml_dates.format_date(dt.date(999, 1, 2)), "0999/01/02")
