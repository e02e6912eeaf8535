"""Cost of the axes (issue #6), against SHA-256 of the same bytes measured in this run:

- a relay appending its TraceHeader (`edxml.trace.append_hop`: a hardened parse to find the end
  of the last one, then one copy of the bytes; `gated`, as a relay calls it, skips the hardened
  parse its examination has just done);
- verifying an envelope's seal directly, and after one and two hops were appended (each hop the
  verifier has to look past costs one more canonical pass over the document);
- decoding a getEdoc answer (base64 inside JSON) as it streams in 64 KiB chunks
  (`edxml.vxp.EdocBodyDecoder`), against `json.loads` + `base64.b64decode` of the whole body.

Inputs are signed with the generated test PKI (tests/pki.py, never a real key). Median of
several runs, after a warm-up call.

    python bench/axis_bench.py [--sizes 1m,20m] [--runs N] [--json]
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from measure import ratio_rows, ratio_table

from edxml import signature, trace, vxp, writer
from edxml.certificates import Trust

SIZES = {"1m": 1024 * 1024, "20m": 20 * 1024 * 1024}
CHUNK = 64 * 1024
HOP = "000.00.99.H23"


def _here_module(directory: str, name: str) -> Any:
    # bench/ and tests/ are not packages: their helpers are imported by path, untyped.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), directory))
    return importlib.import_module(name)


def _stream_decode(body: bytes) -> bytes:
    decoder = vxp.EdocBodyDecoder(max_bytes=len(body))
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        decoder.feed(bytes(view[start : start + CHUNK]))
    _, payload = decoder.finish()
    return payload


def _whole_decode(body: bytes) -> bytes:
    return base64.b64decode(json.loads(body)["data"])


def rows_for(size_name: str, runs: int) -> list[dict[str, Any]]:
    build_envelope = _here_module("", "edxml_bench").build_envelope
    pki = _here_module("../tests", "pki").make_pki()
    trust = Trust(roots=[pki.root.cert])
    entry = pki.agency_h23
    signed = signature.sign(writer.write(build_envelope(SIZES[size_name])), entry.key, entry.chain)
    now = dt.datetime.now(dt.UTC)
    one = trace.append_hop(signed, HOP, now)
    two = trace.append_hop(one, HOP.replace("99", "98"), now)
    body = vxp.response_json(True, "0", "Thanh cong", data=base64.b64encode(signed).decode())
    for data, hops in ((signed, 0), (one, 1), (two, 2)):
        verdict = signature.verify(data, trust)
        assert verdict.is_valid and verdict.hops_after_signing == hops, verdict
    assert _stream_decode(body) == signed
    cases: list[tuple[str, bytes, Callable[[], object]]] = [
        ("sha256 (floor)", signed, lambda: hashlib.sha256(signed).digest()),
        ("append_hop", signed, lambda: trace.append_hop(signed, HOP, now)),
        # What a relay runs: the bytes were examined (hardened parse) a moment before.
        ("append_hop, gated", signed, lambda: trace.append_hop(signed, HOP, now, gated=True)),
        ("verify, no hop", signed, lambda: signature.verify(signed, trust)),
        ("verify, 1 hop", one, lambda: signature.verify(one, trust)),
        ("verify, 2 hops", two, lambda: signature.verify(two, trust)),
        ("getEdoc json+b64 whole", body, lambda: _whole_decode(body)),
        ("getEdoc streamed", body, lambda: _stream_decode(body)),
    ]
    return ratio_rows(size_name, [(n, len(d), f) for n, d, f in cases], runs)


def main() -> None:
    ratio_table(__doc__, rows_for)


if __name__ == "__main__":
    main()
