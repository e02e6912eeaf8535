"""The development PKI that `gateway init` generates, and the certificate issuer behind it.

Root CA → issuing CA → node TLS certificate (server and client, SAN localhost / 127.0.0.1), one
seal certificate per hosted agency (OrganId in a UID attribute, as Vietnamese agency seals carry
it in the subject), and one client certificate per office system. Never trust it in production:
its keys sit unencrypted (mode 0600) in the data directory so a newcomer's node works at once.
The test PKI (tests/pki.py) is built with the same `issue()`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)
DEV_ISSUER_ORG = "edXML Gateway development PKI (không dùng cho sản xuất)"


@attrs.frozen
class Issued:
    """One key pair and its certificate; `chain` is the leaf and its intermediates (no root)."""

    name: str
    key: CertificateIssuerPrivateKeyTypes = attrs.field(repr=False)
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

    def write(self, directory: Path) -> Issued:
        """<name>.key.pem (0600, created private), <name>.crt.pem, <name>.chain.pem."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / f"{self.name}.key.pem"
        cert_path = directory / f"{self.name}.crt.pem"
        chain_path = directory / f"{self.name}.chain.pem"
        _write_private(key_path, self.key_pem)
        cert_path.write_bytes(self.cert_pem)
        chain_path.write_bytes(self.chain_pem)
        return attrs.evolve(self, key_path=key_path, cert_path=cert_path, chain_path=chain_path)


def _write_private(path: Path, data: bytes) -> None:
    # Created with 0600 from the start: a key must never exist world-readable, even briefly.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def key_usage(*, sign: bool = False, certs: bool = False, encipher: bool = False) -> x509.KeyUsage:
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


CA_USAGE = key_usage(certs=True)
SIGNER_USAGE = key_usage(sign=True)
SIGNER_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION)
TLS_USAGE = key_usage(sign=True, encipher=True)
TLS_EKU = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


def issue(
    name: str,
    subject: x509.Name,
    *,
    issuer: Issued | None,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    ca: bool = False,
    path_length: int | None = None,
    usage: x509.KeyUsage | None = SIGNER_USAGE,
    extended: Sequence[x509.ObjectIdentifier] = (),
    san: Sequence[x509.GeneralName] = (),
    key: CertificateIssuerPrivateKeyTypes | None = None,
    extensions: Sequence[x509.ExtensionType] = (),
) -> Issued:
    """Issue a certificate (self-signed when `issuer` is None), SHA-256, with SKI/AKI;
    `extensions` are added as they are, not critical."""
    key = key if key is not None else rsa_key()
    public_key = key.public_key()
    signing_key = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended)), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    # The chain a signer ships: itself and the intermediates, never the self-signed root.
    above = () if issuer is None or issuer.cert.issuer == issuer.cert.subject else issuer.chain
    return Issued(name=name, key=key, cert=cert, chain=(cert, *above))


def agency_subject(organ_id: str, agency_name: str) -> x509.Name:
    return name(
        (NameOID.COUNTRY_NAME, "VN"),
        (NameOID.ORGANIZATION_NAME, agency_name),
        (NameOID.USER_ID, organ_id),
        (NameOID.COMMON_NAME, agency_name),
    )


def tls_san(hosts: Iterable[str]) -> tuple[x509.GeneralName, ...]:
    out: list[x509.GeneralName] = []
    for host in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return tuple(out)


@attrs.frozen
class DevPKI:
    root: Issued
    issuing: Issued
    node: Issued
    agencies: Mapping[str, Issued]  # OrganId → seal
    offices: Mapping[str, Issued]  # office name → client certificate

    def write(self, directory: Path) -> DevPKI:
        """Every entry under `directory`; the root alone is what peers and offices trust."""
        return DevPKI(
            root=self.root.write(directory),
            issuing=self.issuing.write(directory),
            node=self.node.write(directory),
            agencies={k: v.write(directory) for k, v in self.agencies.items()},
            offices={k: v.write(directory) for k, v in self.offices.items()},
        )


def generate(
    *,
    node_name: str,
    agencies: Mapping[str, str],
    offices: Iterable[str] = (),
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    now: datetime.datetime | None = None,
    ca: tuple[Issued, Issued] | None = None,
) -> DevPKI:
    """A development PKI: `agencies` maps OrganId → agency name. With `ca` (root, issuing), the
    leaves are issued by that existing CA, so that nodes generated apart trust each other."""
    now = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    ca_from, ca_to = now - DAY, now + 10 * 365 * DAY
    leaf_from, leaf_to = now - DAY, now + 2 * 365 * DAY
    if ca is not None:
        root, issuing = ca
    else:
        root = issue(
            "root",
            name((NameOID.ORGANIZATION_NAME, DEV_ISSUER_ORG), (NameOID.COMMON_NAME, "Dev Root CA")),
            issuer=None,
            not_before=ca_from,
            not_after=ca_to,
            ca=True,
            usage=CA_USAGE,
        )
        issuing = issue(
            "issuing",
            name(
                (NameOID.ORGANIZATION_NAME, DEV_ISSUER_ORG), (NameOID.COMMON_NAME, "Dev Issuing CA")
            ),
            issuer=root,
            not_before=ca_from,
            not_after=ca_to,
            ca=True,
            path_length=0,
            usage=CA_USAGE,
        )
    node = issue(
        "node",
        name((NameOID.ORGANIZATION_NAME, node_name), (NameOID.COMMON_NAME, hosts[0])),
        issuer=issuing,
        not_before=leaf_from,
        not_after=leaf_to,
        usage=TLS_USAGE,
        extended=TLS_EKU,
        san=tls_san(hosts),
    )
    seals = {
        organ_id: issue(
            f"agency-{organ_id}",
            agency_subject(organ_id, agency_name),
            issuer=issuing,
            not_before=leaf_from,
            not_after=leaf_to,
            extended=SIGNER_EKU,
        )
        for organ_id, agency_name in agencies.items()
    }
    clients = {
        office: issue(
            f"office-{office}",
            name((NameOID.ORGANIZATION_NAME, node_name), (NameOID.COMMON_NAME, office)),
            issuer=issuing,
            not_before=leaf_from,
            not_after=leaf_to,
            usage=TLS_USAGE,
            extended=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        )
        for office in offices
    }
    return DevPKI(root=root, issuing=issuing, node=node, agencies=seals, offices=clients)
