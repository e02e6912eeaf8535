"""Attachments: one attachment's verdict under R4, and zip-before-base64 unwrapping.

What the bytes are is edxml.filetypes' business; this module judges an attachment from that:
whether its kind is allowed, whether its sender declared it truthfully (ContentType and name),
and whether its name alone is that of a program. Some senders zip a file before base64
(standards.md §2.2, lesson 4): a zip of exactly one entry that is not itself an office package
is unwrapped (with zip-bomb limits) and its entry judged. Everything here is pure: bytes in,
values out; nothing is ever written to disk.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import re
import struct
import zipfile
import zlib
from typing import Any

import attrs

from edxml.containers import SNIFF_BYTES, ZIP_SIGNATURES, Note, corrupt_zip
from edxml.filetypes import (
    ALLOWED,
    DANGEROUS_EXTENSIONS,
    KINDS,
    Detection,
    FileKind,
    Group,
    detect,
    detect_zip,
    extension_of,
)
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.model import Attachment
from edxml.xmlsafe import DecodedBinary

DEFAULT_MAX_RATIO = 100
DEFAULT_MAX_UNZIPPED = 150 * 1024 * 1024  # the envelope limit: an entry may not outgrow it
# Below this size a high ratio is a sparse table or a blank page, not a bomb.
_RATIO_FLOOR = 1 << 20

ALLOWED_TEXT = ", ".join(k.value for k in ALLOWED)
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


_STREAMED_ZIP = Note(
    "it is a zip of one entry, and its bytes were streamed out rather than kept in memory, so "
    "the entry could not be unwrapped",
    "tệp là một tệp zip có một mục, nhưng nội dung đã được ghi ra ngoài thay vì giữ trong bộ nhớ "
    "nên không giải nén được mục đó",
)
_NO_BYTES = Note("its bytes were not given", "không có nội dung tệp")


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
    if not content.startswith(ZIP_SIGNATURES):
        return same
    outer = detect_zip(content)
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
        return unreadable(corrupt_zip(str(exc) or type(exc).__name__))
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
            return unreadable(corrupt_zip(str(exc) or type(exc).__name__), *findings)
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
