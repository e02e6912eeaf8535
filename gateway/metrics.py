"""`/metrics` beside the office face (floor 6): Prometheus text for the monitoring agency IT runs.

Served only when [metrics] names a token, and only to a caller presenting it as a Bearer token
(every caller is authenticated; the numbers say who an agency corresponds with). What it shows:

* gateway_deliveries{state,route}: outbound deliveries by state (queued, sending, retry_wait,
  sent, failed, cancelled);
* gateway_delivery_oldest_seconds{route}: the age of the oldest delivery still waiting;
* gateway_inbox_pending{organ_id} and gateway_inbox_oldest_seconds{organ_id}: documents the
  office systems have not picked up;
* gateway_messages{direction,kind,state}: everything stored;
* gateway_refusals_unkept{direction}: refusals stored without the document (R1);
* gateway_certificate_expiry_seconds{role,of,subject}: seconds until each configured or trusted
  certificate expires (negative once expired), as `gateway certs check` reads them at start;
* gateway_axis_clock_offset_seconds{route} (R20) and gateway_axis_items_unsettled{route}.
* gateway_ocsp_answers_cached and gateway_up.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from gateway.config import Secret
from gateway.store import Store

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


@attrs.frozen
class CertExpiry:
    role: str
    of: str | None
    subject: str
    not_after: dt.datetime


def _label(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, object], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}"


def _parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def render(
    conn: sqlite3.Connection,
    now: dt.datetime,
    certificates: Iterable[CertExpiry] = (),
    extra: Sequence[tuple[str, dict[str, object], float]] = (),
) -> str:
    """The exposition text (a store read, then the certificates the caller holds)."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    family("gateway_up", "gauge", "1 while the node answers.")
    out.append(_line("gateway_up", {}, 1))
    family("gateway_deliveries", "gauge", "Outbound deliveries by state and route.")
    for state, route, count in conn.execute(
        "SELECT state, route, count(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        out.append(_line("gateway_deliveries", {"state": state, "route": route}, count))
    family("gateway_delivery_oldest_seconds", "gauge", "Age of the oldest waiting delivery.")
    for route, oldest in conn.execute(
        "SELECT d.route, min(m.created_at) FROM deliveries d JOIN messages m"
        " ON m.id = d.message_id WHERE d.state IN ('queued', 'sending', 'retry_wait')"
        " GROUP BY 1 ORDER BY 1"
    ):
        age = (now - _parse(oldest)).total_seconds()
        out.append(_line("gateway_delivery_oldest_seconds", {"route": route}, max(age, 0.0)))
    family("gateway_inbox_pending", "gauge", "Documents not yet picked up, per agency.")
    family("gateway_inbox_oldest_seconds", "gauge", "Age of the oldest document not picked up.")
    for organ, count, oldest in conn.execute(
        "SELECT i.organ_id, count(*), min(m.arrived_at) FROM inbox i JOIN messages m"
        " ON m.id = i.message_id WHERE i.acked_at IS NULL AND m.state = 'received'"
        " GROUP BY 1 ORDER BY 1"
    ):
        out.append(_line("gateway_inbox_pending", {"organ_id": organ}, count))
        age = (now - _parse(oldest)).total_seconds()
        out.append(_line("gateway_inbox_oldest_seconds", {"organ_id": organ}, max(age, 0.0)))
    family("gateway_messages", "gauge", "Stored messages by direction, kind and state.")
    for direction, kind, state, count in conn.execute(
        "SELECT direction, kind, state, count(*) FROM messages GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ):
        labels = {"direction": direction, "kind": kind, "state": state}
        out.append(_line("gateway_messages", labels, count))
    family("gateway_refusals_unkept", "gauge", "Documents refused and not kept (R1).")
    for direction, count in conn.execute(
        "SELECT direction, count(*) FROM refusals GROUP BY 1 ORDER BY 1"
    ):
        out.append(_line("gateway_refusals_unkept", {"direction": direction}, count))
    family(
        "gateway_certificate_expiry_seconds",
        "gauge",
        "Seconds until a configured or trusted certificate expires (negative: expired).",
    )
    for cert in certificates:
        labels = {"role": cert.role, "of": cert.of or "", "subject": cert.subject}
        left = (cert.not_after - now).total_seconds()
        out.append(_line("gateway_certificate_expiry_seconds", labels, left))
    family(
        "gateway_axis_clock_offset_seconds",
        "gauge",
        "How far an axis' clock is ahead of ours (R20), from its answers' Date headers.",
    )
    for route, offset, _, _ in conn.execute(
        "SELECT route, offset_seconds, round_trip_seconds, measured_at FROM axis_clock"
        " ORDER BY route"
    ):
        out.append(_line("gateway_axis_clock_offset_seconds", {"route": route}, offset))
    family(
        "gateway_axis_items_unsettled",
        "gauge",
        "Items an axis lists for us that are not stored here yet (not downloadable, or failing).",
    )
    for route, count in conn.execute(
        "SELECT route, count(*) FROM axis_items WHERE outcome IS NULL GROUP BY 1 ORDER BY 1"
    ):
        out.append(_line("gateway_axis_items_unsettled", {"route": route}, count))
    for name, labels, value in extra:
        out.append(_line(name, labels, value))
    return "\n".join(out) + "\n"


class MetricsResource(Resource):
    isLeaf = True
    log = Logger()

    def __init__(
        self,
        store: Store,
        token: Secret,
        *,
        clock: IReactorTime,
        certificates: Sequence[CertExpiry] = (),
        extra: Callable[[], Sequence[tuple[str, dict[str, object], float]]] = lambda: (),
    ) -> None:
        super().__init__()
        self._store = store
        self._token = token
        self._clock = clock
        self._certificates = tuple(certificates)
        self._extra = extra

    def render_GET(self, request: Request) -> Any:
        header = request.getHeader(b"authorization") or b""
        scheme, _, presented = header.partition(b" ")
        given = presented.strip().decode("utf-8", "replace")
        if scheme.lower() != b"bearer" or not self._token.matches(given):
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Bearer realm="metrics"')
            return b"unauthorized\n"
        now = dt.datetime.fromtimestamp(self._clock.seconds(), dt.UTC)
        certificates, extra = self._certificates, self._extra()

        def job(conn: sqlite3.Connection) -> str:
            return render(conn, now, certificates, extra)

        def done(text: str) -> None:
            request.setHeader(b"content-type", CONTENT_TYPE)
            request.write(text.encode())
            request.finish()

        def failed(failure: Any) -> None:
            self.log.failure("metrics could not be read", failure)
            request.setResponseCode(503)
            request.finish()

        Deferred.fromCoroutine(self._store.read(job)).addCallbacks(done, failed)
        return NOT_DONE_YET


class WithMetrics(Resource):
    """The office face at every path of its site, except /metrics."""

    def __init__(self, face: Resource, metrics: Resource) -> None:
        super().__init__()
        self._face = face
        self._metrics = metrics

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        if path == b"metrics" and not request.postpath:
            return self._metrics
        # Not ours: hand the whole path back to the office face, a leaf at any path.
        if request.postpath is not None and request.prepath:
            request.postpath.insert(0, path)
            request.prepath.pop()
        return self._face

    def render(self, request: Request) -> Any:
        return self._face.render(request)
