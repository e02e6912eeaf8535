"""Telling an office system that something waits for it (`[office:<name>] push_url`).

A push is a wake-up, never the document: the office system still takes what waits with
`ReceiveDocuments` / `ReceiveStatuses` and acknowledges it, so a push lost, refused or late loses
nothing and delivers nothing twice. Every `EVERY` seconds the node counts, per hosted agency of the
credential, the documents in its inbox not yet acknowledged and the statuses not yet picked up;
when something is there that was not at the last accepted push (a new document or status), or
the last accepted push is `REMIND` seconds old and it is still waiting, it POSTs one JSON object:

    {"event": "pending", "office": "dev", "at": "2026-12-04T09:30:00.123+07:00",
     "id": "<uuid>", "documents": {"000.00.01.H23": 2}, "statuses": {"000.00.00.H23": 1},
     "urgent_documents": 1}

signed with the credential's own token, which never travels: header
`X-Gateway-Signature: sha256=<hex HMAC-SHA256 of the exact body>`. A 2xx answer is accepted; any
other answer or a network failure is retried on the next round after a growing pause (`EVERY`
doubled, at most `REMIND`), logged, never raised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import sqlite3
import uuid
from io import BytesIO
from typing import Any, Final

import attrs

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.client import FileBodyProducer
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent

from gateway.config import VIETNAM, OfficeConfig
from gateway.httpcall import drain, network_reason, one_shot_agent
from gateway.store import Store

__all__ = ["EVERY", "REMIND", "OfficePusher", "pending_counts", "signature"]

EVERY: Final = 5.0  # seconds between counts
REMIND: Final = 300.0  # seconds after which what still waits is pushed again
TIMEOUT: Final = 10.0
SIGNATURE_HEADER: Final = "X-Gateway-Signature"


@attrs.frozen
class Pending:
    """What waits for one credential's agencies, and the newest of it (to tell new from old)."""

    documents: dict[str, int]
    statuses: dict[str, int]
    urgent_documents: int
    newest: tuple[int, int]  # the highest message rowid and status id waiting

    @property
    def empty(self) -> bool:
        return not self.documents and not self.statuses


def pending_counts(conn: sqlite3.Connection, organ_ids: tuple[str, ...]) -> Pending:
    marks = ", ".join("?" for _ in organ_ids)
    documents: dict[str, int] = {}
    urgent, newest_inbox = 0, 0
    for organ, count, hot, newest in conn.execute(
        "SELECT i.organ_id, count(*), sum(m.priority > 0), max(m.rowid) FROM inbox i"
        " JOIN messages m ON m.id = i.message_id WHERE i.acked_at IS NULL"
        f" AND m.state = 'received' AND i.organ_id IN ({marks}) GROUP BY i.organ_id",
        organ_ids,
    ):
        documents[organ] = count
        urgent += hot or 0
        newest_inbox = max(newest_inbox, newest)
    statuses: dict[str, int] = {}
    newest_status = 0
    for organ, count, newest in conn.execute(
        "SELECT sender, count(*), max(status_id) FROM statuses_waiting"
        f" WHERE sender IN ({marks}) GROUP BY sender",
        organ_ids,
    ):
        statuses[organ] = count
        newest_status = max(newest_status, newest)
    return Pending(documents, statuses, urgent, (newest_inbox, newest_status))


def signature(token: str, body: bytes) -> str:
    """The header value an office system recomputes with its token to trust a push."""
    return "sha256=" + hmac.new(token.encode("utf-8"), body, hashlib.sha256).hexdigest()


class OfficePusher:
    """The pushes of one office credential (reactor thread; one round at a time)."""

    log = Logger()

    def __init__(
        self,
        office: OfficeConfig,
        store: Store,
        *,
        clock: Any,
        agent: IAgent | None = None,
    ) -> None:
        if office.push_url is None or office.token is None:
            raise ValueError("a push needs a push_url and the credential's token")
        self._office = office
        self._url = office.push_url
        self._store = store
        self._clock = clock
        self._agent = agent or one_shot_agent(clock, TIMEOUT)
        # The highest message rowid and status id an accepted push covered: anything above is
        # news. Compared part by part, each only grows (what is acknowledged does not lower it).
        self._seen = (0, 0)
        self._pushed_at = 0.0
        self._failures = 0
        self._not_before = 0.0

    async def push_once(self) -> bool | None:
        """One round: True pushed and accepted, False pushed and not accepted, None nothing to
        push (nothing waits, nothing new, or waiting out a pause after a failure)."""
        now = self._clock.seconds()
        if now < self._not_before:
            return None
        organs = self._office.organ_ids
        pending: Pending = await self._store.read(lambda c: pending_counts(c, organs))
        if pending.empty:
            return None
        news = pending.newest[0] > self._seen[0] or pending.newest[1] > self._seen[1]
        if not news and now - self._pushed_at < REMIND:
            return None
        accepted = await self._post(pending)
        if accepted:
            (documents, statuses), (seen_documents, seen_statuses) = pending.newest, self._seen
            self._seen = (max(documents, seen_documents), max(statuses, seen_statuses))
            self._pushed_at, self._failures = now, 0
        else:
            self._failures += 1
            pause = min(REMIND, EVERY * 2 ** min(self._failures, 16))
            self._not_before = now + pause
        return accepted

    def body(self, pending: Pending) -> bytes:
        at = dt.datetime.fromtimestamp(self._clock.seconds(), VIETNAM)
        return json.dumps(
            {
                "event": "pending",
                "office": self._office.name,
                "at": at.isoformat(timespec="milliseconds"),
                "id": str(uuid.uuid4()),
                "documents": pending.documents,
                "statuses": pending.statuses,
                "urgent_documents": pending.urgent_documents,
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")

    async def _post(self, pending: Pending) -> bool:
        token = self._office.token
        assert token is not None
        body = self.body(pending)
        headers = Headers(
            {
                "Content-Type": ["application/json; charset=utf-8"],
                SIGNATURE_HEADER: [signature(token.reveal(), body)],
                "User-Agent": ["edxml-gateway push"],
            }
        )

        async def exchange() -> int:
            response = await self._agent.request(
                b"POST", self._url.encode("ascii"), headers, FileBodyProducer(BytesIO(body))
            )
            await drain(response)
            return int(response.code)

        # One bound for the whole exchange: cancelling it cancels what it waits for.
        call: Deferred[int] = Deferred.fromCoroutine(exchange())
        timer = self._clock.callLater(TIMEOUT, call.cancel)
        try:
            code = await call
        except Exception as exc:  # a push is a hint: whatever went wrong, the office pulls
            self.log.warn(
                "push to office {office} failed: {error}",
                office=self._office.name,
                error=network_reason(exc),
            )
            return False
        finally:
            if timer.active():
                timer.cancel()
        if 200 <= code < 300:
            self.log.info(
                "pushed to office {office}: {documents} document(s), {statuses} status(es)",
                office=self._office.name,
                documents=sum(pending.documents.values()),
                statuses=sum(pending.statuses.values()),
            )
            return True
        self.log.warn(
            "push to office {office} answered HTTP {code}", office=self._office.name, code=code
        )
        return False
