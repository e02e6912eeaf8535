"""File types: real kinds from bytes (whole, or head and tail only), and R4's allowed table."""

from __future__ import annotations

import io
import os
import struct
import zipfile

from attachment_samples import EDGE, EXPECTED, ends, fixture, large_docx, make

from twisted.trial.unittest import SynchronousTestCase

from edxml.filetypes import ALLOWED, KINDS, FileKind, Group, detect


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

    def test_every_kind_has_labels(self) -> None:
        for info in KINDS.values():
            self.assertTrue(info.label_en and info.label_vi, info.kind)


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
