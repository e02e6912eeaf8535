"""Cost of sealing the message log (gateway.archive): writing and verifying archive files.

Two workloads: N messages (default 20,000) of a small payload each (default 4 KiB), read from
one file per message as the store's blobs are, with a delivery, a status and two audit rows
each; and one message of a 100 MB payload. Each write (`ArchiveWriter`, sealed: manifest,
signature, fsync, rename) and each verification (`verify_archive`, every member streamed and
hashed, the signature and the chain to the test root checked) is timed in this process, median
of several runs after a warm-up call, and reported as a ratio to floors over the same
payload bytes measured in the same run: `hashlib.sha256` of them, and a plain file copy of them
(`shutil.copyfileobj` from one file to another, without and with the one fsync the writer does
per archive; the page cache serves the reads). Peak memory of each operation is measured in a
fresh child process (VmHWM growth, see measure.py).

Keys come from the generated test PKI (tests/pki.py, never a real key).

    python bench/archive_bench.py [--messages 20000] [--payload-size 4096] [--big-mb 100]
                                  [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from measure import peak_growth, time_op

from gateway.archive import ArchiveWriter, verify_archive

CHUNK = 1 << 20


def _here_module(directory: str, name: str) -> Any:
    # bench/ and tests/ are not packages: their helpers are imported by path, untyped.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), directory))
    return importlib.import_module(name)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def prepare(directory: Path, messages: int, payload_size: int, big_mb: int) -> None:
    """key.pem, chain.pem, root.pem; blobs/<n> (one per small message), big.edxml, and for the
    copy floor small.concat (the small payloads end to end)."""
    pki = _here_module("../tests", "pki").make_pki()
    node = pki.node
    (directory / "key.pem").write_bytes(node.key_pem)
    (directory / "chain.pem").write_bytes(node.chain_pem)
    (directory / "root.pem").write_bytes(pki.root.cert_pem)
    blobs = directory / "blobs"
    blobs.mkdir()
    seed = os.urandom(payload_size + 4096)
    with (directory / "small.concat").open("wb") as concat:
        for n in range(messages):
            start = (n * 97) % 4096
            data = f"<edXMLEnvelope n='{n}'>".encode() + seed[start : start + payload_size]
            data = data[:payload_size]
            (blobs / str(n)).write_bytes(data)
            concat.write(data)
    block = os.urandom(CHUNK)
    with (directory / "big.edxml").open("wb") as big:
        for i in range(big_mb):
            big.write(i.to_bytes(8, "big") + block[8:])


class Inputs:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), None)
        self.chain_pem = (directory / "chain.pem").read_bytes()
        self.roots = x509.load_pem_x509_certificates((directory / "root.pem").read_bytes())
        self.blobs = sorted((directory / "blobs").iterdir(), key=lambda p: int(p.name))
        self.out = directory / "out"
        self.out.mkdir(exist_ok=True)

    def payload_path(self, workload: str) -> Path:
        return self.directory / ("small.concat" if workload == "messages" else "big.edxml")

    def write(self, workload: str, name: str = "archive.zip") -> Path:
        path = self.out / name
        path.unlink(missing_ok=True)
        with ArchiveWriter(
            path,
            node="bench",
            sequence=1,
            previous=None,
            key=self.key,
            chain_pem=self.chain_pem,
            clock=now,
        ) as writer:
            if workload == "big":
                writer.add({"id": "big", "arrived_at": now()}, self.payload_path("big"))
                return path
            for n, blob in enumerate(self.blobs):
                row = {"id": f"m{n}", "direction": "in", "arrived_at": "2026-01-05T02:00:00Z"}
                writer.add(
                    row,
                    blob,
                    deliveries=[{"id": n, "recipient": "000.00.00.G22", "state": "acked"}],
                    statuses=[{"id": n, "organ_id": "000.00.00.G22", "code": "01"}],
                    audit=[
                        {"id": 2 * n + k, "hash": "0" * 64, "prev_hash": "0" * 64} for k in (1, 2)
                    ],
                )
        return path

    def verify(self, workload: str, name: str = "archive.zip") -> None:
        report = verify_archive(self.out / name, trust_roots=self.roots)
        if not report.ok:
            raise AssertionError(f"{workload}: the archive does not verify: {report.problems[:3]}")


def sha256_floor(path: Path) -> Callable[[], object]:
    data = path.read_bytes()
    return lambda: hashlib.sha256(data).digest()


def copy_floor(path: Path, target: Path, *, durable: bool = False) -> Callable[[], object]:
    def copy() -> None:
        with path.open("rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
            if durable:
                sink.flush()
                os.fsync(sink.fileno())

    return copy


def child(directory: str, workload: str, operation: str) -> None:
    inputs = Inputs(Path(directory))
    name = f"child-{workload}.zip"
    inputs.write(workload, name)  # imports, key objects and caches: a first call, not counted
    if operation == "write":
        growth = peak_growth(lambda: inputs.write(workload, name))
    else:
        inputs.verify(workload, name)
        growth = peak_growth(lambda: inputs.verify(workload, name))
    print(json.dumps({"peak_growth": growth}))


def _peak(directory: Path, workload: str, operation: str) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(directory), workload, operation],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072"),
    )
    return int(json.loads(out.stdout)["peak_growth"])


def measure(directory: Path, runs: int) -> dict[str, Any]:
    inputs = Inputs(directory)
    results: dict[str, Any] = {}
    for workload in ("messages", "big"):
        payload = inputs.payload_path(workload)
        size = payload.stat().st_size
        floors = {
            "sha256": time_op(sha256_floor(payload), runs),
            "copy": time_op(copy_floor(payload, directory / "copy.tmp"), runs),
            "copy_fsync": time_op(copy_floor(payload, directory / "copy.tmp", durable=True), runs),
        }
        rows: dict[str, Any] = {}
        operations: dict[str, Callable[[], object]] = {
            "write": functools.partial(inputs.write, workload),
            "verify": functools.partial(inputs.verify, workload),
        }
        for operation, fn in operations.items():
            seconds = time_op(fn, runs)  # the write leaves the archive the verify reads
            peak = _peak(directory, workload, operation)
            rows[operation] = {
                "seconds": seconds,
                "mb_per_s": size / seconds / 1e6,
                "x_sha256": seconds / floors["sha256"],
                "x_copy": seconds / floors["copy"],
                "x_copy_fsync": seconds / floors["copy_fsync"],
                "peak_mem_bytes": peak,
            }
        archive_size = (inputs.out / "archive.zip").stat().st_size
        messages = len(inputs.blobs) if workload == "messages" else 1
        results[workload] = {
            "messages": messages,
            "payload_bytes": size,
            "archive_bytes": archive_size,
            "runs": runs,
            "floors_seconds": floors,
            "operations": rows,
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    for workload, res in results.items():
        n, size = res["messages"], res["payload_bytes"]
        floors = res["floors_seconds"]
        print(
            f"\n{workload}: {n:,} message(s), {size / 1e6:.1f} MB of payload, archive"
            f" {res['archive_bytes'] / 1e6:.1f} MB, median of {res['runs']}"
        )
        print(
            f"  floors: sha256 {floors['sha256'] * 1000:.1f} ms, copyfileobj"
            f" {floors['copy'] * 1000:.1f} ms, copyfileobj + fsync"
            f" {floors['copy_fsync'] * 1000:.1f} ms"
        )
        head = (
            f"  {'operation':<9}{'s':>8}{'MB/s':>9}{'x sha256':>10}{'x copy':>8}{'x c+fsync':>10}"
        )
        print(head + f"{'µs/msg':>8}{'peak MB':>9}")
        for operation, row in res["operations"].items():
            per_message = f"{row['seconds'] / n * 1e6:>8.1f}" if n > 1 else f"{'':>8}"
            print(
                f"  {operation:<9}{row['seconds']:>8.3f}{row['mb_per_s']:>9.1f}"
                f"{row['x_sha256']:>10.1f}{row['x_copy']:>8.1f}{row['x_copy_fsync']:>10.1f}"
                f"{per_message}{row['peak_mem_bytes'] / 1e6:>9.1f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--payload-size", type=int, default=4096)
    ap.add_argument("--big-mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("DIR", "WORKLOAD", "OP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="archive_bench-") as tmp:
        prepare(Path(tmp), args.messages, args.payload_size, args.big_mb)
        results = measure(Path(tmp), args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
