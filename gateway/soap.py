"""SOAP 1.1 and 1.2 framing of the two faces, by hand on lxml (design.md §6, floor 2).

This module knows SOAP and our contracts (schemas/office.wsdl|xsd, exchange.wsdl|xsd), not the
office system, the store or Twisted. A face does, per request:

    try:
        request = soap.parse_request(body, content_type, soap_action, limits=limits)
        soap.validate(request.body_element, Face.OFFICE)
        ... read values, do the work ...
        answer = soap.ok_response(request.version, soap.mark_received_response(Face.OFFICE, 3))
    except GatewayFault as refusal:
        answer = soap.fault_response(soap.version_of(content_type), refusal, Face.OFFICE)

Every parse goes through edxml.xmlsafe (no DTD, no entities, no network; size, depth and element
count bounded); any SOAP-level problem is a GatewayFault (a client fault, BadRequest or TooLarge).

Large base64 payloads (SendDocument/Envelope, Deliver/Package). For an envelope of E bytes the
request body is B ≈ 1.34 E. `parse_request(file, …, payload="{ns}Package")` reads the request
from a (spooled) file in pieces and has xmlsafe decode the payload element's base64 as it is
parsed: the text never exists, the bytes exist once (`SoapRequest.payload`), and the peak is
≈ E plus a piece. Given bytes and no `payload`, the base64 text sits in the parsed tree (libxml2
takes text nodes past its 10 MB limit through xmlsafe's SAX target) and `decode_base64_to()`
decodes it in slices into a sink and drops it from the tree: peak ≈ B (request bytes, if the
face still holds them) + B (the one Python str lxml hands out) + E in memory with
`decode_base64()`.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import attrs
from lxml import etree

from edxml import xmlsafe
from edxml.errors import EdxmlError, TooLarge
from edxml.findings import Finding, Severity
from edxml.model import VN_TZ
from edxml.schema import schema_dir
from edxml.xmlsafe import DEFAULT_LIMITS, Base64Decoder, BinarySink, Limits

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
OFFICE_NS = "urn:edxml-gateway:office:1"
EXCHANGE_NS = "urn:edxml-gateway:exchange:1"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"

# Slices of base64 text decoded at once: a multiple of 4 characters.
_B64_SLICE = 4 << 18
_PREFIX = re.compile(r"/[A-Za-z_][\w.-]*:")


class SoapVersion(enum.Enum):
    SOAP11 = "1.1"
    SOAP12 = "1.2"

    @property
    def namespace(self) -> str:
        return SOAP11_NS if self is SoapVersion.SOAP11 else SOAP12_NS

    @property
    def media_type(self) -> str:
        return "text/xml" if self is SoapVersion.SOAP11 else "application/soap+xml"

    @property
    def content_type(self) -> str:
        return self.media_type + "; charset=utf-8"


class Face(enum.Enum):
    """One of the two SOAP faces: its namespace and its contract files."""

    OFFICE = "office"
    EXCHANGE = "exchange"

    @property
    def namespace(self) -> str:
        return OFFICE_NS if self is Face.OFFICE else EXCHANGE_NS

    @property
    def xsd_name(self) -> str:
        return self.value + ".xsd"

    @property
    def wsdl_name(self) -> str:
        return self.value + ".wsdl"

    @property
    def operations(self) -> tuple[str, ...]:
        return OFFICE_OPERATIONS if self is Face.OFFICE else EXCHANGE_OPERATIONS

    def action(self, operation: str) -> str:
        """The soapAction (1.1) / action parameter (1.2) the WSDL declares for `operation`."""
        return f"{self.namespace}/{operation}"


OFFICE_OPERATIONS = (
    "SendDocument",
    "GetSendStatus",
    "ReceiveDocuments",
    "MarkReceived",
    "UpdateStatus",
    "ReceiveStatuses",
    "MarkStatusesReceived",
    "RecallDocument",
    "AnswerRecall",
    "GetDirectory",
    "IssueDocumentId",
)
EXCHANGE_OPERATIONS = ("Deliver",)


# --------------------------------------------------------------------------------- faults


class FaultCode(enum.Enum):
    """The codes of the contracts' FaultCode enumeration (design.md §6)."""

    DUPLICATE = "Duplicate"
    SCHEMA_INVALID = "SchemaInvalid"
    RULE_VIOLATION = "RuleViolation"
    SIGNATURE_INVALID = "SignatureInvalid"
    UNTRUSTED_SIGNER = "UntrustedSigner"
    SENDER_MISMATCH = "SenderMismatch"
    UNKNOWN_RECIPIENT = "UnknownRecipient"
    SECRET_DOCUMENT = "SecretDocument"
    UNSUPPORTED_ATTACHMENT = "UnsupportedAttachment"
    TOO_LARGE = "TooLarge"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    UNAVAILABLE = "Unavailable"
    NOT_FOUND = "NotFound"
    BAD_REQUEST = "BadRequest"

    @property
    def message_en(self) -> str:
        return _CODE_TEXT[self][0]

    @property
    def message_vi(self) -> str:
        return _CODE_TEXT[self][1]

    @property
    def retryable(self) -> bool:
        return self is FaultCode.UNAVAILABLE

    @property
    def by_receiver(self) -> bool:
        """The gateway's side failed (soap:Server / env:Receiver), not the request."""
        return self is FaultCode.UNAVAILABLE


_CODE_TEXT: dict[FaultCode, tuple[str, str]] = {
    FaultCode.DUPLICATE: (
        "Already received; this is the receipt of the first copy",
        "Gói tin đã được nhận trước đó; đây là biên nhận của lần nhận đầu tiên",
    ),
    FaultCode.SCHEMA_INVALID: (
        "The package is not valid against the edXML schema",
        "Gói tin không hợp lệ theo lược đồ edXML",
    ),
    FaultCode.RULE_VIOLATION: (
        "The package breaks a rule of QCVN 102:2016",
        "Gói tin vi phạm quy định của QCVN 102:2016",
    ),
    FaultCode.SIGNATURE_INVALID: (
        "The digital signature is missing, altered or invalid",
        "Chữ ký số không có, bị thay đổi hoặc không hợp lệ",
    ),
    FaultCode.UNTRUSTED_SIGNER: (
        "The signer's certificate is not trusted",
        "Chứng thư số của người ký không được tin cậy",
    ),
    FaultCode.SENDER_MISMATCH: (
        "The sender in the package does not match the signer or the credential",
        "Cơ quan gửi trong gói tin không khớp với người ký hoặc thông tin xác thực",
    ),
    FaultCode.UNKNOWN_RECIPIENT: (
        "A recipient is not known to this gateway",
        "Cơ quan nhận không có trong danh bạ của cổng",
    ),
    FaultCode.SECRET_DOCUMENT: (
        "Secret documents may not be exchanged electronically",
        "Văn bản mật không được trao đổi qua mạng",
    ),
    FaultCode.UNSUPPORTED_ATTACHMENT: (
        "An attachment has a format that is not accepted",
        "Tệp đính kèm có định dạng không được chấp nhận",
    ),
    FaultCode.TOO_LARGE: (
        "The request is larger than this gateway accepts",
        "Yêu cầu vượt quá kích thước cổng cho phép",
    ),
    FaultCode.UNAUTHORIZED: (
        "Authentication is required or failed",
        "Chưa xác thực hoặc xác thực không thành công",
    ),
    FaultCode.FORBIDDEN: (
        "This credential may not act for that agency",
        "Thông tin xác thực này không được phép thao tác cho cơ quan đó",
    ),
    FaultCode.UNAVAILABLE: (
        "The gateway cannot take the request now; try again later",
        "Cổng tạm thời không xử lý được yêu cầu; vui lòng thử lại sau",
    ),
    FaultCode.NOT_FOUND: (
        "No such message, document or status",
        "Không tìm thấy gói tin, văn bản hoặc trạng thái",
    ),
    FaultCode.BAD_REQUEST: (
        "The SOAP request is malformed or not valid against the contract",
        "Yêu cầu SOAP sai cú pháp hoặc không đúng đặc tả dịch vụ",
    ),
}


def _findings(items: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(items)


@attrs.frozen
class Receipt:
    """A node's receipt for a durably committed message (exchange Deliver, Duplicate faults)."""

    receipt_id: str
    message_id: str
    received_at: dt.datetime
    duplicate: bool = False


@attrs.frozen
class GatewayFault(Exception):
    """A typed refusal; raised inside, rendered by `fault()` as a SOAP Fault with our detail."""

    code: FaultCode
    message_en: str | None = None
    message_vi: str | None = None
    findings: tuple[Finding, ...] = attrs.field(default=(), converter=_findings)
    first_receipt: Receipt | None = None

    @property
    def text_en(self) -> str:
        return self.message_en or self.code.message_en

    @property
    def text_vi(self) -> str:
        return self.message_vi or self.code.message_vi

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    def __str__(self) -> str:
        return f"{self.code.value}: {self.text_en}"

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> GatewayFault:
        """The fault of the first refusing finding (its `fault`), carrying every finding."""
        items = tuple(findings)
        for finding in items:
            if finding.is_error and finding.fault is not None:
                code = FaultCode(finding.fault.value)
                return cls(code, finding.message_en, finding.message_vi, items)
        return cls(FaultCode.RULE_VIOLATION, findings=items)

    @classmethod
    def from_edxml_error(cls, error: EdxmlError) -> GatewayFault:
        """Bytes edxml could not read at all: TooLarge stays TooLarge, the rest is its fault."""
        code = FaultCode.TOO_LARGE if isinstance(error, TooLarge) else FaultCode(error.fault.value)
        return cls(code, error.message_en, error.message_vi)


def bad_request(en: str, vi: str, path: str | None = None) -> GatewayFault:
    findings: tuple[Finding, ...] = ()
    if path is not None:
        findings = (
            Finding(
                code="BadRequest", severity=Severity.ERROR, message_en=en, message_vi=vi, path=path
            ),
        )
    return GatewayFault(FaultCode.BAD_REQUEST, en, vi, findings)


# --------------------------------------------------------------------------------- requests


@attrs.frozen
class SoapRequest:
    version: SoapVersion
    operation: str  # local name of the single child of Body
    namespace: str | None  # its namespace
    body_element: etree._Element
    header_elements: tuple[etree._Element, ...] = ()
    action: str | None = None  # SOAPAction (1.1) or the action parameter (1.2), unquoted
    # The decoded bytes of the operation's `payload` child, when parse_request was asked to
    # stream it (its element then has no text); None when not asked or absent.
    payload: bytes | None = attrs.field(default=None, eq=False, repr=False)


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    media, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, sep, value = item.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), params


def version_of(content_type: str | None) -> SoapVersion:
    """The version to answer in, from the Content-Type alone (for faults before parsing)."""
    media, _ = _media_type(content_type)
    return SoapVersion.SOAP12 if media == "application/soap+xml" else SoapVersion.SOAP11


def _unquote(action: str | None) -> str | None:
    if action is None:
        return None
    action = action.strip()
    if len(action) >= 2 and action[0] == action[-1] == '"':
        action = action[1:-1]
    return action or None


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip() in {"1", "true"}


def parse_request(
    body: bytes | IO[bytes],
    content_type: str | None,
    soap_action: str | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
    understood_headers: frozenset[str] = frozenset(),
    payload: str | None = None,
) -> SoapRequest:
    """Frame a SOAP request: version from the Content-Type (text/xml → 1.1, application/soap+xml
    → 1.2; anything else is decided by the Envelope's namespace), the operation from the single
    element child of Body. A given action (1.1 SOAPAction header, 1.2 `action` parameter) must
    name that operation, as `{namespace}/{operation}` or the bare name; an empty or missing one
    is tolerated. A header with mustUnderstand whose `{ns}local` name is not in
    `understood_headers` is refused. Raises GatewayFault (BadRequest, TooLarge).

    `body` is the request's bytes or a binary file holding them (read from its start, in
    pieces). `payload`, a Clark name (`{namespace}Package`), names an xs:base64Binary child of
    the operation that is decoded while parsing into `SoapRequest.payload` instead of being kept
    as text; bad base64 there is BadRequest naming it."""
    media, params = _media_type(content_type)
    declared: SoapVersion | None = None
    if media == "text/xml":
        declared = SoapVersion.SOAP11
    elif media == "application/soap+xml":
        declared = SoapVersion.SOAP12
    elif media not in {"", "application/xml"}:
        raise bad_request(
            f"unsupported Content-Type {media!r}; SOAP takes text/xml or application/soap+xml",
            f"Content-Type {media!r} không được hỗ trợ; dùng text/xml hoặc application/soap+xml",
        )
    if isinstance(body, bytes):
        size = len(body)
    else:
        size = body.seek(0, 2)
        body.seek(0)
    if size > limits.max_bytes:
        raise GatewayFault(
            FaultCode.TOO_LARGE,
            f"{size} bytes exceeds the limit of {limits.max_bytes}",
            f"{size} byte vượt quá giới hạn {limits.max_bytes}",
        )
    decoded: dict[etree._Element, xmlsafe.DecodedBinary] = {}
    try:
        if isinstance(body, bytes) and payload is None:
            root = xmlsafe.parse(body, limits=limits)
        else:
            parsed = xmlsafe.parse_stream(
                body if isinstance(body, bytes) else xmlsafe.file_chunks(body),
                limits=limits,
                stream_binary=payload is not None,
                stream_names=(payload,) if payload is not None else (),
            )
            root, decoded = parsed.root, parsed.decoded
    except TooLarge as exc:
        raise GatewayFault(FaultCode.TOO_LARGE, exc.message_en, exc.message_vi) from None
    except EdxmlError as exc:
        raise bad_request(exc.message_en, exc.message_vi) from None

    qname = etree.QName(root)
    if qname.localname != "Envelope" or qname.namespace not in {SOAP11_NS, SOAP12_NS}:
        raise bad_request(
            "not a SOAP envelope (root must be Envelope in a SOAP 1.1 or 1.2 namespace)",
            "Không phải phong bì SOAP (phần tử gốc phải là Envelope của SOAP 1.1 hoặc 1.2)",
        )
    version = SoapVersion.SOAP11 if qname.namespace == SOAP11_NS else SoapVersion.SOAP12
    if declared is not None and declared is not version:
        raise bad_request(
            f"Content-Type says SOAP {declared.value} but the envelope is SOAP {version.value}",
            f"Content-Type là SOAP {declared.value} nhưng phong bì là SOAP {version.value}",
        )
    ns = version.namespace
    children = [c for c in root if isinstance(c.tag, str)]
    header: etree._Element | None = None
    if children and children[0].tag == f"{{{ns}}}Header":
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != f"{{{ns}}}Body":
        raise bad_request(
            "the envelope must hold an optional Header then one Body",
            "Phong bì phải gồm Header (không bắt buộc) và đúng một Body",
        )
    operations = [c for c in children[0] if isinstance(c.tag, str)]
    if len(operations) != 1:
        raise bad_request(
            f"Body must hold exactly one operation element, found {len(operations)}",
            f"Body phải chứa đúng một phần tử thao tác, có {len(operations)}",
        )
    operation = operations[0]
    op = etree.QName(operation)
    headers = tuple(c for c in header if isinstance(c.tag, str)) if header is not None else ()
    for element in headers:
        if (
            _is_true(element.get(f"{{{ns}}}mustUnderstand"))
            and etree.QName(element).text not in understood_headers
        ):
            name = etree.QName(element).text
            raise bad_request(
                f"header {name} must be understood and is not",
                f"Không xử lý được phần đầu bắt buộc {name}",
            )
    action = _unquote(soap_action if version is SoapVersion.SOAP11 else params.get("action"))
    if action is not None and action not in {op.localname, f"{op.namespace}/{op.localname}"}:
        raise bad_request(
            f"action {action!r} does not name the operation {op.localname}",
            f"action {action!r} không khớp với thao tác {op.localname}",
        )
    data: bytes | None = None
    if payload is not None:
        holder = operation.find(payload)
        binary = decoded.get(holder) if holder is not None else None
        if binary is not None and binary.error is not None:
            raise _bad_base64(etree.QName(payload).localname)
        data = binary.content if binary is not None else None
    return SoapRequest(version, op.localname, op.namespace, operation, headers, action, data)


# --------------------------------------------------------------------------------- schemas

_local = threading.local()


def contract_path(name: str) -> Path:
    """A file of our contracts (office.wsdl, exchange.xsd, …) beside the edXML schemas."""
    return schema_dir() / name


def _schema(face: Face) -> etree.XMLSchema:
    # lxml keeps the error log on the validator, so one per thread (as edxml.schema does).
    cache: dict[Face, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    if face not in cache:
        path = contract_path(face.xsd_name)
        document = etree.fromstring(
            path.read_bytes(), parser=xmlsafe.parser(), base_url=path.as_uri()
        )
        cache[face] = etree.XMLSchema(document)
    return cache[face]


def validate(element: etree._Element, face: Face, *, response: bool = False) -> None:
    """Check an operation element (request, or `response=True` for our own output) against
    the face's XSD. A bad request is BadRequest naming the path; a bad response is a bug of
    ours, raised as ValueError."""
    op = etree.QName(element)
    if op.namespace != face.namespace:
        if response:
            raise ValueError(f"{op.text} is not in {face.namespace}")
        raise bad_request(
            f"operation {op.localname} is not in the namespace {face.namespace}",
            f"Thao tác {op.localname} không thuộc không gian tên {face.namespace}",
            "/" + op.localname,
        )
    names = {name + "Response" if response else name for name in face.operations}
    if op.localname not in names:
        if response:
            raise ValueError(f"{op.localname} is no response of the {face.value} face")
        raise bad_request(
            f"unknown operation {op.localname}",
            f"Thao tác không tồn tại: {op.localname}",
            "/" + op.localname,
        )
    schema = _schema(face)
    # lxml validates a non-root element as the root of a fake document: no copy of a big payload.
    if schema.validate(element):
        return
    error = schema.error_log[0]
    path = _PREFIX.sub("/", error.path or "") or "/" + op.localname
    message = error.message.replace("{" + face.namespace + "}", "")
    if response:
        raise ValueError(f"invalid {op.localname} at {path}: {message}")
    raise bad_request(
        f"not valid against the {face.value} contract at {path}: {message}",
        f"Không đúng đặc tả dịch vụ tại {path}: {message}",
        path,
    )


# --------------------------------------------------------------------------------- responses


@attrs.frozen
class SoapResponse:
    """What the face writes: HTTP status, Content-Type and body."""

    status: int
    content_type: str
    body: bytes


def envelope(
    version: SoapVersion, body_element: etree._Element, headers: Iterable[etree._Element] = ()
) -> bytes:
    ns = version.namespace
    root = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    header_items = list(headers)
    if header_items:
        header = etree.SubElement(root, f"{{{ns}}}Header")
        header.extend(header_items)
    body = etree.SubElement(root, f"{{{ns}}}Body")
    body.append(body_element)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return data


def ok_response(version: SoapVersion, body_element: etree._Element) -> SoapResponse:
    return SoapResponse(200, version.content_type, envelope(version, body_element))


def http_status(version: SoapVersion, error: GatewayFault) -> int:
    """500 for every SOAP 1.1 fault (its HTTP binding); 1.2: 400 Sender, 500 Receiver."""
    if version is SoapVersion.SOAP11 or error.code.by_receiver:
        return 500
    return 400


def fault_detail(error: GatewayFault, face: Face) -> etree._Element:
    """The GatewayFault detail element, valid against the face's XSD."""
    m = _Maker(face)
    detail = m.el(
        "GatewayFault",
        m.el("Code", error.code.value),
        m.el("MessageEn", error.text_en),
        m.el("MessageVi", error.text_vi),
        m.el("Retryable", _bool(error.retryable)),
    )
    for finding in error.findings:
        item = m.sub(detail, "Finding")
        m.sub(item, "Code", finding.code)
        m.sub(item, "Severity", finding.severity.value)
        m.sub(item, "MessageEn", finding.message_en)
        m.sub(item, "MessageVi", finding.message_vi)
        if finding.path is not None:
            m.sub(item, "Path", finding.path)
    if error.first_receipt is not None:
        detail.append(_receipt(m, "FirstReceipt", error.first_receipt))
    return detail


def fault(version: SoapVersion, error: GatewayFault, face: Face = Face.OFFICE) -> bytes:
    """A SOAP Fault envelope: 1.1 faultcode soap:Client|soap:Server, faultstring (English),
    detail; 1.2 Code/Value env:Sender|env:Receiver with our code as Subcode, Reason/Text in
    English and Vietnamese, Detail. Both languages are always in the detail."""
    ns = version.namespace
    root = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns, "gw": face.namespace})
    body = etree.SubElement(root, f"{{{ns}}}Body")
    node = etree.SubElement(body, f"{{{ns}}}Fault")
    detail = fault_detail(error, face)
    if version is SoapVersion.SOAP11:
        etree.SubElement(node, "faultcode").text = (
            "soap:Server" if error.code.by_receiver else "soap:Client"
        )
        etree.SubElement(node, "faultstring").text = error.text_en
        etree.SubElement(node, "detail").append(detail)
    else:
        code = etree.SubElement(node, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = (
            "soap:Receiver" if error.code.by_receiver else "soap:Sender"
        )
        sub = etree.SubElement(code, f"{{{ns}}}Subcode")
        etree.SubElement(sub, f"{{{ns}}}Value").text = "gw:" + error.code.value
        reason = etree.SubElement(node, f"{{{ns}}}Reason")
        for lang, text in (("en", error.text_en), ("vi", error.text_vi)):
            item = etree.SubElement(reason, f"{{{ns}}}Text")
            item.set(XML_LANG, lang)
            item.text = text
        etree.SubElement(node, f"{{{ns}}}Detail").append(detail)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return data


def fault_response(version: SoapVersion, error: GatewayFault, face: Face) -> SoapResponse:
    return SoapResponse(
        http_status(version, error), version.content_type, fault(version, error, face)
    )


# --------------------------------------------------------------------------------- values


FRAMING_BYTES = 64 * 1024  # SOAP envelope, operation element and other fields around the payload


def request_limit(payload_bytes: int) -> int:
    """The largest SOAP request that can carry a payload of `payload_bytes` as base64."""
    return payload_bytes * 4 // 3 + FRAMING_BYTES


def format_time(value: dt.datetime) -> str:
    """xs:dateTime in Vietnam time with its offset, e.g. 2026-11-25T09:30:00+07:00."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: times must be timezone-aware")
    return value.astimezone(VN_TZ).isoformat()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def child(element: etree._Element, name: str) -> etree._Element | None:
    """The first child named `name` in the element's own namespace."""
    namespace = etree.QName(element).namespace
    return element.find(f"{{{namespace}}}{name}" if namespace else name)


def child_text(element: etree._Element, name: str) -> str | None:
    found = child(element, name)
    return None if found is None else (found.text or "")


def child_texts(element: etree._Element, name: str) -> list[str]:
    namespace = etree.QName(element).namespace
    return [c.text or "" for c in element.findall(f"{{{namespace}}}{name}")]


def _bad_base64(name: str) -> GatewayFault:
    return bad_request(
        f"{name} is not valid base64",
        f"{name} không phải dữ liệu base64 hợp lệ",
        "/" + name,
    )


def _decode_text(element: etree._Element, sink: BinarySink | None) -> bytes | None:
    text = element.text or ""
    # Dropped from the tree first: the Python str is then the only copy of the text.
    element.text = None
    decoder = Base64Decoder(sink)
    for start in range(0, len(text), _B64_SLICE):
        decoder.feed(text[start : start + _B64_SLICE])
    del text
    result = decoder.finish()
    if result.error is not None:
        raise _bad_base64(etree.QName(element).localname)
    return result.content


def decode_base64_to(element: etree._Element, sink: BinarySink) -> int:
    """Decode an xs:base64Binary element's text into `sink` in slices and drop the text from
    the tree; returns the decoded size. Bad base64 is BadRequest naming the element."""
    counter = _Counting(sink)
    _decode_text(element, counter)
    return counter.size


class _Counting:
    def __init__(self, sink: BinarySink) -> None:
        self.sink = sink
        self.size = 0

    def write(self, data: bytes, /) -> None:
        self.sink.write(data)
        self.size += len(data)


def decode_base64(element: etree._Element) -> bytes:
    """An xs:base64Binary element's bytes (its text is dropped from the tree)."""
    data = _decode_text(element, None)
    return data if data is not None else b""


# --------------------------------------------------------------------------------- builders
# Typed response elements: a face fills values, these write them in the contract's order.


class _Maker:
    def __init__(self, face: Face) -> None:
        self.ns = face.namespace
        self.nsmap = {"gw": face.namespace}

    def el(self, name: str, *content: etree._Element | str) -> etree._Element:
        element = etree.Element(f"{{{self.ns}}}{name}", nsmap=self.nsmap)
        for item in content:
            if isinstance(item, str):
                element.text = item
            else:
                element.append(item)
        return element

    def sub(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        element = etree.SubElement(parent, f"{{{self.ns}}}{name}")
        if text is not None:
            element.text = text
        return element

    def opt(self, parent: etree._Element, name: str, text: str | None) -> None:
        if text is not None:
            self.sub(parent, name, text)


@attrs.frozen
class Delivery:
    organ_id: str
    state: str  # queued | sending | retry_wait | sent | failed | cancelled


@attrs.frozen
class Staff:
    name: str | None = None
    department: str | None = None
    email: str | None = None
    mobile: str | None = None


@attrs.frozen
class StatusEntry:
    code: str  # "01" … "16"
    timestamp: dt.datetime
    reporter: str
    description: str | None = None
    staff: Staff | None = None


@attrs.frozen
class RecipientStatus:
    organ_id: str
    state: str
    sent_at: dt.datetime | None = None
    latest_status: str | None = None
    history: tuple[StatusEntry, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class Verdict:
    legal_validity: str  # valid | invalid | undetermined
    signature_state: str  # valid | invalid | absent | unverifiable (edxml SignatureState)
    finding_codes: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class InboundDocument:
    message_id: str
    kind: str  # new | revoke | update | replace
    envelope: bytes
    verdict: Verdict
    arrived_at: dt.datetime
    legal_received_at: dt.datetime | None = None
    document_id: str | None = None
    from_organ_id: str | None = None
    paper_required: bool = False  # R7
    due_date: dt.date | None = None  # R16
    target: str | None = None  # the DocumentId a revoke, update or replace is about (R14)
    in_reply_to: tuple[str, ...] = ()  # DocumentIds this one answers (R16)


@attrs.frozen
class StatusEvent:
    status_id: str
    document_id: str
    status: StatusEntry
    message_id: str | None = None


@attrs.frozen
class Agency:
    organ_id: str
    name: str
    route: str
    parent: str | None = None


def _deliveries(m: _Maker, parent: etree._Element, deliveries: Iterable[Delivery]) -> None:
    for delivery in deliveries:
        item = m.sub(parent, "Delivery")
        m.sub(item, "OrganId", delivery.organ_id)
        m.sub(item, "State", delivery.state)


def _staff(m: _Maker, parent: etree._Element, staff: Staff | None) -> None:
    if staff is None:
        return
    item = m.sub(parent, "Staff")
    m.opt(item, "Name", staff.name)
    m.opt(item, "Department", staff.department)
    m.opt(item, "Email", staff.email)
    m.opt(item, "Mobile", staff.mobile)


def _status(m: _Maker, parent: etree._Element, name: str, entry: StatusEntry) -> None:
    item = m.sub(parent, name)
    m.sub(item, "Code", entry.code)
    m.opt(item, "Description", entry.description)
    m.sub(item, "Timestamp", format_time(entry.timestamp))
    m.sub(item, "Reporter", entry.reporter)
    _staff(m, item, entry.staff)


def _receipt(m: _Maker, name: str, receipt: Receipt) -> etree._Element:
    item = m.el(name)
    m.sub(item, "ReceiptId", receipt.receipt_id)
    m.sub(item, "MessageId", receipt.message_id)
    m.sub(item, "ReceivedAt", format_time(receipt.received_at))
    m.sub(item, "Duplicate", _bool(receipt.duplicate))
    return item


def send_document_response(
    message_id: str, deliveries: Iterable[Delivery], findings: Iterable[str] = ()
) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("SendDocumentResponse")
    m.sub(root, "MessageId", message_id)
    _deliveries(m, root, deliveries)
    for code in findings:
        m.sub(root, "FindingCode", code)
    return root


def get_send_status_response(
    message_id: str, document_id: str, recipients: Iterable[RecipientStatus]
) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("GetSendStatusResponse")
    m.sub(root, "MessageId", message_id)
    m.sub(root, "DocumentId", document_id)
    for recipient in recipients:
        item = m.sub(root, "Recipient")
        m.sub(item, "OrganId", recipient.organ_id)
        m.sub(item, "State", recipient.state)
        if recipient.sent_at is not None:
            m.sub(item, "SentAt", format_time(recipient.sent_at))
        m.opt(item, "LatestStatus", recipient.latest_status)
        history = m.sub(item, "History")
        for entry in recipient.history:
            _status(m, history, "Status", entry)
    return root


def receive_documents_response(documents: Iterable[InboundDocument]) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("ReceiveDocumentsResponse")
    for doc in documents:
        item = m.sub(root, "Document")
        m.sub(item, "MessageId", doc.message_id)
        m.sub(item, "Kind", doc.kind)
        m.opt(item, "DocumentId", doc.document_id)
        m.opt(item, "From", doc.from_organ_id)
        m.sub(item, "Envelope", base64.b64encode(doc.envelope).decode("ascii"))
        verdict = m.sub(item, "Verdict")
        m.sub(verdict, "LegalValidity", doc.verdict.legal_validity)
        m.sub(verdict, "SignatureState", doc.verdict.signature_state)
        for code in doc.verdict.finding_codes:
            m.sub(verdict, "FindingCode", code)
        m.sub(item, "ArrivedAt", format_time(doc.arrived_at))
        if doc.legal_received_at is not None:
            m.sub(item, "LegalReceivedAt", format_time(doc.legal_received_at))
        m.sub(item, "PaperRequired", "true" if doc.paper_required else "false")
        if doc.due_date is not None:
            m.sub(item, "DueDate", doc.due_date.isoformat())
        m.opt(item, "Target", doc.target)
        for document_id in doc.in_reply_to:
            m.sub(item, "InReplyTo", document_id)
    return root


def mark_received_response(marked: int) -> etree._Element:
    m = _Maker(Face.OFFICE)
    return m.el("MarkReceivedResponse", m.el("Marked", str(marked)))


def update_status_response(status_id: str) -> etree._Element:
    m = _Maker(Face.OFFICE)
    return m.el("UpdateStatusResponse", m.el("StatusId", status_id))


def receive_statuses_response(events: Iterable[StatusEvent]) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("ReceiveStatusesResponse")
    for event in events:
        item = m.sub(root, "Event")
        m.sub(item, "StatusId", event.status_id)
        m.opt(item, "MessageId", event.message_id)
        m.sub(item, "DocumentId", event.document_id)
        _status(m, item, "Status", event.status)
    return root


def mark_statuses_received_response(marked: int) -> etree._Element:
    m = _Maker(Face.OFFICE)
    return m.el("MarkStatusesReceivedResponse", m.el("Marked", str(marked)))


def recall_document_response(message_id: str, deliveries: Iterable[Delivery]) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("RecallDocumentResponse")
    m.sub(root, "MessageId", message_id)
    _deliveries(m, root, deliveries)
    return root


def answer_recall_response() -> etree._Element:
    m = _Maker(Face.OFFICE)
    return m.el("AnswerRecallResponse", m.el("Ok", "true"))


def get_directory_response(agencies: Iterable[Agency]) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("GetDirectoryResponse")
    for agency in agencies:
        item = m.sub(root, "Agency")
        m.sub(item, "OrganId", agency.organ_id)
        m.sub(item, "Name", agency.name)
        m.opt(item, "Parent", agency.parent)
        m.sub(item, "Route", agency.route)
    return root


def issue_document_id_response(
    code_number: str, notation: str, document_id: str, year: int
) -> etree._Element:
    m = _Maker(Face.OFFICE)
    root = m.el("IssueDocumentIdResponse")
    m.sub(root, "CodeNumber", code_number)
    m.sub(root, "CodeNotation", notation)
    m.sub(root, "DocumentId", document_id)
    m.sub(root, "Year", str(year))
    return root


def deliver_response(receipt: Receipt) -> etree._Element:
    m = _Maker(Face.EXCHANGE)
    root = m.el("DeliverResponse")
    root.append(_receipt(m, "Receipt", receipt))
    return root


# --------------------------------------------------------------------------------- WSDL


def served_wsdl(face: Face, address: str) -> bytes:
    """The face's WSDL as served at `address?wsdl`: both soap:address locations set to
    `address`, and the XSD import pointed at `address?xsd=<face>.xsd` (serve `xsd_bytes`)."""
    path = contract_path(face.wsdl_name)
    root = etree.fromstring(path.read_bytes(), parser=xmlsafe.parser())
    for ns in (WSDL_SOAP11_NS, WSDL_SOAP12_NS):
        for node in root.iter(f"{{{ns}}}address"):
            node.set("location", address)
    for node in root.iter(f"{{{XSD_NS}}}import"):
        if node.get("schemaLocation") == face.xsd_name:
            node.set("schemaLocation", f"{address}?xsd={face.xsd_name}")
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return data


def xsd_bytes(face: Face) -> bytes:
    return contract_path(face.xsd_name).read_bytes()
