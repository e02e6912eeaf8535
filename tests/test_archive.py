"""The sealed message-log archive: writing, the chain, and an offline verifier that misses nothing.

Every archive here is signed with a key of the test PKI (RSA: the node's TLS key; EC: the ECDSA
agency seal). Tampering is done on the bytes on disk (one byte flipped inside a member's data,
found through its local header) or by rebuilding a ZIP with valid CRCs, re-signed or not, so
that each check of the verifier is the one that has to catch it.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import random
import shutil
import string
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from gateway import archive
from gateway.archive import (
    ArchiveError,
    ArchiveReport,
    ArchiveWriter,
    DirectoryReport,
    Link,
    PayloadMismatch,
    archive_file_name,
    verify_archive,
    verify_directory,
    verify_main,
)

if TYPE_CHECKING:  # one module name for mypy, which would otherwise find pki.py twice
    from tests.pki import PKIEntry, make_pki
else:
    try:
        from tests.pki import PKIEntry, make_pki
    except ImportError:  # tests/ itself on sys.path (no package __init__)
        from pki import PKIEntry, make_pki

NODE = "hanam-gw"
VN = dt.timezone(dt.timedelta(hours=7))
ARCHIVE_PY = Path(archive.__file__)


def clock() -> dt.datetime:
    # Inside the test PKI's validity (it is generated now): trust is checked at created_at.
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def payload_bytes(n: int, size: int = 200) -> bytes:
    body = f"<edXMLEnvelope><Subject>Văn bản số {n}</Subject>".encode()
    return (body + b"x" * size)[:size]


def audit_row(row_id: int, subject: str) -> dict[str, Any]:
    """A row as the store keeps it; hashes chained by id so consecutive rows link."""
    return {
        "id": row_id,
        "at": "2026-01-05T02:00:00.000000Z",
        "actor": "node",
        "action": "message.received",
        "subject_type": "message",
        "subject_id": subject,
        "detail_json": "{}",
        "prev_hash": f"h{row_id - 1:063x}",
        "hash": f"h{row_id:063x}",
    }


def message_row(message_id: str, data: bytes, minute: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": "in",
        "kind": "document",
        "sender": "000.00.00.H23",
        "document_id": f"000.00.00.H23,2026/01/05,{minute}/UBND-VP",
        "subject": "Về việc báo cáo tình hình",
        "state": "delivered",
        "blob_sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "arrived_at": f"2026-01-05T02:{minute % 60:02d}:00.000000Z",
        **extra,
    }


def data_span(path: Path, name: str) -> tuple[int, int]:
    """(offset, length) of a member's data in the file: header_offset + its local header."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with path.open("rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        (value,) = f.read(1)
        f.seek(offset)
        f.write(bytes([value ^ mask]))


def rebuild(
    source: Path,
    target: Path,
    *,
    replace: Mapping[str, bytes] | None = None,
    drop: Sequence[str] = (),
    add: Mapping[str, bytes] | None = None,
    reseal: PKIEntry | None = None,
) -> None:
    """Copy an archive as a new, well-formed ZIP (valid CRCs) with members changed; with
    `reseal`, also a fresh manifest (new sizes and hashes) signed with that entry's key."""
    replace, add = dict(replace or {}), dict(add or {})
    with zipfile.ZipFile(source) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist() if i.filename not in drop]
    members = [(n, replace.get(n, d)) for n, d in members] + list(add.items())
    if reseal is not None:
        members = _resealed(members, reseal)
    with zipfile.ZipFile(target, "w") as out:
        for name, data in members:
            out.writestr(name, data)


def _resealed(members: list[tuple[str, bytes]], signer: PKIEntry) -> list[tuple[str, bytes]]:
    contents = dict(members)
    manifest = json.loads(contents[archive.MANIFEST])
    chain = signer.chain_pem
    contents[archive.SIGNER] = chain
    listed = [n for n, _ in members if n not in (archive.MANIFEST, archive.SIGNATURE)]
    manifest["members"] = [
        {"name": n, "size": len(contents[n]), "sha256": hashlib.sha256(contents[n]).hexdigest()}
        for n in listed
    ]
    manifest["signer"]["certificate_sha256"] = signer.fingerprint
    manifest["signer"]["algorithm"] = archive._algorithm(signer.key)
    data = json.dumps(manifest, indent=1).encode()
    contents[archive.MANIFEST] = data
    contents[archive.SIGNATURE] = archive._sign(signer.key, hashlib.sha256(data).digest())
    return [(n, contents[n]) for n, _ in members]


def problems_of(report: ArchiveReport | DirectoryReport) -> list[tuple[str, str]]:
    """(member, what) of an archive's problems; (archive file, what) of a directory's."""
    if isinstance(report, ArchiveReport):
        return [(p.member, p.what) for p in report.problems]
    return [(file, p.what) for file, p in report.all_problems()]


class ArchiveCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.roots = [self.pki.root.cert]

    def write(
        self,
        sequence: int = 1,
        previous: Link | None = None,
        *,
        count: int = 3,
        signer: PKIEntry | None = None,
        directory: Path | None = None,
        first_audit: int = 1,
        tag: str = "",
    ) -> Path:
        """An archive of `count` messages, the second one a relay (with forward bytes)."""
        signer = signer or self.pki.node
        path = (directory or self.dir) / archive_file_name(NODE, sequence)
        with ArchiveWriter(
            path,
            node=NODE,
            sequence=sequence,
            previous=previous,
            key=signer.key,
            chain_pem=signer.chain_pem,
            clock=clock,
        ) as writer:
            for i in range(count):
                n = sequence * 1000 + i
                data = payload_bytes(n) + tag.encode()
                forward = data + b"<TraceHeader/>" if i == 1 else None
                extra = {"forward_sha256": hashlib.sha256(forward).hexdigest()} if forward else {}
                writer.add(
                    message_row(f"m{n}", data, minute=i, **extra),
                    io.BytesIO(data),
                    forward=io.BytesIO(forward) if forward else None,
                    deliveries=[{"id": n, "recipient": "000.00.00.G22", "state": "acked"}],
                    statuses=[{"id": n, "organ_id": "000.00.00.G22", "code": "01"}],
                    inbox=[{"organ_id": "000.00.00.G22", "acked_at": None}],
                    audit=[audit_row(first_audit + 2 * i + k, f"m{n}") for k in (0, 1)],
                )
        self.last_link = writer.link
        return path

    def chain(self, length: int = 3, **kwargs: Any) -> list[Path]:
        paths, previous = [], None
        for sequence in range(1, length + 1):
            paths.append(self.write(sequence, previous, first_audit=sequence * 100, **kwargs))
            previous = self.last_link
        return paths


class RoundTripTests(ArchiveCase):
    def test_rsa_archive_round_trips_and_verifies_against_the_root(self) -> None:
        path = self.write()
        report = verify_archive(path, trust_roots=self.roots)
        self.assertEqual(report.problems, ())
        self.assertTrue(report.ok)
        self.assertIs(report.trusted, True)
        self.assertEqual(report.link, self.last_link)
        summary = report.summary
        assert summary is not None
        self.assertEqual((summary.node, summary.sequence, summary.previous), (NODE, 1, None))
        self.assertEqual((summary.messages, summary.audit_rows), (3, 6))
        self.assertEqual(summary.first_arrived_at, "2026-01-05T09:00:00+07:00")
        self.assertEqual(summary.last_arrived_at, "2026-01-05T09:02:00+07:00")
        self.assertTrue(summary.created_at.endswith("+07:00"))
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            manifest_bytes = zf.read(archive.MANIFEST)
            lines = [json.loads(line) for line in zf.read(archive.MESSAGES).splitlines()]
            audit = [json.loads(line) for line in zf.read(archive.AUDIT).splitlines()]
            payload = zf.read("messages/m1000/payload.edxml")
            forward = zf.read("messages/m1001/forward.edxml")
            infos = {i.filename: i for i in zf.infolist()}
        self.assertEqual(
            names,
            [
                "README.txt",
                "format.json",
                "messages/m1000/payload.edxml",
                "messages/m1001/payload.edxml",
                "messages/m1001/forward.edxml",
                "messages/m1002/payload.edxml",
                "messages.jsonl",
                "audit.jsonl",
                "manifest.json",
                "manifest.sig",
                "signer.pem",
            ],
        )
        self.assertEqual(hashlib.sha256(manifest_bytes).hexdigest(), self.last_link.manifest_sha256)
        self.assertEqual(payload, payload_bytes(1000))
        self.assertEqual(forward, payload_bytes(1001) + b"<TraceHeader/>")
        self.assertEqual(lines[0]["message"], message_row("m1000", payload, minute=0))
        self.assertEqual(lines[0]["deliveries"][0]["recipient"], "000.00.00.G22")
        self.assertEqual(lines[0]["audit"], [1, 2])
        self.assertEqual(lines[1]["forward"]["sha256"], hashlib.sha256(forward).hexdigest())
        self.assertEqual([r["id"] for r in audit], [1, 2, 3, 4, 5, 6])
        self.assertEqual(audit[0], audit_row(1, "m1000"))
        for name, info in infos.items():
            self.assertTrue(info.flag_bits & 0x08, f"{name}: written as a stream")
            with path.open("rb") as f:
                f.seek(info.header_offset + 30 + len(name.encode()))
                self.assertEqual(f.read(2), b"\x01\x00", f"{name}: a zip64 extra field")
            expected = zipfile.ZIP_DEFLATED if name.endswith(".jsonl") else zipfile.ZIP_STORED
            self.assertEqual(info.compress_type, expected, name)
        manifest = json.loads(manifest_bytes)
        self.assertEqual(manifest["signer"]["algorithm"], "rsa-pkcs1v15-sha256")
        self.assertIn(
            {
                "name": "signer.pem",
                "size": len(self.pki.node.chain_pem),
                "sha256": hashlib.sha256(self.pki.node.chain_pem).hexdigest(),
            },
            manifest["members"],
        )

    def test_ec_key_signs_with_ecdsa(self) -> None:
        path = self.write(signer=self.pki.ec_agency)
        report = verify_archive(path, trust_roots=self.roots)
        self.assertEqual(report.problems, ())
        self.assertIs(report.trusted, True)
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read(archive.MANIFEST))
        self.assertEqual(manifest["signer"]["algorithm"], "ecdsa-sha256")

    def test_payload_streams_from_a_path(self) -> None:
        blob = self.dir / "blob"
        data = os.urandom(3 * 1024 * 1024 + 7)  # several chunks
        blob.write_bytes(data)
        path = self.dir / archive_file_name(NODE, 1)
        with self._writer(path) as writer:
            member = writer.add(message_row("big", data), blob, forward=blob)
        self.assertEqual(member.sha256, hashlib.sha256(data).hexdigest())
        self.assertEqual(member.size, len(data))
        self.assertTrue(verify_archive(path).ok)
        with zipfile.ZipFile(path) as zf:
            self.assertEqual(zf.read("messages/big/payload.edxml"), data)

    def test_same_input_same_clock_same_bytes(self) -> None:
        fixed = dt.datetime(2026, 1, 5, 9, 0, tzinfo=VN)
        files = []
        for name in ("a", "b"):
            (self.dir / name).mkdir()
            path = self.dir / name / archive_file_name(NODE, 1)
            with self._writer(path, clock=lambda: fixed) as writer:
                for i in range(3):
                    data = payload_bytes(i)
                    writer.add(message_row(f"m{i}", data), io.BytesIO(data))
            files.append(path.read_bytes())
        self.assertEqual(files[0], files[1])

    def test_by_hand_with_openssl_and_sha256sum(self) -> None:
        if shutil.which("openssl") is None or shutil.which("sha256sum") is None:
            self.skipTest("openssl or sha256sum not installed")
        path = self.write(signer=self.pki.ec_agency)
        out = self.dir / "x"
        with zipfile.ZipFile(path) as zf:
            zf.extractall(out)
        (out / "root.pem").write_bytes(self.pki.root.cert_pem)

        def run(*argv: str, stdin: bytes | None = None) -> bytes:
            return subprocess.run(
                argv, cwd=out, input=stdin, capture_output=True, check=True
            ).stdout

        pub = run("openssl", "x509", "-in", "signer.pem", "-noout", "-pubkey")
        (out / "signer.pub").write_bytes(pub)
        sig = ("-signature", "manifest.sig", "manifest.json")
        self.assertIn(
            b"Verified OK", run("openssl", "dgst", "-sha256", "-verify", "signer.pub", *sig)
        )
        run("openssl", "verify", "-CAfile", "root.pem", "-untrusted", "signer.pem", "signer.pem")
        manifest = json.loads((out / "manifest.json").read_bytes())
        sums = "".join(f"{m['sha256']}  {m['name']}\n" for m in manifest["members"])
        run("sha256sum", "-c", "--quiet", "-", stdin=sums.encode())
        readme = (out / "README.txt").read_text()
        self.assertIn("gateway archive verify", readme)
        self.assertIn("Kiểm tra bằng cổng", readme)

    def test_empty_archive(self) -> None:
        path = self.dir / archive_file_name(NODE, 1)
        with self._writer(path):
            pass
        report = verify_archive(path)
        self.assertEqual(report.problems, ())
        assert report.summary is not None
        self.assertEqual((report.summary.messages, report.summary.first_arrived_at), (0, None))

    def test_audit_rows_out_of_order_and_repeated_are_sorted_once(self) -> None:
        path = self.dir / archive_file_name(NODE, 1)
        with self._writer(path) as writer:
            for i, ids in enumerate(((7, 3), (5, 3), (9, 1))):
                data = payload_bytes(i)
                rows = [audit_row(r, "x") for r in ids]
                writer.add(message_row(f"m{i}", data), io.BytesIO(data), audit=rows)
        with zipfile.ZipFile(path) as zf:
            audit = [json.loads(line)["id"] for line in zf.read(archive.AUDIT).splitlines()]
        self.assertEqual(audit, [1, 3, 5, 7, 9])
        report = verify_archive(path)
        self.assertEqual(report.problems, ())
        assert report.summary is not None
        self.assertEqual(report.summary.audit_rows, 5)

    def _writer(self, path: Path, **kwargs: Any) -> ArchiveWriter:
        settings: dict[str, Any] = {
            "node": NODE,
            "sequence": 1,
            "previous": None,
            "key": self.pki.node.key,
            "chain_pem": self.pki.node.chain_pem,
            "clock": clock,
        }
        return ArchiveWriter(path, **{**settings, **kwargs})


class WriterRefusalTests(ArchiveCase):
    def writer(self, name: str = "a.zip", **kwargs: Any) -> ArchiveWriter:
        settings: dict[str, Any] = {
            "node": NODE,
            "sequence": 1,
            "previous": None,
            "key": self.pki.node.key,
            "chain_pem": self.pki.node.chain_pem,
            "clock": clock,
        }
        return ArchiveWriter(self.dir / name, **{**settings, **kwargs})

    def assertCode(self, code: str, fn: Callable[[], object]) -> ArchiveError:
        exc = self.assertRaises(ArchiveError, fn)
        self.assertEqual(exc.code, code)
        self.assertTrue(exc.message_en and exc.message_vi)
        return exc

    def test_bad_arguments(self) -> None:
        link = Link("x.zip", "0" * 64)
        self.assertCode("previous", lambda: self.writer(sequence=2))
        self.assertCode("previous", lambda: self.writer(previous=link))
        self.assertCode("previous-hash", lambda: self.writer(sequence=2, previous=Link("x", "y")))
        self.assertCode("sequence", lambda: self.writer(sequence=0))
        self.assertCode("node", lambda: self.writer(node=""))
        self.assertCode("path", lambda: self.writer(name="a.tar"))
        self.assertCode("chain", lambda: self.writer(chain_pem=self.pki.agency_h23.chain_pem))
        self.assertCode("chain", lambda: self.writer(chain_pem=b"not pem"))
        self.assertCode("key", lambda: self.writer(key=ed25519.Ed25519PrivateKey.generate()))
        (self.dir / "a.zip").write_bytes(b"sealed")
        self.assertCode("exists", lambda: self.writer())
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["a.zip"])

    def test_a_refused_message_leaves_the_writer_usable(self) -> None:
        data = payload_bytes(1)
        with self.writer() as writer:
            add = writer.add
            self.assertCode("message-id", lambda: add(message_row("../x", data), io.BytesIO(data)))
            self.assertCode("message-id", lambda: add(message_row("", data), io.BytesIO(data)))
            naive = message_row("m1", data, arrived_at="2026-01-05T09:00:00")
            self.assertCode("arrived-at", lambda: add(naive, io.BytesIO(data)))
            odd = message_row("m1", data, extra=object())
            self.assertCode("not-json", lambda: add(odd, io.BytesIO(data)))
            nan = message_row("m1", data, score=float("nan"))
            self.assertCode("not-json", lambda: add(nan, io.BytesIO(data)))
            no_id = [{"action": "x"}]
            self.assertCode(
                "audit-id", lambda: add(message_row("m1", data), io.BytesIO(data), audit=no_id)
            )
            when = dt.datetime(2026, 1, 5, 2, tzinfo=dt.UTC)
            add(message_row("m1", data, arrived_at=when, due=when.date()), io.BytesIO(data))
            self.assertCode("duplicate", lambda: add(message_row("m1", data), io.BytesIO(data)))
        report = verify_archive(self.dir / "a.zip")
        self.assertEqual(report.problems, ())
        assert report.summary is not None
        self.assertEqual(report.summary.messages, 1)

    def test_payload_not_matching_its_row_is_refused_and_nothing_is_sealed(self) -> None:
        data = payload_bytes(1)
        row = message_row("m1", data, blob_sha256="0" * 64)
        with self.assertRaises(PayloadMismatch) as caught, self.writer() as writer:
            writer.add(row, io.BytesIO(data))
        self.assertEqual(caught.exception.expected, "0" * 64)
        self.assertEqual(caught.exception.found, hashlib.sha256(data).hexdigest())
        self.assertEqual(list(self.dir.iterdir()), [])
        self.assertCode("not-sealed", lambda: writer.link)

    def test_leaving_normally_after_a_failed_add_raises_and_removes_the_file(self) -> None:
        data = payload_bytes(1)
        writer = self.writer()
        with contextlib.suppress(PayloadMismatch):
            writer.add(message_row("m1", data, blob_sha256="0" * 64), io.BytesIO(data))
        self.assertCode("closed", lambda: writer.add(message_row("m2", data), io.BytesIO(data)))
        self.assertCode("failed", lambda: writer.__exit__(None, None, None))
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_two_different_audit_rows_under_one_id_are_refused(self) -> None:
        data = payload_bytes(1)
        with self.assertRaises(ArchiveError) as caught, self.writer() as writer:
            writer.add(message_row("m1", data), io.BytesIO(data), audit=[audit_row(2, "a")])
            writer.add(message_row("m2", data), io.BytesIO(data), audit=[audit_row(2, "b")])
        self.assertEqual(caught.exception.code, "audit-twice")
        self.assertEqual(list(self.dir.iterdir()), [])


class CrashTests(ArchiveCase):
    def test_exception_inside_the_with_leaves_nothing(self) -> None:
        path = self.dir / archive_file_name(NODE, 1)
        data = payload_bytes(1)

        def crash() -> None:
            with self._open(path) as writer:
                writer.add(message_row("m1", data), io.BytesIO(data))
                self.assertTrue(path.with_name(path.name + ".partial").exists())
                self.assertFalse(path.exists())
                raise RuntimeError("the store went away")

        self.assertRaises(RuntimeError, crash)
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_a_killed_writer_leaves_only_a_partial_file_which_is_not_part_of_the_chain(
        self,
    ) -> None:
        first = self.write(1)
        keys = self.pki.node.write(self.dir / "keys")
        target = self.dir / archive_file_name(NODE, 2)
        child = textwrap.dedent(
            """
            import datetime as dt, io, os, sys
            from pathlib import Path
            from cryptography.hazmat.primitives import serialization
            from gateway.archive import ArchiveWriter, Link
            key_path, chain_path, target, previous = sys.argv[1:]
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
            writer = ArchiveWriter(Path(target), node="hanam-gw", sequence=2,
                previous=Link("hanam-gw-00000001.zip", previous), key=key,
                chain_pem=Path(chain_path).read_bytes(),
                clock=lambda: dt.datetime.now(dt.timezone.utc))
            for i in range(50):
                writer.add({"id": f"m{i}", "arrived_at": "2026-01-05T02:00:00Z"},
                           io.BytesIO(b"x" * 100000))
            sys.stdout.flush()
            os._exit(9)  # killed in the middle: no __exit__, no seal
            """
        )
        argv = [
            str(keys.key_path),
            str(keys.chain_path),
            str(target),
            self.last_link.manifest_sha256,
        ]
        proc = subprocess.run([sys.executable, "-c", child, *argv], capture_output=True)
        self.assertEqual(proc.returncode, 9, proc.stderr)
        partial = target.with_name(target.name + ".partial")
        self.assertTrue(partial.exists())
        self.assertFalse(target.exists())
        shutil.rmtree(self.dir / "keys")
        report = verify_directory(self.dir)
        self.assertTrue(report.ok, problems_of(report))
        self.assertEqual([a.path for a in report.archives], [first])
        self.assertEqual([(n.member, n.what) for n in report.notes], [(partial.name, "partial")])
        # The next run writes the same archive again over the partial file.
        self.write(2, self.last_link)
        self.assertFalse(partial.exists())
        self.assertTrue(verify_directory(self.dir).ok)

    def _open(self, path: Path) -> ArchiveWriter:
        return ArchiveWriter(
            path,
            node=NODE,
            sequence=1,
            previous=None,
            key=self.pki.node.key,
            chain_pem=self.pki.node.chain_pem,
            clock=clock,
        )


class TamperTests(ArchiveCase):
    def test_one_flipped_byte_in_every_member_is_found_and_named(self) -> None:
        original = self.write()
        with zipfile.ZipFile(original) as zf:
            names = zf.namelist()
        self.assertTrue({"manifest.json", "manifest.sig", "signer.pem", "README.txt"} <= set(names))
        for name in names:
            copy = self.dir / "copy" / original.name
            copy.parent.mkdir(exist_ok=True)
            shutil.copyfile(original, copy)
            offset, length = data_span(copy, name)
            self.assertGreater(length, 0, name)
            flip(copy, offset + length // 2)
            report = verify_archive(copy)
            self.assertFalse(report.ok, name)
            self.assertIn(name, [p.member for p in report.problems], (name, problems_of(report)))

    def test_a_member_changed_with_a_valid_crc_is_found_by_its_hash(self) -> None:
        original = self.write()
        changed = self.dir / "changed.zip"
        rebuild(original, changed, replace={"messages/m1000/payload.edxml": b"<forged/>"})
        self.assertIn(
            ("messages/m1000/payload.edxml", "size"), problems_of(verify_archive(changed))
        )
        same_size = b"y" * len(payload_bytes(1002))
        rebuild(original, changed, replace={"messages/m1002/payload.edxml": same_size})
        problems = problems_of(verify_archive(changed))
        self.assertIn(("messages/m1002/payload.edxml", "sha256"), problems)

    def test_an_edited_manifest_fails_its_signature(self) -> None:
        original = self.write()
        with zipfile.ZipFile(original) as zf:
            manifest = zf.read(archive.MANIFEST)
        forged = manifest.replace(b'"messages": 3', b'"messages": 2')
        self.assertNotEqual(forged, manifest)
        changed = self.dir / "changed.zip"
        rebuild(original, changed, replace={archive.MANIFEST: forged})
        problems = problems_of(verify_archive(changed))
        self.assertIn(("manifest.sig", "signature"), problems)
        self.assertIn(("messages.jsonl", "count"), problems)

    def test_a_member_added_or_removed_is_found(self) -> None:
        original = self.write()
        changed = self.dir / "changed.zip"
        rebuild(original, changed, add={"messages/m9/payload.edxml": b"<smuggled/>"})
        problems = problems_of(verify_archive(changed))
        self.assertIn(("messages/m9/payload.edxml", "extra"), problems)
        self.assertIn(("messages/m9/payload.edxml", "payload"), problems)  # undescribed
        rebuild(original, changed, add={"notes.txt": b"hello"})
        self.assertIn(("notes.txt", "extra"), problems_of(verify_archive(changed)))
        self.assertIn(("notes.txt", "name"), problems_of(verify_archive(changed)))
        for gone in ("messages/m1001/forward.edxml", "audit.jsonl", "README.txt", "signer.pem"):
            rebuild(original, changed, drop=[gone])
            self.assertIn((gone, "missing"), problems_of(verify_archive(changed)), gone)
        rebuild(original, changed, drop=["manifest.sig"])
        self.assertIn(("manifest.sig", "missing"), problems_of(verify_archive(changed)))
        rebuild(original, changed, drop=["manifest.json"])
        self.assertIn(("manifest.json", "missing"), problems_of(verify_archive(changed)))

    def test_a_duplicate_member_name_is_found(self) -> None:
        original = self.write()
        changed = self.dir / "changed.zip"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate it writes
            rebuild(original, changed, add={"messages/m1000/payload.edxml": b"<second/>"})
        self.assertIn(
            ("messages/m1000/payload.edxml", "duplicate"), problems_of(verify_archive(changed))
        )

    def test_resealed_archives_are_checked_inside_too(self) -> None:
        """An archive re-signed after editing: the signature holds, the content checks do not."""
        original = self.write()
        changed = self.dir / "changed.zip"
        with zipfile.ZipFile(original) as zf:
            index = zf.read(archive.MESSAGES)
            audit = zf.read(archive.AUDIT)
        lines = index.splitlines(keepends=True)
        row = json.loads(lines[0])
        row["message"]["blob_sha256"] = "1" * 64
        row["audit"] = [1, 2, 99]
        forged = json.dumps(row).encode() + b"\n" + b"".join(lines[1:])
        rebuild(original, changed, replace={archive.MESSAGES: forged}, reseal=self.pki.node)
        problems = problems_of(verify_archive(changed))
        self.assertIn(("messages/m1000/payload.edxml", "payload"), problems)  # blob_sha256
        self.assertIn(("audit.jsonl", "audit"), problems)  # row 99 is not there
        self.assertNotIn(("manifest.sig", "signature"), problems)
        rows = audit.splitlines(keepends=True)
        swapped = b"".join([rows[1], rows[0], *rows[2:]])
        rebuild(original, changed, replace={archive.AUDIT: swapped}, reseal=self.pki.node)
        self.assertIn(("audit.jsonl", "audit-order"), problems_of(verify_archive(changed)))
        rebuild(original, changed, replace={archive.AUDIT: b"not json\n"}, reseal=self.pki.node)
        problems = problems_of(verify_archive(changed))
        self.assertIn(("audit.jsonl", "audit"), problems)

    def test_broken_audit_links_are_found(self) -> None:
        path = self.dir / archive_file_name(NODE, 1)
        data = payload_bytes(1)
        rows = [
            audit_row(1, "m1"),
            {**audit_row(2, "m1"), "prev_hash": "f" * 64},
            audit_row(4, "m1"),
        ]
        with ArchiveWriter(
            path,
            node=NODE,
            sequence=1,
            previous=None,
            key=self.pki.node.key,
            chain_pem=self.pki.node.chain_pem,
            clock=clock,
        ) as writer:
            writer.add(message_row("m1", data), io.BytesIO(data), audit=rows)
        report = verify_archive(path)
        self.assertEqual(problems_of(report), [("audit.jsonl", "audit-link")])
        self.assertIn("row 2", report.problems[0].en)

    def test_an_untrusted_signer_is_found_with_trust_roots(self) -> None:
        path = self.write(signer=self.pki.untrusted_agency)
        self.assertTrue(verify_archive(path).ok)  # self-consistent...
        report = verify_archive(path, trust_roots=self.roots)  # ...but not ours
        self.assertIs(report.trusted, False)
        self.assertEqual(problems_of(report), [("signer.pem", "trust")])

    def test_garbage_is_reported_not_raised(self) -> None:
        for data in (b"", b"PK\x03\x04 not really", os.urandom(4096)):
            path = self.dir / "junk.zip"
            path.write_bytes(data)
            report = verify_archive(path)
            self.assertEqual(problems_of(report), [("junk.zip", "zip")])


class ChainTests(ArchiveCase):
    def test_a_chain_of_three_verifies(self) -> None:
        paths = self.chain()
        report = verify_directory(self.dir, trust_roots=self.roots)
        self.assertTrue(report.ok, problems_of(report))
        self.assertEqual([a.path for a in report.archives], paths)
        self.assertEqual(report.notes, ())
        links = [a.link for a in report.archives]
        previous = [a.summary.previous if a.summary else None for a in report.archives]
        self.assertEqual(previous, [None, links[0], links[1]])

    def test_the_files_of_a_chain_reordered(self) -> None:
        paths = self.chain()
        swap = self.dir / "swap"
        paths[1].rename(swap)
        paths[2].rename(paths[1])
        swap.rename(paths[2])
        problems = problems_of(verify_directory(self.dir))
        self.assertIn((paths[1].name, "renamed"), problems)
        self.assertIn((paths[2].name, "renamed"), problems)
        self.assertIn((paths[1].name, "link"), problems)

    def test_a_file_deleted_in_the_middle(self) -> None:
        paths = self.chain()
        paths[1].unlink()
        report = verify_directory(self.dir)
        self.assertEqual(problems_of(report), [(paths[2].name, "gap")])
        self.assertIn("2-2", report.problems[0].en)

    def test_a_file_replaced_by_a_resigned_impostor(self) -> None:
        paths = self.chain()
        links = [verify_archive(p).link for p in paths]
        paths[1].unlink()
        impostor = self.pki.untrusted_agency
        self.write(2, links[0], signer=impostor, first_audit=200, tag="forged")
        self.assertTrue(verify_archive(paths[1]).ok)  # it is a well-made archive on its own
        problems = problems_of(verify_directory(self.dir))
        self.assertIn((paths[1].name, "link"), problems)  # archive 3 names the real 2
        self.assertIn((paths[1].name, "key"), problems)
        trusted = problems_of(verify_directory(self.dir, trust_roots=self.roots))
        self.assertIn((paths[1].name, "trust"), trusted)
        self.assertNotIn((paths[1].name, "key"), trusted)

    def test_the_last_file_replaced_is_found_by_its_key_or_its_trust(self) -> None:
        paths = self.chain()
        links = [verify_archive(p).link for p in paths]
        paths[2].unlink()
        self.write(3, links[1], signer=self.pki.untrusted_agency, first_audit=300, tag="forged")
        self.assertEqual(problems_of(verify_directory(self.dir)), [(paths[2].name, "key")])
        trusted = problems_of(verify_directory(self.dir, trust_roots=self.roots))
        self.assertEqual(trusted, [(paths[2].name, "trust")])

    def test_a_renewed_key_is_accepted_with_trust_roots(self) -> None:
        self.write(1)
        self.write(2, self.last_link, signer=self.pki.ec_agency, first_audit=200)
        second = archive_file_name(NODE, 2)
        self.assertEqual(problems_of(verify_directory(self.dir)), [(second, "key")])
        self.assertTrue(verify_directory(self.dir, trust_roots=self.roots).ok)

    def test_a_chain_continued_from_elsewhere(self) -> None:
        paths = self.chain()
        paths[0].unlink()
        report = verify_directory(self.dir)
        self.assertTrue(report.ok, problems_of(report))
        self.assertEqual([(n.member, n.what) for n in report.notes], [(paths[1].name, "start")])
        real = verify_directory(self.dir, previous=self.links_of(paths)[0])
        self.assertIn((paths[1].name, "start"), problems_of(real))

    def test_duplicate_sequence_numbers_and_an_unreadable_file(self) -> None:
        paths = self.chain(2)
        shutil.copyfile(paths[1], self.dir / "copy.zip")
        (self.dir / "broken.zip").write_bytes(b"nothing")
        problems = problems_of(verify_directory(self.dir))
        self.assertIn(("copy.zip", "renamed"), problems)
        self.assertIn(("broken.zip", "zip"), problems)
        self.assertIn(("broken.zip", "unplaced"), problems)
        self.assertTrue(any(what == "sequence" for _, what in problems), problems)

    def test_an_empty_directory_is_a_problem(self) -> None:
        report = verify_directory(self.dir)
        self.assertFalse(report.ok)
        self.assertEqual([p.what for p in report.problems], ["empty"])

    def links_of(self, paths: Sequence[Path]) -> list[Link]:
        # Computed before any tampering in a real deployment; here from the manifest bytes.
        links = []
        for path in paths:
            if path.exists():
                with zipfile.ZipFile(path) as zf:
                    digest = hashlib.sha256(zf.read(archive.MANIFEST)).hexdigest()
                links.append(Link(path.name, digest))
        return links


class CommandTests(ArchiveCase):
    def run_main(
        self, target: Path, *, trust: Path | None = None, as_json: bool = False
    ) -> tuple[int, str]:
        out = io.StringIO()
        code = verify_main(target, trust=trust, as_json=as_json, out=out)
        return code, out.getvalue()

    def test_good_chain_text_and_json(self) -> None:
        paths = self.chain()
        root = self.dir / "root.pem.txt"
        root.write_bytes(self.pki.root.cert_pem)
        code, text = self.run_main(self.dir, trust=root)
        self.assertEqual(code, 0, text)
        self.assertIn("result: OK, 3 archive(s) verify and their chain holds", text)
        self.assertIn("kết quả: đạt", text)
        self.assertIn("trusted", text)
        code, text = self.run_main(self.dir, as_json=True)
        self.assertEqual(code, 0)
        doc = json.loads(text)
        self.assertTrue(doc["ok"])
        self.assertEqual([a["file"] for a in doc["archives"]], [p.name for p in paths])
        self.assertEqual(doc["archives"][2]["manifest"]["previous"], doc["archives"][1]["link"])
        code, text = self.run_main(paths[0])
        self.assertEqual(code, 0, text)

    def test_problems_exit_65_and_are_printed_in_both_languages(self) -> None:
        paths = self.chain()
        offset, _ = data_span(paths[1], "messages/m2000/payload.edxml")
        flip(paths[1], offset + 3)
        code, text = self.run_main(self.dir)
        self.assertEqual(code, 65)
        self.assertIn("PROBLEM " + paths[1].name, text)
        self.assertIn("messages/m2000/payload.edxml [unreadable]", text)
        self.assertIn("dữ liệu của thành phần bị hỏng", text)
        code, text = self.run_main(self.dir, as_json=True)
        self.assertEqual(code, 65)
        doc = json.loads(text)
        bad = [a for a in doc["archives"] if not a["ok"]]
        self.assertEqual([a["file"] for a in bad], [paths[1].name])
        self.assertEqual(bad[0]["problems"][0]["member"], "messages/m2000/payload.edxml")
        self.assertTrue(bad[0]["problems"][0]["message_vi"])

    def test_missing_input_exits_66(self) -> None:
        self.assertEqual(self.run_main(self.dir / "nowhere")[0], 66)
        self.write()
        bad_trust = self.dir / "trust.txt"
        bad_trust.write_bytes(b"no certificates here")
        code, text = self.run_main(self.dir, trust=bad_trust, as_json=True)
        self.assertEqual(code, 66)
        self.assertFalse(json.loads(text)["ok"])

    def test_the_verifier_stands_alone(self) -> None:
        """archive.py is a file format: no store, configuration, Twisted or SQLite under it."""
        tree = ast.parse(ARCHIVE_PY.read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        roots = {name.split(".")[0] for name in imported}
        self.assertEqual(
            roots & {"gateway", "twisted", "treq", "sqlite3", "sqlite_utils", "click"}, set()
        )
        self.assertEqual({n for n in imported if n.startswith("edxml")}, {"edxml", "edxml.model"})


# --- random message sets ----------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
_ROWS = st.lists(st.dictionaries(st.sampled_from(["id", "code", "note", "at"]), _TEXT), max_size=3)


@st.composite
def message_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(
        st.lists(
            st.text(string.ascii_letters + string.digits + "-._", min_size=1, max_size=12).filter(
                lambda s: s[0].isalnum()
            ),
            unique=True,
            max_size=6,
        )
    )
    messages = []
    for message_id in ids:
        data = draw(st.binary(max_size=3000))
        forward = draw(st.none() | st.binary(max_size=500))
        arrived = draw(
            st.datetimes(
                dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
            )
        )
        row = {"id": message_id, "arrived_at": arrived.isoformat(), "subject": draw(_TEXT)}
        row["blob_sha256"] = hashlib.sha256(data).hexdigest()
        audit = draw(st.lists(st.integers(1, 60), max_size=4))
        messages.append(
            {
                "row": row,
                "data": data,
                "forward": forward,
                "deliveries": draw(_ROWS),
                "statuses": draw(_ROWS),
                "inbox": draw(_ROWS),
                "audit": [audit_row(a, "any") for a in audit],
            }
        )
    return messages


class RandomMessageSetTests(ArchiveCase):
    @settings(max_examples=25)
    @given(message_sets(), st.booleans())
    def test_any_message_set_round_trips(self, messages: list[dict[str, Any]], ec: bool) -> None:
        signer = self.pki.ec_agency if ec else self.pki.node
        directory = Path(self.mktemp())
        directory.mkdir()
        path = directory / archive_file_name(NODE, 1)
        with ArchiveWriter(
            path,
            node=NODE,
            sequence=1,
            previous=None,
            key=signer.key,
            chain_pem=signer.chain_pem,
            clock=clock,
        ) as writer:
            for m in messages:
                forward = io.BytesIO(m["forward"]) if m["forward"] is not None else None
                writer.add(
                    m["row"],
                    io.BytesIO(m["data"]),
                    forward=forward,
                    deliveries=m["deliveries"],
                    statuses=m["statuses"],
                    inbox=m["inbox"],
                    audit=m["audit"],
                )
        report = verify_archive(path, trust_roots=self.roots)
        self.assertEqual(report.problems, ())
        with zipfile.ZipFile(path) as zf:
            lines = [json.loads(line) for line in zf.read(archive.MESSAGES).splitlines()]
            audit = [json.loads(line) for line in zf.read(archive.AUDIT).splitlines()]
            self.assertEqual(len(lines), len(messages))
            for line, m in zip(lines, messages, strict=True):
                self.assertEqual(line["message"], m["row"])
                for key in ("deliveries", "statuses", "inbox"):
                    self.assertEqual(line[key], m[key])
                self.assertEqual(line["audit"], sorted({r["id"] for r in m["audit"]}))
                self.assertEqual(zf.read(line["payload"]["name"]), m["data"])
                if m["forward"] is not None:
                    self.assertEqual(zf.read(line["forward"]["name"]), m["forward"])
                else:
                    self.assertIsNone(line["forward"])
        expected_audit = sorted({r["id"] for m in messages for r in m["audit"]})
        self.assertEqual([r["id"] for r in audit], expected_audit)
        shutil.rmtree(directory)


# --- scale and memory -------------------------------------------------------------------------


class HundredThousandTests(ArchiveCase):
    ARCHIVES = 10
    PER_ARCHIVE = 10_000

    def test_100000_messages_verify_offline_and_one_flipped_byte_is_found(self) -> None:
        started = time.monotonic()
        previous: Link | None = None
        row_id = 0
        blob = os.urandom(200 * 64)
        for sequence in range(1, self.ARCHIVES + 1):
            path = self.dir / archive_file_name(NODE, sequence)
            with ArchiveWriter(
                path,
                node=NODE,
                sequence=sequence,
                previous=previous,
                key=self.pki.node.key,
                chain_pem=self.pki.node.chain_pem,
                clock=clock,
            ) as writer:
                for i in range(self.PER_ARCHIVE):
                    row_id += 1
                    start = (row_id * 37) % (len(blob) - 200)
                    data = blob[start : start + 200]
                    writer.add(
                        message_row(f"{sequence:02d}-{i:05d}", data, minute=i),
                        io.BytesIO(data),
                        deliveries=[{"id": row_id, "recipient": "000.00.00.G22"}],
                        audit=[audit_row(row_id, f"{sequence:02d}-{i:05d}")],
                    )
            previous = writer.link
        written = time.monotonic()
        report = verify_directory(self.dir, trust_roots=self.roots)
        verified = time.monotonic()
        self.assertTrue(report.ok, problems_of(report)[:5])
        self.assertEqual(sum(a.summary.messages for a in report.archives if a.summary), 100_000)

        seed = int.from_bytes(os.urandom(4), "big")
        rng = random.Random(seed)
        victim = rng.choice(sorted(self.dir.iterdir()))
        with zipfile.ZipFile(victim) as zf:
            names = [i.filename for i in zf.infolist() if i.compress_size > 0]
        member = rng.choice(names)
        offset, length = data_span(victim, member)
        flip(victim, offset + rng.randrange(length), rng.randrange(1, 256))
        report = verify_directory(self.dir, trust_roots=self.roots)
        found = list(report.all_problems())
        where = f"seed {seed}: flipped {victim.name} {member}; found {found[:5]}"
        self.assertFalse(report.ok, where)
        self.assertIn((victim.name, member), [(f, p.member) for f, p in found], where)
        self.assertEqual({f for f, _ in found}, {victim.name}, where)
        sys.stderr.write(
            f"\n100,000 messages: write {written - started:.1f} s, verify {verified - written:.1f}"
            f" s, total {time.monotonic() - started:.1f} s ({member})\n"
        )


MEMORY_CHILD = textwrap.dedent(
    """
    import datetime as dt, gc, io, json, sys
    from pathlib import Path
    from cryptography.hazmat.primitives import serialization
    from gateway.archive import ArchiveWriter, verify_archive

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    def growth(fn):
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
        fn()
        return status("VmHWM") - before

    key_path, chain_path, payload, directory = sys.argv[1:]
    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
    chain = Path(chain_path).read_bytes()
    now = lambda: dt.datetime.now(dt.timezone.utc)
    row = {"id": "big", "arrived_at": "2026-01-05T02:00:00Z"}

    def write(name, source):
        with ArchiveWriter(Path(directory) / name, node="n", sequence=1, previous=None,
                           key=key, chain_pem=chain, clock=now) as w:
            w.add(row, source)

    def verify(name):
        report = verify_archive(Path(directory) / name)
        assert report.ok, report.problems

    write("warm.zip", io.BytesIO(b"warm-up" * 1000))  # imports and first-call caches
    verify("warm.zip")
    print(json.dumps({
        "write": growth(lambda: write("big.zip", Path(payload))),
        "verify": growth(lambda: verify("big.zip")),
    }))
    """
)


class MemoryTests(ArchiveCase):
    PAYLOAD = 200 * 1024 * 1024

    def test_a_200_mb_payload_is_written_and_verified_in_constant_memory(self) -> None:
        if not Path("/proc/self/clear_refs").exists():
            self.skipTest("needs Linux /proc")
        keys = self.pki.node.write(self.dir / "keys")
        payload = self.dir / "payload.edxml"
        block = os.urandom(1 << 20)
        with payload.open("wb") as f:
            for i in range(self.PAYLOAD >> 20):
                f.write(i.to_bytes(8, "big") + block[8:])
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                MEMORY_CHILD,
                str(keys.key_path),
                str(keys.chain_path),
                str(payload),
                str(self.dir),
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072"),
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        growth = json.loads(proc.stdout)
        limit = 64 * 1024 * 1024
        self.assertLess(growth["write"], limit, growth)
        self.assertLess(growth["verify"], limit, growth)
        self.assertTrue(verify_archive(self.dir / "big.zip").ok)
        sys.stderr.write(f"\n200 MB payload: peak growth {growth}\n")
