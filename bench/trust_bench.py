"""Cost of checking trust: envelope signatures and signed PDFs, against SHA-256 of the same bytes.

For a signed envelope and a signed PDF of about 1 MB and 20 MB, `edxml.signature.verify` and
`edxml.pdfsig.validate_pdf` are timed in this process, median of several runs: without revocation
evidence, with a CRL of the signer's issuer that lists 1,000 other serials (so the lookup is a
real one and the verdict stays "good"), and with a good OCSP answer about the signer (judging it:
signature, CertID, freshness; fetching it is the gateway's, cached until its nextUpdate, and not
timed here). Each time is reported as a ratio to the floor: `hashlib.sha256` of the
same bytes, measured in this process in the same run. Peak memory of each operation is measured
in a fresh child process (VmHWM growth over the process's state just before the operation, after
one warm-up call on the same input), reported as a multiple of the input's size.

Inputs are made once, in this process, with the generated test PKI (tests/pki.py, never a real
key) and written to a temporary directory the children read, so a child only loads and measures.
If `signature.verify` takes no `crls` argument, its revocation row says so instead of failing.

    python bench/trust_bench.py [--sizes 1m,20m] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from measure import peak_growth, time_op

from edxml import pdfsig, signature, writer
from edxml.certificates import Trust
from edxml.ocsp import OcspAnswer, OcspQuery

SIZES = {"1m": 1024 * 1024, "20m": 20 * 1024 * 1024}
KINDS = ("envelope", "pdf")
CHECKS = ("floor", "plain", "crl", "ocsp")
OCSP_URL = "http://ocsp.bench.invalid/"
OTHER_REVOKED = 1000
SENDER = "000.00.00.H23"  # the test PKI's agency seal; the PDF is sent by its own agency
NOT_SUPPORTED = "revocation not supported"


def _here_module(directory: str, name: str) -> Any:
    # bench/ and tests/ are not packages: their helpers are imported by path, untyped.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), directory))
    return importlib.import_module(name)


def envelope_takes_crls() -> bool:
    return "crls" in inspect.signature(signature.verify).parameters


def _issuer_crl(pki: Any, seal: Any, now: dt.datetime) -> x509.CertificateRevocationList:
    """A CRL of the seal's issuer revoking OTHER_REVOKED random serials, none of them the seal's."""
    rng = random.Random(OTHER_REVOKED)
    seal_serial = seal.cert.serial_number
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.intermediate.cert.subject)
        .last_update(now - dt.timedelta(hours=1))
        .next_update(now + dt.timedelta(days=7))
    )
    for _ in range(OTHER_REVOKED):
        serial = rng.getrandbits(159) | 1
        if serial == seal_serial:
            continue
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - dt.timedelta(days=1))
            .build()
        )
    return builder.sign(pki.intermediate.key, hashes.SHA256())


def prepare(directory: Path, size_names: Sequence[str]) -> None:
    """Write trust.pem, crl.der, ocsp.der, seal.pem and, per size, envelope-SIZE.xml and
    pdf-SIZE.pdf (all signed by one seal that names an OCSP responder)."""
    build_envelope = _here_module("", "edxml_bench").build_envelope
    pki = _here_module("../tests", "pki").make_pki()
    pdfkit = _here_module("../tests", "pdfkit")
    ocspkit = _here_module("../tests", "ocspkit")
    now = dt.datetime.now(dt.UTC)
    seal = ocspkit.with_ocsp("bench_seal", pki.agency_h23.cert.subject, pki.intermediate, OCSP_URL)
    (directory / "trust.pem").write_bytes(pki.root.cert.public_bytes(serialization.Encoding.PEM))
    (directory / "seal.pem").write_bytes(seal.chain_pem)
    crl = _issuer_crl(pki, seal, now)
    (directory / "crl.der").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    (directory / "ocsp.der").write_bytes(ocspkit.answer(seal.cert, pki.intermediate))
    for size_name in size_names:
        size = SIZES[size_name]
        data = writer.write(build_envelope(size))
        signed = signature.sign(data, seal.key, list(seal.chain))
        (directory / f"envelope-{size_name}.xml").write_bytes(signed)
        pdf = pdfkit.sign(pdfkit.padded_pdf(size), seal)
        (directory / f"pdf-{size_name}.pdf").write_bytes(pdf)


class Inputs:
    """What prepare() wrote, loaded back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.trust = Trust.from_pem((directory / "trust.pem").read_bytes())
        self.crl = x509.load_der_x509_crl((directory / "crl.der").read_bytes())
        seal, issuer = x509.load_pem_x509_certificates((directory / "seal.pem").read_bytes())
        query = OcspQuery(seal, issuer)
        self.ocsp = OcspAnswer.received(
            query, OCSP_URL, (directory / "ocsp.der").read_bytes(), dt.datetime.now(dt.UTC)
        )

    def data(self, kind: str, size_name: str) -> bytes:
        suffix = "xml" if kind == "envelope" else "pdf"
        return (self.directory / f"{kind}-{size_name}.{suffix}").read_bytes()


def operation(inputs: Inputs, kind: str, check: str, data: bytes) -> Callable[[], object] | None:
    """The timed call, or None when this check is not possible with the current library."""
    if check == "floor":
        return lambda: hashlib.sha256(data).digest()
    crls = [inputs.crl] if check == "crl" else []
    answers = [inputs.ocsp] if check == "ocsp" else []
    if kind == "envelope":
        if check == "crl" and not envelope_takes_crls():
            return None
        verify: Callable[..., signature.SignatureVerdict] = signature.verify
        extra: dict[str, Any] = {"crls": crls} if check == "crl" else {}
        if answers:
            extra["ocsp"] = answers

        def envelope() -> object:
            verdict = verify(data, inputs.trust, **extra)
            # A bench that times a failing verification measures nothing useful.
            if not verdict.is_valid:
                raise AssertionError(f"envelope did not verify: {verdict.reason}")
            if answers and "ocsp" not in verdict.revocation_sources:
                raise AssertionError("the OCSP answer was not used")
            return verdict

        return envelope

    def pdf() -> object:
        verdict = pdfsig.validate_pdf(
            data,
            trust=inputs.trust,
            crls=crls,
            ocsp=answers,
            now=dt.datetime.now(dt.UTC),
            sender_organ_id=SENDER,
        )
        if verdict.legality is not pdfsig.Legality.LEGAL:
            raise AssertionError(f"PDF is not legal: {verdict.to_json()}")
        expected = pdfsig.Revocation.GOOD if crls or answers else pdfsig.Revocation.UNKNOWN
        if verdict.signatures[0].revocation is not expected:
            raise AssertionError(f"revocation {verdict.signatures[0].revocation}, not {expected}")
        return verdict

    return pdf


def child(directory: str, kind: str, check: str, size_name: str) -> None:
    inputs = Inputs(Path(directory))
    data = inputs.data(kind, size_name)
    fn = operation(inputs, kind, check, data)
    if fn is None:
        raise SystemExit(f"{kind}/{check}: {NOT_SUPPORTED}")
    fn()  # imports, schemas and key objects are loaded by a first call, not counted
    print(json.dumps({"peak_growth": peak_growth(fn)}))


def _peak(directory: Path, kind: str, check: str, size_name: str) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(directory), kind, check, size_name],
        capture_output=True,
        text=True,
        check=True,
        # A fixed mmap threshold returns freed big buffers to the OS, so memory freed by the
        # warm-up call is not silently reused by the measured one.
        env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072"),
    )
    return int(json.loads(out.stdout)["peak_growth"])


def measure(directory: Path, size_names: Sequence[str], runs_wanted: int) -> dict[str, Any]:
    inputs = Inputs(directory)
    results: dict[str, Any] = {
        "crl_entries": len(list(inputs.crl)),
        "envelope_revocation_supported": envelope_takes_crls(),
    }
    for size_name in size_names:
        runs = runs_wanted or (15 if SIZES[size_name] < 10_000_000 else 5)
        per_kind: dict[str, Any] = {}
        for kind in KINDS:
            data = inputs.data(kind, size_name)
            size = len(data)
            floor = 0.0
            rows: dict[str, Any] = {}
            for check in CHECKS:
                fn = operation(inputs, kind, check, data)
                if fn is None:
                    rows[check] = {"status": NOT_SUPPORTED}
                    continue
                t = time_op(fn, runs)
                if check == "floor":
                    floor = t
                peak = _peak(directory, kind, check, size_name)
                rows[check] = {
                    "status": "ok",
                    "seconds": t,
                    "mb_per_s": size / t / 1e6,
                    "ratio_to_floor": t / floor,
                    "peak_mem_bytes": peak,
                    "peak_mem_x_size": peak / size,
                }
            per_kind[kind] = {"bytes": size, "runs": runs, "checks": rows}
        results[size_name] = per_kind
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"CRL of the issuer: {results['crl_entries']:,} revoked serials (not the signer's)")
    labels = {"floor": "sha256", "plain": "no CRL", "crl": "with CRL", "ocsp": "with OCSP"}
    for size_name in SIZES:
        if size_name not in results:
            continue
        for kind, res in results[size_name].items():
            print(f"\n{kind} {size_name}: {res['bytes']:,} bytes, median of {res['runs']}")
            print(f"{'check':<10}{'ms':>10}{'MB/s':>10}{'x floor':>10}{'peak MB':>10}{'x size':>8}")
            for check, row in res["checks"].items():
                if row["status"] != "ok":
                    print(f"{labels[check]:<10}  {row['status']}")
                    continue
                print(
                    f"{labels[check]:<10}{row['seconds'] * 1000:>10.2f}{row['mb_per_s']:>10.1f}"
                    f"{row['ratio_to_floor']:>10.1f}{row['peak_mem_bytes'] / 1e6:>10.1f}"
                    f"{row['peak_mem_x_size']:>8.2f}"
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1m,20m")
    ap.add_argument("--runs", type=int, default=0, help="runs per check (default by size)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--child", nargs=4, metavar=("DIR", "KIND", "CHECK", "SIZE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    size_names = args.sizes.split(",")
    unknown = [s for s in size_names if s not in SIZES]
    if unknown:
        ap.error(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    with tempfile.TemporaryDirectory(prefix="trust_bench-") as tmp:
        prepare(Path(tmp), size_names)
        results = measure(Path(tmp), size_names, args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
