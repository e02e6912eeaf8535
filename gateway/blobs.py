"""Content-addressed payload files: the exact bytes of every stored message, under `root/ab/abcd…`.

A blob is named by the SHA-256 of its content, so a retried write of the same bytes lands on the
same file and costs nothing more. Writing is streaming: `BlobStore.writer()` hands out a sink with
`write(bytes)` (what `edxml.xmlsafe.parse_stream(sink_factory=…)` and `edxml.writer.write_to`
expect) that hashes as it goes into a temp file under `root/tmp/`; `commit()` fsyncs the file,
renames it into place and fsyncs the directory, so that once it returns the blob survives a power
cut. A crash leaves at most a temp file, which `sweep_tmp()` removes at start.

Every call here blocks (file I/O and fsync): callers run it in a thread, never in the reactor.
Digests are validated (64 lowercase hex) before a path is built from them, and no path is followed
through a symlink out of the root.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import attrs

__all__ = ["BlobError", "BlobRef", "BlobStore", "BlobWriter", "is_digest"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_TMP_PREFIX = "blob-"


class BlobError(Exception):
    """A digest that is not 64 lowercase hex, a missing blob, or a path escaping the root."""


@attrs.frozen
class BlobRef:
    """A committed (fsynced) blob: its SHA-256 in lowercase hex and its size in bytes."""

    sha256: str
    size: int


def is_digest(value: str) -> bool:
    """True for 64 lowercase hex characters, the only names a blob may have."""
    return _DIGEST.fullmatch(value) is not None


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (the directory entry itself)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """A streaming sink into one temp file; `commit()` or `abort()` exactly once."""

    def __init__(self, store: BlobStore, fd: int, tmp_path: Path) -> None:
        self._store = store
        self._file = os.fdopen(fd, "wb")
        self._tmp_path = tmp_path
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise BlobError("write after commit or abort")
        self._hash.update(data)
        self._size += len(data)
        self._file.write(data)
        return len(data)

    def commit(self) -> BlobRef:
        """Make the blob durable under its digest; the temp file is gone afterwards."""
        if self._done:
            raise BlobError("commit after commit or abort")
        self._done = True
        ref = BlobRef(self._hash.hexdigest(), self._size)
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._store._install(self._tmp_path, ref)
        except BaseException:
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                self._tmp_path.unlink()
            raise
        return ref

    def abort(self) -> None:
        """Drop what was written; harmless after commit."""
        if self._done:
            return
        self._done = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp_path.unlink()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving the block without commit() (an exception, or a caller that changed its mind)
        # must not leave a temp file behind.
        self.abort()


class BlobStore:
    """Files at `root/ab/abcdef…` named by SHA-256; temp files under `root/tmp/`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(exist_ok=True)

    def writer(self) -> BlobWriter:
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self._tmp)
        return BlobWriter(self, fd, Path(name))

    def put(self, data: bytes) -> BlobRef:
        with self.writer() as sink:
            sink.write(data)
            return sink.commit()

    def path(self, sha256: str) -> Path:
        """Where the blob lives (it may not exist); refuses bad digests and symlinked shards."""
        if not is_digest(sha256):
            raise BlobError("not a SHA-256 digest in lowercase hex")
        shard = self.root / sha256[:2]
        if shard.is_symlink() or (
            shard.exists() and not shard.resolve().is_relative_to(self._real_root)
        ):
            raise BlobError("blob directory leaves the blob root")
        return shard / sha256

    def exists(self, sha256: str) -> bool:
        target = self.path(sha256)
        return target.is_file() and not target.is_symlink()

    def open(self, sha256: str) -> BinaryIO:
        target = self.path(sha256)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise BlobError("no such blob") from None
        except OSError as exc:
            # ELOOP: the blob itself is a symlink, which a blob never is.
            raise BlobError("blob is not a regular file") from exc
        return os.fdopen(fd, "rb")

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as handle:
            return handle.read()

    def verify(self, sha256: str) -> bool:
        """Re-hash the file: True when it exists and its content still has this digest."""
        digest = hashlib.sha256()
        try:
            with self.open(sha256) as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except BlobError:
            return False
        return digest.hexdigest() == sha256

    def sweep_tmp(self) -> int:
        """Remove temp files a crash left behind; run at start, before any writer exists."""
        removed = 0
        for entry in self._tmp.iterdir():
            if entry.name.startswith(_TMP_PREFIX) and entry.is_file():
                entry.unlink()
                removed += 1
        return removed

    def _install(self, tmp_path: Path, ref: BlobRef) -> None:
        target = self.path(ref.sha256)
        shard = target.parent
        if not shard.exists():
            shard.mkdir(exist_ok=True)
            fsync_dir(self.root)
        if target.exists():
            # Same digest, same bytes: the first copy is already durable.
            tmp_path.unlink()
            return
        os.replace(tmp_path, target)
        fsync_dir(shard)
