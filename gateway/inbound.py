"""What this node receives (floor 5): one envelope or status packet from a peer node (or from
this node itself, for a hosted recipient) becomes a stored message and a receipt. Implements
`IInbound`.

The pipeline, in order: the size limit before parsing → `edxml.check.examine` in the thread pool
(tolerant reading, schema, rules, attachments, the envelope signature against the configured
trust, CRLs and the OCSP answers at hand; when the verdict names trusted certificates that an
OCSP responder could still vouch for, the responders are asked (bounded, cached) and the
document examined once more with their answers) → schema and rule errors → the signature policy
of the route serving the sender (required unless the route says `optional`; a weak algorithm
refused where the route says `reject`) → sender binding (a valid seal must name the `From`
OrganId) → every `To` hosted here → commit. The commit is one write job: the blob first (always
committed before the job), then the row with its inbox entries and receipt AND the automatic
status 01 per hosted recipient (its bytes also in a committed blob, its message and delivery rows
in the same transaction), so that a crash can never keep the envelope and lose its 01. A resent
envelope queues no second 01.

A refused envelope whose header could be read is not forgotten: it is stored in state `rejected`
with its verdict and its real business type (a refusal holds no idempotency key, so a corrected
resend is received), together with status 02 and the reason, and the typed `GatewayFault` is
raised to the peer.

A status packet is matched to the document it reports on: 01–06, 15 and 16 to an envelope this
node sent to the reporting agency (the document itself, not a later revoke of it); 13 to an
envelope the reporting agency sent here. It joins that message's status history.

Recall (R14): a revoke envelope (BussinessDocType 1, Bussiness/DocumentId = the target; the header
DocumentId when that is empty) or a status 13 from the target's sender is decided inside one write
job (`store.accept_recall`): if no hosted office system has acknowledged the target yet, the
target becomes `withdrawn` and 15 goes back from each hosted recipient; otherwise the recall goes
to the inboxes that hold the target (ReceiveDocuments shows it as kind `revoke`) and the office
system answers with AnswerRecall. A revoke gets no 01. A revoke naming nothing this sender sent
here is kept (received, in no inbox) and answered 16 with that reason; a 13 about such a
document is refused with `RuleViolation`, as any status about an unknown document.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

import attrs
from cryptography import x509
from zope.interface import implementer

from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from edxml import signature, trace
from edxml.check import Report, examine
from edxml.codes import BusinessDocType, ReceiverType, StatusCode
from edxml.errors import EdxmlError
from edxml.findings import Fault, Finding
from edxml.model import Envelope, Organization, ReplacementInfo, ResponseFor, StatusPacket
from gateway import directory, policy, statuses
from gateway.blobs import BlobRef, BlobStore
from gateway.calendar import Calendars, vietnam_time
from gateway.config import Config, RouteConfig, SignaturePolicy, TrustConfig, UnknownAgencies
from gateway.documents import Change, duplicate_numbers, insert_refusal, insert_with_changes
from gateway.interfaces import IInbound, Peer
from gateway.ocspclient import OcspClient
from gateway.outbound import Outbound, now_of, refusal_fault, too_large, verdict_json
from gateway.router import Router
from gateway.soap import FaultCode, GatewayFault, Receipt, format_time
from gateway.store import (
    InboxTimes,
    NewDelivery,
    NewMessage,
    NewStatus,
    OutboundReply,
    Store,
    accept_recall,
    append_audit,
    get_message,
    insert_inbound_status,
    insert_inbound_with_replies,
    received_from,
    sent_to,
)

__all__ = ["Inbound", "load_trust"]

T = TypeVar("T")


def load_trust(config: TrustConfig) -> signature.Trust:
    """The configured roots and intermediates, read once (blocking: call it at start)."""
    roots = b"".join(p.read_bytes() for p in TrustConfig.expand(config.roots))
    intermediates = b"".join(p.read_bytes() for p in TrustConfig.expand(config.intermediates))
    if not roots:
        return signature.Trust(roots=())
    return signature.Trust.from_pem(roots, intermediates)


def load_crls(config: TrustConfig) -> tuple[x509.CertificateRevocationList, ...]:
    """The configured CRLs (PEM or DER), read once at start; PDF signers are checked against
    them and nothing is fetched from the network."""
    out = []
    for path in TrustConfig.expand(config.crls):
        raw = path.read_bytes()
        pem = b"-----BEGIN X509 CRL-----" in raw
        out.append(x509.load_pem_x509_crl(raw) if pem else x509.load_der_x509_crl(raw))
    return tuple(out)


def _receipt_json(receipt: Receipt) -> str:
    return json.dumps(
        {
            "receipt_id": receipt.receipt_id,
            "message_id": receipt.message_id,
            "received_at": format_time(receipt.received_at),
        },
        sort_keys=True,
    )


def _receipt_from_json(text: str | None, message_id: str, *, duplicate: bool) -> Receipt:
    data = json.loads(text) if text else {}
    received = data.get("received_at")
    return Receipt(
        receipt_id=data.get("receipt_id", message_id),
        message_id=data.get("message_id", message_id),
        received_at=dt.datetime.fromisoformat(received) if received else dt.datetime.now(dt.UTC),
        duplicate=duplicate,
    )


_WITHDRAWN_UNSEEN: Final = (
    "Văn bản chưa được văn thư nhận; cổng đã thu hồi theo yêu cầu"
    " / Not yet picked up by the office system; withdrawn by the gateway as asked"
)


def _refused_again(
    conn: Any, sender: str, document_id: str, sha256: str, now: dt.datetime, peer: Peer
) -> str | None:
    """The earlier refusal of these exact bytes, audited as seen again; None if there is none."""
    row = conn.execute(
        "SELECT id FROM messages WHERE direction = 'in' AND kind = 'envelope'"
        " AND state = 'rejected' AND document_id = ? AND sender = ? AND blob_sha256 = ? LIMIT 1",
        (document_id, sender, sha256),
    ).fetchone()
    if row is None:
        return None
    append_audit(
        conn,
        at=now,
        actor=f"{peer.kind}:{peer.name}",
        action="refused-again",
        subject_type="message",
        subject_id=row[0],
        detail={"blob_sha256": sha256},
    )
    return str(row[0])


def _not_hosted(organ_id: str) -> GatewayFault:
    return GatewayFault(
        FaultCode.UNKNOWN_RECIPIENT,
        f"Recipient {organ_id} is not hosted on this node",
        f"Cơ quan nhận {organ_id} không được phục vụ tại nút này",
    )


def _signature_fault(
    code: FaultCode, en: str, vi: str, findings: Sequence[Finding]
) -> GatewayFault:
    return GatewayFault(code, en, vi, tuple(findings))


@implementer(IInbound)
class Inbound:
    log = Logger()

    def __init__(
        self,
        config: Config,
        store: Store,
        blobs: BlobStore,
        outbound: Outbound,
        router: Router,
        *,
        clock: IReactorTime,
        pool: ThreadPool,
        trust: signature.Trust | None = None,
        reactor: IReactorFromThreads | None = None,
        ocsp: OcspClient | None = None,
    ) -> None:
        """`trust` defaults to the configured trust files, read here (at start). `reactor` runs
        the pool's callbacks (default: `clock`, the reactor itself in the daemon). `ocsp` asks
        responders; without it revocation rests on the configured CRLs alone."""
        self._config = config
        self._store = store
        self._blobs = blobs
        self._outbound = outbound
        self._router = router
        self._clock = clock
        self._pool = pool
        self._reactor = reactor if reactor is not None else cast(IReactorFromThreads, clock)
        self._trust = trust if trust is not None else load_trust(config.trust)
        self._crls = load_crls(config.trust)
        self._ocsp = ocsp
        self._calendars = Calendars(config)

    def now(self) -> dt.datetime:
        return now_of(self._clock)

    async def _in_pool(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        result: T = await deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)
        return result

    def _sender_route(self, organ_id: str) -> RouteConfig | None:
        try:
            return self._router.route_for(organ_id)
        except GatewayFault:
            return None

    # --- the pipeline ---

    async def accept(
        self, package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Receipt:
        limits = self._config.limits
        if len(package) > limits.max_envelope_bytes:
            raise too_large(len(package), limits.max_envelope_bytes)
        now = self.now()
        try:
            report = await self._examine(package, now)
            if self._ocsp is not None and report.ocsp_queries:
                await self._ocsp.ask(report.ocsp_queries)
                report = await self._examine(package, now)
        except EdxmlError as exc:
            raise GatewayFault.from_edxml_error(exc) from None
        doc = report.document
        if doc is None:
            # Nothing readable: no sender to tell, no header to record.
            raise refusal_fault(report)
        if isinstance(doc, StatusPacket):
            return await self._accept_status(package, doc, report, peer, now, recipients)
        ruling = policy.rule(doc, self._config.policy, self._calendars.of(None), now)
        if ruling.secret is not None:
            # R1: nothing of it is kept but the fact of its refusal.
            secret = GatewayFault.from_findings([ruling.secret])
            await self._refuse_unkept(doc, peer, now, secret)
            raise secret
        addressed = self._addressed(doc, recipients, peer)
        fault = (
            self._judge(doc, report)
            or (addressed if isinstance(addressed, GatewayFault) else None)
            or await self._known_sender(doc, now)
        )
        if fault is not None:
            await self._refuse(package, doc, report, ruling, peer, now, fault)
            raise fault
        assert not isinstance(addressed, GatewayFault)
        return await self._commit(package, doc, report, ruling, peer, now, addressed)

    def _addressed(
        self, doc: Envelope, asked: Sequence[str] | None, peer: Peer
    ) -> tuple[NewDelivery, ...] | GatewayFault:
        """Who this node takes the envelope for: every hosted addressee gets it in the inbox
        (returned: nothing more to do), and on a relay the asked-for addressees hosted elsewhere
        are forwarded (returned: one delivery each). A refusal when it is for nobody here, for
        somebody it is not addressed to, when a route is missing, or when it went round in a
        loop (this node's OrganId already in its trace)."""
        to = list(dict.fromkeys(o.organ_id for o in doc.header.to))
        strangers = [o for o in asked or () if o not in to]
        if strangers:
            return GatewayFault(
                FaultCode.RULE_VIOLATION,
                f"{strangers[0]} is not an addressee of the envelope",
                f"{strangers[0]} không phải cơ quan nhận của gói tin",
            )
        wanted = list(asked) if asked else to
        hosted = [o for o in to if self._config.hosts(o)]
        node = self._config.node
        if not node.relay:
            if hosted:
                return ()
            return _not_hosted(wanted[0])
        if peer.kind != "local" and node.organ_id in {t.organ_id for t in doc.trace.traces}:
            return GatewayFault(
                FaultCode.RULE_VIOLATION,
                f"Routing loop: the envelope has already passed through {node.organ_id}",
                f"Vòng lặp chuyển tiếp: gói tin đã từng đi qua {node.organ_id}",
            )
        forwards: list[NewDelivery] = []
        unknown: list[GatewayFault] = []
        for organ_id in wanted:
            if self._config.hosts(organ_id):
                continue
            try:
                forwards.append(NewDelivery(organ_id, self._router.route_for(organ_id).name))
            except GatewayFault as refusal:
                unknown.append(refusal)
        # Asked for by name, every one must be served; otherwise those that can be are.
        if unknown and (asked or not (hosted or forwards)):
            return unknown[0]
        for missing in unknown:
            self.log.warn("relay cannot forward: {why}", why=missing.text_en)
        return tuple(forwards)

    def _inbox_times(self, organ_id: str, now: dt.datetime) -> InboxTimes:
        """R19: the legal receipt time under the recipient's own office hours, and the end of
        that working day, by which its office system should have picked the document up."""
        calendar = self._calendars.of(organ_id)
        legal = calendar.legal_receipt(now)
        return InboxTimes(organ_id, legal, calendar.end_of_working_day(legal))

    async def _known_sender(self, doc: Envelope, now: dt.datetime) -> GatewayFault | None:
        """R11: with a directory, the sender must be in it and valid today."""
        if self._config.policy.unknown_agencies is not UnknownAgencies.REFUSE:
            return None
        sender = doc.header.from_.organ_id
        total, known = await self._store.read(lambda c: directory.lookup(c, [sender]))
        if not total:
            return None
        return directory.refusal(sender, known.get(sender), vietnam_time(now).date(), role="sender")

    async def _examine(self, package: bytes, now: dt.datetime) -> Report:
        return await self._in_pool(
            examine,
            package,
            trust=self._trust,
            limits=self._config.limits.xml_limits(),
            now=now,
            strict_schema=False,
            crls=self._crls,
            ocsp=self._ocsp.known() if self._ocsp is not None else (),
        )

    def _judge(self, doc: Envelope, report: Report) -> GatewayFault | None:
        """The refusal of an envelope this node cannot accept, or None."""
        sig = report.signature
        sig_findings = set(sig.findings) if sig is not None else set()
        content_errors = [f for f in report.findings if f.is_error and f not in sig_findings]
        if content_errors:
            return GatewayFault.from_findings(content_errors)
        sender = doc.header.from_.organ_id
        route = self._sender_route(sender)
        fault = self._signature_policy(sender, route, report)
        if fault is not None:
            return fault
        return None

    def _signature_policy(
        self, sender: str, route: RouteConfig | None, report: Report
    ) -> GatewayFault | None:
        sig = report.signature
        if sig is None:  # examine always sets it for a document it read
            return None
        policy = route.require_envelope_signature if route else SignaturePolicy.REQUIRED
        weak = route.weak_algorithms if route else self._config.trust.weak_algorithms
        state = sig.state
        if state is signature.SignatureState.ABSENT:
            if policy is SignaturePolicy.OPTIONAL:
                return None
            return _signature_fault(
                FaultCode.SIGNATURE_INVALID,
                f"The envelope is not signed; envelopes from {sender} must be",
                f"Gói tin không có chữ ký số; gói tin từ {sender} bắt buộc phải ký",
                sig.findings,
            )
        if state is not signature.SignatureState.VALID:
            if any(f.fault is Fault.UNTRUSTED_SIGNER for f in sig.errors):
                return GatewayFault(
                    FaultCode.UNTRUSTED_SIGNER, sig.reason, None, tuple(sig.findings)
                )
            found = GatewayFault.from_findings(sig.findings)
            if found.code is not FaultCode.RULE_VIOLATION:
                return found
            # Unverifiable (no readable certificate, no XMLDSig): as good as no valid seal.
            return GatewayFault(FaultCode.SIGNATURE_INVALID, sig.reason, None, tuple(sig.findings))
        if sig.weak and weak is signature.WeakPolicy.REJECT:
            return _signature_fault(
                FaultCode.SIGNATURE_INVALID,
                "The signature uses a weak algorithm this route refuses",
                "Chữ ký số dùng thuật toán yếu mà tuyến này không chấp nhận",
                sig.findings,
            )
        signer = sig.signer.organ_id if sig.signer is not None else None
        if signer != sender:
            return GatewayFault(
                FaultCode.SENDER_MISMATCH,
                f"The envelope is from {sender} but sealed by {signer or 'an unnamed signer'}",
                f"Gói tin gửi từ {sender} nhưng được ký bởi {signer or 'một chủ thể không rõ'}",
            )
        return None

    async def _keep(self, package: bytes) -> BlobRef:
        return await self._in_pool(self._blobs.put, package)

    async def _onward(self, package: bytes, message_id: str) -> BlobRef:
        """The bytes a relay forwards: the envelope as received, our TraceHeader appended."""
        organ_id = self._config.node.organ_id
        assert organ_id is not None  # configuration demands it of a relay
        try:
            onward = await self._in_pool(
                trace.append_hop,
                package,
                organ_id,
                self.now(),
                limits=self._config.limits.xml_limits(),
                gated=True,  # examined a moment ago: refused already if it were hostile
            )
        except trace.TraceNotWritable as exc:
            # Forwarded as received: the route misses one hop, the content loses nothing.
            self.log.warn(
                "envelope {message_id} forwarded without our hop: {why}",
                message_id=message_id,
                why=exc.message_en,
            )
            onward = package
        return await self._keep(onward)

    def _message(
        self,
        doc: Envelope,
        report: Report,
        ref: BlobRef,
        now: dt.datetime,
        *,
        message_id: str,
        business_type: str,
        ruling: policy.Ruling,
        extra: Sequence[Finding] = (),
    ) -> NewMessage:
        h = doc.header
        day = h.promulgation_info.promulgation_date
        recipients = tuple(dict.fromkeys(o.organ_id for o in h.to))
        legality = report.legality
        return NewMessage(
            id=message_id,
            direction="in",
            kind="envelope",
            sender=h.from_.organ_id,
            document_id=h.document_id,
            business_type=business_type,
            blob=ref,
            arrived_at=now,
            recipients=recipients,
            priority=int(h.other_info.priority),
            code_number=h.code.code_number or None,
            code_notation=h.code.code_notation or None,
            promulgation_date=day.isoformat() if day else None,
            subject=h.subject or None,
            verdict_json=verdict_json(report, extra=(*ruling.findings, *extra)),
            legal_validity=legality.value if legality is not None else None,
            paper_required=bool(ruling.paper),
            late_issue=ruling.late is not None,
            due_date=h.due_date.isoformat() if h.due_date else None,
            links=policy.links(doc),
            legal_received=tuple(
                self._inbox_times(o, now) for o in recipients if self._config.hosts(o)
            ),
        )

    async def _commit(
        self,
        package: bytes,
        doc: Envelope,
        report: Report,
        ruling: policy.Ruling,
        peer: Peer,
        now: dt.datetime,
        forwards: tuple[NewDelivery, ...] = (),
    ) -> Receipt:
        ref = await self._keep(package)
        message_id = str(uuid.uuid4())
        receipt = Receipt(str(uuid.uuid4()), message_id, now)
        msg = self._message(
            doc,
            report,
            ref,
            now,
            message_id=message_id,
            business_type=str(int(doc.business_type)),
            ruling=ruling,
            extra=await self._store.read(lambda c: duplicate_numbers(c, doc, direction="in")),
        )
        if forwards:
            msg = attrs.evolve(
                msg, forward_blob=await self._onward(package, msg.id), forwards=forwards
            )
        actor = f"{peer.kind}:{peer.name}"
        hosted = [o for o in msg.recipients if self._config.hosts(o)]
        # A relay that hosts none of the addressees only passes a recall on.
        if doc.business_type is BusinessDocType.REVOKE and hosted:
            return await self._recall_envelope(doc, msg, receipt, actor, now)
        about = statuses.response_for(doc)
        replies = await self._prepare(
            [statuses.arrived(about, statuses.reporter(self._config, o), at=now) for o in hosted],
            msg.sender,
            msg.priority,
        )
        result = await self._store.write(
            functools.partial(
                insert_with_changes,
                msg=msg,
                replies=replies,
                changes=self._changes(doc, hosted),
                receipt_json=_receipt_json(receipt),
                now=now,
                actor=actor,
                inbox_for=hosted,
            )
        )
        if result.duplicate:
            self.log.info(
                "resent envelope answered with the receipt of {message_id}",
                message_id=result.message_id,
                peer=peer.name,
            )
            return _receipt_from_json(result.receipt_json, result.message_id, duplicate=True)
        self.log.info(
            "envelope {message_id} received from {sender} via {peer}",
            message_id=message_id,
            sender=msg.sender,
            peer=peer.name,
            statuses=len(replies),
            forwarded_to=[d.recipient for d in msg.forwards],
        )
        return receipt

    def _changes(self, doc: Envelope, hosted: Sequence[str]) -> list[Change]:
        """R14: what an update or a replacement does to earlier documents, per hosted agency."""
        business = doc.trace.business
        target = business.document_id
        if doc.business_type is BusinessDocType.UPDATE and target:
            changes = [Change(target, o, "updated") for o in hosted]
            info = business.document_info
            if info is not None:
                changes += [
                    Change(target, r.organ_id, "removed")
                    for r in info.receivers
                    if r.receiver_type is ReceiverType.REMOVED and self._config.hosts(r.organ_id)
                ]
            return changes
        if doc.business_type is BusinessDocType.REPLACE:
            replaced = business.replacements or ((ReplacementInfo(target, ()),) if target else ())
            return [
                Change(r.document_id, o, "superseded")
                for r in replaced
                if r.document_id
                for o in (r.organ_ids or hosted)
                if self._config.hosts(o)
            ]
        return []

    async def _refuse_unkept(
        self, doc: Envelope, peer: Peer, now: dt.datetime, fault: GatewayFault
    ) -> None:
        """R1: record only that the document was refused, with its 02s; never raises."""
        h = doc.header
        try:
            replies = await self._rejections(doc, fault, now)
            await self._store.write(
                functools.partial(
                    insert_refusal,
                    at=now,
                    direction="in",
                    sender=h.from_.organ_id,
                    document_id=h.document_id,
                    code=fault.code.value,
                    reason_en=fault.text_en,
                    reason_vi=fault.text_vi or "",
                    actor=f"{peer.kind}:{peer.name}",
                    replies=replies,
                )
            )
        except Exception:
            self.log.failure("could not record a refused secret document", peer=peer.name)
            return
        self.log.warn(
            "document {document_id} from {sender} refused unkept: {code}",
            document_id=h.document_id,
            sender=h.from_.organ_id,
            code=fault.code.value,
            peer=peer.name,
        )

    async def _refuse(
        self,
        package: bytes,
        doc: Envelope,
        report: Report,
        ruling: policy.Ruling,
        peer: Peer,
        now: dt.datetime,
        fault: GatewayFault,
    ) -> None:
        """Record the refusal together with its 02s; never raises (the caller raises `fault`).

        The very same bytes refused before (an axis listing them again after a crash, a peer's
        operator requeueing them) are refused again without a second row or a second 02."""
        try:
            ref = await self._keep(package)
            sender, document_id = doc.header.from_.organ_id, doc.header.document_id
            again = await self._store.write(
                lambda c: _refused_again(c, sender, document_id, ref.sha256, now, peer)
            )
            if again is not None:
                self.log.info(
                    "envelope refused again, as {message_id}: {code}",
                    message_id=again,
                    code=fault.code.value,
                    peer=peer.name,
                )
                return
            message_id = str(uuid.uuid4())
            # Stored with its real business type: a `rejected` row holds no idempotency key
            # (migration v3), so the sender's corrected resend is received, not a duplicate.
            msg = self._message(
                doc,
                report,
                ref,
                now,
                message_id=message_id,
                business_type=str(int(doc.business_type)),
                ruling=ruling,
            )
            replies = await self._rejections(doc, fault, now)
            await self._store.write(
                functools.partial(
                    insert_inbound_with_replies,
                    msg=msg,
                    replies=replies,
                    receipt_json=None,
                    now=now,
                    actor=f"{peer.kind}:{peer.name}",
                    state="rejected",
                )
            )
        except Exception:
            self.log.failure("could not record a refused envelope", peer=peer.name)
            return
        self.log.info(
            "envelope {message_id} from {sender} refused: {code}",
            message_id=message_id,
            sender=msg.sender,
            code=fault.code.value,
            peer=peer.name,
        )

    async def _rejections(
        self, doc: Envelope, fault: GatewayFault, now: dt.datetime
    ) -> list[OutboundReply]:
        """The 02s that tell the sender why `doc` was refused, one per hosted recipient."""
        h = doc.header
        reason = statuses.summarise_findings(
            fault.findings, fallback_en=fault.text_en, fallback_vi=fault.text_vi
        )
        about = statuses.response_for(doc)
        recipients = list(dict.fromkeys(o.organ_id for o in h.to))
        return await self._prepare(
            [
                statuses.rejected(about, by, at=now, reason=reason)
                for by in self._reporters(recipients)
            ],
            h.from_.organ_id,
            int(h.other_info.priority),
        )

    def _reporters(self, recipients: Sequence[str]) -> list[Organization]:
        """Who says 02: each hosted recipient, or the node itself when none is hosted here."""
        found = [statuses.reporter(self._config, o) for o in recipients if self._config.hosts(o)]
        if not found and self._config.node.organ_id:
            found = [
                Organization(organ_id=self._config.node.organ_id, organ_name=self._config.node.name)
            ]
        return found

    async def _prepare(
        self, packets: Sequence[StatusPacket], recipient: str, priority: int
    ) -> list[OutboundReply]:
        """The automatic statuses, their bytes committed, ready to be stored with the message
        that causes them. A sender no route serves cannot be answered: the message is still
        taken (its receipt is the answer the peer gets) and an administrator hears of it."""
        replies = []
        for packet in packets:
            try:
                replies.append(
                    await self._outbound.prepare_status(packet, recipient, priority=priority)
                )
            except GatewayFault as fault:
                self.log.warn(
                    "cannot answer {code} to {recipient}: {fault}",
                    code=packet.status_code.value,
                    recipient=recipient,
                    fault=fault.code.value,
                )
        return replies

    # --- recall (R14) ---

    def _hosted_holders(self, target: Any) -> list[str]:
        return [o for o in target.recipients if self._config.hosts(o)]

    async def _recall_envelope(
        self, doc: Envelope, msg: NewMessage, receipt: Receipt, actor: str, now: dt.datetime
    ) -> Receipt:
        """A revoke (BussinessDocType 1) of an envelope the same sender sent here. No 01 goes
        back for it: the answer to a recall is 15 or 16."""
        target_document = doc.trace.business.document_id or doc.header.document_id
        about = attrs.evolve(statuses.response_for(doc), document_id=target_document)
        target_id = await self._store.read(
            functools.partial(received_from, document_id=target_document, organ_id=msg.sender)
        )
        if target_id is None:
            return await self._recall_unknown(msg, about, receipt, actor, now)
        return await self._recall(msg, about, target_id, receipt, actor, now, status=None)

    async def _recall(
        self,
        msg: NewMessage,
        about: ResponseFor,
        target_id: str,
        receipt: Receipt,
        actor: str,
        now: dt.datetime,
        *,
        status: NewStatus | None,
    ) -> Receipt:
        target = await self._store.read(functools.partial(get_message, message_id=target_id))
        assert target is not None  # messages are never deleted
        agreed = await self._prepare(
            [
                statuses.recall_answer(
                    about,
                    statuses.reporter(self._config, organ),
                    agreed=True,
                    at=now,
                    description=_WITHDRAWN_UNSEEN,
                )
                for organ in self._hosted_holders(target)
            ],
            msg.sender,
            target.priority,
        )
        outcome = await self._store.write(
            functools.partial(
                accept_recall,
                msg=msg,
                target_id=target_id,
                agreed=agreed,
                receipt_json=_receipt_json(receipt),
                now=now,
                actor=actor,
                status=status,
            )
        )
        result = outcome.result
        if result.duplicate:
            return _receipt_from_json(result.receipt_json, result.message_id, duplicate=True)
        self.log.info(
            "recall {message_id} of {target}: {outcome}",
            message_id=msg.id,
            target=target_id,
            outcome="withdrawn, 15 queued" if outcome.withdrawn else "handed to office systems",
            holders=list(outcome.handed_over),
        )
        return receipt

    async def _recall_unknown(
        self,
        msg: NewMessage,
        about: ResponseFor,
        receipt: Receipt,
        actor: str,
        now: dt.datetime,
    ) -> Receipt:
        """A revoke of nothing we hold from that sender: kept (received, in no inbox) and
        answered 16 with the reason, so the sender's office system is not left waiting."""
        reason = (
            f"Không có văn bản {about.document_id} của {msg.sender} tại cổng nhận"
            f" / No document {about.document_id} from {msg.sender} was received here"
        )
        refused = await self._prepare(
            [
                statuses.recall_answer(about, by, agreed=False, at=now, description=reason)
                for by in self._reporters(msg.recipients)
            ],
            msg.sender,
            msg.priority,
        )
        result = await self._store.write(
            functools.partial(
                insert_inbound_with_replies,
                msg=msg,
                replies=refused,
                receipt_json=_receipt_json(receipt),
                now=now,
                actor=actor,
                inbox_for=(),
            )
        )
        if result.duplicate:
            return _receipt_from_json(result.receipt_json, result.message_id, duplicate=True)
        self.log.info(
            "recall {message_id} names no document received here: 16 queued",
            message_id=msg.id,
            document_id=about.document_id,
        )
        return receipt

    # --- status packets ---

    async def _status_message(
        self,
        package: bytes,
        doc: StatusPacket,
        report: Report,
        now: dt.datetime,
        *,
        priority: int = 0,
        forwards: tuple[NewDelivery, ...] = (),
    ) -> tuple[NewMessage, Receipt]:
        """A received status packet as a message to store (its bytes committed) and its receipt."""
        ref = await self._keep(package)
        message_id = str(uuid.uuid4())
        msg = NewMessage(
            id=message_id,
            direction="in",
            kind="status",
            sender=doc.from_.organ_id,
            document_id=doc.response_for.document_id,
            business_type=doc.status_code.value,
            blob=ref,
            arrived_at=now,
            verdict_json=verdict_json(report),
            priority=priority,
            forwards=forwards,
        )
        return msg, Receipt(str(uuid.uuid4()), message_id, now)

    async def _relay_status(
        self,
        package: bytes,
        doc: StatusPacket,
        report: Report,
        peer: Peer,
        now: dt.datetime,
        targets: Sequence[str],
    ) -> Receipt:
        """A status for an agency hosted elsewhere, on a relay: kept as received (a status packet
        has no trace list to append to) and forwarded, one delivery per target."""
        forwards = []
        for organ_id in dict.fromkeys(targets):
            forwards.append(NewDelivery(organ_id, self._router.route_for(organ_id).name))
        # A status goes on as urgently as the document it is about, when it passed here too.
        about = doc.response_for

        def priority_of(conn: Any) -> int:
            found = received_from(conn, about.document_id, about.organ_id)
            relayed = get_message(conn, found) if found is not None else None
            return relayed.priority if relayed is not None else 0

        priority = await self._store.read(priority_of)
        msg, receipt = await self._status_message(
            package, doc, report, now, priority=priority, forwards=tuple(forwards)
        )
        result = await self._store.write(
            functools.partial(
                insert_inbound_status,
                msg=msg,
                status=None,
                receipt_json=_receipt_json(receipt),
                now=now,
                actor=f"{peer.kind}:{peer.name}",
            )
        )
        if result.duplicate:
            return _receipt_from_json(result.receipt_json, result.message_id, duplicate=True)
        self.log.info(
            "status {code} from {reporter} relayed to {targets}",
            code=doc.status_code.value,
            reporter=msg.sender,
            targets=[d.recipient for d in forwards],
            peer=peer.name,
        )
        return receipt

    async def _accept_status(
        self,
        package: bytes,
        doc: StatusPacket,
        report: Report,
        peer: Peer,
        now: dt.datetime,
        asked: Sequence[str] | None = None,
    ) -> Receipt:
        sig = report.signature
        sig_findings = set(sig.findings) if sig is not None else set()
        errors = [f for f in report.findings if f.is_error and f not in sig_findings]
        if errors:
            raise GatewayFault.from_findings(errors)
        reporter = doc.from_.organ_id
        document_id = doc.response_for.document_id
        recall = doc.status_code is StatusCode.RECALL_REQUESTED
        # A status goes to the document's sender (ResponseFor), a recall (13) the other way,
        # to whom only the hand-over names.
        targets = list(asked or ()) or ([] if recall else [doc.response_for.organ_id])
        if self._config.node.relay and targets and not any(self._config.hosts(t) for t in targets):
            return await self._relay_status(package, doc, report, peer, now, targets)
        if recall:
            finder = functools.partial(received_from, document_id=document_id, organ_id=reporter)
        else:
            finder = functools.partial(sent_to, document_id=document_id, organ_id=reporter)
        target = await self._store.read(finder)
        if target is None:
            raise GatewayFault(
                FaultCode.RULE_VIOLATION,
                f"No document {document_id} exchanged with {reporter} is known here",
                f"Không có văn bản {document_id} trao đổi với {reporter} tại cổng này",
            )
        msg, receipt = await self._status_message(package, doc, report, now)
        ref = msg.blob
        status = NewStatus(
            message_id=target,
            organ_id=reporter,
            code=doc.status_code.value,
            reported_at=doc.timestamp or now,
            description=doc.description,
            staff_json=statuses.staff_json(doc.staff_info),
            blob=ref,
        )
        actor = f"{peer.kind}:{peer.name}"
        if recall:
            return await self._recall(
                msg, doc.response_for, target, receipt, actor, now, status=status
            )
        result = await self._store.write(
            functools.partial(
                insert_inbound_status,
                msg=msg,
                status=status,
                receipt_json=_receipt_json(receipt),
                now=now,
                actor=actor,
            )
        )
        if result.duplicate:
            return _receipt_from_json(result.receipt_json, result.message_id, duplicate=True)
        self.log.info(
            "status {code} from {reporter} recorded on {target}",
            code=doc.status_code.value,
            reporter=reporter,
            target=target,
            peer=peer.name,
        )
        return receipt
