"""Is any certificate of a chain revoked? Judged from the CRLs and OCSP answers a caller passes.

Nothing is fetched here. What the evidence cannot settle comes back as `wanted`: the
certificates of the chain that no usable CRL or OCSP answer covers and whose certificate names an
OCSP responder, for a caller that may reach the network to ask and then judge again.

Two times matter. `now` is when the evidence is judged (a CRL past its nextUpdate is stale, an
OCSP answer past its nextUpdate is void). `at` is when the signature was made, as far as a
trusted time says (a PDF's timestamp token); a revocation dated after `at` does not touch a
signature already made, unless the CRL's invalidityDate puts the key's compromise before `at`.
`at` defaults to `now`.
"""

from __future__ import annotations

import datetime
import enum
import itertools
from collections.abc import Sequence

import attrs
from cryptography import x509

from edxml.certificates import Chain, Problem, as_certificates, distinguished_name
from edxml.ocsp import DEFAULT_MAX_AGE, OcspAnswer, OcspQuery, OcspState, cert_key, judge


class RevocationState(enum.Enum):
    GOOD = "good"  # every certificate below the anchor was checked (CRL or OCSP)
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # some certificate is covered by no usable evidence (and none is revoked)


class Source(enum.Enum):
    CRL = "crl"
    OCSP = "ocsp"


@attrs.frozen
class RevocationResult:
    """What the evidence says about a chain; `revoked_*` name the first revoked certificate."""

    state: RevocationState
    revoked_cert: x509.Certificate | None = None
    revoked_at: datetime.datetime | None = None  # UTC
    reason: str | None = None  # the entry's reason code (RFC 5280 name), if it gives one
    revoked_by: x509.CertificateRevocationList | None = None  # when a CRL said so
    missing: tuple[str, ...] = ()  # issuers (RFC 4514) whose certificate no evidence covers
    problems: tuple[Problem, ...] = ()  # CRLs ignored (bad signature) or stale
    ocsp_problems: tuple[Problem, ...] = ()  # answers that could not be used, and why
    sources: tuple[Source, ...] = ()  # what the verdict rests on
    wanted: tuple[OcspQuery, ...] = ()  # uncovered certificates a responder could be asked about


def revocation(
    chain: Chain | Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    now: datetime.datetime,
    *,
    ocsp: Sequence[OcspAnswer] = (),
    at: datetime.datetime | None = None,
    max_age: datetime.timedelta = DEFAULT_MAX_AGE,
) -> RevocationResult:
    """Check each certificate of `chain` (signer first) against the CRLs and OCSP answers of the
    next one, its issuer.

    The last certificate is the anchor and is not checked itself (a root has no CRL above it),
    so a caller that wants the signer's status alone passes (signer, issuer). Only a CRL whose
    issuer name is the issuer's subject AND whose signature the issuer's key verifies counts: a
    forged "good" must not hide a revocation. A CRL named for an issuer of the chain that fails
    that check is ignored and reported; one past its nextUpdate still counts and is reported.
    An OCSP answer counts as `edxml.ocsp.judge` says. Raises ValueError for a naive `now` or
    `at` (a caller bug).
    """
    if now.tzinfo is None or (at is not None and at.tzinfo is None):
        raise ValueError("`now` and `at` must be timezone-aware")
    now = now.astimezone(datetime.UTC)
    at = now if at is None else at.astimezone(datetime.UTC)
    certs = chain.certificates if isinstance(chain, Chain) else as_certificates(chain)
    seen = _Evidence(now, at, max_age)
    for cert, issuer in itertools.pairwise(certs):
        by_crl = seen.crl(cert, issuer, crls)
        answers = [a for a in ocsp if a.key == cert_key(cert, issuer)]
        by_ocsp = seen.ocsp(cert, issuer, answers)
        if by_crl or by_ocsp:
            continue
        who = distinguished_name(issuer.subject)
        if who not in seen.missing:
            seen.missing.append(who)
        query = OcspQuery(cert, issuer)
        if not answers and query.urls:
            seen.wanted.append(query)
    return seen.result()


class _Evidence:
    """What the walk up one chain has found so far."""

    def __init__(self, now: datetime.datetime, at: datetime.datetime, max_age: datetime.timedelta):
        self.now = now
        self.at = at
        self.max_age = max_age
        self.problems: list[Problem] = []
        self.ocsp_problems: list[Problem] = []
        self.missing: list[str] = []
        self.wanted: list[OcspQuery] = []
        self.sources: list[Source] = []
        self.revoked: RevocationResult | None = None

    def _used(self, source: Source) -> None:
        if source not in self.sources:
            self.sources.append(source)

    def _revoke(self, result: RevocationResult) -> None:
        if self.revoked is None:
            self.revoked = result

    def crl(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        crls: Sequence[x509.CertificateRevocationList],
    ) -> bool:
        """Whether some usable CRL of `issuer` covers `cert` (noting a revocation if listed)."""
        good: list[x509.CertificateRevocationList] = []
        for crl in crls:
            if crl.issuer != issuer.subject or cert.issuer != issuer.subject:
                continue
            if not _crl_signed_by(crl, issuer):
                _add(self.problems, _forged_crl(crl))
                continue
            good.append(crl)
            stale = _stale_crl(crl, self.now)
            if stale is not None:
                _add(self.problems, stale)
        for crl in good:
            self._used(Source.CRL)
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is None or _effective(entry) > self.at:
                continue
            self._revoke(
                RevocationResult(
                    RevocationState.REVOKED,
                    revoked_cert=cert,
                    revoked_at=entry.revocation_date_utc,
                    reason=_reason(entry),
                    revoked_by=crl,
                )
            )
        return bool(good)

    def ocsp(
        self, cert: x509.Certificate, issuer: x509.Certificate, answers: Sequence[OcspAnswer]
    ) -> bool:
        """Whether a usable OCSP answer covers `cert` (noting a revocation if it says so)."""
        covered = False
        for answer in answers:
            status = judge(answer, cert, issuer, self.now, max_age=self.max_age)
            if status.state is OcspState.GOOD:
                covered = True
            elif status.state is OcspState.REVOKED:
                covered = True
                if status.revoked_at is not None and status.revoked_at > self.at:
                    continue  # revoked after the signature was made
                self._revoke(
                    RevocationResult(
                        RevocationState.REVOKED,
                        revoked_cert=cert,
                        revoked_at=status.revoked_at,
                        reason=status.reason,
                    )
                )
            elif status.problem is not None:
                _add(self.ocsp_problems, status.problem)
        if covered:
            self._used(Source.OCSP)
        return covered

    def result(self) -> RevocationResult:
        state = RevocationState.UNKNOWN if self.missing else RevocationState.GOOD
        found = self.revoked if self.revoked is not None else RevocationResult(state)
        return attrs.evolve(
            found,
            missing=tuple(self.missing),
            problems=tuple(self.problems),
            ocsp_problems=tuple(self.ocsp_problems),
            sources=tuple(s for s in Source if s in self.sources),
            wanted=tuple(self.wanted),
        )


def _add(problems: list[Problem], problem: Problem) -> None:
    if problem not in problems:
        problems.append(problem)


def _effective(entry: x509.RevokedCertificate) -> datetime.datetime:
    """From when a CRL entry voids signatures: the key's invalidity date when it is earlier."""
    revoked = entry.revocation_date_utc
    try:
        invalid = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    except x509.ExtensionNotFound:
        return revoked
    invalid_utc = invalid.invalidity_date_utc
    return min(revoked, invalid_utc)


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a key type that cannot sign, or a malformed CRL
        return False


def _forged_crl(crl: x509.CertificateRevocationList) -> Problem:
    who = distinguished_name(crl.issuer)
    return Problem(
        f"a CRL naming {who} as issuer was ignored: its signature does not verify with that"
        " issuer's key",
        f"đã bỏ qua một CRL ghi bên cấp là {who}: chữ ký của CRL không khớp với khóa của bên cấp",
    )


def _stale_crl(crl: x509.CertificateRevocationList, now: datetime.datetime) -> Problem | None:
    next_update = crl.next_update_utc
    if next_update is None or now <= next_update:
        return None
    who = distinguished_name(crl.issuer)
    when = next_update.isoformat(timespec="seconds")
    return Problem(
        f"the CRL of {who} is out of date since {when} (still used): fetch a newer one",
        f"CRL của {who} đã quá hạn cập nhật từ {when} (vẫn được dùng): cần lấy CRL mới",
    )


def _reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        return None
