"""What this node sends (floor 5): an office system's envelope, or a status packet, becomes signed
bytes in a blob and one stored delivery per recipient. Implements `IOutbound`.

An envelope is judged like an inbound one (tolerant reading, as real office-system SDKs write it;
any ERROR finding refuses it), its `From` must be hosted here and the office credential must act
for it (`Forbidden` otherwise), and every `To` must have a route (`UnknownRecipient` refuses the
whole submission before anything is stored). Then it is sealed with the agency's key and stored as
signed: the blob committed first, then the message and its deliveries in one transaction. An
office system that resends the same envelope (same From, DocumentId and business type) gets the
first submission back: a read of the idempotency key before signing spares the resend its
signature, and the store's unique key still decides a race between two concurrent submissions.

Parsing, signing and blob I/O run in the injected thread pool; the reactor only awaits them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from zope.interface import implementer

from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from edxml import signature, writer
from edxml.check import Report, examine
from edxml.errors import EdxmlError
from edxml.findings import Finding
from edxml.model import Envelope, StatusPacket
from gateway import directory, policy
from gateway.blobs import BlobRef, BlobStore
from gateway.calendar import Calendars, vietnam_time
from gateway.config import Config, OfficeConfig, UnknownAgencies
from gateway.documents import duplicate_numbers, insert_refusal
from gateway.interfaces import IOutbound, Submitted, SubmittedDelivery
from gateway.router import Router
from gateway.soap import FaultCode, GatewayFault, Receipt
from gateway.store import (
    NewDelivery,
    NewMessage,
    OutboundReply,
    Store,
    deliveries_for,
    document_rank,
    get_message,
    insert_outbound_message_with_deliveries,
    note_duplicate,
    outbound_by_key,
    stored_time,
)

__all__ = ["Outbound", "Seal", "load_seal", "now_of", "verdict_json"]

T = TypeVar("T")

MAX_VERDICT_FINDINGS: Final = 50


MAX_VERDICT_TRACE = 32


def now_of(clock: IReactorTime) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock.seconds(), dt.UTC)


def verdict_json(
    report: Report, *, extra: Sequence[Finding] = (), submitted_sha256: str | None = None
) -> str:
    """The stored verdict: the report without the bulky parts (a long trace list or tail of
    findings cut short), with the gateway's own findings (`extra`: the regulation's rules) first;
    the exact bytes are in the blob for anyone who needs more. The route so far (the trace list,
    each hop marked as under the sender's seal or not) is what an auditor asks first.
    `submitted_sha256`: the digest of what the office system handed over, before our seal."""
    data = report.to_json()
    if submitted_sha256 is not None:
        data["submitted_sha256"] = submitted_sha256
    trace = data.get("trace")
    if trace is not None and len(trace) > MAX_VERDICT_TRACE:
        data["trace"] = trace[:MAX_VERDICT_TRACE]
        data["trace_omitted"] = len(trace) - MAX_VERDICT_TRACE
    findings = [f.to_json() for f in extra] + data.get("findings", [])
    data["findings"] = findings
    if len(findings) > MAX_VERDICT_FINDINGS:
        data["findings"] = findings[:MAX_VERDICT_FINDINGS]
        data["findings_omitted"] = len(findings) - MAX_VERDICT_FINDINGS
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def too_large(size: int, limit: int) -> GatewayFault:
    return GatewayFault(
        FaultCode.TOO_LARGE,
        f"The package is {size} bytes; this gateway accepts at most {limit}",
        f"Gói tin có {size} byte; cổng chỉ nhận tối đa {limit} byte",
    )


def refusal_fault(report: Report) -> GatewayFault:
    """The fault for a report that refuses the document (unreadable bytes or an ERROR finding)."""
    if report.refusal is not None:
        r = report.refusal
        return GatewayFault(FaultCode(r.fault), r.message_en, r.message_vi)
    return GatewayFault.from_findings(report.findings)


@attrs.frozen
class Seal:
    """A hosted agency's signing key and the chain it ships (leaf first)."""

    organ_id: str
    key: PrivateKeyTypes = attrs.field(repr=False)
    chain: tuple[x509.Certificate, ...]


def load_seal(organ_id: str, key_path: Path, cert_path: Path) -> Seal:
    """Blocking (file reads and ~60 ms of RSA key checks): run it in a thread, once per agency."""
    key = load_pem_private_key(key_path.read_bytes(), password=None)
    chain = tuple(x509.load_pem_x509_certificates(cert_path.read_bytes()))
    return Seal(organ_id, key, chain)


@implementer(IOutbound)
class Outbound:
    log = Logger()

    def __init__(
        self,
        config: Config,
        store: Store,
        blobs: BlobStore,
        router: Router,
        *,
        clock: IReactorTime,
        pool: ThreadPool,
        reactor: IReactorFromThreads | None = None,
    ) -> None:
        """`reactor` runs the pool's callbacks (default: `clock`, which is the reactor in the
        daemon; tests pass a `task.Clock` as clock and the real reactor here)."""
        self._config = config
        self._store = store
        self._blobs = blobs
        self._router = router
        self._clock = clock
        self._pool = pool
        # In the daemon the clock is the reactor itself.
        self._reactor = reactor if reactor is not None else cast(IReactorFromThreads, clock)
        self._seals: dict[str, Seal] = {}
        self._calendars = Calendars(config)

    def now(self) -> dt.datetime:
        return now_of(self._clock)

    async def _in_pool(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        result: T = await deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)
        return result

    async def seal(self, organ_id: str) -> Seal:
        seal = self._seals.get(organ_id)
        if seal is None:
            agency = self._config.agency(organ_id)
            if agency is None:
                raise ValueError(f"{organ_id} is not hosted on this node")
            seal = await self._in_pool(load_seal, organ_id, agency.signing_key, agency.signing_cert)
            self._seals[organ_id] = seal
        return seal

    # --- envelopes ---

    async def submit_envelope(
        self, package: bytes, office: OfficeConfig, reference: str | None = None
    ) -> Submitted:
        limits = self._config.limits
        if len(package) > limits.max_envelope_bytes:
            raise too_large(len(package), limits.max_envelope_bytes)
        now = self.now()
        report = await self._in_pool(
            examine, package, limits=limits.xml_limits(), now=now, strict_schema=False
        )
        doc = report.document
        if doc is None:
            raise refusal_fault(report)
        if not isinstance(doc, Envelope):
            raise GatewayFault(
                FaultCode.BAD_REQUEST,
                "SendDocument takes an envelope; report statuses with UpdateStatus",
                "SendDocument nhận gói tin văn bản; trạng thái gửi bằng UpdateStatus",
            )
        sender = doc.header.from_.organ_id
        # Who may send comes before what is wrong with it: a stranger learns nothing more.
        if not self._config.hosts(sender) or not office.may_act_for(sender):
            raise GatewayFault(
                FaultCode.FORBIDDEN,
                f"Credential {office.name} may not send as {sender}",
                f"Thông tin xác thực {office.name} không được gửi thay cho {sender}",
            )
        ruling = policy.rule(doc, self._config.policy, self._calendars.of(sender), now)
        if ruling.secret is not None:
            # R1: refused before anything is kept; only the fact of the refusal is recorded.
            secret = GatewayFault.from_findings([ruling.secret])
            await self._store.write(
                functools.partial(
                    insert_refusal,
                    at=now,
                    direction="out",
                    sender=sender,
                    document_id=doc.header.document_id,
                    code=secret.code.value,
                    reason_en=secret.text_en,
                    reason_vi=secret.text_vi or "",
                    actor=f"office:{office.name}",
                )
            )
            raise secret
        if not report.acceptable:
            raise refusal_fault(report)
        recipients = tuple(dict.fromkeys(o.organ_id for o in doc.header.to))
        deliveries = await self._deliveries(recipients, now)
        h = doc.header
        business_type = str(int(doc.business_type))
        actor = f"office:{office.name}"
        # A resend costs a read, not a signature; the store's key still settles a race.
        first = await self._store.read(
            functools.partial(
                outbound_by_key,
                sender=sender,
                document_id=h.document_id,
                business_type=business_type,
            )
        )
        submitted_sha256 = hashlib.sha256(package).hexdigest()
        if first is not None:
            await self._refuse_other_content(first, submitted_sha256, office)
            await self._store.write(
                functools.partial(
                    note_duplicate,
                    message_id=first,
                    now=now,
                    actor=actor,
                    detail={
                        "resent": True,
                        **({"client_reference": reference} if reference else {}),
                    },
                )
            )
            self.log.info(
                "envelope resent by {office}: answered with {message_id}",
                message_id=first,
                office=office.name,
            )
            return await self._submitted(first)
        extra = [
            *ruling.findings,
            *await self._store.read(lambda c: duplicate_numbers(c, doc, direction="out")),
        ]
        seal = await self.seal(sender)
        signed_ref = await self._in_pool(self._sign_and_keep, package, seal)
        msg = NewMessage(
            id=str(uuid.uuid4()),
            direction="out",
            kind="envelope",
            sender=sender,
            document_id=h.document_id,
            business_type=business_type,
            blob=signed_ref,
            arrived_at=now,
            recipients=recipients,
            priority=int(h.other_info.priority),
            code_number=h.code.code_number or None,
            code_notation=h.code.code_notation or None,
            promulgation_date=_date(h.promulgation_info.promulgation_date),
            subject=h.subject or None,
            verdict_json=verdict_json(report, extra=extra, submitted_sha256=submitted_sha256),
            paper_required=bool(ruling.paper),
            late_issue=ruling.late is not None,
            due_date=_date(h.due_date),
            links=policy.links(doc),
        )
        submitted = await self._commit(msg, deliveries, now, actor=actor, reference=reference)
        self.log.info(
            "envelope {message_id} accepted from {sender} for {count} recipient(s)",
            message_id=submitted.message_id,
            sender=sender,
            count=len(submitted.deliveries),
            office=office.name,
        )
        return submitted

    async def _refuse_other_content(self, first_id: str, digest: str, office: OfficeConfig) -> None:
        """The idempotency key is (sender, DocumentId, BusinessDocType): the same key with other
        bytes is not a resend but another document under an identity already sent, which the
        recipients would take for the first. Refused (`Duplicate`, the first receipt with it);
        a change goes as an update or a replacement. Messages kept before the digest was
        recorded are answered as resends."""
        first = await self._store.read(lambda c: get_message(c, first_id))
        assert first is not None
        kept = json.loads(first.verdict_json).get("submitted_sha256")
        if kept is None or kept == digest:
            return
        self.log.warn(
            "envelope {document_id} refused: sent before as {message_id} with other content",
            document_id=first.document_id,
            message_id=first.id,
            office=office.name,
        )
        raise GatewayFault(
            FaultCode.DUPLICATE,
            f"{first.document_id} was already sent as message {first.id} with other content;"
            " to change it, send an update (BusinessDocType 2) or a replacement (3)",
            f"Văn bản {first.document_id} đã được gửi (gói tin {first.id}) với nội dung khác;"
            " muốn thay đổi, hãy gửi văn bản cập nhật (BusinessDocType 2) hoặc thay thế (3)",
            first_receipt=Receipt(
                receipt_id=first.id,
                message_id=first.id,
                received_at=stored_time(first.created_at),
                duplicate=True,
            ),
        )

    async def _deliveries(self, recipients: Sequence[str], now: dt.datetime) -> list[NewDelivery]:
        """One delivery per recipient, each on its route: the directory's named route where it
        gives one, else the most specific pattern. R11: with a directory, every recipient must
        be in it and valid today (a ceased agency is refused naming its successor)."""
        total, known = await self._store.read(lambda c: directory.lookup(c, recipients))
        enforce = total > 0 and self._config.policy.unknown_agencies is UnknownAgencies.REFUSE
        today = vietnam_time(now).date()
        routes = {r.name for r in self._config.routes}
        out = []
        for organ in recipients:
            entry = known.get(organ)
            if enforce:
                fault = directory.refusal(organ, entry, today, role="recipient")
                if fault is not None:
                    raise fault
            named = entry.route if entry is not None and entry.route in routes else None
            out.append(NewDelivery(organ, named or self._router.route_for(organ).name))
        return out

    def _sign_and_keep(self, package: bytes, seal: Seal) -> BlobRef:
        limits = self._config.limits.xml_limits()
        try:
            signed = signature.sign(package, seal.key, seal.chain, limits=limits)
        except EdxmlError as exc:
            raise GatewayFault.from_edxml_error(exc) from None
        # The exact signed bytes: any re-serialisation later would break the signature.
        return self._blobs.put(signed)

    # --- statuses ---

    async def prepare_status(
        self, packet: StatusPacket, recipient: str, *, priority: int | None = None
    ) -> OutboundReply:
        """The bytes of `packet` committed to a blob, and the message and delivery that will
        carry it to `recipient`'s route, not yet stored: a caller stores it in the same write
        job as what caused it (`store.insert_inbound_with_replies`, `store.accept_recall`).
        `priority` (0–4) defaults to that of the document it reports on, as stored here."""
        route = self._router.route_for(recipient)
        now = self.now()
        if priority is None:
            priority = await self._store.read(
                functools.partial(document_rank, document_id=packet.document_id)
            )
        ref = await self._in_pool(self._write_status, packet)
        about = packet.response_for
        msg = NewMessage(
            id=str(uuid.uuid4()),
            direction="out",
            kind="status",
            sender=packet.from_.organ_id,
            document_id=about.document_id,
            # A status has no business type; its code stands in that column.
            business_type=packet.status_code.value,
            blob=ref,
            arrived_at=now,
            recipients=(recipient,),
            priority=priority,
            promulgation_date=_date(about.promulgation_date),
            verdict_json=json.dumps(
                {"kind": "status", "status": packet.status_code.value}, sort_keys=True
            ),
        )
        return OutboundReply(msg, (NewDelivery(recipient, route.name),))

    async def submit_status(
        self, packet: StatusPacket, recipient: str, *, priority: int | None = None
    ) -> Submitted:
        """Queue `packet` to `recipient`'s route (see `prepare_status`)."""
        reply = await self.prepare_status(packet, recipient, priority=priority)
        submitted = await self._commit(reply.message, reply.deliveries, self.now(), actor="gateway")
        self.log.info(
            "status {code} {message_id} queued for {recipient}",
            code=packet.status_code.value,
            message_id=submitted.message_id,
            recipient=recipient,
        )
        return submitted

    def _write_status(self, packet: StatusPacket) -> BlobRef:
        return self._blobs.put(writer.write(packet))

    # --- both ---

    async def _commit(
        self,
        msg: NewMessage,
        deliveries: Sequence[NewDelivery],
        now: dt.datetime,
        actor: str,
        reference: str | None = None,
    ) -> Submitted:
        result = await self._store.write(
            functools.partial(
                insert_outbound_message_with_deliveries,
                msg=msg,
                deliveries=deliveries,
                receipt_json=None,
                now=now,
                actor=actor,
                client_reference=reference,
            )
        )
        return await self._submitted(result.message_id)

    async def _submitted(self, message_id: str) -> Submitted:
        def read(conn: Any) -> tuple[list[Any], Any]:
            return deliveries_for(conn, message_id), get_message(conn, message_id)

        rows, message = await self._store.read(read)
        stored = json.loads(message.verdict_json) if message is not None else {}
        return Submitted(
            message_id=message_id,
            deliveries=tuple(
                SubmittedDelivery(str(d.id), d.recipient, d.route, d.state) for d in rows
            ),
            findings=tuple(f["code"] for f in stored.get("findings", []) if "code" in f),
        )


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None
