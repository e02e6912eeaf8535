"""Signed test PDFs, made with pyHanko from the keys of tests/pki.py, in memory, once per process.

    kit = make_kit()           # cached
    kit.seal                   # signed by the H23 seal
    kit.person_then_seal       # the person of H23, then the seal in an incremental update
    kit.crl                    # a CRL of the intermediate revoking `revoked_cert`

Nothing binary is committed: every file here comes from the test run.
"""

from __future__ import annotations

import datetime
import functools
import io
from collections.abc import Sequence

import attrs
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from make_sample import minimal_pdf
from pki import PKIEntry, TestPKI, make_pki
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers, timestamps
from pyhanko_certvalidator.registry import SimpleCertificateStore

from gateway.devpki import SIGNER_EKU, issue, key_usage

LINES = ["UY BAN NHAN DAN TINH HA NAM", "So: 123/UBND-VP", "V/v thu nghiem chu ky so PDF"]


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def signer_of(entry: PKIEntry) -> signers.SimpleSigner:
    """A pyHanko signer holding `entry`'s key, certificate and intermediates."""
    der_key = entry.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return signers.SimpleSigner(
        signing_cert=_asn1(entry.cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in entry.chain]),
    )


def sign(
    pdf: bytes,
    entry: PKIEntry,
    field: str = "Signature1",
    *,
    stamped_by: PKIEntry | None = None,
    stamped_at: datetime.datetime | None = None,
) -> bytes:
    """`pdf` with one more approval signature by `entry`, appended as an incremental update;
    with a signature timestamp token from the TSA `stamped_by`, dated `stamped_at` (or now)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    meta = signers.PdfSignatureMetadata(field_name=field)
    stamper = None
    if stamped_by is not None:
        der_key = stamped_by.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        stamper = timestamps.DummyTimeStamper(
            tsa_cert=_asn1(stamped_by.cert),
            tsa_key=asn1_keys.PrivateKeyInfo.load(der_key),
            certs_to_embed=SimpleCertificateStore.from_certs(
                [_asn1(c) for c in stamped_by.chain[1:]]
            ),
            fixed_dt=stamped_at,
        )
    out = signers.sign_pdf(
        writer, meta, signer=signer_of(entry), timestamper=stamper, bytes_reserved=32768
    )
    return out.getvalue()


def tsa(issuer: PKIEntry, name: str = "tsa") -> PKIEntry:
    """A time-stamping authority certificate (id-kp-timeStamping) under `issuer`."""
    now = datetime.datetime.now(datetime.UTC)
    return issue(
        name,
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"edXML Test TSA ({name})")]),
        issuer=issuer,
        not_before=max(now - datetime.timedelta(days=400), issuer.cert.not_valid_before_utc),
        not_after=now + datetime.timedelta(days=400),
        usage=key_usage(sign=True),
        extended=(ExtendedKeyUsageOID.TIME_STAMPING,),
    )


def tamper(signed: bytes) -> bytes:
    """`signed` with one byte flipped inside the signed range (the page's text stream)."""
    at = signed.index(b"So: 123") + 1
    return signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1 :]


def padded_pdf(size: int) -> bytes:
    """A minimal PDF grown to about `size` bytes by a comment-free binary stream object."""
    base = minimal_pdf(LINES)
    filler = b"\x00" * max(0, size - len(base))
    # Appended as an incremental update, so the hand-written cross-reference table stays right.
    writer = IncrementalPdfFileWriter(io.BytesIO(base), strict=False)
    stream = generic.StreamObject({}, stream_data=filler)
    ref = writer.add_object(stream)
    root = writer.root
    root["/EdxmlPadding"] = ref
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def revoke(pki: TestPKI, revoked: Sequence[x509.Certificate]) -> x509.CertificateRevocationList:
    """A CRL of the intermediate that lists `revoked`."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.intermediate.cert.subject)
        .last_update(now - datetime.timedelta(hours=1))
        .next_update(now + datetime.timedelta(days=7))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - datetime.timedelta(hours=2))
            .build()
        )
    return builder.sign(pki.intermediate.key, hashes.SHA256())  # type: ignore[arg-type]


@attrs.frozen
class Kit:
    pki: TestPKI
    unsigned: bytes
    seal: bytes
    person_then_seal: bytes
    tampered: bytes
    expired: bytes
    revoked: bytes
    revoked_cert: PKIEntry
    crl: x509.CertificateRevocationList
    empty_crl: x509.CertificateRevocationList
    untrusted: bytes
    g22: bytes
    added_after_seal: bytes


@functools.cache
def make_kit() -> Kit:
    pki = make_pki()
    now = datetime.datetime.now(datetime.UTC)
    unsigned = minimal_pdf(LINES)
    revoked_cert = issue(
        "revoked_agency",
        pki.agency_h23.cert.subject,
        issuer=pki.intermediate,
        not_before=now - datetime.timedelta(days=30),
        not_after=now + datetime.timedelta(days=365),
        extended=SIGNER_EKU,
    )
    seal = sign(unsigned, pki.agency_h23)
    # A later revision that is not a signature: new content tacked onto the catalog.
    writer = IncrementalPdfFileWriter(io.BytesIO(seal), strict=False)
    writer.root["/EdxmlNote"] = writer.add_object(
        generic.StreamObject({}, stream_data=b"BT /F1 12 Tf 72 700 Td (added later) Tj ET")
    )
    writer.update_root()
    added = io.BytesIO()
    writer.write(added)
    return Kit(
        pki=pki,
        unsigned=unsigned,
        seal=seal,
        person_then_seal=sign(sign(unsigned, pki.person, "NguoiKy"), pki.agency_h23, "ConDau"),
        tampered=tamper(seal),
        expired=sign(unsigned, pki.expired_agency),
        revoked=sign(unsigned, revoked_cert),
        revoked_cert=revoked_cert,
        crl=revoke(pki, [revoked_cert.cert]),
        empty_crl=revoke(pki, []),
        untrusted=sign(unsigned, pki.untrusted_agency),
        g22=sign(unsigned, pki.agency_g22),
        added_after_seal=added.getvalue(),
    )
