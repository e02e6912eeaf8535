"""A route through a BKAV "eDoc" provincial SOAP hub (floor 5; ../shared/docs/bkav_hub.md):
the transport that sends, the pull loop that takes documents and statuses, the directory sync
and the start-up credential probe. What crosses the hub and what stays signed:
`edxml.edochubmap`.

The pull loop (`HubPuller`), every `pull_interval`:

* documents: GetPendingDocumentIds, and for each id not settled here GetDocument → the sender's
  signed envelope (carried as a part) to `Inbound.accept` — the durable commit and the node's
  duplicate detection — → the outcome recorded in `axis_items` → ConfirmReceived (which makes
  the hub write status 01 to the sender). A crash before the commit: the id is listed again and
  fetched again. After the commit, before the confirmation reached the hub: fetched again,
  `accept` answers it as a duplicate (the office system sees it once), then confirmed. After the
  confirmation: the hub lists it no more; if it does, the settled item is confirmed again
  without fetching. A document the hub lists but cannot give yet (`M.GetDocument`) waits.
* statuses: GetTraces hands over what it has and forgets it (§5.6), so every trace is written
  to `axis_items` (with its text) in one transaction before anything else, then made into a
  status packet (`edochubmap.status_packet`) and accepted; an unsettled trace left by a crash is
  taken from its kept text next round. Only the window between the hub's answer and that first
  write is uncovered; the first round after a start closes it by asking the hub to replay the
  last `REPLAY` seconds of traces (GetTraces with TimeStamp), the known ones skipped by key.

A trace the hub writes as 999 (its forward to the national axis failed) is not a status: it
turns our delivery to that organisation on this route from sent to failed, kept and logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from zope.interface import implementer

from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from edxml import edochub, edochubmap, reader, writer
from edxml.codes import StatusCode
from edxml.edochub import ErrorKind, TraceStatus
from edxml.model import Envelope, StatusPacket
from gateway import directory
from gateway.axis import DirectorySync
from gateway.config import RouteConfig
from gateway.edochubclient import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    HubClient,
    HubRefused,
    HubUnavailable,
)
from gateway.interfaces import (
    IInbound,
    ITransport,
    OutboundPackage,
    Peer,
    PermanentFailure,
    TransientFailure,
    TransportReceipt,
)
from gateway.outbound import now_of
from gateway.pulling import (
    AxisItem,
    PullLoop,
    PullRound,
    Tally,
    acked,
    axis_items,
    fetch_attempt,
    seen,
    settled,
)
from gateway.soap import FaultCode, GatewayFault
from gateway.store import Store, append_audit, mark_delivery_undelivered
from gateway.transports import UploadOnce

__all__ = ["HubPuller", "HubTransport", "hub_client", "hub_directory_sync", "probe"]

CONFIRMED_BY_HUB = "hub:ConfirmReceived"  # the receipt of our 01: the hub wrote it itself


def hub_client(
    route: RouteConfig,
    *,
    reactor: Any,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    clock_observer: Callable[[float, float], None] | None = None,
) -> HubClient:
    assert route.url is not None and route.account is not None and route.secret is not None
    return HubClient(
        route.url,
        route.account,
        route.secret.reveal(),
        reactor=reactor,
        timeout=route.timeout,
        max_document_bytes=max_document_bytes,
        clock_observer=clock_observer,
    )


def _refusal(exc: HubRefused, what: str) -> Exception:
    """A hub refusal as the dispatcher's failure: worth retrying (our credentials, the hub's
    own trouble) or not (the hub will refuse the same packet again)."""
    text = f"the hub refused {what}: {exc.code or 'no code'}: {exc.description}".rstrip(": ")
    if exc.kind in (ErrorKind.AUTH, ErrorKind.HUB):
        return TransientFailure(text)
    return PermanentFailure(text, FaultCode.RULE_VIOLATION.value)


@implementer(ITransport)
class HubTransport(UploadOnce):
    """SendDocument for an envelope (the hub's id is the receipt; one upload serves every
    recipient the hub serves, see `UploadOnce`), UpdateTraces for a status. Our own 01 is never
    posted: the hub wrote it when we confirmed the document (§5.4)."""

    log = Logger()

    def __init__(
        self,
        route: RouteConfig,
        client: HubClient,
        *,
        clock: Any,
        store: Store | None = None,
        serves: Callable[[str], bool] | None = None,
        pool: Any = None,
    ) -> None:
        super().__init__(route, clock=clock, store=store)
        self._client = client
        self._serves = serves or route.match
        self._pool = pool

    async def _read(self, payload: bytes) -> Envelope | StatusPacket:
        if self._pool is None:
            return reader.read(payload).document
        found = await deferToThreadPool(self._clock, self._pool, reader.read, payload)
        return found.document

    async def _upload(self, package: OutboundPackage, payload: bytes) -> TransportReceipt:
        doc = await self._read(payload)
        if isinstance(doc, StatusPacket):
            return await self._status(package, doc)
        return await self._document(package, doc, payload)

    async def _document(
        self, package: OutboundPackage, doc: Envelope, payload: bytes
    ) -> TransportReceipt:
        recipients = [o.organ_id for o in doc.header.to if self._serves(o.organ_id)]
        if package.recipient not in recipients:
            recipients.append(package.recipient)
        try:
            packet = edochubmap.outgoing_document(
                doc, payload, recipients=recipients, now=now_of(self._clock)
            )
        except edochubmap.MappingError as exc:
            raise PermanentFailure(
                f"the hub cannot carry this envelope: {exc.message_en}",
                FaultCode.RULE_VIOLATION.value,
            ) from None
        try:
            hub_id = await self._client.send_document(packet)
        except HubUnavailable as exc:
            raise TransientFailure(exc.message_en) from None
        except HubRefused as exc:
            if exc.kind is ErrorKind.DUPLICATE:
                # M.Exist: the hub holds this DocumentId (ours: it names our OrganId) from an
                # upload whose answer we lost.
                self.log.info(
                    "delivery {delivery_id}: {route} already holds {document_id}",
                    delivery_id=package.delivery_id,
                    route=self._route.name,
                    document_id=doc.header.document_id,
                )
                return TransportReceipt("hub:exists", now_of(self._clock), duplicate=True)
            raise _refusal(exc, "the document") from None
        self.log.info(
            "delivery {delivery_id} sent to {route} as hub document {hub_id}",
            delivery_id=package.delivery_id,
            route=self._route.name,
            hub_id=hub_id,
        )
        return TransportReceipt(str(hub_id), now_of(self._clock))

    async def _status(self, package: OutboundPackage, packet: StatusPacket) -> TransportReceipt:
        now = now_of(self._clock)
        if packet.status_code is StatusCode.ARRIVED:
            return TransportReceipt(CONFIRMED_BY_HUB, now)
        try:
            trace = edochubmap.hub_trace(packet, recipient=package.recipient)
        except edochubmap.MappingError as exc:
            raise PermanentFailure(exc.message_en, FaultCode.RULE_VIOLATION.value) from None
        try:
            stored = await self._client.update_traces(**trace)
        except HubUnavailable as exc:
            raise TransientFailure(exc.message_en) from None
        except HubRefused as exc:
            raise _refusal(exc, f"the status {packet.status_code.value}") from None
        return TransportReceipt(f"trace:{packet.status_code.value}", now, duplicate=not stored)


class HubPuller(PullLoop):
    """Takes the documents and statuses the hub holds for the route's account."""

    REPLAY = 24 * 3600.0  # seconds of traces asked again after a start

    def __init__(
        self,
        route: RouteConfig,
        client: HubClient,
        inbound: IInbound,
        store: Store,
        *,
        clock: Any,
        account_name: str = "",
    ) -> None:
        super().__init__(route.name, route.pull_interval, clock=clock)
        self._account_name = account_name
        self._route = route
        self._client = client
        self._inbound = inbound
        self._store = store
        self._peer = Peer(kind="hub", name=route.name)
        self._replayed = False
        self._credentials: bool | None = None  # as last recorded: accepted, refused, unknown

    async def pull_once(self) -> PullRound:
        tally = Tally()
        if await self._documents(tally):
            await self._traces(tally)
        result = tally.result()
        if result.listed:
            self.log.info("pulled from {route}: {round}", route=self._name, round=result)
        return result

    def _stopped(self, tally: Tally, why: str, exc: Exception) -> bool:
        tally.stopped = f"{why}: {exc}"
        self.log.warn(
            "{route}: {why}: {error}", route=self._name, why=why, error=str(exc), organ_id=None
        )
        return False

    # --- documents ---

    async def _documents(self, tally: Tally) -> bool:
        try:
            ids = await self._client.pending()
        except (HubUnavailable, HubRefused) as exc:
            if isinstance(exc, HubRefused) and exc.kind is ErrorKind.AUTH:
                await self._credentials_are(False)
            return self._stopped(tally, "cannot list the pending documents", exc)
        await self._credentials_are(True)
        return await self._each(dict.fromkeys(ids), self._take, tally)

    async def _credentials_are(self, accepted: bool) -> None:
        """A token revoked (or restored) at the hub while the node runs shows in `gateway status`
        as a refusal at start does: recorded when it changes, not every round."""
        if self._credentials is accepted:
            return
        now = now_of(self._clock)
        await self._store.write(
            lambda c: record_credentials(c, self._route, accepted, now=now, only_if_changed=True)
        )
        self._credentials = accepted

    async def _take(self, hub_id: int, tally: Tally) -> bool:
        route, key, now = self._name, str(hub_id), now_of(self._clock)
        account = self._route.account
        known: AxisItem = await self._store.write(
            lambda c: seen(c, route, key, "edoc", now, recipient=account)
        )
        if known.outcome is not None:
            tally.add("acked_again")
            return await self._confirm(hub_id, tally)
        try:
            doc = await self._client.get_document(hub_id)
        except HubRefused as exc:
            # Listed but not given (yet): left where it is, tried next round.
            tally.add("not_ready")
            why = f"{exc.code}: {exc.description}"
            await self._store.write(lambda c: fetch_attempt(c, route, key, why))
            return True
        except HubUnavailable as exc:
            return self._stopped(tally, f"cannot fetch {hub_id}", exc)
        signed = edochubmap.signed_envelope(doc)
        if signed is None:
            return await self._unsigned(doc, tally)
        try:
            receipt = await self._inbound.accept(
                signed, self._peer, (account,) if account else None
            )
        except GatewayFault as fault:
            if fault.code is FaultCode.UNAVAILABLE:
                # Our own trouble (disk, a bug): not the document's; try again next round.
                tally.stopped = f"storing {hub_id}: {fault.text_en}"
                return False
            # Refused and recorded by inbound, which also tells the sender (a 02 via this hub).
            tally.add("refused")
            await self._settle(key, "refused", None, f"{fault.code.value}: {fault.text_en}")
            return await self._confirm(hub_id, tally)
        tally.add("duplicates" if receipt.duplicate else "accepted")
        outcome = "duplicate" if receipt.duplicate else "accepted"
        await self._settle(key, outcome, receipt.message_id, None)
        return await self._confirm(hub_id, tally)

    async def _settle(
        self, key: str, outcome: str, message_id: str | None, detail: str | None
    ) -> None:
        now = now_of(self._clock)
        await self._store.write(
            lambda c: settled(
                c, self._name, key, outcome=outcome, message_id=message_id, detail=detail, now=now
            )
        )

    async def _unsigned(self, doc: edochub.ReceivedDocument, tally: Tally) -> bool:
        """A document with only the hub's fields (an office system that does not sign sent it):
        nothing vouches for its content, so it is refused — told to its sender with a 02 through
        the hub, confirmed so that the hub stops offering it."""
        tally.add("refused")
        reason_en = "refused: the document carries no signed QCVN 102 edXML envelope"
        reason_vi = "từ chối: văn bản không kèm gói tin edXML QCVN 102 có chữ ký số"
        self.log.warn(
            "{route}: hub document {hub_id} ({document_id}) from {sender} {reason}",
            route=self._name,
            hub_id=doc.hub_id,
            document_id=doc.document_id,
            sender=doc.from_.organ_id,
            reason=reason_en,
        )
        await self._settle(str(doc.hub_id), "refused", None, reason_en)
        account = self._route.account or ""
        day = doc.promulgation_date
        try:
            await self._client.update_traces(
                from_=edochub.Organization(account, self._account_name or account),
                response_for=edochub.ResponseFor(
                    doc.from_.organ_id,
                    doc.code,
                    day.strftime("%Y/%m/%d") if day else "",
                    doc.document_id,
                ),
                status=StatusCode.REJECTED,
                description=f"{reason_vi} / {reason_en}",
                timestamp=now_of(self._clock),
                staff=edochub.StaffInfo(staff="edXML gateway"),
            )
        except (HubUnavailable, HubRefused) as exc:
            self.log.warn(
                "{route}: cannot tell {sender} of the refusal: {error}",
                route=self._name,
                sender=doc.from_.organ_id,
                error=str(exc),
            )
        return await self._confirm(doc.hub_id, tally)

    async def _confirm(self, hub_id: int, tally: Tally) -> bool:
        try:
            await self._client.confirm_received(hub_id)
        except HubUnavailable as exc:
            # Stored here, not confirmed there: it is listed again and confirmed then.
            return self._stopped(tally, f"cannot confirm {hub_id}", exc)
        except HubRefused as exc:
            # "Not found": the hub cleared its pending flag before failing (§5.4).
            self.log.warn(
                "{route}: the hub refused to confirm {hub_id}: {error}",
                route=self._name,
                hub_id=hub_id,
                error=str(exc),
            )
        now = now_of(self._clock)
        await self._store.write(lambda c: acked(c, self._name, str(hub_id), "confirmed", now))
        return True

    async def _forward_failed(self, item: AxisItem, trace: edochub.Trace) -> None:
        """999: the hub took our document but could not pass it to the national axis for the
        trace's organisation. Our delivery to it on this route, sent, becomes failed, so the
        office system (GetSendStatus), `gateway failures` and `gateway show` all see it."""
        route, now, rf = self._name, now_of(self._clock), trace.response_for
        recipient = trace.from_.organ_id
        error = (
            f"the hub could not forward it to the national axis (999"
            f"{': ' + trace.description if trace.description else ''})"
        )

        def job(conn: Any) -> tuple[str | None, bool]:
            row = conn.execute(
                "SELECT d.id, m.id FROM deliveries d JOIN messages m ON m.id = d.message_id"
                " WHERE m.direction = 'out' AND m.kind = 'envelope' AND m.document_id = ?"
                " AND m.sender = ? AND d.recipient = ? AND d.route = ? ORDER BY d.id DESC LIMIT 1",
                (rf.document_id, rf.organ_id, recipient, route),
            ).fetchone()
            message_id, changed = None, False
            if row is not None:
                message_id = row[1]
                changed = mark_delivery_undelivered(
                    conn, row[0], now=now, error=error, actor=f"hub:{route}"
                )
            settled(
                conn,
                route,
                item.axis_id,
                outcome="send-failed",
                message_id=message_id,
                detail=item.detail,
                now=now,
            )
            return message_id, changed

        message_id, changed = await self._store.write(job)
        self.log.warn(
            "{route}: the hub could not forward {document_id} to {recipient} through the national"
            " axis (999): {what}",
            route=route,
            document_id=rf.document_id,
            recipient=recipient,
            message_id=message_id,
            what="delivery marked failed"
            if changed
            else (
                "the delivery was not sent, left as it is"
                if message_id
                else "not a document of ours"
            ),
        )

    # --- statuses ---

    async def _traces(self, tally: Tally) -> bool:
        if not self._replayed:
            since = now_of(self._clock) - dt.timedelta(seconds=self.REPLAY)
            try:
                await self._keep(await self._client.get_traces(since))
            except (HubUnavailable, HubRefused) as exc:
                return self._stopped(tally, "cannot replay the statuses", exc)
            self._replayed = True
        try:
            await self._keep(await self._client.get_traces())
        except (HubUnavailable, HubRefused) as exc:
            self._stopped(tally, "cannot read the statuses", exc)
        # What this round and any crashed one kept: stored now.
        waiting = await self._store.read(
            lambda c: axis_items(c, route=self._name, message_type="status", unsettled=True)
        )
        return await self._each(reversed(waiting), self._take_trace, tally)  # oldest first

    async def _keep(self, traces: Sequence[edochub.Trace]) -> None:
        """Every trace of one answer written (with its text) in one transaction: from here on
        a crash loses none of them."""
        if not traces:
            return
        route, now = self._name, now_of(self._clock)

        def job(conn: Any) -> None:
            for trace in traces:
                key = edochubmap.trace_key(trace)
                item = seen(
                    conn,
                    route,
                    key,
                    "status",
                    now,
                    sender=trace.from_.organ_id,
                    recipient=trace.response_for.organ_id,
                    detail=edochubmap.trace_json(trace),
                )
                if item.acked_at is None:
                    acked(conn, route, key, "read", now)  # the hub forgot it as it answered

        await self._store.write(job)

    async def _take_trace(self, item: AxisItem, tally: Tally) -> bool:
        if item.detail is None:  # not ours to take (written by something else): leave it
            return True
        trace = edochubmap.trace_from_json(item.detail)
        packet = edochubmap.status_packet(trace)
        if packet is None:
            tally.add("ignored")
            if trace.kind is TraceStatus.SEND_FAILED:
                await self._forward_failed(item, trace)
                return True
            self.log.warn(
                "{route}: trace {code} about {document_id} from {sender}: not a status code of"
                " QCVN 102 (or no readable time): kept, not applied",
                route=self._name,
                code=trace.code,
                document_id=trace.response_for.document_id,
                sender=trace.from_.organ_id,
            )
            await self._settle(item.axis_id, "ignored", None, item.detail)
            return True
        if packet.status_code is StatusCode.ARRIVED:
            earlier = await self._store.read(
                lambda c: _arrival_of(c, packet.from_.organ_id, packet.response_for.document_id)
            )
            if earlier is not None:
                # The hub writes a 01 at every ConfirmReceived, of every hub document: a
                # confirmation repeated, or a revoke (a new hub document with the same
                # DocumentId). Arrival happens once; the first one stands.
                tally.add("duplicates")
                await self._settle(item.axis_id, "duplicate", earlier, None)
                return True
        try:
            receipt = await self._inbound.accept(writer.write(packet), self._peer, None)
        except GatewayFault as fault:
            if fault.code is FaultCode.UNAVAILABLE:
                tally.stopped = f"storing {item.axis_id}: {fault.text_en}"
                return False
            tally.add("refused")
            await self._settle(
                item.axis_id, "refused", None, f"{fault.code.value}: {fault.text_en}"
            )
            return True
        tally.add("duplicates" if receipt.duplicate else "accepted")
        outcome = "duplicate" if receipt.duplicate else "accepted"
        await self._settle(item.axis_id, outcome, receipt.message_id, None)
        return True


def _arrival_of(conn: Any, organ_id: str, document_id: str) -> str | None:
    """The 01 already received from `organ_id` about the document, if any."""
    row = conn.execute(
        "SELECT id FROM messages WHERE direction = 'in' AND kind = 'status'"
        " AND business_type = '01' AND sender = ? AND document_id = ? ORDER BY created_at LIMIT 1",
        (organ_id, document_id),
    ).fetchone()
    return None if row is None else str(row[0])


def hub_directory_sync(
    route: RouteConfig, client: HubClient, store: Store, *, clock: Any
) -> DirectorySync:
    """GetOrganizations merged into the directory (locally imported entries win)."""
    return DirectorySync(
        route,
        lambda: hub_agencies(client),
        store,
        clock=clock,
        unavailable=(HubUnavailable, HubRefused),
    )


async def hub_agencies(client: HubClient) -> list[directory.AxisAgency]:
    """The hub's whole directory (GetOrganizations) as directory entries."""
    return [
        directory.AxisAgency(code=o.organ_id, name=o.name, id=o.organ_id, pid="")
        for o in await client.organizations()
    ]


PROBE_ACTIONS = ("hub-credentials-accepted", "hub-credentials-refused")


async def probe(
    route: RouteConfig, client: HubClient, store: Store | None = None, *, clock: Any = None
) -> bool | None:
    """CheckPermission at start: True accepted, False refused (a configuration error, logged
    as such and, with a store, audited: `gateway status` shows it until the hub accepts the
    credentials again, at a start or in a pull round), None the hub did not answer (the loops
    will try again)."""
    log = Logger()
    try:
        ok = await client.check_permission()
    except (HubUnavailable, HubRefused) as exc:
        log.warn("{route}: cannot check our credentials: {error}", route=route.name, error=str(exc))
        return None
    if not ok:
        log.error(
            "{route}: the hub refuses OrganId {organ_id} with the configured token; nothing will"
            " be sent or received on this route until it is fixed / trục từ chối mã định danh"
            " {organ_id} với mã truy cập đã cấu hình",
            route=route.name,
            organ_id=route.account,
        )
    else:
        log.info(
            "{route}: the hub accepts OrganId {organ_id}", route=route.name, organ_id=route.account
        )
    if store is not None:
        now = now_of(clock)
        await store.write(lambda c: record_credentials(c, route, ok, now=now))
    return ok


def record_credentials(
    conn: Any,
    route: RouteConfig,
    accepted: bool,
    *,
    now: dt.datetime,
    only_if_changed: bool = False,
) -> None:
    """Audit what the hub said of our OrganId and token (`gateway status` reads the last)."""
    action = PROBE_ACTIONS[0 if accepted else 1]
    if only_if_changed:
        last = conn.execute(
            "SELECT action FROM audit WHERE subject_type = 'route' AND subject_id = ?"
            f" AND action IN ({', '.join('?' for _ in PROBE_ACTIONS)}) ORDER BY id DESC LIMIT 1",
            (route.name, *PROBE_ACTIONS),
        ).fetchone()
        # Nothing recorded yet counts as accepted: a first refusal is news, a first success not.
        if (last[0] if last else PROBE_ACTIONS[0]) == action:
            return
    append_audit(
        conn,
        at=now,
        actor=f"hub:{route.name}",
        action=action,
        subject_type="route",
        subject_id=route.name,
        detail={"organ_id": route.account},
    )
