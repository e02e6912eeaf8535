"""The node's sealed message-log archives: the format, a streaming writer, an offline verifier.

One archive file is one ZIP (zip64 on every member) that holds a batch of stored messages with
their exact bytes and everything the node recorded about them, sealed by a signed manifest and
linked to the archive before it by that archive's manifest hash. It is modelled on X-Road's
message-log archive (ASiC containers plus "linking information"), without its two failures:
the writer never holds a message in memory (payloads are streamed in 1 MiB chunks and hashed as
they are written), and it knows nothing of the database, so archiving can never stop traffic —
the store-side job reads rows in short read transactions and feeds them here, from a thread.

Layout, in this order (deterministic: the order of `add()` calls; nothing depends on a clock but
`created_at` and the ZIP timestamps):

    README.txt                      what this is and how to verify it, in English and Vietnamese
    format.json                     {"format": "edxml-gateway-archive", "version": 1, ...}
    messages/<id>/payload.edxml     the exact stored bytes of each message (STORED)
    messages/<id>/forward.edxml     a relay's onward bytes, when there are any (STORED)
    messages.jsonl                  one line per message, in `add()` order (DEFLATED):
                                    {"id", "payload": {name, size, sha256}, "forward": null or
                                    {...}, "audit": [its audit row ids], "message": the row as
                                    given, "deliveries": [...], "statuses": [...], "inbox": [...]}
    audit.jsonl                     the audit rows of all these messages, one JSON object per line
                                    exactly as given (their own `hash`/`prev_hash` kept, never
                                    recomputed), once each, in ascending id order (DEFLATED)
    manifest.json                   name, size, SHA-256 of every other member (signer.pem
                                    included), counts, the arrival time range, node, sequence,
                                    `previous` = {file_name, manifest_sha256} or null, created_at
    manifest.sig                    detached signature over the exact manifest.json bytes: RSA
                                    PKCS#1 v1.5 SHA-256, or ECDSA SHA-256 (DER) for an EC key
    signer.pem                      the signer's certificate chain, leaf first

Why one `messages.jsonl` and one `audit.jsonl` rather than a folder of small JSON files per
message: zipfile's cost is per member, whatever its size, and each member is a manifest line.
Measured here, six members per message (the row, payload, deliveries, statuses, inbox, audit)
took zipfile alone 47 s to write and read back 100,000 messages and one member per message (its
payload) 6 s. Each message stays verifiable on its own: its line carries the row, the payload's
name, size and SHA-256 (the store's `blob_sha256`) and the ids of its audit rows, and the signed
manifest covers both members. One archive-wide `audit.jsonl` in id order is a slice of the
node's hash-chained audit log, so rows that follow one another by id are checked to link.

Payloads are STORED, not deflated, although edXML with base64 inside would shrink by about a
quarter: the member's data in the ZIP is then the stored file byte for byte, so `unzip` gives
back exactly what the node received, its SHA-256 is the store's content address, hashing costs
no inflating (a 150 MB blob archives and verifies near disk speed), and a damaged byte spoils
only the one payload it is in. The two JSON members are DEFLATED (they shrink many times over).

The ZIP is written as a pure append-only stream: the writer hides `seek` from zipfile, which
then puts each member's CRC and sizes in a data descriptor after its data instead of seeking
back. The file is `<name>.partial` until it is sealed; then it is fsynced, renamed to its final
name and its directory fsynced, so a crash never leaves a file that looks complete, and an
exception inside the `with` removes the partial file.

Memory: constant in payload size, and up to 0.8 KB per message while writing, 1.8 KB while
verifying (zipfile's directory entry, the manifest's line, the index): a caller should roll to
the next archive at some tens of thousands of messages (`ArchiveWriter.messages`, `.size`).
Audit rows are spooled to an unlinked temp file and sorted by id at the end, 24 bytes a row in
memory.

Verification (`verify_archive`, `verify_directory`, `verify_main`) needs only this module and
`cryptography`: no node, configuration or database. Nothing here imports the store, the
configuration, Twisted or sqlite3.

Keys read from what the caller passes: the message's `id` (required; letters, digits, `.`, `_`,
`-`; it names the folder), `arrived_at` (required: ISO 8601 text or an aware datetime), and
`blob_sha256` / `forward_sha256` when present (the payload's and the forward's SHA-256 must equal
them, or `PayloadMismatch` is raised and the archive is not sealed); each audit row's `id`
(required int) and, in the verifier, `hash` / `prev_hash` when present. Everything else is kept
as given. Values must be JSON (datetimes and dates are written in ISO 8601).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sys
import tempfile
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Final, TextIO

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from edxml import certificates
from edxml.model import VN_TZ

__all__ = [
    "AUDIT",
    "FORMAT",
    "FORMAT_JSON",
    "MANIFEST",
    "MESSAGES",
    "README",
    "SIGNATURE",
    "SIGNER",
    "VERSION",
    "ArchiveError",
    "ArchiveReport",
    "ArchiveWriter",
    "DirectoryReport",
    "Link",
    "ManifestSummary",
    "Member",
    "PayloadMismatch",
    "Problem",
    "archive_file_name",
    "verify_archive",
    "verify_directory",
    "verify_main",
]

FORMAT: Final = "edxml-gateway-archive"
VERSION: Final = 1

README: Final = "README.txt"
FORMAT_JSON: Final = "format.json"
MESSAGES: Final = "messages.jsonl"
AUDIT: Final = "audit.jsonl"
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
SIGNER: Final = "signer.pem"
ARCHIVE_SUFFIX: Final = ".zip"
PARTIAL_SUFFIX: Final = ".partial"

EX_OK: Final = 0
EX_DATAERR: Final = 65
EX_NOINPUT: Final = 66

RSA_ALGORITHM: Final = "rsa-pkcs1v15-sha256"
ECDSA_ALGORITHM: Final = "ecdsa-sha256"

_CHUNK: Final = 1 << 20
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_MESSAGE_ID = re.compile(_ID)
_PAYLOAD_NAME = re.compile(rf"messages/({_ID})/(payload|forward)\.edxml")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TOP_LEVEL = frozenset({README, FORMAT_JSON, MESSAGES, AUDIT, MANIFEST, SIGNATURE, SIGNER})
_SEAL = frozenset({MANIFEST, SIGNATURE})  # the two members the manifest cannot describe
# What the verifier holds in memory at most: one manifest, one small member, one JSON line.
_MAX_MANIFEST: Final = 256 << 20
_MAX_SMALL: Final = 1 << 20
_MAX_LINE: Final = 64 << 20
_MAX_PROBLEMS: Final = 100
_JSON_ERRORS = (ValueError, RecursionError)  # RecursionError: absurdly deep nesting
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


# ---------------------------------------------------------------------------------------------
# Values


@attrs.frozen
class Link:
    """What the next archive names as its `previous`: this file's name and manifest's SHA-256."""

    file_name: str
    manifest_sha256: str

    def to_json(self) -> dict[str, str]:
        return {"file_name": self.file_name, "manifest_sha256": self.manifest_sha256}


@attrs.frozen
class Member:
    """One ZIP member as the manifest lists it."""

    name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@attrs.frozen
class Problem:
    """What is wrong with one member (in a chain: one archive file), in English and Vietnamese.

    `what` is a stable code: zip, duplicate, name, missing, unreadable, manifest, extra, size,
    sha256, signature, signer, trust, format, index, payload, audit, audit-order, audit-link,
    count, range, more; for a chain also empty, unplaced, node, renamed, sequence, start, gap,
    restart, link, key; for notes partial and start.
    """

    member: str
    what: str
    en: str
    vi: str

    def to_json(self) -> dict[str, str]:
        return {
            "member": self.member,
            "what": self.what,
            "message_en": self.en,
            "message_vi": self.vi,
        }


@attrs.frozen
class ManifestSummary:
    """The signed facts of one archive, from its manifest.json."""

    node: str
    sequence: int
    file_name: str
    created_at: str
    messages: int
    audit_rows: int
    payload_bytes: int
    first_arrived_at: str | None
    last_arrived_at: str | None
    previous: Link | None
    members: int

    def to_json(self) -> dict[str, Any]:
        fields = attrs.asdict(self, recurse=False)
        fields["previous"] = self.previous.to_json() if self.previous else None
        return fields


@attrs.frozen
class ArchiveReport:
    """One archive file checked: `ok` when nothing is wrong.

    `link` is the file's name and its manifest.json's real SHA-256 (what the next archive must
    name), whenever manifest.json could be read. `trusted` is None when no trust roots were
    given, else whether signer.pem's first certificate chains to one of them.
    """

    path: Path
    problems: tuple[Problem, ...]
    summary: ManifestSummary | None
    link: Link | None
    signer: str | None = None
    signer_key_sha256: str | None = None
    trusted: bool | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "manifest": self.summary.to_json() if self.summary else None,
            "link": self.link.to_json() if self.link else None,
            "signer": self.signer,
            "signer_key_sha256": self.signer_key_sha256,
            "trusted": self.trusted,
        }


@attrs.frozen
class DirectoryReport:
    """Every archive of a directory, in sequence order, and their chain.

    `problems` are the chain's, each naming an archive file as its member; each archive's own
    problems are in `archives`. `notes` are facts, not faults: a chain that continues from a file
    not in this directory, an unfinished `.partial` file.
    """

    directory: Path
    archives: tuple[ArchiveReport, ...]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and all(a.ok for a in self.archives)

    def all_problems(self) -> Iterator[tuple[str, Problem]]:
        """(archive file name, problem) for every problem, the archives' own first."""
        for archive in self.archives:
            for problem in archive.problems:
                yield archive.path.name, problem
        for problem in self.problems:
            yield problem.member, problem

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "archives": [a.to_json() for a in self.archives],
            "chain_problems": [p.to_json() for p in self.problems],
            "notes": [n.to_json() for n in self.notes],
        }


class ArchiveError(Exception):
    """The writer cannot go on: a bad argument, a message it cannot archive, a failed write.

    `code` is stable: node, sequence, previous, path, exists, key, chain, message-id, duplicate,
    arrived-at, audit-id, not-json, audit-twice, closed, failed, not-sealed, payload-mismatch.
    """

    def __init__(self, code: str, message_en: str, message_vi: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_en = message_en
        self.message_vi = message_vi


class PayloadMismatch(ArchiveError):
    """The bytes given for a message do not hash to its `blob_sha256` (or `forward_sha256`)."""

    def __init__(self, message_id: str, member: str, expected: str, found: str) -> None:
        super().__init__(
            "payload-mismatch",
            f"message {message_id}: {member} has SHA-256 {found}, the row says {expected}",
            f"thông điệp {message_id}: {member} có SHA-256 {found}, bản ghi ghi {expected}",
        )
        self.message_id = message_id
        self.member = member
        self.expected = expected
        self.found = found


def archive_file_name(node: str, sequence: int) -> str:
    """The conventional name, `<node>-<sequence in 8 digits>.zip`, so name order is chain order."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", node) or "node"
    return f"{safe}-{sequence:08d}{ARCHIVE_SUFFIX}"


# ---------------------------------------------------------------------------------------------
# Texts: every message in English and Vietnamese, by code (str.format fields)

_ERRORS: Final[Mapping[str, tuple[str, str]]] = {
    "node": (
        "the node name is empty or not printable",
        "tên nút trống hoặc có ký tự không in được",
    ),
    "sequence": (
        "sequence {sequence!r} is not a whole number from 1",
        "số thứ tự {sequence!r} không phải số nguyên từ 1",
    ),
    "previous": (
        "archive 1 starts a chain (previous None); every later archive names its previous",
        "tệp số 1 bắt đầu chuỗi (không có tệp trước); mọi tệp sau phải ghi tệp trước nó",
    ),
    "previous-hash": (
        "previous.manifest_sha256 is not 64 lowercase hex digits",
        "previous.manifest_sha256 không phải 64 chữ số hex thường",
    ),
    "path": (
        "{name}: an archive's file name ends in .zip",
        "{name}: tên tệp lưu trữ phải có đuôi .zip",
    ),
    "exists": (
        "{path} exists: a sealed archive is never overwritten",
        "{path} đã tồn tại: không ghi đè tệp lưu trữ đã niêm phong",
    ),
    "key": (
        "archives are signed with an RSA or EC key, not {kind}",
        "tệp lưu trữ chỉ ký bằng khóa RSA hoặc EC, không phải {kind}",
    ),
    "chain": (
        "chain_pem must start with the certificate of the signing key",
        "chain_pem phải bắt đầu bằng chứng thư của khóa ký",
    ),
    "message-id": (
        "message id {id!r} is not 1-128 letters, digits, '.', '_' or '-' (a letter or digit first)",
        "mã thông điệp {id!r} không phải 1-128 chữ, số, '.', '_' hoặc '-' (bắt đầu bằng chữ, số)",
    ),
    "duplicate": (
        "message {id} is already in this archive",
        "thông điệp {id} đã có trong tệp lưu trữ này",
    ),
    "arrived-at": (
        "message {id}: arrived_at {value!r} is not an ISO 8601 time with its offset",
        "thông điệp {id}: arrived_at {value!r} không phải thời điểm ISO 8601 có múi giờ",
    ),
    "audit-id": (
        "message {id}: the audit row id {value!r} is not an integer",
        "thông điệp {id}: mã dòng nhật ký {value!r} không phải số nguyên",
    ),
    "not-json": (
        "message {id}: a value is not JSON ({why})",
        "thông điệp {id}: có giá trị không biểu diễn được bằng JSON ({why})",
    ),
    "audit-twice": (
        "audit row {value} was given twice with different content",
        "dòng nhật ký {value} được đưa hai lần với nội dung khác nhau",
    ),
    "closed": (
        "the archive is sealed, aborted or failed",
        "tệp lưu trữ đã niêm phong, đã hủy hoặc đã lỗi",
    ),
    "failed": (
        "an add() failed: the archive is not sealed and its partial file is removed",
        "một lần add() bị lỗi: tệp lưu trữ không được niêm phong và tệp ghi dở đã bị xóa",
    ),
    "not-sealed": ("the archive is not sealed", "tệp lưu trữ chưa được niêm phong"),
}

_PROBLEMS: Final[Mapping[str, tuple[str, str]]] = {
    "zip": ("not a readable ZIP archive: {why}", "không đọc được tệp ZIP: {why}"),
    "duplicate": (
        "the ZIP holds two members of this name",
        "tệp ZIP có hai thành phần trùng tên này",
    ),
    "name:unsafe": (
        "an unsafe member name (absolute, '..', a backslash)",
        "tên thành phần không an toàn (đường dẫn tuyệt đối, '..', dấu gạch ngược)",
    ),
    "name:layout": (
        "not a member of this format's layout",
        "không thuộc bố cục của định dạng này",
    ),
    "missing:manifest": ("there is no manifest.json", "không có manifest.json"),
    "missing:signature": ("there is no manifest.sig", "không có manifest.sig"),
    "missing:format": (
        "this member of the format is missing",
        "thiếu thành phần bắt buộc này của định dạng",
    ),
    "missing:listed": (
        "the manifest lists this member; the ZIP does not hold it",
        "bản kê liệt kê thành phần này nhưng tệp ZIP không có",
    ),
    "missing:payload": (
        "message {id}'s {kind} is described but missing",
        "{kind} của thông điệp {id} được mô tả nhưng không có",
    ),
    "unreadable": ("the member's data is damaged: {why}", "dữ liệu của thành phần bị hỏng: {why}"),
    "manifest": (
        "manifest.json is not a manifest of this format: {why}",
        "manifest.json không đúng định dạng bản kê: {why}",
    ),
    "extra": ("this member is not in the manifest", "thành phần này không có trong bản kê"),
    "size": ("{real} bytes; the manifest says {listed}", "{real} byte; bản kê ghi {listed}"),
    "sha256": (
        "SHA-256 {real}; the manifest says {listed}",
        "SHA-256 {real}; bản kê ghi {listed}",
    ),
    "signature:invalid": (
        "not a valid signature over manifest.json by {subject}",
        "không phải chữ ký hợp lệ trên manifest.json của {subject}",
    ),
    "signature:algorithm": (
        "the manifest names {named!r}; the signature is {used}",
        "bản kê ghi thuật toán {named!r}; chữ ký dùng {used}",
    ),
    "signer:unreadable": (
        "no readable certificate: {why}",
        "không có chứng thư số đọc được: {why}",
    ),
    "signer:other": (
        "its first certificate is not the one the manifest names",
        "chứng thư đầu tiên không phải chứng thư mà bản kê ghi",
    ),
    "format": ("not {format} version {version}", "không phải {format} phiên bản {version}"),
    "index:json": ("line {line} is not a JSON object", "dòng {line} không phải đối tượng JSON"),
    "index:id": (
        "line {line}: {id!r} is not a message id",
        "dòng {line}: {id!r} không phải mã thông điệp",
    ),
    "index:twice": (
        "line {line}: message {id} is listed twice",
        "dòng {line}: thông điệp {id} được liệt kê hai lần",
    ),
    "index:row": (
        "line {line}: message {id}'s row is missing or has another id",
        "dòng {line}: bản ghi của thông điệp {id} bị thiếu hoặc mang mã khác",
    ),
    "index:list": (
        "line {line}: message {id}: {key} is not a list (of audit ids, for audit)",
        "dòng {line}: thông điệp {id}: {key} không phải danh sách (mã nhật ký, với audit)",
    ),
    "index:arrived": (
        "line {line}: message {id}: arrived_at is not an ISO 8601 time",
        "dòng {line}: thông điệp {id}: arrived_at không phải thời điểm ISO 8601",
    ),
    "index:member": (
        "line {line}: message {id}: {kind} is not a member (name, size, sha256) named {name}",
        "dòng {line}: thông điệp {id}: {kind} không mô tả thành phần (name, size, sha256) {name}",
    ),
    "index:manifest": (
        "messages.jsonl line {line} and the manifest disagree on this member",
        "dòng {line} của messages.jsonl và bản kê không khớp về thành phần này",
    ),
    "payload:digest": (
        "the row's {key} is {expected}; {kind}.edxml has SHA-256 {found}",
        "{key} của bản ghi là {expected}; {kind}.edxml có SHA-256 {found}",
    ),
    "payload:undescribed": (
        "message {id} has no {kind} described in messages.jsonl",
        "thông điệp {id} không có {kind} được mô tả trong messages.jsonl",
    ),
    "payload:orphan": (
        "no line of messages.jsonl describes this member",
        "không dòng nào của messages.jsonl mô tả thành phần này",
    ),
    "audit:json": (
        "line {line} is not an audit row (a JSON object with an integer id)",
        "dòng {line} không phải dòng nhật ký (đối tượng JSON có mã số nguyên)",
    ),
    "audit-order": (
        "line {line}: row {id} follows row {before}: ids must ascend",
        "dòng {line}: dòng nhật ký {id} đứng sau {before}: mã phải tăng dần",
    ),
    "audit-link": (
        "line {line}: row {id}'s prev_hash is not row {before}'s hash",
        "dòng {line}: prev_hash của dòng {id} khác hash của dòng {before}",
    ),
    "audit:missing": (
        "message {id} names audit rows {ids} that are not here",
        "thông điệp {id} ghi các dòng nhật ký {ids} không có ở đây",
    ),
    "count:messages": (
        "{real} lines; the manifest says {listed} messages",
        "{real} dòng; bản kê ghi {listed} thông điệp",
    ),
    "count:audit": ("{real} rows; the manifest says {listed}", "{real} dòng; bản kê ghi {listed}"),
    "range": (
        "the messages' arrival times are not the manifest's range",
        "thời điểm đến của các thông điệp không khớp khoảng thời gian trong bản kê",
    ),
    "more": ("{count} more problem(s) not listed", "còn {count} lỗi khác không liệt kê"),
    # the chain of a directory
    "empty": ("no archive file (*.zip) here", "không có tệp lưu trữ (*.zip) nào"),
    "unplaced": (
        "its manifest cannot be read, so its place in the chain is unknown",
        "không đọc được bản kê nên không rõ vị trí của tệp trong chuỗi",
    ),
    "node": ("archives of several nodes: {nodes}", "tệp lưu trữ của nhiều nút: {nodes}"),
    "renamed": (
        "archive {sequence} was written as {name}",
        "tệp lưu trữ số {sequence} được ghi với tên {name}",
    ),
    "sequence:start": (
        "archive {sequence} has previous {previous}: only archive 1, always, starts a chain",
        "tệp số {sequence} có previous {previous}: chỉ tệp số 1, và luôn luôn, bắt đầu chuỗi",
    ),
    "sequence:twice": (
        "archive {sequence} is also in {other}",
        "tệp lưu trữ số {sequence} cũng có trong {other}",
    ),
    "start": (
        "the chain should continue from {expected}; it names {found}",
        "chuỗi phải nối tiếp {expected}; tệp ghi {found}",
    ),
    "gap": (
        "archives {first}-{last} are missing between {before} and this one",
        "thiếu các tệp lưu trữ số {first}-{last} giữa {before} và tệp này",
    ),
    "restart": (
        "archive {sequence} starts a new chain after {before}",
        "tệp số {sequence} bắt đầu một chuỗi mới sau {before}",
    ),
    "link:hash": (
        "{after} records manifest SHA-256 {recorded} for it; its manifest's is {real}: this file"
        " was replaced or altered",
        "{after} ghi SHA-256 bản kê {recorded} cho tệp này; bản kê của tệp là {real}: tệp đã bị"
        " thay thế hoặc sửa đổi",
    ),
    "link:name": (
        "its previous archive is recorded as {recorded}, found as {found}: renamed or reordered",
        "tệp trước được ghi là {recorded}, thực tế là {found}: đã đổi tên hoặc đổi thứ tự",
    ),
    "key": (
        "signed with another key than {before}: give trusted roots to accept a renewed certificate",
        "được ký bằng khóa khác với {before}: cần chỉ định chứng thư gốc tin cậy để chấp nhận"
        " chứng thư đã gia hạn",
    ),
    # notes
    "partial": (
        "an unfinished archive (its writing was interrupted); not part of the chain",
        "tệp lưu trữ ghi dở (việc ghi bị gián đoạn); không thuộc chuỗi",
    ),
    "start:elsewhere": (
        "the chain continues from {name}, which is not here: its start is not checked",
        "chuỗi nối tiếp {name}, tệp này không có ở đây: phần đầu chuỗi không được kiểm tra",
    ),
}


def _error(code: str, **fields: object) -> ArchiveError:
    en, vi = _ERRORS[code]
    return ArchiveError(code, en.format(**fields), vi.format(**fields))


def _problem(member: str, code: str, **fields: object) -> Problem:
    en, vi = _PROBLEMS[code]
    return Problem(member, code.split(":")[0], en.format(**fields), vi.format(**fields))


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False
)


def _dumps(value: object) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


def _parse_time(value: object) -> dt.datetime | None:
    """An aware datetime from ISO 8601 text or a datetime; None if neither, or naive."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return None
    return value


def _vn_text(value: dt.datetime) -> str:
    return value.astimezone(VN_TZ).isoformat()


def _key_sha256(key: PublicKeyTypes) -> str:
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _readme(node: str, sequence: int, file_name: str) -> bytes:
    return f"""\
edXML gateway message-log archive ({FORMAT}, version {VERSION})
Node: {node}    Archive number: {sequence}    File: {file_name}

This ZIP file is a sealed archive of messages exchanged by an edXML gateway node: the exact
bytes of each message as the node stored them (messages/<id>/payload.edxml, and a relay's
onward bytes in forward.edxml), one line per message in messages.jsonl (the stored row, its
deliveries, statuses, inbox entries and the ids of its audit rows), and those audit rows in
audit.jsonl. manifest.json lists every other member with its size and SHA-256; manifest.sig is
the node's signature over manifest.json; signer.pem is the node's certificate chain, signer
first. "previous" in manifest.json holds the SHA-256 of the previous archive's manifest.json,
so the archives of a node form a chain: none can be altered, removed or replaced unnoticed.

Verify with the gateway (offline: it needs neither the node nor its database):

    gateway archive verify DIRECTORY --trust ROOT.pem

Or by hand, with unzip, openssl, sha256sum and python3:

    mkdir x && cd x && unzip -q ../{file_name}
    openssl x509 -in signer.pem -noout -pubkey > signer.pub
    openssl dgst -sha256 -verify signer.pub -signature manifest.sig manifest.json
    openssl verify -CAfile ROOT.pem -untrusted signer.pem signer.pem
    python3 -c 'import json; [print(m["sha256"] + "  " + m["name"])
      for m in json.load(open("manifest.json"))["members"]]' | sha256sum -c --quiet
    sha256sum manifest.json    # = "previous"."manifest_sha256" in the next archive

The SHA-256 of messages/<id>/payload.edxml is also the "blob_sha256" of the message's row.

---

Tệp lưu trữ nhật ký thông điệp của cổng trao đổi edXML ({FORMAT}, phiên bản {VERSION})
Nút: {node}    Số thứ tự tệp lưu trữ: {sequence}    Tệp: {file_name}

Tệp ZIP này là bản lưu trữ đã niêm phong các thông điệp mà một nút cổng edXML đã trao đổi:
nguyên văn từng byte của mỗi thông điệp như nút đã lưu (messages/<id>/payload.edxml, và bản
chuyển tiếp của nút trung gian trong forward.edxml), mỗi thông điệp một dòng trong
messages.jsonl (bản ghi, các lần gửi, trạng thái, hộp thư đến và mã các dòng nhật ký kiểm tra
của nó), và các dòng nhật ký đó trong audit.jsonl. manifest.json liệt kê mọi thành phần còn lại
cùng kích thước và SHA-256; manifest.sig là chữ ký số của nút trên manifest.json; signer.pem là
chuỗi chứng thư số của nút, chứng thư ký đứng đầu. Trường "previous" trong manifest.json chứa
SHA-256 của manifest.json thuộc tệp lưu trữ trước, nên các tệp lưu trữ của một nút tạo thành
một chuỗi: không tệp nào bị sửa, xóa hay thay thế mà không bị phát hiện.

Kiểm tra bằng cổng (ngoại tuyến: không cần nút, cũng không cần cơ sở dữ liệu của nút):

    gateway archive verify THƯ_MỤC --trust GỐC.pem

Hoặc kiểm tra thủ công bằng unzip, openssl, sha256sum và python3 với các lệnh ở phần tiếng Anh
phía trên: chữ ký trên manifest.json, chuỗi chứng thư tới chứng thư gốc tin cậy, SHA-256 của
từng thành phần, và SHA-256 của manifest.json so với trường "previous" của tệp lưu trữ kế tiếp.
SHA-256 của messages/<id>/payload.edxml cũng là "blob_sha256" trong bản ghi của thông điệp.
""".encode()


# ---------------------------------------------------------------------------------------------
# Writer


class _Sink:
    """Append-only and not seekable: zipfile then writes data descriptors, never seeks back."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._written = 0
        self.discard = False

    def write(self, data: bytes) -> int:
        if not self.discard:
            self._file.write(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        if not self.discard:
            self._file.flush()

    def close(self) -> None:
        """The writer closes the file itself, after fsync."""


def _algorithm(key: PrivateKeyTypes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return RSA_ALGORITHM
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECDSA_ALGORITHM
    raise _error("key", kind=type(key).__name__)


def _sign(key: PrivateKeyTypes, digest: bytes) -> bytes:
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(prehashed))
    raise _error("key", kind=type(key).__name__)


class ArchiveWriter:
    """Writes one archive file as a stream; use it as a context manager.

        name = archive_file_name(node, 7)
        with ArchiveWriter(directory / name, node=node, sequence=7, previous=link_of_6,
                           key=key, chain_pem=chain_pem, clock=clock) as writer:
            for row, blob_path, deliveries, statuses, inbox, audit in batch:
                writer.add(row, blob_path, deliveries=deliveries, statuses=statuses,
                           inbox=inbox, audit=audit)
        link_of_7 = writer.link

    `previous` is None for sequence 1, and only for it. Leaving the `with` normally seals the
    file (messages.jsonl, audit.jsonl, manifest, signature, chain; fsync; rename from
    `<name>.partial`; fsync of the directory); leaving it by an exception, or after an `add()`
    failed, removes the partial file. Every call blocks on file I/O: run it in a thread.
    """

    def __init__(
        self,
        path: Path,
        *,
        node: str,
        sequence: int,
        previous: Link | None,
        key: PrivateKeyTypes,
        chain_pem: bytes,
        clock: Callable[[], dt.datetime],
    ) -> None:
        if not node or not node.isprintable():
            raise _error("node")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
            raise _error("sequence", sequence=sequence)
        if (previous is None) != (sequence == 1):
            raise _error("previous")
        if previous is not None and _SHA256.fullmatch(previous.manifest_sha256) is None:
            raise _error("previous-hash")
        if path.suffix != ARCHIVE_SUFFIX:
            raise _error("path", name=path.name)
        if path.exists():
            raise _error("exists", path=path)
        self._algorithm = _algorithm(key)
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            chain = []
        if not chain or _key_sha256(chain[0].public_key()) != _key_sha256(key.public_key()):
            raise _error("chain")
        opened = clock()
        if opened.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        local = opened.astimezone(VN_TZ)
        self._date_time = (max(local.year, 1980), *local.timetuple()[1:6])
        self._node = node
        self._sequence = sequence
        self._previous = previous
        self._key = key
        self._chain_pem = chain_pem
        self._leaf = chain[0]
        self._clock = clock
        self._final = path
        self._partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self._members: list[Member] = []
        self._ids: set[str] = set()
        self._payload_bytes = 0
        self._first: dt.datetime | None = None
        self._last: dt.datetime | None = None
        # The audit rows' ids and where each one's line is in the spool: 24 bytes a row.
        self._audit_ids = array("q")
        self._audit_offsets = array("q")
        self._audit_lengths = array("q")
        self._audit_ascending = True
        self._audit_rows = 0
        self._link: Link | None = None
        self._state = "open"
        # O_TRUNC: a partial file an earlier run left behind when it crashed is started afresh.
        fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
        self._file: BinaryIO = os.fdopen(fd, "wb", buffering=_CHUNK)
        self._sink = _Sink(self._file)
        self._spools: list[IO[bytes]] = []
        self._zip: zipfile.ZipFile | None = None
        try:
            self._zip = zipfile.ZipFile(self._sink, "w", allowZip64=True)
            # Unlinked temp files (O_TMPFILE): a crash leaves nothing of them behind.
            self._index = self._spool(path.parent)
            self._audit = self._spool(path.parent)
            self._write_bytes(README, _readme(node, sequence, path.name), zipfile.ZIP_STORED)
            description = {
                "format": FORMAT,
                "version": VERSION,
                "manifest": MANIFEST,
                "signature": SIGNATURE,
                "signer": SIGNER,
                "messages": MESSAGES,
                "audit": AUDIT,
                "payloads": "messages/<id>/payload.edxml, messages/<id>/forward.edxml",
            }
            self._write_bytes(FORMAT_JSON, _dumps(description) + b"\n", zipfile.ZIP_STORED)
        except BaseException:
            self._abort()
            raise

    # -- public

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._state != "open":
            failed = self._state == "failed"
            self._abort()
            if exc_type is None and failed:
                raise _error("failed")
            return
        try:
            self._seal()
        except BaseException:
            self._abort()
            raise

    @property
    def link(self) -> Link:
        """This archive as the next one's `previous`, once it is sealed."""
        if self._link is None:
            raise _error("not-sealed")
        return self._link

    @property
    def messages(self) -> int:
        return len(self._ids)

    @property
    def size(self) -> int:
        """Bytes written so far, for the caller to roll to the next archive where it likes."""
        return self._sink.tell()

    def add(
        self,
        message: Mapping[str, Any],
        payload: Path | BinaryIO,
        *,
        forward: Path | BinaryIO | None = None,
        deliveries: Iterable[Mapping[str, Any]] = (),
        statuses: Iterable[Mapping[str, Any]] = (),
        inbox: Iterable[Mapping[str, Any]] = (),
        audit: Iterable[Mapping[str, Any]] = (),
    ) -> Member:
        """Archive one message: its row, its exact bytes (a path, or a binary file read from its
        position to its end and left open), a relay's forward bytes, and the rows about it.

        Returns the payload's member (name, size, SHA-256). An ArchiveError about the message
        itself (its id, arrival time, a value that is not JSON) leaves the writer usable; a
        failure while writing its bytes, PayloadMismatch included, means it will not seal.
        """
        if self._state != "open":
            raise _error("closed")
        message_id, arrived, body, rows = self._prepare(message, deliveries, statuses, inbox, audit)
        folder = f"messages/{message_id}/"
        try:
            stored = self._write_stream(folder + "payload.edxml", payload)
            self._check_digest(message_id, stored, message.get("blob_sha256"))
            sent = None
            if forward is not None:
                sent = self._write_stream(folder + "forward.edxml", forward)
                self._check_digest(message_id, sent, message.get("forward_sha256"))
            for row_id, line in rows:
                self._spool_audit(row_id, line)
            head = {
                "id": message_id,
                "payload": stored.to_json(),
                "forward": sent.to_json() if sent else None,
                "audit": sorted({row_id for row_id, _ in rows}),
            }
            # {"id", "payload", "forward", "audit"} + {"message", "deliveries", ...}, one line
            self._index.write(_dumps(head)[:-1] + b"," + body[1:] + b"\n")
        except BaseException:
            self._state = "failed"
            raise
        self._ids.add(message_id)
        self._payload_bytes += stored.size + (sent.size if sent else 0)
        self._first = arrived if self._first is None else min(self._first, arrived)
        self._last = arrived if self._last is None else max(self._last, arrived)
        return stored

    # -- internals

    def _spool(self, directory: Path) -> IO[bytes]:
        spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by _close_spools
        self._spools.append(spool)
        return spool

    def _prepare(
        self,
        message: Mapping[str, Any],
        deliveries: Iterable[Mapping[str, Any]],
        statuses: Iterable[Mapping[str, Any]],
        inbox: Iterable[Mapping[str, Any]],
        audit: Iterable[Mapping[str, Any]],
    ) -> tuple[str, dt.datetime, bytes, list[tuple[int, bytes]]]:
        """Everything about a message that can be refused before any of it is written: its id,
        its arrival, and its JSON (the row and the related rows as one object, and each audit
        row's line)."""
        message_id = message.get("id")
        if not isinstance(message_id, str) or _MESSAGE_ID.fullmatch(message_id) is None:
            raise _error("message-id", id=message_id)
        if message_id in self._ids:
            raise _error("duplicate", id=message_id)
        arrived = _parse_time(message.get("arrived_at"))
        if arrived is None:
            raise _error("arrived-at", id=message_id, value=message.get("arrived_at"))
        try:
            body = _dumps(
                {
                    "message": dict(message),
                    "deliveries": [dict(r) for r in deliveries],
                    "statuses": [dict(r) for r in statuses],
                    "inbox": [dict(r) for r in inbox],
                }
            )
            rows: list[tuple[int, bytes]] = []
            for row in audit:
                row_id = row.get("id")
                if isinstance(row_id, bool) or not isinstance(row_id, int):
                    raise _error("audit-id", id=message_id, value=row_id)
                rows.append((row_id, _dumps(dict(row)) + b"\n"))
        except (TypeError, ValueError) as exc:
            raise _error("not-json", id=message_id, why=exc) from None
        return message_id, arrived, body, rows

    @staticmethod
    def _check_digest(message_id: str, member: Member, expected: object) -> None:
        if isinstance(expected, str) and expected and expected != member.sha256:
            raise PayloadMismatch(message_id, member.name, expected, member.sha256)

    def _write_chunks(self, name: str, chunks: Iterable[bytes], compress_type: int) -> Member:
        assert self._zip is not None
        info = zipfile.ZipInfo(name, self._date_time)
        info.compress_type = compress_type
        info.create_system = 3  # Unix, so that the mode bits below mean the same everywhere
        info.external_attr = 0o100644 << 16
        digest = hashlib.sha256()
        size = 0
        with self._zip.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        member = Member(name, size, digest.hexdigest())
        self._members.append(member)
        return member

    def _write_bytes(self, name: str, data: bytes, compress_type: int) -> Member:
        return self._write_chunks(name, (data,), compress_type)

    def _write_stream(self, name: str, source: Path | BinaryIO) -> Member:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as stream:
                return self._write_chunks(name, _chunks(stream), zipfile.ZIP_STORED)
        return self._write_chunks(name, _chunks(source), zipfile.ZIP_STORED)

    def _spool_audit(self, row_id: int, line: bytes) -> None:
        ids = self._audit_ids
        if ids and row_id <= ids[-1]:
            self._audit_ascending = False
        ids.append(row_id)
        self._audit_offsets.append(self._audit.tell())
        self._audit_lengths.append(len(line))
        self._audit.write(line)

    def _audit_lines(self) -> Iterator[bytes]:
        """The spooled audit rows in ascending id order, each once (two different rows under one
        id are refused)."""
        self._audit.flush()
        if self._audit_ascending:
            self._audit_rows = len(self._audit_ids)
            self._audit.seek(0)
            yield from _chunks(self._audit)
            return
        fd = self._audit.fileno()
        ids, offsets, lengths = self._audit_ids, self._audit_offsets, self._audit_lengths
        last_id: int | None = None
        last_line = b""
        for index in sorted(range(len(ids)), key=ids.__getitem__):
            line = os.pread(fd, lengths[index], offsets[index])
            if ids[index] == last_id:
                if line != last_line:
                    raise _error("audit-twice", value=last_id)
                continue
            last_id, last_line = ids[index], line
            self._audit_rows += 1
            yield line

    def _index_lines(self) -> Iterator[bytes]:
        self._index.flush()
        self._index.seek(0)
        return _chunks(self._index)

    @staticmethod
    def _manifest_chunks(header: Mapping[str, Any], members: Sequence[Member]) -> Iterator[bytes]:
        """manifest.json: the header's fields, then one member a line (greppable, diffable)."""
        head = json.dumps(header, ensure_ascii=False, indent=1)
        yield head[: head.rindex("\n}")].encode() + b',\n "members": [\n'
        for index, member in enumerate(members):
            yield b"  " + _dumps(member.to_json()) + (b",\n" if index < len(members) - 1 else b"\n")
        yield b" ]\n}\n"

    def _seal(self) -> None:
        assert self._zip is not None
        self._write_chunks(MESSAGES, self._index_lines(), zipfile.ZIP_DEFLATED)
        self._write_chunks(AUDIT, self._audit_lines(), zipfile.ZIP_DEFLATED)
        created = self._clock()
        if created.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        header = {
            "format": FORMAT,
            "version": VERSION,
            "node": self._node,
            "sequence": self._sequence,
            "file_name": self._final.name,
            "created_at": _vn_text(created),
            "previous": self._previous.to_json() if self._previous else None,
            "messages": len(self._ids),
            "first_arrived_at": _vn_text(self._first) if self._first else None,
            "last_arrived_at": _vn_text(self._last) if self._last else None,
            "audit_rows": self._audit_rows,
            "payload_bytes": self._payload_bytes,
            "signer": {
                "algorithm": self._algorithm,
                "certificate_sha256": self._leaf.fingerprint(hashes.SHA256()).hex(),
                "subject": self._leaf.subject.rfc4514_string(),
            },
        }
        # signer.pem goes last but its bytes are known: the manifest covers it too.
        signer = Member(SIGNER, len(self._chain_pem), hashlib.sha256(self._chain_pem).hexdigest())
        chunks = self._manifest_chunks(header, [*self._members, signer])
        manifest = self._write_chunks(MANIFEST, chunks, zipfile.ZIP_STORED)
        self._write_bytes(SIGNATURE, _sign(self._key, bytes.fromhex(manifest.sha256)), 0)
        self._write_bytes(SIGNER, self._chain_pem, zipfile.ZIP_STORED)
        self._zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._close_spools()
        if self._final.exists():
            raise _error("exists", path=self._final)
        os.rename(self._partial, self._final)
        _fsync_dir(self._final.parent)
        self._link = Link(self._final.name, manifest.sha256)
        self._state = "sealed"

    def _close_spools(self) -> None:
        for spool in self._spools:
            spool.close()
        self._spools = []

    def _abort(self) -> None:
        self._state = "aborted"
        self._sink.discard = True
        try:
            if self._zip is not None:
                self._zip.close()  # its central directory goes to the discarding sink
        except (ValueError, OSError):
            pass
        finally:
            self._file.close()
            self._close_spools()
            self._partial.unlink(missing_ok=True)


def _chunks(stream: IO[bytes] | BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


# ---------------------------------------------------------------------------------------------
# Verifier


class _Problems:
    """A capped problem list: a badly damaged archive reports its first problems, then a count."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.dropped = 0

    def add(self, member: str, code: str, **fields: object) -> None:
        self.append(_problem(member, code, **fields))

    def append(self, problem: Problem) -> None:
        if len(self.items) < _MAX_PROBLEMS:
            self.items.append(problem)
        else:
            self.dropped += 1

    def done(self) -> tuple[Problem, ...]:
        more = (_problem("", "more", count=self.dropped),) if self.dropped else ()
        return (*self.items, *more)


@attrs.frozen
class _Manifest:
    summary: ManifestSummary
    members: Mapping[str, Member]
    algorithm: str
    certificate_sha256: str
    created: dt.datetime


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _member_of(value: object) -> Member | None:
    if not isinstance(value, dict):
        return None
    name, size, sha256 = value.get("name"), _count(value.get("size")), value.get("sha256")
    if not isinstance(name, str) or size is None or not isinstance(sha256, str):
        return None
    return Member(name, size, sha256) if _SHA256.fullmatch(sha256) else None


def _parse_manifest(data: bytes) -> _Manifest:
    """The manifest's fields, or ValueError saying what is wrong with them."""
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ValueError(f"format {doc.get('format')!r} version {doc.get('version')!r}")
    node, file_name = doc.get("node"), doc.get("file_name")
    if not isinstance(node, str) or not isinstance(file_name, str):
        raise ValueError("node and file_name must be text")
    numbers = [_count(doc.get(k)) for k in ("sequence", "messages", "audit_rows", "payload_bytes")]
    sequence, messages, audit_rows, payload_bytes = numbers
    if sequence is None or messages is None or audit_rows is None or payload_bytes is None:
        raise ValueError("sequence, messages, audit_rows and payload_bytes must be counts")
    created = _parse_time(doc.get("created_at"))
    if created is None:
        raise ValueError("created_at is not an ISO 8601 time with its offset")
    previous = None
    if doc.get("previous") is not None:
        raw = doc["previous"]
        name = raw.get("file_name") if isinstance(raw, dict) else None
        sha256 = raw.get("manifest_sha256") if isinstance(raw, dict) else None
        if (
            not isinstance(name, str)
            or not isinstance(sha256, str)
            or not _SHA256.fullmatch(sha256)
        ):
            raise ValueError("previous needs a file_name and a 64-hex manifest_sha256")
        previous = Link(name, sha256)
    first, last = doc.get("first_arrived_at"), doc.get("last_arrived_at")
    if any(v is not None and _parse_time(v) is None for v in (first, last)):
        raise ValueError("first_arrived_at and last_arrived_at must be ISO 8601 times or null")
    signer = doc.get("signer")
    if not isinstance(signer, dict) or not isinstance(signer.get("algorithm"), str):
        raise ValueError("signer.algorithm is missing")
    if not isinstance(doc.get("members"), list):
        raise ValueError("members is not a list")
    members: dict[str, Member] = {}
    for raw in doc["members"]:
        member = _member_of(raw)
        if member is None:
            raise ValueError(f"a member entry is malformed: {raw!r:.200}")
        if member.name in members:
            raise ValueError(f"{member.name} is listed twice")
        members[member.name] = member
    summary = ManifestSummary(
        node=node,
        sequence=sequence,
        file_name=file_name,
        created_at=str(doc["created_at"]),
        messages=messages,
        audit_rows=audit_rows,
        payload_bytes=payload_bytes,
        first_arrived_at=first,
        last_arrived_at=last,
        previous=previous,
        members=len(members),
    )
    fingerprint = str(signer.get("certificate_sha256", ""))
    return _Manifest(summary, members, signer["algorithm"], fingerprint, created)


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise ValueError(f"{info.file_size} bytes, more than the {limit} this member may have")
    with zf.open(info) as stream:
        return stream.read(limit + 1)


def _safe_name(name: str) -> bool:
    return (
        not name.startswith("/")
        and "\\" not in name
        and "\x00" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


@attrs.frozen
class _Line:
    """What one messages.jsonl line claims, kept for the checks after the pass."""

    number: int
    message_id: str
    payload: Member | None
    forward: Member | None
    digests: tuple[object, object]  # the row's blob_sha256 and forward_sha256
    audit: tuple[int, ...]


class _Index:
    """Parses messages.jsonl line by line as it is hashed."""

    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        self.lines: list[_Line] = []
        self.ids: set[str] = set()
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None
        self.count = 0

    def line(self, number: int, raw: bytes) -> None:
        self.count += 1
        try:
            doc = json.loads(raw)
        except _JSON_ERRORS:
            doc = None
        if not isinstance(doc, dict):
            self.problems.add(MESSAGES, "index:json", line=number)
            return
        message_id, row = doc.get("id"), doc.get("message")
        where = {"line": number, "id": message_id}
        if not isinstance(message_id, str) or _MESSAGE_ID.fullmatch(message_id) is None:
            self.problems.add(MESSAGES, "index:id", **where)
            return
        if message_id in self.ids:
            self.problems.add(MESSAGES, "index:twice", **where)
            return
        self.ids.add(message_id)
        if not isinstance(row, dict) or row.get("id") != message_id:
            self.problems.add(MESSAGES, "index:row", **where)
            row = {}
        for key in ("deliveries", "statuses", "inbox", "audit"):
            if not isinstance(doc.get(key), list):
                self.problems.add(MESSAGES, "index:list", key=key, **where)
        audit: list[object] = doc["audit"] if isinstance(doc.get("audit"), list) else []
        audit_ids = tuple(a for a in audit if isinstance(a, int) and _count(a) is not None)
        if len(audit_ids) != len(audit):
            self.problems.add(MESSAGES, "index:list", key="audit", **where)
        arrived = _parse_time(row.get("arrived_at"))
        if arrived is None:
            self.problems.add(MESSAGES, "index:arrived", **where)
        else:
            self.first = arrived if self.first is None else min(self.first, arrived)
            self.last = arrived if self.last is None else max(self.last, arrived)
        claims: list[Member | None] = []
        for kind in ("payload", "forward"):
            name = f"messages/{message_id}/{kind}.edxml"
            claim = _member_of(doc.get(kind))
            if doc.get(kind) is not None and (claim is None or claim.name != name):
                self.problems.add(MESSAGES, "index:member", kind=kind, name=name, **where)
                claim = None
            claims.append(claim)
        digests = (row.get("blob_sha256"), row.get("forward_sha256"))
        self.lines.append(_Line(number, message_id, claims[0], claims[1], digests, audit_ids))


class _AuditLog:
    """Checks audit.jsonl line by line as it is hashed: JSON rows, ascending ids, their links."""

    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        self.ids: set[int] = set()
        self.count = 0
        self._last_id: int | None = None
        self._last_hash: object = None

    def line(self, number: int, raw: bytes) -> None:
        self.count += 1
        try:
            row = json.loads(raw)
        except _JSON_ERRORS:
            row = None
        row_id = _count(row.get("id")) if isinstance(row, dict) else None
        if row_id is None or not isinstance(row, dict):
            self.problems.add(AUDIT, "audit:json", line=number)
            return
        before = self._last_id
        where = {"line": number, "id": row_id, "before": before}
        if before is not None and row_id <= before:
            self.problems.add(AUDIT, "audit-order", **where)
        elif (
            before is not None
            and row_id == before + 1
            and self._last_hash is not None
            and "prev_hash" in row
            and row["prev_hash"] != self._last_hash
        ):
            self.problems.add(AUDIT, "audit-link", **where)
        self.ids.add(row_id)
        self._last_id = row_id
        self._last_hash = row.get("hash")


def _scan(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, on_line: Callable[[int, bytes], None] | None
) -> Member:
    """Stream one member: its real size and SHA-256, each line to `on_line` if there is one."""
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as stream:
        if on_line is None:
            for chunk in _chunks(stream):
                digest.update(chunk)
                size += len(chunk)
        else:
            number = 0
            while line := stream.readline(_MAX_LINE):
                digest.update(line)
                size += len(line)
                number += 1
                on_line(number, line)
    return Member(info.filename, size, digest.hexdigest())


def _signature_algorithm(key: PublicKeyTypes, signature: bytes, digest: bytes) -> str | None:
    """The algorithm if `signature` is good over the SHA-256 `digest` with `key`, else None."""
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
            return RSA_ALGORITHM
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
            return ECDSA_ALGORITHM
    except InvalidSignature:
        pass
    return None


def verify_archive(
    path: Path, *, trust_roots: Sequence[x509.Certificate] | None = None
) -> ArchiveReport:
    """Check one archive file offline, reading every member as a stream (constant memory).

    The ZIP reads, CRC-32 of every member included; no name is duplicated or unsafe; the members
    are exactly the manifest's plus manifest.json and manifest.sig, each of the manifest's size
    and SHA-256; manifest.sig verifies over manifest.json with signer.pem's first certificate,
    the one the manifest names (and, given `trust_roots`, it chains to one of them at the
    archive's created_at); format.json names this format; each line of messages.jsonl describes
    one message whose payload.edxml (forward.edxml) is here with its row's blob_sha256
    (forward_sha256), and no payload is undescribed; audit.jsonl holds JSON rows in strictly
    ascending id order, consecutive ids linked by prev_hash, and every row a message names; the
    counts and the arrival time range are the manifest's.
    """
    problems = _Problems()
    try:
        return _verify(path, trust_roots, problems)
    except (*_ZIP_ERRORS, ValueError) as exc:
        problems.add(path.name, "zip", why=exc)
        return ArchiveReport(path, problems.done(), None, None)


def _verify(
    path: Path, trust_roots: Sequence[x509.Certificate] | None, problems: _Problems
) -> ArchiveReport:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in by_name:
                problems.add(info.filename, "duplicate")
            by_name.setdefault(info.filename, info)
            if not _safe_name(info.filename):
                problems.add(info.filename, "name:unsafe")
            elif info.filename not in _TOP_LEVEL and not _PAYLOAD_NAME.fullmatch(info.filename):
                problems.add(info.filename, "name:layout")
        for name in (README, FORMAT_JSON, MESSAGES, AUDIT, SIGNER):
            if name not in by_name:
                problems.add(name, "missing:format")
        manifest, digest = _read_manifest(zf, by_name, problems)
        signer = _check_signature(zf, by_name, manifest, digest, trust_roots, problems)
        index, audit = _Index(problems), _AuditLog(problems)
        readers = {MESSAGES: index.line, AUDIT: audit.line}
        unreadable: set[str] = set()
        for info in infos:
            name = info.filename
            if name in _SEAL or by_name[name] is not info:
                continue
            try:
                real = _scan(zf, info, readers.get(name))
                if name == FORMAT_JSON:
                    _check_format(zf, info, problems)
            except _ZIP_ERRORS as exc:
                unreadable.add(name)
                problems.add(name, "unreadable", why=exc)
                continue
            listed = manifest.members.get(name) if manifest else None
            if manifest is not None and listed is None:
                problems.add(name, "extra")
            elif listed is not None and real.size != listed.size:
                problems.add(name, "size", real=real.size, listed=listed.size)
            elif listed is not None and real.sha256 != listed.sha256:
                problems.add(name, "sha256", real=real.sha256, listed=listed.sha256)
        if manifest is not None:
            for name in manifest.members:
                if name not in by_name and name not in _TOP_LEVEL:
                    problems.add(name, "missing:listed")
        audit_read = AUDIT in by_name and AUDIT not in unreadable
        if MESSAGES in by_name and MESSAGES not in unreadable:
            _check_index(index, audit if audit_read else None, by_name, manifest, problems)
        if manifest is not None and audit_read and audit.count != manifest.summary.audit_rows:
            problems.add(AUDIT, "count:audit", real=audit.count, listed=manifest.summary.audit_rows)
    return ArchiveReport(
        path,
        problems.done(),
        manifest.summary if manifest else None,
        Link(path.name, digest.hex()) if digest is not None else None,
        *signer,
    )


def _read_manifest(
    zf: zipfile.ZipFile, by_name: Mapping[str, zipfile.ZipInfo], problems: _Problems
) -> tuple[_Manifest | None, bytes | None]:
    """The parsed manifest (None if unusable) and the SHA-256 of its bytes (None if unread)."""
    info = by_name.get(MANIFEST)
    if info is None:
        problems.add(MANIFEST, "missing:manifest")
        return None, None
    try:
        data = _read_small(zf, info, _MAX_MANIFEST)
    except (*_ZIP_ERRORS, ValueError) as exc:
        problems.add(MANIFEST, "unreadable", why=exc)
        return None, None
    digest = hashlib.sha256(data).digest()
    try:
        return _parse_manifest(data), digest
    except _JSON_ERRORS as exc:  # UnicodeDecodeError and JSONDecodeError included
        problems.add(MANIFEST, "manifest", why=exc)
        return None, digest


def _check_signature(
    zf: zipfile.ZipFile,
    by_name: Mapping[str, zipfile.ZipInfo],
    manifest: _Manifest | None,
    digest: bytes | None,
    trust_roots: Sequence[x509.Certificate] | None,
    problems: _Problems,
) -> tuple[str | None, str | None, bool | None]:
    """(the signer's subject, the SHA-256 of its public key, trusted: None when not asked)."""
    if SIGNATURE not in by_name:
        problems.add(SIGNATURE, "missing:signature")
        return None, None, None
    if SIGNER not in by_name:
        return None, None, None  # reported as a missing member of the format
    try:
        signature = _read_small(zf, by_name[SIGNATURE], _MAX_SMALL)
    except (*_ZIP_ERRORS, ValueError) as exc:
        problems.add(SIGNATURE, "unreadable", why=exc)
        return None, None, None
    try:
        chain = x509.load_pem_x509_certificates(_read_small(zf, by_name[SIGNER], _MAX_SMALL))
    except (*_ZIP_ERRORS, ValueError) as exc:
        problems.add(SIGNER, "signer:unreadable", why=exc)
        return None, None, None
    leaf = chain[0]
    subject = leaf.subject.rfc4514_string()
    key_sha256 = _key_sha256(leaf.public_key())
    if digest is None:
        return subject, key_sha256, None
    algorithm = _signature_algorithm(leaf.public_key(), signature, digest)
    if algorithm is None:
        problems.add(SIGNATURE, "signature:invalid", subject=subject)
    if manifest is None:
        return subject, key_sha256, None
    if algorithm is not None and manifest.algorithm != algorithm:
        problems.add(MANIFEST, "signature:algorithm", named=manifest.algorithm, used=algorithm)
    if manifest.certificate_sha256 != leaf.fingerprint(hashes.SHA256()).hex():
        problems.add(SIGNER, "signer:other")
    if trust_roots is None:
        return subject, key_sha256, None
    trust = certificates.Trust(roots=tuple(trust_roots))
    found = certificates.build_chain(leaf, chain[1:], trust, manifest.created)
    if isinstance(found, certificates.Problem):
        problems.append(Problem(SIGNER, "trust", found.en, found.vi))
        return subject, key_sha256, False
    return subject, key_sha256, True


def _check_format(zf: zipfile.ZipFile, info: zipfile.ZipInfo, problems: _Problems) -> None:
    try:
        doc = json.loads(_read_small(zf, info, _MAX_SMALL))
    except _JSON_ERRORS:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        problems.add(FORMAT_JSON, "format", format=FORMAT, version=VERSION)


def _check_index(
    index: _Index,
    audit: _AuditLog | None,
    by_name: Mapping[str, zipfile.ZipInfo],
    manifest: _Manifest | None,
    problems: _Problems,
) -> None:
    """messages.jsonl's lines against the members, the manifest and audit.jsonl."""
    described: set[str] = set()
    for line in index.lines:
        kinds = (
            ("payload", line.payload, "blob_sha256"),
            ("forward", line.forward, "forward_sha256"),
        )
        for (kind, claim, key), expected in zip(kinds, line.digests, strict=True):
            name = f"messages/{line.message_id}/{kind}.edxml"
            if claim is None:
                if kind == "payload" or name in by_name:
                    problems.add(name, "payload:undescribed", id=line.message_id, kind=kind)
                continue
            described.add(name)
            if name not in by_name:
                problems.add(name, "missing:payload", id=line.message_id, kind=kind)
                continue
            if manifest is not None and manifest.members.get(name) != claim:
                problems.add(name, "index:manifest", line=line.number)
            if isinstance(expected, str) and expected and expected != claim.sha256:
                fields = {"key": key, "kind": kind, "expected": expected, "found": claim.sha256}
                problems.add(name, "payload:digest", **fields)
        if audit is not None:
            missing = [a for a in line.audit if a not in audit.ids]
            if missing:
                problems.add(AUDIT, "audit:missing", id=line.message_id, ids=missing[:10])
    for name in by_name:
        if _PAYLOAD_NAME.fullmatch(name) and name not in described:
            problems.add(name, "payload:orphan")
    if manifest is None:
        return
    summary = manifest.summary
    if index.count != summary.messages:
        problems.add(MESSAGES, "count:messages", real=index.count, listed=summary.messages)
    claimed = (_parse_time(summary.first_arrived_at), _parse_time(summary.last_arrived_at))
    if claimed != (index.first, index.last):
        problems.add(MESSAGES, "range")


# ---------------------------------------------------------------------------------------------
# Directories and the command


def verify_directory(
    directory: Path,
    *,
    trust_roots: Sequence[x509.Certificate] | None = None,
    previous: Link | None = None,
) -> DirectoryReport:
    """Verify every `*.zip` file of `directory`, and their chain in sequence order.

    The chain holds when sequence numbers are contiguous and each archive's `previous` names the
    file holding the archive before it and that file's real manifest.json SHA-256. The first
    archive's `previous` is null (archive 1) or, when given, `previous`; without it, a chain that
    continues from a file that is not here is a note, since its start cannot be checked. Without
    `trust_roots`, a signing key that changes from one archive to the next is a problem: only a
    trusted chain tells a renewed certificate from an impostor.
    """
    files = sorted(p for p in directory.iterdir() if p.suffix == ARCHIVE_SUFFIX and p.is_file())
    partials = sorted(directory.glob(f"*{ARCHIVE_SUFFIX}{PARTIAL_SUFFIX}"))
    notes = [_problem(p.name, "partial") for p in partials]
    reports = [verify_archive(p, trust_roots=trust_roots) for p in files]
    placed = sorted(
        (r for r in reports if r.summary is not None),
        key=lambda r: (r.summary.sequence if r.summary else 0, r.path.name),
    )
    unplaced = [r for r in reports if r.summary is None]
    chain = _Problems()
    if not reports:
        chain.add(directory.name, "empty")
    for report in unplaced:
        chain.add(report.path.name, "unplaced")
    nodes = sorted({r.summary.node for r in placed if r.summary})
    if len(nodes) > 1:
        chain.add(placed[0].path.name, "node", nodes=nodes)
    before: ArchiveReport | None = None
    for report in placed:
        _check_link(before, report, previous, trust_roots is not None, chain, notes)
        before = report
    return DirectoryReport(directory, (*placed, *unplaced), chain.done(), tuple(notes))


def _check_link(
    before: ArchiveReport | None,
    report: ArchiveReport,
    previous: Link | None,
    trusted: bool,
    chain: _Problems,
    notes: list[Problem],
) -> None:
    """One archive against the one before it in the chain (None: it is the first here)."""
    b = report.summary
    assert b is not None
    name = report.path.name
    if b.file_name != name:
        chain.add(name, "renamed", sequence=b.sequence, name=b.file_name)
    if (b.previous is None) != (b.sequence == 1):
        chain.add(name, "sequence:start", sequence=b.sequence, previous=b.previous)
    if before is None or before.summary is None:
        if previous is not None and b.previous != previous:
            chain.add(name, "start", expected=previous, found=b.previous)
        elif previous is None and b.previous is not None:
            notes.append(_problem(name, "start:elsewhere", name=b.previous.file_name))
        return
    a = before.summary
    if b.sequence == a.sequence:
        chain.add(name, "sequence:twice", sequence=b.sequence, other=before.path.name)
    elif b.sequence != a.sequence + 1:
        chain.add(name, "gap", first=a.sequence + 1, last=b.sequence - 1, before=before.path.name)
    elif b.previous is None:
        chain.add(name, "restart", sequence=b.sequence, before=before.path.name)
    else:
        real = before.link.manifest_sha256 if before.link else None
        if b.previous.manifest_sha256 != real:
            recorded = b.previous.manifest_sha256
            chain.add(before.path.name, "link:hash", after=name, recorded=recorded, real=real)
        if b.previous.file_name != before.path.name:
            chain.add(name, "link:name", recorded=b.previous.file_name, found=before.path.name)
        keys = (before.signer_key_sha256, report.signer_key_sha256)
        if not trusted and None not in keys and keys[0] != keys[1]:
            chain.add(name, "key", before=before.path.name)


def _print_report(report: DirectoryReport | ArchiveReport, out: TextIO) -> None:
    if isinstance(report, DirectoryReport):
        where, archives, chain, notes = (
            report.directory,
            report.archives,
            report.problems,
            report.notes,
        )
    else:
        where, archives, chain, notes = report.path, (report,), (), ()
    print(f"{FORMAT}: {where}", file=out)
    for archive in archives:
        s = archive.summary
        facts = ""
        if s is not None:
            span = f"{s.first_arrived_at} .. {s.last_arrived_at}" if s.messages else "-"
            facts = f"  #{s.sequence}  {s.messages} message(s)  {span}"
        trust = {None: "", True: "  trusted", False: "  NOT TRUSTED"}[archive.trusted]
        print(f"  {'ok     ' if archive.ok else 'PROBLEM'} {archive.path.name}{facts}", file=out)
        if archive.signer:
            print(f"          signed by {archive.signer}{trust}", file=out)
        for p in archive.problems:
            print(f"          - {p.member} [{p.what}]: {p.en}\n            {p.vi}", file=out)
    for p in notes:
        print(f"  note: {p.member}: {p.en}\n        {p.vi}", file=out)
    if chain:
        print("  chain / chuỗi:", file=out)
    for p in chain:
        print(f"          - {p.member} [{p.what}]: {p.en}\n            {p.vi}", file=out)
    count = sum(len(a.problems) for a in archives) + len(chain)
    if report.ok:
        linked = " and their chain holds" if isinstance(report, DirectoryReport) else ""
        print(f"result: OK, {len(archives)} archive(s) verify{linked}", file=out)
        print(f"kết quả: đạt, {len(archives)} tệp lưu trữ hợp lệ", file=out)
    else:
        print(f"result: {count} problem(s) found\nkết quả: phát hiện {count} lỗi", file=out)


def verify_main(
    directory: Path, *, trust: Path | None, as_json: bool, out: TextIO | None = None
) -> int:
    """`gateway archive verify DIR [--trust ROOT.pem] [--json]`, with neither click nor the node.

    DIR is a directory of archives (each verified, and their chain) or a single archive file.
    Prints a report, or one JSON document, on `out` (stdout) and returns 0 when everything
    verifies, 65 (EX_DATAERR) when a problem is found, 66 (EX_NOINPUT) when DIR or the trust
    file is missing or holds no certificate.
    """
    out = out if out is not None else sys.stdout
    roots: list[x509.Certificate] | None = None
    if trust is not None:
        try:
            roots = x509.load_pem_x509_certificates(trust.read_bytes())
        except (OSError, ValueError) as exc:
            _fail(
                out,
                as_json,
                f"{trust}: no trusted certificate: {exc}",
                f"{trust}: không có chứng thư tin cậy: {exc}",
            )
            return EX_NOINPUT
    report: DirectoryReport | ArchiveReport
    if directory.is_dir():
        report = verify_directory(directory, trust_roots=roots)
    elif directory.is_file():
        report = verify_archive(directory, trust_roots=roots)
    else:
        _fail(
            out,
            as_json,
            f"{directory}: no such directory or file",
            f"{directory}: không có thư mục hay tệp này",
        )
        return EX_NOINPUT
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=1), file=out)
    else:
        _print_report(report, out)
    return EX_OK if report.ok else EX_DATAERR


def _fail(out: TextIO, as_json: bool, en: str, vi: str) -> None:
    if as_json:
        error = {"ok": False, "error": {"message_en": en, "message_vi": vi}}
        print(json.dumps(error, ensure_ascii=False), file=out)
    else:
        print(f"{en}\n{vi}", file=out)
