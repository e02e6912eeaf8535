"""One verdict over one edXML document: read, schema, rules, text, attachments, signature.

This is what a careful clerk does with a validation tool, in the order the gateway's inbound
pipeline will do it. `examine()` never raises for a document it could read; bytes it could not
read at all (hostile, malformed, not edXML, too large) are a report with `refusal` set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs
from cryptography import x509

from edxml import attachments, pdfsig, reader, rules, schema, signature, text
from edxml.errors import EdxmlError
from edxml.filetypes import FileKind
from edxml.findings import Finding, FindingCode, Severity
from edxml.model import VN_TZ, Envelope, Organization, StatusPacket
from edxml.ocsp import CertKey, OcspAnswer, OcspQuery
from edxml.xmlsafe import DEFAULT_LIMITS, Limits

# Real senders write the SDK's elements in other orders (Bkav puts DocumentId after To) and
# the tolerant reader reads them all; only where the strict profile is asked for (our own
# output, a route that demands it) does a deviation from our XSD refuse the document.
SCHEMA_DEVIATION = FindingCode(
    "SchemaDeviation",
    Severity.WARNING,
    "Deviates from the strict edXML schema (read tolerantly): {detail}",
    "Lệch so với lược đồ edXML chặt chẽ (đã đọc theo chế độ dung thứ): {detail}",
)


def _schema_findings(findings: Iterable[Finding], strict: bool) -> list[Finding]:
    if strict:
        return list(findings)
    return [
        SCHEMA_DEVIATION(f.path, detail=f.params.get("message", f.message_en)) for f in findings
    ]


@attrs.frozen
class Refusal:
    code: str
    message_en: str
    message_vi: str
    fault: str

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Report:
    size: int
    document: Envelope | StatusPacket | None = None
    findings: tuple[Finding, ...] = ()
    attachments: tuple[attachments.AttachmentVerdict, ...] = ()
    signature: signature.SignatureVerdict | None = None
    refusal: Refusal | None = None
    pdfs: tuple[tuple[str, pdfsig.PdfVerdict], ...] = ()  # (content_id, verdict) per PDF

    @property
    def legality(self) -> pdfsig.Legality | None:
        """R5 for the whole document: broken if any PDF signature is broken, legal if a PDF is
        signed (intact, trusted, not revoked) by the sending agency or a person of it, else
        reference only. None for a status packet or unreadable bytes."""
        if not isinstance(self.document, Envelope):
            return None
        found = {v.legality for _, v in self.pdfs}
        for verdict in (pdfsig.Legality.BROKEN, pdfsig.Legality.LEGAL):
            if verdict in found:
                return verdict
        return pdfsig.Legality.REFERENCE_ONLY

    @property
    def ocsp_queries(self) -> tuple[OcspQuery, ...]:
        """Certificates of trusted chains (the envelope's signer and its CAs, each PDF signer)
        whose revocation no evidence given settled and whose OCSP responder could be asked:
        a caller that may reach the network asks and examines again with the answers."""
        wanted: dict[CertKey, OcspQuery] = {}
        if self.signature is not None:
            wanted.update((q.key, q) for q in self.signature.ocsp_wanted)
        for _, pdf in self.pdfs:
            for one in pdf.signatures:
                wanted.update((q.key, q) for q in one.ocsp_wanted)
        return tuple(wanted.values())

    @property
    def kind(self) -> str:
        return self.document.kind if self.document is not None else "unknown"

    @property
    def acceptable(self) -> bool:
        return self.refusal is None and not any(f.is_error for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return _report_json(self)


def _dedupe(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding per fact: exact repeats go, and the reader's generic MissingElement gives
    way to a rule's more specific error at the same path (OrganIdMissing, DocumentIdMissing)."""
    items = list(findings)
    specific = {f.path for f in items if f.is_error and f.code != "MissingElement"}
    seen: set[tuple[str, str | None, str]] = set()
    out = []
    for f in items:
        key = (f.code, f.path, f.message_en)
        if key in seen or (f.code == "MissingElement" and f.path in specific):
            continue
        seen.add(key)
        out.append(f)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted(out, key=lambda f: order[f.severity]))


def examine(
    data: bytes,
    *,
    trust: signature.Trust | None = None,
    weak: signature.WeakPolicy = signature.WeakPolicy.WARN,
    limits: Limits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
    strict_schema: bool = False,
    crls: tuple[x509.CertificateRevocationList, ...] = (),
    ocsp: tuple[OcspAnswer, ...] = (),
) -> Report:
    """Everything the library can say about `data`; `strict_schema` makes XSD deviations
    refusals instead of warnings. Revocation is judged from `crls` and the `ocsp` answers only
    (see `Report.ocsp_queries` for what else could be asked)."""
    try:
        result = reader.read(data, limits=limits)
    except EdxmlError as exc:
        return Report(
            size=len(data),
            refusal=Refusal(exc.code, exc.message_en, exc.message_vi, exc.fault.value),
        )
    doc = result.document
    found: list[Finding] = list(result.findings)
    found += _schema_findings(
        schema.validate(result.root if result.root is not None else data, doc.kind), strict_schema
    )
    found += rules.check(doc, now=now)
    found += text.scan(doc)
    verdicts: tuple[attachments.AttachmentVerdict, ...] = ()
    pdfs: tuple[tuple[str, pdfsig.PdfVerdict], ...] = ()
    if isinstance(doc, Envelope):
        verdicts = tuple(
            attachments.analyse(att, decoded)
            for att, decoded in zip(doc.attachments, result.decoded, strict=True)
        )
        for v in verdicts:
            found += v.findings
        moment = now or dt.datetime.now(dt.UTC)
        pdfs = tuple(
            (
                v.content_id,
                pdfsig.validate_pdf(
                    v.data,
                    trust=trust or signature.Trust(roots=()),
                    crls=crls,
                    ocsp=ocsp,
                    now=moment,
                    sender_organ_id=doc.header.from_.organ_id,
                    path=f"/AttachmentEncoded/Attachment[ContentId='{v.content_id}']",
                ),
            )
            for v in verdicts
            if v.kind is FileKind.PDF and v.data is not None
        )
        for _, pdf in pdfs:
            found += pdf.findings
    if trust is not None:
        # The reader has just passed these bytes through the hardened parser with `limits`.
        sig = signature.verify(
            data, trust, weak=weak, now=now, crls=crls, ocsp=ocsp, limits=limits, gated=True
        )
    else:
        sig = signature.describe(data, limits=limits, gated=True)
    found += sig.findings
    return Report(
        size=len(data),
        document=doc,
        findings=_dedupe(found),
        attachments=verdicts,
        signature=sig,
        pdfs=pdfs,
    )


def _trace(doc: Envelope, report: Report) -> list[dict[str, Any]]:
    """The route so far; each hop says whether the sender's seal covers it (edxml.trace)."""
    traces = doc.trace.traces
    sig = report.signature
    intact = sig is not None and sig.covers_document
    unsigned = sig.hops_after_signing if sig is not None and intact else 0
    return [
        {
            "organ_id": t.organ_id,
            "timestamp": _instant(t.timestamp),
            "signed": intact and i < len(traces) - unsigned,
        }
        for i, t in enumerate(traces)
    ]


def _org(org: Organization) -> dict[str, str]:
    return {"organ_id": org.organ_id, "organ_name": org.organ_name}


def _report_json(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": report.kind,
        "acceptable": report.acceptable,
        "size": report.size,
    }
    if report.refusal is not None:
        out["refusal"] = report.refusal.to_json()
    doc = report.document
    if isinstance(doc, Envelope):
        h = doc.header
        out.update(
            document_id=h.document_id,
            from_=_org(h.from_),
            to=[_org(o) for o in h.to],
            code={"number": h.code.code_number, "notation": h.code.code_notation},
            promulgation_date=_date(h.promulgation_info.promulgation_date),
            subject=h.subject,
            document_type={"type": h.document_type.type, "name": h.document_type.type_name},
            priority={
                "code": int(h.other_info.priority),
                "label_vi": h.other_info.priority.label_vi,
            },
            business_type={
                "code": int(doc.business_type),
                "name": doc.business_type.name.lower(),
            },
            business_target=doc.trace.business.document_id or None,
            due_date=_date(h.due_date),
            response_for=[r.document_id for r in h.response_for],
            trace=_trace(doc, report),
        )
        pdf_of = dict(report.pdfs)
        out["attachments"] = [
            {**v.to_json(), "pdf": pdf_of[v.content_id].to_json()}
            if v.content_id in pdf_of
            else v.to_json()
            for v in report.attachments
        ]
        legality = report.legality
        out["legal_validity"] = legality.value if legality else None
    elif isinstance(doc, StatusPacket):
        out.update(
            document_id=doc.response_for.document_id,
            from_=_org(doc.from_),
            status={
                "code": doc.status_code.value,
                "label_vi": doc.status_code.label_vi,
                "label_en": doc.status_code.label_en,
            },
            description=doc.description,
            timestamp=_instant(doc.timestamp),
        )
    if "from_" in out:
        out["from"] = out.pop("from_")
    if report.signature is not None:
        out["signature"] = report.signature.to_json()
    out["findings"] = [f.to_json() for f in report.findings]
    return out


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _instant(value: dt.datetime | None) -> str | None:
    """ISO 8601 with +07:00 at the edges, whatever zone the value carries."""
    if value is None:
        return None
    return value.astimezone(VN_TZ).isoformat()
