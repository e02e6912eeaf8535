"""Backup, restore and the integrity check of a node's data (issue #7; blocking: CLI and threads).

A backup is a directory: `gateway.db` (SQLite's online backup, taken in one step inside one read
transaction while the daemon keeps writing: a consistent snapshot), `blobs/` (every blob the
snapshot references, re-hashed while copied), `files/` (the rest of the data directory: the
dev PKI, token files — secrets, so the directory is 0700 and the files 0600), the configuration
file if given, and last `backup.json`, the manifest (snapshot time, schema version, counts, the
SHA-256 of every file). A backup without its manifest is incomplete and `restore` refuses it.

Why this is consistent: a blob is committed (fsynced, renamed) before the row naming it, and
blobs are never rewritten; so every blob the snapshot names exists when the copy looks for it,
whatever the daemon does meanwhile. Blobs written after the snapshot are simply not copied.

`restore` writes onto an empty data directory only, checks every file against the manifest and
every blob against its name, then runs `verify` on the result. `verify` re-hashes every blob the
store references (messages, relayed bytes, statuses) and names the messages a missing or altered
blob belongs to; it checks the audit chain and SQLite's own integrity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from gateway.blobs import fsync_dir, is_digest
from gateway.store import Store, utc_text, verify_audit_chain

__all__ = ["BackupError", "backup", "restore", "verify"]

FORMAT = "edxml-gateway-backup"
VERSION = 1
MANIFEST = "backup.json"
_CHUNK = 1 << 20
# What is not copied from the data directory as a plain file: the store (copied consistently),
# its WAL and shared memory, blobs (copied by reference), temp files, pre-migration copies.
_SKIPPED = ("gateway.db", "gateway.db-wal", "gateway.db-shm", "gateway.db-journal")

_REFERENCED = """
SELECT blob_sha256, 'message', id FROM messages
UNION ALL SELECT forward_sha256, 'relayed', id FROM messages WHERE forward_sha256 IS NOT NULL
UNION ALL SELECT blob_sha256, 'status', message_id FROM statuses WHERE blob_sha256 IS NOT NULL
"""


class BackupError(Exception):
    """Nothing was done, or what was done is unusable: the reason, in both languages."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.message_en = en
        self.message_vi = vi


@attrs.frozen
class BlobProblem:
    sha256: str
    problem: str  # "missing" | "altered" | "size"
    messages: tuple[str, ...]  # ids of the messages the blob belongs to

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "problem": self.problem, "messages": list(self.messages)}


@attrs.frozen
class VerifyReport:
    blobs: int
    bytes: int
    blob_problems: tuple[BlobProblem, ...]
    audit_rows: int
    audit_problems: tuple[str, ...]
    sqlite: str  # "ok" or SQLite's first complaint

    @property
    def ok(self) -> bool:
        return not self.blob_problems and not self.audit_problems and self.sqlite == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "blob_problems": [p.to_json() for p in self.blob_problems],
            "audit_rows": self.audit_rows,
            "audit_problems": list(self.audit_problems),
            "sqlite": self.sqlite,
        }


def _hash_copy(source: Path, target: Path) -> tuple[str, int]:
    """Copy `source` to `target` (0600, fsynced), hashing what is read; (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _referenced(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
    """Blob digest → the (kind, message id) pairs that name it."""
    found: dict[str, list[tuple[str, str]]] = {}
    for sha256, kind, message_id in conn.execute(_REFERENCED):
        found.setdefault(sha256, []).append((kind, message_id))
    return found


def _blob_path(root: Path, sha256: str) -> Path:
    if not is_digest(sha256):
        raise BackupError(
            f"a stored digest is not a SHA-256: {sha256[:80]!r}",
            "một mã băm lưu trong cơ sở dữ liệu không phải SHA-256",
        )
    return root / sha256[:2] / sha256


def _data_files(data_dir: Path) -> Iterator[Path]:
    """The data directory's plain files, other than the store and the blobs."""
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if relative.parts[0] == "blobs" or path.is_symlink() or not path.is_file():
            continue
        if relative.name in _SKIPPED or relative.name.endswith((".bak", ".partial")):
            continue
        yield path


def _empty_dir(path: Path, what_en: str, what_vi: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(
            f"{what_en} {path} exists and is not an empty directory",
            f"{what_vi} {path} đã tồn tại và không phải thư mục rỗng",
        )
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def backup(
    db_path: Path,
    data_dir: Path,
    dest: Path,
    *,
    node: str,
    config_path: Path | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Back up a node's data into the new (or empty) directory `dest`, daemon running or not.
    The manifest, as written. Raises BackupError before anything when `dest` is not empty."""
    _empty_dir(dest, "the backup directory", "thư mục sao lưu")
    source = Store.open_readonly(db_path)
    snapshot_path = dest / "gateway.db"
    target = sqlite3.connect(snapshot_path)
    try:
        snapshot_at = dt.datetime.now(dt.UTC) if now is None else now
        # One step (pages=-1): the whole file inside one read transaction, a consistent snapshot
        # however busy the writer is; WAL readers never block it.
        source.backup(target, pages=-1)
        version = int(target.execute("PRAGMA user_version").fetchone()[0])
        counts = {
            table: int(target.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("messages", "deliveries", "statuses", "audit")
        }
        last_audit = target.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        referenced = _referenced(target)
    finally:
        target.close()
        source.close()
    os.chmod(snapshot_path, 0o600)
    with open(snapshot_path, "rb+") as handle:
        os.fsync(handle.fileno())
    blobs_src, blobs_dst = data_dir / "blobs", dest / "blobs"
    blobs_dst.mkdir(mode=0o700)
    copied = total = 0
    problems: list[dict[str, Any]] = []
    for sha256 in sorted(referenced):
        source_blob = _blob_path(blobs_src, sha256)
        target_blob = _blob_path(blobs_dst, sha256)
        target_blob.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            got, size = _hash_copy(source_blob, target_blob)
        except FileNotFoundError:
            problems.append({"sha256": sha256, "problem": "missing"})
            continue
        if got != sha256:
            problems.append({"sha256": sha256, "problem": "altered"})
        copied += 1
        total += size
    for shard in blobs_dst.iterdir():
        fsync_dir(shard)
    files = []
    files_dst = dest / "files"
    for path in _data_files(data_dir):
        relative = path.relative_to(data_dir)
        target_file = files_dst / relative
        target_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sha256, size = _hash_copy(path, target_file)
        files.append({"path": str(relative), "sha256": sha256, "size": size})
    if config_path is not None:
        sha256, size = _hash_copy(config_path, dest / "gateway.conf")
        files.append({"path": "../gateway.conf", "sha256": sha256, "size": size})
    db_sha256, db_size = _hash_file(snapshot_path)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "node": node,
        "snapshot_at": utc_text(snapshot_at),
        "schema_version": version,
        "counts": counts,
        "last_audit_hash": last_audit[0] if last_audit else None,
        "database": {"sha256": db_sha256, "size": db_size},
        "blobs": {"count": copied, "bytes": total},
        "files": files,
        "problems": problems,
    }
    written = dest / f"{MANIFEST}.partial"
    fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, ensure_ascii=False, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(written, dest / MANIFEST)
    fsync_dir(dest)
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{src} has no {MANIFEST}: not a backup, or one that did not finish",
            f"{src} không có {MANIFEST}: không phải bản sao lưu, hoặc sao lưu chưa hoàn tất",
        ) from None
    except ValueError:
        raise BackupError(f"{path} is not JSON", f"{path} không phải JSON") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError(
            f"{path} is not a backup of format {FORMAT} version {VERSION}",
            f"{path} không phải bản sao lưu định dạng {FORMAT} phiên bản {VERSION}",
        )
    return manifest


def restore(src: Path, data_dir: Path) -> dict[str, Any]:
    """Restore the backup `src` onto the empty (or new) `data_dir`; every file checked against
    the manifest, every blob against its name, then `verify` on the result. What was restored,
    with the verification report."""
    manifest = read_manifest(src)
    _empty_dir(data_dir, "the data directory", "thư mục dữ liệu")
    db_target = data_dir / "gateway.db"
    sha256, _ = _hash_copy(src / "gateway.db", data_dir / "gateway.db.partial")
    if sha256 != manifest["database"]["sha256"]:
        (data_dir / "gateway.db.partial").unlink()
        raise BackupError(
            "the backup's gateway.db does not match its manifest: the backup is damaged",
            "tệp gateway.db của bản sao lưu không khớp với bản kê: bản sao lưu bị hỏng",
        )
    os.replace(data_dir / "gateway.db.partial", db_target)
    blobs_src, blobs_dst = src / "blobs", data_dir / "blobs"
    blobs_dst.mkdir(mode=0o700)
    damaged = []
    count = 0
    for shard in sorted(p for p in blobs_src.iterdir() if p.is_dir()):
        (blobs_dst / shard.name).mkdir(mode=0o700)
        for blob in sorted(shard.iterdir()):
            got, _ = _hash_copy(blob, blobs_dst / shard.name / blob.name)
            count += 1
            if got != blob.name:
                damaged.append(blob.name)
        fsync_dir(blobs_dst / shard.name)
    for entry in manifest["files"]:
        relative = Path(entry["path"])
        if relative.parts and relative.parts[0] == "..":
            continue  # the configuration: for the operator, not part of the data directory
        if relative.is_absolute() or ".." in relative.parts:
            raise BackupError(
                f"the manifest names a path outside the data directory: {relative}",
                f"bản kê ghi một đường dẫn nằm ngoài thư mục dữ liệu: {relative}",
            )
        target = data_dir / relative
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        got, _ = _hash_copy(src / "files" / relative, target)
        if got != entry["sha256"]:
            damaged.append(str(relative))
    fsync_dir(data_dir)
    conn = Store.open_readonly(db_target)
    try:
        report = verify(conn, blobs_dst)
    finally:
        conn.close()
    return {
        "restored_to": str(data_dir),
        "snapshot_at": manifest["snapshot_at"],
        "schema_version": manifest["schema_version"],
        "counts": manifest["counts"],
        "blobs": count,
        "damaged": damaged,
        "verify": report.to_json(),
        "ok": report.ok and not damaged,
    }


def verify(conn: sqlite3.Connection, blobs_root: Path) -> VerifyReport:
    """Every referenced blob re-hashed (streamed) against its name and its message's size; the
    audit chain; SQLite's quick_check. Read-only: a live store can be checked."""
    referenced = _referenced(conn)
    sizes = dict(conn.execute("SELECT id, size FROM messages"))
    problems: list[BlobProblem] = []
    total = 0
    for sha256, users in sorted(referenced.items()):
        messages = tuple(sorted({mid for _, mid in users}))
        path = _blob_path(blobs_root, sha256)
        try:
            got, size = _hash_file(path)
        except FileNotFoundError:
            problems.append(BlobProblem(sha256, "missing", messages))
            continue
        total += size
        if got != sha256:
            problems.append(BlobProblem(sha256, "altered", messages))
        elif any(kind == "message" and sizes.get(mid) != size for kind, mid in users):
            problems.append(BlobProblem(sha256, "size", messages))
    audit = [f"row {p.row_id}: {p.reason}" for p in verify_audit_chain(conn)]
    rows = int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    quick = conn.execute("PRAGMA quick_check").fetchone()[0]
    return VerifyReport(len(referenced), total, tuple(problems), rows, tuple(audit), str(quick))
