"""Throughput and peak memory of the edxml library against the bare lxml parse of the same bytes.

For a ~100 KB and a ~20 MB envelope, each operation (read, validate, write, sign, verify, and the
streaming read into a sink) is timed in this process, median of several runs, and reported as a
ratio to the floor: `lxml.etree.fromstring` of the same bytes with a plain parser. Peak memory of
each operation is measured in a fresh child process (ru_maxrss growth over the process's state just
before the operation), reported as a multiple of the envelope's size, because libxml2's allocations
are invisible to tracemalloc.

    python bench/edxml_bench.py [--sizes 100k,20m] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from lxml import etree
from measure import peak_growth, time_op

from edxml import check, reader, schema, signature, writer
from edxml.codes import BusinessDocType, Priority
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Reference,
    SignerInfo,
    TraceHeader,
    TraceHeaderList,
)

SIZES = {"100k": 100 * 1024, "20m": 20 * 1024 * 1024}
OPS = ("floor", "read", "read_stream", "validate", "examine", "write", "sign", "verify")


def build_envelope(target_size: int) -> Envelope:
    """A realistic envelope whose serialisation is about target_size bytes."""
    rng = random.Random(target_size)
    raw = rng.randbytes(max(1024, int(target_size * 0.74) - 3000))
    content = b"%PDF-1.4\n" + raw + b"\n%%EOF\n"
    att = Attachment.of(
        content,
        content_id="3f0e0c5e-bench",
        attachment_name="123-UBND-VP.pdf",
        content_type="application/pdf",
        description="Văn bản đính kèm",
    )
    date = dt.date(2026, 11, 20)
    header = MessageHeader(
        from_=Organization(organ_id="000.00.00.H23", organ_name="UBND tỉnh Hà Nam"),
        to=(Organization(organ_id="000.00.00.G22", organ_name="Văn phòng Chính phủ"),),
        code=Code(code_number="123", code_notation="UBND-VP"),
        promulgation_info=PromulgationInfo(place="Hà Nam", promulgation_date=date),
        document_type=DocumentType(type=18, type_name="Công văn"),
        subject="V/v báo cáo tình hình triển khai văn bản điện tử",
        content="V/v báo cáo tình hình triển khai văn bản điện tử",
        signer_info=SignerInfo(
            competence="KT. CHỦ TỊCH", position="PHÓ CHỦ TỊCH", full_name="Nguyễn Văn A"
        ),
        other_info=OtherInfo(priority=Priority.NORMAL, sphere_of_promulgation="Liên thông"),
        document_id="000.00.00.H23,2026/11/20,123/UBND-VP",
    )
    trace = TraceHeaderList(
        traces=(
            TraceHeader(
                organ_id="000.00.00.H23",
                timestamp=dt.datetime(2026, 11, 20, 15, 2, 11, tzinfo=VN_TZ),
            ),
        ),
        business=Business(doc_type=BusinessDocType.NEW, reason="Văn bản điện tử mới"),
        id="9f2c01ab",
    )
    ref = Reference(
        content_id=att.content_id,
        attachment_name=att.attachment_name,
        content_type=att.content_type,
        description=att.description,
    )
    return Envelope(header=header, trace=trace, manifest=(ref,), attachments=(att,))


class _NullSink:
    def write(self, data: bytes) -> None:
        pass


def _pki() -> tuple[Any, list[Any], signature.Trust]:
    # The bench signs with the test PKI's agency seal: generated, never a real key.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    pki: Any = importlib.import_module("pki")
    p = pki.make_pki()
    return p.seal_key(), p.seal_chain(), p.trust()


def operations(size_name: str) -> dict[str, Callable[[], object]]:
    env = build_envelope(SIZES[size_name])
    data = writer.write(env)
    key, chain, trust = _pki()
    signed = signature.sign(data, key, chain)
    plain = etree.XMLParser(huge_tree=True)
    return {
        "floor": lambda: etree.fromstring(data, plain),
        "read": lambda: reader.read(data),
        "read_stream": lambda: reader.read(data, sink_factory=lambda i: _NullSink()),
        "validate": lambda: schema.validate(data, "envelope"),
        "examine": lambda: check.examine(signed, trust=trust),
        "write": lambda: writer.write(env),
        "sign": lambda: signature.sign(data, key, chain),
        "verify": lambda: signature.verify(signed, trust),
        "_size": lambda: len(data),
    }


def child(op: str, size_name: str) -> None:
    operations("100k")[op]()  # loads schemas and warms caches on a small input
    ops = operations(size_name)
    size = int(ops["_size"]())  # type: ignore[call-overload]
    print(json.dumps({"peak_growth": peak_growth(ops[op]), "size": size}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100k,20m")
    ap.add_argument("--runs", type=int, default=0, help="runs per op (default by size)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("OP", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    results: dict[str, Any] = {}
    for size_name in args.sizes.split(","):
        ops = operations(size_name)
        size = int(ops["_size"]())  # type: ignore[call-overload]
        runs = args.runs or (30 if SIZES[size_name] < 1_000_000 else 5)
        floor = time_op(ops["floor"], runs)
        rows = {}
        for op in OPS:
            t = floor if op == "floor" else time_op(ops[op], runs)
            out = subprocess.run(
                [sys.executable, __file__, "--child", op, size_name],
                capture_output=True,
                text=True,
                check=True,
                # A fixed mmap threshold returns freed big buffers to the OS, so memory freed
                # while preparing the input is not silently reused by the measured operation.
                env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072"),
            )
            mem = json.loads(out.stdout)
            rows[op] = {
                "seconds": t,
                "mb_per_s": size / t / 1e6,
                "ratio_to_floor": t / floor,
                "peak_mem_bytes": mem["peak_growth"],
                "peak_mem_x_size": mem["peak_growth"] / size,
            }
        results[size_name] = {"bytes": size, "ops": rows}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for size_name, res in results.items():
        print(f"\nenvelope {size_name}: {res['bytes']:,} bytes")
        print(f"{'op':<12}{'ms':>10}{'MB/s':>10}{'x floor':>10}{'peak MB':>10}{'x size':>8}")
        for op, row in res["ops"].items():
            print(
                f"{op:<12}{row['seconds'] * 1000:>10.2f}{row['mb_per_s']:>10.1f}"
                f"{row['ratio_to_floor']:>10.1f}{row['peak_mem_bytes'] / 1e6:>10.1f}"
                f"{row['peak_mem_x_size']:>8.2f}"
            )


if __name__ == "__main__":
    main()
