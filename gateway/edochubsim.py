"""A simulator of the BKAV "eDoc" provincial hub, in memory, behind a real twisted.web server
(../shared/docs/bkav_hub.md §10), speaking the wire of `edxml.edochub`.

One URL (any path) takes every operation; dispatch is on the bare SOAPAction word (quotes
stripped), an unknown or missing one answers HTTP 200 with an empty Body. Requests are read as
the hub reads them (§2.4): the request wrappers, `CheckPermission` and the UpdateTraces `Status`
must be unqualified (a qualified `Status` is the hub's `M.UpdateTraces` exception), the
MessageHeader, TraceHeaderList, Signature, ErrorList and Manifest must be in
`http://www.e-doc.vn/Schema/`, and other children are matched by local name. Every received XML
goes through the project's hardened parser; XML it refuses gets a SOAP Fault with HTTP 500, as
the ESB would, and has no effect. Business errors are never faults: a `Report`, HTTP 200.

* credentials: OrganId + token of an active organisation; body credentials wrong → a Report
  with an empty ErrorList, missing → `CheckPermission`; Signature credentials wrong →
  `Permission`, missing → `CheckSignature`; nothing is stored on a refusal;
* SendDocument: the tag check (`N.…`), the Signature, the field checks, `Business` required
  (`M.SendDocument`), the duplicate rule for BusinessDocType 0 (`M.Exist`), one notification
  per recipient, the numeric id beside the Report. The envelope is kept without its `Signature`
  (the real hub replays the sender's token; this one does not);
* GetPendingDocumentIds: every id not taken, unpaged; GetDocument: allowed for any recipient,
  taken or not, the kept envelope replayed with the attachments as parts whose bodies are the
  *Base64 text* of the files (multipart/related); ConfirmReceived: takes the notification,
  then writes the automatic status 1 from the confirmer to the sender;
* UpdateTraces: the duplicate rule (except 5), the document lookup (reversed for 13),
  StaffInfo required; GetTraces: statuses addressed to the caller, newest first, disabled once
  read (without TimeStamp), replayed from a moment (with it);
* GetOrganizations: the whole directory; CheckPermission: the header probe.

Faults, each deterministic and counted in `fault_hits`, set at start or at run time:

* `slow` (seconds): every answer is written that much later; the request has taken effect;
* `http500` (count): the next N requests get HTTP 500 with an HTML page and have no effect;
* `not_ready` (count): a document stored while it is N is listed as pending at once but its
  first N GetDocument answer `M.GetDocument` (the hub's "not in the database yet");
* `lost_confirms` (count): the next N ConfirmReceived are lost on the way: the connection is
  dropped without an answer and without effect, so the document stays pending.

A control face sits on the same port under `/_sim/`, for loopback peers only: `GET
/_sim/state` (never a token), `POST /_sim/faults` (a JSON object), `POST /_sim/organizations`
(a JSON list of organisations with their tokens, merged by OrganId).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, Final, cast

import attrs
from lxml import etree

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from edxml import edochub, xmlsafe
from edxml.edochub import EDOC_NS, SOAP_NS, XLINK_NS, Organization, Part, ResponseFor, Trace
from edxml.errors import XMLRefused
from gateway.simhost import SimSite, SimulatorHost, is_loopback

__all__ = ["FAULTS", "Faults", "HubOrganization", "HubSimulator", "fault_value"]

FAULTS: Final = ("slow", "http500", "not_ready", "lost_confirms")
XML_CONTENT_TYPE: Final = b"text/xml; charset=utf-8"
JSON_CONTENT_TYPE: Final = b"application/json; charset=UTF-8"
MAX_REQUEST: Final = 64 << 20
_E: Final = "{" + EDOC_NS + "}"
_S: Final = "{" + SOAP_NS + "}"
_ERROR_PAGE: Final = (
    b"<html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>HTTP Status 500</h1></body></html>"
)
_FROM_FIELDS: Final = (
    "OrganId",
    "OrganName",
    "OrganizationInCharge",
    "OrganAdd",
    "Email",
    "Telephone",
    "Fax",
    "Website",
)
_TO_FIELDS: Final = ("OrganId", "OrganName", "OrganAdd", "Email", "Telephone", "Fax", "Website")
_REQUIRED: Final = (
    ("Code", ("CodeNumber", "CodeNotation")),
    ("PromulgationInfo", ("Place", "PromulgationDate")),
    ("DocumentType", ("Type", "TypeName")),
    ("Subject", ()),
    ("Content", ()),
    ("SignerInfo", ("Competence", "FullName", "Position")),
    ("DueDate", ()),
    ("ToPlaces", ()),
    (
        "OtherInfo",
        (
            "Priority",
            "SphereOfPromulgation",
            "TyperNotation",
            "PromulgationAmount",
            "PageAmount",
            "Appendixes",
        ),
    ),
)


def fault_value(name: str, value: Any) -> float | int:
    """A fault's value checked and normalised (from JSON or from `name=value` text)."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    if isinstance(value, bool):
        raise ValueError(f"fault {name} is a number, not {value!r}")
    try:
        number = float(value) if name == "slow" else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"fault {name} is a number, not {value!r}") from None
    if number < 0:
        raise ValueError(f"fault {name} cannot be negative")
    return number


@attrs.define
class Faults:
    slow: float = 0.0
    http500: int = 0
    not_ready: int = 0
    lost_confirms: int = 0

    def update(self, values: Mapping[str, Any]) -> None:
        checked = {name: fault_value(name, value) for name, value in values.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class HubOrganization:
    """A row of the hub's directory, with its token (never shown) and flags."""

    organ_id: str
    token: str = attrs.field(repr=False)
    name: str = ""
    in_charge: str = ""
    address: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""
    active: bool = True
    agency: bool = True

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> HubOrganization:
        organ_id, token = entry.get("organ_id"), entry.get("token")
        if not isinstance(organ_id, str) or not organ_id.strip():
            raise ValueError("an organisation needs organ_id text")
        if not isinstance(token, str) or not token.strip():
            raise ValueError(f"organisation {organ_id}: token must be non-empty text")
        fields: dict[str, Any] = {}
        for key in ("name", "in_charge", "address", "email", "telephone", "fax", "website"):
            value = entry.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"organisation {organ_id}: {key} must be text")
            fields[key] = value
        flags: dict[str, Any] = {}
        for key in ("active", "agency"):
            value = entry.get(key, True)
            if not isinstance(value, bool):
                raise ValueError(f"organisation {organ_id}: {key} must be true or false")
            flags[key] = value
        return cls(organ_id.strip(), token.strip(), **fields, **flags)

    @property
    def public(self) -> Organization:
        return Organization(
            self.organ_id,
            self.name,
            self.in_charge,
            self.address,
            self.email,
            self.telephone,
            self.fax,
            self.website,
        )


@attrs.define
class StoredDocument:
    hub_id: int
    document_id: str
    doc_code: str
    from_organ: str
    to_organs: list[str]
    promulgation_date: str
    business_doc_type: int
    envelope: bytes = attrs.field(repr=False)
    attachments: list[Part] = attrs.field(repr=False)
    created: float
    not_ready: int = 0
    fetches: int = 0


@attrs.define
class Notification:
    receiver: str
    hub_id: int
    taken: bool = False


@attrs.define
class StoredTrace:
    trace_id: int
    hub_id: int
    from_organ: str
    to_organ: str
    trace: Trace
    server_time: float
    enable: bool = True


@attrs.frozen
class _Answer:
    code: int
    body: bytes
    outcome: str
    content_type: bytes = XML_CONTENT_TYPE
    organ_id: str | None = None
    drop: bool = False


class _Resource(Resource):
    isLeaf = True

    def __init__(self, simulator: HubSimulator) -> None:
        super().__init__()
        self._simulator = simulator

    def render(self, request: Request) -> Any:
        return self._simulator.render(request)


class _Refuse(Exception):
    """A Report that says no, raised from deep in a handler."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(code)
        self.code = code
        self.description = description


def _local(element: etree._Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    if parent is None:
        return None
    return next((c for c in parent if _local(c) == name), None)


def _text(parent: etree._Element | None, name: str) -> str:
    found = _child(parent, name)
    return "" if found is None else (found.text or "").strip()


class HubSimulator(SimulatorHost):
    """The hub in memory. `organizations` is the directory with tokens; `clock` gives the time
    in epoch seconds (default the reactor's)."""

    log = Logger()

    def __init__(
        self,
        organizations: Iterable[HubOrganization] = (),
        *,
        reactor: Any,
        faults: Mapping[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
        path: str = "/services/EdocService",
    ) -> None:
        self._reactor = reactor
        self._clock: Callable[[], float] = clock or reactor.seconds
        self.path = "/" + path.strip("/")
        self.mount = self.path
        self.organizations: dict[str, HubOrganization] = {}
        self.set_organizations(organizations)
        self.documents: dict[int, StoredDocument] = {}
        self.notifications: list[Notification] = []
        self.traces: list[StoredTrace] = []
        self.requests: Counter[str] = Counter()
        self.fault_hits: Counter[str] = Counter()
        self.faults = Faults()
        if faults:
            self.faults.update(faults)
        self._next_doc = 1000
        self._next_trace = 1
        self.site = SimSite(_Resource(self))
        self._port: Any = None
        self._waiting: set[Deferred[None]] = set()

    # --- running --------------------------------------------------------------------------

    def set_organizations(self, organizations: Iterable[HubOrganization]) -> None:
        for org in organizations:
            self.organizations[org.organ_id] = org

    def set_faults(self, values: Mapping[str, Any]) -> None:
        self.faults.update(values)

    def now(self) -> float:
        return float(self._clock())

    def _now_text(self) -> str:
        return edochub.format_time(dt.datetime.fromtimestamp(self.now(), dt.UTC))

    # --- HTTP -----------------------------------------------------------------------------

    def render(self, request: Request) -> Any:
        path = (request.path or b"/").decode("latin-1")
        if path.startswith("/_sim/"):
            return self._control(request, path[len("/_sim/") :])
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = Deferred.fromCoroutine(self._serve(request, gone))
        d.addErrback(self._crashed, request)
        return NOT_DONE_YET

    async def _serve(self, request: Request, gone: list[bool]) -> None:
        raw = request.getHeader(b"soapaction")
        action = (raw or b"").decode("latin-1").strip().strip('"')
        self.requests[action or "-"] += 1
        if self.faults.http500 > 0:
            self.faults.http500 -= 1
            self.fault_hits["http500"] += 1
            answer = _Answer(500, _ERROR_PAGE, "HTTP 500 (fault http500)", b"text/html")
        else:
            try:
                answer = self._answer(action, request)
            except Exception:
                self.log.failure("eDoc hub simulator failed on {action}", action=action)
                answer = _Answer(500, _ERROR_PAGE, "crashed", b"text/html")
        self.log.info(
            "eDoc hub simulator {action} from {organ_id}: {outcome}",
            action=action or "-",
            organ_id=answer.organ_id or "-",
            outcome=answer.outcome,
            http_status=answer.code,
        )
        if not await self.answer_ready(request, gone, drop=answer.drop):
            return
        request.setResponseCode(answer.code)
        request.setHeader(b"content-type", answer.content_type)
        request.setHeader(b"content-length", b"%d" % len(answer.body))
        request.write(answer.body)
        request.finish()

    def _crashed(self, failure: Failure, request: Request) -> None:
        self.log.failure("eDoc hub simulator could not answer", failure=failure)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.setResponseCode(500)
            request.finish()

    def _answer(self, action: str, request: Request) -> _Answer:
        body = _body(request, MAX_REQUEST + 1)
        if len(body) > MAX_REQUEST:
            return self._fault("the request is too large")
        handler = self._handlers().get(action)
        if handler is None:
            return _Answer(200, edochub.answer_envelope(""), "unknown action: empty Body")
        try:
            message = edochub.split_message(_content_type(request), body)
            root = xmlsafe.parse(message.envelope)
        except (XMLRefused, edochub.HubProtocolError) as exc:
            return self._fault(exc.message_en)
        if root.tag != _S + "Envelope" or root.find(_S + "Body") is None:
            return self._fault("not a SOAP 1.1 envelope")
        return handler(root, message)

    def _handlers(self) -> dict[str, Callable[[etree._Element, edochub.Message], _Answer]]:
        return {
            "SendDocument": self._send_document,
            "GetPendingDocumentIds": self._pending,
            "GetDocument": self._get_document,
            "ConfirmReceived": self._confirm,
            "UpdateTraces": self._update_traces,
            "GetTraces": self._get_traces,
            "GetOrganizations": self._get_organizations,
            "CheckPermission": self._check_permission,
        }

    @staticmethod
    def _fault(text: str) -> _Answer:
        body = (
            f"<soapenv:Fault><faultcode>soapenv:Client</faultcode>"
            f"<faultstring>{_escape(text[:200])}</faultstring></soapenv:Fault>"
        )
        return _Answer(500, edochub.answer_envelope(body), f"SOAP Fault: {text[:80]}")

    @staticmethod
    def _report(
        action: str, ok: bool, errors: Iterable[tuple[str, str]] = (), *, extra: str = ""
    ) -> bytes:
        report = edochub.report_xml(ok, errors)
        if action == "GetDocument":
            return edochub.answer_envelope(
                report.replace("<edXML:Report>", f'<edXML:Report xmlns:edXML="{EDOC_NS}">', 1)
            )
        return edochub.wrapped(action, report + extra)

    def _refused(self, action: str, code: str, text: str, organ_id: str | None) -> _Answer:
        return _Answer(200, self._report(action, False, [(code, text)]), code, organ_id=organ_id)

    # --- credentials ----------------------------------------------------------------------

    def _known(self, organ_id: str, token: str) -> bool:
        org = self.organizations.get(organ_id)
        return org is not None and org.active and org.token == token

    def _body_credentials(
        self, root: etree._Element, action: str, wrapper_name: str
    ) -> tuple[etree._Element | None, str, _Answer | None]:
        body = root.find(_S + "Body")
        wrapper = None if body is None else body.find(wrapper_name)  # no namespace, §2.4
        if wrapper is None or len(wrapper) == 0:
            answer = self._refused(
                action, "CheckPermission", "Error get check permission request null", None
            )
            return None, "", answer
        organ_id, token = _text(wrapper, "OrganId"), _text(wrapper, "Token")
        if not organ_id or not token:
            answer = self._refused(
                action, "CheckPermission", "OrganId or Token is required", organ_id
            )
            return None, organ_id, answer
        if not self._known(organ_id, token):
            answer = _Answer(
                200, self._report(action, False), "credentials refused", organ_id=organ_id
            )
            return None, organ_id, answer
        return wrapper, organ_id, None

    def _signature_credentials(self, root: etree._Element) -> str:
        header = root.find(_S + "Header")
        key_info = _child(None if header is None else header.find(_E + "Signature"), "KeyInfo")
        organ_id, token = _text(key_info, "OrganId"), _text(key_info, "Token")
        if not organ_id or not token:
            raise _Refuse("CheckSignature", "OrganId or Token is required")
        if not self._known(organ_id, token):
            raise _Refuse(
                "Permission", "The organization does not have permission to connect to the ESB!"
            )
        return organ_id

    # --- operations -----------------------------------------------------------------------

    def _send_document(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "SendDocument"
        organ_id: str | None = None
        try:
            header = root.find(_S + "Header")
            mh = None if header is None else header.find(_E + "MessageHeader")
            self._check_tags(header, mh)
            assert header is not None and mh is not None
            organ_id = self._signature_credentials(root)
            stored = self._store_document(root, header, mh, message)
        except _Refuse as refuse:
            return self._refused(action, refuse.code, refuse.description, organ_id)
        extra = f"<edXML:DocumentId>{stored.hub_id}</edXML:DocumentId>"
        return _Answer(
            200,
            self._report(action, True, extra=extra),
            f"stored {stored.hub_id}",
            organ_id=organ_id,
        )

    @staticmethod
    def _check_tags(header: etree._Element | None, mh: etree._Element | None) -> None:
        if header is None or mh is None:
            raise _Refuse("N.MessageHeader", "MessageHeader is required")

        def need(parent: etree._Element, path: str, names: Iterable[str]) -> None:
            for name in names:
                if parent.find(_E + name) is None:
                    raise _Refuse(f"N.{path}.{name}", f"{path}.{name} is required")

        from_ = mh.find(_E + "From")
        if from_ is None:
            raise _Refuse("N.MessageHeader.From", "MessageHeader.From is required")
        need(from_, "MessageHeader.From", _FROM_FIELDS)
        recipients = mh.findall(_E + "To")
        if not recipients:
            raise _Refuse("N.MessageHeader.To", "MessageHeader.To is required")
        for to in recipients:
            need(to, "MessageHeader.To", _TO_FIELDS)
        for name, children in _REQUIRED:
            found = mh.find(_E + name)
            if found is None:
                raise _Refuse(f"N.MessageHeader.{name}", f"MessageHeader.{name} is required")
            need(found, f"MessageHeader.{name}", children)
        traces = header.find(_E + "TraceHeaderList")
        if traces is None or traces.find(_E + "TraceHeader") is None:
            raise _Refuse(
                "N.MessageHeader.TraceHeaderList.TraceHeader", "TraceHeaderList is required"
            )
        if header.find(_E + "ErrorList") is None:
            raise _Refuse("N.MessageHeader.ErrorList", "ErrorList is required")

    def _store_document(
        self,
        root: etree._Element,
        header: etree._Element,
        mh: etree._Element,
        message: edochub.Message,
    ) -> StoredDocument:
        from_id = _text(mh.find(_E + "From"), "OrganId")
        if not from_id or len(from_id.split(".")) > 4:
            raise _Refuse("R.MessageHeader.From.OrganId", "From.OrganId is invalid")
        to_ids = [_text(to, "OrganId") for to in mh.findall(_E + "To")]
        if any(not t for t in to_ids) or len(set(to_ids)) != len(to_ids):
            raise _Refuse("R.MessageHeader.To.OrganId", "To.OrganId is empty or repeated")
        code = mh.find(_E + "Code")
        number, notation = _text(code, "CodeNumber"), _text(code, "CodeNotation")
        if not number or not notation:
            raise _Refuse("R.MessageHeader.Code", "CodeNumber and CodeNotation are required")
        date_text = _text(mh.find(_E + "PromulgationInfo"), "PromulgationDate")
        today = dt.datetime.fromtimestamp(self.now(), edochub.VIETNAM).date()
        try:
            date = dt.datetime.strptime(date_text, "%Y/%m/%d").date()
        except ValueError:
            raise _Refuse("PromulgationDate", "PromulgationDate is not yyyy/MM/dd") from None
        if date > today:
            raise _Refuse("PromulgationDate", "PromulgationDate is in the future")
        if _text(mh.find(_E + "DocumentType"), "Type") not in {"1", "2"}:
            raise _Refuse("T.MessageHeader.DocumentType.Type", "DocumentType.Type is 1 or 2")
        if not _text(mh, "Subject"):
            raise _Refuse("R.MessageHeader.Subject", "Subject is required")
        traces = header.find(_E + "TraceHeaderList")
        assert traces is not None
        business = _child(traces, "Business")
        if business is None:
            business = _child(traces, "Bussiness")
        doc_type = _text(business, "BusinessDocType") or _text(business, "BussinessDocType")
        if not doc_type.isdigit():
            raise _Refuse("M.SendDocument", "java.lang.NullPointerException: BusinessDocType")
        document_id = _text(mh, "DocumentId")
        if int(doc_type) == 0 and any(
            d.document_id == document_id for d in self.documents.values()
        ):
            raise _Refuse("M.Exist", "Document is exist on ESB !!!!")
        manifest = root.find(f"{_S}Body/{_E}Manifest")
        attachments = []
        for ref in manifest.findall(_E + "Reference") if manifest is not None else ():
            href = ref.get(f"{{{XLINK_NS}}}href") or ref.get("href") or ""
            part = message.part(href)
            if part is None or not _text(ref, "AttachmentName"):
                raise _Refuse("R.AttachmentName", f"no attachment for {href[:80]}")
            attachments.append(part)
        signature = header.find(_E + "Signature")
        if signature is not None:
            header.remove(signature)  # never replayed: it holds the sender's token
        self._next_doc += 1
        stored = StoredDocument(
            hub_id=self._next_doc,
            document_id=document_id,
            doc_code=f"{number}/{notation.split('#', 1)[0]}",
            from_organ=from_id,
            to_organs=to_ids,
            promulgation_date=date_text,
            business_doc_type=int(doc_type),
            envelope=etree.tostring(root, xml_declaration=True, encoding="UTF-8"),
            attachments=attachments,
            created=self.now(),
            not_ready=self.faults.not_ready,
        )
        self.documents[stored.hub_id] = stored
        for to in to_ids:
            self.notifications.append(Notification(to, stored.hub_id))
        return stored

    def _pending(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "GetPendingDocumentIds"
        body = root.find(_S + "Body")
        if body is None or body.find("GetPendingDocumentIdsRequest") is None:
            # That handler has no try/catch: the hub answers an empty Body (§4.3).
            return _Answer(200, edochub.answer_envelope(""), "no wrapper: empty Body")
        _, organ_id, refused = self._body_credentials(root, action, "GetPendingDocumentIdsRequest")
        if refused is not None:
            return refused
        ids = [n.hub_id for n in self.notifications if n.receiver == organ_id and not n.taken]
        inner = "".join(f"<edXML:DocumentId>{i}</edXML:DocumentId>" for i in ids)
        payload = (
            f"<edXML:DocumentIds>{inner}</edXML:DocumentIds>" if ids else ("<edXML:DocumentIds/>")
        )
        return _Answer(
            200, edochub.wrapped(action, payload), f"{len(ids)} pending", organ_id=organ_id
        )

    @staticmethod
    def _document_id_of(root: etree._Element) -> int:
        # The hub scans the whole envelope for the first unprefixed `documentId`, any case.
        for element in root.iter():
            if element.prefix is None and _local(element).lower() == "documentid":
                text = (element.text or "").strip()
                return int(text) if text.isdigit() else 0
        return 0

    def _get_document(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "GetDocument"
        _, organ_id, refused = self._body_credentials(root, action, "GetDocumentRequest")
        if refused is not None:
            return refused
        hub_id = self._document_id_of(root)
        if hub_id <= 0:
            return self._refused(
                action, "M.GetDocument", "OrganId and documentId required!", organ_id
            )
        allowed = any(n.receiver == organ_id and n.hub_id == hub_id for n in self.notifications)
        doc = self.documents.get(hub_id)
        if not allowed or doc is None:
            return self._refused(
                action, "M.GetDocumentCheckAllow", "Organ not allow with document", organ_id
            )
        if doc.not_ready > 0:
            doc.not_ready -= 1
            self.fault_hits["not_ready"] += 1
            return self._refused(
                action, "M.GetDocument", f"Not found document {hub_id} in database", organ_id
            )
        doc.fetches += 1
        parts = tuple(
            Part(p.content_id, p.content_type, edochub.base64_text(p.body)) for p in doc.attachments
        )
        content_type, body = edochub.multipart_related(edochub.Message(doc.envelope, parts))
        return _Answer(
            200, body, f"document {hub_id}", content_type.encode("ascii"), organ_id=organ_id
        )

    def _confirm(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "ConfirmReceived"
        _, organ_id, refused = self._body_credentials(root, action, "ConfirmReceived")
        if refused is not None:
            return refused
        hub_id = self._document_id_of(root)
        if hub_id <= 0:
            return self._refused(action, "M.DocumentId", "DocumentId is required", organ_id)
        if self.faults.lost_confirms > 0:
            self.faults.lost_confirms -= 1
            self.fault_hits["lost_confirms"] += 1
            return _Answer(200, b"", "lost (fault lost_confirms)", organ_id=organ_id, drop=True)
        for n in self.notifications:
            if n.receiver == organ_id and n.hub_id == hub_id:
                n.taken = True
        doc = self.documents.get(hub_id)
        if doc is None:
            return self._refused(
                action,
                "M.ConfirmReceived",
                f"Not found document with document id {hub_id}",
                organ_id,
            )
        confirmer = self.organizations[organ_id].public
        date = edochub.parse_date(doc.promulgation_date)
        day = date.strftime("%Y/%m/%d") if date else doc.promulgation_date
        self._add_trace(
            doc.hub_id,
            Trace(
                from_=confirmer,
                response_for=ResponseFor(
                    doc.from_organ, doc.doc_code, day, f"{doc.from_organ},{day},{doc.doc_code}"
                ),
                staff=edochub.StaffInfo(staff="EdocAdapter"),
                code=1,
                description="Da nhan van ban ve he thong",
                timestamp=self._now_text(),
            ),
        )
        return _Answer(200, self._report(action, True), f"confirmed {hub_id}", organ_id=organ_id)

    def _add_trace(self, hub_id: int, trace: Trace) -> None:
        self.traces.append(
            StoredTrace(
                self._next_trace,
                hub_id,
                trace.from_.organ_id,
                trace.response_for.organ_id,
                trace,
                self.now(),
            )
        )
        self._next_trace += 1

    def _update_traces(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "UpdateTraces"
        organ_id: str | None = None
        try:
            organ_id = self._signature_credentials(root)
            body = root.find(_S + "Body")
            status = None if body is None else body.find("Status")  # unqualified only
            if status is None:
                raise _Refuse("M.UpdateTraces", "java.lang.NullPointerException: Status")
            try:
                trace = edochub.status_of(status)
            except edochub.HubProtocolError:
                raise _Refuse("M.UpdateTraces", "java.lang.NumberFormatException") from None
            rf = trace.response_for
            if trace.code != 5 and any(
                t.from_organ == trace.from_.organ_id
                and t.to_organ == rf.organ_id
                and t.trace.response_for.code == rf.code
                and t.trace.code == trace.code
                for t in self.traces
            ):
                raise _Refuse(
                    "M.UpdateTraces",
                    f"Exist trace on esb with organ {trace.from_.organ_id} code {rf.code}",
                )
            doc = self._document_for(trace)
            if _child(status, "StaffInfo") is None:
                raise _Refuse("M.UpdateStatus", "StaffInfo is required")
            self._add_trace(doc.hub_id, trace)
        except _Refuse as refuse:
            return self._refused(action, refuse.code, refuse.description, organ_id)
        return _Answer(200, self._report(action, True), f"trace {trace.code}", organ_id=organ_id)

    def _document_for(self, trace: Trace) -> StoredDocument:
        rf = trace.response_for
        if trace.code == 13:
            sender, recipient = trace.from_.organ_id, rf.organ_id
        else:
            sender, recipient = rf.organ_id, trace.from_.organ_id
        found = [
            d for d in self.documents.values() if d.from_organ == sender and d.doc_code == rf.code
        ]
        if len(found) > 1:
            # The first whose recipient string is exactly the tie-break organisation (§5.5,
            # INFERRED: the DAO loops and takes the first match). Several can match: a revoke
            # (BusinessDocType 1) is a new document with the original's docCode.
            found = [d for d in found if "#".join(d.to_organs) == recipient][:1]
        if not found:
            raise _Refuse("M.UpdateStatusDoc", f"Not found document with code {rf.code}")
        return found[0]

    def _get_traces(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "GetTraces"
        wrapper, organ_id, refused = self._body_credentials(root, action, "GetTraces")
        if refused is not None:
            return refused
        since_text = _text(wrapper, "TimeStamp")
        mine = [t for t in self.traces if t.to_organ == organ_id]
        if since_text:
            since = edochub.parse_time(since_text)
            if since is None:
                return self._refused(action, "M.GetTraces", "Unparseable date", organ_id)
            chosen = [t for t in mine if (t.trace.moment or since) >= since]
        else:
            chosen = [t for t in mine if t.enable]
            for t in chosen:
                t.enable = False
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        chosen.sort(key=lambda t: t.trace.moment or epoch, reverse=True)
        inner = "".join(edochub.trace_xml(_as_sent(t.trace)) for t in chosen)
        payload = f"<edXML:Traces>{inner}</edXML:Traces>" if chosen else "<edXML:Traces/>"
        return _Answer(
            200, edochub.wrapped(action, payload), f"{len(chosen)} traces", organ_id=organ_id
        )

    def _get_organizations(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "GetOrganizations"
        _, organ_id, refused = self._body_credentials(root, action, "GetOrganizations")
        if refused is not None:
            return refused
        inner = "".join(edochub.organization_xml(o.public) for o in self.organizations.values())
        payload = f"<edXML:Organizations>{inner}</edXML:Organizations>"
        count = len(self.organizations)
        return _Answer(
            200, edochub.wrapped(action, payload), f"{count} organisations", organ_id=organ_id
        )

    def _check_permission(self, root: etree._Element, message: edochub.Message) -> _Answer:
        action = "CheckPermission"
        header = root.find(_S + "Header")
        probe = None if header is None else header.find("CheckPermission")
        organ_id, token = _text(probe, "OrganId"), _text(probe, "Token")
        if not organ_id or not token:
            return self._refused(action, "CheckPermission", "OrganId or Token is required", None)
        ok = self._known(organ_id, token)
        return _Answer(200, self._report(action, ok), f"permission {ok}", organ_id=organ_id)

    # --- control face ---------------------------------------------------------------------

    def _control(self, request: Request, name: str) -> bytes:
        peer = request.getClientAddress()
        host = getattr(peer, "host", None)
        if host is not None and not is_loopback(str(host)):
            return self._control_answer(request, 403, {"error": "loopback peers only"})
        try:
            if name == "state" and request.method == b"GET":
                return self._control_answer(request, 200, self.state())
            if request.method != b"POST" or name not in {"faults", "organizations"}:
                return self._control_answer(request, 404, {"error": f"no control {name}"})
            value = json.loads(_body(request, 16 << 20) or b"null")
            if name == "faults":
                if not isinstance(value, dict):
                    raise ValueError("faults are a JSON object")
                self.set_faults(value)
                return self._control_answer(request, 200, {"faults": self.faults.as_dict()})
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ValueError("organisations are a JSON list of objects")
            orgs = [HubOrganization.from_json(v) for v in value]
            self.set_organizations(orgs)
            self.log.info("eDoc hub simulator: {n} organisations set", n=len(orgs))
            return self._control_answer(request, 200, {"organizations": len(self.organizations)})
        except ValueError as exc:
            return self._control_answer(request, 400, {"error": str(exc)})

    @staticmethod
    def _control_answer(request: Request, code: int, payload: Any) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", JSON_CONTENT_TYPE)
        return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def state(self) -> dict[str, Any]:
        """Everything but the tokens and the files' bytes, as JSON-ready values."""
        return {
            "organizations": sorted(self.organizations),
            "documents": [
                {
                    "hub_id": d.hub_id,
                    "document_id": d.document_id,
                    "doc_code": d.doc_code,
                    "from": d.from_organ,
                    "to": d.to_organs,
                    "attachments": [p.content_id for p in d.attachments],
                    "fetches": d.fetches,
                    "not_ready": d.not_ready,
                }
                for d in self.documents.values()
            ],
            "notifications": [attrs.asdict(n) for n in self.notifications],
            "traces": [
                {
                    "trace_id": t.trace_id,
                    "hub_id": t.hub_id,
                    "from": t.from_organ,
                    "to": t.to_organ,
                    "code": t.trace.code,
                    "enable": t.enable,
                }
                for t in self.traces
            ],
            "requests": dict(self.requests),
            "faults": self.faults.as_dict(),
            "fault_hits": dict(self.fault_hits),
        }


def _as_sent(trace: Trace) -> Trace:
    """A trace as GetTraces writes it: ResponseFor/PromulgationDate with a time (§5.6)."""
    date = edochub.parse_date(trace.response_for.promulgation_date)
    if date is None:
        return trace
    rf = attrs.evolve(trace.response_for, promulgation_date=date.strftime("%Y/%m/%d 00:00:00"))
    return attrs.evolve(trace, response_for=rf)


def _body(request: Request, cap: int) -> bytes:
    # twisted.web declares `content` as None on the class; a request with a body has a file.
    content = cast("IO[bytes] | None", request.content)
    return b"" if content is None else content.read(cap)


def _content_type(request: Request) -> str | None:
    value = request.getHeader(b"content-type")
    return None if value is None else value.decode("latin-1")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
