"""Attachments: real kinds from bytes, R4's allowed list, zip-before-base64 unwrapping, refusals."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import re
import struct
import zipfile
from pathlib import Path
from types import ModuleType

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml import attachments
from edxml.attachments import ALLOWED, FileKind, Group, analyse, detect, unwrap
from edxml.findings import Fault, FindingCode, Severity, registry
from edxml.model import Attachment
from edxml.xmlsafe import DecodedBinary

FIXTURES = Path(__file__).parent / "fixtures" / "attachments"
REALWORLD = Path(__file__).parent / "fixtures" / "realworld" / "edoc_new.edxml"
if not REALWORLD.exists():  # the shared original, before the lead copied it into the tree
    REALWORLD = Path("/work/shared/fixtures/realworld/edoc_new.edxml")
EDGE = attachments.SNIFF_BYTES


def _load_make() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attachment_fixtures", FIXTURES / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make = _load_make()

EXPECTED = {
    "sample.pdf": FileKind.PDF,
    "sample.docx": FileKind.DOCX,
    "sample.xlsx": FileKind.XLSX,
    "sample.pptx": FileKind.PPTX,
    "sample.odt": FileKind.ODT,
    "sample.ods": FileKind.ODS,
    "sample.doc": FileKind.DOC,
    "sample.xls": FileKind.XLS,
    "sample.png": FileKind.PNG,
    "sample.jpg": FileKind.JPG,
    "sample.gif": FileKind.GIF,
    "sample.rtf": FileKind.RTF,
    "sample.txt": FileKind.TXT,
    "sample.csv": FileKind.CSV,
    "stub.exe": FileKind.EXE,
    "renamed_html.pdf": FileKind.HTML,
    "zipped_pdf.zip": FileKind.ZIP,
    "bomb.zip": FileKind.ZIP,
    "two_files.zip": FileKind.ZIP,
}
OFFICE = frozenset(
    {FileKind.DOC, FileKind.DOCX, FileKind.XLS, FileKind.XLSX, FileKind.ODT, FileKind.ODS}
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


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


def ends(data: bytes, name: str = "") -> attachments.Detection:
    return detect(data[:EDGE], data[-EDGE:], len(data), None, name=name)


def codes(verdict: attachments.AttachmentVerdict) -> list[str]:
    return [f.code for f in verdict.findings]


def large_docx(payload: int = 200 * 1024) -> bytes:
    """A docx whose stored random media push the central directory past the first 64 KiB."""
    media = os.urandom(payload)
    return make.zip_of(
        [*make.docx_entries(), ("word/media/image1.bin", media)],
        stored=frozenset({"word/media/image1.bin"}),
    )


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


class AllowedTableTests(SynchronousTestCase):
    def test_r4_formats_exactly(self) -> None:
        self.assertEqual(
            {k.value for k in ALLOWED},
            {"pdf", "txt", "rtf", "doc", "docx", "odt", "csv", "xls", "xlsx", "ods"}
            | {"jpg", "png", "gif"},
        )

    def test_groups(self) -> None:
        self.assertEqual(ALLOWED[FileKind.PDF].groups, {Group.SIGNED, Group.READ_ONLY})
        self.assertEqual(
            {k for k, i in ALLOWED.items() if Group.SHEET in i.groups},
            {FileKind.CSV, FileKind.XLS, FileKind.XLSX, FileKind.ODS},
        )
        self.assertEqual(
            ALLOWED[FileKind.DOCX].mime,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
        self.assertIn("jpeg", ALLOWED[FileKind.JPG].extensions)

    def test_refused_kinds_have_labels_and_every_message_is_bilingual(self) -> None:
        for info in attachments.KINDS.values():
            self.assertTrue(info.label_en and info.label_vi, info.kind)
        ours = [c for c in vars(attachments).values() if isinstance(c, FindingCode)]
        self.assertEqual(len(ours), 9)
        self.assertTrue(all(registry()[c.code] is c for c in ours))
        for code in ours:
            self.assertNotEqual(code.en, code.vi)
            self.assertTrue(any(ord(ch) > 127 for ch in code.vi), code.code)
            if code.severity is Severity.ERROR:
                self.assertIs(code.fault, Fault.UNSUPPORTED_ATTACHMENT)


class DetectFixturesTests(SynchronousTestCase):
    def test_every_fixture_from_its_content(self) -> None:
        for name, kind in EXPECTED.items():
            data = fixture(name)
            found = detect(data[:EDGE], data[-EDGE:], len(data), data, name=name)
            self.assertEqual(found.kind, kind, name)
            self.assertIsNone(found.problem, name)

    def test_every_fixture_from_head_and_tail_only(self) -> None:
        for name, kind in EXPECTED.items():
            self.assertEqual(ends(fixture(name), name).kind, kind, name)

    def test_libmagic_description_is_kept(self) -> None:
        found = detect(b"", b"", 0, fixture("stub.exe"))
        self.assertIn("PE32", found.description)
        self.assertEqual(found.magic_mime, "application/vnd.microsoft.portable-executable")

    def test_zip_entries_are_listed(self) -> None:
        found = detect(b"", b"", 0, fixture("two_files.zip"))
        self.assertEqual(found.entries, ("a.pdf", "b.pdf"))
        self.assertEqual(found.entry_count, 2)

    def test_large_docx_from_head_and_tail(self) -> None:
        data = large_docx()
        self.assertGreater(len(data), 2 * EDGE)
        cd_offset = struct.unpack_from("<I", data, len(data) - 22 + 16)[0]
        self.assertGreater(cd_offset, EDGE)  # the directory really is only in the tail
        found = ends(data)
        self.assertEqual(found.kind, FileKind.DOCX)
        self.assertIsNone(found.incomplete)
        self.assertTrue(found.allowed)
        self.assertEqual(found.entry_count, 4)

    def test_zip64_records_are_followed(self) -> None:
        limit = zipfile.ZIP_FILECOUNT_LIMIT
        zipfile.ZIP_FILECOUNT_LIMIT = 1  # makes zipfile write zip64 end records for 4 entries
        try:
            data = large_docx()
        finally:
            zipfile.ZIP_FILECOUNT_LIMIT = limit
        self.assertIn(b"PK\x06\x06", data[-200:])
        self.assertEqual(ends(data).kind, FileKind.DOCX)
        self.assertTrue(ends(data).allowed)
        buf = io.BytesIO()
        entries = make.odf_entries("application/vnd.oasis.opendocument.text", make.ODT_BODY)
        limit = zipfile.ZIP64_LIMIT
        zipfile.ZIP64_LIMIT = 0  # every size and later offset moves to a zip64 extra field
        try:
            with zipfile.ZipFile(buf, "w") as zf:
                for name, part in entries:
                    zf.writestr(name, part, compress_type=zipfile.ZIP_STORED)
        finally:
            zipfile.ZIP64_LIMIT = limit
        self.assertIn(b"\xff\xff\xff\xff", buf.getvalue()[buf.getvalue().rfind(b"PK\x01\x02") :])
        found = detect(b"", b"", 0, buf.getvalue())
        self.assertEqual(found.kind, FileKind.ODT)
        self.assertTrue(found.allowed)

    def test_zip_directory_out_of_reach_is_not_guessed(self) -> None:
        # a 65,535-byte archive comment pushes the end record out of the last 64 KiB
        data = bytearray(large_docx())
        struct.pack_into("<H", data, len(data) - 2, 0xFFFF)
        data += b"c" * 0xFFFF
        found = ends(bytes(data))
        self.assertEqual(found.kind, FileKind.DOCX)  # named from the local headers...
        self.assertFalse(found.allowed)  # ...but not accepted without the directory
        self.assertIsNotNone(found.incomplete)
        self.assertTrue(detect(b"", b"", 0, bytes(data)).allowed)

    def test_ole_directory_in_the_middle_needs_the_whole_file(self) -> None:
        data = make.doc(os.urandom(300 * 1024), metadata_after=250)
        self.assertGreater(len(data), 4 * EDGE)
        found = ends(data)
        self.assertEqual(found.kind, FileKind.OLE_UNKNOWN)
        assert found.incomplete is not None
        self.assertIn("64 KiB", found.incomplete.en)
        self.assertEqual(detect(b"", b"", 0, data).kind, FileKind.DOC)

    def test_ole_directory_at_the_end_is_read_from_the_tail(self) -> None:
        data = make.doc(os.urandom(300 * 1024), metadata_after=10**6)
        self.assertEqual(ends(data).kind, FileKind.DOC)

    def test_ole_kinds(self) -> None:
        cases = {
            "PowerPoint Document": FileKind.PPT,
            "Book": FileKind.XLS,
            "EncryptedPackage": FileKind.ENCRYPTED_OFFICE,
            "Contents": FileKind.OLE_UNKNOWN,
        }
        for stream, kind in cases.items():
            found = detect(b"", b"", 0, make.cfb([(stream, b"x")]))
            self.assertEqual(found.kind, kind, stream)
            self.assertIn(stream, found.entries)

    def test_corrupt_ole(self) -> None:
        data = fixture("sample.doc")
        truncated = detect(b"", b"", 0, data[:1024])
        self.assertEqual(truncated.kind, FileKind.OLE_UNKNOWN)
        self.assertIsNotNone(truncated.problem)
        looping = bytearray(data)
        struct.pack_into("<I", looping, 512 + 4 * 1, 1)  # the directory sector chains to itself
        self.assertIsNotNone(detect(b"", b"", 0, bytes(looping)).problem)

    def test_ooxml_variants(self) -> None:
        docm = make.zip_of([*make.docx_entries(), ("word/vbaProject.bin", b"\xd0\xcf")])
        self.assertEqual(detect(b"", b"", 0, docm).kind, FileKind.DOCM)
        other = make.zip_of([make.docx_entries()[0], ("visio/document.xml", b"<x/>")])
        self.assertEqual(detect(b"", b"", 0, other).kind, FileKind.OOXML_OTHER)

    def test_odf_variants(self) -> None:
        odp = make.odf("application/vnd.oasis.opendocument.presentation", "")
        self.assertEqual(detect(b"", b"", 0, odp).kind, FileKind.ODP)
        deflated = make.zip_of(
            [("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")]
        )
        self.assertEqual(detect(b"", b"", 0, deflated).kind, FileKind.ODT)
        epub = make.zip_of([("mimetype", b"application/epub+zip"), ("a.xhtml", b"<x/>")])
        self.assertEqual(detect(b"", b"", 0, epub).kind, FileKind.ZIP)

    def test_pdf(self) -> None:
        data = fixture("sample.pdf")
        self.assertIsNotNone(detect(b"", b"", 0, data[:-20]).problem)  # %%EOF cut off
        junk = b"garbage before the header\n" + data
        self.assertEqual(detect(b"", b"", 0, junk).kind, FileKind.PDF)
        polyglot = b"<html><body>" + data
        self.assertEqual(detect(b"", b"", 0, polyglot).kind, FileKind.HTML)

    def test_executables_and_markup(self) -> None:
        cases = {
            b"\x7fELF\x02\x01\x01" + bytes(64): FileKind.ELF,
            b"\xcf\xfa\xed\xfe" + bytes(64): FileKind.MACHO,
            b"#!/bin/sh\nrm -rf /\n": FileKind.SCRIPT,
            b"\xef\xbb\xbf  <!DOCTYPE HTML><p>x": FileKind.HTML,
            b"<div><script>alert(1)</script></div>": FileKind.HTML,
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>': FileKind.SVG,
            b'<?xml version="1.0"?><root/>': FileKind.XML,
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"/>': FileKind.EDXML,
            b"(function(){var a=1;})();": FileKind.JAVASCRIPT,
        }
        for data, kind in cases.items():
            self.assertEqual(detect(b"", b"", 0, data).kind, kind, data)

    def test_text(self) -> None:
        vietnamese = make.VIETNAMESE_TEXT
        self.assertEqual(detect(b"", b"", 0, vietnamese.encode("utf-16")).kind, FileKind.TXT)
        legacy = vietnamese.encode("cp1258", "replace")
        self.assertEqual(detect(b"", b"", 0, legacy).kind, FileKind.LEGACY_TEXT)
        self.assertEqual(detect(b"", b"", 0, b"text\x00with a NUL").kind, FileKind.UNKNOWN)
        ragged = b"a,b,c\n1,2\n3,4,5,6\n"
        self.assertEqual(detect(b"", b"", 0, ragged, name="x.csv").kind, FileKind.TXT)
        self.assertEqual(detect(b"", b"", 0, b"a;b\n1;2\n", name="x.csv").kind, FileKind.CSV)
        self.assertEqual(
            detect(b"", b"", 0, fixture("sample.csv"), name="x.txt").kind, FileKind.TXT
        )

    def test_long_text_cut_inside_a_character(self) -> None:
        data = ("Cộng hòa xã hội chủ nghĩa Việt Nam\n" * 6000).encode()
        self.assertGreater(len(data), 2 * EDGE)
        self.assertEqual(ends(data).kind, FileKind.TXT)
        rows = ("1,Nguyễn Văn An,Chuyên viên\n" * 8000).encode()
        self.assertEqual(ends(rows, "ds.csv").kind, FileKind.CSV)
        broken = data[: EDGE * 2] + b"\xff\xfe\xfd" + data[EDGE * 2 :]
        self.assertEqual(detect(b"", b"", 0, broken).kind, FileKind.LEGACY_TEXT)

    def test_empty(self) -> None:
        self.assertEqual(detect(b"", b"", 0).kind, FileKind.EMPTY)


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
