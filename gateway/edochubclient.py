"""The client of the BKAV "eDoc" provincial hub (../shared/docs/bkav_hub.md), over treq: one
method per SOAP operation, the requests and answers of `edxml.edochub`.

Each call ends one of three ways:

* its result;
* `HubRefused`: the hub answered and its Report says no (`code`, `description` and `kind` as in
  `edxml.edochub.ErrorKind`; an empty ErrorList, the hub's answer to wrong body credentials, is
  kind AUTH with an empty code);
* `HubUnavailable`, worth trying again later: connection refused or reset, DNS, TLS, no answer
  within `timeout`, HTTP other than 200, an answer that is not a hub answer (an HTML page, a
  SOAP Fault of the ESB, an empty Body, a cut multipart).

The token is the caller's: it travels only inside the request bodies, never in logs, reprs or
exception texts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final, TypeVar

from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse

from edxml import edochub
from edxml.codes import StatusCode
from edxml.edochub import (
    HubProtocolError,
    HubRefusal,
    Message,
    Organization,
    ReceivedDocument,
    ResponseFor,
    StaffInfo,
    Trace,
)
from gateway.httpcall import (
    HttpError,
    Oversized,
    drain,
    network_reason,
    one_shot_agent,
    read_body,
    server_offset,
)

__all__ = ["HubClient", "HubRefused", "HubUnavailable"]

SMALL_ANSWER: Final = 1 << 20
LIST_ANSWER: Final = 32 << 20
DEFAULT_MAX_DOCUMENT_BYTES: Final = 200 * 1024 * 1024  # Base64 text of the files, and headers

T = TypeVar("T")
# Not the network's doing: shown to the caller as they are, never as "unavailable".
_PROGRAMMING_ERRORS: Final = (TypeError, AttributeError, KeyError, AssertionError, NameError)


class HubUnavailable(Exception):
    """The hub could not be asked or gave no usable answer; the same call may work later."""

    def __init__(self, action: str, reason: str) -> None:
        self.action = action
        self.reason = reason
        self.message_en = f"eDoc hub {action}: the hub is unavailable ({reason})"
        self.message_vi = f"Trục eDoc {action}: không liên lạc được với trục ({reason})"
        super().__init__(self.message_en)


class HubRefused(Exception):
    """The hub answered and refused: the first Error's code and text as it sent them."""

    def __init__(self, refusal: HubRefusal) -> None:
        self.action = refusal.action
        self.code = refusal.code
        self.description = refusal.description
        self.kind = refusal.kind
        self.report = refusal.report
        self.message_en = refusal.message_en
        self.message_vi = refusal.message_vi
        super().__init__(self.message_en)


class _Token:
    """Holds the token; shows nothing of it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<token>"

    __str__ = __repr__


class HubClient:
    """One organisation's client of one hub proxy URL (e.g. `https://esb…/services/EdocHub`).

    `reactor` gives the time and the timeout timers; `agent` makes the connections (by default
    a non-persistent Agent that verifies TLS like a browser)."""

    log = Logger()

    def __init__(
        self,
        endpoint: str,
        organ_id: str,
        token: str,
        *,
        reactor: Any,
        timeout: float = 60.0,
        agent: IAgent | None = None,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        clock_observer: Callable[[float, float], None] | None = None,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"eDoc hub endpoint {endpoint!r} is not an http(s) URL")
        if not token or token != token.strip():
            raise ValueError("the eDoc hub token must be non-empty text without surrounding space")
        self._endpoint = endpoint
        self._organ_id = organ_id
        self._token = _Token(token)
        self._reactor = reactor
        self._timeout = timeout
        self._max_document = max_document_bytes
        self._http = HTTPClient(agent or one_shot_agent(reactor, timeout))
        self._observer = clock_observer

    def __repr__(self) -> str:
        return f"HubClient({self._endpoint!r}, organ_id={self._organ_id!r})"

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def organ_id(self) -> str:
        return self._organ_id

    # --- operations -----------------------------------------------------------------------

    async def send_document(self, doc: edochub.OutgoingDocument) -> int:
        """SendDocument; the hub's numeric id of the stored document."""
        request = edochub.send_document(doc, self._organ_id, self._token.reveal())
        message = await self._call(request, SMALL_ANSWER)
        return self._parse(request.action, edochub.parse_send_document, message.envelope)

    async def pending(self) -> tuple[int, ...]:
        """GetPendingDocumentIds: every id not yet confirmed (no paging, no order)."""
        request = edochub.get_pending_document_ids(self._organ_id, self._token.reveal())
        message = await self._call(request, LIST_ANSWER)
        return self._parse(request.action, edochub.parse_pending, message.envelope)

    async def get_document(self, hub_id: int) -> ReceivedDocument:
        """GetDocument: headers and attachments (decoded). Marks nothing as received."""
        request = edochub.get_document(self._organ_id, self._token.reveal(), hub_id)
        message = await self._call(request, self._max_document)
        return self._parse(request.action, lambda m: edochub.parse_document(m, hub_id), message)

    async def confirm_received(self, hub_id: int) -> None:
        """ConfirmReceived: off the pending list; the hub tells the sender "01" itself."""
        request = edochub.confirm_received(self._organ_id, self._token.reveal(), hub_id)
        message = await self._call(request, SMALL_ANSWER)
        self._parse(
            request.action, lambda e: edochub.parse_simple(e, request.action), message.envelope
        )

    async def update_traces(
        self,
        *,
        from_: Organization,
        response_for: ResponseFor,
        status: StatusCode,
        description: str,
        timestamp: dt.datetime,
        staff: StaffInfo,
    ) -> bool:
        """UpdateTraces: True when stored, False when the hub already has that status (its
        duplicate refusal, §5.5: the same retry that lost its answer is then done)."""
        request = edochub.update_traces(
            self._organ_id,
            self._token.reveal(),
            from_=from_,
            response_for=response_for,
            status=status,
            description=description,
            timestamp=timestamp,
            staff=staff,
        )
        return await self._accepted(request, unless=edochub.ErrorKind.DUPLICATE)

    async def get_traces(self, since: dt.datetime | None = None) -> tuple[Trace, ...]:
        """GetTraces. Without `since` the hub forgets what it hands over: keep it before
        anything else. With `since`, a replay from that moment, nothing forgotten."""
        request = edochub.get_traces(self._organ_id, self._token.reveal(), since)
        message = await self._call(request, LIST_ANSWER)
        return self._parse(request.action, edochub.parse_traces, message.envelope)

    async def organizations(self) -> tuple[Organization, ...]:
        """GetOrganizations: the hub's whole directory."""
        request = edochub.get_organizations(self._organ_id, self._token.reveal())
        message = await self._call(request, LIST_ANSWER)
        return self._parse(request.action, edochub.parse_organizations, message.envelope)

    async def check_permission(self) -> bool:
        """CheckPermission: whether the hub accepts our OrganId and token (a probe: a plain
        mismatch is False, not an exception)."""
        request = edochub.check_permission(self._organ_id, self._token.reveal())
        return await self._accepted(request, unless=edochub.ErrorKind.AUTH)

    # --- the exchange ---------------------------------------------------------------------

    async def _accepted(self, request: edochub.Request, *, unless: edochub.ErrorKind) -> bool:
        """A call answered by a plain Report: True when it succeeded, False when the hub
        refused it for the reason `unless` (a duplicate status, a wrong token), else raised."""
        message = await self._call(request, SMALL_ANSWER)
        try:
            self._parse(
                request.action,
                lambda e: edochub.parse_simple(e, request.action),
                message.envelope,
            )
        except HubRefused as exc:
            if exc.kind is unless:
                return False
            raise
        return True

    def _parse(self, action: str, parse: Callable[[Any], T], data: Any) -> T:
        try:
            return parse(data)
        except HubRefusal as refusal:
            self.log.info(
                "eDoc hub {action} refused: {code}: {description}",
                action=action,
                code=refusal.code,
                description=refusal.description,
                organ_id=self._organ_id,
            )
            raise HubRefused(refusal) from None
        except HubProtocolError as exc:
            reason = f"not a hub answer: {exc.message_en}"
            self.log.warn("eDoc hub {action} failed: {reason}", action=action, reason=reason)
            raise HubUnavailable(action, reason) from None

    async def _call(self, request: edochub.Request, cap: int) -> Message:
        action = request.action
        started = self._reactor.seconds()
        attempt: Deferred[Message] = Deferred.fromCoroutine(self._exchange(request, cap))
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            attempt.cancel()

        # As in gateway.vxpclient: a cancelled treq request fails with ResponseNeverReceived,
        # not CancelledError, so the timeout is known by this flag.
        timer = self._reactor.callLater(self._timeout, expire)
        try:
            message = await attempt
        except _PROGRAMMING_ERRORS:
            raise
        except Exception as exc:
            reason = self._reason(exc, expired)
            self.log.warn(
                "eDoc hub {action} failed: {reason}",
                action=action,
                reason=reason,
                organ_id=self._organ_id,
            )
            raise HubUnavailable(action, reason) from None
        finally:
            if timer.active():
                timer.cancel()
        self.log.info(
            "eDoc hub {action} answered in {elapsed:.3f} s",
            action=action,
            elapsed=self._reactor.seconds() - started,
            organ_id=self._organ_id,
        )
        return message

    def _observe_clock(self, response: IResponse, sent: float, arrived: float) -> None:
        # R20: the hub's answers carry its clock (HTTP Date); `gateway status` shows the offset.
        offset = server_offset(response, sent, arrived) if self._observer else None
        if offset is None or self._observer is None:
            return
        try:
            self._observer(offset, arrived - sent)
        except Exception:
            self.log.failure("eDoc hub clock observer failed")

    def _reason(self, exc: Exception, expired: list[bool]) -> str:
        if expired:
            return f"no answer within {self._timeout:g} s"
        if isinstance(exc, HttpError):
            return f"HTTP {exc.code}"
        if isinstance(exc, Oversized):
            return "the answer is larger than expected"
        if isinstance(exc, HubProtocolError):
            return f"not a hub answer: {exc.message_en}"
        return network_reason(exc)

    async def _exchange(self, request: edochub.Request, cap: int) -> Message:
        headers = Headers()
        for name, value in request.headers:
            headers.addRawHeader(name, value)
        sent = self._reactor.seconds()
        response: IResponse = await self._http.request(
            "POST",
            self._endpoint,
            data=request.body,
            headers=headers,
            allow_redirects=False,
            unbuffered=True,
        )
        self._observe_clock(response, sent, self._reactor.seconds())
        if response.code != 200:
            # The mediator answers every business error with HTTP 200 (§4.3).
            await drain(response)
            raise HttpError(response.code)
        body = await read_body(response, cap)
        types = response.headers.getRawHeaders(b"content-type") or [b"text/xml"]
        return edochub.split_message(types[0].decode("latin-1"), body)
