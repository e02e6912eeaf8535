"""`gateway certs check`: is every certificate the node uses or trusts fit for use, and how long.

One `CertStatus` per certificate: the node's TLS certificate, the office face's, each hosted
agency's seal, each route's own TLS certificate, every trusted root and intermediate (configured,
or shipped inside a chain file), and one per configured CRL. Each is checked for validity dates
(expiring `warn_days` ahead), a chain to a configured root (edxml.certificates.build_chain), the
configured CRLs of every CA above it and the OCSP answers given (edxml.revocation), its private
key (where the node holds one) and weak algorithms.

Read-only: reads the files the configuration names, opens no store and no network itself. What
OCSP responders could still say about certificates of trusted chains is `CertReport.ocsp_wanted`:
the CLI asks them (gateway.ocspclient) and checks again with the answers, unless told --offline.
The configuration sits on the config floor, so this module may be imported by the CLI alone.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

from edxml.certificates import (
    Chain,
    Trust,
    build_chain,
    distinguished_name,
    organ_id_of,
    pick_leaf,
    weak_key,
)
from edxml.ocsp import CertKey, OcspAnswer, OcspQuery
from edxml.revocation import RevocationState, revocation
from gateway.config import VIETNAM, Config, TlsConfig, TrustConfig

OK: Final = "ok"
EXPIRING: Final = "expiring"
EXPIRED: Final = "expired"
NOT_YET_VALID: Final = "not-yet-valid"
UNTRUSTED: Final = "untrusted"
REVOKED: Final = "revoked"
KEY_MISMATCH: Final = "key-mismatch"
WEAK: Final = "weak"
STALE: Final = "stale"  # a CRL past its nextUpdate
OCSP_UNAVAILABLE: Final = "ocsp-unavailable"  # a responder was asked and could not be used
ORGAN_ID: Final = "organ-id"  # a seal whose subject does not carry its agency's OrganId
UNREADABLE: Final = "unreadable"

# Warnings need action soon; errors mean something is already unusable or unsafe.
WARNING_STATES: Final = frozenset({EXPIRING, STALE, WEAK, ORGAN_ID, OCSP_UNAVAILABLE})
ERROR_STATES: Final = frozenset(
    {EXPIRED, NOT_YET_VALID, UNTRUSTED, REVOKED, KEY_MISMATCH, UNREADABLE}
)
# The state a certificate is shown with when it has several problems: the most serious.
_RANK: Final = (
    REVOKED,
    UNTRUSTED,
    KEY_MISMATCH,
    EXPIRED,
    NOT_YET_VALID,
    UNREADABLE,
    WEAK,
    STALE,
    OCSP_UNAVAILABLE,
    EXPIRING,
    ORGAN_ID,
)
_WEAK_HASHES: Final = ("sha1", "md5")
_MAX_CA_DEPTH: Final = 8


@attrs.frozen
class Issue:
    """One thing wrong with a certificate or CRL, with the state it puts it in."""

    state: str
    en: str
    vi: str


@attrs.frozen
class CertStatus:
    """The verdict on one certificate (kind "certificate") or CRL (kind "crl")."""

    role: str  # node-tls, office-tls, agency-seal, route-tls, trust-root, trust-intermediate, …
    path: Path
    kind: str
    subject: str | None
    issuer: str | None
    serial: str | None  # hexadecimal; the CRL number for a CRL
    not_before: datetime.datetime | None  # UTC; thisUpdate for a CRL
    not_after: datetime.datetime | None  # UTC; nextUpdate for a CRL
    days_left: int | None
    fingerprint_sha256: str | None
    issues: tuple[Issue, ...] = ()
    subject_of: str | None = None  # the agency OrganId or route name the role belongs to

    @property
    def state(self) -> str:
        states = {i.state for i in self.issues}
        return next((s for s in _RANK if s in states), OK)

    @property
    def needs_action(self) -> bool:
        return bool(self.issues)

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "of": self.subject_of,
            "path": str(self.path),
            "kind": self.kind,
            "state": self.state,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": _shown(self.not_before),
            "not_after": _shown(self.not_after),
            "days_left": self.days_left,
            "fingerprint_sha256": self.fingerprint_sha256,
            "problems": [
                {"state": i.state, "message_en": i.en, "message_vi": i.vi} for i in self.issues
            ],
        }


@attrs.frozen
class CertReport:
    checked_at: datetime.datetime
    warn_days: int
    statuses: tuple[CertStatus, ...]
    # Certificates of trusted chains that no evidence covered and whose responder could be asked.
    ocsp_wanted: tuple[OcspQuery, ...] = ()

    @property
    def needs_action(self) -> bool:
        return any(s.needs_action for s in self.statuses)

    @property
    def severity(self) -> str:
        """ "error" when something is unusable now, "warning" when soon or unsafe, else "ok"."""
        states = {i.state for s in self.statuses for i in s.issues}
        if states & ERROR_STATES:
            return "error"
        return "warning" if states else "ok"

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for status in self.statuses:
            counts[status.state] = counts.get(status.state, 0) + 1
        return {
            "checked_at": _shown(self.checked_at),
            "warn_days": self.warn_days,
            "needs_action": self.needs_action,
            "severity": self.severity,
            "counts": dict(sorted(counts.items())),
            "certificates": [s.to_json() for s in self.statuses],
        }


def _shown(when: datetime.datetime | None) -> str | None:
    return None if when is None else when.astimezone(VIETNAM).isoformat(timespec="seconds")


# --- reading ------------------------------------------------------------------------------------


def _read_certs(path: Path) -> tuple[x509.Certificate, ...] | Issue:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Issue(UNREADABLE, f"cannot read the file ({exc.strerror})", "không đọc được tệp")
    try:
        if b"-----BEGIN" in data:
            certs = tuple(x509.load_pem_x509_certificates(data))
        else:
            certs = (x509.load_der_x509_certificate(data),)
        for cert in certs:
            cert.subject.rfc4514_string()  # names decode lazily: fail here, not in the report
    except ValueError as exc:
        return Issue(
            UNREADABLE,
            f"not a PEM or DER X.509 certificate ({exc})",
            "không phải chứng thư số X.509 (PEM hoặc DER) hợp lệ",
        )
    return certs


def _read_crl(path: Path) -> x509.CertificateRevocationList | Issue:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Issue(UNREADABLE, f"cannot read the file ({exc.strerror})", "không đọc được tệp")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        return Issue(
            UNREADABLE,
            f"not a PEM or DER certificate revocation list ({exc})",
            "không phải danh sách thu hồi chứng thư (CRL) hợp lệ",
        )


def _key_issue(key_path: Path, cert: x509.Certificate) -> Issue | None:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        return Issue(
            UNREADABLE, f"cannot read the key {key_path} ({exc.strerror})", "không đọc được khóa"
        )
    except (ValueError, TypeError) as exc:
        return Issue(
            UNREADABLE,
            f"the key {key_path} is not an unencrypted PEM private key ({exc})",
            f"khóa {key_path} không phải khóa bí mật PEM không mã hóa",
        )
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return Issue(
            KEY_MISMATCH,
            f"the key {key_path} does not belong to this certificate",
            f"khóa {key_path} không khớp với chứng thư số này",
        )
    return None


# --- checks -------------------------------------------------------------------------------------


def _date_issues(
    cert: x509.Certificate, now: datetime.datetime, warn_days: int
) -> tuple[list[Issue], int]:
    not_after = cert.not_valid_after_utc
    left = (not_after - now) // datetime.timedelta(days=1)
    until = _shown(not_after)
    if now > not_after:
        return [
            Issue(EXPIRED, f"expired at {until}", f"đã hết hạn lúc {until}"),
        ], left
    issues = []
    if now < cert.not_valid_before_utc:
        since = _shown(cert.not_valid_before_utc)
        issues.append(
            Issue(NOT_YET_VALID, f"not valid before {since}", f"chưa có hiệu lực trước {since}")
        )
    if not_after - now <= datetime.timedelta(days=warn_days):
        issues.append(
            Issue(
                EXPIRING,
                f"expires at {until}, in {left} day(s)",
                f"hết hạn lúc {until}, còn {left} ngày",
            )
        )
    return issues, left


def _weak_issues(cert: x509.Certificate) -> list[Issue]:
    issues = []
    weak = weak_key(cert)
    if weak is not None:
        issues.append(Issue(WEAK, f"weak key {weak}", f"khóa yếu {weak}"))
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and algorithm.name in _WEAK_HASHES:
        name = algorithm.name.upper()
        issues.append(Issue(WEAK, f"signed with {name}", f"được ký bằng thuật toán yếu {name}"))
    return issues


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _ca_path(
    cert: x509.Certificate, pool: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> list[x509.Certificate] | None:
    """The CA certificates above `cert` up to a configured root (signatures only: a CA is judged
    on its own dates, and build_chain's end-entity KeyUsage rule does not fit CAs)."""
    path: list[x509.Certificate] = []
    current = cert
    for _ in range(_MAX_CA_DEPTH):
        if any(current == root for root in roots):
            return path
        issuer = next((c for c in [*roots, *pool] if _issued_by(current, c)), None)
        if issuer is None or issuer == current:
            return None
        path.append(issuer)
        current = issuer
    return None


@attrs.frozen
class _Crl:
    crl: x509.CertificateRevocationList
    path: Path
    valid: bool  # the signature verifies against a known certificate of its issuer


@attrs.define
class _Evidence:
    """The CRLs and OCSP answers of one check, and what could still be asked."""

    crls: Sequence[_Crl]
    ocsp: Sequence[OcspAnswer]
    now: datetime.datetime
    wanted: dict[CertKey, OcspQuery] = attrs.field(factory=dict)

    def issues(self, chain: Sequence[x509.Certificate], *, trusted: bool) -> list[Issue]:
        """`chain` runs from the certificate shown up to its anchor (edxml.revocation); the
        CRLs' own problems are shown on their own lines, not here. Only a trusted chain's
        responders are worth asking."""
        result = revocation(chain, [entry.crl for entry in self.crls], self.now, ocsp=self.ocsp)
        if trusted:
            self.wanted.update((q.key, q) for q in result.wanted)
        out = [Issue(OCSP_UNAVAILABLE, p.en, p.vi) for p in result.ocsp_problems]
        cert = result.revoked_cert
        if result.state is not RevocationState.REVOKED or cert is None:
            return out
        path = next((e.path for e in self.crls if e.crl is result.revoked_by), None)
        source = f"CRL {path}" if path is not None else "OCSP"
        when = _shown(result.revoked_at)
        if cert == chain[0]:
            en = f"revoked at {when} ({source})"
            vi = f"đã bị thu hồi lúc {when} ({source})"
        else:
            who = distinguished_name(cert.subject)
            en = f"its issuing CA {who} was revoked at {when} ({source})"
            vi = f"CA cấp phát {who} đã bị thu hồi lúc {when} ({source})"
        return [Issue(REVOKED, en, vi), *out]


def _status(
    role: str,
    path: Path,
    cert: x509.Certificate,
    issues: list[Issue],
    left: int,
    subject_of: str | None,
) -> CertStatus:
    return CertStatus(
        role=role,
        path=path,
        kind="certificate",
        subject=distinguished_name(cert.subject),
        issuer=distinguished_name(cert.issuer),
        serial=format(cert.serial_number, "X"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        days_left=left,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        issues=tuple(issues),
        subject_of=subject_of,
    )


def _unreadable(role: str, path: Path, issue: Issue, subject_of: str | None) -> CertStatus:
    return CertStatus(
        role, path, "certificate", None, None, None, None, None, None, None, (issue,), subject_of
    )


@attrs.frozen
class _Leaf:
    role: str
    cert_path: Path
    key_path: Path | None
    subject_of: str | None = None
    organ_id: str | None = None  # the OrganId the subject must carry (agency seals)


def _leaves(config: Config) -> list[_Leaf]:
    node = config.node
    leaves = [_Leaf("node-tls", node.tls.cert, node.tls.key)]
    if node.office_tls is not None:
        leaves.append(_Leaf("office-tls", node.office_tls.cert, node.office_tls.key))
    for agency in config.agencies:
        leaves.append(
            _Leaf(
                "agency-seal",
                agency.signing_cert,
                agency.signing_key,
                agency.organ_id,
                agency.organ_id,
            )
        )
    for route in config.routes:
        # A route without its own tls_* borrows the node's identity, already listed.
        if route.tls is not None and route.tls.cert != node.tls.cert:
            leaves.append(_Leaf("route-tls", route.tls.cert, route.tls.key, route.name))
    return leaves


def _ca_files(config: Config) -> list[tuple[str, Path]]:
    """Every file of trusted CA certificates: [trust] roots and intermediates, and the tls_ca
    bundles that decide whose TLS certificates the node accepts."""
    files = [("trust-root", p) for p in TrustConfig.expand(config.trust.roots)]
    files += [("trust-intermediate", p) for p in TrustConfig.expand(config.trust.intermediates)]
    tls: list[TlsConfig | None] = [config.node.tls, config.node.office_tls]
    tls += [r.tls for r in config.routes]
    for side in tls:
        if side is not None and side.ca is not None:
            files.append(("tls-ca", side.ca))
    return files


def check(
    config: Config,
    *,
    now: datetime.datetime,
    warn_days: int = 30,
    ocsp: Sequence[OcspAnswer] = (),
) -> CertReport:
    """Check every certificate `config` uses or trusts, its CRLs and the `ocsp` answers given, at
    `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    now = now.astimezone(datetime.UTC)
    statuses: list[CertStatus] = []

    # Trusted CA certificates, first seen wins (the same root is often named twice).
    cas: dict[bytes, tuple[str, Path, x509.Certificate]] = {}
    for role, path in dict.fromkeys(_ca_files(config)):
        read = _read_certs(path)
        if isinstance(read, Issue):
            statuses.append(_unreadable(role, path, read, None))
            continue
        for cert in read:
            cas.setdefault(cert.fingerprint(hashes.SHA256()), (role, path, cert))
    leaves = _leaves(config)
    leaf_files: dict[Path, tuple[x509.Certificate, ...] | Issue] = {
        leaf.cert_path: _read_certs(leaf.cert_path) for leaf in leaves
    }
    # CA certificates shipped in chain files are checked too: an expired issuing CA breaks
    # every leaf under it even though no configuration line names it.
    for path, read in leaf_files.items():
        if isinstance(read, tuple) and len(read) > 1:
            own = pick_leaf(read)
            for cert in read:
                if cert != own:
                    cas.setdefault(cert.fingerprint(hashes.SHA256()), ("chain-ca", path, cert))
    roots = [c for _, _, c in cas.values() if c.subject == c.issuer]
    others = [c for _, _, c in cas.values() if c.subject != c.issuer]
    trust = Trust(roots=roots, intermediates=others)

    crls: list[_Crl] = []
    for path in TrustConfig.expand(config.trust.crls):
        crl_status, entry = _check_crl(path, [*roots, *others], now)
        statuses.append(crl_status)
        if entry is not None:
            crls.append(entry)
    evidence = _Evidence(crls, ocsp, now)

    for leaf in leaves:
        read = leaf_files[leaf.cert_path]
        if isinstance(read, Issue):
            statuses.append(_unreadable(leaf.role, leaf.cert_path, read, leaf.subject_of))
            continue
        cert = pick_leaf(read)
        issues, left = _date_issues(cert, now, warn_days)
        # The chain is judged inside the leaf's own validity so that an expired certificate is
        # reported as expired, not also as untrusted.
        at = min(max(now, cert.not_valid_before_utc), cert.not_valid_after_utc)
        built = build_chain(cert, read, trust, at)
        chain: Sequence[x509.Certificate]
        trusted = True
        if isinstance(built, Chain):
            chain = built.certificates
        elif at != now and (up := _ca_path(cert, [*read, *others], roots)) is not None:
            # Out of its dates the CAs' windows may not overlap the leaf's: signatures decide.
            chain = (cert, *up)
        else:
            issues.append(Issue(UNTRUSTED, built.en, built.vi))
            trusted = False
            # Untrusted, yet its direct issuer's CRL may still say it is revoked.
            issuer = next((c for c in [*read, *others, *roots] if _issued_by(cert, c)), None)
            chain = (cert,) if issuer is None or issuer == cert else (cert, issuer)
        issues += evidence.issues(chain, trusted=trusted)
        if leaf.key_path is not None:
            key_issue = _key_issue(leaf.key_path, cert)
            if key_issue is not None:
                issues.append(key_issue)
        issues += _weak_issues(cert)
        if leaf.organ_id is not None:
            found = organ_id_of(cert.subject)
            if found != leaf.organ_id:
                issues.append(
                    Issue(
                        ORGAN_ID,
                        f"the subject carries OrganId {found or 'none'}, not {leaf.organ_id}",
                        f"tên chứng thư mang mã định danh {found or 'không có'}, "
                        f"không phải {leaf.organ_id}",
                    )
                )
        statuses.append(_status(leaf.role, leaf.cert_path, cert, issues, left, leaf.subject_of))

    for role, path, cert in cas.values():
        issues, left = _date_issues(cert, now, warn_days)
        path_up = _ca_path(cert, others, roots)
        if path_up is None:
            issues.append(
                Issue(
                    UNTRUSTED,
                    "no chain to a configured root",
                    "không xây dựng được chuỗi chứng thư tới chứng thư gốc được cấu hình",
                )
            )
        elif cert.subject != cert.issuer:
            issues += evidence.issues([cert, *path_up], trusted=True)
        issues += _weak_issues(cert)
        statuses.append(_status(role, path, cert, issues, left, None))
    return CertReport(
        checked_at=now,
        warn_days=warn_days,
        statuses=tuple(statuses),
        ocsp_wanted=tuple(evidence.wanted.values()),
    )


def _check_crl(
    path: Path, cas: Sequence[x509.Certificate], now: datetime.datetime
) -> tuple[CertStatus, _Crl | None]:
    crl = _read_crl(path)
    if isinstance(crl, Issue):
        status = CertStatus("crl", path, "crl", None, None, None, None, None, None, None, (crl,))
        return status, None
    issuers = [c for c in cas if c.subject == crl.issuer]
    valid = any(crl.is_signature_valid(_issuer_key(c)) for c in issuers)
    issues = []
    issuer = distinguished_name(crl.issuer)
    if not issuers:
        issues.append(
            Issue(
                UNTRUSTED,
                f"no configured CA certificate of its issuer {issuer}",
                f"không có chứng thư CA của bên cấp {issuer} trong cấu hình",
            )
        )
    elif not valid:
        issues.append(
            Issue(
                UNTRUSTED,
                f"its signature does not verify against its issuer {issuer}",
                f"chữ ký của CRL không hợp lệ với bên cấp {issuer}",
            )
        )
    next_update = crl.next_update_utc
    left = None if next_update is None else (next_update - now) // datetime.timedelta(days=1)
    if next_update is not None and now > next_update:
        when = _shown(next_update)
        issues.append(
            Issue(
                STALE,
                f"out of date since {when}: fetch a newer CRL",
                f"đã quá hạn cập nhật từ {when}: cần lấy CRL mới",
            )
        )
    try:
        number: str | None = format(
            crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number, "X"
        )
    except x509.ExtensionNotFound:
        number = None
    status = CertStatus(
        role="crl",
        path=path,
        kind="crl",
        subject=issuer,
        issuer=issuer,
        serial=number,
        not_before=crl.last_update_utc,
        not_after=next_update,
        days_left=left,
        fingerprint_sha256=crl.fingerprint(hashes.SHA256()).hex(),
        issues=tuple(issues),
    )
    return status, _Crl(crl, path, valid)


def _issuer_key(cert: x509.Certificate) -> CertificateIssuerPublicKeyTypes:
    key = cert.public_key()
    # Only keys that can sign reach here in practice; X25519/X448/DH CA keys cannot issue.
    return key  # type: ignore[return-value]
