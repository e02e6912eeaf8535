"""The hardened parser: hostile XML refused, limits enforced, base64 streamed in bounded memory."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml import xmlsafe
from edxml.errors import HostileXML, MalformedXML, TooLarge

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&lol9;</edXML>"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&xxe;</edXML>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<edXML/>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/edxml.dtd"><edXML/>"""


def _envelope_chunks(payload_chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield b'<?xml version="1.0" encoding="utf-8"?><edXML xmlns="urn:t"><AttachmentEncoded>'
    yield b"<Attachment><ContentTransferEncoded>"
    yield from payload_chunks
    yield b"</ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>"


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)


class HostileXMLTests(SynchronousTestCase):
    def test_billion_laughs_refused(self) -> None:
        with self.assertRaises(HostileXML) as ctx:
            xmlsafe.parse(BILLION_LAUGHS)
        self.assertIn("DOCTYPE", str(ctx.exception))

    def test_xxe_refused(self) -> None:
        for doc in (XXE_FILE, XXE_PARAMETER, EXTERNAL_DTD):
            self.assertRaises(HostileXML, xmlsafe.parse, doc)
            self.assertRaises(HostileXML, xmlsafe.parse_stream, doc)

    def test_doctype_in_utf16_refused(self) -> None:
        self.assertRaises(HostileXML, xmlsafe.parse, BILLION_LAUGHS.decode().encode("utf-16"))

    def test_doctype_split_across_chunks_refused(self) -> None:
        chunks = [XXE_FILE[i : i + 3] for i in range(0, len(XXE_FILE), 3)]
        self.assertRaises(HostileXML, xmlsafe.parse_stream, chunks)

    def test_plain_parser_never_resolves_entities(self) -> None:
        parser = xmlsafe.parser()
        from lxml import etree

        root = etree.fromstring(XXE_FILE, parser)
        self.assertNotIn("root:", etree.tostring(root).decode())

    def test_deep_nesting_refused(self) -> None:
        doc = b"<a>" * 60 + b"</a>" * 60
        self.assertRaises(HostileXML, xmlsafe.parse, doc)

    def test_element_count_bounded(self) -> None:
        doc = b"<a>" + b"<b/>" * 1000 + b"</a>"
        limits = xmlsafe.Limits(max_elements=500)
        self.assertRaises(HostileXML, xmlsafe.parse, doc, limits=limits)

    def test_size_checked_before_parsing(self) -> None:
        doc = b"<a>" + b"x" * 2000 + b"</a>"
        self.assertRaises(TooLarge, xmlsafe.parse, doc, limits=xmlsafe.Limits(max_bytes=1000))

    def test_size_checked_while_streaming(self) -> None:
        chunks = (b"<a>", *([b"x" * 600] * 5), b"</a>")
        limits = xmlsafe.Limits(max_bytes=1000)
        self.assertRaises(TooLarge, xmlsafe.parse_stream, iter(chunks), limits=limits)

    def test_malformed_and_empty(self) -> None:
        self.assertRaises(MalformedXML, xmlsafe.parse, b"<a><b></a>")
        self.assertRaises(MalformedXML, xmlsafe.parse, b"")
        self.assertRaises(MalformedXML, xmlsafe.parse, b"not xml at all")


class StreamingBase64Tests(SynchronousTestCase):
    @settings(max_examples=60, deadline=None)
    @given(
        payload=st.binary(min_size=0, max_size=5000),
        chunk=st.integers(min_value=1, max_value=97),
        wrap=st.sampled_from([0, 64, 76]),
    )
    def test_decodes_any_chunking(self, payload: bytes, chunk: int, wrap: int) -> None:
        text = base64.b64encode(payload)
        if wrap:
            text = b"\r\n".join(text[i : i + wrap] for i in range(0, len(text), wrap))
        doc = b"".join(_envelope_chunks(iter([text])))
        pieces = [doc[i : i + chunk] for i in range(0, len(doc), chunk)]
        parsed = xmlsafe.parse_stream(pieces)
        (decoded,) = parsed.decoded.values()
        self.assertIsNone(decoded.error)
        self.assertEqual(decoded.content, payload)
        self.assertEqual(decoded.size, len(payload))
        self.assertEqual(decoded.sha256, hashlib.sha256(payload).hexdigest())
        self.assertEqual(decoded.head, payload[: 1 << 16])
        self.assertEqual(decoded.tail, payload[-(1 << 16) :] if payload else b"")

    def test_streamed_text_is_not_kept_in_tree(self) -> None:
        doc = b"".join(_envelope_chunks(iter([base64.b64encode(b"abc" * 100)])))
        parsed = xmlsafe.parse_stream(doc)
        (element,) = parsed.decoded
        self.assertFalse(element.text)

    def test_invalid_base64_reported_not_raised(self) -> None:
        for bad, why in (
            (b"QUJD$$$$", "invalid base64"),
            (b"QUJD=QUJD", "padding"),
            (b"QUJDR", "multiple of 4"),
            ("QUJDxé".encode(), "non-ASCII"),
        ):
            parsed = xmlsafe.parse_stream(b"".join(_envelope_chunks(iter([bad]))))
            (decoded,) = parsed.decoded.values()
            self.assertIsNotNone(decoded.error)
            self.assertIn(why, decoded.error or "")

    def test_sink_receives_bytes_instead_of_memory(self) -> None:
        payload = os.urandom(300_000)
        sinks: list[_HashSink] = []

        def factory(index: int) -> _HashSink:
            sinks.append(_HashSink())
            return sinks[-1]

        doc = b"".join(_envelope_chunks(iter([base64.b64encode(payload)])))
        parsed = xmlsafe.parse_stream(doc, sink_factory=factory)
        (decoded,) = parsed.decoded.values()
        self.assertIsNone(decoded.content)
        self.assertEqual(sinks[0].size, len(payload))
        self.assertEqual(sinks[0].hash.hexdigest(), hashlib.sha256(payload).hexdigest())

    def test_100mb_envelope_in_bounded_memory(self) -> None:
        """A 100 MB envelope streamed to a sink needs a few MB, not 3x its size."""
        block = os.urandom(3 * 1024 * 256)  # 768 KiB → 1 MiB of base64
        encoded = base64.b64encode(block)
        blocks = 100
        sink = _HashSink()
        tracemalloc.start()
        try:
            parsed = xmlsafe.parse_stream(
                _envelope_chunks(iter([encoded] * blocks)), sink_factory=lambda i: sink
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertGreaterEqual(parsed.size, 100 * 1024 * 1024)
        self.assertEqual(sink.size, len(block) * blocks)
        self.assertLess(peak, 8 * 1024 * 1024, f"peak {peak} bytes")


class StreamNamesTests(SynchronousTestCase):
    """`stream_names` picks the streamed elements: a bare local name anywhere, a Clark name
    only in its namespace."""

    DOC = (
        b'<r xmlns="urn:a" xmlns:b="urn:b"><Package>QUJD</Package><b:Package>REVG</b:Package>'
        b"<ContentTransferEncoded>R0hJ</ContentTransferEncoded></r>"
    )

    def _streamed(self, **kwargs: object) -> dict[str, bytes | None]:
        from lxml import etree

        parsed = xmlsafe.parse_stream(self.DOC, **kwargs)  # type: ignore[arg-type]
        return {etree.QName(e).text: d.content for e, d in parsed.decoded.items()}

    def test_default_streams_only_content_transfer_encoded(self) -> None:
        self.assertEqual(self._streamed(), {"{urn:a}ContentTransferEncoded": b"GHI"})

    def test_bare_name_matches_in_any_namespace(self) -> None:
        self.assertEqual(
            self._streamed(stream_names=("Package",)),
            {"{urn:a}Package": b"ABC", "{urn:b}Package": b"DEF"},
        )

    def test_clark_name_matches_only_its_namespace(self) -> None:
        parsed = xmlsafe.parse_stream(self.DOC, stream_names=("{urn:b}Package",))
        (element,) = parsed.decoded
        self.assertEqual(parsed.decoded[element].content, b"DEF")
        self.assertIsNone(element.text)
        # The other Package keeps its text in the tree, untouched.
        self.assertEqual(parsed.root[0].text, "QUJD")

    def test_file_chunks_feed_a_file_in_pieces(self) -> None:
        import io

        payload = os.urandom(200_000)
        doc = b"".join(_envelope_chunks(iter([base64.b64encode(payload)])))
        pieces = list(xmlsafe.file_chunks(io.BytesIO(doc), 1000))
        self.assertEqual(max(len(p) for p in pieces), 1000)
        (decoded,) = xmlsafe.parse_stream(xmlsafe.file_chunks(io.BytesIO(doc))).decoded.values()
        self.assertEqual(decoded.content, payload)

    def test_hostile_refused_with_other_names(self) -> None:
        for doc in (XXE_FILE, XXE_PARAMETER, EXTERNAL_DTD, BILLION_LAUGHS):
            self.assertRaises(HostileXML, xmlsafe.parse_stream, doc, stream_names=("edXML",))
        deep = b"<Package>" + b"<a>" * 60 + b"</a>" * 60 + b"</Package>"
        self.assertRaises(HostileXML, xmlsafe.parse_stream, deep, stream_names=("Package",))
        many = b"<r>" + b"<Package/>" * 600 + b"</r>"
        limits = xmlsafe.Limits(max_elements=500)
        self.assertRaises(
            HostileXML, xmlsafe.parse_stream, many, limits=limits, stream_names=("Package",)
        )

    def test_in_memory_content_is_not_copied_at_the_end(self) -> None:
        """Decoded into memory, the bytes exist once: the peak is the content plus pieces."""
        block = os.urandom(3 * 1024 * 256)
        encoded = base64.b64encode(block)
        chunks = [b"<r><Package>", *([encoded] * 20), b"</Package></r>"]
        tracemalloc.start()
        try:
            parsed = xmlsafe.parse_stream(iter(chunks), stream_names=("Package",))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        (decoded,) = parsed.decoded.values()
        size = len(block) * 20
        self.assertEqual(decoded.size, size)
        # A copy at the end (getvalue of a shared buffer, b"".join of parts) would double it.
        self.assertLess(peak, size * 1.25 + 4 * 1024 * 1024, f"peak {peak} for {size}")


class FidelityTests(SynchronousTestCase):
    def test_comments_and_pis_inside_root_kept_prolog_ignored(self) -> None:
        from lxml import etree

        doc = b'<?xml version="1.0"?><!--pre--><?pp x?><a><?p q?><!--c-->t</a><!--post-->'
        root = xmlsafe.parse(doc)
        self.assertEqual(root.tag, "a")
        self.assertEqual(etree.tostring(root), b"<a><?p q?><!--c-->t</a>")
