"""Attachments: R4 verdicts, zip-before-base64 unwrapping, refusals and their findings."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
from pathlib import Path

import attrs
from attachment_samples import (
    EDGE,
    EXPECTED,
    FIXTURES,
    OFFICE,
    ends,
    fixture,
    large_docx,
    make,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml import attachments
from edxml.attachments import AttachmentVerdict, analyse, unwrap
from edxml.filetypes import ALLOWED, FileKind, detect
from edxml.findings import Fault, FindingCode, Severity, registry
from edxml.model import Attachment
from edxml.xmlsafe import DecodedBinary

REALWORLD = Path(__file__).parent / "fixtures" / "realworld" / "edoc_new.edxml"
if not REALWORLD.exists():  # the shared original, before the lead copied it into the tree
    REALWORLD = Path("/work/shared/fixtures/realworld/edoc_new.edxml")


def att(data: bytes, name: str, content_type: str = "", cid: str = "1") -> Attachment:
    return Attachment.of(data, content_id=cid, attachment_name=name, content_type=content_type)


def streamed(data: bytes, error: str | None = None) -> DecodedBinary:
    """What xmlsafe keeps of an attachment it streamed to a sink: size, hash, the two ends."""
    return DecodedBinary(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        head=data[:EDGE],
        tail=data[-EDGE:],
        content=None,
        error=error,
    )


def codes(verdict: AttachmentVerdict) -> list[str]:
    return [f.code for f in verdict.findings]


def realworld_attachment() -> bytes:
    raw = REALWORLD.read_bytes()
    found = re.search(rb"<(?:\w+:)?ContentTransferEncoded[^>]*>([^<]*)<", raw)
    assert found is not None
    return base64.b64decode(found.group(1))


def patch_zip_flags(data: bytes, flags: int) -> bytes:
    """Set the general-purpose flags of every local and central header (e.g. 'encrypted')."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for m in re.finditer(re.escape(sig), data):
            struct.pack_into("<H", out, m.start() + at, flags)
    return bytes(out)


class FixtureFilesTests(SynchronousTestCase):
    def test_committed_fixtures_are_what_make_py_makes(self) -> None:
        for name, build in make.FIXTURES.items():
            self.assertEqual(fixture(name), build(), name)

    def test_fixtures_stay_small(self) -> None:
        total = sum(p.stat().st_size for p in FIXTURES.iterdir() if p.is_file())
        self.assertLess(total, 256 * 1024)

    def test_libmagic_reads_the_hand_made_compound_files(self) -> None:
        self.assertEqual(
            detect(b"", b"", 0, fixture("sample.doc")).magic_mime, "application/msword"
        )
        self.assertEqual(
            detect(b"", b"", 0, fixture("sample.xls")).magic_mime, "application/vnd.ms-excel"
        )


class FindingCodeTests(SynchronousTestCase):
    def test_every_message_is_bilingual(self) -> None:
        ours = [c for c in vars(attachments).values() if isinstance(c, FindingCode)]
        self.assertEqual(len(ours), 9)
        self.assertTrue(all(registry()[c.code] is c for c in ours))
        for code in ours:
            self.assertNotEqual(code.en, code.vi)
            self.assertTrue(any(ord(ch) > 127 for ch in code.vi), code.code)
            if code.severity is Severity.ERROR:
                self.assertIs(code.fault, Fault.UNSUPPORTED_ATTACHMENT)


class UnwrapTests(SynchronousTestCase):
    def test_single_entry_zip_is_unwrapped(self) -> None:
        result = unwrap(fixture("zipped_pdf.zip"))
        self.assertTrue(result.zipped)
        self.assertEqual(result.name, make.ZIPPED_PDF_ENTRY)
        self.assertEqual(result.data, fixture("sample.pdf"))
        self.assertEqual([f.code for f in result.findings], ["AttachmentZipped"])

    def test_office_containers_and_plain_files_are_left_alone(self) -> None:
        for name in ("sample.docx", "sample.xlsx", "sample.odt", "sample.ods", "sample.pdf"):
            data = fixture(name)
            result = unwrap(data)
            self.assertFalse(result.zipped, name)
            self.assertIs(result.data, data)
            self.assertEqual(result.findings, (), name)

    def test_zipped_docx_is_unwrapped_to_the_docx(self) -> None:
        inner = fixture("sample.docx")
        result = unwrap(make.zip_of([("a1b2.docx", inner)]))
        self.assertTrue(result.zipped)
        self.assertEqual(result.data, inner)

    def test_several_entries_are_refused_not_unwrapped(self) -> None:
        result = unwrap(fixture("two_files.zip"), name="hs.zip")
        self.assertFalse(result.zipped)
        self.assertEqual([f.code for f in result.findings], ["AttachmentTypeNotAllowed"])
        self.assertIn("2 entries", result.findings[0].message_en)
        self.assertIn("2 mục", result.findings[0].message_vi)

    def test_bomb_by_ratio(self) -> None:
        result = unwrap(fixture("bomb.zip"))
        self.assertFalse(result.zipped)
        self.assertEqual([f.code for f in result.findings], ["AttachmentZipBomb"])
        self.assertEqual(result.findings[0].params["expanded"], str(make.BOMB_SIZE))

    def test_bomb_by_absolute_size(self) -> None:
        result = unwrap(fixture("zipped_pdf.zip"), max_size=100)
        self.assertEqual([f.code for f in result.findings], ["AttachmentZipBomb"])

    def test_small_sparse_file_is_not_a_bomb(self) -> None:
        result = unwrap(make.zip_of([("blank.txt", bytes(512 * 1024))]))
        self.assertTrue(result.zipped)

    def test_lying_sizes_never_expand_past_the_declared_size(self) -> None:
        data = bytearray(fixture("bomb.zip"))
        for m in re.finditer(b"PK\x03\x04", bytes(data)):
            struct.pack_into("<I", data, m.start() + 22, 1000)
        for m in re.finditer(b"PK\x01\x02", bytes(data)):
            struct.pack_into("<I", data, m.start() + 24, 1000)
        result = unwrap(bytes(data))
        self.assertFalse(result.zipped)
        self.assertEqual([f.code for f in result.findings], ["AttachmentUnreadable"])

    def test_encrypted_entry_is_refused(self) -> None:
        result = unwrap(patch_zip_flags(fixture("zipped_pdf.zip"), 0x1))
        self.assertFalse(result.zipped)
        self.assertEqual([f.code for f in result.findings], ["AttachmentUnreadable"])
        self.assertIn("encrypted", result.findings[0].message_en)

    def test_unsafe_entry_name_is_reported(self) -> None:
        for entry in ("../../etc/cron.d/x.pdf", "/tmp/x.pdf", "C:\\Windows\\x.pdf"):
            result = unwrap(make.zip_of([(entry, make.pdf())]))
            self.assertTrue(result.zipped, entry)
            self.assertEqual(
                [f.code for f in result.findings],
                ["AttachmentZipEntryNameUnsafe", "AttachmentZipped"],
            )

    def test_corrupt_zip(self) -> None:
        data = fixture("zipped_pdf.zip")
        crc = data.rfind(b"PK\x01\x02") + 16
        bad_crc = data[:crc] + bytes(4) + data[crc + 4 :]
        result = unwrap(bad_crc)
        self.assertEqual([f.code for f in result.findings], ["AttachmentUnreadable"])


class AnalyseTests(SynchronousTestCase):
    def test_allowed_fixtures(self) -> None:
        for name, kind in EXPECTED.items():
            if kind not in ALLOWED:
                continue
            verdict = analyse(att(fixture(name), name, ALLOWED[kind].mime))
            self.assertTrue(verdict.allowed, (name, verdict.findings))
            self.assertEqual(verdict.kind, kind)
            self.assertEqual(verdict.findings, ())
            self.assertEqual(verdict.groups, ALLOWED[kind].groups)

    def test_refused_fixtures(self) -> None:
        cases = {
            "sample.pptx": ["AttachmentTypeNotAllowed"],
            "stub.exe": ["AttachmentTypeNotAllowed", "AttachmentNameNotAllowed"],
            "two_files.zip": ["AttachmentTypeNotAllowed"],
            "bomb.zip": ["AttachmentZipBomb"],
        }
        for name, expected in cases.items():
            verdict = analyse(att(fixture(name), name))
            self.assertFalse(verdict.allowed, name)
            self.assertEqual(codes(verdict), expected, name)

    def test_html_renamed_pdf(self) -> None:
        verdict = analyse(att(fixture("renamed_html.pdf"), "QD-123.pdf", "application/pdf"))
        self.assertFalse(verdict.allowed)
        self.assertEqual(verdict.kind, FileKind.HTML)
        self.assertEqual(codes(verdict), ["AttachmentTypeNotAllowed", "AttachmentTypeMismatch"])
        mismatch = verdict.findings[1]
        self.assertIs(mismatch.severity, Severity.WARNING)
        self.assertIn("application/pdf", mismatch.message_en)
        self.assertIn("HTML", mismatch.message_en)
        self.assertIn("trang HTML", mismatch.message_vi)

    def test_zipped_pdf_is_allowed(self) -> None:
        data = fixture("zipped_pdf.zip")
        for content_type in ("application/pdf", "application/zip", ""):
            verdict = analyse(att(data, "123-UBND-VP.pdf", content_type))
            self.assertTrue(verdict.allowed, content_type)
            self.assertTrue(verdict.zipped)
            self.assertEqual(verdict.kind, FileKind.PDF)
            self.assertEqual(verdict.inner_name, make.ZIPPED_PDF_ENTRY)
            self.assertEqual(verdict.data, fixture("sample.pdf"))
            self.assertEqual(verdict.sha256, hashlib.sha256(data).hexdigest())
            self.assertEqual(codes(verdict), ["AttachmentZipped"])

    def test_realworld_attachment(self) -> None:
        data = realworld_attachment()
        verdict = analyse(att(data, "1896_QD-TTg_m_294779.doc", "application/zip", "209"))
        self.assertEqual(verdict.declared_type, "application/zip")
        self.assertEqual(verdict.declared_extension, "doc")
        self.assertTrue(verdict.zipped)
        self.assertTrue(verdict.inner_name.endswith(".edxml"))
        self.assertEqual(verdict.kind, FileKind.EDXML)
        self.assertEqual(verdict.size, len(data))
        self.assertEqual(verdict.sha256, hashlib.sha256(data).hexdigest())
        self.assertFalse(verdict.allowed)
        self.assertEqual(
            sorted(codes(verdict)),
            ["AttachmentTypeMismatch", "AttachmentTypeNotAllowed", "AttachmentZipped"],
        )
        mismatch = next(f for f in verdict.findings if f.code == "AttachmentTypeMismatch")
        for fact in ("application/zip", ".doc", verdict.inner_name, "edXML"):
            self.assertIn(fact, mismatch.message_en)
            self.assertIn(fact, mismatch.message_vi)
        refusal = next(f for f in verdict.findings if f.code == "AttachmentTypeNotAllowed")
        self.assertIs(refusal.fault, Fault.UNSUPPORTED_ATTACHMENT)
        self.assertIn(".edxml", refusal.message_en)

    def test_mismatches(self) -> None:
        pdf, docx = fixture("sample.pdf"), fixture("sample.docx")
        warned = [
            (pdf, "x.doc", "application/msword"),
            (pdf, "x.pdf", "application/msword"),
            (docx, "x.doc", "application/msword"),
            (fixture("sample.png"), "x.jpg", "image/jpeg"),
        ]
        for data, name, ctype in warned:
            verdict = analyse(att(data, name, ctype))
            self.assertTrue(verdict.allowed, name)  # a warning, not a refusal
            self.assertEqual(codes(verdict), ["AttachmentTypeMismatch"], (name, ctype))
        quiet = [
            (pdf, "x.PDF", "application/pdf; name=x.pdf"),
            (pdf, "x.pdf", "application/octet-stream"),
            (fixture("sample.jpg"), "anh.jpeg", "image/jpg"),
            (fixture("sample.csv"), "ds.csv", "application/vnd.ms-excel"),
            (fixture("sample.txt"), "README", "text/plain"),
        ]
        for data, name, ctype in quiet:
            self.assertEqual(codes(analyse(att(data, name, ctype))), [], (name, ctype))

    def test_dangerous_names_are_refused_whatever_the_content(self) -> None:
        for name in ("run.bat", "x.js", "invoice.pdf.exe", "a.vbs. "):
            verdict = analyse(att(b"echo hello\r\n", name))
            self.assertFalse(verdict.allowed, name)
            self.assertIn("AttachmentNameNotAllowed", codes(verdict))
        inner = analyse(att(make.zip_of([("a.bat", b"echo\r\n")]), "a.txt"))
        self.assertIn("AttachmentNameNotAllowed", codes(inner))

    def test_empty(self) -> None:
        verdict = analyse(att(b"", "x.pdf", "application/pdf"))
        self.assertEqual(verdict.kind, FileKind.EMPTY)
        self.assertEqual(codes(verdict), ["AttachmentEmpty"])
        self.assertFalse(verdict.allowed)

    def test_streamed_attachment_judged_from_its_ends(self) -> None:
        data = large_docx()
        bare = attrs.evolve(att(data, "x.docx"), content=None)
        verdict = analyse(bare, streamed(data))
        self.assertTrue(verdict.allowed)
        self.assertEqual(verdict.kind, FileKind.DOCX)
        self.assertIsNone(verdict.data)
        self.assertEqual(verdict.sha256, hashlib.sha256(data).hexdigest())

    def test_streamed_zip_needs_its_bytes(self) -> None:
        data = fixture("zipped_pdf.zip")
        bare = attrs.evolve(att(data, "x.pdf"), content=None)
        verdict = analyse(bare, streamed(data))
        self.assertFalse(verdict.allowed)
        self.assertEqual(codes(verdict)[0], "AttachmentNotInspected")
        self.assertTrue(analyse(attrs.evolve(bare, content=data), streamed(data)).allowed)

    def test_streamed_ole_out_of_reach(self) -> None:
        data = make.doc(os.urandom(300 * 1024), metadata_after=250)
        bare = attrs.evolve(att(data, "x.doc"), content=None)
        self.assertEqual(codes(analyse(bare, streamed(data))), ["AttachmentNotInspected"])

    def test_invalid_base64_and_corrupt_files(self) -> None:
        pdf = fixture("sample.pdf")
        verdict = analyse(att(pdf, "x.pdf"), streamed(pdf, error="invalid base64: bad padding"))
        self.assertEqual(codes(verdict), ["AttachmentUnreadable"])
        self.assertIn("bad padding", verdict.findings[0].message_vi)
        self.assertFalse(verdict.allowed)
        truncated = analyse(att(pdf[: len(pdf) // 2], "x.pdf"))
        self.assertEqual(codes(truncated), ["AttachmentUnreadable"])
        broken_ole = analyse(att(fixture("sample.doc")[:2048], "x.doc"))
        self.assertEqual(codes(broken_ole), ["AttachmentUnreadable"])

    def test_to_json(self) -> None:
        data = realworld_attachment()
        out = analyse(att(data, "1896_QD-TTg_m_294779.doc", "application/zip")).to_json()
        self.assertEqual(out["kind"], "edxml")
        self.assertFalse(out["allowed"])
        self.assertIn("AttachmentTypeMismatch", out["findings"])


_SIGNATURES = st.sampled_from(
    [b"", b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"%PDF-", b"{\\rtf"]
)


class PropertyTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(prefix=_SIGNATURES, body=st.binary(max_size=4096), cut=st.integers(0, 1 << 20))
    def test_random_bytes_never_crash_nor_pass_as_office(
        self, prefix: bytes, body: bytes, cut: int
    ) -> None:
        data = prefix + body
        for found in (
            detect(b"", b"", 0, data),
            detect(data[:64], data[-64:], len(data) + cut),  # ends of a bigger file
        ):
            self.assertNotIn(found.kind, OFFICE)
        result = unwrap(data)
        self.assertFalse(result.zipped and not data.startswith(b"PK"))
        verdict = analyse(att(data, "x.docx"))
        self.assertNotIn(verdict.kind, OFFICE)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        name=st.sampled_from(sorted(EXPECTED)),
        edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
        keep=st.integers(0, 1 << 16),
    )
    def test_damaged_fixtures_never_crash(
        self, name: str, edits: list[tuple[int, int]], keep: int
    ) -> None:
        data = bytearray(fixture(name))
        for at, value in edits:
            data[at % len(data)] = value
        damaged = bytes(data[: max(1, keep % (len(data) + 1))])
        found = detect(b"", b"", 0, damaged, name=name)
        self.assertIsInstance(found.kind, FileKind)
        ends(damaged, name)
        unwrap(damaged, max_size=1 << 20)
        verdict = analyse(att(damaged, name), max_size=1 << 20)
        if verdict.allowed:
            self.assertIn(verdict.kind, ALLOWED)
