"""`gateway init`: make the files a configuration names, so a fresh node runs at once.

For the agencies, the node and the office credentials that `gateway.conf` declares, it generates
the development PKI (gateway.devpki) and writes each key and chain exactly where the configuration
expects it, plus a random office token. Existing files are never overwritten: running init twice,
or after an operator installed real certificates, changes nothing. Several dev nodes that must
trust each other share one issuing CA: pass the first node's CA directory as `ca_dir`.
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway import devpki
from gateway.config import Config

CA_FILES = ("root.crt.pem", "issuing.crt.pem", "issuing.key.pem")


@attrs.frozen
class InitResult:
    created: tuple[Path, ...]
    kept: tuple[Path, ...]
    ca_dir: Path


def _write_new(path: Path, data: bytes, *, private: bool, created: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    created.append(path)


def _load_ca(ca_dir: Path) -> tuple[devpki.Issued, devpki.Issued]:
    root_cert = x509.load_pem_x509_certificate((ca_dir / "root.crt.pem").read_bytes())
    issuing_cert = x509.load_pem_x509_certificate((ca_dir / "issuing.crt.pem").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / "issuing.key.pem").read_bytes(), None)
    # The root's key is not needed to issue: only the issuing CA signs leaves.
    root = devpki.Issued(name="root", key=key, cert=root_cert, chain=(root_cert,))  # type: ignore[arg-type]
    issuing = devpki.Issued(name="issuing", key=key, cert=issuing_cert, chain=(issuing_cert,))  # type: ignore[arg-type]
    return root, issuing


def _files(config: Config) -> Iterator[Path]:
    node = config.node
    yield from (node.tls.cert, node.tls.key)
    if node.tls.ca is not None:
        yield node.tls.ca
    for agency in config.agencies:
        yield from (agency.signing_key, agency.signing_cert)


def init_files(
    config: Config,
    *,
    ca_dir: Path | None = None,
    now: datetime.datetime | None = None,
) -> InitResult:
    """Create what `config` names and is missing. `config` is loaded with check_files=False."""
    created: list[Path] = []
    kept = [p for p in _files(config) if p.exists()]
    node = config.node
    ca_dir = ca_dir or node.data_dir / "pki" / "ca"
    agencies = {a.organ_id: a.name for a in config.agencies}
    shared = all((ca_dir / name).exists() for name in CA_FILES)
    ca = _load_ca(ca_dir) if shared else None
    pki = devpki.generate(node_name=node.name, agencies=agencies, now=now, ca=ca)
    if not shared:
        _write_new(ca_dir / "root.crt.pem", pki.root.cert_pem, private=False, created=created)
        _write_new(ca_dir / "issuing.crt.pem", pki.issuing.cert_pem, private=False, created=created)
        _write_new(ca_dir / "issuing.key.pem", pki.issuing.key_pem, private=True, created=created)
    wanted: list[tuple[Path, bytes, bool]] = [
        (node.tls.cert, pki.node.chain_pem, False),
        (node.tls.key, pki.node.key_pem, True),
    ]
    if node.tls.ca is not None:
        wanted.append((node.tls.ca, pki.root.cert_pem, False))
    for agency in config.agencies:
        seal = pki.agencies[agency.organ_id]
        wanted += [
            (agency.signing_key, seal.key_pem, True),
            (agency.signing_cert, seal.chain_pem, False),
        ]
    for root_path in config.trust.roots:
        if not any(ch in root_path for ch in "*?["):
            wanted.append((Path(root_path), pki.root.cert_pem, False))
    for source in [o.token_source for o in config.offices] + [config.metrics_token_source]:
        if source and source.startswith("file:"):
            token = secrets.token_urlsafe(32).encode() + b"\n"
            wanted.append((Path(source.removeprefix("file:")), token, True))
    seen: set[Path] = set()
    for path, data, private in wanted:
        if path in seen or path.exists():
            continue
        seen.add(path)
        _write_new(path, data, private=private, created=created)
    return InitResult(created=tuple(created), kept=tuple(kept), ca_dir=ca_dir)
