"""A throwaway PKI for tests: roots, an intermediate, agency seals, a person, a gateway node.

Built with `cryptography` alone, in memory, once per test process (RSA key generation is the slow
part). Names are fixed so that tests can assert on them; keys and serial numbers are random.
Later tests (PDF signatures, mutual TLS, CRLs) extend this module rather than growing their own.

    pki = make_pki()                 # cached
    pki = make_pki(Path(tmp))        # same PKI, PEM files written under tmp, paths filled in
    pki.agency_h23.key / .cert / .chain / .key_pem / .cert_pem / .chain_pem / .cert_path
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edxml.signature import Trust

ORGAN_ID_H23 = "000.00.00.H23"  # UBND tỉnh Hà Nam
ORGAN_ID_G22 = "000.00.00.G22"  # Văn phòng Chính phủ
AGENCY_H23 = "UBND tỉnh Hà Nam"
AGENCY_G22 = "Văn phòng Chính phủ"
PERSON_NAME = "Nguyễn Văn A"
NODE_HOST = "localhost"

_DAY = datetime.timedelta(days=1)


@attrs.frozen
class PKIEntry:
    """One key pair and its certificate; `chain` is the leaf and its intermediates (no root)."""

    name: str
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_path: Path | None = None
    cert_path: Path | None = None
    chain_path: Path | None = None

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


@attrs.frozen
class TestPKI:
    """The whole test PKI. Trust `root` (and optionally `intermediate`) to accept the good ones."""

    __test__ = False  # not a test class, whatever its name says

    root: PKIEntry
    intermediate: PKIEntry
    agency_h23: PKIEntry  # seal of UBND tỉnh Hà Nam, OrganId in a UID attribute
    agency_g22: PKIEntry  # seal of Văn phòng Chính phủ, OrganId in OU
    person: PKIEntry  # Nguyễn Văn A, official of UBND tỉnh Hà Nam
    node: PKIEntry  # gateway node, TLS server + client, SAN localhost / 127.0.0.1
    expired_agency: PKIEntry  # like agency_h23, expired yesterday
    no_signing_usage: PKIEntry  # like agency_h23, KeyUsage without digitalSignature
    ec_agency: PKIEntry  # like agency_h23 with an ECDSA P-256 key
    untrusted_root: PKIEntry
    untrusted_agency: PKIEntry  # an impostor: agency_h23's names under untrusted_root
    legacy_root: PKIEntry  # an old-style root without KeyUsage
    legacy_agency: PKIEntry  # issued by legacy_root
    created: datetime.datetime

    # Shorthands for benchmarks and tests that only need "a seal that verifies".
    def seal_key(self) -> CertificateIssuerPrivateKeyTypes:
        return self.agency_h23.key

    def seal_chain(self) -> list[x509.Certificate]:
        return list(self.agency_h23.chain)

    def trust(self) -> Trust:
        return Trust(roots=[self.root.cert])

    def entries(self) -> Iterator[PKIEntry]:
        for field in attrs.fields(TestPKI):
            value = getattr(self, field.name)
            if isinstance(value, PKIEntry):
                yield value

    def write(self, directory: Path) -> TestPKI:
        """Write every entry as <name>.key.pem, <name>.crt.pem, <name>.chain.pem under directory."""
        directory.mkdir(parents=True, exist_ok=True)
        changes: dict[str, Any] = {}
        for entry in self.entries():
            key_path = directory / f"{entry.name}.key.pem"
            cert_path = directory / f"{entry.name}.crt.pem"
            chain_path = directory / f"{entry.name}.chain.pem"
            key_path.write_bytes(entry.key_pem)
            key_path.chmod(0o600)
            cert_path.write_bytes(entry.cert_pem)
            chain_path.write_bytes(entry.chain_pem)
            changes[entry.name] = attrs.evolve(
                entry, key_path=key_path, cert_path=cert_path, chain_path=chain_path
            )
        return attrs.evolve(self, **changes)


def make_pki(tmp_dir: Path | None = None) -> TestPKI:
    """The process-wide test PKI; with tmp_dir, also written there as PEM files."""
    pki = _generate()
    return pki.write(tmp_dir) if tmp_dir is not None else pki


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _ski(public_key: CertificateIssuerPublicKeyTypes) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _certificate(
    *,
    subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: PKIEntry | None,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    ca: bool,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None,
    extended: Sequence[x509.ObjectIdentifier] = (),
    san: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    public_key = key.public_key()
    signing_key = issuer.key if issuer is not None else key
    issuer_name = issuer.cert.subject if issuer is not None else subject
    issuer_public = signing_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended)), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _usage(*, sign: bool = False, certs: bool = False, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=sign and not certs,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certs,
        crl_sign=certs,
        encipher_only=False,
        decipher_only=False,
    )


_CA_USAGE = _usage(certs=True)
_SIGNER_USAGE = _usage(sign=True)
_SIGNER_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION)


def _entry(
    name: str,
    key: CertificateIssuerPrivateKeyTypes,
    cert: x509.Certificate,
    issuer: PKIEntry | None,
) -> PKIEntry:
    # The chain a signer ships: itself and the intermediates, never the self-signed root.
    above = () if issuer is None or _self_signed(issuer.cert) else issuer.chain
    return PKIEntry(name=name, key=key, cert=cert, chain=(cert, *above))


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _h23_subject() -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "VN"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Hà Nam"),
        (NameOID.ORGANIZATION_NAME, AGENCY_H23),
        (NameOID.USER_ID, ORGAN_ID_H23),
        (NameOID.COMMON_NAME, AGENCY_H23),
    )


@functools.cache
def _generate() -> TestPKI:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    long_ago, far_ahead = now - 3650 * _DAY, now + 3650 * _DAY
    soon_ago, ahead = now - 365 * _DAY, now + 730 * _DAY

    def ca(
        name: str,
        subject: x509.Name,
        issuer: PKIEntry | None,
        *,
        key_usage: x509.KeyUsage | None = _CA_USAGE,
        path_length: int | None = None,
    ) -> PKIEntry:
        key = _rsa_key()
        cert = _certificate(
            subject=subject,
            key=key,
            issuer=issuer,
            not_before=long_ago,
            not_after=far_ahead,
            ca=True,
            key_usage=key_usage,
            path_length=path_length,
        )
        return _entry(name, key, cert, issuer)

    def leaf(
        name: str,
        subject: x509.Name,
        issuer: PKIEntry,
        *,
        key: CertificateIssuerPrivateKeyTypes | None = None,
        not_before: datetime.datetime = soon_ago,
        not_after: datetime.datetime = ahead,
        key_usage: x509.KeyUsage = _SIGNER_USAGE,
        extended: Sequence[x509.ObjectIdentifier] = _SIGNER_EKU,
        san: Sequence[x509.GeneralName] = (),
    ) -> PKIEntry:
        key = key if key is not None else _rsa_key()
        cert = _certificate(
            subject=subject,
            key=key,
            issuer=issuer,
            not_before=not_before,
            not_after=not_after,
            ca=False,
            key_usage=key_usage,
            extended=extended,
            san=san,
        )
        return _entry(name, key, cert, issuer)

    root = ca(
        "root",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Cục Chứng thực số và Bảo mật thông tin (thử nghiệm)"),
            (NameOID.COMMON_NAME, "edXML Test Root CA"),
        ),
        None,
    )
    intermediate = ca(
        "intermediate",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Cục Chứng thực số và Bảo mật thông tin (thử nghiệm)"),
            (NameOID.COMMON_NAME, "edXML Test Issuing CA"),
        ),
        root,
        path_length=0,
    )
    agency_h23 = leaf("agency_h23", _h23_subject(), intermediate)
    agency_g22 = leaf(
        "agency_g22",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.LOCALITY_NAME, "Hà Nội"),
            (NameOID.ORGANIZATION_NAME, AGENCY_G22),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, ORGAN_ID_G22),
            (NameOID.COMMON_NAME, AGENCY_G22),
        ),
        intermediate,
    )
    person = leaf(
        "person",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, AGENCY_H23),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, f"Văn phòng UBND tỉnh ({ORGAN_ID_H23})"),
            (NameOID.TITLE, "Phó Chủ tịch"),
            (NameOID.USER_ID, "CCCD:001090000001"),
            (NameOID.COMMON_NAME, PERSON_NAME),
        ),
        intermediate,
    )
    node = leaf(
        "node",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, AGENCY_H23),
            (NameOID.COMMON_NAME, NODE_HOST),
        ),
        intermediate,
        key_usage=_usage(sign=True, encipher=True),
        extended=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        san=(
            x509.DNSName(NODE_HOST),
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        ),
    )
    expired_agency = leaf(
        "expired_agency",
        _h23_subject(),
        intermediate,
        not_before=now - 3 * 365 * _DAY,
        not_after=now - _DAY,
    )
    no_signing_usage = leaf(
        "no_signing_usage",
        _h23_subject(),
        intermediate,
        key_usage=_usage(encipher=True),
    )
    ec_agency = leaf(
        "ec_agency", _h23_subject(), intermediate, key=ec.generate_private_key(ec.SECP256R1())
    )
    untrusted_root = ca(
        "untrusted_root",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Cục Chứng thực số và Bảo mật thông tin (thử nghiệm)"),
            (NameOID.COMMON_NAME, "edXML Test Root CA"),  # same name as the real root: an impostor
        ),
        None,
    )
    untrusted_agency = leaf("untrusted_agency", _h23_subject(), untrusted_root)
    legacy_root = ca(
        "legacy_root",
        _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Ban Cơ yếu Chính phủ (thử nghiệm cũ)"),
            (NameOID.COMMON_NAME, "edXML Legacy Root CA"),
        ),
        None,
        key_usage=None,
    )
    legacy_agency = leaf("legacy_agency", _h23_subject(), legacy_root)
    return TestPKI(
        root=root,
        intermediate=intermediate,
        agency_h23=agency_h23,
        agency_g22=agency_g22,
        person=person,
        node=node,
        expired_agency=expired_agency,
        no_signing_usage=no_signing_usage,
        ec_agency=ec_agency,
        untrusted_root=untrusted_root,
        untrusted_agency=untrusted_agency,
        legacy_root=legacy_root,
        legacy_agency=legacy_agency,
        created=now,
    )
