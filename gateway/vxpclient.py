"""The client of the national exchange axis (VXP, docs/vxp.md), over treq: sending, the inbox
loop (list, get, acknowledge), delivery tracking and the agency directory.

Requests are what the Java SDK sends (`edxml.vxp.sign_request`), with two deliberate
differences: every request carries a fresh timestamp (the SDK reuses its first one for the
object's life), and no request carries parameters of an earlier one, nor the SDK's local
`filePath`. Header names go out in Twisted's canonical capitalisation; HTTP names are
case-insensitive and the signed names, which are not, are inside the signed JSON.

Each call ends one of four ways:

* its result;
* `VxpRefused` (the axis answered, status FAIL: its ErrorCode and ErrorDesc verbatim);
* `VxpUnavailable`, worth trying again later: connection refused or reset, DNS, TLS, no answer
  within `timeout`, HTTP 5xx, an answer that is not the axis's JSON (a proxy's error page);
* `edxml.vxp.VxpTooLarge` from `get_edoc`, when the document is over `max_edoc_bytes`.

The secret never leaves this object but as an HMAC: not in logs, exception texts or reprs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeVar

from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse

from edxml import vxp
from edxml.vxp import Agency, EdocBodyDecoder, ListedItem, VxpProtocolError, VxpTooLarge
from gateway.httpcall import (
    HttpError,
    Oversized,
    drain,
    network_reason,
    one_shot_agent,
    read_body,
    server_offset,
    stream_body,
)

__all__ = ["MessageType", "VxpClient", "VxpRefused", "VxpUnavailable"]

MessageType = Literal["edoc", "status"]
AckStatus = Literal["done", "fail", "processing"]

DEFAULT_MAX_EDOC_BYTES: Final = 150 * 1024 * 1024
SMALL_ANSWER: Final = 1 << 20  # sendEdoc, updateStatus, count*: the envelope and an id
LIST_ANSWER: Final = 32 << 20  # an inbox or a delivery report, no paging
DIRECTORY_ANSWER: Final = 64 << 20  # ~10^5 agencies in one answer (docs/vxp.md §4.8)

T = TypeVar("T")


class VxpUnavailable(Exception):
    """The axis could not be asked or gave no usable answer; the same call may work later."""

    def __init__(self, op: str, reason: str) -> None:
        self.op = op
        self.reason = reason
        self.message_en = f"VXP {op}: the exchange axis is unavailable ({reason})"
        self.message_vi = f"VXP {op}: không liên lạc được với trục liên thông ({reason})"
        super().__init__(self.message_en)


class VxpRefused(Exception):
    """The axis answered and refused (status FAIL): `error_code` and `error_desc` as it sent
    them."""

    def __init__(self, op: str, error_code: str, error_desc: str) -> None:
        self.op = op
        self.error_code = error_code
        self.error_desc = error_desc
        self.message_en = f"VXP {op} refused by the axis (ErrorCode {error_code}): {error_desc}"
        self.message_vi = f"Trục liên thông từ chối {op} (ErrorCode {error_code}): {error_desc}"
        super().__init__(self.message_en)


class _Secret:
    """Holds the HMAC key; shows nothing of it."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


class VxpClient:
    """One system's client of one axis endpoint (`…/XrdAdapter/adapter` or a host root).

    `reactor` gives the time (`seconds`, also for timestamps) and the timeout timers; `agent`
    makes the connections (by default a non-persistent Agent on `reactor` that verifies TLS
    like a browser). `clock_observer(offset, round_trip)` hears, for each answer with an HTTP
    Date, how far the axis's clock is ahead of ours (seconds, against the midpoint of sending
    and the answer's headers arriving) and how long the round trip took.
    """

    log = Logger()

    def __init__(
        self,
        endpoint: str,
        system_id: str,
        secret: bytes,
        *,
        reactor: Any,
        timeout: float = 60.0,
        agent: IAgent | None = None,
        max_edoc_bytes: int = DEFAULT_MAX_EDOC_BYTES,
        clock_observer: Callable[[float, float], None] | None = None,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"VXP endpoint {endpoint!r} is not an http(s) URL")
        self._endpoint = endpoint.rstrip("/")
        self._system_id = system_id
        self._secret = _Secret(secret)
        self._reactor = reactor
        self._timeout = timeout
        self._max_edoc = max_edoc_bytes
        self._observer = clock_observer
        self._http = HTTPClient(agent or one_shot_agent(reactor, timeout))

    def __repr__(self) -> str:
        return f"VxpClient({self._endpoint!r}, system_id={self._system_id!r})"

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def system_id(self) -> str:
        return self._system_id

    # --- operations -----------------------------------------------------------------------

    async def send_edoc(self, data: bytes, *, from_: str, message_type: MessageType) -> str:
        """Upload one edXML (a document or a status packet) as agency `from_`; its DocId."""
        params = {
            "from": from_,
            "servicetype": vxp.SERVICE_TYPE,
            "messagetype": message_type,
            "hash-file": vxp.lossy_hash_file(data),
        }
        response = await self._json_call(
            "sendEdoc", params, body=data + b"\r\n", content_type=vxp.OCTET_STREAM, cap=SMALL_ANSWER
        )
        doc_id: str = response.fields["DocId"]
        return doc_id

    async def received(self, message_type: MessageType) -> tuple[ListedItem, ...]:
        """The pending items of the inbox (getReceivedEdocList)."""
        params = {"servicetype": vxp.SERVICE_TYPE, "messagetype": message_type}
        response = await self._json_call("getReceivedEdocList", params, body=b"", cap=LIST_ANSWER)
        return vxp.listed_items(response)

    async def count(self, message_type: MessageType) -> int:
        """How many items are pending (countReceiveEdoc / countReceiveStatus)."""
        op = "countReceiveStatus" if message_type == "status" else "countReceiveEdoc"
        params = {"servicetype": vxp.SERVICE_TYPE, "messagetype": message_type}
        response = await self._json_call(op, params, body=b"{}", cap=SMALL_ANSWER)
        return int(response.fields["count"])

    async def get_edoc(self, doc_id: str) -> bytes:
        """The bytes of one item, decoded from the base64-in-JSON answer as it streams in."""
        op = "getEdoc"
        decoder = EdocBodyDecoder(max_bytes=self._max_edoc, op=op)

        async def consume(response: IResponse) -> tuple[vxp.VxpResponse, bytes]:
            await stream_body(response, decoder.feed)
            return decoder.finish()

        answer, data = await self._call(
            op, {"docId": doc_id}, body=b"{}", content_type=vxp.JSON_TYPE, consume=consume
        )
        self._refuse_unless_ok(op, answer)
        return data

    async def update_status(
        self, doc_id: str, status: AckStatus, description: str | None = None
    ) -> None:
        """Acknowledge (`done`, `fail`) or report `processing` of one received item. The
        description is sent without diacritics: VXP parameters are ASCII."""
        params = {"docId": doc_id, "status": status}
        if description is not None:
            params["description"] = vxp.ascii_fold(description)
        await self._json_call("updateStatus", params, body=b"{}", cap=SMALL_ANSWER)

    async def agencies(self) -> tuple[Agency, ...]:
        """The national agency directory (getAgenciesList, one answer, no paging)."""
        response = await self._json_call("getAgenciesList", {}, body=b"", cap=DIRECTORY_ANSWER)
        return vxp.agencies(response)

    async def sent_list(
        self, doc_id: str, message_type: MessageType = "edoc"
    ) -> tuple[dict[str, Any], ...]:
        """Per-recipient progress of one upload (getSentEdocList), as the axis reports it."""
        params = {
            "servicetype": vxp.SERVICE_TYPE,
            "messagetype": message_type,
            "docId": doc_id,
        }
        response = await self._json_call("getSentEdocList", params, body=b"", cap=LIST_ANSWER)
        data = response.fields.get("data")
        if not isinstance(data, list):
            return ()
        return tuple(item for item in data if isinstance(item, dict))

    # --- the exchange ---------------------------------------------------------------------

    def _refuse_unless_ok(self, op: str, answer: vxp.VxpResponse) -> None:
        if not answer.ok:
            self.log.info(
                "VXP {op} refused: ErrorCode {error_code}: {error_desc}",
                op=op,
                error_code=answer.error_code,
                error_desc=answer.error_desc,
            )
            raise VxpRefused(op, answer.error_code, answer.error_desc)

    async def _json_call(
        self,
        op: str,
        params: Mapping[str, str],
        *,
        body: bytes,
        cap: int,
        content_type: str = vxp.JSON_TYPE,
    ) -> vxp.VxpResponse:
        async def consume(response: IResponse) -> vxp.VxpResponse:
            return vxp.parse_response(await read_body(response, cap), op)

        answer = await self._call(op, params, body=body, content_type=content_type, consume=consume)
        self._refuse_unless_ok(op, answer)
        return answer

    async def _call(
        self,
        op: str,
        params: Mapping[str, str],
        *,
        body: bytes,
        content_type: str,
        consume: Callable[[IResponse], Awaitable[T]],
    ) -> T:
        now = dt.datetime.fromtimestamp(self._reactor.seconds(), dt.UTC)
        signed = vxp.sign_request(
            params,
            system_id=self._system_id,
            secret=self._secret.reveal(),
            timestamp=vxp.format_timestamp(now),
            content_type=content_type,
        )
        headers = Headers()
        for name, value in signed.headers:
            headers.addRawHeader(name, value)
        started = self._reactor.seconds()
        attempt: Deferred[tuple[int, T]] = Deferred.fromCoroutine(
            self._exchange(op, headers, body, consume)
        )
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            attempt.cancel()

        # Not addTimeout: a cancelled treq request fails with ResponseNeverReceived, not
        # CancelledError, so the timeout is known by this flag instead.
        timer = self._reactor.callLater(self._timeout, expire)
        try:
            code, result = await attempt
        except Exception as exc:
            reason = self._reason(exc, expired)
            if reason is None:
                raise
            self.log.warn(
                "VXP {op} failed: {reason}", op=op, reason=reason, system_id=self._system_id
            )
            raise VxpUnavailable(op, reason) from None
        finally:
            if timer.active():
                timer.cancel()
        elapsed = self._reactor.seconds() - started
        self.log.info(
            "VXP {op} answered in {elapsed:.3f} s",
            op=op,
            elapsed=elapsed,
            http_status=code,
            system_id=self._system_id,
        )
        return result

    def _reason(self, exc: Exception, expired: list[bool]) -> str | None:
        """Why a call is unavailable, or None when the error is the caller's to see as is."""
        if expired:
            return f"no answer within {self._timeout:g} s"
        if isinstance(exc, VxpTooLarge):
            return None
        if isinstance(exc, HttpError):
            return f"HTTP {exc.code}"
        if isinstance(exc, Oversized):
            return "the answer is larger than expected"
        if isinstance(exc, VxpProtocolError):
            return f"not a VXP answer: {exc.message_en}"
        if isinstance(exc, VxpRefused | VxpUnavailable):
            return None
        # Refused, reset, DNS, TLS handshake: the network's problem, not the request's.
        return network_reason(exc)

    async def _exchange(
        self,
        op: str,
        headers: Headers,
        body: bytes,
        consume: Callable[[IResponse], Awaitable[T]],
    ) -> tuple[int, T]:
        sent = self._reactor.seconds()
        response: IResponse = await self._http.request(
            "POST",
            f"{self._endpoint}/{op}",
            data=body or None,
            headers=headers,
            allow_redirects=False,
            # Buffered responses keep every byte for a second reader: getEdoc must stream.
            unbuffered=True,
        )
        arrived = self._reactor.seconds()
        self._observe_clock(response, sent, arrived)
        if response.code >= 500:
            await drain(response)
            raise HttpError(response.code)
        try:
            result = await consume(response)
        except VxpProtocolError:
            if response.code != 200:
                raise HttpError(response.code) from None
            raise
        return response.code, result

    def _observe_clock(self, response: IResponse, sent: float, arrived: float) -> None:
        if self._observer is None:
            return
        offset = server_offset(response, sent, arrived)
        if offset is None:
            return
        try:
            self._observer(offset, arrived - sent)
        except Exception:
            self.log.failure("VXP clock observer failed")
