"""Content-addressed blobs: naming, streaming, dedupe, verification, crash leftovers, symlinks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gateway.blobs import BlobError, BlobRef, BlobStore, is_digest


class BlobStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.blobs = BlobStore(self.root)

    def test_put_names_file_by_sha256(self) -> None:
        data = b"<edXMLEnvelope/>" * 100
        ref = self.blobs.put(data)
        digest = hashlib.sha256(data).hexdigest()
        self.assertEqual(ref, BlobRef(digest, len(data)))
        self.assertEqual(self.blobs.path(digest), self.root / digest[:2] / digest)
        self.assertEqual((self.root / digest[:2] / digest).read_bytes(), data)
        self.assertEqual(self.blobs.read(digest), data)
        self.assertTrue(self.blobs.exists(digest))
        self.assertTrue(self.blobs.verify(digest))
        self.assertEqual(list((self.root / "tmp").iterdir()), [])

    def test_streaming_writer_matches_put(self) -> None:
        chunks = [os.urandom(65536) for _ in range(20)]
        sink = self.blobs.writer()
        for chunk in chunks:
            sink.write(chunk)
        ref = sink.commit()
        self.assertEqual(ref.sha256, hashlib.sha256(b"".join(chunks)).hexdigest())
        self.assertEqual(ref.size, 20 * 65536)
        with self.blobs.open(ref.sha256) as handle:
            self.assertEqual(handle.read(), b"".join(chunks))

    def test_same_content_twice_is_one_file(self) -> None:
        first = self.blobs.put(b"same bytes")
        inode = os.stat(self.blobs.path(first.sha256)).st_ino
        second = self.blobs.put(b"same bytes")
        self.assertEqual(first, second)
        self.assertEqual(os.stat(self.blobs.path(first.sha256)).st_ino, inode)
        self.assertEqual(list((self.root / "tmp").iterdir()), [])

    def test_abort_and_exception_leave_nothing(self) -> None:
        sink = self.blobs.writer()
        sink.write(b"half a document")
        sink.abort()
        with self.assertRaises(RuntimeError), self.blobs.writer() as other:
            other.write(b"more")
            raise RuntimeError("caller failed mid-stream")
        self.assertEqual(list((self.root / "tmp").iterdir()), [])
        self.assertEqual([p.name for p in self.root.iterdir()], ["tmp"])
        self.assertRaises(BlobError, sink.write, b"x")

    def test_verify_detects_changed_and_missing(self) -> None:
        ref = self.blobs.put(b"original")
        path = self.blobs.path(ref.sha256)
        path.chmod(0o644)
        path.write_bytes(b"tampered")
        self.assertFalse(self.blobs.verify(ref.sha256))
        self.assertFalse(self.blobs.verify("0" * 64))
        self.assertFalse(self.blobs.exists("0" * 64))
        self.assertRaises(BlobError, self.blobs.read, "0" * 64)

    def test_digests_are_validated(self) -> None:
        for bad in ("", "../" + "a" * 61, "A" * 64, "a" * 63, "a" * 65, "g" * 64, "a" * 63 + "\n"):
            self.assertFalse(is_digest(bad))
            self.assertRaises(BlobError, self.blobs.path, bad)
            self.assertRaises(BlobError, self.blobs.open, bad)

    def test_sweep_tmp_removes_crash_leftovers(self) -> None:
        sink = self.blobs.writer()
        sink.write(b"never committed")
        # A crash: the process dies holding the temp file; a new store sweeps it at start.
        again = BlobStore(self.root)
        self.assertEqual(again.sweep_tmp(), 1)
        self.assertEqual(list((self.root / "tmp").iterdir()), [])

    def test_symlinks_out_of_root_are_refused(self) -> None:
        outside = Path(self.mktemp())
        outside.mkdir()
        secret = outside / ("ab" + "c" * 62)
        secret.write_bytes(b"secret")
        (self.root / "ab").symlink_to(outside)
        with self.assertRaises(BlobError):
            self.blobs.read("ab" + "c" * 62)
        self.assertFalse(self.blobs.verify("ab" + "c" * 62))
        # A blob file that is itself a symlink is not followed either.
        digest = "cd" + "e" * 62
        (self.root / "cd").mkdir()
        (self.root / "cd" / digest).symlink_to(secret)
        self.assertRaises(BlobError, self.blobs.read, digest)
        self.assertFalse(self.blobs.exists(digest))
