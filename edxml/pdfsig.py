"""PDF signatures of attachments, validated with pyHanko, and the legal-validity verdict (R5).

Bytes in, verdict out: no files, and never the network. pyHanko's ValidationContext gets the
explicit trust roots and intermediates of a `Trust`, the CRLs the caller passes, and
allow_fetching=False, so neither AIA chasing nor CRL/OCSP fetching can reach a URL that the
(untrusted) file names. OCSP answers the caller fetched (for `ocsp_wanted` of an earlier pass)
are judged by `edxml.revocation` beside the CRLs.

Decisions, so that callers and auditors can rely on them:

* `intact` means both that the signed byte ranges hash to the signed digest and that the CMS
  signature over it verifies. A signature that is not intact makes the PDF BROKEN, which refuses
  the document (PdfSignatureBroken, fault SignatureInvalid).
* The chain and revocation are judged at the signing time only when a trusted time proves it:
  a signature timestamp token (RFC 3161) that is intact and whose time-stamping authority chains
  to the trust. Otherwise at `now` (the validation time): the claimed signing time is the
  signer's own word and is only shown, so a document signed by a certificate that has since
  expired, without a trusted timestamp, is reference-only. A revocation dated after the trusted
  signing time does not touch the signature (unless the CRL's invalidityDate is earlier).
* Revocation is the signing certificate's, judged ONLY against the CRLs and OCSP answers given:
  a CRL whose issuer is the certificate's issuer and whose signature that issuer's key verifies,
  or an OCSP answer `edxml.ocsp.judge` accepts. None such: unknown (and `ocsp_wanted` says whom
  to ask, for a signer whose chain is trusted).
* Role: a signature is a person's when the subject carries a title or a common name other than
  its organisation's name; otherwise (CN equals O, or no CN) it is the agency's seal.
* `by_sender`: the OrganId found in the subject (UID, OU, serialNumber, O or CN; for a person
  usually the OU naming the agency) equals the sending agency's.
* LEGAL iff some signature is intact, its chain trusted at `now`, not revoked, by the sender, and
  nothing but allowed incremental updates (form filling, further signatures, LTA data) followed it.
  BROKEN iff any signature is not intact. Otherwise REFERENCE_ONLY.
* A PDF pyHanko cannot parse is reported (PdfUnreadable, a warning) and is reference-only: whether
  an attachment is a PDF at all is the attachment check's business.
"""

from __future__ import annotations

import datetime
import enum
import io
from collections.abc import Iterable, Sequence

import attrs
from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from edxml.certificates import (
    Problem,
    SignerIdentity,
    Trust,
    build_chain,
    organ_id_of,
)
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.ocsp import OCSP_UNAVAILABLE, OcspAnswer, OcspQuery
from edxml.revocation import RevocationState, revocation

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

PDF_SIGNATURE_BROKEN = FindingCode(
    "PdfSignatureBroken",
    Severity.ERROR,
    "PDF signature {field} by {signer} is broken: the document was altered after signing "
    "({reason}).",
    "Chữ ký số {field} của {signer} trên tệp PDF không còn toàn vẹn: tài liệu đã bị thay đổi "
    "sau khi ký ({reason_vi}).",
    Fault.SIGNATURE_INVALID,
)
PDF_SIGNER_UNTRUSTED = FindingCode(
    "PdfSignerUntrusted",
    Severity.WARNING,
    "PDF signature {field} by {signer} does not chain to a trusted root: {reason}.",
    "Chữ ký số {field} của {signer} trên tệp PDF không thuộc chuỗi tin cậy: {reason_vi}.",
)
PDF_SIGNER_REVOKED = FindingCode(
    "PdfSignerRevoked",
    Severity.WARNING,
    "PDF signature {field}: the certificate of {signer} was revoked at {revoked_at}.",
    "Chữ ký số {field} trên tệp PDF: chứng thư số của {signer} đã bị thu hồi lúc {revoked_at}.",
)
PDF_SIGNER_EXPIRED = FindingCode(
    "PdfSignerExpired",
    Severity.WARNING,
    "PDF signature {field}: the certificate of {signer} is not valid at the time the signature "
    "is judged: {reason}.",
    "Chữ ký số {field} trên tệp PDF: chứng thư số của {signer} không có hiệu lực tại thời điểm "
    "xét chữ ký: {reason_vi}.",
)
PDF_NOT_BY_SENDER = FindingCode(
    "PdfNotBySender",
    Severity.WARNING,
    "PDF signature {field} is by {signer} (OrganId {organ_id}), not by the sending agency "
    "{sender}.",
    "Chữ ký số {field} trên tệp PDF là của {signer} (mã định danh {organ_id}), không phải của "
    "cơ quan gửi {sender}.",
)
PDF_UNSIGNED = FindingCode(
    "PdfUnsigned",
    Severity.INFO,
    "The PDF carries no digital signature: it is for reference only.",
    "Tệp PDF không có chữ ký số: chỉ có giá trị tham khảo.",
)
PDF_REVOCATION_UNKNOWN = FindingCode(
    "PdfRevocationUnknown",
    Severity.INFO,
    "PDF signature {field}: neither a CRL nor an OCSP answer covers the certificate of {signer}; "
    "revocation not checked.",
    "Chữ ký số {field} trên tệp PDF: không có danh sách thu hồi (CRL) hoặc phản hồi OCSP cho "
    "chứng thư số của {signer}; chưa kiểm tra được tình trạng thu hồi.",
)
PDF_MODIFIED_AFTER_SIGNING = FindingCode(
    "PdfModifiedAfterSigning",
    Severity.WARNING,
    "PDF signature {field} by {signer}: the document was changed after signing beyond "
    "allowed updates ({level}).",
    "Chữ ký số {field} của {signer}: tài liệu đã bị sửa đổi sau khi ký, vượt quá các cập nhật "
    "được phép ({level}).",
)
PDF_JUDGED_AT_TIMESTAMP = FindingCode(
    "PdfJudgedAtTimestamp",
    Severity.INFO,
    "PDF signature {field} by {signer} is judged at its trusted timestamp {at} "
    "(time-stamping authority {tsa}).",
    "Chữ ký số {field} của {signer} được xét tại thời điểm của dấu thời gian tin cậy {at} "
    "(đơn vị cấp dấu thời gian {tsa}).",
)
PDF_TIMESTAMP_UNTRUSTED = FindingCode(
    "PdfTimestampUntrusted",
    Severity.WARNING,
    "PDF signature {field}: its timestamp token is {state}; the signature is judged at the "
    "validation time instead.",
    "Chữ ký số {field} trên tệp PDF: dấu thời gian {state_vi}; chữ ký được xét tại thời điểm "
    "kiểm tra.",
)
PDF_UNREADABLE = FindingCode(
    "PdfUnreadable",
    Severity.WARNING,
    "The PDF's signatures cannot be read ({reason}): it is for reference only.",
    "Không đọc được chữ ký số của tệp PDF ({reason}): chỉ có giá trị tham khảo.",
)
PDF_TOO_LARGE_TO_VALIDATE = FindingCode(
    "PdfTooLargeToValidate",
    Severity.WARNING,
    "The PDF ({size} bytes) is over the {limit}-byte limit for signature validation: "
    "it is for reference only.",
    "Tệp PDF ({size} byte) vượt giới hạn {limit} byte để kiểm tra chữ ký số: chỉ có giá trị "
    "tham khảo.",
)


class Legality(enum.Enum):
    LEGAL = "legal"
    REFERENCE_ONLY = "reference-only"
    BROKEN = "broken"


class ChainState(enum.Enum):
    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    UNVERIFIABLE = "unverifiable"


class Revocation(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # no usable CRL or OCSP answer for the signer was given


class Timestamp(enum.Enum):
    NONE = "none"  # no signature timestamp token
    TRUSTED = "trusted"  # intact, from a time-stamping authority that chains to the trust
    UNTRUSTED = "untrusted"  # intact, but its authority is not trusted
    INVALID = "invalid"  # does not match the signature it stamps


class Role(enum.Enum):
    SEAL = "seal"
    PERSON = "person"


class Coverage(enum.Enum):
    ENTIRE_DOCUMENT = "entire document"
    LATER_REVISIONS_ADDED = "later revisions added"
    PARTIAL = "partial"  # the byte range does not reach the end of its revision


# Changes after a signature that keep it meaningful: further signatures and form filling.
_ALLOWED_LEVELS = (
    ModificationLevel.NONE,
    ModificationLevel.LTA_UPDATES,
    ModificationLevel.FORM_FILLING,
)


@attrs.frozen
class PdfSignature:
    field_name: str
    signer: SignerIdentity
    organization: str | None
    organ_id: str | None
    signing_time: datetime.datetime | None  # as the signer claims it, UTC
    intact: bool
    coverage: Coverage
    modification: str  # pyHanko's modification level after this signature, lower case
    allowed_updates_only: bool
    chain: ChainState
    chain_reason: Problem | None
    revocation: Revocation
    revoked_at: datetime.datetime | None
    role: Role
    by_sender: bool
    timestamp: Timestamp = Timestamp.NONE
    timestamped_at: datetime.datetime | None = None  # the token's time, UTC, when it has one
    tsa: str | None = None  # the time-stamping authority's subject
    judged_at: datetime.datetime | None = None  # the time the chain and revocation are judged at
    revocation_sources: tuple[str, ...] = ()  # "crl", "ocsp"
    revocation_problems: tuple[Problem, ...] = ()  # OCSP answers that could not be used
    ocsp_wanted: tuple[OcspQuery, ...] = attrs.field(default=(), repr=False)

    @property
    def counts_legally(self) -> bool:
        return (
            self.intact
            and self.chain is ChainState.TRUSTED
            and self.revocation is not Revocation.REVOKED
            and self.by_sender
            and self.allowed_updates_only
        )

    def to_json(self) -> dict[str, object]:
        return {
            "field": self.field_name,
            "signer": self.signer.to_json(),
            "organization": self.organization,
            "organ_id": self.organ_id,
            "role": self.role.value,
            "by_sender": self.by_sender,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "intact": self.intact,
            "coverage": self.coverage.value,
            "modification": self.modification,
            "chain": self.chain.value,
            "chain_reason": self.chain_reason.en if self.chain_reason else None,
            "revocation": self.revocation.value,
            "revocation_sources": list(self.revocation_sources),
            "timestamp": {
                "state": self.timestamp.value,
                "at": self.timestamped_at.isoformat() if self.timestamped_at else None,
                "tsa": self.tsa,
            },
            "judged_at": self.judged_at.isoformat() if self.judged_at else None,
            "counts_legally": self.counts_legally,
        }


@attrs.frozen
class PdfVerdict:
    signatures: tuple[PdfSignature, ...]
    legality: Legality
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "legality": self.legality.value,
            "signatures": [s.to_json() for s in self.signatures],
        }


def validate_pdf(
    data: bytes,
    *,
    trust: Trust,
    crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp: Sequence[OcspAnswer] = (),
    now: datetime.datetime,
    sender_organ_id: str | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    path: str | None = None,
) -> PdfVerdict:
    """Every signature of the PDF `data` and the legal-validity verdict. `now` must be aware.

    Blocking CPU work (run it in a thread from a reactor); pyHanko's synchronous entry point runs
    its own asyncio loop, so do not call this from inside a running asyncio loop.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    now = now.astimezone(datetime.UTC)
    if len(data) > max_bytes:
        finding = PDF_TOO_LARGE_TO_VALIDATE(path, size=len(data), limit=max_bytes)
        return PdfVerdict((), Legality.REFERENCE_ONLY, (finding,))
    context = _context(trust, crls, now)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_regular_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        finding = PDF_UNREADABLE(path, reason=_short(exc))
        return PdfVerdict((), Legality.REFERENCE_ONLY, (finding,))
    if not embedded:
        return PdfVerdict((), Legality.REFERENCE_ONLY, (PDF_UNSIGNED(path),))
    signatures: list[PdfSignature] = []
    findings: list[Finding] = []
    evidence = _Evidence(trust, crls, ocsp, now)
    for sig in embedded:
        try:
            status = validate_pdf_signature(sig, context, context)
        except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
            findings.append(PDF_UNREADABLE(path, reason=_short(exc)))
            continue
        one = _signature(sig, status, evidence, sender_organ_id)
        signatures.append(one)
        findings.extend(_findings(one, sender_organ_id, path))
    if any(not s.intact for s in signatures):
        legality = Legality.BROKEN
    elif any(s.counts_legally for s in signatures):
        legality = Legality.LEGAL
    else:
        legality = Legality.REFERENCE_ONLY
    return PdfVerdict(tuple(signatures), legality, tuple(findings))


def _context(
    trust: Trust, crls: Sequence[x509.CertificateRevocationList], moment: datetime.datetime
) -> ValidationContext:
    return ValidationContext(
        trust_roots=[_asn1(c) for c in trust.roots],
        other_certs=[_asn1(c) for c in trust.intermediates],
        crls=[c.public_bytes(Encoding.DER) for c in crls],
        allow_fetching=False,
        moment=moment,
        revocation_mode="soft-fail",
    )


@attrs.frozen
class _Evidence:
    """What one validation judges signatures against."""

    trust: Trust
    crls: Sequence[x509.CertificateRevocationList]
    ocsp: Sequence[OcspAnswer]
    now: datetime.datetime


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _crypto(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _signature(
    sig: EmbeddedPdfSignature,
    status: object,
    evidence: _Evidence,
    sender_organ_id: str | None,
) -> PdfSignature:
    # pyHanko's objects are only partly typed; read them through getattr in one place.
    trust = evidence.trust
    stamp, stamped_at, tsa = _timestamp(status)
    at = evidence.now
    if stamp is Timestamp.TRUSTED and stamped_at is not None and stamped_at < evidence.now:
        # The signer is judged as it stood when the token proves the signature existed.
        at = stamped_at
        status = validate_pdf_signature(
            sig, _context(trust, evidence.crls, at), _context(trust, evidence.crls, evidence.now)
        )
    leaf = _crypto(getattr(status, "signing_cert"))  # noqa: B009
    embedded = [_crypto(c) for c in getattr(sig, "other_embedded_certs", ())]
    identity = SignerIdentity.from_certificate(leaf)
    intact = bool(getattr(status, "intact", False)) and bool(getattr(status, "valid", False))
    covered = getattr(status, "coverage", None)
    if covered == SignatureCoverageLevel.ENTIRE_FILE:
        coverage = Coverage.ENTIRE_DOCUMENT
    elif covered == SignatureCoverageLevel.ENTIRE_REVISION:
        coverage = Coverage.LATER_REVISIONS_ADDED
    else:
        coverage = Coverage.PARTIAL
    level = getattr(status, "modification_level", None)
    allowed = (
        coverage is not Coverage.PARTIAL
        and level in _ALLOWED_LEVELS
        and getattr(status, "docmdp_ok", None) is not False
    )
    chain, reason = _chain(status, leaf, embedded, trust, at)
    checked = _revocation(leaf, embedded, evidence, at, trusted=chain is ChainState.TRUSTED)
    revocation, revoked_at = checked.state, checked.revoked_at
    if getattr(status, "revoked", False):
        revocation = Revocation.REVOKED
    organ_id = organ_id_of(leaf.subject)
    reported = getattr(status, "signer_reported_dt", None)
    return PdfSignature(
        field_name=str(getattr(sig, "field_name", "")),
        signer=identity,
        organization=identity.organization,
        organ_id=organ_id,
        signing_time=reported.astimezone(datetime.UTC) if reported is not None else None,
        intact=intact,
        coverage=coverage,
        modification=level.name.lower() if level is not None else "unknown",
        allowed_updates_only=allowed,
        chain=chain,
        chain_reason=reason,
        revocation=revocation,
        revoked_at=revoked_at,
        role=_role(leaf.subject),
        by_sender=sender_organ_id is not None and organ_id == sender_organ_id,
        timestamp=stamp,
        timestamped_at=stamped_at,
        tsa=tsa,
        judged_at=at,
        revocation_sources=checked.sources,
        revocation_problems=checked.problems,
        ocsp_wanted=checked.wanted,
    )


def _timestamp(status: object) -> tuple[Timestamp, datetime.datetime | None, str | None]:
    token = getattr(status, "timestamp_validity", None)
    if token is None:
        return Timestamp.NONE, None, None
    when = getattr(token, "timestamp", None)
    stamped_at = when.astimezone(datetime.UTC) if isinstance(when, datetime.datetime) else None
    tsa = None
    signing_cert = getattr(token, "signing_cert", None)
    if signing_cert is not None:
        tsa = SignerIdentity.from_certificate(_crypto(signing_cert)).subject
    if not (getattr(token, "intact", False) and getattr(token, "valid", False)):
        return Timestamp.INVALID, stamped_at, tsa
    if not getattr(token, "trusted", False):
        return Timestamp.UNTRUSTED, stamped_at, tsa
    return Timestamp.TRUSTED, stamped_at, tsa


def _chain(
    status: object,
    leaf: x509.Certificate,
    embedded: Iterable[x509.Certificate],
    trust: Trust,
    now: datetime.datetime,
) -> tuple[ChainState, Problem | None]:
    if getattr(status, "trusted", False):
        return ChainState.TRUSTED, None
    # pyHanko said no; our own path builder words the reason in both languages.
    built = build_chain(leaf, embedded, trust, now)
    indic = getattr(status, "trust_problem_indic", None)
    reason = built if isinstance(built, Problem) else None
    if reason is None:
        name = indic.name if indic is not None else "unknown"
        reason = Problem(f"pyHanko: {name}", f"pyHanko: {name}")
    if now > leaf.not_valid_after_utc:
        return ChainState.EXPIRED, reason
    if now < leaf.not_valid_before_utc:
        return ChainState.NOT_YET_VALID, reason
    if indic is AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND or (
        isinstance(built, Problem) and built.en.startswith("no chain")
    ):
        return ChainState.UNTRUSTED, reason
    return ChainState.UNVERIFIABLE, reason


@attrs.frozen
class _Checked:
    state: Revocation
    revoked_at: datetime.datetime | None = None
    sources: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    wanted: tuple[OcspQuery, ...] = ()


def _revocation(
    leaf: x509.Certificate,
    embedded: Iterable[x509.Certificate],
    evidence: _Evidence,
    at: datetime.datetime,
    *,
    trusted: bool,
) -> _Checked:
    # The signer's own status only (pyHanko's chain is not ours to walk): every certificate that
    # could have issued it is tried, as a renewed CA keeps its name under a new key. Only a
    # trusted issuer's responder is worth asking (and only it could vouch for its word).
    trust = evidence.trust
    issuers = [
        c for c in (*trust.intermediates, *trust.roots, *embedded) if c.subject == leaf.issuer
    ]
    results = [
        revocation((leaf, issuer), evidence.crls, evidence.now, ocsp=evidence.ocsp, at=at)
        for issuer in issuers
    ]
    sources = tuple(dict.fromkeys(s.value for r in results for s in r.sources))
    problems = tuple(dict.fromkeys(p for r in results for p in r.ocsp_problems))
    for result in results:
        if result.state is RevocationState.REVOKED:
            return _Checked(Revocation.REVOKED, result.revoked_at, sources, problems)
    if any(result.state is RevocationState.GOOD for result in results):
        return _Checked(Revocation.GOOD, None, sources, problems)
    wanted = tuple({q.key: q for r in results for q in r.wanted}.values()) if trusted else ()
    return _Checked(Revocation.UNKNOWN, None, sources, problems, wanted)


def _role(subject: x509.Name) -> Role:
    if subject.get_attributes_for_oid(x509.NameOID.TITLE):
        return Role.PERSON
    common = [a.value for a in subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    orgs = [a.value for a in subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)]
    if common and not set(common) & set(orgs):
        return Role.PERSON
    return Role.SEAL


_TIMESTAMP_STATES = {
    Timestamp.UNTRUSTED: (
        "not from a trusted authority",
        "không do đơn vị cấp dấu thời gian tin cậy cấp",
    ),
    Timestamp.INVALID: ("broken (it does not match the signature)", "không khớp với chữ ký"),
}


def _timestamp_findings(one: PdfSignature, signer: str, path: str | None) -> list[Finding]:
    field = one.field_name
    if one.timestamp is Timestamp.TRUSTED and one.timestamped_at is not None:
        at = one.timestamped_at.isoformat(timespec="seconds")
        return [PDF_JUDGED_AT_TIMESTAMP(path, field=field, signer=signer, at=at, tsa=one.tsa)]
    if one.timestamp in _TIMESTAMP_STATES:
        state, vi = _TIMESTAMP_STATES[one.timestamp]
        return [PDF_TIMESTAMP_UNTRUSTED(path, field=field, state=state, state_vi=vi)]
    return []


def _findings(one: PdfSignature, sender: str | None, path: str | None) -> list[Finding]:
    signer = one.signer.common_name or one.signer.subject
    field = one.field_name
    out: list[Finding] = []
    if not one.intact:
        out.append(
            PDF_SIGNATURE_BROKEN(
                path,
                field=field,
                signer=signer,
                reason="the signed bytes no longer match the signature",
                reason_vi="các byte đã ký không còn khớp với chữ ký",
            )
        )
        return out
    if one.chain in (ChainState.EXPIRED, ChainState.NOT_YET_VALID):
        reason = one.chain_reason or Problem(one.chain.value, one.chain.value)
        out.append(
            PDF_SIGNER_EXPIRED(
                path, field=field, signer=signer, reason=reason.en, reason_vi=reason.vi
            )
        )
    elif one.chain is not ChainState.TRUSTED:
        reason = one.chain_reason or Problem(one.chain.value, one.chain.value)
        out.append(
            PDF_SIGNER_UNTRUSTED(
                path, field=field, signer=signer, reason=reason.en, reason_vi=reason.vi
            )
        )
    if one.revocation is Revocation.REVOKED:
        at = one.revoked_at.isoformat(timespec="seconds") if one.revoked_at else "?"
        out.append(PDF_SIGNER_REVOKED(path, field=field, signer=signer, revoked_at=at))
    elif one.revocation is Revocation.UNKNOWN:
        out.append(PDF_REVOCATION_UNKNOWN(path, field=field, signer=signer))
    for problem in one.revocation_problems:
        out.append(OCSP_UNAVAILABLE(path, detail=problem.en, detail_vi=problem.vi))
    out.extend(_timestamp_findings(one, signer, path))
    if not one.by_sender:
        out.append(
            PDF_NOT_BY_SENDER(
                path, field=field, signer=signer, organ_id=one.organ_id or "-", sender=sender or "-"
            )
        )
    if not one.allowed_updates_only:
        out.append(
            PDF_MODIFIED_AFTER_SIGNING(path, field=field, signer=signer, level=one.modification)
        )
    return out
