"""X.509 certificates of signers: explicit trust, who a certificate names, reading and chains.

Nothing here knows what carries the certificates (an XMLDSig KeyInfo today; a PDF signature or a
TLS peer later). What is wrong comes back as a bilingual `Problem`, not a finding, so that each
caller reports it under its own code and path.

Trust is always explicit (a `Trust` of roots and intermediates): no system or WebPKI store may
decide who signs an official document. Revocation (CRLs and OCSP answers the caller passes) is
`edxml.revocation`'s business.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from edxml import organid
from edxml.model import nfc

MIN_RSA_BITS = 2048


@attrs.frozen
class Problem:
    """What is wrong, in English and in Vietnamese, for the caller's finding."""

    en: str
    vi: str


def as_certificates(value: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """`value` as a tuple, refusing anything that is not a loaded certificate (PEM bytes, say)."""
    certs = tuple(value)
    for cert in certs:
        if not isinstance(cert, x509.Certificate):
            raise TypeError(f"expected x509.Certificate objects, got {type(cert).__name__}")
    return certs


@attrs.frozen
class Trust:
    """Who may sign: trusted roots, plus intermediates a signer may leave out of what it ships."""

    roots: tuple[x509.Certificate, ...] = attrs.field(converter=as_certificates)
    intermediates: tuple[x509.Certificate, ...] = attrs.field(default=(), converter=as_certificates)

    @classmethod
    def from_pem(cls, roots: bytes, intermediates: bytes = b"") -> Trust:
        """Trust from PEM bundles the caller has read (this library opens no files)."""
        return cls(
            roots=x509.load_pem_x509_certificates(roots),
            intermediates=x509.load_pem_x509_certificates(intermediates) if intermediates else (),
        )

    @classmethod
    def from_pem_bundle(cls, *pems: bytes) -> Trust:
        """Trust from mixed PEM bundles: self-signed certificates become roots, the rest
        intermediates (an intermediate alone is no anchor: trust stays what the roots say)."""
        certs = [cert for pem in pems for cert in x509.load_pem_x509_certificates(pem)]
        return cls(
            roots=[c for c in certs if c.subject == c.issuer],
            intermediates=[c for c in certs if c.subject != c.issuer],
        )


# --- names --------------------------------------------------------------------------------------

# Where Vietnamese CAs put an agency's identifier, most specific first.
_ORGAN_ID_ATTRIBUTES = (
    NameOID.USER_ID,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.SERIAL_NUMBER,
    NameOID.ORGANIZATION_NAME,
    NameOID.COMMON_NAME,
)
_NAME_OVERRIDES = {NameOID.TITLE: "title", NameOID.SERIAL_NUMBER: "serialNumber"}


def distinguished_name(name: x509.Name) -> str:
    """RFC 4514 text of `name`, with title and serialNumber by name rather than as bare OIDs."""
    return name.rfc4514_string(_NAME_OVERRIDES)


def organ_id_of(name: x509.Name) -> str | None:
    """The classic OrganId a certificate name carries in UID, OU, serialNumber, O or CN."""
    for oid in _ORGAN_ID_ATTRIBUTES:
        for attribute in name.get_attributes_for_oid(oid):
            if isinstance(attribute.value, str):
                found = organid.find_organ_id(nfc(attribute.value))
                if found is not None:
                    return found
    return None


def _name_value(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    for attribute in name.get_attributes_for_oid(oid):
        if isinstance(attribute.value, str):
            return attribute.value
    return None


def _optional_nfc(value: str | None) -> str | None:
    return None if value is None else nfc(value)


@attrs.frozen
class SignerIdentity:
    """Who a signing certificate names (as it says; whether to trust it is the chain's business)."""

    # Names are NFC-normalised: some CAs write Vietnamese decomposed.
    subject: str = attrs.field(converter=nfc)
    common_name: str | None = attrs.field(converter=_optional_nfc)
    organization: str | None = attrs.field(converter=_optional_nfc)
    organizational_unit: str | None = attrs.field(converter=_optional_nfc)
    serial: str  # hexadecimal
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint_sha256: str  # hexadecimal, lower case
    issuer: str = attrs.field(converter=nfc)
    organ_id: str | None  # an OrganId found in UID/OU/serialNumber/O/CN, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "common_name": self.common_name,
            "organization": self.organization,
            "organizational_unit": self.organizational_unit,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint_sha256": self.fingerprint_sha256,
            "issuer": self.issuer,
            "organ_id": self.organ_id,
        }

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> SignerIdentity:
        """Raises ValueError for a certificate whose names do not decode."""
        subject = cert.subject
        return cls(
            subject=distinguished_name(subject),
            common_name=_name_value(subject, NameOID.COMMON_NAME),
            organization=_name_value(subject, NameOID.ORGANIZATION_NAME),
            organizational_unit=_name_value(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            serial=format(cert.serial_number, "X"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
            issuer=distinguished_name(cert.issuer),
            organ_id=organ_id_of(subject),
        )


# --- reading ------------------------------------------------------------------------------------


def load_certificate(text: str) -> x509.Certificate | Problem:
    """A DER certificate from base64 text (line breaks and spaces allowed), or why not."""
    compact = "".join(text.split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        return Problem(
            f"not base64 ({exc}; {len(compact)} characters: truncated?)",
            f"không phải base64 hợp lệ ({len(compact)} ký tự: có thể bị cắt cụt)",
        )
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.subject.rfc4514_string()  # names are decoded lazily; fail here, not later
    except ValueError as exc:
        return Problem(
            f"not a DER X.509 certificate ({exc})",
            "không phải chứng thư số X.509 (DER) hợp lệ",
        )
    return cert


def pick_leaf(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate that issued none of the others (signers ship them in no set order)."""
    if not certs:
        raise ValueError("no certificates to pick the signer's from")
    issuers = {c.issuer for c in certs if c.issuer != c.subject}
    for cert in certs:
        if cert.subject not in issuers:
            return cert
    return certs[0]


def weak_key(cert: x509.Certificate) -> str | None:
    """The key named as a weak algorithm ("RSA-1024") if it is RSA under MIN_RSA_BITS."""
    public_key = cert.public_key()
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
        return f"RSA-{public_key.key_size}"
    return None


# --- chains -------------------------------------------------------------------------------------


@attrs.frozen
class Chain:
    """A verified path: the signer's certificate first, the trusted root last."""

    certificates: tuple[x509.Certificate, ...] = attrs.field(converter=as_certificates)

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(distinguished_name(c.subject) for c in self.certificates)


def _require_signing_usage(
    policy: verification.Policy, cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is None or not usage.digital_signature:
        raise ValueError("certificate KeyUsage does not allow digitalSignature")


_AGNOSTIC = verification.Criticality.AGNOSTIC
_EE_POLICY = verification.ExtensionPolicy.permit_all().require_present(
    x509.KeyUsage, _AGNOSTIC, _require_signing_usage
)
# Legacy government roots predate KeyUsage on CAs, which the WebPKI profile requires. The path
# builder itself still refuses issuers that are not CAs or whose KeyUsage lacks keyCertSign.
_CA_POLICY = verification.ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, _AGNOSTIC, None
)


def build_chain(
    leaf: x509.Certificate,
    extra: Iterable[x509.Certificate],
    trust: Trust,
    now: datetime.datetime,
) -> Chain | Problem:
    """Verify `leaf` up to one of `trust.roots` at `now`, or say why it does not chain.

    `extra` are the certificates shipped with the signature (the leaf may be among them); the
    trust's intermediates complete them. The leaf's KeyUsage must allow digitalSignature.
    Revocation is `revocation`'s business. Raises ValueError for a naive `now` (a caller bug).
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    now = now.astimezone(datetime.UTC)
    if not trust.roots:
        return Problem(
            "no trust anchors are configured",
            "chưa cấu hình chứng thư gốc tin cậy",
        )
    intermediates = [c for c in extra if c is not leaf] + list(trust.intermediates)
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(trust.roots)))
        .time(now)
        .extension_policies(ee_policy=_EE_POLICY, ca_policy=_CA_POLICY)
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, intermediates)
    except verification.VerificationError as exc:
        return _chain_problem(str(exc), leaf, now)
    return Chain(verified.chain)


def _chain_problem(message: str, leaf: x509.Certificate, now: datetime.datetime) -> Problem:
    stamp = now.isoformat(timespec="seconds")
    if "not valid at validation time" in message:
        if now > leaf.not_valid_after_utc:
            until = leaf.not_valid_after_utc.isoformat(timespec="seconds")
            return Problem(
                f"the signing certificate expired at {until} (checked at {stamp})",
                f"chứng thư số ký đã hết hạn lúc {until} (thời điểm kiểm tra {stamp})",
            )
        if now < leaf.not_valid_before_utc:
            since = leaf.not_valid_before_utc.isoformat(timespec="seconds")
            return Problem(
                f"the signing certificate is not valid before {since} (checked at {stamp})",
                f"chứng thư số ký chưa có hiệu lực trước {since} (thời điểm kiểm tra {stamp})",
            )
        return Problem(
            f"a certificate of the chain is expired or not yet valid at {stamp}",
            f"một chứng thư trong chuỗi đã hết hạn hoặc chưa có hiệu lực tại {stamp}",
        )
    if "digitalSignature" in message:
        return Problem(
            "the signing certificate's KeyUsage does not allow digitalSignature",
            "chứng thư số ký không cho phép ký số (KeyUsage thiếu digitalSignature)",
        )
    if "candidates exhausted" in message:
        return Problem(
            f"no chain to a trusted root ({message})",
            "không xây dựng được chuỗi chứng thư tới chứng thư gốc tin cậy",
        )
    return Problem(message, f"lỗi kiểm tra chuỗi chứng thư số: {message}")
