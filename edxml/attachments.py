"""Attachments: what a file really is, whether R4 allows it, and zip-before-base64 unwrapping.

R4 (regulation.md, art. 4.4) allows pdf (signed and read-only), txt rtf doc docx odt (text),
csv xls xlsx ods (sheets) and jpg png gif (images), and asks that files be judged by their
content, not their name. libmagic names the bytes, but often stops at the container: Office
Open XML and OpenDocument files are zips, Office 97 files are OLE2 compound files ("CDF"), and
libmagic only looks further when the right bytes are in the buffer it is given. So the structure
checks here read the zip central directory and the OLE2 directory themselves, from the full bytes
when they are in memory, or else from the first and last 64 KiB that the streaming reader keeps
(xmlsafe.DecodedBinary): enough for a zip, whose directory sits at its end, and for a compound
file whose FAT and directory lie within either end. What cannot be decided from the ends is said
so (AttachmentNotInspected), never guessed.

Some senders zip a file before base64 (standards.md §2.2, lesson 4): a zip of exactly one entry
that is not itself an office package is unwrapped (with zip-bomb limits) and its entry judged.
Everything here is pure: bytes in, values out; nothing is ever written to disk.
"""

from __future__ import annotations

import codecs
import csv
import enum
import hashlib
import io
import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import magic

from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.model import Attachment
from edxml.xmlsafe import DecodedBinary

SNIFF_BYTES = 1 << 16  # as much of each end as xmlsafe keeps for a streamed attachment
DEFAULT_MAX_RATIO = 100
DEFAULT_MAX_UNZIPPED = 150 * 1024 * 1024  # the envelope limit: an entry may not outgrow it
# Below this size a high ratio is a sparse table or a blank page, not a bomb.
_RATIO_FLOOR = 1 << 20
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
ALLOWED_TEXT = ", ".join(k.value for k in ALLOWED)

# Refused by name whatever the content: a receiving clerk double-clicks what arrives.
DANGEROUS_EXTENSIONS = frozenset(
    {
        *("exe", "com", "scr", "pif", "bat", "cmd", "msi", "msp", "dll", "cpl", "jar", "lnk"),
        *("js", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "hta", "sh", "reg", "inf"),
        *("application", "gadget"),
    }
)
_GENERIC_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
_ZIP_TYPES = KINDS[FileKind.ZIP].mimes
# refusals whose libmagic description tells the clerk more than our label does
_DESCRIBED_KINDS = frozenset(
    {
        FileKind.EXE,
        FileKind.ELF,
        FileKind.MACHO,
        FileKind.SCRIPT,
        FileKind.OLE_UNKNOWN,
        FileKind.LEGACY_TEXT,
        FileKind.UNKNOWN,
    }
)


# --- findings ------------------------------------------------------------------------------------

_UA = Fault.UNSUPPORTED_ATTACHMENT

ATTACHMENT_TYPE_NOT_ALLOWED = FindingCode(
    "AttachmentTypeNotAllowed",
    Severity.ERROR,
    "Attachment {name}: {detected_en} is not an allowed format (allowed: {allowed}).",
    "Tệp đính kèm {name}: {detected_vi} không thuộc các định dạng được phép "
    "(được phép: {allowed}).",
    _UA,
)
ATTACHMENT_TYPE_MISMATCH = FindingCode(
    "AttachmentTypeMismatch",
    Severity.WARNING,
    "Attachment {name}: declared as {declared_en}, but its content is {detected_en}.",
    "Tệp đính kèm {name}: khai báo là {declared_vi}, nhưng nội dung thực tế là {detected_vi}.",
)
ATTACHMENT_ZIPPED = FindingCode(
    "AttachmentZipped",
    Severity.INFO,
    "Attachment {name} was zipped before base64; unwrapped its one entry {inner} "
    "({inner_size} bytes).",
    "Tệp đính kèm {name} đã được nén zip trước khi mã hóa base64; đã giải nén mục duy nhất "
    "{inner} ({inner_size} byte).",
)
ATTACHMENT_EMPTY = FindingCode(
    "AttachmentEmpty",
    Severity.ERROR,
    "Attachment {name} is empty (0 bytes).",
    "Tệp đính kèm {name} rỗng (0 byte).",
    _UA,
)
ATTACHMENT_ZIP_BOMB = FindingCode(
    "AttachmentZipBomb",
    Severity.ERROR,
    "Attachment {name}: the zip entry {inner} expands from {compressed} to at least {expanded} "
    "bytes, beyond the limits ({max_size} bytes, ratio {max_ratio}:1); refused as a zip bomb.",
    "Tệp đính kèm {name}: mục {inner} trong tệp zip giải nén từ {compressed} byte thành ít nhất "
    "{expanded} byte, vượt giới hạn ({max_size} byte, tỉ lệ {max_ratio}:1); bị từ chối vì nghi "
    "là bom zip.",
    _UA,
)
ATTACHMENT_UNREADABLE = FindingCode(
    "AttachmentUnreadable",
    Severity.ERROR,
    "Attachment {name} cannot be read: {reason_en}.",
    "Không đọc được tệp đính kèm {name}: {reason_vi}.",
    _UA,
)
ATTACHMENT_NOT_INSPECTED = FindingCode(
    "AttachmentNotInspected",
    Severity.ERROR,
    "Attachment {name} could not be checked: {reason_en}; its whole content is needed.",
    "Không kiểm tra được tệp đính kèm {name}: {reason_vi}; cần toàn bộ nội dung tệp.",
    _UA,
)
ATTACHMENT_ZIP_ENTRY_NAME_UNSAFE = FindingCode(
    "AttachmentZipEntryNameUnsafe",
    Severity.WARNING,
    "Attachment {name}: the zip entry name '{inner}' is an absolute path or climbs out with "
    "'..'; it is reported only, never used as a path.",
    "Tệp đính kèm {name}: tên mục '{inner}' trong tệp zip là đường dẫn tuyệt đối hoặc chứa "
    "'..'; chỉ được ghi nhận, không bao giờ được dùng làm đường dẫn.",
)
ATTACHMENT_NAME_NOT_ALLOWED = FindingCode(
    "AttachmentNameNotAllowed",
    Severity.ERROR,
    "Attachment {name}: .{extension} is the extension of a program or script; refused whatever "
    "the content.",
    "Tệp đính kèm {name}: .{extension} là phần mở rộng của chương trình hoặc tệp lệnh; bị từ "
    "chối bất kể nội dung.",
    _UA,
)


@attrs.frozen
class Note:
    """A reason, in both languages, for a finding's message."""

    en: str
    vi: str


def _corrupt_zip(detail: str) -> Note:
    return Note(f"the zip structure is corrupt ({detail})", f"cấu trúc tệp zip bị hỏng ({detail})")


def _corrupt_ole(detail: str) -> Note:
    return Note(
        f"the OLE2 compound file is corrupt ({detail})",
        f"cấu trúc tệp OLE2 (compound file) bị hỏng ({detail})",
    )


_ZIP_CD_AWAY = Note(
    "the zip central directory lies outside the first and last 64 KiB",
    "thư mục trung tâm của tệp zip nằm ngoài 64 KiB đầu và cuối tệp",
)
_OLE_DIR_AWAY = Note(
    "the OLE2 directory lies outside the first and last 64 KiB",
    "thư mục của tệp OLE2 nằm ngoài 64 KiB đầu và cuối tệp",
)
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
_STREAMED_ZIP = Note(
    "it is a zip of one entry, and its bytes were streamed out rather than kept in memory, so "
    "the entry could not be unwrapped",
    "tệp là một tệp zip có một mục, nhưng nội dung đã được ghi ra ngoài thay vì giữ trong bộ nhớ "
    "nên không giải nén được mục đó",
)
_NO_BYTES = Note("its bytes were not given", "không có nội dung tệp")


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


class _Window:
    """The bytes of a file as far as they are known: all of it, or its head and tail."""

    def __init__(self, head: bytes, tail: bytes, size: int, content: bytes | None) -> None:
        size = max(size, 0)
        if content is None and size <= len(head) + len(tail):
            # head and tail meet or overlap: together they are the whole file
            overlap = len(head) + len(tail) - size
            content = head + tail[overlap:] if size >= len(head) else head[:size]
        if content is not None:
            head, tail, size = content[:SNIFF_BYTES], content[-SNIFF_BYTES:], len(content)
        self.content = content
        self.head = head
        self.tail = tail
        self.size = size
        self.tail_start = size - len(tail)

    @property
    def complete(self) -> bool:
        return self.content is not None

    def read(self, offset: int, length: int) -> bytes | None:
        """Exactly `length` bytes at `offset`, or None when they are not known."""
        if offset < 0 or length < 0 or offset + length > self.size:
            return None
        if self.content is not None:
            return self.content[offset : offset + length]
        if offset + length <= len(self.head):
            return self.head[offset : offset + length]
        if offset >= self.tail_start:
            return self.tail[offset - self.tail_start : offset - self.tail_start + length]
        return None

    def suffix(self, length: int) -> tuple[int, bytes]:
        """The last known bytes, at most `length` of them, with their offset."""
        if self.content is not None:
            start = max(0, self.size - length)
            return start, self.content[start:]
        start = max(self.tail_start, self.size - length)
        return start, self.tail[start - self.tail_start :]


def detect(
    head: bytes, tail: bytes, size: int, content: bytes | None = None, *, name: str = ""
) -> Detection:
    """The real kind of a file from its bytes: all of them (`content`) or its first and last
    64 KiB (`head`, `tail`) and its `size`. `name` is only used to tell csv from txt."""
    win = _Window(head, tail, size, content)
    if win.size == 0:
        return _found(FileKind.EMPTY, magic_mime="application/x-empty", description="empty")
    magic_mime, description = _libmagic(win.head)
    found = _sniff(win, name, magic_mime)
    mime = (magic_mime or found.mime) if found.kind is FileKind.UNKNOWN else found.mime
    return attrs.evolve(found, mime=mime, magic_mime=magic_mime, description=description)


def _libmagic(sample: bytes) -> tuple[str, str]:
    try:
        return magic.from_buffer(sample, mime=True), magic.from_buffer(sample)
    except magic.MagicException as exc:
        return "", f"libmagic failed: {exc}"


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_OLE_SIG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08PK\x03\x04")
_MACHO_SIGS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_JS_MIMES = frozenset(KINDS[FileKind.JAVASCRIPT].mimes)
_XML_MIMES = frozenset({"text/xml", "application/xml"})


def _sniff(win: _Window, name: str, magic_mime: str) -> Detection:
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
    if h.startswith(_ZIP_SIGS):
        return _zip(win)
    if h.startswith(_OLE_SIG):
        return _ole(win)
    markup = _markup(h, magic_mime)
    if markup is not None:
        return _found(markup)
    if b"%PDF-" in h[:1024]:  # readers accept a header anywhere in the first KiB
        return _pdf(win)
    return _text(win, name)


def _pdf(win: _Window) -> Detection:
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


def _text(win: _Window, name: str) -> Detection:
    if win.head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _utf16_text(win, name)
    parts = [win.content] if win.content is not None else [win.head, win.tail]
    if any(_BINARY_CONTROL.search(p) for p in parts if p is not None):
        return _found(FileKind.UNKNOWN)
    text = _utf8(win)
    if text is None:
        return _found(FileKind.LEGACY_TEXT)
    return _found(_txt_or_csv(text, win.complete and win.size <= SNIFF_BYTES, name))


def _utf8(win: _Window) -> str | None:
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


def _utf16_text(win: _Window, name: str) -> Detection:
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


# --- zip -----------------------------------------------------------------------------------------


@attrs.frozen
class _Member:
    name: str
    method: int
    flags: int
    compressed: int
    size: int
    offset: int  # of its local header


_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")


def _zip(win: _Window) -> Detection:
    members = _central_directory(win)
    if isinstance(members, list):
        return _classify_zip(win, members, len(members), None, None)
    # Without the central directory the local headers still name the kind for the report, but
    # they never make it acceptable: the directory is what office applications read.
    local = _local_headers(win.head)
    if members is _ZIP_CD_AWAY:
        return _classify_zip(win, local, None, None, members)
    return _classify_zip(win, local, None, members, None)


def _classify_zip(
    win: _Window,
    members: list[_Member],
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
        value = _small_member(win, by_name["mimetype"])
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


def _find_eocd(win: _Window) -> tuple[int, tuple[Any, ...]] | None:
    start, block = win.suffix(_EOCD.size + 0xFFFF)
    candidates = []
    pos = block.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + _EOCD.size <= len(block):
            fields = _EOCD.unpack_from(block, pos)
            candidates.append((start + pos, fields, pos + _EOCD.size + fields[7] == len(block)))
        pos = block.rfind(b"PK\x05\x06", 0, pos)
    # a record whose comment reaches exactly to the end wins over one found inside a comment
    for offset, fields, exact in candidates:
        if exact:
            return offset, fields
    return (candidates[0][0], candidates[0][1]) if candidates else None


def _central_directory(win: _Window) -> list[_Member] | Note:
    found = _find_eocd(win)
    if found is None:
        return _corrupt_zip("no end of central directory") if win.complete else _ZIP_CD_AWAY
    eocd_offset, (_, disk, cd_disk, _, total, cd_size, cd_offset, _) = found
    cd_end = eocd_offset
    if disk != 0 or cd_disk != 0:
        return _corrupt_zip("a multi-volume archive")
    # a zip64 end record may sit before the classic one even when the classic fields fit
    locator = win.read(eocd_offset - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
    if locator is not None and locator.startswith(b"PK\x06\x07"):
        # like zipfile, expect the record right before its locator (bytes may precede the zip)
        cd_end = eocd_offset - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
        record = win.read(cd_end, _ZIP64_EOCD.size)
        if record is None or not record.startswith(b"PK\x06\x06"):
            return _corrupt_zip("bad zip64 end record") if win.complete else _ZIP_CD_AWAY
        _, _, _, _, _, _, _, total, cd_size, cd_offset = _ZIP64_EOCD.unpack(record)
    if cd_size > win.size or total * _CENTRAL.size > cd_size:
        return _corrupt_zip("central directory size out of range")
    # bytes before the archive (as zipfile allows): shift every offset by the same amount
    shift = cd_end - cd_size - cd_offset
    if shift < 0:
        return _corrupt_zip("central directory offset out of range")
    raw = win.read(cd_offset + shift, cd_size)
    if raw is None:
        return _corrupt_zip("central directory beyond the end") if win.complete else _ZIP_CD_AWAY
    members = []
    pos = 0
    for _ in range(total):
        if pos + _CENTRAL.size > len(raw):
            return _corrupt_zip("central directory truncated")
        fields = _CENTRAL.unpack_from(raw, pos)
        if fields[0] != b"PK\x01\x02":
            return _corrupt_zip("bad central directory entry")
        flags, method = fields[3], fields[4]
        compressed, size, name_len, extra_len, comment_len = fields[8:13]
        offset = fields[16]
        name_end = pos + _CENTRAL.size + name_len
        name = raw[pos + _CENTRAL.size : name_end]
        if 0xFFFFFFFF in (compressed, size, offset):
            size, compressed, offset = _zip64_extra(
                raw[name_end : name_end + extra_len], size, compressed, offset
            )
        members.append(
            _Member(_zip_name(name, flags), method, flags, compressed, size, offset + shift)
        )
        pos += _CENTRAL.size + name_len + extra_len + comment_len
    return members


def _zip64_extra(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """The real values of the saturated fields, from the zip64 extended information field."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 0x0001:
            values = extra[pos + 4 : pos + 4 + length]
            out = [size, compressed, offset]
            at = 0
            for i in range(3):
                if out[i] == 0xFFFFFFFF and at + 8 <= len(values):
                    out[i] = struct.unpack_from("<Q", values, at)[0]
                    at += 8
            return out[0], out[1], out[2]
        pos += 4 + length
    return size, compressed, offset


def _local_headers(head: bytes) -> list[_Member]:
    """Members seen walking the local headers from the start, as far as the head reaches."""
    members: list[_Member] = []
    pos = 0
    while pos + _LOCAL.size <= len(head) and len(members) < 4096:
        fields = _LOCAL.unpack_from(head, pos)
        if fields[0] != b"PK\x03\x04":
            break
        flags, method, compressed, size, name_len, extra_len = (
            fields[2],
            fields[3],
            fields[7],
            fields[8],
            fields[9],
            fields[10],
        )
        raw = head[pos + _LOCAL.size : pos + _LOCAL.size + name_len]
        if len(raw) < name_len:
            break
        members.append(_Member(_zip_name(raw, flags), method, flags, compressed, size, pos))
        if (flags & 0x08 and compressed == 0) or compressed == 0xFFFFFFFF:
            break  # sizes follow the data: where the next header starts is unknown
        pos += _LOCAL.size + name_len + extra_len + compressed
    return members


def _zip_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")


def _small_member(win: _Window, member: _Member) -> bytes | None:
    """The first bytes of a (tiny) member such as ODF's `mimetype`, stored or deflated."""
    header = win.read(member.offset, _LOCAL.size)
    if header is None or not header.startswith(b"PK\x03\x04"):
        return None
    name_len, extra_len = _LOCAL.unpack(header)[9:11]
    data = win.read(member.offset + _LOCAL.size + name_len + extra_len, min(member.compressed, 256))
    if data is None:
        return None
    if member.method == zipfile.ZIP_STORED:
        return data
    if member.method == zipfile.ZIP_DEFLATED:
        try:
            return zlib.decompressobj(-15).decompress(data, 256)
        except zlib.error:
            return None
    return None


# --- OLE2 compound files -------------------------------------------------------------------------

_MAXREGSECT = 0xFFFFFFFA
_MINI_CUTOFF = 4096  # smaller streams live in the mini stream, inside the root's sectors
_MAX_DIR_SECTORS = 4096  # 16k entries: far beyond any document, and a bound on crafted chains
_ENDOFCHAIN = 0xFFFFFFFE
_OLE_STREAMS = (
    ("WordDocument", FileKind.DOC),
    ("Workbook", FileKind.XLS),
    ("Book", FileKind.XLS),
    ("PowerPoint Document", FileKind.PPT),
    ("EncryptedPackage", FileKind.ENCRYPTED_OFFICE),
)


class _OleError(Exception):
    def __init__(self, note: Note) -> None:
        super().__init__(note.en)
        self.note = note


@attrs.frozen
class _OleEntry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    start: int  # first sector
    size: int  # low 32 bits: documents never need more


class _Ole:
    """Just enough of [MS-CFB] to list the directory: header, FAT (read lazily), directory."""

    def __init__(self, win: _Window) -> None:
        self.win = win
        header = win.read(0, 512)
        if header is None:
            raise _OleError(_corrupt_ole("header truncated"))
        major, byte_order, shift = struct.unpack_from("<HHH", header, 26)
        if byte_order != 0xFFFE or (major, shift) not in ((3, 9), (4, 12)):
            raise _OleError(_corrupt_ole("bad header"))
        self.sector = 1 << shift
        self.per_sector = self.sector // 4
        n_fat, self.first_dir = struct.unpack_from("<II", header, 44)
        first_difat, n_difat = struct.unpack_from("<II", header, 68)
        self.max_sectors = max(0, (win.size - self.sector) // self.sector) + 1
        if n_fat > self.max_sectors:
            raise _OleError(_corrupt_ole("FAT larger than the file"))
        fat = list(struct.unpack_from("<109I", header, 76))[: min(n_fat, 109)]
        sid, seen = first_difat, set[int]()
        while len(fat) < n_fat and len(seen) < n_difat:
            if sid > _MAXREGSECT or sid in seen:
                raise _OleError(_corrupt_ole("bad DIFAT chain"))
            seen.add(sid)
            entries = struct.unpack(f"<{self.per_sector}I", self._sector(sid))
            fat += entries[:-1]
            sid = entries[-1]
        self.fat = fat[:n_fat]

    def _sector(self, sid: int) -> bytes:
        data = self.win.read((sid + 1) * self.sector, self.sector)
        if data is None:
            if self.win.complete:
                raise _OleError(_corrupt_ole(f"sector {sid} beyond the end"))
            raise _OleError(_OLE_DIR_AWAY)
        return data

    def _next(self, sid: int) -> int:
        index, slot = divmod(sid, self.per_sector)
        if index >= len(self.fat) or self.fat[index] > _MAXREGSECT:
            raise _OleError(_corrupt_ole("sector outside the FAT"))
        data = self._sector(self.fat[index])
        return int(struct.unpack_from("<I", data, slot * 4)[0])

    def directory(self) -> list[_OleEntry]:
        """Every directory entry in use, root first."""
        entries: list[_OleEntry] = []
        sid, seen = self.first_dir, set[int]()
        while sid != _ENDOFCHAIN:
            if sid > _MAXREGSECT or sid in seen or len(seen) >= _MAX_DIR_SECTORS:
                raise _OleError(_corrupt_ole("bad directory chain"))
            seen.add(sid)
            data = self._sector(sid)
            for pos in range(0, self.sector, 128):
                name_len, kind = struct.unpack_from("<HB", data, pos + 64)
                if kind in (1, 2, 5) and 2 <= name_len <= 64 and name_len % 2 == 0:
                    name = data[pos : pos + name_len - 2].decode("utf-16-le", "replace")
                    start, size = struct.unpack_from("<II", data, pos + 116)
                    entries.append(_OleEntry(name, kind, start, size))
            sid = self._next(sid)
        if not entries or entries[0].kind != 5:
            raise _OleError(_corrupt_ole("no root entry"))
        return entries


def _ole(win: _Window) -> Detection:
    try:
        ole = _Ole(win)
        entries = ole.directory()
    except _OleError as exc:
        if exc.note is _OLE_DIR_AWAY:
            return _found(FileKind.OLE_UNKNOWN, incomplete=exc.note)
        return _found(FileKind.OLE_UNKNOWN, problem=exc.note)
    streams = {e.name: e for e in entries if e.kind == 2}
    shown = tuple(e.name for e in entries[1 : _MAX_NAMES + 1])
    for name, kind in _OLE_STREAMS:
        stream = streams.get(name)
        if stream is None:
            continue
        # a cut file keeps its directory when that comes first: the main stream must still fit
        if stream.size >= _MINI_CUTOFF and (
            stream.start > _MAXREGSECT or -(-stream.size // ole.sector) > ole.max_sectors - 1
        ):
            return _found(kind, entries=shown, problem=_corrupt_ole(f"{name} outruns the file"))
        return _found(kind, entries=shown)
    return _found(FileKind.OLE_UNKNOWN, entries=shown)


# --- unwrapping ----------------------------------------------------------------------------------


@attrs.frozen
class Unwrapped:
    """The document inside a zip-before-base64 wrapper, or the bytes unchanged (zipped=False)."""

    name: str  # the zip entry's name, "" when not unwrapped
    data: bytes = attrs.field(repr=False)
    zipped: bool
    findings: tuple[Finding, ...] = ()


_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    OverflowError,
    KeyError,
    IndexError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)


def unwrap(
    content: bytes,
    *,
    max_ratio: int = DEFAULT_MAX_RATIO,
    max_size: int = DEFAULT_MAX_UNZIPPED,
    name: str = "",
    path: str | None = None,
) -> Unwrapped:
    """Unzip `content` when it is a zip of exactly one file and not itself an office package.

    docx, xlsx, odt, ods (and their kin) are zips, and are judged by content, not by the
    declared name: a single-entry zip can never be one of them, while a docx zipped again by the
    sender's SDK is declared with the document's own name. `name` and `path` only label findings.
    """
    same = Unwrapped(name="", data=content, zipped=False)
    if not content.startswith(_ZIP_SIGS):
        return same
    outer = _zip(_Window(b"", b"", len(content), content))
    if outer.kind is not FileKind.ZIP:
        return same
    label = name or "?"

    def unreadable(note: Note, *before: Finding) -> Unwrapped:
        finding = ATTACHMENT_UNREADABLE(path, name=label, reason_en=note.en, reason_vi=note.vi)
        return attrs.evolve(same, findings=(*before, finding))

    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
        infos = zf.infolist()
    except _ZIP_ERRORS as exc:
        return unreadable(_corrupt_zip(str(exc) or type(exc).__name__))
    if len(infos) != 1 or infos[0].is_dir():
        en, vi = _describe(attrs.evolve(outer, entry_count=len(infos)))
        finding = ATTACHMENT_TYPE_NOT_ALLOWED(
            path, name=label, detected_en=en, detected_vi=vi, allowed=ALLOWED_TEXT
        )
        return attrs.evolve(same, findings=(finding,))
    info = infos[0]
    inner = info.filename
    findings: list[Finding] = []
    if _unsafe_entry_name(inner):
        findings.append(ATTACHMENT_ZIP_ENTRY_NAME_UNSAFE(path, name=label, inner=inner))
    if info.flag_bits & 0x41:  # traditional or strong encryption
        note = Note(
            f"the zip entry {inner} is encrypted",
            f"mục {inner} trong tệp zip được mã hóa bằng mật khẩu",
        )
        return unreadable(note, *findings)
    if info.compress_type not in _ZIP_METHODS:
        note = Note(
            f"the zip entry {inner} uses compression method {info.compress_type}, "
            "which is not supported",
            f"mục {inner} trong tệp zip dùng phương thức nén {info.compress_type} "
            "không được hỗ trợ",
        )
        return unreadable(note, *findings)

    def too_big(size: int) -> bool:
        over_ratio = size > _RATIO_FLOOR and size > max_ratio * max(info.compress_size, 1)
        return size > max_size or over_ratio

    # the central directory's sizes first, then the real output: the sizes may lie
    expanded = info.file_size
    out = bytearray()
    if not too_big(expanded):
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(1 << 20):
                    out += chunk
                    if too_big(len(out)):
                        expanded = len(out)
                        break
        except _ZIP_ERRORS as exc:
            return unreadable(_corrupt_zip(str(exc) or type(exc).__name__), *findings)
    if too_big(expanded):
        bomb = ATTACHMENT_ZIP_BOMB(
            path,
            name=label,
            inner=inner,
            compressed=info.compress_size,
            expanded=expanded,
            max_size=max_size,
            max_ratio=max_ratio,
        )
        return attrs.evolve(same, findings=(*findings, bomb))
    findings.append(ATTACHMENT_ZIPPED(path, name=label, inner=inner, inner_size=len(out)))
    return Unwrapped(name=inner, data=bytes(out), zipped=True, findings=tuple(findings))


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_entry_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts or "\0" in name


# --- the verdict ---------------------------------------------------------------------------------


@attrs.frozen
class AttachmentVerdict:
    content_id: str
    name: str
    declared_type: str  # the ContentType as sent
    declared_extension: str  # from the AttachmentName, lower case, no dot
    kind: FileKind  # of the document itself: the zip entry when it was zipped
    mime: str
    magic_mime: str
    description: str  # libmagic's
    zipped: bool
    inner_name: str  # the zip entry's name when zipped
    size: int  # of the decoded bytes as sent
    sha256: str  # of the decoded bytes as sent
    allowed: bool
    findings: tuple[Finding, ...] = ()
    inner_size: int = 0
    # the document's bytes (unwrapped when zipped), for the PDF signature check; None if streamed
    data: bytes | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def groups(self) -> frozenset[Group]:
        info = ALLOWED.get(self.kind)
        return info.groups if info is not None and self.allowed else frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "content_id": self.content_id,
            "name": self.name,
            "declared_type": self.declared_type,
            "declared_extension": self.declared_extension,
            "kind": self.kind.value,
            "mime": self.mime,
            "magic_mime": self.magic_mime,
            "description": self.description,
            "zipped": self.zipped,
            "inner_name": self.inner_name,
            "inner_size": self.inner_size,
            "size": self.size,
            "sha256": self.sha256,
            "allowed": self.allowed,
            "findings": [f.code for f in self.findings],
        }


def extension_of(name: str) -> str:
    """The extension as Windows sees it (trailing dots and spaces dropped), lower case."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ").strip()
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


def analyse(
    attachment: Attachment,
    decoded: DecodedBinary | None = None,
    *,
    max_ratio: int = DEFAULT_MAX_RATIO,
    max_size: int = DEFAULT_MAX_UNZIPPED,
) -> AttachmentVerdict:
    """Judge one attachment by its bytes: kind, R4, zip wrapping, and what its sender declared.

    The bytes come from `attachment.content`, else from `decoded` (its content, or only its head
    and tail when the reader streamed it to a sink). A zipped attachment needs its whole bytes
    to be unwrapped: pass them (`attrs.evolve(attachment, content=…)`) when they were streamed.
    """
    name = attachment.attachment_name or attachment.content_id
    path = f"/AttachmentEncoded/Attachment[ContentId='{attachment.content_id}']"
    content = attachment.content
    if content is None and decoded is not None:
        content = decoded.content
    if decoded is not None:
        size, sha256, head, tail = decoded.size, decoded.sha256, decoded.head, decoded.tail
    elif content is not None:
        size, head, tail = len(content), content[:SNIFF_BYTES], content[-SNIFF_BYTES:]
        sha256 = attachment.sha256 or hashlib.sha256(content).hexdigest()
    else:
        size, sha256, head, tail = attachment.size, attachment.sha256, b"", b""
    base = AttachmentVerdict(
        content_id=attachment.content_id,
        name=attachment.attachment_name,
        declared_type=attachment.content_type,
        declared_extension=extension_of(attachment.attachment_name),
        kind=FileKind.UNKNOWN,
        mime="",
        magic_mime="",
        description="",
        zipped=False,
        inner_name="",
        size=size,
        sha256=sha256,
        allowed=False,
        data=content,
    )
    findings: list[Finding] = []
    if decoded is not None and decoded.error is not None:
        findings.append(
            ATTACHMENT_UNREADABLE(
                path,
                name=name,
                reason_en=f"invalid base64 ({decoded.error})",
                reason_vi=f"dữ liệu base64 không hợp lệ ({decoded.error})",
            )
        )
    if size == 0:
        findings.append(ATTACHMENT_EMPTY(path, name=name))
        return attrs.evolve(
            base, kind=FileKind.EMPTY, mime=KINDS[FileKind.EMPTY].mime, findings=tuple(findings)
        )
    if content is None and not head:
        findings.append(_not_inspected(path, name, _NO_BYTES))
        return attrs.evolve(base, findings=tuple(findings))

    det = detect(head, tail, size, content, name=attachment.attachment_name)
    zipped, inner_name, data = False, "", content
    if det.kind is FileKind.ZIP and det.problem is None:
        if content is not None:
            unwrapped = unwrap(
                content, max_ratio=max_ratio, max_size=max_size, name=name, path=path
            )
            findings += unwrapped.findings
            if unwrapped.zipped:
                zipped, inner_name, data = True, unwrapped.name, unwrapped.data
                det = detect(
                    data[:SNIFF_BYTES], data[-SNIFF_BYTES:], len(data), data, name=inner_name
                )
        elif det.entry_count == 1:
            det = attrs.evolve(det, incomplete=_STREAMED_ZIP)
    findings += _judge(det, name, path, inner_name, findings)
    findings += _declared(attachment, det, name, path, zipped, inner_name)
    return attrs.evolve(
        base,
        kind=det.kind,
        mime=det.mime,
        magic_mime=det.magic_mime,
        description=det.description,
        zipped=zipped,
        inner_name=inner_name,
        inner_size=len(data) if zipped and data is not None else 0,
        allowed=det.kind in ALLOWED and not any(f.is_error for f in findings),
        findings=tuple(findings),
        data=data,
    )


def _not_inspected(path: str, name: str, note: Note) -> Finding:
    return ATTACHMENT_NOT_INSPECTED(path, name=name, reason_en=note.en, reason_vi=note.vi)


def _judge(
    det: Detection, name: str, path: str, inner_name: str, so_far: list[Finding]
) -> list[Finding]:
    """The one finding that says why the content is refused, if it is."""
    if det.problem is not None:
        note = det.problem
        return [ATTACHMENT_UNREADABLE(path, name=name, reason_en=note.en, reason_vi=note.vi)]
    if det.incomplete is not None:
        return [_not_inspected(path, name, det.incomplete)]
    if det.kind in ALLOWED or any(f.is_error for f in so_far):
        return []  # an unwrapping error (bomb, encrypted, several entries) already says why
    en, vi = _describe(det, inner_name)
    return [
        ATTACHMENT_TYPE_NOT_ALLOWED(
            path, name=name, detected_en=en, detected_vi=vi, allowed=ALLOWED_TEXT
        )
    ]


def _describe(det: Detection, inner_name: str = "") -> tuple[str, str]:
    info = KINDS[det.kind]
    en, vi = info.label_en, info.label_vi
    if det.kind is FileKind.ZIP and det.entry_count is not None:
        en += f" with {det.entry_count} {'entry' if det.entry_count == 1 else 'entries'}"
        vi += f" có {det.entry_count} mục"
    if det.description and det.kind in _DESCRIBED_KINDS:
        en += f" ({det.description})"
        vi += f" ({det.description})"
    if inner_name:
        en += f" (zipped as {inner_name})"
        vi += f" (được nén zip với tên {inner_name})"
    return en, vi


def _declared(
    attachment: Attachment,
    det: Detection,
    name: str,
    path: str,
    zipped: bool,
    inner_name: str,
) -> list[Finding]:
    findings: list[Finding] = []
    for label in (attachment.attachment_name, inner_name):
        ext = extension_of(label)
        if ext in DANGEROUS_EXTENSIONS:
            findings.append(ATTACHMENT_NAME_NOT_ALLOWED(path, name=name, extension=ext))
    if det.kind is FileKind.EMPTY or det.problem is not None or det.incomplete is not None:
        return findings  # nothing sure to compare the declaration with
    info = KINDS[det.kind]
    declared_type = attachment.content_type.split(";", 1)[0].strip().lower()
    declared_ext = extension_of(attachment.attachment_name)
    type_ok = (
        declared_type in _GENERIC_TYPES
        or declared_type in info.mimes
        or (zipped and declared_type in _ZIP_TYPES)
    )
    ext_ok = (
        not declared_ext or declared_ext in info.extensions or (zipped and declared_ext == "zip")
    )
    inner_ext = extension_of(inner_name)
    inner_ok = not inner_ext or inner_ext in info.extensions
    if type_ok and ext_ok and inner_ok:
        return findings
    shown_type = attachment.content_type or "(none)"
    shown_ext = f".{declared_ext}" if declared_ext else "(none)"
    detected_en, detected_vi = _describe(det, inner_name)
    findings.append(
        ATTACHMENT_TYPE_MISMATCH(
            path,
            name=name,
            declared_en=f"type {shown_type} with extension {shown_ext}",
            declared_vi=f"kiểu {shown_type} với phần mở rộng {shown_ext}",
            detected_en=detected_en,
            detected_vi=detected_vi,
            declared_type=attachment.content_type,
            declared_extension=declared_ext,
            detected=det.kind.value,
        )
    )
    return findings
