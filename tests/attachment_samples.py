"""The attachment fixture files, their builders (fixtures/attachments/make.py) and the kind of
each, shared by test_filetypes and test_attachments."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from edxml.containers import SNIFF_BYTES
from edxml.filetypes import Detection, FileKind, detect

FIXTURES = Path(__file__).parent / "fixtures" / "attachments"
EDGE = SNIFF_BYTES


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


def ends(data: bytes, name: str = "") -> Detection:
    """What detect() makes of a file from its first and last 64 KiB, as when it was streamed."""
    return detect(data[:EDGE], data[-EDGE:], len(data), None, name=name)


def large_docx(payload: int = 200 * 1024) -> bytes:
    """A docx whose stored random media push the central directory past the first 64 KiB."""
    media = os.urandom(payload)
    return make.zip_of(
        [*make.docx_entries(), ("word/media/image1.bin", media)],
        stored=frozenset({"word/media/image1.bin"}),
    )
