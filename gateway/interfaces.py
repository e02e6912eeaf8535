"""The pluggable boundaries of the node, and the values that cross them (floor 3).

Inbound (a received package becomes a stored message and a receipt), outbound (a document or a
status from this node becomes signed, stored deliveries), and transports (one stored delivery
goes to one peer). The faces, the dispatcher and the local transport meet only here, so each side
is tested alone and composed by `service`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Sequence

import attrs
from zope.interface import Interface

from edxml.model import StatusPacket
from gateway.config import OfficeConfig
from gateway.soap import Receipt


@attrs.frozen
class Peer:
    """Who handed us a package: a node over mutual TLS, this node itself, or an office system."""

    kind: str  # "node" | "axis" (pulled from a route's axis) | "local" | "office"
    name: str  # route name, office name, or "local"
    fingerprint: str | None = None  # SHA-256 of the TLS client certificate, if any


@attrs.frozen
class Submitted:
    """What SendDocument / RecallDocument / UpdateStatus answer: the stored message and its
    one delivery per recipient."""

    message_id: str
    deliveries: tuple[SubmittedDelivery, ...]
    # Codes of what the verdict found and the sender should know (PaperCopyRequired, LateIssue,
    # DuplicateNumber, format warnings…), in the stored order.
    findings: tuple[str, ...] = ()


@attrs.frozen
class SubmittedDelivery:
    delivery_id: str
    recipient: str  # OrganId
    route: str  # route name; "local" for a hosted agency
    state: str


@attrs.frozen
class OutboundPackage:
    """One claimed delivery, as the dispatcher hands it to a transport."""

    delivery_id: str
    message_id: str
    recipient: str
    route: str
    kind: str  # "envelope" | "status"
    blob_sha256: str
    priority_rank: int
    attempt: int
    sender: str = ""  # the OrganId the package is from (an axis may want it named)


@attrs.frozen
class TransportReceipt:
    """The peer's acknowledgement: only after it is a delivery `sent` (R18)."""

    receipt_id: str
    received_at: dt.datetime
    duplicate: bool = False


class TransientFailure(Exception):
    """Worth retrying later: connection refused, timeout, 5xx, the peer's `Unavailable`."""


class PermanentFailure(Exception):
    """Retrying cannot help: the peer refused the package (validation, unknown recipient …)."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.code = code


class IInbound(Interface):
    def accept(
        package: bytes, peer: Peer, recipients: Sequence[str] | None = None
    ) -> Awaitable[Receipt]:
        """Judge, store durably and acknowledge one envelope or status packet.

        `recipients` are the OrganIds the peer hands it over for (the exchange face's Recipient
        elements, an axis item's `to`); None: every addressee. Hosted ones get it in their
        inboxes; on a relay, the others are forwarded.

        Raises gateway.soap.GatewayFault for a refusal (after recording it and queueing status
        02 to the sender when the sender is known). A resent envelope returns the first receipt
        with `duplicate=True` and is never delivered twice. The receipt exists only after COMMIT.
        """


class IOutbound(Interface):
    def submit_envelope(
        package: bytes, office: OfficeConfig, reference: str | None = None
    ) -> Awaitable[Submitted]:
        """An office system's SendDocument: judge, refuse `Forbidden` unless `office` may act for
        the From OrganId, sign with the hosted agency's key, store one delivery per To.
        `reference` (ClientReference) goes into the audit trail."""

    def submit_status(packet: StatusPacket, recipient: str) -> Awaitable[Submitted]:
        """Queue a status packet (01/02 automatic, 03–06/02 from the office, 13/15/16) to the
        node of `recipient` (the OrganId that sent the document)."""


class ITransport(Interface):
    def deliver(package: OutboundPackage, payload: bytes) -> Awaitable[TransportReceipt]:
        """Hand one stored package to its peer. Raises TransientFailure or PermanentFailure."""
