"""OCSP (RFC 6960) without I/O: what to ask a responder, and what its answer proves.

The library never opens a socket. A caller that may reach the network asks `OcspQuery.request()`
of the responders `OcspQuery.urls` names, and hands back what came (or why nothing came) as an
`OcspAnswer`; `judge()` then says what one answer proves about one certificate. Revocation
checks (`edxml.revocation`) use answers beside CRLs.

Decisions:

* Only a certificate whose chain has been verified to a trusted root is ever queried, so the
  responder URL is one a trusted CA wrote, not one an untrusted file chose (no SSRF by AIA).
* CertID uses SHA-1, as the lightweight profile (RFC 5019) that most responders serve requires;
  an answer whose CertID uses another hash is matched with that hash.
* An answer counts only if it is signed by the certificate's issuer itself, or by a responder
  certificate that issuer signed directly, valid now, with the id-kp-OCSPSigning purpose.
* Freshness: `thisUpdate` may lie at most `CLOCK_SKEW` in the future; past `nextUpdate` (plus
  the skew) an answer is stale and does not count; without `nextUpdate` it counts for `max_age`.
* No nonce: answers are cached and reused until `nextUpdate`, which a nonce would forbid; the
  freshness rules above are what bounds a replay.
"""

from __future__ import annotations

import datetime
import enum

import attrs
from asn1crypto import keys as asn1_keys  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from edxml.certificates import Problem
from edxml.findings import FindingCode, Severity

CLOCK_SKEW = datetime.timedelta(minutes=5)
DEFAULT_MAX_AGE = datetime.timedelta(days=1)
MAX_RESPONSE_BYTES = 64 * 1024

# Reported wherever revocation is judged (envelope and PDF signatures), with the answer's path.
OCSP_UNAVAILABLE = FindingCode(
    "OcspUnavailable",
    Severity.WARNING,
    "An OCSP answer could not be used to check revocation: {detail}",
    "Không dùng được phản hồi OCSP để kiểm tra tình trạng thu hồi: {detail_vi}",
)


def ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The http(s) OCSP responder URLs of `cert`'s Authority Information Access, in order."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    urls = []
    for desc in aia:
        if desc.access_method != AuthorityInformationAccessOID.OCSP:
            continue
        location = desc.access_location
        if isinstance(location, x509.UniformResourceIdentifier):
            url = location.value
            if url.lower().startswith(("http://", "https://")) and url not in urls:
                urls.append(url)
    return tuple(urls)


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    # RFC 6960 4.1.1: the hash of the issuer's subjectPublicKey BIT STRING value (its bits,
    # without the unused-bits octet: what asn1crypto's bit string gives as bytes).
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(algorithm)
    digest.update(bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"]))
    return digest.finalize()


def _name_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(issuer.subject.public_bytes())
    return digest.finalize()


@attrs.frozen
class CertKey:
    """What identifies a certificate to a responder: its serial and its issuer's key."""

    serial: int
    issuer_key_sha1: bytes


def cert_key(cert: x509.Certificate, issuer: x509.Certificate) -> CertKey:
    return CertKey(cert.serial_number, _key_hash(issuer, hashes.SHA1()))


@attrs.frozen
class OcspQuery:
    """One certificate to ask about, with the issuer that vouches for it."""

    cert: x509.Certificate
    issuer: x509.Certificate

    @property
    def urls(self) -> tuple[str, ...]:
        return ocsp_urls(self.cert)

    @property
    def key(self) -> CertKey:
        return cert_key(self.cert, self.issuer)

    def request(self) -> bytes:
        """The DER OCSPRequest (SHA-1 CertID, no nonce) to POST as application/ocsp-request."""
        builder = ocsp.OCSPRequestBuilder().add_certificate(
            self.cert,
            self.issuer,
            hashes.SHA1(),
        )
        return builder.build().public_bytes(serialization.Encoding.DER)


@attrs.frozen
class OcspAnswer:
    """What one responder gave for one certificate: the DER response, or why there is none.

    `fetched_at` is when the caller got it (aware). An answer that holds no response is kept
    too, so that the verdict can say the responder was asked and could not be used.
    """

    key: CertKey
    url: str
    fetched_at: datetime.datetime
    response: bytes | None = attrs.field(default=None, repr=False)
    failure: Problem | None = None

    @classmethod
    def received(
        cls, query: OcspQuery, url: str, response: bytes, at: datetime.datetime
    ) -> OcspAnswer:
        return cls(query.key, url, at, response=response)

    @classmethod
    def failed(
        cls, query: OcspQuery, url: str, failure: Problem, at: datetime.datetime
    ) -> OcspAnswer:
        return cls(query.key, url, at, failure=failure)


class OcspState(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # the responder does not know the certificate
    UNUSABLE = "unusable"  # no answer, or one that proves nothing (see `problem`)


@attrs.frozen
class OcspStatus:
    state: OcspState
    url: str
    problem: Problem | None = None
    revoked_at: datetime.datetime | None = None  # UTC
    reason: str | None = None
    this_update: datetime.datetime | None = None
    next_update: datetime.datetime | None = None


def judge(
    answer: OcspAnswer,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime.datetime,
    *,
    max_age: datetime.timedelta = DEFAULT_MAX_AGE,
) -> OcspStatus:
    """What `answer` proves about `cert` (issued by `issuer`) at `now` (aware)."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    now = now.astimezone(datetime.UTC)
    url = answer.url
    if answer.response is None:
        failure = answer.failure or Problem("no answer", "không có phản hồi")
        return _unusable(url, failure.en, failure.vi)
    if len(answer.response) > MAX_RESPONSE_BYTES:
        return _unusable(url, "the answer is too large", "phản hồi quá lớn")
    try:
        response = ocsp.load_der_ocsp_response(answer.response)
    except ValueError as exc:
        return _unusable(url, f"not an OCSP response ({exc})", "không phải phản hồi OCSP hợp lệ")
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        status = response.response_status.name.lower()
        return _unusable(
            url, f"the responder answered {status}", f"máy chủ OCSP trả lời lỗi ({status})"
        )
    signer = _response_signer(response, issuer, now)
    if isinstance(signer, Problem):
        return _unusable(url, signer.en, signer.vi)
    if not _signature_valid(response, signer):
        return _unusable(
            url,
            "the answer's signature does not verify",
            "chữ ký của phản hồi OCSP không hợp lệ",
        )
    single = _single_for(response, cert, issuer)
    if single is None:
        return _unusable(
            url,
            "the answer is about another certificate",
            "phản hồi OCSP nói về một chứng thư số khác",
        )
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    stale = _staleness(this_update, next_update, now, max_age)
    if stale is not None:
        return attrs.evolve(
            _unusable(url, stale.en, stale.vi), this_update=this_update, next_update=next_update
        )
    cert_status = single.certificate_status
    if cert_status is ocsp.OCSPCertStatus.GOOD:
        return OcspStatus(OcspState.GOOD, url, this_update=this_update, next_update=next_update)
    if cert_status is ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason
        return OcspStatus(
            OcspState.REVOKED,
            url,
            revoked_at=single.revocation_time_utc,
            reason=reason.value if reason is not None else None,
            this_update=this_update,
            next_update=next_update,
        )
    return OcspStatus(
        OcspState.UNKNOWN,
        url,
        problem=Problem(
            "the responder does not know the certificate",
            "máy chủ OCSP không biết chứng thư số này",
        ),
        this_update=this_update,
        next_update=next_update,
    )


def valid_until(
    answer: OcspAnswer, max_age: datetime.timedelta = DEFAULT_MAX_AGE
) -> datetime.datetime:
    """Until when a cache may keep `answer`: its nextUpdate, else fetched_at + max_age."""
    fallback = answer.fetched_at.astimezone(datetime.UTC) + max_age
    if answer.response is None:
        return answer.fetched_at.astimezone(datetime.UTC)
    try:
        response = ocsp.load_der_ocsp_response(answer.response)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return answer.fetched_at.astimezone(datetime.UTC)
        next_update = response.next_update_utc
    except ValueError:
        return answer.fetched_at.astimezone(datetime.UTC)
    return next_update if next_update is not None else fallback


def _unusable(url: str, en: str, vi: str) -> OcspStatus:
    return OcspStatus(
        OcspState.UNUSABLE,
        url,
        problem=Problem(f"OCSP responder {url}: {en}", f"máy chủ OCSP {url}: {vi}"),
    )


def _staleness(
    this_update: datetime.datetime,
    next_update: datetime.datetime | None,
    now: datetime.datetime,
    max_age: datetime.timedelta,
) -> Problem | None:
    if this_update > now + CLOCK_SKEW:
        when = this_update.isoformat(timespec="seconds")
        return Problem(
            f"the answer is dated in the future ({when})",
            f"phản hồi OCSP mang thời điểm trong tương lai ({when})",
        )
    limit = next_update + CLOCK_SKEW if next_update is not None else this_update + max_age
    if now > limit:
        when = limit.isoformat(timespec="seconds")
        return Problem(
            f"the answer is out of date since {when}",
            f"phản hồi OCSP đã hết hạn từ {when}",
        )
    return None


def _single_for(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse | None:
    for single in response.responses:
        if single.serial_number != cert.serial_number:
            continue
        algorithm = single.hash_algorithm
        if single.issuer_key_hash == _key_hash(
            issuer, algorithm
        ) and single.issuer_name_hash == _name_hash(issuer, algorithm):
            return single
    return None


def _response_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime.datetime
) -> x509.Certificate | Problem:
    """The issuer itself, or a delegated responder certificate it signed (RFC 6960 4.2.2.2)."""
    if _names_responder(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _names_responder(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            return Problem(
                "the responder's certificate is not issued by the certificate's CA",
                "chứng thư của máy chủ OCSP không do đơn vị cấp chứng thư này cấp",
            )
        try:
            purposes = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            purposes = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in purposes:
            return Problem(
                "the responder's certificate is not for OCSP signing",
                "chứng thư của máy chủ OCSP không có mục đích ký OCSP",
            )
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            return Problem(
                "the responder's certificate is not valid now",
                "chứng thư của máy chủ OCSP hiện không còn hiệu lực",
            )
        return candidate
    return Problem(
        "the answer is signed by neither the CA nor a responder it authorised",
        "phản hồi OCSP không do đơn vị cấp chứng thư hoặc máy chủ được ủy quyền ký",
    )


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return bool(response.responder_name == cert.subject)
    return response.responder_key_hash == _key_hash(cert, hashes.SHA1())


def _signature_valid(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    key = signer.public_key()
    data = response.tbs_response_bytes
    signature = response.signature
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True
