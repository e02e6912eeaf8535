"""XML signatures (XMLDSig) of edXML envelopes: sign, verify against explicit trust, describe.

The envelope signature is transport-level (standards.md §2.6): ONE enveloped signature over the
whole document (Reference URI="", enveloped-signature transform, exclusive C14N, SHA-256), placed
as a child of edXMLHeader where `edXML:DigitalSignature` was. Verification accepts only that shape,
so that what was verified is the document itself: nothing a reader acts on can sit outside the
signed scope, and signature-wrapping (XSW) rearrangements fail either the shape checks or the
digest. `SignatureVerdict.signed_data` holds the canonical bytes the digest covered.

Signed XML is bytes in, bytes out: store and forward the exact bytes; any re-serialisation
(pretty-printing, dropping blank text) breaks the signature.

Trust is always explicit (an `edxml.certificates.Trust`, importable from here too): signxml's own
default is certifi's public WebPKI store, which must never decide who may sign an official
document. Revocation is checked by CRL against the CRLs the caller passes (nothing is fetched,
no OCSP): every certificate of the chain below the root against its issuer's CRL; a verdict
without a CRL for some issuer says which (RevocationNotChecked). Reading certificates,
the signer's identity and chain building live in `edxml.certificates`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import enum
import hmac
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
    digest_algorithm_implementations,
)
from signxml.processor import get_schema

from edxml import c14n, xmlsafe
from edxml.certificates import (
    Problem,
    SignerIdentity,
    Trust,
    as_certificates,
    build_chain,
    distinguished_name,
    load_certificate,
    pick_leaf,
    weak_key,
)
from edxml.codes import DSIG_NS, NS
from edxml.errors import EdxmlError, NotEdxml
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.ocsp import OCSP_UNAVAILABLE, OcspAnswer, OcspQuery
from edxml.paths import HEADER_PATH, element_path
from edxml.revocation import RevocationState, revocation
from edxml.trace import appended_hops

# Trust and SignerIdentity are re-exported: callers name them `signature.Trust` and so on.

# --- findings ---------------------------------------------------------------------------------

SIGNATURE_ABSENT = FindingCode(
    "SignatureAbsent",
    Severity.INFO,
    "The packet carries no XML signature",
    "Gói tin không có chữ ký số XML",
)
SIGNATURE_NAMESPACE_WRONG = FindingCode(
    "SignatureNamespaceWrong",
    Severity.ERROR,
    "The Signature element is in namespace '{namespace}', not XMLDSig ({expected}); "
    "it is not an XML signature and cannot be verified",
    "Phần tử Signature thuộc không gian tên '{namespace}', không phải XMLDSig ({expected}); "
    "đây không phải chữ ký số XML hợp lệ và không thể kiểm tra",
    Fault.SIGNATURE_INVALID,
)
CERTIFICATE_MALFORMED = FindingCode(
    "CertificateMalformed",
    Severity.ERROR,
    "X509Certificate number {index} in the signature cannot be read: {detail}",
    "Không đọc được chứng thư số thứ {index} (X509Certificate) trong chữ ký: {detail_vi}",
    Fault.SIGNATURE_INVALID,
)
SIGNATURE_MALFORMED = FindingCode(
    "SignatureMalformed",
    Severity.ERROR,
    "The signature cannot be processed: {detail}",
    "Không xử lý được chữ ký số: {detail_vi}",
    Fault.SIGNATURE_INVALID,
)
# Declared as a warning; under WeakPolicy.REJECT the same code is raised to an error.
SIGNATURE_WEAK_ALGORITHM = FindingCode(
    "SignatureWeakAlgorithm",
    Severity.WARNING,
    "The signature uses the weak algorithm {algorithm}",
    "Chữ ký số dùng thuật toán yếu, không còn an toàn: {algorithm}",
    Fault.SIGNATURE_INVALID,
)
SIGNATURE_SCOPE_INVALID = FindingCode(
    "SignatureScopeInvalid",
    Severity.ERROR,
    "The signature does not cover exactly the whole packet: {detail}",
    "Chữ ký số không bao trùm đúng và đủ toàn bộ gói tin: {detail_vi}",
    Fault.SIGNATURE_INVALID,
)
SIGNATURE_INVALID = FindingCode(
    "SignatureInvalid",
    Severity.ERROR,
    "The signature does not match the packet (altered after signing): {detail}",
    "Chữ ký số không khớp với nội dung gói tin (gói tin đã bị thay đổi sau khi ký): {detail_vi}",
    Fault.SIGNATURE_INVALID,
)
SIGNER_UNTRUSTED = FindingCode(
    "SignerUntrusted",
    Severity.ERROR,
    "The signer's certificate is not trusted: {detail}",
    "Chứng thư số của người ký không được tin cậy: {detail_vi}",
    Fault.UNTRUSTED_SIGNER,
)
REVOCATION_NOT_CHECKED = FindingCode(
    "RevocationNotChecked",
    Severity.INFO,
    "Certificate revocation (CRL/OCSP) was not checked: {detail}",
    "Chưa kiểm tra tình trạng thu hồi của chứng thư số (CRL/OCSP): {detail_vi}",
)
SIGNER_REVOKED = FindingCode(
    "SignerRevoked",
    Severity.ERROR,
    "The certificate {certificate} in the signer's chain was revoked at {revoked_at}"
    " (reason: {reason})",
    "Chứng thư số {certificate} trong chuỗi của người ký đã bị thu hồi lúc {revoked_at}"
    " (lý do: {reason})",
    Fault.UNTRUSTED_SIGNER,
)
REVOCATION_LIST_PROBLEM = FindingCode(
    "RevocationListProblem",
    Severity.WARNING,
    "A certificate revocation list (CRL) is not as it should be: {detail}",
    "Danh sách thu hồi chứng thư số (CRL) có vấn đề: {detail_vi}",
)
SIGNATURE_TRUST_NOT_CONFIGURED = FindingCode(
    "SignatureTrustNotConfigured",
    Severity.WARNING,
    "No trust anchors are configured: the signature was checked but the signer was not verified",
    "Chưa cấu hình chứng thư gốc tin cậy: đã kiểm tra chữ ký nhưng chưa xác minh được người ký",
)

# --- public values ------------------------------------------------------------------------------


class SignatureState(enum.Enum):
    VALID = "valid"  # intact, covers the whole packet, signer chains to the trust
    INVALID = "invalid"  # altered, wrong scope, refused algorithm, or untrusted/expired signer
    ABSENT = "absent"  # no signature at all (whether that is acceptable is the gateway's policy)
    UNVERIFIABLE = "unverifiable"  # cannot be checked: not XMLDSig, unreadable, or no trust anchors


class WeakPolicy(enum.Enum):
    """What a SHA-1 (or short RSA key) signature gets: a warning, or refusal."""

    WARN = "warn"
    REJECT = "reject"


@attrs.frozen
class SignatureVerdict:
    """What checking a packet's signature found. Only `valid` means: intact, whole, trusted."""

    state: SignatureState
    reason: str  # one English sentence; findings carry both languages
    signature_method: str | None = None  # algorithm URIs as written in the signature
    digest_method: str | None = None
    c14n_method: str | None = None
    weak: bool = False
    signer: SignerIdentity | None = None
    certificates: int = 0  # X509Certificate elements in KeyInfo
    findings: tuple[Finding, ...] = ()
    chain: tuple[str, ...] = ()  # subjects of the verified chain, signer first, root last
    covers_document: bool = False  # the checked signature's scope is the whole document
    # Trailing TraceHeaders relays appended after signing (edxml.trace): outside the seal.
    hops_after_signing: int = 0
    revocation_checked: bool = False
    revocation_sources: tuple[str, ...] = ()  # "crl", "ocsp": what the revocation verdict rests on
    # Certificates of the verified chain that an OCSP responder could still be asked about.
    ocsp_wanted: tuple[OcspQuery, ...] = attrs.field(default=(), repr=False)
    signed_data: bytes | None = attrs.field(default=None, repr=False)  # canonical signed bytes

    @property
    def is_valid(self) -> bool:
        return self.state is SignatureState.VALID

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.is_error)

    def to_json(self) -> dict[str, Any]:
        """Everything but the signed bytes, as JSON-ready values."""
        return {
            "state": self.state.value,
            "reason": self.reason,
            "signature_method": self.signature_method,
            "digest_method": self.digest_method,
            "c14n_method": self.c14n_method,
            "weak": self.weak,
            "signer": self.signer.to_json() if self.signer is not None else None,
            "certificates": self.certificates,
            "chain": list(self.chain),
            "covers_document": self.covers_document,
            "hops_after_signing": self.hops_after_signing,
            "revocation_checked": self.revocation_checked,
            "revocation_sources": list(self.revocation_sources),
            "findings": [f.to_json() for f in self.findings],
        }


class SigningError(EdxmlError):
    """The document cannot be signed as it is."""

    code = "SigningError"
    fault = Fault.RULE_VIOLATION
    vi = "Không ký được gói tin"


class AlreadySigned(SigningError):
    """The document already has a signature: re-signing is a caller bug, never done silently."""

    code = "AlreadySigned"
    vi = "Gói tin đã có chữ ký số; không ký lại"


# --- shared helpers -----------------------------------------------------------------------------

_ENVELOPE = f"{{{NS}}}edXMLEnvelope"
_HEADER = f"{{{NS}}}edXMLHeader"
_SLOT = f"{{{NS}}}DigitalSignature"
_ROOT = f"{{{NS}}}edXML"
_DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"
_EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
# The structure of ds:Signature is checked against XMLDSig's schema (signxml ships it).
_SIGNATURE_SCHEMA = get_schema("xmldsig1-schema.xsd")

# Verified canonical bytes are returned in the verdict up to this size; a bigger packet's are
# not held a second time (the caller keeps the exact received bytes, which is what matters).
SIGNED_DATA_MAX = 1 << 20

_SHA1_SIGNATURES = frozenset(m for m in SignatureMethod if "SHA1" in m.name)
_SHA1_DIGESTS = frozenset(d for d in DigestAlgorithm if "SHA1" in d.name)
_STRONG_SIGNATURES = frozenset(
    m for m in SignatureMethod if m not in _SHA1_SIGNATURES and not m.name.startswith("HMAC")
)
_STRONG_DIGESTS = frozenset(DigestAlgorithm) - _SHA1_DIGESTS
_C14N_URIS = frozenset(m.value for m in CanonicalizationMethod)
_ENVELOPED_URI = SignatureConstructionMethod.enveloped.value


class _Signer(XMLSigner):
    @property
    def parser(self) -> Any:
        return xmlsafe.reparser()


def _local(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _namespace(element: etree._Element) -> str | None:
    tag = element.tag
    return etree.QName(tag).namespace if isinstance(tag, str) else None


def _children(element: etree._Element, local: str) -> list[etree._Element]:
    return [child for child in element if _local(child) == local]


def _looks_like_signature(element: etree._Element) -> bool:
    if element.tag == _DS_SIGNATURE:
        return True
    return _local(element) == "Signature" and any(
        _local(child) in ("SignedInfo", "SignatureValue") for child in element
    )


def _signatures(root: etree._Element) -> list[etree._Element]:
    return [el for el in root.iter() if isinstance(el.tag, str) and _looks_like_signature(el)]


def _utc(moment: datetime.datetime | None) -> datetime.datetime:
    if moment is None:
        return datetime.datetime.now(datetime.UTC)
    if moment.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return moment.astimezone(datetime.UTC)


# --- signing ------------------------------------------------------------------------------------


def sign(
    data: bytes,
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    *,
    limits: xmlsafe.Limits = xmlsafe.DEFAULT_LIMITS,
) -> bytes:
    """Sign an edXML packet: one enveloped XMLDSig over the whole document, in edXMLHeader.

    `chain` is the signing certificate first, then the intermediates to ship in KeyInfo. The key
    is an object loaded once by the caller (loading a PEM key costs ~60 ms of RSA checks).
    The Signature replaces an empty `edXML:DigitalSignature` or is appended to edXMLHeader.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        method = SignatureMethod.RSA_SHA256
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        method = SignatureMethod.ECDSA_SHA256
    else:
        raise TypeError(f"only RSA and EC keys can sign, not {type(key).__name__}")
    certs = as_certificates(chain)
    if not certs:
        raise ValueError("chain must hold at least the signing certificate")
    if certs[0].public_key() != key.public_key():
        raise ValueError("the key does not belong to the first certificate of the chain")

    root = xmlsafe.parse(data, limits=limits)
    header = _header_of(root)
    present = _signatures(root)
    if present:
        raise AlreadySigned(f"the packet already has a signature at {element_path(present[0])}")
    slots = [child for child in header if child.tag == _SLOT]
    if len(slots) > 1:
        raise SigningError(f"{len(slots)} DigitalSignature elements in edXMLHeader")
    placeholder = etree.Element(_DS_SIGNATURE, {"Id": "placeholder"}, nsmap={"ds": DSIG_NS})
    if slots:
        slot = slots[0]
        if len(slot) or (slot.text or "").strip():
            raise AlreadySigned("edXML:DigitalSignature is not empty")
        placeholder.tail = slot.tail
        header.replace(slot, placeholder)
    else:
        header.append(placeholder)

    signer = _Signer(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(root, key=key, cert=list(certs))
    references = signed.findall(
        f".//{_DS_SIGNATURE}/{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}Reference"
    )
    if [ref.get("URI") for ref in references] != [""]:
        # signxml points the reference at an Id on the root element when there is one.
        raise SigningError("the root element carries an Id; the signature must cover URI=''")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(signed, encoding="UTF-8")


def _header_of(root: etree._Element) -> etree._Element:
    if root.tag != _ROOT:
        raise NotEdxml(f"root element is {root.tag!r}, not {_ROOT}")
    header = root.find(f"{_ENVELOPE}/{_HEADER}")
    if header is None:
        raise NotEdxml("no edXMLEnvelope/edXMLHeader to hold the signature")
    return header


# --- verification -------------------------------------------------------------------------------


def verify(
    data: bytes,
    trust: Trust,
    *,
    weak: WeakPolicy = WeakPolicy.WARN,
    now: datetime.datetime | None = None,
    limits: xmlsafe.Limits = xmlsafe.DEFAULT_LIMITS,
    crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp: Sequence[OcspAnswer] = (),
    gated: bool = False,
) -> SignatureVerdict:
    """Check the packet's signature against `trust`, `crls` and `ocsp` answers at `now` (default:
    the current time).

    Everything about the signature is in the verdict; a revoked certificate anywhere in the
    signer's chain makes it invalid (SignerRevoked). Certificates of a trusted chain that the
    evidence does not cover and whose responder could be asked are in `ocsp_wanted`. Raises only
    for bytes the hardened parser refuses (`edxml.errors.XMLRefused`) and for caller bugs (a naive
    `now`, trust not a Trust).
    `gated=True` only when these very bytes have just passed `xmlsafe.parse_stream` with
    `limits` (as `edxml.check.examine` does through the reader): the hardened pass is not repeated.
    """
    if not isinstance(trust, Trust):
        raise TypeError("trust must be an edxml.signature.Trust (explicit trust anchors)")
    tree = xmlsafe.faithful_tree(data, limits=limits, gated=gated)
    return _Examination(tree, weak, _utc(now), tuple(crls), tuple(ocsp)).run(trust)


def describe(
    data: bytes,
    *,
    weak: WeakPolicy = WeakPolicy.WARN,
    limits: xmlsafe.Limits = xmlsafe.DEFAULT_LIMITS,
    gated: bool = False,
) -> SignatureVerdict:
    """Inspect the signature without trust: algorithms, certificates, signer, integrity.

    A signature that is intact comes back `unverifiable` ("no trust anchors"): who signed it
    is only what the certificate claims. An altered or wrongly scoped one is still `invalid`.
    `gated` as for `verify`.
    """
    return _Examination(
        xmlsafe.faithful_tree(data, limits=limits, gated=gated), weak, _utc(None)
    ).run(None)


class _Examination:
    """One verification: collects findings and facts, then decides the state."""

    def __init__(
        self,
        root: etree._Element,
        weak: WeakPolicy,
        now: datetime.datetime,
        crls: tuple[x509.CertificateRevocationList, ...] = (),
        ocsp: tuple[OcspAnswer, ...] = (),
    ) -> None:
        self.root = root
        self.crls = crls
        self.ocsp = ocsp
        self.weak_policy = weak
        self.now = now
        self.findings: list[Finding] = []
        self.signature_method: str | None = None
        self.digest_method: str | None = None
        self.c14n_method: str | None = None
        self.weak = False
        self.certs: list[x509.Certificate] = []
        self.cert_count = 0
        self.leaf: x509.Certificate | None = None
        self.scope_broken = False
        self.unreadable = False
        self.hops_after_signing = 0

    # -- findings

    def _scope(self, path: str, text: Problem) -> None:
        self.scope_broken = True
        self.findings.append(SIGNATURE_SCOPE_INVALID(path=path, detail=text.en, detail_vi=text.vi))

    def _malformed(self, path: str, text: Problem) -> None:
        self.unreadable = True
        self.findings.append(SIGNATURE_MALFORMED(path=path, detail=text.en, detail_vi=text.vi))

    def _weak_algorithm(self, path: str, algorithm: str) -> None:
        self.weak = True
        finding = SIGNATURE_WEAK_ALGORITHM(path=path, algorithm=algorithm)
        if self.weak_policy is WeakPolicy.REJECT:
            finding = attrs.evolve(finding, severity=Severity.ERROR)
        self.findings.append(finding)

    def verdict(self, state: SignatureState, reason: str, **extra: Any) -> SignatureVerdict:
        return SignatureVerdict(
            state=state,
            reason=reason,
            signature_method=self.signature_method,
            digest_method=self.digest_method,
            c14n_method=self.c14n_method,
            weak=self.weak,
            signer=_identity(self.leaf),
            certificates=self.cert_count,
            findings=tuple(self.findings),
            hops_after_signing=self.hops_after_signing,
            **extra,
        )

    # -- the whole procedure

    def run(self, trust: Trust | None) -> SignatureVerdict:
        signatures = _signatures(self.root)
        if not signatures:
            return self._absent()
        signature = signatures[0]
        if len(signatures) > 1:
            self._scope(
                element_path(signatures[1]),
                Problem(
                    f"{len(signatures)} Signature elements; exactly one is allowed",
                    f"có {len(signatures)} phần tử Signature; chỉ được phép có đúng một",
                ),
            )
        if signature.tag != _DS_SIGNATURE:
            return self._wrong_namespace(signature)
        self._check_location(signature)
        self._read_signed_info(signature)
        self._check_unsigned_content(signature)
        self._read_certificates(signature)
        if self.scope_broken:
            return self.verdict(SignatureState.INVALID, "the signature does not cover the packet")
        if self.unreadable or self.leaf is None:
            return self.verdict(SignatureState.UNVERIFIABLE, "the signature cannot be processed")
        if self.weak and self.weak_policy is WeakPolicy.REJECT:
            return self.verdict(
                SignatureState.INVALID, "the signature uses a refused weak algorithm"
            )
        signed_data = self._check_integrity(self.leaf)
        if isinstance(signed_data, SignatureVerdict):
            return signed_data
        whole = {"covers_document": True, "signed_data": signed_data}
        if trust is None or not trust.roots:
            self.findings.append(SIGNATURE_TRUST_NOT_CONFIGURED(path=element_path(signature)))
            return self.verdict(
                SignatureState.UNVERIFIABLE,
                "no trust anchors: the signature is intact but the signer is not verified",
                **whole,
            )
        chain = build_chain(self.leaf, self.certs, trust, self.now)
        where = element_path(signature)
        if isinstance(chain, Problem):
            self.findings.append(
                REVOCATION_NOT_CHECKED(
                    path=where,
                    detail="the signer does not chain to a trusted root",
                    detail_vi="chứng thư của người ký không dẫn tới chứng thư gốc tin cậy",
                )
            )
            self.findings.append(SIGNER_UNTRUSTED(path=where, detail=chain.en, detail_vi=chain.vi))
            return self.verdict(SignatureState.INVALID, f"signer not trusted: {chain.en}", **whole)
        checked = revocation(chain, self.crls, self.now, ocsp=self.ocsp)
        for problem in checked.problems:
            self.findings.append(
                REVOCATION_LIST_PROBLEM(path=where, detail=problem.en, detail_vi=problem.vi)
            )
        for problem in checked.ocsp_problems:
            self.findings.append(
                OCSP_UNAVAILABLE(path=where, detail=problem.en, detail_vi=problem.vi)
            )
        trusted = {
            "chain": chain.subjects,
            "revocation_sources": tuple(s.value for s in checked.sources),
            "ocsp_wanted": checked.wanted,
        }
        if checked.state is RevocationState.REVOKED and checked.revoked_cert is not None:
            who = distinguished_name(checked.revoked_cert.subject)
            at = checked.revoked_at.isoformat(timespec="seconds") if checked.revoked_at else "?"
            self.findings.append(
                SIGNER_REVOKED(
                    path=where, certificate=who, revoked_at=at, reason=checked.reason or "-"
                )
            )
            return self.verdict(
                SignatureState.INVALID,
                f"signer revoked: {who} was revoked at {at}",
                revocation_checked=True,
                **trusted,
                **whole,
            )
        if checked.state is RevocationState.UNKNOWN:
            issuers = "; ".join(checked.missing)
            self.findings.append(
                REVOCATION_NOT_CHECKED(
                    path=where,
                    detail=f"neither a CRL nor an OCSP answer covers what {issuers} issued",
                    detail_vi=f"không có CRL hoặc phản hồi OCSP cho chứng thư do {issuers} cấp",
                )
            )
            return self.verdict(
                SignatureState.VALID,
                "the signature is valid and covers the whole packet; the signer chains to a"
                f" trusted root (revocation not checked: no CRL or OCSP answer for {issuers})",
                **trusted,
                **whole,
            )
        return self.verdict(
            SignatureState.VALID,
            "the signature is valid and covers the whole packet; the signer chains to a trusted"
            " root and no certificate of its chain is revoked",
            revocation_checked=True,
            **trusted,
            **whole,
        )

    def _absent(self) -> SignatureVerdict:
        for slot in self.root.iter(_SLOT):
            if len(slot) or (slot.text or "").strip():
                self._malformed(
                    element_path(slot),
                    Problem(
                        "DigitalSignature holds content that is not an XMLDSig Signature",
                        "DigitalSignature chứa nội dung không phải chữ ký XMLDSig",
                    ),
                )
                return self.verdict(
                    SignatureState.UNVERIFIABLE, "DigitalSignature holds no XML signature"
                )
        self.findings.append(SIGNATURE_ABSENT(path=HEADER_PATH))
        return self.verdict(SignatureState.ABSENT, "the packet is not signed")

    def _wrong_namespace(self, signature: etree._Element) -> SignatureVerdict:
        self.findings.append(
            SIGNATURE_NAMESPACE_WRONG(
                path=element_path(signature),
                namespace=_namespace(signature) or "",
                expected=DSIG_NS,
            )
        )
        # Described anyway, leniently, so that the report says what the sender meant to use.
        signed_info = _first(signature, "SignedInfo")
        if signed_info is not None:
            self.c14n_method = _algorithm(_first(signed_info, "CanonicalizationMethod"))
            self.signature_method = _algorithm(_first(signed_info, "SignatureMethod"))
            reference = _first(signed_info, "Reference")
            if reference is not None:
                self.digest_method = _algorithm(_first(reference, "DigestMethod"))
        self._judge_algorithms(element_path(signature))
        self._read_certificates(signature)
        if self.scope_broken:
            return self.verdict(SignatureState.INVALID, "the signature does not cover the packet")
        return self.verdict(
            SignatureState.UNVERIFIABLE, "the Signature element is not in the XMLDSig namespace"
        )

    # -- shape

    def _check_location(self, signature: etree._Element) -> None:
        parent = signature.getparent()
        envelope = parent.getparent() if parent is not None else None
        placed = (
            self.root.tag == _ROOT
            and parent is not None
            and parent.tag == _HEADER
            and envelope is not None
            and envelope.tag == _ENVELOPE
            and envelope.getparent() is self.root
        )
        if not placed:
            where = element_path(signature)
            self._scope(
                where,
                Problem(
                    f"the Signature is at {where}; it must be a child of {HEADER_PATH}",
                    f"chữ ký nằm ở {where}; phải là phần tử con của {HEADER_PATH}",
                ),
            )

    def _read_signed_info(self, signature: etree._Element) -> None:
        where = element_path(signature)
        signed_info = signature.find(f"{{{DSIG_NS}}}SignedInfo")
        if signed_info is None:
            self._malformed(where, Problem("no SignedInfo", "thiếu phần tử SignedInfo"))
            return
        self.c14n_method = _algorithm(signed_info.find(f"{{{DSIG_NS}}}CanonicalizationMethod"))
        self.signature_method = _algorithm(signed_info.find(f"{{{DSIG_NS}}}SignatureMethod"))
        references = signed_info.findall(f"{{{DSIG_NS}}}Reference")
        if len(references) != 1:
            self._scope(
                where,
                Problem(
                    f'{len(references)} References; exactly one (URI="") is allowed',
                    f'có {len(references)} phần tử Reference; chỉ được phép đúng một (URI="")',
                ),
            )
        if references:
            self.digest_method = _algorithm(references[0].find(f"{{{DSIG_NS}}}DigestMethod"))
        for reference in references:
            self._check_reference(reference)
        if self.c14n_method not in _C14N_URIS:
            self._malformed(where, _unsupported("CanonicalizationMethod", self.c14n_method))
        self._judge_algorithms(where)

    def _judge_algorithms(self, where: str) -> None:
        try:
            signature_method = SignatureMethod(self.signature_method)
        except ValueError:
            self._malformed(where, _unsupported("SignatureMethod", self.signature_method))
        else:
            if signature_method in _SHA1_SIGNATURES:
                self._weak_algorithm(where, signature_method.name.replace("_", "-"))
            elif signature_method not in _STRONG_SIGNATURES:
                self._malformed(where, _unsupported("SignatureMethod", self.signature_method))
        try:
            digest = DigestAlgorithm(self.digest_method)
        except ValueError:
            self._malformed(where, _unsupported("DigestMethod", self.digest_method))
        else:
            if digest in _SHA1_DIGESTS:
                self._weak_algorithm(where, digest.name.replace("_", "-"))

    def _check_reference(self, reference: etree._Element) -> None:
        where = element_path(reference)
        uri = reference.get("URI")
        if uri != "":
            shown = "no URI" if uri is None else f'URI="{uri}"'
            self._scope(
                where,
                Problem(
                    f'the Reference has {shown}; only URI="" (the whole packet) is allowed',
                    f'Reference có {shown}; chỉ chấp nhận URI="" (toàn bộ gói tin)',
                ),
            )
        transforms = reference.find(f"{{{DSIG_NS}}}Transforms")
        algorithms = [t.get("Algorithm") for t in (transforms if transforms is not None else ())]
        enveloped = algorithms.count(_ENVELOPED_URI)
        others = [a for a in algorithms if a != _ENVELOPED_URI and a not in _C14N_URIS]
        if enveloped != 1 or others or len(algorithms) - enveloped > 1:
            self._scope(
                where,
                Problem(
                    "the transforms must be the enveloped-signature transform and at most one "
                    f"canonicalization, not {algorithms}",
                    "các phép biến đổi phải là enveloped-signature và tối đa một phép chuẩn hóa, "
                    f"không phải {algorithms}",
                ),
            )

    def _check_unsigned_content(self, signature: etree._Element) -> None:
        # URI="" excludes the whole Signature from the digest: whatever sits in it is unsigned.
        for element in signature.iter():
            if not isinstance(element.tag, str):
                continue
            if element.tag == f"{{{DSIG_NS}}}Object" or _namespace(element) == NS:
                self._scope(
                    element_path(element),
                    Problem(
                        f"the Signature carries {_local(element)} content outside what it signs",
                        f"chữ ký chứa nội dung {_local(element)} nằm ngoài phạm vi được ký",
                    ),
                )
                return

    # -- certificates

    def _read_certificates(self, signature: etree._Element) -> None:
        texts = [
            el
            for el in signature.iter()
            if isinstance(el.tag, str) and _local(el) == "X509Certificate"
        ]
        self.cert_count = len(texts)
        if not texts:
            self._malformed(
                element_path(signature),
                Problem(
                    "KeyInfo carries no X509Certificate (X509SubjectName alone names no key)",
                    "KeyInfo không chứa X509Certificate (chỉ X509SubjectName thì không có khóa)",
                ),
            )
            return
        for index, element in enumerate(texts, start=1):
            loaded = load_certificate(element.text or "")
            if isinstance(loaded, Problem):
                self.unreadable = True
                self.findings.append(
                    CERTIFICATE_MALFORMED(
                        path=element_path(element),
                        index=index,
                        detail=loaded.en,
                        detail_vi=loaded.vi,
                    )
                )
            else:
                self.certs.append(loaded)
        if self.certs:
            self.leaf = pick_leaf(self.certs)
            weak = weak_key(self.leaf)
            if weak is not None:
                self._weak_algorithm(element_path(signature), weak)

    # -- cryptography

    def _check_integrity(self, leaf: x509.Certificate) -> bytes | SignatureVerdict | None:
        """SignatureValue over SignedInfo, then the document's digest: signed bytes or refusal.

        The signed bytes (canonical form) are kept only up to SIGNED_DATA_MAX; beyond, None.
        """
        where = f"{HEADER_PATH}/Signature"
        signature = next(el for el in self.root.iter(_DS_SIGNATURE))
        try:
            _SIGNATURE_SCHEMA.assertValid(signature)
            signed_info = _one(signature, "SignedInfo")
            reference = _one(signed_info, "Reference")
            method = SignatureMethod(self.signature_method)
            digest = DigestAlgorithm(self.digest_method)
            raw_signature = _base64(_one(signature, "SignatureValue"), "SignatureValue")
            expected = _base64(_one(reference, "DigestValue"), "DigestValue")
            signed_info_c14n = _canonical_signed_info(signed_info)
            reference_c14n = _reference_c14n(reference)
            key = leaf.public_key()
            check = _signature_check(method, key, raw_signature)
        except etree.DocumentInvalid as exc:
            self._malformed(
                where, Problem(f"not an XMLDSig Signature: {exc}", "cấu trúc chữ ký không hợp lệ")
            )
            return self.verdict(SignatureState.UNVERIFIABLE, "the signature cannot be processed")
        except (ValueError, etree.LxmlError) as exc:
            self._malformed(
                where, Problem(str(exc), f"cấu trúc chữ ký không hợp lệ ({type(exc).__name__})")
            )
            return self.verdict(SignatureState.UNVERIFIABLE, "the signature cannot be processed")
        if not check(signed_info_c14n):
            return self._altered(
                where,
                "Signature verification failed: the SignatureValue does"
                " not match SignedInfo under the certificate's key",
            )
        exclusive, prefixes = reference_c14n
        # The document as received first; then without the hops relays may have appended since
        # it was signed, the newest first (edxml.trace): each try is one canonical pass.
        hops = appended_hops(self.root)
        for count in range(len(hops) + 1):
            sink = _DigestSink(digest_algorithm_implementations[digest](), keep=SIGNED_DATA_MAX)
            c14n.write_document(
                self.root,
                sink,
                exclusive=exclusive,
                inclusive_prefixes=prefixes,
                exclude=(signature, *hops[:count]),
            )
            if hmac.compare_digest(sink.hash.finalize(), expected):
                self.hops_after_signing = count
                return sink.kept()
        return self._altered(where, 'Digest mismatch for the reference (URI="")')

    def _altered(self, where: str, detail: str) -> SignatureVerdict:
        self.findings.append(
            SIGNATURE_INVALID(path=where, detail=detail, detail_vi=_integrity_vi(detail))
        )
        return self.verdict(SignatureState.INVALID, "the packet was altered after signing")


class _DigestSink:
    """Where canonical bytes stream: a hash, and the first `keep` bytes if they are all there is."""

    def __init__(self, digest: hashes.HashAlgorithm, keep: int) -> None:
        self.hash = hashes.Hash(digest)
        self._keep = keep
        self._parts: list[bytes] | None = []
        self._size = 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self._size += len(data)
        if self._parts is not None:
            if self._size > self._keep:
                self._parts = None
            else:
                self._parts.append(data)

    def kept(self) -> bytes | None:
        return b"".join(self._parts) if self._parts is not None else None


def _one(parent: etree._Element, local: str) -> etree._Element:
    found = parent.find(f"{{{DSIG_NS}}}{local}")
    if found is None:  # the schema check makes this unreachable
        raise ValueError(f"no {local} in {_local(parent)}")
    return found


def _base64(element: etree._Element, what: str) -> bytes:
    text = "".join((element.text or "").split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None


def _prefix_list(method: etree._Element) -> list[str]:
    listed = method.find(f"{{{_EXC_C14N_NS}}}InclusiveNamespaces")
    return (listed.get("PrefixList") or "").split() if listed is not None else []


def _canonical_signed_info(signed_info: etree._Element) -> bytes:
    method = _one(signed_info, "CanonicalizationMethod")
    algorithm = CanonicalizationMethod(method.get("Algorithm"))
    exclusive = algorithm.value.startswith(_EXC_C14N_NS)
    return c14n.subtree(
        signed_info,
        exclusive=exclusive,
        with_comments=algorithm.value.endswith("#WithComments"),
        inclusive_prefixes=_prefix_list(method) if exclusive else None,
        version11=algorithm.value.startswith(CanonicalizationMethod.CANONICAL_XML_1_1.value),
    )


def _reference_c14n(reference: etree._Element) -> tuple[bool, list[str]]:
    """Exclusive or not, and the InclusiveNamespaces list, of the Reference's canonicalisation.

    Without a canonicalisation transform XMLDSig applies inclusive C14N 1.0. URI="" leaves out
    comments whatever the transform says, so "#WithComments" changes nothing here.
    """
    for transform in reference.iterfind(f"{{{DSIG_NS}}}Transforms/{{{DSIG_NS}}}Transform"):
        algorithm = transform.get("Algorithm") or ""
        if algorithm in _C14N_URIS:
            exclusive = algorithm.startswith(_EXC_C14N_NS)
            return exclusive, _prefix_list(transform) if exclusive else []
    return False, []


def _signature_check(
    method: SignatureMethod, key: PublicKeyTypes, raw: bytes
) -> Callable[[bytes], bool]:
    """Checks `raw` over given bytes with the certificate's key, as `method` says."""
    algorithm = digest_algorithm_implementations[method]()
    name = method.name
    if name.startswith("RSA_") or name.endswith("_RSA_MGF1"):
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"{name} needs an RSA key; the certificate holds another kind")
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if name.startswith("RSA_")
            else padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        )

        def check_rsa(data: bytes) -> bool:
            try:
                key.verify(raw, data, pad, algorithm)
            except InvalidSignature:
                return False
            return True

        return check_rsa
    if name.startswith("ECDSA_"):
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError(f"{name} needs an EC key; the certificate holds another kind")
        # XMLDSig writes r || s, each as long as the curve's order; cryptography wants DER.
        width = (key.key_size + 7) // 8
        if len(raw) != 2 * width:
            return lambda data: False
        der = encode_dss_signature(
            int.from_bytes(raw[:width], "big"), int.from_bytes(raw[width:], "big")
        )

        def check_ec(data: bytes) -> bool:
            try:
                key.verify(der, data, ec.ECDSA(algorithm))
            except InvalidSignature:
                return False
            return True

        return check_ec
    raise ValueError(f"unsupported SignatureMethod {method.value!r}")


def _first(element: etree._Element, local: str) -> etree._Element | None:
    found = _children(element, local)
    return found[0] if found else None


def _algorithm(element: etree._Element | None) -> str | None:
    return element.get("Algorithm") if element is not None else None


def _unsupported(what: str, uri: str | None) -> Problem:
    return Problem(f"unsupported {what} {uri!r}", f"không hỗ trợ thuật toán {what} {uri!r}")


def _identity(cert: x509.Certificate | None) -> SignerIdentity | None:
    if cert is None:
        return None
    try:
        return SignerIdentity.from_certificate(cert)
    except ValueError:  # a certificate whose names do not decode
        return None


def _integrity_vi(detail: str) -> str:
    if "Digest mismatch" in detail:
        return "giá trị băm của nội dung không khớp"
    return "giá trị chữ ký không khớp với khóa của chứng thư số"
