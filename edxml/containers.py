"""Container structure: the zip central directory and the OLE2 compound-file directory.

Office Open XML and OpenDocument files are zips, Office 97 files are OLE2 compound files, and
what kind of document one holds is written in its directory, not in its first bytes. These
readers list those directories themselves, from the full bytes when they are in memory, or else
from the first and last 64 KiB that the streaming reader keeps (xmlsafe.DecodedBinary): enough
for a zip, whose directory sits at its end, and for a compound file whose FAT and directory lie
within either end. What cannot be read from the ends is said so (ZIP_CD_AWAY, OLE_DIR_AWAY),
never guessed. Naming the kind from what is listed is filetypes' business, not this module's.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from typing import Any

import attrs

from edxml.xmlsafe import EDGE_BYTES

SNIFF_BYTES = EDGE_BYTES  # as much of each end as xmlsafe keeps for a streamed attachment
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08PK\x03\x04")
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@attrs.frozen
class Note:
    """A reason, in both languages, for a finding's message."""

    en: str
    vi: str


def corrupt_zip(detail: str) -> Note:
    return Note(f"the zip structure is corrupt ({detail})", f"cấu trúc tệp zip bị hỏng ({detail})")


def corrupt_ole(detail: str) -> Note:
    return Note(
        f"the OLE2 compound file is corrupt ({detail})",
        f"cấu trúc tệp OLE2 (compound file) bị hỏng ({detail})",
    )


ZIP_CD_AWAY = Note(
    "the zip central directory lies outside the first and last 64 KiB",
    "thư mục trung tâm của tệp zip nằm ngoài 64 KiB đầu và cuối tệp",
)
OLE_DIR_AWAY = Note(
    "the OLE2 directory lies outside the first and last 64 KiB",
    "thư mục của tệp OLE2 nằm ngoài 64 KiB đầu và cuối tệp",
)


class Window:
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


# --- zip -----------------------------------------------------------------------------------------


@attrs.frozen
class ZipMember:
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


def _find_eocd(win: Window) -> tuple[int, tuple[Any, ...]] | None:
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


def central_directory(win: Window) -> list[ZipMember] | Note:
    """Every member the central directory lists, or why it cannot be read (ZIP_CD_AWAY when it
    lies between the head and the tail)."""
    found = _find_eocd(win)
    if found is None:
        return corrupt_zip("no end of central directory") if win.complete else ZIP_CD_AWAY
    eocd_offset, (_, disk, cd_disk, _, total, cd_size, cd_offset, _) = found
    cd_end = eocd_offset
    if disk != 0 or cd_disk != 0:
        return corrupt_zip("a multi-volume archive")
    # a zip64 end record may sit before the classic one even when the classic fields fit
    locator = win.read(eocd_offset - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
    if locator is not None and locator.startswith(b"PK\x06\x07"):
        # like zipfile, expect the record right before its locator (bytes may precede the zip)
        cd_end = eocd_offset - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
        record = win.read(cd_end, _ZIP64_EOCD.size)
        if record is None or not record.startswith(b"PK\x06\x06"):
            return corrupt_zip("bad zip64 end record") if win.complete else ZIP_CD_AWAY
        _, _, _, _, _, _, _, total, cd_size, cd_offset = _ZIP64_EOCD.unpack(record)
    if cd_size > win.size or total * _CENTRAL.size > cd_size:
        return corrupt_zip("central directory size out of range")
    # bytes before the archive (as zipfile allows): shift every offset by the same amount
    shift = cd_end - cd_size - cd_offset
    if shift < 0:
        return corrupt_zip("central directory offset out of range")
    raw = win.read(cd_offset + shift, cd_size)
    if raw is None:
        return corrupt_zip("central directory beyond the end") if win.complete else ZIP_CD_AWAY
    members = []
    pos = 0
    for _ in range(total):
        if pos + _CENTRAL.size > len(raw):
            return corrupt_zip("central directory truncated")
        fields = _CENTRAL.unpack_from(raw, pos)
        if fields[0] != b"PK\x01\x02":
            return corrupt_zip("bad central directory entry")
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
            ZipMember(_zip_name(name, flags), method, flags, compressed, size, offset + shift)
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


def local_headers(head: bytes) -> list[ZipMember]:
    """Members seen walking the local headers from the start, as far as the head reaches."""
    members: list[ZipMember] = []
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
        members.append(ZipMember(_zip_name(raw, flags), method, flags, compressed, size, pos))
        if (flags & 0x08 and compressed == 0) or compressed == 0xFFFFFFFF:
            break  # sizes follow the data: where the next header starts is unknown
        pos += _LOCAL.size + name_len + extra_len + compressed
    return members


def _zip_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")


def small_member(win: Window, member: ZipMember) -> bytes | None:
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


class OleError(Exception):
    """The compound file cannot be listed; `note` says why (OLE_DIR_AWAY when out of reach)."""

    def __init__(self, note: Note) -> None:
        super().__init__(note.en)
        self.note = note


@attrs.frozen
class OleEntry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    start: int  # first sector
    size: int  # low 32 bits: documents never need more


class OleFile:
    """Just enough of [MS-CFB] to list the directory: header, FAT (read lazily), directory."""

    def __init__(self, win: Window) -> None:
        self.win = win
        header = win.read(0, 512)
        if header is None:
            raise OleError(corrupt_ole("header truncated"))
        major, byte_order, shift = struct.unpack_from("<HHH", header, 26)
        if byte_order != 0xFFFE or (major, shift) not in ((3, 9), (4, 12)):
            raise OleError(corrupt_ole("bad header"))
        self.sector = 1 << shift
        self.per_sector = self.sector // 4
        n_fat, self.first_dir = struct.unpack_from("<II", header, 44)
        first_difat, n_difat = struct.unpack_from("<II", header, 68)
        self.max_sectors = max(0, (win.size - self.sector) // self.sector) + 1
        if n_fat > self.max_sectors:
            raise OleError(corrupt_ole("FAT larger than the file"))
        fat = list(struct.unpack_from("<109I", header, 76))[: min(n_fat, 109)]
        sid, seen = first_difat, set[int]()
        while len(fat) < n_fat and len(seen) < n_difat:
            if sid > _MAXREGSECT or sid in seen:
                raise OleError(corrupt_ole("bad DIFAT chain"))
            seen.add(sid)
            entries = struct.unpack(f"<{self.per_sector}I", self._sector(sid))
            fat += entries[:-1]
            sid = entries[-1]
        self.fat = fat[:n_fat]

    def _sector(self, sid: int) -> bytes:
        data = self.win.read((sid + 1) * self.sector, self.sector)
        if data is None:
            if self.win.complete:
                raise OleError(corrupt_ole(f"sector {sid} beyond the end"))
            raise OleError(OLE_DIR_AWAY)
        return data

    def _next(self, sid: int) -> int:
        index, slot = divmod(sid, self.per_sector)
        if index >= len(self.fat) or self.fat[index] > _MAXREGSECT:
            raise OleError(corrupt_ole("sector outside the FAT"))
        data = self._sector(self.fat[index])
        return int(struct.unpack_from("<I", data, slot * 4)[0])

    def directory(self) -> list[OleEntry]:
        """Every directory entry in use, root first."""
        entries: list[OleEntry] = []
        sid, seen = self.first_dir, set[int]()
        while sid != _ENDOFCHAIN:
            if sid > _MAXREGSECT or sid in seen or len(seen) >= _MAX_DIR_SECTORS:
                raise OleError(corrupt_ole("bad directory chain"))
            seen.add(sid)
            data = self._sector(sid)
            for pos in range(0, self.sector, 128):
                name_len, kind = struct.unpack_from("<HB", data, pos + 64)
                if kind in (1, 2, 5) and 2 <= name_len <= 64 and name_len % 2 == 0:
                    name = data[pos : pos + name_len - 2].decode("utf-16-le", "replace")
                    start, size = struct.unpack_from("<II", data, pos + 116)
                    entries.append(OleEntry(name, kind, start, size))
            sid = self._next(sid)
        if not entries or entries[0].kind != 5:
            raise OleError(corrupt_ole("no root entry"))
        return entries

    def outruns(self, stream: OleEntry) -> bool:
        """Whether a stream in regular sectors needs more of them than the file holds."""
        # a cut file keeps its directory when that comes first: the main stream must still fit
        return stream.size >= _MINI_CUTOFF and (
            stream.start > _MAXREGSECT or -(-stream.size // self.sector) > self.max_sectors - 1
        )
