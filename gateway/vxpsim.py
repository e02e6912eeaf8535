"""A simulator of the national exchange axis (VXP), in memory, behind a real twisted.web server.

It answers as docs/vxp.md §9 says the axis does, over the same wire as `edxml.vxp` describes:
every request's HMAC is verified (`edxml.vxp.verify_request`), parameters are read from the
signed headers only, and every answer carries status/ErrorCode/ErrorDesc (plus `DocId` on every
sendEdoc answer and `data` on every getEdoc answer), as `application/json; charset=UTF-8`, with
an HTTP `Date` from the simulator's clock plus `clock_offset`.

* sendEdoc: checks `hash-file` (lossy or correct hex) when sent and `from` (the system id or an
  agency registered under it; else the axis's own text `Don vi gui <from> khong dung voi ma da
  dang ky: <systemId>`), strips one trailing CRLF, parses the edXML with the project's hardened
  parser (`edxml.xmlsafe`) and makes one inbox item per recipient: `To/OrganId` of the
  MessageHeader for `edoc`, `ResponseFor/OrganId` for `status`. A recipient no system has
  registered refuses the whole upload (`Khong tim thay don vi nhan <code>`), nothing stored.
  The upload gets its own DocId; each item its own docId (24 hex), as getSentEdocList's
  senderDocId/receiverDocId pair suggests.
* getReceivedEdocList / countReceive*: the caller's unacknowledged items of one messagetype.
  getEdoc: base64 in JSON. updateStatus: `done`/`fail` take an item off the list, `processing`
  keeps it; repeated calls are answered OK (idempotent) and counted; `docid` or `docId`.
* getSentEdocList (per recipient), getAgenciesList (and the QD20 and SynchronizeUnit lists, from
  the same directory), downloadEdoc (raw bytes), registerAgency, deleteAgency.

Faults, each deterministic and counted in `fault_hits`, set at start or at run time:

* `slow` (seconds): every answer is written that much later (reactor.callLater). The request
  has taken effect already: a sendEdoc whose sender gave up waiting is stored all the same;
* `http500` (count): the next N requests get HTTP 500 with an HTML page and have no effect;
* `drop_after_commit` (count): the next N sendEdoc are stored, then the connection is dropped
  without an answer, so the sender will upload again (a duplicate upload);
* `duplicate_listing` (on/off): each pending item is listed twice in every list, and an item
  acknowledged (done/fail) while it is on comes back once more, as pending, in the next list of
  its messagetype for its system;
* `not_ready` (count): an item created while it is N answers FAIL `Van ban chua san sang` to its
  first N getEdoc;
* `lost_acks` (count): the next N updateStatus are lost on the way: the connection is dropped
  and the item stays pending, as if the acknowledgement never arrived;
* `clock_offset` (seconds): added to the HTTP Date header.

A control face for tests and operators sits on the same port under `/_sim/`, for loopback peers
only: `GET /_sim/state`, `POST /_sim/faults` (a JSON object of faults), `POST /_sim/systems`
(`{"system_id", "secret", "agencies"}`), `POST /_sim/agencies` (a JSON list of directory
entries, merged by code). Operations are served under the prefix (default
`/XrdAdapter/adapter`) and at the root.

Nothing is persisted unless `state_file` is given; then the whole state (items with their bytes,
uploads, counters, faults, the directory, and systems registered at run time, with their secrets:
the file is created 0600) is written after each change (temporary file, fsync, os.replace) and
read at start, so that the simulator can be restarted too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Final, cast

import attrs
from lxml import etree

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from edxml import vxp, xmlsafe
from edxml.codes import NS
from edxml.errors import EdxmlError
from edxml.xmlsafe import Limits
from gateway.simhost import SimSite, SimulatorHost, is_loopback

__all__ = [
    "DEFAULT_PREFIX",
    "FAULTS",
    "Faults",
    "System",
    "VxpSimulator",
    "fault_value",
]

DEFAULT_PREFIX: Final = "/XrdAdapter/adapter"
JSON_CONTENT_TYPE: Final = b"application/json; charset=UTF-8"
STATE_VERSION: Final = 1
NOT_READY_TEXT: Final = "Van ban chua san sang"
FAULTS: Final = (
    "slow",
    "http500",
    "drop_after_commit",
    "duplicate_listing",
    "not_ready",
    "lost_acks",
    "clock_offset",
)
_PENDING: Final = ("initial", "processing")
_STATE_DESC: Final = {
    "initial": "Khoi tao",
    "processing": "Dang xu ly",
    "done": "Da nhan",
    "fail": "Nhan loi",
}
_LIST_OPS: Final = ("getReceivedEdocList", "getSentEdocList")
_DIRECTORY_OPS: Final = ("getAgenciesList", "getAgenciesListQD20", "getSynchronizeUnit")
_GET_OPS: Final = frozenset({"downloadEdoc", "countReceiveEdoc", "countReceiveStatus"})
_ERROR_PAGE: Final = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>HTTP Status 500 - Internal Server Error</h1></body></html>"
)


def _secret_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _codes(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class System:
    """A client system the axis knows: its HMAC secret and the agencies registered under it."""

    secret: bytes = attrs.field(converter=_secret_bytes, repr=False)
    agencies: frozenset[str] = attrs.field(factory=frozenset, converter=_codes)


def fault_value(name: str, value: Any) -> float | int | bool:
    """A fault's value checked and normalised (from JSON or from `name=value` text)."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    if name == "duplicate_listing":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "on", "yes"}:
            return True
        if text in {"0", "false", "off", "no"}:
            return False
        raise ValueError(f"fault {name} is on or off, not {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"fault {name} is a number, not {value!r}")
    try:
        number = float(value) if name in {"slow", "clock_offset"} else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"fault {name} is a number, not {value!r}") from None
    if name != "clock_offset" and number < 0:
        raise ValueError(f"fault {name} cannot be negative")
    return number


@attrs.define
class Faults:
    slow: float = 0.0
    http500: int = 0
    drop_after_commit: int = 0
    duplicate_listing: bool = False
    not_ready: int = 0
    lost_acks: int = 0
    clock_offset: float = 0.0

    def update(self, values: Mapping[str, Any]) -> None:
        checked = {name: fault_value(name, value) for name, value in values.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class Item:
    """One inbox entry: a recipient's copy of one upload."""

    doc_id: str
    upload_id: str
    message_type: str
    from_: str
    to: str
    sender_system: str
    recipient_system: str
    data: bytes = attrs.field(repr=False)
    created: float
    updated: float
    state: str = "initial"
    description: str | None = None
    fetches: int = 0
    acks: int = 0
    ack_history: list[str] = attrs.field(factory=list)
    acknowledged_at: float | None = None
    not_ready: int = 0
    ghost: bool = False  # duplicate_listing: to be listed once more after its acknowledgment


@attrs.define
class Upload:
    doc_id: str
    system_id: str
    from_: str
    message_type: str
    created: float
    size: int
    sha256: str
    item_ids: list[str]
    title: str = ""
    notation: str = ""


@attrs.frozen
class _Answer:
    code: int
    body: bytes
    outcome: str
    content_type: bytes = JSON_CONTENT_TYPE
    system_id: str | None = None
    drop: bool = False


class _Discard:
    """Where the attachments' decoded bytes go while recipients are looked up: nowhere."""

    def write(self, data: bytes, /) -> int:
        return len(data)


def _vn_time(seconds: float) -> str:
    # The axis's time format is not documented; a Java-style local time is the guess.
    moment = dt.datetime.fromtimestamp(seconds, vxp.VIETNAM)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _text(element: etree._Element | None) -> str:
    return "" if element is None else (element.text or "").strip()


class _SimResource(Resource):
    isLeaf = True

    def __init__(self, simulator: VxpSimulator) -> None:
        super().__init__()
        self._simulator = simulator

    def render(self, request: Request) -> Any:
        return self._simulator.render(request)


class VxpSimulator(SimulatorHost):
    """The axis in memory. `systems` maps a system id to its `System`; `agencies` is the
    directory getAgenciesList answers (each entry needs a `code`; by default every registered
    agency); `clock` gives the time in epoch seconds (default the reactor's)."""

    log = Logger()

    def __init__(
        self,
        systems: Mapping[str, System] | None = None,
        *,
        reactor: Any,
        agencies: Iterable[Mapping[str, Any]] | None = None,
        prefix: str = DEFAULT_PREFIX,
        faults: Mapping[str, Any] | None = None,
        state_file: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] | None = None,
        limits: Limits = xmlsafe.DEFAULT_LIMITS,
    ) -> None:
        self._reactor = reactor
        self._clock: Callable[[], float] = clock or reactor.seconds
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.mount = self.prefix
        self._limits = limits
        self.systems: dict[str, System] = {}
        self._runtime_systems: set[str] = set()
        self.directory: dict[str, dict[str, str]] = {}
        self.items: dict[str, Item] = {}
        self.uploads: dict[str, Upload] = {}
        self.requests: Counter[str] = Counter()
        self.fault_hits: Counter[str] = Counter()
        self.faults = Faults()
        self.state_file = Path(state_file) if state_file is not None else None
        self._directory_given = False
        if self.state_file is not None and self.state_file.exists():
            self._load(self.state_file)
        for system_id, system in (systems or {}).items():
            self.register_system(system_id, system, save=False)
        if agencies is not None:
            self.set_agencies(agencies, save=False)
        if faults:
            self.faults.update(faults)
        self.resource = _SimResource(self)
        self.site = SimSite(self.resource)
        self._port: Any = None
        self._waiting: set[Deferred[None]] = set()

    # --- running --------------------------------------------------------------------------

    # --- configuration --------------------------------------------------------------------

    def register_system(
        self, system_id: str, system: System, *, runtime: bool = False, save: bool = True
    ) -> None:
        """Add or replace a system; an agency may belong to one system only."""
        if not system_id or not system_id.isascii():
            raise ValueError(f"system id {system_id!r} must be non-empty ASCII")
        for other_id, other in self.systems.items():
            if other_id == system_id:
                continue
            shared = (system.agencies | {system_id}) & (other.agencies | {other_id})
            if shared:
                raise ValueError(
                    f"agencies {sorted(shared)} are registered under system {other_id} already"
                )
        self.systems[system_id] = system
        # Only systems registered at run time are persisted (with their secret); a configured
        # one keeps its secret where the configuration put it.
        if runtime:
            self._runtime_systems.add(system_id)
        else:
            self._runtime_systems.discard(system_id)
        if save:
            self._save()

    def set_agencies(self, entries: Iterable[Mapping[str, Any]], *, save: bool = True) -> None:
        """Merge directory entries by code (`id`, `pid`, `code`, `name`, `mail`, `oldCode`)."""
        checked: list[dict[str, str]] = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise ValueError("a directory entry is a JSON object")
            code = entry.get("code")
            if not isinstance(code, str) or not code.strip():
                raise ValueError("a directory entry needs a code")
            checked.append({str(k): "" if v is None else str(v) for k, v in entry.items()})
        for entry in checked:
            entry["code"] = entry["code"].strip()
            self.directory[entry["code"]] = entry
        self._directory_given = True
        if save:
            self._save()

    def set_faults(self, values: Mapping[str, Any]) -> None:
        self.faults.update(values)
        self.log.info("VXP simulator faults now {faults}", faults=self.faults.as_dict())
        self._save()

    def _owner(self, code: str) -> str | None:
        for system_id, system in self.systems.items():
            if code == system_id or code in system.agencies:
                return system_id
        return None

    def _secret_for(self, system_id: str) -> bytes | None:
        system = self.systems.get(system_id)
        return None if system is None else system.secret

    def _directory(self) -> list[dict[str, str]]:
        if self._directory_given or self.directory:
            return list(self.directory.values())
        entries: list[dict[str, str]] = []
        for system_id, system in self.systems.items():
            for code in sorted(system.agencies):
                entries.append(
                    {
                        "id": str(len(entries) + 1),
                        "pid": system_id,
                        "code": code,
                        "name": code,
                        "mail": "",
                        "oldCode": "",
                    }
                )
        return entries

    def now(self) -> float:
        return float(self._clock())

    # --- HTTP -----------------------------------------------------------------------------

    def render(self, request: Request) -> Any:
        path = (request.path or b"/").decode("latin-1")
        if path.startswith("/_sim/"):
            return self._control(request, path[len("/_sim/") :])
        gone: list[bool] = []

        def lost(reason: Failure) -> None:
            gone.append(True)

        request.notifyFinish().addErrback(lost)
        d = Deferred.fromCoroutine(self._serve(request, self._op_of(path), gone))
        d.addErrback(self._crashed, request)
        return NOT_DONE_YET

    def _op_of(self, path: str) -> str:
        rest = path
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            rest = path[len(self.prefix) :]
        return rest.strip("/")

    async def _serve(self, request: Request, op: str, gone: list[bool]) -> None:
        self.requests[op] += 1
        if self.faults.http500 > 0:
            self.faults.http500 -= 1
            self.fault_hits["http500"] += 1
            self._save()
            answer = _Answer(500, _ERROR_PAGE, "HTTP 500 (fault http500)", b"text/html")
        else:
            try:
                answer = self._answer(op, request)
            except Exception:
                self.log.failure("VXP simulator failed on {op}", op=op)
                answer = self._fail(op, "Loi he thong", code=500)
        self.log.info(
            "VXP simulator {op} from {system_id}: {outcome}",
            op=op,
            system_id=answer.system_id or "-",
            outcome=answer.outcome,
            http_status=answer.code,
        )
        if not await self.answer_ready(request, gone, drop=answer.drop):
            return
        self._write(request, answer)

    def _write(self, request: Request, answer: _Answer) -> None:
        request.setResponseCode(answer.code)
        request.setHeader(b"content-type", answer.content_type)
        request.setHeader(b"date", http.datetimeToString(self.now() + self.faults.clock_offset))
        request.setHeader(b"content-length", b"%d" % len(answer.body))
        request.write(answer.body)
        request.finish()

    def _crashed(self, failure: Failure, request: Request) -> None:
        self.log.failure("VXP simulator could not answer", failure=failure)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.setResponseCode(500)
            request.finish()

    def _answer(self, op: str, request: Request) -> _Answer:
        handler = self._handlers().get(op)
        if handler is None:
            return self._fail(op, f"Khong ho tro thao tac {vxp.ascii_fold(op)[:80]}", code=404)
        method = request.method
        if method != b"POST" and not (method == b"GET" and op in _GET_OPS):
            return self._fail(op, "Phuong thuc khong duoc ho tro", code=405)
        try:
            verified = vxp.verify_request(self._header_lookup(request), self._secret_for)
        except vxp.VxpAuthError as exc:
            desc = f"Xac thuc khong thanh cong: {vxp.ascii_fold(exc.message_vi)} ({exc.message_en})"
            return self._fail(op, desc)
        answer = handler(verified, request)
        return attrs.evolve(answer, system_id=verified.system_id)

    @staticmethod
    def _header_lookup(request: Request) -> Callable[[str], str | None]:
        def lookup(name: str) -> str | None:
            try:
                raw = request.requestHeaders.getRawHeaders(name.encode("latin-1"))
            except (UnicodeEncodeError, ValueError):
                return None
            if not raw:
                return None
            # surrogateescape keeps the exact bytes for the HMAC, even when they are not UTF-8.
            return ", ".join(v.decode("utf-8", "surrogateescape") for v in raw)

        return lookup

    def _handlers(self) -> dict[str, Callable[[vxp.VerifiedRequest, Request], _Answer]]:
        return {
            "sendEdoc": self._send_edoc,
            "getReceivedEdocList": self._received_list,
            "getEdoc": self._get_edoc,
            "updateStatus": self._update_status,
            "getSentEdocList": self._sent_list,
            "countReceiveEdoc": self._count,
            "countReceiveStatus": self._count,
            "downloadEdoc": self._download,
            "getAgenciesList": self._agencies,
            "getAgenciesListQD20": self._agencies,
            "getSynchronizeUnit": self._agencies,
            "registerAgency": self._register_agency,
            "deleteAgency": self._delete_agency,
        }

    # --- answers --------------------------------------------------------------------------

    @staticmethod
    def _fail_payload(op: str) -> dict[str, Any]:
        if op == "sendEdoc":
            return {"DocId": ""}
        if op == "getEdoc":
            return {"data": ""}
        if op in _LIST_OPS or op in _DIRECTORY_OPS:
            return {"data": []}
        if op in {"countReceiveEdoc", "countReceiveStatus"}:
            return {"count": 0}
        return {}

    def _fail(self, op: str, desc: str, *, code: int = 200) -> _Answer:
        text = vxp.ascii_fold(desc)
        body = vxp.response_json(False, "-1", text, **self._fail_payload(op))
        return _Answer(code, body, f"FAIL {text}")

    @staticmethod
    def _ok(outcome: str = "OK", **payload: Any) -> _Answer:
        return _Answer(200, vxp.response_json(True, "0", vxp.SUCCESS_DESC, **payload), outcome)

    def _body(self, request: Request, cap: int) -> bytes | None:
        # twisted.web declares `content` as None on the class; a request with a body has a file.
        content = cast("IO[bytes] | None", request.content)
        if content is None:
            return b""
        content.seek(0, os.SEEK_END)
        size = content.tell()
        if size > cap:
            return None
        content.seek(0)
        return content.read()

    # --- sendEdoc -------------------------------------------------------------------------

    def _send_edoc(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        op = "sendEdoc"
        system_id = verified.system_id
        sender = (verified.param("from") or "").strip()
        message_type = (verified.param("messagetype") or "").strip()
        if message_type not in vxp.MESSAGE_TYPES:
            return self._fail(op, f"Loai thong diep khong hop le: {message_type[:40]}")
        if not sender or (sender != system_id and sender not in self.systems[system_id].agencies):
            return self._fail(op, f"Don vi gui {sender} khong dung voi ma da dang ky: {system_id}")
        body = self._body(request, self._limits.max_bytes + 2)
        if body is None:
            return self._fail(op, "Tep qua lon")
        if body.endswith(b"\r\n"):
            body = body[:-2]
        claimed = verified.param("hash-file")
        if claimed is not None and not vxp.hash_file_matches(body, claimed):
            return self._fail(op, "Ma bam tep (hash-file) khong khop voi noi dung tep")
        try:
            parsed = xmlsafe.parse_stream(
                body, limits=self._limits, sink_factory=lambda index: _Discard()
            )
        except EdxmlError as exc:
            return self._fail(op, f"Tep edXML khong hop le: {exc.message_en}"[:300])
        root = parsed.root
        recipients = self._recipients(root, message_type)
        if not recipients:
            return self._fail(op, "Khong tim thay don vi nhan trong tep edXML")
        owners: dict[str, str] = {}
        for code in recipients:
            owner = self._owner(code)
            if owner is None:
                return self._fail(op, f"Khong tim thay don vi nhan {code}")
            owners[code] = owner
        now = self.now()
        upload = Upload(
            doc_id=self._fresh_id(),
            system_id=system_id,
            from_=sender,
            message_type=message_type,
            created=now,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            item_ids=[],
            title=self._title(root),
            notation=self._notation(root, message_type),
        )
        self.uploads[upload.doc_id] = upload
        for code, owner in owners.items():
            item = Item(
                doc_id=self._fresh_id(),
                upload_id=upload.doc_id,
                message_type=message_type,
                from_=sender,
                to=code,
                sender_system=system_id,
                recipient_system=owner,
                data=body,
                created=now,
                updated=now,
                not_ready=self.faults.not_ready,
            )
            self.items[item.doc_id] = item
            upload.item_ids.append(item.doc_id)
        outcome = f"OK DocId {upload.doc_id} to {', '.join(owners)}"
        if self.faults.drop_after_commit > 0:
            self.faults.drop_after_commit -= 1
            self.fault_hits["drop_after_commit"] += 1
            self._save()
            return _Answer(200, b"", f"{outcome}; connection dropped (fault)", drop=True)
        self._save()
        return self._ok(outcome, DocId=upload.doc_id)

    @staticmethod
    def _recipients(root: etree._Element, message_type: str) -> list[str]:
        header = f".//{{{NS}}}edXMLHeader/*"
        path = f"{{{NS}}}To/{{{NS}}}OrganId"
        if message_type == "status":
            path = f"{{{NS}}}ResponseFor/{{{NS}}}OrganId"
        found: list[str] = []
        for message in root.iterfind(header):
            for element in message.iterfind(path):
                code = _text(element)
                if code and code not in found:
                    found.append(code)
        return found

    @staticmethod
    def _title(root: etree._Element) -> str:
        for name in ("Subject", "Description"):
            element = root.find(f".//{{{NS}}}edXMLHeader/*/{{{NS}}}{name}")
            if element is not None:
                return _text(element)
        return ""

    @staticmethod
    def _notation(root: etree._Element, message_type: str) -> str:
        header = f".//{{{NS}}}edXMLHeader/*"
        if message_type == "status":
            return _text(root.find(f"{header}/{{{NS}}}ResponseFor/{{{NS}}}Code"))
        number = _text(root.find(f"{header}/{{{NS}}}Code/{{{NS}}}CodeNumber"))
        notation = _text(root.find(f"{header}/{{{NS}}}Code/{{{NS}}}CodeNotation"))
        return f"{number}/{notation}" if number or notation else ""

    def _fresh_id(self) -> str:
        while True:
            doc_id = secrets.token_hex(12)
            if doc_id not in self.items and doc_id not in self.uploads:
                return doc_id

    # --- the inbox ------------------------------------------------------------------------

    def _listing(self, item: Item, *, as_pending: bool = False) -> dict[str, str]:
        state = "initial" if as_pending else item.state
        return {
            "docId": item.doc_id,
            "serviceType": vxp.SERVICE_TYPE,
            "messageType": item.message_type,
            "created_time": _vn_time(item.created),
            "updated_time": _vn_time(item.created if as_pending else item.updated),
            "from": item.from_,
            "to": item.to,
            "status": state,
            "status_desc": _STATE_DESC[state],
        }

    def _pending(self, system_id: str, message_type: str) -> list[Item]:
        return [
            item
            for item in self.items.values()
            if item.recipient_system == system_id
            and item.message_type == message_type
            and item.state in _PENDING
        ]

    def _received_list(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        message_type = (verified.param("messagetype") or "edoc").strip()
        entries: list[dict[str, str]] = []
        twice = self.faults.duplicate_listing
        for item in self._pending(verified.system_id, message_type):
            entries.append(self._listing(item))
            if twice:
                entries.append(self._listing(item))
                self.fault_hits["duplicate_listing"] += 1
        ghosts = [
            item
            for item in self.items.values()
            if item.ghost
            and item.recipient_system == verified.system_id
            and item.message_type == message_type
        ]
        for item in ghosts:
            entries.append(self._listing(item, as_pending=True))
            item.ghost = False
            self.fault_hits["duplicate_listing"] += 1
        if ghosts:
            self._save()
        return self._ok(f"OK {len(entries)} listed", data=entries)

    def _count(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        default = "status" if request.path.endswith(b"countReceiveStatus") else "edoc"
        message_type = (verified.param("messagetype") or default).strip()
        count = len(self._pending(verified.system_id, message_type))
        return self._ok(f"OK count {count}", count=count)

    def _item_for(self, verified: vxp.VerifiedRequest) -> Item | None:
        doc_id = (verified.param("docId") or "").strip()
        item = self.items.get(doc_id)
        if item is None or item.recipient_system != verified.system_id:
            return None
        return item

    def _get_edoc(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        op = "getEdoc"
        item = self._item_for(verified)
        if item is None:
            return self._fail(op, f"Khong tim thay van ban {verified.param('docId') or ''}"[:200])
        if item.not_ready > 0:
            item.not_ready -= 1
            self.fault_hits["not_ready"] += 1
            self._save()
            return self._fail(op, NOT_READY_TEXT)
        item.fetches += 1
        self._save()
        data = base64.b64encode(item.data).decode("ascii")
        return self._ok(f"OK {len(item.data)} bytes of {item.doc_id}", data=data)

    def _download(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        item = self._item_for(verified)
        if item is None:
            return _Answer(404, b"", "not found", b"application/octet-stream")
        item.fetches += 1
        self._save()
        return _Answer(200, item.data, f"OK {len(item.data)} bytes", b"application/octet-stream")

    def _update_status(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        op = "updateStatus"
        if self.faults.lost_acks > 0:
            self.faults.lost_acks -= 1
            self.fault_hits["lost_acks"] += 1
            self._save()
            return _Answer(200, b"", "acknowledgement lost (fault)", drop=True)
        status = (verified.param("status") or "").strip().lower()
        if status not in vxp.ACK_STATUSES:
            return self._fail(op, f"Trang thai khong hop le: {status[:40]}")
        item = self._item_for(verified)
        if item is None:
            return self._fail(op, f"Khong tim thay van ban {verified.param('docId') or ''}"[:200])
        item.acks += 1
        item.ack_history.append(status)
        description = verified.param("description")
        if description is not None:
            item.description = description
        if item.state in _PENDING:
            item.state = status
            item.updated = self.now()
            if status != "processing":
                item.acknowledged_at = item.updated
                item.ghost = self.faults.duplicate_listing
        self._save()
        return self._ok(f"OK {item.doc_id} {status} (now {item.state})")

    def _sent_list(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        op = "getSentEdocList"
        doc_id = (verified.param("docId") or "").strip()
        upload = self.uploads.get(doc_id)
        if upload is None or upload.system_id != verified.system_id:
            return self._fail(op, f"Khong tim thay van ban {doc_id}"[:200])
        entries = []
        for item_id in upload.item_ids:
            item = self.items[item_id]
            entries.append(
                {
                    "serviceType": vxp.SERVICE_TYPE,
                    "messageType": upload.message_type,
                    "senderDocId": upload.doc_id,
                    "receiverDocId": item.doc_id,
                    "fromCode": upload.from_,
                    "toCode": item.to,
                    "sendStatus": "done",
                    "sendStatusDesc": "Da gui",
                    "receiveStatus": item.state,
                    "receiveStatusDesc": _STATE_DESC[item.state],
                    "title": vxp.ascii_fold(upload.title),
                    "notation": vxp.ascii_fold(upload.notation),
                    "sentTime": _vn_time(upload.created),
                    "receivedTime": (
                        "" if item.acknowledged_at is None else _vn_time(item.acknowledged_at)
                    ),
                }
            )
        return self._ok(f"OK {len(entries)} recipients", data=entries)

    # --- the directory --------------------------------------------------------------------

    def _agencies(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        entries = self._directory()
        return self._ok(f"OK {len(entries)} agencies", data=entries)

    def _register_agency(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        op = "registerAgency"
        body = self._body(request, 1 << 20) or b""
        try:
            entry = json.loads(body)
        except ValueError:
            entry = None
        code = entry.get("code") if isinstance(entry, dict) else None
        if not isinstance(code, str) or not code.strip():
            return self._fail(op, "Thieu ma don vi (code)")
        assert isinstance(entry, dict)
        code = code.strip()
        owner = self._owner(code)
        if owner is not None and owner != verified.system_id:
            return self._fail(op, f"Don vi {code} da duoc dang ky boi he thong khac")
        system = self.systems[verified.system_id]
        self.systems[verified.system_id] = attrs.evolve(system, agencies=system.agencies | {code})
        fields = {k: "" if v is None else str(v) for k, v in entry.items()}
        fields["code"] = code
        fields.setdefault("pid", str(entry.get("pcode") or verified.system_id))
        self.directory[code] = fields
        self._save()
        return self._ok(f"OK registered {code}")

    def _delete_agency(self, verified: vxp.VerifiedRequest, request: Request) -> _Answer:
        op = "deleteAgency"
        code = (verified.param("AgencyCode") or "").strip()
        system = self.systems[verified.system_id]
        if code not in system.agencies:
            return self._fail(op, f"Don vi {code} khong thuoc he thong {verified.system_id}"[:200])
        self.systems[verified.system_id] = attrs.evolve(system, agencies=system.agencies - {code})
        self.directory.pop(code, None)
        self._save()
        return self._ok(f"OK deleted {code}")

    # --- the control face -----------------------------------------------------------------

    def _control(self, request: Request, name: str) -> bytes:
        body = self._control_answer_for(request, name)
        self.log.info(
            "VXP simulator control {method} {name}: HTTP {http_status}",
            method=(request.method or b"").decode("latin-1"),
            name=name,
            http_status=getattr(request, "code", None),
        )
        return body

    def _control_answer_for(self, request: Request, name: str) -> bytes:
        peer = request.getClientAddress()
        host = getattr(peer, "host", None)
        if host is not None and not is_loopback(str(host)):
            return self._control_answer(request, 403, {"error": "loopback peers only"})
        try:
            if name == "state" and request.method == b"GET":
                return self._control_answer(request, 200, self.state())
            if request.method != b"POST" or name not in {"faults", "systems", "agencies"}:
                return self._control_answer(request, 404, {"error": f"no control {name}"})
            body = self._body(request, 16 << 20) or b""
            value = json.loads(body)
            if name == "faults":
                if not isinstance(value, dict):
                    raise ValueError("faults are a JSON object")
                self.set_faults(value)
                return self._control_answer(request, 200, {"faults": self.faults.as_dict()})
            if name == "systems":
                if not isinstance(value, dict):
                    raise ValueError("a system is a JSON object")
                system_id, secret = value.get("system_id"), value.get("secret")
                agencies = value.get("agencies", [])
                if not isinstance(system_id, str) or not isinstance(secret, str):
                    raise ValueError("system_id and secret are strings")
                if not isinstance(agencies, list) or not all(isinstance(a, str) for a in agencies):
                    raise ValueError("agencies is a list of codes")
                self.register_system(system_id, System(secret, agencies), runtime=True)
                self.log.info("VXP simulator: system {system_id} registered", system_id=system_id)
                return self._control_answer(request, 200, {"registered": system_id})
            if not isinstance(value, list):
                raise ValueError("agencies are a JSON list")
            self.set_agencies(value)
            return self._control_answer(request, 200, {"agencies": len(self.directory)})
        except ValueError as exc:
            return self._control_answer(request, 400, {"error": str(exc)})

    @staticmethod
    def _control_answer(request: Request, code: int, payload: Any) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", JSON_CONTENT_TYPE)
        return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def state(self) -> dict[str, Any]:
        """What `GET /_sim/state` shows: items (without their bytes), uploads, counters, faults,
        systems (without secrets)."""
        return {
            "items": [
                {
                    "docId": item.doc_id,
                    "uploadDocId": item.upload_id,
                    "from": item.from_,
                    "to": item.to,
                    "sender_system": item.sender_system,
                    "recipient_system": item.recipient_system,
                    "messagetype": item.message_type,
                    "state": item.state,
                    "fetches": item.fetches,
                    "acks": item.acks,
                    "ack_history": list(item.ack_history),
                    "acknowledged": item.state not in _PENDING,
                    "not_ready": item.not_ready,
                    "size": len(item.data),
                    "sha256": hashlib.sha256(item.data).hexdigest(),
                    "created_time": _vn_time(item.created),
                }
                for item in self.items.values()
            ],
            "uploads": len(self.uploads),
            "upload_ids": list(self.uploads),
            "requests": dict(self.requests),
            "faults": self.faults.as_dict(),
            "fault_hits": dict(self.fault_hits),
            "systems": {k: sorted(v.agencies) for k, v in self.systems.items()},
            "agencies": len(self._directory()),
        }

    # --- persistence ----------------------------------------------------------------------

    def _save(self) -> None:
        if self.state_file is None:
            return
        snapshot = {
            "version": STATE_VERSION,
            "items": [
                {**attrs.asdict(item), "data": base64.b64encode(item.data).decode("ascii")}
                for item in self.items.values()
            ],
            "uploads": [attrs.asdict(upload) for upload in self.uploads.values()],
            "requests": dict(self.requests),
            "faults": self.faults.as_dict(),
            "fault_hits": dict(self.fault_hits),
            "directory": list(self.directory.values()),
            "directory_given": self._directory_given,
            "systems": {
                system_id: {
                    "secret_hex": self.systems[system_id].secret.hex(),
                    "agencies": sorted(self.systems[system_id].agencies),
                }
                for system_id in sorted(self._runtime_systems)
                if system_id in self.systems
            },
        }
        _atomic_write(self.state_file, json.dumps(snapshot).encode("utf-8"))

    def _load(self, path: Path) -> None:
        try:
            snapshot = json.loads(path.read_bytes())
            if snapshot.get("version") != STATE_VERSION:
                raise ValueError(f"state version {snapshot.get('version')!r}")
            for raw in snapshot.get("items", []):
                raw = dict(raw)
                raw["data"] = base64.b64decode(raw["data"])
                item = Item(**raw)
                self.items[item.doc_id] = item
            for raw in snapshot.get("uploads", []):
                upload = Upload(**raw)
                self.uploads[upload.doc_id] = upload
            self.requests.update(snapshot.get("requests", {}))
            self.fault_hits.update(snapshot.get("fault_hits", {}))
            self.faults.update(snapshot.get("faults", {}))
            for entry in snapshot.get("directory", []):
                self.directory[entry["code"]] = dict(entry)
            self._directory_given = bool(snapshot.get("directory_given"))
            for system_id, raw in snapshot.get("systems", {}).items():
                system = System(bytes.fromhex(raw["secret_hex"]), raw.get("agencies", []))
                self.systems[system_id] = system
                self._runtime_systems.add(system_id)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"cannot read the simulator state {path}: {exc}") from exc


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
