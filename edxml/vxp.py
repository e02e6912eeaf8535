"""VXP, the client protocol of the national document-exchange axis (Trục liên thông văn bản quốc
gia) as the Java SDK "SDKVXP 2.0.x" speaks it, without I/O (docs/vxp.md).

Both sides of the wire live here, so that the client (`gateway.vxpclient`) and the simulator
(`gateway.vxpsim`) cannot disagree about it:

* requests: the SDK timestamp (`format_timestamp`), the lossy SHA-256 `hash-file`, Java HashMap
  key order, Gson's JSON escaping, and `sign_request`, which gives the exact header list the SDK
  would send (parameters travel as `XroadVnpt-*` headers; the HMAC covers only the
  `XroadVnpt-sign-header` JSON text);
* `verify_request`, the server's check of such a request, against the literal signed text, never
  a re-serialisation, never the order, and (unless asked) never the timestamp's age;
* responses: the `status`/`ErrorCode`/`ErrorDesc` envelope (`parse_response`, `response_json`),
  listed items, agencies, and `EdocBodyDecoder`, which decodes getEdoc's base64-in-JSON body as it
  arrives, so that a large document is never held as JSON text, decoded copy and joined copy at
  once.

Errors form one small hierarchy (`VxpError`: `VxpAuthError`, `VxpProtocolError`, `VxpTooLarge`),
each with an English and a Vietnamese message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from edxml.model import VN_TZ

VIETNAM: Final = VN_TZ
PREFIX: Final = "XroadVnpt-"
USER_AGENT: Final = "JAVASDKAgent/1.0.0 XRoad/VPCP"
VERSION: Final = "3.0.201608"
JSON_TYPE: Final = "application/json"
OCTET_STREAM: Final = "application/octet-stream"
SERVICE_TYPE: Final = "eDoc"
MESSAGE_TYPES: Final = ("edoc", "status")
ACK_STATUSES: Final = ("done", "fail", "processing")
SUCCESS_DESC: Final = "Thanh cong"

# Keys the SDK itself puts in the map, and the names of the headers added after it: a caller's
# parameter of one of these names would collide with them on the wire.
_RESERVED: Final = frozenset(
    {"systemid", "timestamp", "content-type", "sign-header-key", "sign-header", "hash-header"}
    | {"version"}
)
_LIST_OPS: Final = frozenset(
    {
        "getReceivedEdocList",
        "getSentEdocList",
        "getAgenciesList",
        "getAgenciesListQD20",
        "getSynchronizeUnit",
    }
)
_COUNT_OPS: Final = frozenset({"countReceiveEdoc", "countReceiveStatus"})
_BASE_FIELDS: Final = ("status", "ErrorCode", "ErrorDesc")


# --------------------------------------------------------------------------------- errors


class VxpError(Exception):
    """Base of the protocol's errors: an English and a Vietnamese message."""

    def __init__(self, message_en: str, message_vi: str) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_vi = message_vi


class VxpAuthError(VxpError):
    """A request whose signature does not hold; `reason` is a stable code (e.g.
    `hash_mismatch`, `unknown_system`) for logs and tests."""

    def __init__(self, reason: str, message_en: str, message_vi: str) -> None:
        super().__init__(message_en, message_vi)
        self.reason = reason


class VxpProtocolError(VxpError):
    """Bytes that are not what the protocol says: a body that is no VXP answer, a timestamp of
    another shape, a parameter that cannot travel as a signed header."""


class VxpTooLarge(VxpError):
    """A decoded payload over the caller's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the document is larger than the limit of {limit} bytes",
            f"văn bản vượt quá giới hạn {limit} byte",
        )
        self.limit = limit


# --------------------------------------------------------------------------------- text


def ascii_fold(text: str) -> str:
    """Vietnamese text as the axis writes it, without diacritics ("Thành công" -> "Thanh cong"):
    parameter values and ErrorDesc must be ASCII (docs/vxp.md §3.4, §5). Anything else that is
    not ASCII becomes "?"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return kept.encode("ascii", "replace").decode("ascii")


# --------------------------------------------------------------------------------- timestamp

_TIMESTAMP: Final = re.compile(r"(\d\d)(\d\d)(\d{4})T(\d\d)(\d\d)(\d\d)\+(\d{4})", re.ASCII)


def format_timestamp(moment: dt.datetime) -> str:
    """`ddMMyyyy'T'HHmmss+SSSS` in Vietnam time: the `+` is literal and SSSS is milliseconds
    (docs/vxp.md §3.2), e.g. `25112026T132359+0522`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the VXP timestamp needs an aware datetime")
    t = moment.astimezone(VIETNAM)
    return (
        f"{t.day:02d}{t.month:02d}{t.year:04d}T{t.hour:02d}{t.minute:02d}{t.second:02d}"
        f"+{t.microsecond // 1000:04d}"
    )


def parse_timestamp(text: str) -> dt.datetime:
    """The moment a VXP timestamp names, aware in +07:00."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise VxpProtocolError(
            f"timestamp {text[:40]!r} is not ddMMyyyyTHHmmss+SSSS",
            f"dấu thời gian {text[:40]!r} không đúng dạng ddMMyyyyTHHmmss+SSSS",
        )
    day, month, year, hour, minute, second, millis = (int(g) for g in match.groups())
    try:
        if millis > 999:
            raise ValueError("milliseconds over 999")
        return dt.datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=VIETNAM)
    except ValueError as exc:
        raise VxpProtocolError(
            f"timestamp {text!r} names no moment ({exc})",
            f"dấu thời gian {text!r} không hợp lệ ({exc})",
        ) from None


# --------------------------------------------------------------------------------- hash-file


def lossy_hash_file(data: bytes | bytearray | memoryview) -> str:
    """The SDK's `hash-file`: SHA-256 with each byte as lowercase hex WITHOUT zero padding, so 32
    to 64 characters (docs/vxp.md §4.4)."""
    return "".join(f"{byte:x}" for byte in hashlib.sha256(data).digest())


def hash_file_matches(data: bytes | bytearray | memoryview, claimed: str) -> bool:
    """Whether `claimed` is the file's digest in the SDK's lossy hex or in correct hex, in any
    case."""
    digest = hashlib.sha256(data).digest()
    text = claimed.strip().lower()
    if not text.isascii():
        return False
    lossy = "".join(f"{byte:x}" for byte in digest)
    # Both compared, always: which form matched is nobody's business.
    correct_ok = hmac.compare_digest(text, digest.hex())
    lossy_ok = hmac.compare_digest(text, lossy)
    return correct_ok or lossy_ok


# --------------------------------------------------------------------------------- key order


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode()` (31 * h + unit over UTF-16 code units), as an unsigned 32-bit
    value."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + ((units[i] << 8) | units[i + 1])) & 0xFFFFFFFF
    return h


def java_hashmap_order(keys: Iterable[str]) -> list[str]:
    """The iteration order of a `java.util.HashMap<String, String>` into which `keys` were put in
    this order (docs/vxp.md §3.5): buckets `(h ^ h >>> 16) & (n - 1)` ascending, insertion order
    within a bucket; n starts at 16 and doubles when the count exceeds 0.75 n, or when a bucket
    reaches 9 entries while n < 64. A key put twice keeps its first place. Java's tree bins (9+
    colliding keys at n >= 64) are not emulated: SDK maps hold about ten keys."""
    size = 16
    entries: list[tuple[str, int]] = []
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        h = java_string_hash(key)
        spread = h ^ (h >> 16)
        same_bucket = sum(1 for _, s in entries if (s & (size - 1)) == (spread & (size - 1)))
        entries.append((key, spread))
        if same_bucket >= 8 and size < 64:
            size *= 2  # treeifyBin on a small table resizes instead
        if len(entries) > size * 3 // 4:
            size *= 2
    # Splitting a bucket on resize keeps relative order, so a stable sort by the final bucket is
    # the map's order.
    mask = size - 1
    return [key for key, _ in sorted(entries, key=lambda e: e[1] & mask)]


# --------------------------------------------------------------------------------- signing

_GSON_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\t": "\\t",
    "\b": "\\b",
    "\n": "\\n",
    "\r": "\\r",
    "\f": "\\f",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GSON_SPECIAL: Final = re.compile('["\\\\\x00-\x1f\u2028\u2029]')


def gson_string(text: str) -> str:
    """`text` as Gson 2.2's JsonWriter writes a string (not HTML-safe): `"` `\\` and control
    characters escaped (short forms for \\t \\b \\n \\r \\f, `\\u00xx` lowercase otherwise), also
    U+2028/U+2029; `< > = & '` and all other non-ASCII characters raw."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return _GSON_ESCAPES.get(char) or f"\\u{ord(char):04x}"

    return '"' + _GSON_SPECIAL.sub(escape, text) + '"'


def sign_header_json(pairs: Iterable[tuple[str, str]]) -> str:
    """The compact JSON object of `pairs` (names as given, in order) as Gson's
    `JsonObject.toString()` writes it: the text `XroadVnpt-sign-header` carries and the HMAC
    covers."""
    return "{" + ",".join(f"{gson_string(k)}:{gson_string(v)}" for k, v in pairs) + "}"


def hash_header(secret: bytes | str, sign_header: str) -> str:
    """`XroadVnpt-hash-header`: lowercase hex HMAC-SHA256 of the sign-header's UTF-8 bytes."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, sign_header.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_value(what: str, value: str) -> None:
    if not isinstance(value, str):
        raise VxpProtocolError(
            f"parameter {what} is not text", f"tham số {what} không phải chuỗi ký tự"
        )
    if not value.isascii():
        # The SDK's Apache path sends each character's low byte, which breaks the server's HMAC.
        raise VxpProtocolError(
            f"parameter {what} is not ASCII: VXP parameters travel as signed HTTP headers",
            f"tham số {what} có ký tự ngoài ASCII: tham số VXP đi trong tiêu đề HTTP có ký",
        )
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        raise VxpProtocolError(
            f"parameter {what} holds control characters",
            f"tham số {what} chứa ký tự điều khiển",
        )


@attrs.frozen
class SignedRequest:
    """What the SDK would send for one call: `headers` in wire order with the SDK's spelling
    (map headers, the three signature headers, User-Agent, XroadVnpt-version); `params` the
    signed map in Java order."""

    headers: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]
    sign_header_key: str
    sign_header: str
    hash_header: str

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


def sign_request(
    params: Mapping[str, str],
    *,
    system_id: str,
    secret: bytes | str,
    timestamp: str,
    content_type: str,
) -> SignedRequest:
    """The signed headers of one call: `params` are the caller's keys (e.g. `servicetype`,
    `messagetype`, `docId`, and `hash-file` for sendEdoc), to which `timestamp`, `systemid`
    and `Content-Type` are added as the SDK does. Keys are ordered as the SDK's HashMap orders
    them, so the result is the SDK's byte for byte. For `application/octet-stream` (sendEdoc,
    the SDK's HttpURLConnection path) the real Content-Type header comes first, as it did on
    that path; otherwise it comes just before XroadVnpt-Content-Type."""
    seen: set[str] = set()
    for key, value in params.items():
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise VxpProtocolError(
                f"parameter name {key!r} cannot be an HTTP header name",
                f"tên tham số {key!r} không dùng được làm tên tiêu đề HTTP",
            )
        folded = key.lower()
        if folded in _RESERVED:
            raise VxpProtocolError(
                f"parameter {key} is set by the protocol itself",
                f"tham số {key} do giao thức tự đặt",
            )
        if folded in seen:
            raise VxpProtocolError(
                f"parameter {key} is given twice (header names ignore case)",
                f"tham số {key} bị trùng (tên tiêu đề không phân biệt hoa thường)",
            )
        seen.add(folded)
        _check_value(key, value)
    _check_value("systemid", system_id)
    _check_value("timestamp", timestamp)
    _check_value("Content-Type", content_type)
    # The SDK's order of puts: timestamp and systemid in the constructor, Content-Type, then the
    # caller's keys. It only matters for keys sharing a bucket.
    values: dict[str, str] = {
        "timestamp": timestamp,
        "systemid": system_id,
        "Content-Type": content_type,
    }
    values.update(params)
    order = java_hashmap_order(values)
    ordered = tuple((k, values[k]) for k in order)
    key_list = ";".join(order)
    signed = sign_header_json((PREFIX + k, v) for k, v in ordered)
    digest = hash_header(secret, signed)
    content_type_first = content_type == OCTET_STREAM
    headers: list[tuple[str, str]] = []
    if content_type_first:
        headers.append(("Content-Type", content_type))
    for key, value in ordered:
        if key == "Content-Type" and not content_type_first:
            headers.append(("Content-Type", value))
        headers.append((PREFIX + key, value))
    headers += [
        (PREFIX + "sign-header-key", key_list),
        (PREFIX + "sign-header", signed),
        (PREFIX + "hash-header", digest),
        ("User-Agent", USER_AGENT),
        (PREFIX + "version", VERSION),
    ]
    return SignedRequest(tuple(headers), ordered, key_list, signed, digest)


# --------------------------------------------------------------------------------- verifying

HeaderLookup = Callable[[str], "str | None"]


@attrs.frozen
class VerifiedRequest:
    """A request whose signature holds: the caller's system, and every signed parameter under
    its signed name (original case, prefix stripped: `docId` and `docid` stay distinct)."""

    system_id: str
    params: dict[str, str]
    timestamp: str | None

    def param(self, name: str) -> str | None:
        """A signed parameter by name, ignoring case (`docid` or `docId`)."""
        if name in self.params:
            return self.params[name]
        wanted = name.lower()
        return next((v for k, v in self.params.items() if k.lower() == wanted), None)


def _auth(reason: str, en: str, vi: str) -> VxpAuthError:
    return VxpAuthError(reason, en, vi)


def _lookup(headers: HeaderLookup | Mapping[str, str]) -> HeaderLookup:
    if isinstance(headers, Mapping):
        lowered = {k.lower(): v for k, v in headers.items()}
        return lambda name: lowered.get(name.lower())
    return headers


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"member {key} twice")
        result[key] = value
    return result


def verify_request(
    headers: HeaderLookup | Mapping[str, str],
    secret_for: Callable[[str], bytes | str | None],
    *,
    max_age: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> VerifiedRequest:
    """Check one request's signature as the axis would (docs/vxp.md §9.2) and return its signed
    parameters, or raise `VxpAuthError`.

    `headers` looks a header up by name ignoring case: a function, or a mapping (its names are
    lowered here). Values are text; bytes that are not UTF-8 should be decoded with
    `surrogateescape`, so that the HMAC still covers the exact bytes received.
    Checked: the HMAC of the literal `XroadVnpt-sign-header` text (constant time, hex in any
    case), the system, the sign-header being a JSON object of strings, sign-header-key naming the
    same members, each signed member equal to its header, and the signed systemid. Never the
    order. The timestamp's age only with `max_age` (the SDK's timestamp is often hours old).
    """
    get = _lookup(headers)
    system_id = get(PREFIX + "systemid")
    signed_text = get(PREFIX + "sign-header")
    claimed = get(PREFIX + "hash-header")
    key_list = get(PREFIX + "sign-header-key")
    for name, value in (
        ("systemid", system_id),
        ("sign-header", signed_text),
        ("hash-header", claimed),
        ("sign-header-key", key_list),
    ):
        if not value:
            raise _auth(
                "missing_header",
                f"header {PREFIX}{name} is missing",
                f"thiếu tiêu đề {PREFIX}{name}",
            )
    assert system_id and signed_text and claimed and key_list is not None
    system_id = system_id.strip()
    secret = secret_for(system_id)
    if secret is None:
        raise _auth(
            "unknown_system",
            f"system {system_id} is not registered",
            f"hệ thống {system_id} chưa được đăng ký",
        )
    expected = hash_header(secret, signed_text)
    given = claimed.strip().lower()
    if not given.isascii() or not hmac.compare_digest(expected, given):
        raise _auth(
            "hash_mismatch",
            "the signature (hash-header) does not match: wrong secret or altered sign-header",
            "chữ ký (hash-header) không khớp: sai khóa bí mật hoặc sign-header bị sửa",
        )
    try:
        members = json.loads(signed_text, object_pairs_hook=_pairs_no_duplicates)
    except (ValueError, RecursionError):
        members = None
    if not isinstance(members, dict) or not all(
        isinstance(k, str) and k[: len(PREFIX)].lower() == PREFIX.lower() and isinstance(v, str)
        for k, v in members.items()
    ):
        raise _auth(
            "sign_header_not_json",
            f"{PREFIX}sign-header is not a JSON object of {PREFIX}* strings",
            f"{PREFIX}sign-header không phải đối tượng JSON gồm các chuỗi {PREFIX}*",
        )
    params = {name[len(PREFIX) :]: value for name, value in members.items()}
    listed = [k.strip() for k in key_list.split(";")]
    if sorted(listed) != sorted(params):
        raise _auth(
            "sign_header_key_mismatch",
            f"{PREFIX}sign-header-key does not name the members of {PREFIX}sign-header",
            f"{PREFIX}sign-header-key không khớp các thành phần của {PREFIX}sign-header",
        )
    signed_ids = [v for k, v in params.items() if k.lower() == "systemid"]
    if signed_ids != [system_id]:
        raise _auth(
            "system_id_differs",
            f"the signed systemid is not the header's {system_id}",
            f"systemid đã ký khác với tiêu đề {system_id}",
        )
    for name, value in params.items():
        actual = get(PREFIX + name)
        # HTTP drops a value's surrounding blanks; the signed text keeps them.
        if actual is None or (actual != value and actual != value.strip(" \t")):
            raise _auth(
                "signed_header_differs",
                f"header {PREFIX}{name} differs from its signed value",
                f"tiêu đề {PREFIX}{name} khác giá trị đã ký",
            )
    stamps = [v for k, v in params.items() if k.lower() == "timestamp"]
    timestamp = stamps[0] if stamps else None
    if max_age is not None:
        _check_age(timestamp, max_age, now)
    return VerifiedRequest(system_id=system_id, params=params, timestamp=timestamp)


def _check_age(timestamp: str | None, max_age: dt.timedelta, now: dt.datetime | None) -> None:
    if timestamp is None:
        raise _auth("stale", "the request carries no timestamp", "yêu cầu không có dấu thời gian")
    try:
        when = parse_timestamp(timestamp)
    except VxpProtocolError as exc:
        raise _auth("timestamp_unreadable", exc.message_en, exc.message_vi) from None
    moment = now or dt.datetime.now(dt.UTC)
    if abs(moment - when) > max_age:
        raise _auth(
            "stale",
            f"timestamp {timestamp} is more than {max_age} away from now",
            f"dấu thời gian {timestamp} lệch quá {max_age} so với hiện tại",
        )


# --------------------------------------------------------------------------------- responses


@attrs.frozen
class VxpResponse:
    """One answer's envelope: `ok` when status is "OK" and ErrorCode "0" (a string or the number
    0); `fields` holds every other member as parsed (`data`, `DocId`, `count`, ...)."""

    ok: bool
    error_code: str
    error_desc: str
    fields: dict[str, Any] = attrs.field(factory=dict)
    status: str = ""


def _scalar_text(value: Any) -> str | None:
    """A JSON value as Gson's `getAsString` reads it; None for null, arrays and objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _protocol(op: str, en: str, vi: str) -> VxpProtocolError:
    return VxpProtocolError(f"{op}: {en}", f"{op}: {vi}")


def _envelope(obj: Any, op: str, *, streamed_data: bool | None = None) -> VxpResponse:
    if not isinstance(obj, dict):
        raise _protocol(op, "the answer is not a JSON object", "phản hồi không phải đối tượng JSON")
    status, code = obj.get("status"), obj.get("ErrorCode")
    if not isinstance(status, str) or status == "":
        raise _protocol(op, "the answer has no status", "phản hồi thiếu status")
    if isinstance(code, bool) or not isinstance(code, str | int):
        raise _protocol(op, "the answer has no ErrorCode", "phản hồi thiếu ErrorCode")
    error_code = str(code)
    error_desc = _scalar_text(obj.get("ErrorDesc")) or ""
    fields = {k: v for k, v in obj.items() if k not in _BASE_FIELDS}
    ok = status == "OK" and error_code.strip() == "0"
    if ok:
        _check_payload(op, fields, streamed_data)
    return VxpResponse(ok, error_code, error_desc, fields, status)


def _check_payload(op: str, fields: dict[str, Any], streamed_data: bool | None) -> None:
    if op == "sendEdoc":
        doc_id = fields.get("DocId")
        if not isinstance(doc_id, str) or not doc_id:
            raise _protocol(op, "OK without a DocId", "OK nhưng không có DocId")
    elif op == "getEdoc":
        has_data = (
            streamed_data if streamed_data is not None else isinstance(fields.get("data"), str)
        )
        if not has_data:
            raise _protocol(op, "OK without data", "OK nhưng không có data")
    elif op in _LIST_OPS:
        data = fields.get("data")
        if data is not None and not isinstance(data, list):
            raise _protocol(op, "data is not a list", "data không phải danh sách")
    elif op in _COUNT_OPS:
        count = fields.get("count")
        if isinstance(count, bool) or not (
            isinstance(count, int) or (isinstance(count, str) and count.strip().isdigit())
        ):
            raise _protocol(op, "OK without a count", "OK nhưng không có count")


def _loads(text: bytes | str) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # Gson reads leniently (raw control characters inside strings); so do we.
    return json.loads(text, strict=False)


def parse_response(body: bytes, op: str) -> VxpResponse:
    """The envelope of one answer to `op`, or `VxpProtocolError` when the body is not a JSON
    object with status and ErrorCode (an error page, an empty body), or is OK without the
    payload `op` needs (DocId, data, count)."""
    try:
        obj = _loads(body)
    except (ValueError, RecursionError):
        raise _protocol(op, "the answer is not JSON", "phản hồi không phải JSON") from None
    return _envelope(obj, op)


@attrs.frozen
class ListedItem:
    """One pending item of getReceivedEdocList (docs/vxp.md §4.1)."""

    doc_id: str
    service_type: str | None = None
    message_type: str | None = None
    from_: str | None = None
    to: str | None = None
    status: str | None = None
    status_desc: str | None = None
    created_time: str | None = None
    updated_time: str | None = None


def _data_objects(resp: VxpResponse) -> list[dict[str, Any]]:
    data = resp.fields.get("data")
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]


def listed_items(resp: VxpResponse) -> tuple[ListedItem, ...]:
    """The items of a getReceivedEdocList answer; entries that are not objects or have no docId
    are skipped (an axis quirk must not stop the others being fetched)."""
    items: list[ListedItem] = []
    for obj in _data_objects(resp):
        doc_id = _scalar_text(obj.get("docId"))
        if not doc_id:
            continue
        items.append(
            ListedItem(
                doc_id=doc_id,
                service_type=_scalar_text(obj.get("serviceType")),
                message_type=_scalar_text(obj.get("messageType")),
                from_=_scalar_text(obj.get("from")),
                to=_scalar_text(obj.get("to")),
                status=_scalar_text(obj.get("status")),
                status_desc=_scalar_text(obj.get("status_desc")),
                created_time=_scalar_text(obj.get("created_time")),
                updated_time=_scalar_text(obj.get("updated_time")),
            )
        )
    return tuple(items)


@attrs.frozen
class Agency:
    """One entry of getAgenciesList (docs/vxp.md §4.8); `code` is the OrganId."""

    code: str
    name: str | None = None
    id: str | None = None
    pid: str | None = None
    mail: str | None = None
    old_code: str | None = None


def agencies(resp: VxpResponse) -> tuple[Agency, ...]:
    """The entries of a getAgenciesList answer that have a code."""
    found: list[Agency] = []
    for obj in _data_objects(resp):
        code = _scalar_text(obj.get("code"))
        if not code:
            continue
        found.append(
            Agency(
                code=code,
                name=_scalar_text(obj.get("name")),
                id=_scalar_text(obj.get("id")),
                pid=_scalar_text(obj.get("pid")),
                mail=_scalar_text(obj.get("mail")),
                old_code=_scalar_text(obj.get("oldCode")),
            )
        )
    return tuple(found)


def response_json(ok: bool, error_code: str, error_desc: str, **payload: Any) -> bytes:
    """An answer as the axis writes it: the three base fields always, as strings, then
    `payload`; ASCII-only JSON (the SDK reads sendEdoc answers as US-ASCII)."""
    clash = set(payload) & set(_BASE_FIELDS)
    if clash:
        raise ValueError(f"payload repeats base fields {sorted(clash)}")
    obj: dict[str, Any] = {
        "status": "OK" if ok else "FAIL",
        "ErrorCode": str(error_code),
        "ErrorDesc": str(error_desc),
    }
    obj.update(payload)
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# --------------------------------------------------------------------------------- getEdoc body

_WS: Final = b" \t\r\n"
_WS_SET: Final = frozenset(_WS)
_DATA_STOP: Final = re.compile(rb'["\\]')
_B64_CHUNK: Final = 1 << 16

(
    _START,
    _KEY_OR_END,
    _KEY_START,
    _KEY,
    _COLON,
    _VALUE,
    _OTHER,
    _DATA,
    _DATA_ESCAPE,
    _AFTER_VALUE,
    _DONE,
) = range(11)


class EdocBodyDecoder:
    """Incremental decoder of a getEdoc answer, `{"status":...,"data":"<base64>"}`, fed in
    chunks of any size.

    The `data` string is base64-decoded as it arrives into one growing buffer (handed out
    without a copy); the other members, small, are kept as JSON text and parsed at the end. Keys
    may come in any order with any whitespace; inside `data`, the escapes `\\/`, `\\n` and `\\r`
    and raw whitespace are accepted (lenient base64: line breaks, padding optional), any other
    escape is an error. Over `max_bytes` decoded raises `VxpTooLarge`; anything that is not such
    an answer raises `VxpProtocolError` as soon as it shows, so a caller can stop reading.
    """

    def __init__(self, *, max_bytes: int, op: str = "getEdoc", max_other_bytes: int = 1 << 20):
        self._max = max_bytes
        self._op = op
        self._max_other = max_other_bytes
        self._state = _START
        self._other_bytes = 0  # bytes outside the data string, bounded: they are scanned one by one
        self._members: dict[str, Any] = {}
        self._count = 0
        self._key = bytearray()
        self._key_name = ""
        self._value = bytearray()
        self._in_string = False
        self._escape = False
        self._depth = 0
        self._seen_data = False
        self._payload = io.BytesIO()
        self._size = 0
        self._pending = b""  # base64 characters not yet making a full quantum
        self._padding = 0

    @property
    def size(self) -> int:
        """Bytes decoded so far."""
        return self._size

    def _fail(self, en: str, vi: str) -> VxpProtocolError:
        return _protocol(self._op, en, vi)

    def feed(self, chunk: bytes) -> None:
        pos, end = 0, len(chunk)
        while pos < end:
            if self._state in (_DATA, _DATA_ESCAPE):
                pos = self._feed_data(chunk, pos)
                continue
            self._other_bytes += 1
            if self._other_bytes > self._max_other:
                raise self._fail(
                    "too much text around the document", "phản hồi có quá nhiều dữ liệu thừa"
                )
            self._step(chunk[pos])
            pos += 1

    def _feed_data(self, chunk: bytes, pos: int) -> int:
        """The data string from `pos` on, up to its closing quote or the chunk's end: runs of
        base64 are found with one search each, not looked at byte by byte."""
        parts: list[bytes] = []
        end = len(chunk)
        while pos < end:
            if self._state == _DATA_ESCAPE:
                byte = chunk[pos]
                pos += 1
                if byte == 0x2F:  # \/
                    parts.append(b"/")
                elif byte not in (0x6E, 0x72):  # \n and \r are line breaks: nothing to decode
                    raise self._fail(
                        f"escape \\{chr(byte)} inside the base64 data",
                        f"ký tự thoát \\{chr(byte)} trong dữ liệu base64",
                    )
                self._state = _DATA
                continue
            match = _DATA_STOP.search(chunk, pos)
            stop = end if match is None else match.start()
            if stop > pos:
                parts.append(chunk[pos:stop])
            if match is None:
                pos = end
                break
            pos = stop + 1
            if chunk[stop] == 0x5C:  # backslash
                self._state = _DATA_ESCAPE
            else:
                self._base64(b"".join(parts))
                self._end_data()
                self._state = _AFTER_VALUE
                return pos
        self._base64(b"".join(parts))
        return pos

    def _step(self, byte: int) -> None:
        state = self._state
        if state == _KEY:
            if self._escape:
                self._escape = False
            elif byte == 0x5C:
                self._escape = True
            elif byte == 0x22:
                self._end_key()
                return
            self._key.append(byte)
            return
        if state == _OTHER:
            self._other(byte)
            return
        if byte in _WS_SET:
            return
        if state == _START:
            if byte != 0x7B:
                raise self._fail(
                    "the answer is not a JSON object", "phản hồi không phải đối tượng JSON"
                )
            self._state = _KEY_OR_END
        elif state in (_KEY_OR_END, _KEY_START):
            if byte == 0x22:
                self._key.clear()
                self._state = _KEY
            elif byte == 0x7D and state == _KEY_OR_END:
                self._state = _DONE
            else:
                raise self._fail("malformed JSON: a member name expected", "JSON sai: thiếu tên")
        elif state == _COLON:
            if byte != 0x3A:
                raise self._fail("malformed JSON: ':' expected", "JSON sai: thiếu ':'")
            self._state = _VALUE
        elif state == _VALUE:
            if self._key_name == "data" and byte == 0x22:
                self._seen_data = True
                self._state = _DATA
            else:
                self._value.clear()
                self._in_string = self._escape = False
                self._depth = 0
                self._state = _OTHER
                self._other(byte)
        elif state == _AFTER_VALUE:
            self._after_value(byte)
        else:  # _DONE
            raise self._fail("data after the JSON object", "dữ liệu thừa sau đối tượng JSON")

    def _after_value(self, byte: int) -> None:
        if byte == 0x2C:
            self._state = _KEY_START
        elif byte == 0x7D:
            self._state = _DONE
        else:
            raise self._fail("malformed JSON: ',' or '}' expected", "JSON sai: thiếu ',' hoặc '}'")

    def _end_key(self) -> None:
        try:
            name = json.loads(b'"' + bytes(self._key) + b'"')
        except ValueError:
            raise self._fail("malformed member name", "tên thành phần JSON sai") from None
        if name in self._members or (name == "data" and self._seen_data):
            raise self._fail(f"member {name!r} twice", f"thành phần {name!r} lặp lại")
        self._key_name = name
        self._count += 1
        self._state = _COLON

    def _other(self, byte: int) -> None:
        """A value other than the data string: kept as text up to the `,` or `}` after it."""
        if self._in_string:
            if self._escape:
                self._escape = False
            elif byte == 0x5C:
                self._escape = True
            elif byte == 0x22:
                self._in_string = False
            self._value.append(byte)
            return
        if self._depth == 0 and byte in (0x2C, 0x7D):
            try:
                value = _loads(bytes(self._value))
            except (ValueError, RecursionError):
                raise self._fail(
                    f"malformed JSON value of {self._key_name!r}",
                    f"giá trị JSON của {self._key_name!r} sai",
                ) from None
            self._members[self._key_name] = value
            self._state = _AFTER_VALUE
            self._after_value(byte)
            return
        if byte == 0x22:
            self._in_string = True
        elif byte in (0x5B, 0x7B):
            self._depth += 1
        elif byte in (0x5D, 0x7D):
            self._depth -= 1
        self._value.append(byte)

    def _base64(self, text: bytes) -> None:
        text = text.translate(None, _WS)
        if not text:
            return
        if self._padding:
            if text.strip(b"=") or self._padding + len(text) > 2:
                raise self._fail("base64 data after its padding", "dữ liệu base64 sau phần đệm")
            self._padding += len(text)
            return
        cut = text.find(b"=")
        if cut >= 0:
            pad = text[cut:]
            if pad.strip(b"=") or len(pad) > 2:
                raise self._fail("base64 data after its padding", "dữ liệu base64 sau phần đệm")
            self._padding = len(pad)
            text = text[:cut]
        data = self._pending + text
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        for start in range(0, usable, _B64_CHUNK):
            self._decode(data[start : min(start + _B64_CHUNK, usable)])

    def _decode(self, quanta: bytes) -> None:
        try:
            out = base64.b64decode(quanta, validate=True)
        except binascii.Error:
            raise self._fail("data is not base64", "data không phải base64") from None
        self._size += len(out)
        if self._size > self._max:
            raise VxpTooLarge(self._max)
        self._payload.write(out)

    def _end_data(self) -> None:
        rest, padding = len(self._pending), self._padding
        if rest == 1 or (rest == 0 and padding) or (padding and rest + padding != 4):
            raise self._fail("base64 data of a wrong length", "dữ liệu base64 sai độ dài")
        if rest:
            self._decode(self._pending + b"=" * (4 - rest))
        self._pending = b""

    def finish(self) -> tuple[VxpResponse, bytes]:
        """The envelope and the decoded document (empty when `data` was missing or "")."""
        if self._state != _DONE:
            raise self._fail("the answer is cut short", "phản hồi bị cắt cụt")
        response = _envelope(self._members, self._op, streamed_data=self._seen_data)
        payload = self._payload.getvalue()  # no copy: the buffer is handed over
        self._payload = io.BytesIO()
        return response, payload


def decode_edoc_body(
    body: bytes, *, max_bytes: int, op: str = "getEdoc"
) -> tuple[VxpResponse, bytes]:
    """`EdocBodyDecoder` over a body already whole (tests, small answers)."""
    decoder = EdocBodyDecoder(max_bytes=max_bytes, op=op)
    decoder.feed(body)
    return decoder.finish()


__all__: Sequence[str] = (
    "ACK_STATUSES",
    "JSON_TYPE",
    "MESSAGE_TYPES",
    "OCTET_STREAM",
    "PREFIX",
    "SERVICE_TYPE",
    "SUCCESS_DESC",
    "USER_AGENT",
    "VERSION",
    "VIETNAM",
    "Agency",
    "EdocBodyDecoder",
    "HeaderLookup",
    "ListedItem",
    "SignedRequest",
    "VerifiedRequest",
    "VxpAuthError",
    "VxpError",
    "VxpProtocolError",
    "VxpResponse",
    "VxpTooLarge",
    "agencies",
    "ascii_fold",
    "decode_edoc_body",
    "format_timestamp",
    "gson_string",
    "hash_file_matches",
    "hash_header",
    "java_hashmap_order",
    "java_string_hash",
    "listed_items",
    "lossy_hash_file",
    "parse_response",
    "parse_timestamp",
    "response_json",
    "sign_header_json",
    "sign_request",
    "verify_request",
)
