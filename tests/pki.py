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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edxml.signature import Trust
from gateway.devpki import CA_USAGE, SIGNER_EKU, SIGNER_USAGE, Issued, issue, key_usage, name

ORGAN_ID_H23 = "000.00.00.H23"  # UBND tỉnh Hà Nam
ORGAN_ID_G22 = "000.00.00.G22"  # Văn phòng Chính phủ
AGENCY_H23 = "UBND tỉnh Hà Nam"
AGENCY_G22 = "Văn phòng Chính phủ"
PERSON_NAME = "Nguyễn Văn A"
NODE_HOST = "localhost"

_DAY = datetime.timedelta(days=1)


PKIEntry = Issued  # one key pair, its certificate and chain; see gateway.devpki


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
        changes: dict[str, Any] = {e.name: e.write(directory) for e in self.entries()}
        return attrs.evolve(self, **changes)


def make_pki(tmp_dir: Path | None = None) -> TestPKI:
    """The process-wide test PKI; with tmp_dir, also written there as PEM files."""
    pki = _generate()
    return pki.write(tmp_dir) if tmp_dir is not None else pki


def _h23_subject() -> x509.Name:
    return name(
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
        entry: str,
        subject: x509.Name,
        issuer: PKIEntry | None,
        *,
        usage: x509.KeyUsage | None = CA_USAGE,
        path_length: int | None = None,
    ) -> PKIEntry:
        return issue(
            entry,
            subject,
            issuer=issuer,
            not_before=long_ago,
            not_after=far_ahead,
            ca=True,
            usage=usage,
            path_length=path_length,
        )

    def leaf(
        entry: str,
        subject: x509.Name,
        issuer: PKIEntry,
        *,
        key: CertificateIssuerPrivateKeyTypes | None = None,
        not_before: datetime.datetime = soon_ago,
        not_after: datetime.datetime = ahead,
        usage: x509.KeyUsage = SIGNER_USAGE,
        extended: Sequence[x509.ObjectIdentifier] = SIGNER_EKU,
        san: Sequence[x509.GeneralName] = (),
    ) -> PKIEntry:
        return issue(
            entry,
            subject,
            issuer=issuer,
            not_before=not_before,
            not_after=not_after,
            usage=usage,
            extended=extended,
            san=san,
            key=key,
        )

    root = ca(
        "root",
        name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Cục Chứng thực số và Bảo mật thông tin (thử nghiệm)"),
            (NameOID.COMMON_NAME, "edXML Test Root CA"),
        ),
        None,
    )
    intermediate = ca(
        "intermediate",
        name(
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
        name(
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
        name(
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
        name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, AGENCY_H23),
            (NameOID.COMMON_NAME, NODE_HOST),
        ),
        intermediate,
        usage=key_usage(sign=True, encipher=True),
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
        usage=key_usage(encipher=True),
    )
    ec_agency = leaf(
        "ec_agency", _h23_subject(), intermediate, key=ec.generate_private_key(ec.SECP256R1())
    )
    untrusted_root = ca(
        "untrusted_root",
        name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Cục Chứng thực số và Bảo mật thông tin (thử nghiệm)"),
            (NameOID.COMMON_NAME, "edXML Test Root CA"),  # same name as the real root: an impostor
        ),
        None,
    )
    untrusted_agency = leaf("untrusted_agency", _h23_subject(), untrusted_root)
    legacy_root = ca(
        "legacy_root",
        name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.ORGANIZATION_NAME, "Ban Cơ yếu Chính phủ (thử nghiệm cũ)"),
            (NameOID.COMMON_NAME, "edXML Legacy Root CA"),
        ),
        None,
        usage=None,
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
