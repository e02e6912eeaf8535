"""File types: what a file really is, judged by its bytes, and which kinds R4 allows.

R4 (regulation.md, art. 4.4) allows pdf (signed and read-only), txt rtf doc docx odt (text),
csv xls xlsx ods (sheets) and jpg png gif (images), and asks that files be judged by their
content, not their name. libmagic names the bytes, but often stops at the container: Office
Open XML and OpenDocument files are zips, Office 97 files are OLE2 compound files ("CDF"), and
libmagic only looks further when the right bytes are in the buffer it is given. So detect()
names a zip or compound file from its directory (read by edxml.containers), from the full bytes
or only the first and last 64 KiB; what cannot be decided from the ends is said so
(Detection.incomplete), never guessed. Everything here is pure: bytes in, values out.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import magic

from edxml.containers import (
    OLE_DIR_AWAY,
    OLE_SIGNATURE,
    SNIFF_BYTES,
    ZIP_CD_AWAY,
    ZIP_SIGNATURES,
    Note,
    OleError,
    OleFile,
    Window,
    ZipMember,
    central_directory,
    corrupt_ole,
    local_headers,
    small_member,
)

_MAX_NAMES = 64  # zip member / OLE stream names kept on a Detection for reports


class FileKind(enum.Enum):
    """What the bytes are. The first thirteen are R4's formats; the rest are named refusals."""

    PDF = "pdf"
    TXT = "txt"
    RTF = "rtf"
    DOC = "doc"
    DOCX = "docx"
    ODT = "odt"
    CSV = "csv"
    XLS = "xls"
    XLSX = "xlsx"
    ODS = "ods"
    JPG = "jpg"
    PNG = "png"
    GIF = "gif"
    PPT = "ppt"
    PPTX = "pptx"
    DOCM = "docm"
    XLSM = "xlsm"
    ODP = "odp"
    ODF_OTHER = "odf-other"
    OOXML_OTHER = "ooxml-other"
    OLE_UNKNOWN = "ole-unknown"
    ENCRYPTED_OFFICE = "encrypted-office"
    ZIP = "zip"
    EXE = "exe"
    ELF = "elf"
    MACHO = "macho"
    SCRIPT = "script"
    HTML = "html"
    JAVASCRIPT = "javascript"
    SVG = "svg"
    XML = "xml"
    EDXML = "edxml"
    LEGACY_TEXT = "legacy-text"
    EMPTY = "empty"
    UNKNOWN = "unknown"


class Group(enum.Enum):
    """R4's columns. A PDF is in two: the signed original and the read-only copy."""

    SIGNED = "signed"
    TEXT = "text"
    SHEET = "sheet"
    READ_ONLY = "read-only"
    IMAGE = "image"


@attrs.frozen
class KindInfo:
    kind: FileKind
    extensions: tuple[str, ...]
    mime: str  # canonical MIME type, the one to declare when sending
    label_en: str
    label_vi: str
    mime_aliases: tuple[str, ...] = ()  # other types senders declare for the same format
    groups: frozenset[Group] = frozenset()

    @property
    def mimes(self) -> tuple[str, ...]:
        return (self.mime, *self.mime_aliases)


_G = Group
_KIND_LIST = (
    KindInfo(FileKind.PDF, ("pdf",), "application/pdf", "a PDF document", "tài liệu PDF",
             ("application/x-pdf", "application/acrobat"), frozenset({_G.SIGNED, _G.READ_ONLY})),
    KindInfo(FileKind.TXT, ("txt",), "text/plain", "plain text", "văn bản thuần (text)",
             (), frozenset({_G.TEXT})),
    KindInfo(FileKind.RTF, ("rtf",), "application/rtf", "an RTF document", "tài liệu RTF",
             ("text/rtf", "application/x-rtf", "text/richtext"), frozenset({_G.TEXT})),
    KindInfo(FileKind.DOC, ("doc", "dot"), "application/msword",
             "a Word 97-2003 document (.doc)", "tài liệu Word 97-2003 (.doc)",
             ("application/vnd.ms-word", "application/doc"), frozenset({_G.TEXT})),
    KindInfo(FileKind.DOCX, ("docx",),
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "a Word document (.docx)", "tài liệu Word (.docx)", (), frozenset({_G.TEXT})),
    KindInfo(FileKind.ODT, ("odt",), "application/vnd.oasis.opendocument.text",
             "an OpenDocument text (.odt)", "văn bản OpenDocument (.odt)",
             (), frozenset({_G.TEXT})),
    KindInfo(FileKind.CSV, ("csv",), "text/csv", "a CSV table", "bảng dữ liệu CSV",
             # Windows registers .csv as an Excel type, so browsers and SDKs send that
             ("application/csv", "text/comma-separated-values", "application/vnd.ms-excel",
              "text/plain"), frozenset({_G.SHEET})),
    KindInfo(FileKind.XLS, ("xls", "xlt"), "application/vnd.ms-excel",
             "an Excel 97-2003 workbook (.xls)", "bảng tính Excel 97-2003 (.xls)",
             ("application/excel", "application/x-excel", "application/x-msexcel"),
             frozenset({_G.SHEET})),
    KindInfo(FileKind.XLSX, ("xlsx",),
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "an Excel workbook (.xlsx)", "bảng tính Excel (.xlsx)", (), frozenset({_G.SHEET})),
    KindInfo(FileKind.ODS, ("ods",), "application/vnd.oasis.opendocument.spreadsheet",
             "an OpenDocument spreadsheet (.ods)", "bảng tính OpenDocument (.ods)",
             (), frozenset({_G.SHEET})),
    KindInfo(FileKind.JPG, ("jpg", "jpeg", "jpe", "jfif"), "image/jpeg", "a JPEG image",
             "ảnh JPEG", ("image/jpg", "image/pjpeg"), frozenset({_G.IMAGE})),
    KindInfo(FileKind.PNG, ("png",), "image/png", "a PNG image", "ảnh PNG",
             ("image/x-png",), frozenset({_G.IMAGE})),
    KindInfo(FileKind.GIF, ("gif",), "image/gif", "a GIF image", "ảnh GIF",
             (), frozenset({_G.IMAGE})),
    KindInfo(FileKind.PPT, ("ppt", "pps"), "application/vnd.ms-powerpoint",
             "a PowerPoint 97-2003 presentation (.ppt)",
             "bản trình chiếu PowerPoint 97-2003 (.ppt)"),
    KindInfo(FileKind.PPTX, ("pptx", "ppsx", "pptm"),
             "application/vnd.openxmlformats-officedocument.presentationml.presentation",
             "a PowerPoint presentation (.pptx)", "bản trình chiếu PowerPoint (.pptx)"),
    KindInfo(FileKind.DOCM, ("docm",), "application/vnd.ms-word.document.macroEnabled.12",
             "a macro-enabled Word document (.docm)", "tài liệu Word có macro (.docm)"),
    KindInfo(FileKind.XLSM, ("xlsm",), "application/vnd.ms-excel.sheet.macroEnabled.12",
             "a macro-enabled Excel workbook (.xlsm)", "bảng tính Excel có macro (.xlsm)"),
    KindInfo(FileKind.ODP, ("odp",), "application/vnd.oasis.opendocument.presentation",
             "an OpenDocument presentation (.odp)", "bản trình chiếu OpenDocument (.odp)"),
    KindInfo(FileKind.ODF_OTHER, (), "application/vnd.oasis.opendocument",
             "another kind of OpenDocument file", "tệp OpenDocument loại khác"),
    KindInfo(FileKind.OOXML_OTHER, (), "application/vnd.openxmlformats-package",
             "another kind of Office Open XML package", "gói Office Open XML loại khác"),
    KindInfo(FileKind.OLE_UNKNOWN, (), "application/x-ole-storage",
             "an OLE2 compound file of unknown kind", "tệp OLE2 (compound file) không rõ loại"),
    KindInfo(FileKind.ENCRYPTED_OFFICE, (), "application/x-ole-storage",
             "a password-protected Office file", "tệp Office được bảo vệ bằng mật khẩu"),
    KindInfo(FileKind.ZIP, ("zip",), "application/zip", "a zip archive", "tệp nén zip",
             ("application/x-zip-compressed", "application/x-zip", "multipart/x-zip")),
    KindInfo(FileKind.EXE, ("exe", "dll", "com", "scr", "sys"),
             "application/vnd.microsoft.portable-executable",
             "a Windows executable program", "chương trình thực thi Windows",
             ("application/x-msdownload", "application/x-dosexec")),
    KindInfo(FileKind.ELF, (), "application/x-executable",
             "a Linux/Unix executable program (ELF)", "chương trình thực thi Linux/Unix (ELF)"),
    KindInfo(FileKind.MACHO, (), "application/x-mach-binary",
             "a macOS executable program", "chương trình thực thi macOS"),
    KindInfo(FileKind.SCRIPT, ("sh", "py", "pl"), "text/x-shellscript",
             "a script (#!)", "tệp lệnh (script #!)"),
    KindInfo(FileKind.HTML, ("html", "htm", "xhtml"), "text/html", "an HTML page", "trang HTML",
             ("application/xhtml+xml",)),
    KindInfo(FileKind.JAVASCRIPT, ("js", "mjs"), "text/javascript", "JavaScript code",
             "mã JavaScript", ("application/javascript", "application/x-javascript")),
    KindInfo(FileKind.SVG, ("svg",), "image/svg+xml", "an SVG image (may carry scripts)",
             "ảnh SVG (có thể chứa mã lệnh)"),
    KindInfo(FileKind.XML, ("xml",), "application/xml", "an XML document", "tài liệu XML",
             ("text/xml",)),
    KindInfo(FileKind.EDXML, ("edxml", "xml"), "application/xml", "an edXML package",
             "gói tin edXML", ("text/xml",)),
    KindInfo(FileKind.LEGACY_TEXT, ("txt", "csv"), "text/plain",
             "text in a legacy 8-bit encoding (TCVN3, VNI, Windows-1258…), not Unicode",
             "văn bản mã hóa 8-bit cũ (TCVN3, VNI, Windows-1258…), không phải Unicode"),
    KindInfo(FileKind.EMPTY, (), "application/x-empty", "an empty file", "tệp rỗng"),
    KindInfo(FileKind.UNKNOWN, (), "application/octet-stream", "an unrecognised format",
             "định dạng không nhận diện được"),
)  # fmt: skip

KINDS: Mapping[FileKind, KindInfo] = MappingProxyType({i.kind: i for i in _KIND_LIST})
ALLOWED: Mapping[FileKind, KindInfo] = MappingProxyType({i.kind: i for i in _KIND_LIST if i.groups})

# Refused by name whatever the content: a receiving clerk double-clicks what arrives.
DANGEROUS_EXTENSIONS = frozenset(
    {
        *("exe", "com", "scr", "pif", "bat", "cmd", "msi", "msp", "dll", "cpl", "jar", "lnk"),
        *("js", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "hta", "sh", "reg", "inf"),
        *("application", "gadget"),
    }
)


def extension_of(name: str) -> str:
    """The extension as Windows sees it (trailing dots and spaces dropped), lower case."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ").strip()
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


_ODF_MIMETYPE_AWAY = Note(
    "the OpenDocument mimetype entry cannot be read",
    "không đọc được mục mimetype của tệp OpenDocument",
)
_PDF_NO_EOF = Note(
    "no %%EOF marker in its last 64 KiB: the PDF is truncated",
    "không có dấu kết thúc %%EOF trong 64 KiB cuối: tệp PDF bị cắt cụt",
)
_PNG_NO_IHDR = Note(
    "a PNG signature without its IHDR header chunk", "có chữ ký PNG nhưng thiếu khối IHDR"
)


# --- detection -----------------------------------------------------------------------------------


@attrs.frozen
class Detection:
    kind: FileKind
    mime: str  # the kind's canonical MIME type; libmagic's for UNKNOWN
    magic_mime: str = ""
    description: str = ""  # libmagic's description of the first 64 KiB
    entries: tuple[str, ...] = ()  # zip member or OLE stream names (at most 64)
    entry_count: int | None = None  # zip members in the central directory, when it was read
    problem: Note | None = None  # the bytes claim a structure they do not hold (corrupt)
    incomplete: Note | None = None  # undecidable from head and tail alone

    @property
    def allowed(self) -> bool:
        return self.kind in ALLOWED and self.problem is None and self.incomplete is None


def _found(kind: FileKind, **kw: Any) -> Detection:
    return Detection(kind=kind, mime=KINDS[kind].mime, **kw)


def detect(
    head: bytes, tail: bytes, size: int, content: bytes | None = None, *, name: str = ""
) -> Detection:
    """The real kind of a file from its bytes: all of them (`content`) or its first and last
    64 KiB (`head`, `tail`) and its `size`. `name` is only used to tell csv from txt."""
    win = Window(head, tail, size, content)
    if win.size == 0:
        return _found(FileKind.EMPTY, magic_mime="application/x-empty", description="empty")
    magic_mime, description = _libmagic(win.head)
    found = _sniff(win, name, magic_mime)
    mime = (magic_mime or found.mime) if found.kind is FileKind.UNKNOWN else found.mime
    return attrs.evolve(found, mime=mime, magic_mime=magic_mime, description=description)


def detect_zip(content: bytes) -> Detection:
    """The kind of a whole zip from its directory alone, without asking libmagic."""
    return _zip(Window(b"", b"", len(content), content))


def _libmagic(sample: bytes) -> tuple[str, str]:
    try:
        return magic.from_buffer(sample, mime=True), magic.from_buffer(sample)
    except magic.MagicException as exc:
        return "", f"libmagic failed: {exc}"


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_MACHO_SIGS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_JS_MIMES = frozenset(KINDS[FileKind.JAVASCRIPT].mimes)
_XML_MIMES = frozenset({"text/xml", "application/xml"})


def _sniff(win: Window, name: str, magic_mime: str) -> Detection:
    h = win.head
    if h.startswith(b"%PDF-"):
        return _pdf(win)
    if h.startswith(b"MZ"):
        return _found(FileKind.EXE)
    if h.startswith(b"\x7fELF"):
        return _found(FileKind.ELF)
    if h[:4] in _MACHO_SIGS:
        return _found(FileKind.MACHO)
    if h.startswith(_PNG_SIG):
        return _found(FileKind.PNG, problem=None if h[12:16] == b"IHDR" else _PNG_NO_IHDR)
    if h.startswith(b"\xff\xd8\xff"):
        return _found(FileKind.JPG)
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return _found(FileKind.GIF)
    if h.startswith(b"{\\rtf"):
        return _found(FileKind.RTF)
    if h.startswith(ZIP_SIGNATURES):
        return _zip(win)
    if h.startswith(OLE_SIGNATURE):
        return _ole(win)
    markup = _markup(h, magic_mime)
    if markup is not None:
        return _found(markup)
    if b"%PDF-" in h[:1024]:  # readers accept a header anywhere in the first KiB
        return _pdf(win)
    return _text(win, name)


def _pdf(win: Window) -> Detection:
    _, end = win.suffix(SNIFF_BYTES)
    return _found(FileKind.PDF, problem=None if b"%%EOF" in end else _PDF_NO_EOF)


_HTML_TAGS = (b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<frameset", b"<meta ")
_XML_START = re.compile(rb"<[a-z_][\w:.-]*[\s/>]")
_EDXML_MARK = re.compile(rb"<(?:[\w.-]+:)?edXML\b|QCVN_102_2016")


def _markup(head: bytes, magic_mime: str) -> FileKind | None:
    start = head[:2048].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if start.startswith(b"#!"):
        return FileKind.SCRIPT
    if magic_mime in _JS_MIMES or start.startswith(
        (b"'use strict'", b'"use strict"', b"(function", b"eval(")
    ):
        return FileKind.JAVASCRIPT
    if not start.startswith(b"<"):
        return None
    if start.startswith((b"<!doctype html", b"<html")):
        return FileKind.HTML
    if b"<svg" in start:
        return FileKind.SVG
    if any(tag in start for tag in _HTML_TAGS):
        return FileKind.HTML
    if start.startswith(b"<?xml") or magic_mime in _XML_MIMES or _XML_START.match(start):
        return FileKind.EDXML if _EDXML_MARK.search(head[:4096]) else FileKind.XML
    return None


# C0 controls that do not occur in text files (tab, newlines, form feed, SUB and ESC do).
_BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x19\x1c-\x1f]")


def _text(win: Window, name: str) -> Detection:
    if win.head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _utf16_text(win, name)
    parts = [win.content] if win.content is not None else [win.head, win.tail]
    if any(_BINARY_CONTROL.search(p) for p in parts if p is not None):
        return _found(FileKind.UNKNOWN)
    text = _utf8(win)
    if text is None:
        return _found(FileKind.LEGACY_TEXT)
    return _found(_txt_or_csv(text, win.complete and win.size <= SNIFF_BYTES, name))


def _utf8(win: Window) -> str | None:
    """The text of the head when the known bytes are UTF-8 (a cut character at a cut is fine)."""
    try:
        if win.content is not None:
            win.content.decode("utf-8")
            return win.content[:SNIFF_BYTES].decode("utf-8", "ignore")
        text = codecs.getincrementaldecoder("utf-8")().decode(win.head, final=False)
        tail = win.tail
        for _ in range(3):  # the tail may begin inside a character
            if tail[:1] and 0x80 <= tail[0] <= 0xBF:
                tail = tail[1:]
        tail.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text


def _utf16_text(win: Window, name: str) -> Detection:
    sample = win.content if win.content is not None else win.head
    try:
        text = codecs.getincrementaldecoder("utf-16")().decode(sample, final=win.complete)
    except UnicodeDecodeError:
        return _found(FileKind.UNKNOWN)
    if any(ch < " " and ch not in "\t\n\v\f\r\x1a\x1b" for ch in text[:SNIFF_BYTES]):
        return _found(FileKind.UNKNOWN)
    return _found(_txt_or_csv(text, win.complete and win.size <= SNIFF_BYTES, name))


def _txt_or_csv(text: str, whole: bool, name: str) -> FileKind:
    if extension_of(name) == "csv" and _consistent_columns(text, whole):
        return FileKind.CSV
    return FileKind.TXT


def _consistent_columns(text: str, whole: bool) -> bool:
    lines = text[:SNIFF_BYTES].splitlines()
    if not whole:
        lines = lines[:-1]  # the last line may be cut
    sample = "\n".join(lines[:1000])
    if not sample.strip():
        return False
    for delimiter in (",", ";", "\t", "|"):
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if rows and len(rows[0]) >= 2 and all(len(r) == len(rows[0]) for r in rows):
            return True
    return False


# --- zip: which package its members make --------------------------------------------------------


def _zip(win: Window) -> Detection:
    members = central_directory(win)
    if isinstance(members, list):
        return _classify_zip(win, members, len(members), None, None)
    # Without the central directory the local headers still name the kind for the report, but
    # they never make it acceptable: the directory is what office applications read.
    local = local_headers(win.head)
    if members is ZIP_CD_AWAY:
        return _classify_zip(win, local, None, None, members)
    return _classify_zip(win, local, None, members, None)


def _classify_zip(
    win: Window,
    members: list[ZipMember],
    count: int | None,
    problem: Note | None,
    incomplete: Note | None,
) -> Detection:
    names = [m.name for m in members]
    shown = tuple(names[:_MAX_NAMES])
    by_name = {m.name: m for m in members}
    kind = FileKind.ZIP
    if "[Content_Types].xml" in by_name:
        kind = FileKind.OOXML_OTHER
        for prefix, plain, macro in (
            ("word/", FileKind.DOCX, FileKind.DOCM),
            ("xl/", FileKind.XLSX, FileKind.XLSM),
            ("ppt/", FileKind.PPTX, FileKind.PPTX),
        ):
            if any(n.startswith(prefix) for n in names):
                kind = macro if f"{prefix}vbaProject.bin" in by_name else plain
                break
    elif "mimetype" in by_name:
        value = small_member(win, by_name["mimetype"])
        if value is None:
            kind = FileKind.ODF_OTHER
            if problem is None and incomplete is None:
                incomplete = _ODF_MIMETYPE_AWAY
        else:
            kind = _ODF_TYPES.get(value.strip(), FileKind.ZIP)
            if kind is FileKind.ZIP and value.startswith(b"application/vnd.oasis.opendocument"):
                kind = FileKind.ODF_OTHER
    return _found(kind, entries=shown, entry_count=count, problem=problem, incomplete=incomplete)


_ODF_TYPES = {
    b"application/vnd.oasis.opendocument.text": FileKind.ODT,
    b"application/vnd.oasis.opendocument.spreadsheet": FileKind.ODS,
    b"application/vnd.oasis.opendocument.presentation": FileKind.ODP,
}


# --- OLE2: which document its streams make -------------------------------------------------------

_OLE_STREAMS = (
    ("WordDocument", FileKind.DOC),
    ("Workbook", FileKind.XLS),
    ("Book", FileKind.XLS),
    ("PowerPoint Document", FileKind.PPT),
    ("EncryptedPackage", FileKind.ENCRYPTED_OFFICE),
)


def _ole(win: Window) -> Detection:
    try:
        ole = OleFile(win)
        entries = ole.directory()
    except OleError as exc:
        if exc.note is OLE_DIR_AWAY:
            return _found(FileKind.OLE_UNKNOWN, incomplete=exc.note)
        return _found(FileKind.OLE_UNKNOWN, problem=exc.note)
    streams = {e.name: e for e in entries if e.kind == 2}
    shown = tuple(e.name for e in entries[1 : _MAX_NAMES + 1])
    for name, kind in _OLE_STREAMS:
        stream = streams.get(name)
        if stream is None:
            continue
        if ole.outruns(stream):
            return _found(kind, entries=shown, problem=corrupt_ole(f"{name} outruns the file"))
        return _found(kind, entries=shown)
    return _found(FileKind.OLE_UNKNOWN, entries=shown)
