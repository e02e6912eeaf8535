"""A 100 MB envelope is written and read as a stream: memory stays a small fraction of its size.

The read runs in a child process so that its peak resident set (libxml2's allocations included,
which tracemalloc cannot see) is measured on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from edxml import writer
from edxml.model import (
    VN_TZ,
    Attachment,
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    PromulgationInfo,
    Reference,
    TraceHeader,
    TraceHeaderList,
)

ATTACHMENT_BYTES = 75 * 1024 * 1024  # → about 100 MB of base64 on the wire

CHILD = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    from edxml import reader

    class HashSink:
        def __init__(self):
            self.h = hashlib.sha256()
            self.n = 0
        def write(self, data):
            self.h.update(data)
            self.n += len(data)

    def chunks(path):
        with open(path, "rb") as f:
            while block := f.read(1 << 16):
                yield block

    sinks = []
    def factory(index):
        sinks.append(HashSink())
        return sinks[-1]

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = reader.read(chunks(sys.argv[1]), sink_factory=factory)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    (att,) = result.document.attachments
    print(json.dumps({
        "growth": after - before,
        "sha256": sinks[0].h.hexdigest(),
        "size": sinks[0].n,
        "model_sha256": att.sha256,
        "content_is_none": att.content is None,
        "errors": [f.code for f in result.findings if f.is_error],
    }))
    """
)


def _envelope(content: bytes) -> Envelope:
    att = Attachment.of(
        content,
        content_id="big-1",
        attachment_name="bao-cao.pdf",
        content_type="application/pdf",
    )
    return Envelope(
        header=MessageHeader(
            from_=Organization(organ_id="000.00.00.H23", organ_name="UBND tỉnh Hà Nam"),
            to=(Organization(organ_id="000.00.00.G22", organ_name="Văn phòng Chính phủ"),),
            code=Code(code_number="9", code_notation="UBND-VP"),
            promulgation_info=PromulgationInfo(
                place="Hà Nam", promulgation_date=dt.date(2026, 1, 5)
            ),
            document_type=DocumentType(type=18, type_name="Công văn"),
            subject="Báo cáo lớn",
            document_id="000.00.00.H23,2026/01/05,9/UBND-VP",
        ),
        trace=TraceHeaderList(
            traces=(
                TraceHeader(
                    organ_id="000.00.00.H23",
                    timestamp=dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=VN_TZ),
                ),
            )
        ),
        manifest=(
            Reference(
                content_id=att.content_id,
                attachment_name=att.attachment_name,
                content_type=att.content_type,
            ),
        ),
        attachments=(att,),
    )


class LargeEnvelopeTests(SynchronousTestCase):
    def test_100mb_envelope_streams_through_reader(self) -> None:
        content = b"%PDF-1.4\n" + os.urandom(ATTACHMENT_BYTES) + b"\n%%EOF\n"
        expected = hashlib.sha256(content).hexdigest()
        path = Path(self.mktemp())
        with path.open("wb") as f:
            writer.write_to(_envelope(content), f)
        size = path.stat().st_size
        del content
        self.assertGreater(size, 100 * 1024 * 1024)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], capture_output=True, check=True, text=True
        )
        out = json.loads(proc.stdout)
        self.assertEqual(out["sha256"], expected)
        self.assertEqual(out["model_sha256"], expected)
        self.assertTrue(out["content_is_none"])
        self.assertEqual(out["errors"], [])
        # The brief's bound is 3x the envelope; streaming keeps it near zero. Allow 10%.
        self.assertLess(out["growth"], size // 10, f"peak RSS grew {out['growth']} bytes")
