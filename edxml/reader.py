"""The tolerant edXML reader: whatever real senders write, a model and a list of findings.

Real packages deviate from the standard in many small ways (standards.md §2.2–§2.9 and the files
in tests/fixtures/realworld/): element order, `Business` for `Bussiness`, dates as `dd/MM/yyyy`,
`cid:` on either side, AttachmentEncoded children in no namespace or with their own `edXML:`
prefix, unknown elements. The reader reads all of them by (namespace, local name), never by
position or prefix, and says what it tolerated as findings; only XML it cannot parse (errors from
xmlsafe) and XML that is not edXML at all (NotEdxml) stop it.

Choices a caller may rely on:
- Text of simple fields is stripped of surrounding whitespace: pretty-printers and hand edits add
  it, and no field's meaning depends on it (an OrganId with a trailing newline must still match).
  Inner whitespace and line breaks are kept.
- Empty optional elements read as absent (`<DueDate></DueDate>` → None), with no finding.
- An unknown or invalid code is an ERROR finding carrying the raw text; the model then holds the
  field's default (Priority.NORMAL, SteeringType.NONE, BusinessDocType.NEW, ReceiverType.ADDED,
  StatusCode.ARRIVED for a status packet), which nobody may act on since the document is refused.
- `DateInvalid` is ERROR for the envelope's PromulgationDate and a status packet's Timestamp,
  WARNING for every other date (the finding's own severity says which).
- Attachment bytes are decoded while parsing (xmlsafe) into memory or the caller's sinks;
  `ReadResult.decoded[i]` belongs to `document.attachments[i]`. `sink_factory(i)` is called for
  the i-th ContentTransferEncoded element in document order, which is the i-th attachment
  whenever each Attachment has one.
"""

from __future__ import annotations

import copy
import hashlib
import unicodedata
from collections.abc import Iterable
from enum import IntEnum
from typing import TypeVar

import attrs
from lxml import etree

from edxml import dates, xmlsafe
from edxml.codes import (
    DEPRECATED_NAMESPACES,
    NS,
    XLINK_NS,
    BusinessDocType,
    Priority,
    ReceiverType,
    StatusCode,
    SteeringType,
)
from edxml.errors import NotEdxml
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.model import (
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    Extension,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
)
from edxml.paths import element_path
from edxml.xmlsafe import DEFAULT_LIMITS, DecodedBinary, Limits, SinkFactory

_Element = etree._Element
_E = TypeVar("_E", bound=IntEnum)

SIGNATURE_ABSENT = "absent"
SIGNATURE_EMPTY = "empty"
SIGNATURE_XMLDSIG = "xmldsig"

# Finding codes ===================================================================================

MISSING_ELEMENT = FindingCode(
    "MissingElement",
    Severity.ERROR,
    "Required element {element} is missing or empty",
    "Thiếu phần tử bắt buộc {element} (hoặc phần tử rỗng)",
    Fault.SCHEMA_INVALID,
)
UNKNOWN_ELEMENT = FindingCode(
    "UnknownElement",
    Severity.INFO,
    "Element {element} is not defined by QCVN 102 here; it is kept as an extension",
    "Phần tử {element} không được QCVN 102 quy định tại vị trí này; được giữ lại làm phần mở rộng",
)
UNKNOWN_ELEMENT_IGNORED = FindingCode(
    "UnknownElementIgnored",
    Severity.INFO,
    "Element {element} is not defined by QCVN 102 here and was ignored",
    "Phần tử {element} không được QCVN 102 quy định tại vị trí này và đã bị bỏ qua",
)
DUPLICATE_ELEMENT = FindingCode(
    "DuplicateElement",
    Severity.WARNING,
    "Element {element} appears {count} times; only the first one is read",
    "Phần tử {element} xuất hiện {count} lần; chỉ phần tử đầu tiên được đọc",
)
SPELLING_VARIANT = FindingCode(
    "SpellingVariant",
    Severity.INFO,
    "Element {actual} read as {expected}, the standard's spelling",
    "Phần tử {actual} được hiểu là {expected} theo cách viết của quy chuẩn",
)
TEXT_NOT_NFC = FindingCode(
    "TextNotNfc",
    Severity.INFO,
    "Text is not in Unicode NFC (precomposed) form; it was normalised",
    "Văn bản không ở dạng Unicode dựng sẵn (NFC); đã được chuẩn hóa",
)
CODE_UNKNOWN = FindingCode(
    "CodeUnknown",
    Severity.ERROR,
    "{element} = '{value}' is not a known code (expected {allowed})",
    "Giá trị '{value}' của {element} không có trong bảng mã (giá trị hợp lệ: {allowed})",
    Fault.SCHEMA_INVALID,
)
NUMBER_INVALID = FindingCode(
    "NumberInvalid",
    Severity.WARNING,
    "{element} = '{value}' is not a number; it was ignored",
    "Giá trị '{value}' của {element} không phải là số; đã bị bỏ qua",
)
STATUS_CODE_SYNONYM = FindingCode(
    "StatusCodeSynonym",
    Severity.INFO,
    "Status code {value} is read as 15 (recall agreed), as one VPCP SDK sample writes it",
    "Mã trạng thái {value} được hiểu là 15 (đồng ý lấy lại) như một mẫu SDK của VPCP ghi",
)
DATE_INVALID = FindingCode(
    "DateInvalid",
    Severity.ERROR,
    "{element} = '{value}' is not a valid date or time",
    "Giá trị '{value}' của {element} không phải là ngày hoặc thời điểm hợp lệ",
    Fault.SCHEMA_INVALID,
)
DATE_FORMAT_NON_STANDARD = FindingCode(
    "DateFormatNonStandard",
    Severity.INFO,
    "{element} = '{value}' is written as {form}, not as the standard {expected}",
    "Giá trị '{value}' của {element} được ghi theo dạng {form}, không theo dạng chuẩn {expected}",
)
TIMESTAMP_WITHOUT_ZONE = FindingCode(
    "TimestampWithoutZone",
    Severity.INFO,
    "{element} = '{value}' has no time zone; it is read as Vietnam time (UTC+07:00)",
    "Giá trị '{value}' của {element} không có múi giờ; được hiểu là giờ Việt Nam (UTC+07:00)",
)
ATTACHMENT_ENCODING_INVALID = FindingCode(
    "AttachmentEncodingInvalid",
    Severity.ERROR,
    "Attachment '{content_id}' is not valid base64: {error}",
    "Tệp đính kèm '{content_id}' không được mã hóa base64 hợp lệ: {error}",
    Fault.SCHEMA_INVALID,
)
ATTACHMENT_MISSING = FindingCode(
    "AttachmentMissing",
    Severity.ERROR,
    "The manifest lists '{content_id}' but no attachment carries it",
    "Danh mục tệp (manifest) liệt kê '{content_id}' nhưng không có tệp đính kèm tương ứng",
    Fault.SCHEMA_INVALID,
)
ATTACHMENT_NOT_IN_MANIFEST = FindingCode(
    "AttachmentNotInManifest",
    Severity.WARNING,
    "Attachment '{content_id}' is not listed in the manifest",
    "Tệp đính kèm '{content_id}' không có trong danh mục tệp (manifest)",
)
CONTENT_ID_DUPLICATE = FindingCode(
    "ContentIdDuplicate",
    Severity.ERROR,
    "Content id '{content_id}' is used more than once",
    "Mã nội dung (ContentId) '{content_id}' được dùng nhiều lần",
    Fault.SCHEMA_INVALID,
)
CONTENT_ID_PREFIXED = FindingCode(
    "ContentIdPrefixed",
    Severity.INFO,
    "Attachment ContentId '{value}' has a cid: prefix, which the SDK writes only in the manifest",
    "ContentId '{value}' của tệp đính kèm có tiền tố cid:, SDK chỉ ghi tiền tố này trong manifest",
)
CONTENT_ID_UNPREFIXED = FindingCode(
    "ContentIdUnprefixed",
    Severity.INFO,
    "Manifest ContentId '{value}' has no cid: prefix, which the SDK writes there",
    "ContentId '{value}' trong danh mục tệp (manifest) thiếu tiền tố cid: mà SDK ghi",
)
REFERENCE_HREF_MISMATCH = FindingCode(
    "ReferenceHrefMismatch",
    Severity.WARNING,
    "Manifest reference xlink:href '{href}' does not match its ContentId '{content_id}'",
    "xlink:href '{href}' của tham chiếu trong manifest không khớp ContentId '{content_id}'",
)
ATTACHMENT_ELEMENT_NO_NAMESPACE = FindingCode(
    "AttachmentElementNoNamespace",
    Severity.INFO,
    "{element} is in no namespace; read as the edXML element of that name",
    "Phần tử {element} không thuộc không gian tên nào; được hiểu là phần tử edXML cùng tên",
)
ATTACHMENT_ELEMENT_PREFIXED = FindingCode(
    "AttachmentElementPrefixed",
    Severity.INFO,
    "{element} outside the envelope is written with the prefix {prefix}:, unlike its parent",
    "Phần tử {element} ngoài edXMLEnvelope được ghi với tiền tố {prefix}:, khác phần tử cha",
)


# Result ==========================================================================================


@attrs.frozen
class ReadResult:
    document: Envelope | StatusPacket
    findings: tuple[Finding, ...]
    decoded: tuple[DecodedBinary, ...]  # aligned with document.attachments (empty for status)
    signature_block: str  # "absent" | "empty" (<DigitalSignature/>) | "xmldsig"
    namespace: str
    # The parsed tree, without the streamed base64 text: what schema.validate() checks, so a big
    # envelope is never parsed twice. Not part of equality.
    root: _Element | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def kind(self) -> str:
        return self.document.kind


def read(
    source: bytes | Iterable[bytes],
    *,
    limits: Limits = DEFAULT_LIMITS,
    sink_factory: SinkFactory | None = None,
) -> ReadResult:
    """Parse (hardened, streaming) and read one edXML envelope or status packet.

    Raises HostileXML / MalformedXML / TooLarge from the parser, NotEdxml when the XML is not an
    edXML package; everything else is a finding.
    """
    parsed = xmlsafe.parse_stream(source, limits=limits, sink_factory=sink_factory)
    return _Reader(parsed).read()


# Children lookup =================================================================================


def _split(tag: str) -> tuple[str | None, str]:
    """(namespace, local name) of a Clark-notation tag; cheaper than etree.QName."""
    if tag[:1] == "{":
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _local(element: _Element) -> str:
    return _split(str(element.tag))[1]


def _namespace(element: _Element) -> str | None:
    return _split(str(element.tag))[0]


class _Children:
    """The children of one container, found by local name and consumed as they are read.

    Elements outside `namespaces` are never matched by name; what is not consumed at the end is
    an extension or ignored, depending on the container.
    """

    def __init__(
        self,
        reader: _Reader,
        element: _Element,
        path: str,
        namespaces: tuple[str | None, ...] = (NS,),
    ) -> None:
        self.reader = reader
        self.element = element
        self.path = path
        self._elements = [child for child in element if isinstance(child.tag, str)]
        self._taken: set[int] = set()
        self._by_name: dict[str, list[_Element]] = {}
        for child in self._elements:
            namespace, local = _split(str(child.tag))
            if namespace in namespaces:
                self._by_name.setdefault(local, []).append(child)

    def all(self, *names: str) -> list[_Element]:
        """Every child of one of these names (aliases), in document order; consumed."""
        if len(names) == 1:
            found = self._by_name.pop(names[0], [])
        else:
            wanted = {id(c) for name in names for c in self._by_name.pop(name, [])}
            found = [child for child in self._elements if id(child) in wanted]
        for child in found:
            self._taken.add(id(child))
        if len(names) > 1:
            for child in found:
                self.reader.note_spelling(child, names[0], self._child_path(child))
        return found

    def one(self, *names: str) -> _Element | None:
        found = self.all(*names)
        if len(found) > 1:
            self.reader.add(
                DUPLICATE_ELEMENT(self.path + "/" + names[0], element=names[0], count=len(found))
            )
        return found[0] if found else None

    def _child_path(self, child: _Element) -> str:
        return f"{self.path}/{_local(child)}"

    def text(self, *names: str) -> str:
        """The stripped text of the first child of that name, "" when absent."""
        element = self.one(*names)
        if element is None:
            return ""
        return self.reader.text(element, f"{self.path}/{names[0]}")

    def any_namespace(self, name: str) -> list[_Element]:
        """Every child with this local name whatever its namespace; consumed."""
        found = self.all(name)
        found += [c for c in self.leftovers() if _local(c) == name]
        self._taken.update(id(c) for c in found)
        return found

    def leftovers(self) -> list[_Element]:
        return [child for child in self._elements if id(child) not in self._taken]

    def extensions(self) -> tuple[Extension, ...]:
        """Unknown children, kept as extensions (with an INFO finding each)."""
        kept = []
        for child in self.leftovers():
            self.reader.add(UNKNOWN_ELEMENT(self._child_path(child), element=_clark(child)))
            kept.append(_extension(child))
        return tuple(kept)

    def ignore_rest(self) -> None:
        for child in self.leftovers():
            path = self._child_path(child)
            self.reader.add(UNKNOWN_ELEMENT_IGNORED(path, element=_clark(child)))


def _clark(element: _Element) -> str:
    return etree.QName(element).text


def _extension(element: _Element) -> Extension:
    """The element serialised on its own, with only the namespace declarations it uses, so the
    same element gives the same bytes wherever it sat."""
    alone = copy.deepcopy(element)
    alone.tail = None
    etree.cleanup_namespaces(alone)
    return Extension(tag=_clark(element), xml=etree.tostring(alone, encoding="utf-8"))


def _strip_cid(value: str) -> str:
    value = value.strip()
    if value[:4].lower() == "cid:":
        return value[4:].strip()
    return value


# The reader ======================================================================================


class _Reader:
    def __init__(self, parsed: xmlsafe.Parsed) -> None:
        self.parsed = parsed
        self.findings: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def missing(self, path: str) -> None:
        self.add(MISSING_ELEMENT(path, element=path.rsplit("/", 1)[-1]))

    def note_spelling(self, element: _Element, expected: str, path: str) -> None:
        actual = _local(element)
        if actual != expected and actual.replace("Business", "Bussiness") == expected:
            self.add(SPELLING_VARIANT(path, actual=actual, expected=expected))

    def text(self, element: _Element, path: str) -> str:
        raw = "".join(element.itertext()).strip()
        if not unicodedata.is_normalized("NFC", raw):
            self.add(TEXT_NOT_NFC(path))
        return raw

    # Typed values ---------------------------------------------------------------------------

    def child_text(self, children: _Children, name: str, *aliases: str) -> tuple[str, str]:
        """The path and the stripped text of one named child ("" when it is absent or empty)."""
        element = children.one(name, *aliases)
        path = f"{children.path}/{name}"
        return path, "" if element is None else self.text(element, path)

    def number(self, children: _Children, name: str) -> int | None:
        path, raw = self.child_text(children, name)
        if not raw:
            return None
        value = _int(raw)
        if value is None or value < 0:
            self.add(NUMBER_INVALID(path, element=name, value=raw))
            return None
        return value

    def flag(self, children: _Children, name: str, default: bool = False) -> bool:
        value = self.optional_flag(children, name)
        return default if value is None else value

    def optional_flag(self, children: _Children, name: str) -> bool | None:
        path, raw = self.child_text(children, name)
        if not raw:
            return None
        value = _bool(raw)
        if value is None:
            self.add(CODE_UNKNOWN(path, element=name, value=raw, allowed="0, 1, true, false"))
        return value

    def code(
        self,
        children: _Children,
        name: str,
        kind: type[_E],
        default: _E,
        *,
        aliases: tuple[str, ...] = (),
        required: bool = False,
    ) -> _E:
        path, raw = self.child_text(children, name, *aliases)
        if not raw:
            if required:
                self.missing(path)
            return default
        number = _int(raw)
        try:
            if number is None:
                raise ValueError(raw)
            return kind(number)
        except ValueError:
            allowed = ", ".join(str(int(m)) for m in kind)
            self.add(CODE_UNKNOWN(path, element=name, value=raw, allowed=allowed))
            return default

    def date(self, children: _Children, name: str, *, severe: bool = False) -> dates.DateParse:
        path, raw = self.child_text(children, name)
        parsed = dates.parse_date(raw)
        if parsed.form == dates.INVALID:
            self.add(_date_invalid(path, name, raw, severe))
        elif parsed.value is not None and not parsed.standard:
            self.add(
                DATE_FORMAT_NON_STANDARD(
                    path, element=name, value=raw, form=parsed.form, expected=dates.DATE_FORM
                )
            )
        return parsed

    def timestamp(
        self, children: _Children, name: str, *, severe: bool = False
    ) -> dates.TimestampParse:
        path, raw = self.child_text(children, name)
        parsed = dates.parse_timestamp(raw)
        if parsed.form == dates.INVALID:
            self.add(_date_invalid(path, name, raw, severe))
        elif parsed.value is not None:
            if not parsed.standard:
                self.add(
                    DATE_FORMAT_NON_STANDARD(
                        path,
                        element=name,
                        value=raw,
                        form=parsed.form,
                        expected=dates.TIMESTAMP_FORM,
                    )
                )
            if not parsed.zoned:
                self.add(TIMESTAMP_WITHOUT_ZONE(path, element=name, value=raw))
        return parsed

    # Document -------------------------------------------------------------------------------

    def read(self) -> ReadResult:
        root = self.parsed.root
        namespace = _namespace(root) or ""
        if namespace in DEPRECATED_NAMESPACES:
            raise NotEdxml(
                f"namespace {namespace} is the deprecated pre-QCVN 102 edXML namespace, which "
                "the national axis refuses; expected " + NS,
                vi=f"Không gian tên {namespace} là không gian tên edXML cũ (trước QCVN 102) mà "
                "trục liên thông quốc gia từ chối; yêu cầu " + NS,
            )
        if namespace != NS or _local(root) != "edXML":
            raise NotEdxml(
                f"root element {_clark(root)} is not {{{NS}}}edXML",
                vi=f"Phần tử gốc {_clark(root)} không phải {{{NS}}}edXML",
            )
        top = _Children(self, root, "", namespaces=(NS, None))
        envelope = top.one("edXMLEnvelope")
        if envelope is None or _namespace(envelope) != NS:
            raise NotEdxml("no edXMLEnvelope element", vi="Không có phần tử edXMLEnvelope")
        env = _Children(self, envelope, "/edXMLEnvelope")
        header = env.one("edXMLHeader")
        if header is None:
            raise NotEdxml("no edXMLHeader element", vi="Không có phần tử edXMLHeader")
        hdr = _Children(self, header, "/edXMLEnvelope/edXMLHeader")
        message = hdr.one("MessageHeader", "Status")
        if message is None:
            raise NotEdxml(
                "no MessageHeader (or Status) in edXMLHeader: neither an envelope nor a status",
                vi="Không có MessageHeader (hoặc Status) trong edXMLHeader",
            )
        signature = self.signature_block(hdr)
        path = f"/edXMLEnvelope/edXMLHeader/{_local(message)}"
        document: Envelope | StatusPacket
        decoded: tuple[DecodedBinary, ...] = ()
        if _is_status(message):
            hdr.ignore_rest()
            env.ignore_rest()
            top.ignore_rest()
            document = self.status(_Children(self, message, path))
        else:
            header_model = self.message_header(_Children(self, message, path))
            trace = self.trace_list(hdr)
            hdr.ignore_rest()
            manifest = self.manifest(env)
            env.ignore_rest()
            attachments, decoded = self.attachments(top)
            top.ignore_rest()
            self.match_manifest(manifest, attachments)
            document = Envelope(
                header=header_model, trace=trace, manifest=manifest, attachments=attachments
            )
        return ReadResult(
            document=document,
            findings=tuple(self.findings),
            decoded=decoded,
            signature_block=signature,
            namespace=namespace,
            root=root,
        )

    def signature_block(self, hdr: _Children) -> str:
        # A Signature in any namespace counts: some senders write it in the default namespace.
        # It is consumed here without a finding; the signature verifier judges it.
        signatures = hdr.any_namespace("Signature")
        placeholders = hdr.all("DigitalSignature")
        if signatures:
            return SIGNATURE_XMLDSIG
        for element in placeholders:
            if any(_local(d) == "Signature" for d in element.iterdescendants() if _is_el(d)):
                return SIGNATURE_XMLDSIG
        return SIGNATURE_EMPTY if placeholders else SIGNATURE_ABSENT

    # Envelope parts -------------------------------------------------------------------------

    def read_organization(self, element: _Element, path: str) -> Organization:
        c = _Children(self, element, path)
        org = Organization(
            organ_id=c.text("OrganId"),
            organization_in_charge=c.text("OrganizationInCharge"),
            organ_name=c.text("OrganName"),
            organ_add=c.text("OrganAdd"),
            email=c.text("Email"),
            telephone=c.text("Telephone"),
            fax=c.text("Fax"),
            website=c.text("Website"),
        )
        if not org.organ_id:
            self.missing(f"{path}/OrganId")
        c.ignore_rest()
        return org

    def message_header(self, c: _Children) -> MessageHeader:
        path = c.path
        from_element = c.one("From")
        if from_element is None:
            self.missing(f"{path}/From")
            from_ = Organization()
        else:
            from_ = self.read_organization(from_element, f"{path}/From")
        to_elements = c.all("To")
        if not to_elements:
            self.missing(f"{path}/To")
        to = tuple(
            self.read_organization(element, f"{path}/To[{i}]")
            for i, element in enumerate(to_elements, 1)
        )
        code_element = c.one("Code")
        if code_element is None:
            self.missing(f"{path}/Code")
            code = Code()
        else:
            cc = _Children(self, code_element, f"{path}/Code")
            code = Code(code_number=cc.text("CodeNumber"), code_notation=cc.text("CodeNotation"))
            cc.ignore_rest()
        info_element = c.one("PromulgationInfo")
        if info_element is None:
            self.missing(f"{path}/PromulgationInfo")
            info = PromulgationInfo()
        else:
            ic = _Children(self, info_element, f"{path}/PromulgationInfo")
            place = ic.text("Place")
            date = self.date(ic, "PromulgationDate", severe=True)
            if date.form == dates.EMPTY:
                self.missing(f"{ic.path}/PromulgationDate")
            info = PromulgationInfo(place=place, promulgation_date=date.value)
            ic.ignore_rest()
        doc_type_element = c.one("DocumentType")
        doc_type = DocumentType()
        if doc_type_element is not None:
            dc = _Children(self, doc_type_element, f"{path}/DocumentType")
            doc_type = DocumentType(
                type=self.number(dc, "Type"),
                type_name=dc.text("TypeName"),
                type_detail=self.number(dc, "TypeDetail"),
            )
            dc.ignore_rest()
        subject = c.text("Subject")
        content = c.text("Content")
        signer_element = c.one("SignerInfo")
        signer = SignerInfo()
        if signer_element is not None:
            sc = _Children(self, signer_element, f"{path}/SignerInfo")
            signer = SignerInfo(
                competence=sc.text("Competence"),
                position=sc.text("Position"),
                full_name=sc.text("FullName"),
            )
            sc.ignore_rest()
        due_date = self.date(c, "DueDate").value
        places: tuple[str, ...] = ()
        places_element = c.one("ToPlaces")
        if places_element is not None:
            pc = _Children(self, places_element, f"{path}/ToPlaces")
            places = tuple(
                self.text(e, f"{pc.path}/Place[{i}]") for i, e in enumerate(pc.all("Place"), 1)
            )
            pc.ignore_rest()
        other_element = c.one("OtherInfo")
        other = OtherInfo()
        if other_element is not None:
            other = self.other_info(_Children(self, other_element, f"{path}/OtherInfo"))
        responses = tuple(
            self.response_for(e, f"{path}/ResponseFor[{i}]")
            for i, e in enumerate(c.all("ResponseFor"), 1)
        )
        steering = self.code(c, "SteeringType", SteeringType, SteeringType.NONE)
        document_id = c.text("DocumentId")
        if not document_id:
            self.missing(f"{path}/DocumentId")
        return MessageHeader(
            from_=from_,
            to=to,
            code=code,
            promulgation_info=info,
            document_type=doc_type,
            subject=subject,
            content=content,
            signer_info=signer,
            due_date=due_date,
            to_places=places,
            other_info=other,
            response_for=responses,
            steering_type=steering,
            document_id=document_id,
            extensions=c.extensions(),
        )

    def other_info(self, c: _Children) -> OtherInfo:
        priority = self.code(c, "Priority", Priority, Priority.NORMAL)
        sphere = c.text("SphereOfPromulgation")
        typer = c.text("TyperNotation")
        promulgation_amount = self.number(c, "PromulgationAmount")
        page_amount = self.number(c, "PageAmount")
        direction = self.optional_flag(c, "Direction")
        appendixes: tuple[str, ...] = ()
        appendixes_element = c.one("Appendixes")
        if appendixes_element is not None:
            ac = _Children(self, appendixes_element, f"{c.path}/Appendixes")
            appendixes = tuple(
                self.text(e, f"{ac.path}/Appendix[{i}]")
                for i, e in enumerate(ac.all("Appendix"), 1)
            )
            ac.ignore_rest()
        return OtherInfo(
            priority=priority,
            sphere_of_promulgation=sphere,
            typer_notation=typer,
            promulgation_amount=promulgation_amount,
            page_amount=page_amount,
            direction=direction,
            appendixes=appendixes,
            extensions=c.extensions(),
        )

    def response_for(self, element: _Element, path: str) -> ResponseFor:
        c = _Children(self, element, path)
        response = ResponseFor(
            organ_id=c.text("OrganId"),
            code=c.text("Code"),
            promulgation_date=self.date(c, "PromulgationDate").value,
            document_id=c.text("DocumentId"),
        )
        if not response.organ_id:
            self.missing(f"{path}/OrganId")
        if not response.document_id:
            self.missing(f"{path}/DocumentId")
        c.ignore_rest()
        return response

    def staff_info(self, element: _Element | None, path: str) -> StaffInfo | None:
        if element is None:
            return None
        c = _Children(self, element, path)
        staff = StaffInfo(
            department=c.text("Department"),
            staff=c.text("Staff"),
            mobile=c.text("Mobile"),
            email=c.text("Email"),
        )
        c.ignore_rest()
        return staff

    def trace_list(self, hdr: _Children) -> TraceHeaderList:
        element = hdr.one("TraceHeaderList")
        path = f"{hdr.path}/TraceHeaderList"
        if element is None:
            self.missing(path)
            self.missing(f"{path}/Bussiness")
            return TraceHeaderList()
        c = _Children(self, element, path)
        traces = []
        for i, trace_element in enumerate(c.all("TraceHeader"), 1):
            tc = _Children(self, trace_element, f"{path}/TraceHeader[{i}]")
            # A relay's log line: an incomplete one is noted by the rules, not refused here.
            organ_id = tc.text("OrganId")
            stamp = self.timestamp(tc, "Timestamp")
            traces.append(TraceHeader(organ_id=organ_id, timestamp=stamp.value))
            tc.ignore_rest()
        business_element = c.one("Bussiness", "Business")
        if business_element is None:
            self.missing(f"{path}/Bussiness")
            business = Business()
        else:
            business = self.business(_Children(self, business_element, f"{path}/Bussiness"))
        c.ignore_rest()
        return TraceHeaderList(
            traces=tuple(traces), business=business, id=(element.get("id") or "").strip()
        )

    def business(self, c: _Children) -> Business:
        path = c.path
        document_id = c.text("DocumentId")
        doc_type = self.code(
            c,
            "BussinessDocType",
            BusinessDocType,
            BusinessDocType.NEW,
            aliases=("BusinessDocType",),
            required=True,
        )
        reason = c.text("BussinessDocReason", "BusinessDocReason")
        paper = self.flag(c, "Paper")
        info_element = c.one("BussinessDocumentInfo", "BusinessDocumentInfo")
        info = None
        if info_element is not None:
            info = self.document_info(
                _Children(self, info_element, f"{path}/BussinessDocumentInfo")
            )
        replacements: list[ReplacementInfo] = []
        list_element = c.one("ReplacementInfoList")
        if list_element is not None:
            lc = _Children(self, list_element, f"{path}/ReplacementInfoList")
            for i, item in enumerate(lc.all("ReplacementInfo"), 1):
                replacements.append(self.replacement(item, f"{lc.path}/ReplacementInfo[{i}]"))
            lc.ignore_rest()
        staff = self.staff_info(c.one("StaffInfo"), f"{path}/StaffInfo")
        return Business(
            doc_type=doc_type,
            reason=reason,
            document_id=document_id,
            paper=paper,
            staff_info=staff,
            document_info=info,
            replacements=tuple(replacements),
            extensions=c.extensions(),
        )

    def document_info(self, c: _Children) -> BusinessDocumentInfo:
        document_info = self.flag(c, "DocumentInfo")
        document_receiver = self.flag(c, "DocumentReceiver")
        receivers = []
        list_element = c.one("ReceiverList")
        if list_element is not None:
            lc = _Children(self, list_element, f"{c.path}/ReceiverList")
            for i, item in enumerate(lc.all("Receiver"), 1):
                rc = _Children(self, item, f"{lc.path}/Receiver[{i}]")
                organ_id = rc.text("OrganId")
                if not organ_id:
                    self.missing(f"{rc.path}/OrganId")
                kind = self.code(rc, "ReceiverType", ReceiverType, ReceiverType.ADDED)
                receivers.append(Receiver(organ_id=organ_id, receiver_type=kind))
                rc.ignore_rest()
            lc.ignore_rest()
        c.ignore_rest()
        return BusinessDocumentInfo(
            document_info=document_info,
            document_receiver=document_receiver,
            receivers=tuple(receivers),
        )

    def replacement(self, element: _Element, path: str) -> ReplacementInfo:
        c = _Children(self, element, path)
        document_id = c.text("DocumentId")
        if not document_id:
            self.missing(f"{path}/DocumentId")
        organ_ids: list[str] = []
        list_element = c.one("OrganIdList")
        if list_element is not None:
            lc = _Children(self, list_element, f"{path}/OrganIdList")
            organ_ids = [
                self.text(e, f"{lc.path}/OrganId[{i}]") for i, e in enumerate(lc.all("OrganId"), 1)
            ]
            lc.ignore_rest()
        if not any(organ_ids):
            self.missing(f"{path}/OrganIdList/OrganId")
        c.ignore_rest()
        return ReplacementInfo(document_id=document_id, organ_ids=tuple(organ_ids))

    # Body and attachments -------------------------------------------------------------------

    def manifest(self, env: _Children) -> tuple[Reference, ...]:
        body = env.one("edXMLBody")
        if body is None:
            return ()
        bc = _Children(self, body, "/edXMLEnvelope/edXMLBody")
        manifest = bc.one("edXMLManifest")
        bc.ignore_rest()
        if manifest is None:
            return ()
        mc = _Children(self, manifest, f"{bc.path}/edXMLManifest")
        references = []
        for i, element in enumerate(mc.all("Reference"), 1):
            path = f"{mc.path}/Reference[{i}]"
            rc = _Children(self, element, path)
            raw_id = rc.text("ContentId")
            content_id = _strip_cid(raw_id)
            if not content_id:
                self.missing(f"{path}/ContentId")
            elif raw_id == content_id:
                self.add(CONTENT_ID_UNPREFIXED(f"{path}/ContentId", value=raw_id))
            href = (element.get(f"{{{XLINK_NS}}}href") or "").strip()
            if href and content_id and _strip_cid(href) != content_id:
                self.add(REFERENCE_HREF_MISMATCH(path, href=href, content_id=raw_id))
            references.append(
                Reference(
                    content_id=content_id,
                    attachment_name=rc.text("AttachmentName"),
                    content_type=rc.text("ContentType"),
                    description=rc.text("Description"),
                )
            )
            rc.ignore_rest()
        mc.ignore_rest()
        return tuple(references)

    def attachments(
        self, top: _Children
    ) -> tuple[tuple[Attachment, ...], tuple[DecodedBinary, ...]]:
        attachments: list[Attachment] = []
        decoded: list[DecodedBinary] = []
        for encoded in top.all("AttachmentEncoded"):
            encoded_path = element_path(encoded)
            self.note_attachment_namespace(encoded, encoded_path)
            ec = _Children(self, encoded, encoded_path, namespaces=(NS, None))
            for element in ec.all("Attachment"):
                path = element_path(element)
                self.note_attachment_namespace(element, path)
                attachment, binary = self.attachment(element, path)
                attachments.append(attachment)
                decoded.append(binary)
            ec.ignore_rest()
        return tuple(attachments), tuple(decoded)

    def attachment(self, element: _Element, path: str) -> tuple[Attachment, DecodedBinary]:
        c = _Children(self, element, path, namespaces=(NS, None))
        for child in c.leftovers():
            if _namespace(child) in (NS, None):
                self.note_attachment_namespace(child, f"{path}/{_local(child)}")
        raw_id = c.text("ContentId")
        content_id = _strip_cid(raw_id)
        if not content_id:
            self.missing(f"{path}/ContentId")
        elif raw_id != content_id:
            self.add(CONTENT_ID_PREFIXED(f"{path}/ContentId", value=raw_id))
        encoded = c.one("ContentTransferEncoded")
        binary = None if encoded is None else self.parsed.decoded.get(encoded)
        if binary is None:
            self.missing(f"{path}/ContentTransferEncoded")
            binary = DecodedBinary(
                size=0,
                sha256=hashlib.sha256(b"").hexdigest(),
                head=b"",
                tail=b"",
                content=None,
                error="no ContentTransferEncoded element",
            )
        elif binary.error is not None:
            self.add(
                ATTACHMENT_ENCODING_INVALID(
                    f"{path}/ContentTransferEncoded", content_id=content_id, error=binary.error
                )
            )
        attachment = Attachment(
            content_id=content_id,
            attachment_name=c.text("AttachmentName"),
            content_type=c.text("ContentType"),
            description=c.text("Description"),
            content=binary.content,
            size=binary.size,
            sha256=binary.sha256,
        )
        c.ignore_rest()
        return attachment, binary

    def note_attachment_namespace(self, element: _Element, path: str) -> None:
        """AttachmentEncoded is written unprefixed in the root's default namespace; note where the
        form changes to a variant seen in the wild (no namespace; an element-local prefix)."""
        name = _local(element)
        parent = element.getparent()
        if _namespace(element) is None:
            if parent is None or _namespace(parent) is not None:
                self.add(ATTACHMENT_ELEMENT_NO_NAMESPACE(path, element=name))
        elif element.prefix is not None and (parent is None or parent.prefix != element.prefix):
            self.add(ATTACHMENT_ELEMENT_PREFIXED(path, element=name, prefix=element.prefix))

    def match_manifest(
        self, manifest: tuple[Reference, ...], attachments: tuple[Attachment, ...]
    ) -> None:
        listed = [r.content_id for r in manifest if r.content_id]
        carried = [a.content_id for a in attachments if a.content_id]
        for content_id in sorted({x for x in listed if listed.count(x) > 1}):
            self.add(CONTENT_ID_DUPLICATE("/edXMLEnvelope/edXMLBody", content_id=content_id))
        for content_id in sorted({x for x in carried if carried.count(x) > 1}):
            self.add(CONTENT_ID_DUPLICATE("/AttachmentEncoded", content_id=content_id))
        for content_id in dict.fromkeys(listed):
            if content_id not in carried:
                self.add(ATTACHMENT_MISSING("/edXMLEnvelope/edXMLBody", content_id=content_id))
        for content_id in dict.fromkeys(carried):
            if content_id not in listed:
                self.add(ATTACHMENT_NOT_IN_MANIFEST("/AttachmentEncoded", content_id=content_id))

    # Status packet --------------------------------------------------------------------------

    def status(self, c: _Children) -> StatusPacket:
        path = c.path
        from_element = c.one("From")
        if from_element is None:
            self.missing(f"{path}/From")
            from_ = Organization()
        else:
            from_ = self.read_organization(from_element, f"{path}/From")
        response_element = c.one("ResponseFor")
        if response_element is None:
            self.missing(f"{path}/ResponseFor")
            response = ResponseFor()
        else:
            response = self.response_for(response_element, f"{path}/ResponseFor")
        staff = self.staff_info(c.one("StaffInfo"), f"{path}/StaffInfo")
        status_code = self.status_code(c)
        description = c.text("Description")
        stamp = self.timestamp(c, "Timestamp", severe=True)
        if stamp.form == dates.EMPTY:
            self.missing(f"{path}/Timestamp")
        return StatusPacket(
            response_for=response,
            from_=from_,
            status_code=status_code,
            description=description,
            timestamp=stamp.value,
            staff_info=staff,
            extensions=c.extensions(),
        )

    def status_code(self, c: _Children) -> StatusCode:
        path = f"{c.path}/StatusCode"
        element = c.one("StatusCode")
        raw = "" if element is None else self.text(element, path)
        if not raw:
            self.missing(path)
            return StatusCode.ARRIVED
        try:
            code = StatusCode.parse(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in StatusCode)
            self.add(CODE_UNKNOWN(path, element="StatusCode", value=raw, allowed=allowed))
            return StatusCode.ARRIVED
        if raw.isdigit() and int(raw) == 14:
            self.add(STATUS_CODE_SYNONYM(path, value=raw))
        return code


def _is_el(element: _Element) -> bool:
    return isinstance(element.tag, str)


def _is_status(message: _Element) -> bool:
    """Status packets share MessageHeader with envelopes (VPCP SDK); StatusCode tells them apart.
    Without one, a header that has a status's shape and none of an envelope's parts is a status
    packet missing its code."""
    if _local(message) == "Status":
        return True
    names = {_local(child) for child in message if _is_el(child) and _namespace(child) == NS}
    if "StatusCode" in names:
        return True
    envelope_parts = {"To", "Code", "PromulgationInfo", "DocumentId", "Subject"}
    return "Timestamp" in names and "ResponseFor" in names and not names & envelope_parts


def _int(text: str) -> int | None:
    """An integer as senders write it ("05", " 1 ", "+2"); None when it is not one."""
    text = text.strip()
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isascii() or not digits.isdigit():
        return None
    return int(text)


def _bool(text: str) -> bool | None:
    value = text.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    return None


def _date_invalid(path: str, name: str, raw: str, severe: bool) -> Finding:
    finding = DATE_INVALID(path, element=name, value=raw)
    if severe:
        return finding
    return attrs.evolve(finding, severity=Severity.WARNING, fault=None)
