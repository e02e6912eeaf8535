"""Mutual TLS between nodes: the server's options, the client's policy, and who the peer is.

Verification is always on. Trust is what the configuration names — our roots, never the
system's store — because a node must only talk to the nodes of its own exchange PKI. The
intermediate of a leaf is sent explicitly: pyOpenSSL does not send it from a concatenated PEM,
and the peer then answers "unknown ca" (stack_style.md §2.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from zope.interface import implementer

from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.web.iweb import IPolicyForHTTPS


@attrs.frozen
class TlsMaterial:
    """A node's own key and certificate chain (leaf first) and the roots it trusts in peers."""

    key_pem: bytes = attrs.field(repr=False)
    chain_pem: bytes
    trusted_pem: bytes

    @classmethod
    def from_files(cls, key: Path, chain: Path, trusted: Sequence[Path]) -> TlsMaterial:
        return cls(
            key_pem=key.read_bytes(),
            chain_pem=chain.read_bytes(),
            trusted_pem=b"".join(p.read_bytes() for p in trusted),
        )

    def _chain(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.chain_pem)

    def _private(self) -> ssl.PrivateCertificate:
        leaf = self._chain()[0].public_bytes(serialization.Encoding.PEM)
        return ssl.PrivateCertificate.loadPEM(self.key_pem + leaf)

    def _extra_chain(self) -> list[Any]:
        return [
            ssl.Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM)).original
            for c in self._chain()[1:]
        ]

    def _trusted(self) -> list[ssl.Certificate]:
        return [
            ssl.Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM))
            for c in x509.load_pem_x509_certificates(self.trusted_pem)
        ]


def server_options(material: TlsMaterial, *, require_client: bool = True) -> ssl.CertificateOptions:
    """Server side. The exchange face requires a client certificate chaining to our roots; the
    office face (`require_client=False`) verifies one when offered, since tokens also work, and
    asks for none when no roots are configured."""
    private = material._private()
    trusted = [c.original for c in material._trusted()]
    return ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        extraCertChain=material._extra_chain(),
        verify=bool(trusted) or require_client,
        caCerts=trusted or None,
        requireCertificate=require_client,
    )


@implementer(IPolicyForHTTPS)
class ClientPolicy:
    """treq/Agent policy: present our node certificate, trust only the configured roots."""

    def __init__(self, material: TlsMaterial) -> None:
        self._private = material._private()
        self._extra = material._extra_chain()
        self._trust = ssl.trustRootFromCertificates(material._trusted())

    def creatorForNetloc(self, hostname: bytes, port: int) -> IOpenSSLClientConnectionCreator:
        options: Any = ssl.optionsForClientTLS(
            hostname.decode("ascii"),
            trustRoot=self._trust,
            clientCertificate=self._private,
            extraCertificateOptions={"extraCertChain": self._extra} if self._extra else None,
        )
        return options


def peer_certificate(transport: Any) -> x509.Certificate | None:
    """The verified peer certificate of a TLS transport (None on plain TCP)."""
    getter = getattr(transport, "getPeerCertificate", None)
    if getter is None:
        return None
    peer = getter()
    if peer is None:
        return None
    return peer.to_cryptography()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()
