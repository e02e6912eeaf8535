"""Cost of the provincial eDoc hub route (issue #8), against SHA-256 of the same bytes measured
in this run:

- reading our signed envelope (`edxml.reader.read`: the transport's first step, for the fields
  the hub wants);
- building SendDocument from it (`edxml.edochubmap.outgoing_document` + `edochub.send_document`:
  the hub's header, the files as MIME parts, the signed envelope as one more part);
- taking a GetDocument answer as the hub sends it (every part's body the Base64 *text* of the
  file, §5.3): `split_message` + `parse_document`, the files decoded, the envelope part found;
- one trace made into a status packet and written (`status_packet` + `writer.write`), per 1,000.

Inputs are signed with the generated test PKI (tests/pki.py, never a real key). Median of
several runs, after a warm-up call.

    python bench/hub_bench.py [--sizes 1m,20m] [--runs N] [--json]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from measure import ratio_rows, ratio_table

from edxml import edochub, edochubmap, reader, signature, writer
from edxml.model import Envelope

SIZES = {"1m": 1024 * 1024, "20m": 20 * 1024 * 1024}
TOKEN = "YmVuY2gtdG9rZW4tMDEyMzQ1Njc4OWFi"


def _here_module(directory: str, name: str) -> Any:
    # bench/ and tests/ are not packages: their helpers are imported by path, untyped.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), directory))
    return importlib.import_module(name)


def _send_request(signed: bytes, now: dt.datetime) -> edochub.Request:
    doc = reader.read(signed).document
    assert isinstance(doc, Envelope)
    to = [o.organ_id for o in doc.header.to]
    packet = edochubmap.outgoing_document(doc, signed, recipients=to, now=now)
    return edochub.send_document(packet, doc.header.from_.organ_id, TOKEN)


def _hub_answer(request: edochub.Request) -> tuple[str, bytes]:
    """GetDocument's answer on the hub's replay path: the stored envelope, each part's body
    turned into its Base64 text."""
    sent = edochub.split_message(request.content_type, request.body)
    parts = tuple(
        edochub.Part(p.content_id, p.content_type, edochub.base64_text(p.body)) for p in sent.parts
    )
    return edochub.multipart_related(edochub.Message(sent.envelope, parts))


def _take(content_type: str, body: bytes) -> bytes:
    received = edochub.parse_document(edochub.split_message(content_type, body), 1)
    found = edochubmap.signed_envelope(received)
    assert found is not None
    return found


def _traces(count: int) -> Callable[[], object]:
    trace = edochub.Trace(
        from_=edochub.Organization("000.00.00.H40", "Ủy ban nhân dân tỉnh Hưng Yên"),
        response_for=edochub.ResponseFor(
            "000.00.00.H23", "123/UBND-VP", "2025/03/05 00:00:00", "000.00.00.H23,2025/03/05,123"
        ),
        staff=edochub.StaffInfo(department="Văn thư", staff="Nguyễn Văn A"),
        code=3,
        description="Đã tiếp nhận",
        timestamp="2025/03/06 09:30:00",
    )

    def run() -> None:
        for _ in range(count):
            packet = edochubmap.status_packet(trace)
            assert packet is not None
            writer.write(packet)

    return run


def rows_for(size_name: str, runs: int) -> list[dict[str, Any]]:
    build_envelope = _here_module("", "edxml_bench").build_envelope
    pki = _here_module("../tests", "pki").make_pki()
    entry = pki.agency_h23
    signed = signature.sign(writer.write(build_envelope(SIZES[size_name])), entry.key, entry.chain)
    now = dt.datetime.now(dt.UTC)
    request = _send_request(signed, now)
    content_type, answer = _hub_answer(request)
    assert _take(content_type, answer) == signed
    cases: list[tuple[str, int, Callable[[], object]]] = [
        ("sha256 (floor)", len(signed), lambda: hashlib.sha256(signed).digest()),
        ("read envelope", len(signed), lambda: reader.read(signed)),
        ("SendDocument built", len(request.body), lambda: _send_request(signed, now)),
        ("GetDocument taken", len(answer), lambda: _take(content_type, answer)),
        ("1000 traces → packets", 0, _traces(1000)),
    ]
    return ratio_rows(size_name, cases, runs)


def main() -> None:
    ratio_table(__doc__, rows_for)


if __name__ == "__main__":
    main()
