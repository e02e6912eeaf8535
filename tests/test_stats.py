"""R22 statistics: the counters the store keeps (triggers on the rows they count) against a recount
of the rows themselves, over real store jobs; expected numbers for a small known history; and the
upgrade from a store of schema v4, whose counters are built from what it already holds."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from gateway import stats
from gateway import store as s
from gateway.blobs import BlobRef
from gateway.migrations import MIGRATIONS, apply_migrations

H23, VP, SO = "000.00.00.H23", "000.00.01.H23", "000.00.02.H23"  # hosted: UBND, Văn phòng, a Sở
HUYEN = "000.01.02.H23"  # hosted: a level-3 unit under the Sở above
G22, G09 = "000.00.00.G22", "000.00.00.G09"
HOSTED = (H23, VP, SO, HUYEN)
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 in Hà Nội
BLOB = BlobRef("ab" * 32, 100)
_ids = itertools.count()


def db(
    test: SynchronousTestCase, migrations: tuple[object, ...] = MIGRATIONS
) -> sqlite3.Connection:
    path = Path(test.mktemp()) / "gateway.db"
    path.parent.mkdir(parents=True)
    apply_migrations(path, migrations)  # type: ignore[arg-type]
    conn = sqlite3.connect(path, isolation_level=None)
    test.addCleanup(conn.close)
    return conn


def envelope(
    direction: str, sender: str, recipients: tuple[str, ...], at: dt.datetime, **kw: object
) -> s.NewMessage:
    n = next(_ids)
    return s.NewMessage(
        id=str(uuid.uuid4()),
        direction=direction,
        kind="envelope",
        sender=sender,
        document_id=f"{sender},{at:%Y/%m/%d},{n}/UBND-VP",
        business_type="0",
        blob=BLOB,
        arrived_at=at,
        recipients=recipients,
        code_number=str(n),
        code_notation="UBND-VP",
        **kw,  # type: ignore[arg-type]
    )


def send(
    conn: sqlite3.Connection,
    sender: str,
    recipients: tuple[str, ...],
    at: dt.datetime,
    **kw: object,
) -> str:
    msg = envelope("out", sender, recipients, at, **kw)
    s.insert_outbound_message_with_deliveries(
        conn,
        msg,
        [s.NewDelivery(r, "peer") for r in recipients],
        receipt_json=None,
        now=at,
        actor="test",
    )
    return msg.id


def delivered(conn: sqlite3.Connection, message_id: str, at: dt.datetime, due: dt.datetime) -> None:
    for delivery in s.deliveries_for(conn, message_id):
        conn.execute("UPDATE deliveries SET state = 'sending' WHERE id = ?", (delivery.id,))
        s.mark_delivery_sent(
            conn, delivery.id, now=at, receipt_json=None, actor="test", ack_due=due
        )


def answer(
    conn: sqlite3.Connection, message_id: str, organ: str, code: str, at: dt.datetime
) -> None:
    s.record_status(conn, s.NewStatus(message_id, organ, code, at), now=at, actor="test")


def receive(
    conn: sqlite3.Connection,
    sender: str,
    recipients: tuple[str, ...],
    at: dt.datetime,
    *,
    state: str = "received",
    legal: str | None = None,
    due: dt.datetime | None = None,
) -> str:
    times = tuple(s.InboxTimes(r, at, due or at + dt.timedelta(hours=8)) for r in recipients)
    msg = envelope("in", sender, recipients, at, legal_validity=legal, legal_received=times)
    s.insert_inbound_message(conn, msg, receipt_json=None, now=at, actor="test", state=state)
    return msg.id


def both(conn: sqlite3.Connection, query: stats.StatsQuery) -> dict[str, object]:
    kept = stats.gather(conn, query, hosted=HOSTED)
    again = stats.recount(conn, query, hosted=HOSTED)
    assert kept == again, (kept, again)
    return kept


class KnownHistoryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.conn = db(self)
        c, hour = self.conn, dt.timedelta(hours=1)
        due = T0 + 8 * hour  # 17:00 the same day
        # Out: H23 sends two documents (one to two recipients), VP one, recalled later.
        a = send(c, H23, (G22, G09), T0, paper_required=True)
        b = send(c, H23, (G22,), T0 + hour, late_issue=True)
        r = send(c, VP, (G09,), T0 + 2 * hour)
        for m in (a, b, r):
            delivered(c, m, T0 + 2 * hour, due)
        answer(c, a, G22, "01", T0 + 3 * hour)  # on time
        answer(c, a, G09, "02", T0 + 30 * hour)  # late, and a refusal
        answer(c, a, G22, "03", T0 + 31 * hour)  # not an acknowledgment: changes nothing
        s.mark_recalled(c, r, now=T0 + 5 * hour, actor="test")
        # In: H23 receives three (legal, reference only, rejected), SO one picked up late.
        x = receive(c, G22, (H23,), T0, legal="legal")
        receive(c, G22, (H23,), T0 + hour, legal="reference-only")
        receive(c, G09, (H23,), T0 + hour, state="rejected", legal="broken")
        y = receive(c, G09, (SO, G22), T0 + 2 * hour, legal="legal")
        s.mark_received(c, [x], [H23], now=T0 + 2 * hour, actor="test")
        s.mark_received(c, [y], [SO], now=T0 + 48 * hour, actor="test")
        w = receive(c, G22, (HUYEN,), T0 + 3 * hour)
        s.withdraw_inbound(c, w, now=T0 + 4 * hour, actor="test")
        # Another month: counted only when asked for.
        send(c, H23, (G22,), T0 + 40 * 24 * hour)

    def rows(self, **kw: object) -> dict[tuple[object, ...], dict[str, object]]:
        query = stats.StatsQuery(
            start=kw.pop("start", dt.date(2026, 3, 1)),  # type: ignore[arg-type]
            end=kw.pop("end", dt.date(2026, 3, 31)),  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )
        result = both(self.conn, query)
        return {tuple(r[d] for d in query.by): r for r in result["rows"]}  # type: ignore[union-attr, index]

    def test_R22_sent_by_agency(self) -> None:
        rows = self.rows()
        h23 = rows[(H23, "out")]
        self.assertEqual(
            (
                h23["documents"],
                h23["deliveries"],
                h23["on_time"],
                h23["late"],
                h23["unacknowledged"],
            ),
            (2, 3, 1, 1, 1),
        )
        self.assertEqual((h23["rejected"], h23["paper_required"], h23["late_issue"]), (1, 1, 1))
        self.assertEqual(rows[(VP, "out")]["recalled"], 1)

    def test_R22_received_by_agency(self) -> None:
        rows = self.rows()
        h23 = rows[(H23, "in")]
        self.assertEqual((h23["documents"], h23["rejected"]), (3, 1))
        self.assertEqual((h23["legal"], h23["reference_only"], h23["broken"]), (1, 1, 1))
        self.assertEqual((h23["on_time"], h23["late"], h23["unacknowledged"]), (1, 0, 1))
        so = rows[(SO, "in")]
        self.assertEqual((so["documents"], so["late"], so["legal"]), (1, 1, 1))
        self.assertEqual(rows[(HUYEN, "in")]["withdrawn"], 1)
        self.assertNotIn((G22, "in"), rows)  # a recipient elsewhere is not ours to count

    def test_R22_by_level_and_province(self) -> None:
        rows = self.rows(by=("province", "level", "direction"))
        self.assertEqual(rows[(H23, 1, "in")]["documents"], 3)
        self.assertEqual(rows[(H23, 2, "in")]["documents"], 1)  # the Sở
        self.assertEqual(rows[(H23, 3, "in")]["withdrawn"], 1)  # the level-3 unit
        self.assertEqual(rows[(H23, 2, "out")]["documents"], 1)  # the Văn phòng

    def test_R22_kind_from_the_directory(self) -> None:
        self.conn.execute(
            "INSERT INTO agencies (organ_id, name, level, kind, source, updated_at)"
            " VALUES (?, 'Sở Nội vụ', 2, 'department', 'test', '')",
            (SO,),
        )
        rows = self.rows(by=("kind", "direction"))
        self.assertEqual(rows[("department", "in")]["documents"], 1)

    def test_R22_periods(self) -> None:
        rows = self.rows(start=None, end=None, period="month", by=("period", "direction"))
        self.assertEqual(rows[("2026-03", "out")]["documents"], 3)
        self.assertEqual(rows[("2026-04", "out")]["documents"], 1)
        quarters = self.rows(start=None, end=None, period="quarter", by=("period",))
        self.assertEqual(quarters[("2026-Q1",)]["documents"], 3 + 5)
        self.assertEqual(quarters[("2026-Q2",)]["documents"], 1)
        days = self.rows(period="day", by=("period", "direction"))
        self.assertEqual(days[("2026-03-02", "in")]["documents"], 5)

    def test_R22_vietnam_days(self) -> None:
        # 23:30 UTC on 31 March is already 1 April in Hà Nội.
        late_night = dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC)
        send(self.conn, SO, (G22,), late_night)
        rows = self.rows(start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 1), by=("agency",))
        self.assertEqual(rows[(SO,)]["documents"], 1)

    def test_R22_csv(self) -> None:
        query = stats.StatsQuery(by=("agency", "direction"))
        text = stats.to_csv(both(self.conn, query))
        header, *lines = text.splitlines()
        self.assertTrue(header.startswith("agency,direction,name,documents,deliveries"))
        self.assertIn(f"{H23},out,,3,4", "\n".join(lines))

    def test_refused_unkept_are_counted_apart(self) -> None:
        from gateway.documents import insert_refusal

        insert_refusal(
            self.conn,
            at=T0,
            direction="in",
            sender=G22,
            document_id="x",
            code="SecretDocument",
            reason_en="secret",
            reason_vi="mật",
            actor="test",
        )
        result = both(self.conn, stats.StatsQuery())
        self.assertEqual(result["refused_unkept"], {"in": 1, "out": 0})


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ("send", "receive", "reject", "ack", "answer", "pickup", "recall", "withdraw")
        ),
        st.integers(0, 200),  # hours after T0
        st.integers(0, 3),  # which agency
        st.integers(0, 30),  # which earlier message
    ),
    max_size=40,
)


class NeverDriftTests(SynchronousTestCase):
    @settings(max_examples=60)
    @given(OPS)
    def test_R22_kept_counters_equal_a_recount(self, ops: list[tuple[str, int, int, int]]) -> None:
        path = Path(self.mktemp()) / "g.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        apply_migrations(path)
        conn = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(conn.close)
        out: list[str] = []
        inbound: list[tuple[str, str]] = []
        for op, hours, who, pick in ops:
            at = T0 + dt.timedelta(hours=hours)
            agency = HOSTED[who]
            if op == "send":
                out.append(send(conn, agency, (G22, G09)[: 1 + who % 2], at))
            elif op in ("receive", "reject"):
                state = "rejected" if op == "reject" else "received"
                inbound.append(
                    (receive(conn, G22, (agency,), at, state=state, legal="legal"), agency)
                )
            elif op == "ack" and out:
                delivered(conn, out[pick % len(out)], at, at + dt.timedelta(hours=5))
            elif op == "answer" and out:
                answer(conn, out[pick % len(out)], G22, ("01", "02", "03")[who % 3], at)
            elif op == "pickup" and inbound:
                message_id, organ = inbound[pick % len(inbound)]
                s.mark_received(conn, [message_id], [organ], now=at, actor="test")
            elif op == "recall" and out:
                s.mark_recalled(conn, out[pick % len(out)], now=at, actor="test")
            elif op == "withdraw" and inbound:
                s.withdraw_inbound(conn, inbound[pick % len(inbound)][0], now=at, actor="test")
        for query in (
            stats.StatsQuery(),
            stats.StatsQuery(period="day", by=("agency", "period", "direction")),
            stats.StatsQuery(dt.date(2026, 3, 3), dt.date(2026, 3, 5), "day", ("period",)),
        ):
            both(conn, query)


class UpgradeTests(SynchronousTestCase):
    def test_R22_a_v4_store_gets_its_counters(self) -> None:
        path = Path(self.mktemp()) / "old.db"
        path.parent.mkdir(parents=True)
        apply_migrations(path, MIGRATIONS[:4])
        conn = sqlite3.connect(path, isolation_level=None)
        at = s.utc_text(T0)
        rows = (
            ("o1", "out", H23, "accepted", '{"legal_validity": null}'),
            ("o2", "out", H23, "recalled", "{}"),
            ("i1", "in", G22, "delivered", '{"legal_validity": "legal"}'),
            ("i2", "in", G22, "rejected", '{"legal_validity": "broken"}'),
        )
        for message_id, direction, sender, state, verdict in rows:
            conn.execute(
                "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,"
                " state, blob_sha256, size, verdict_json, arrived_at, created_at)"
                " VALUES (?, ?, 'envelope', ?, ?, '0', ?, ?, 1, ?, ?, ?)",
                (
                    message_id,
                    direction,
                    sender,
                    f"{sender},2026/03/02,{message_id}/X",
                    state,
                    "ab" * 32,
                    verdict,
                    at,
                    at,
                ),
            )
            conn.execute(
                "INSERT INTO message_recipients VALUES (?, ?)",
                (message_id, G22 if direction == "out" else H23),
            )
        conn.execute(
            "INSERT INTO deliveries (message_id, recipient, route, state, next_attempt_at,"
            " priority_rank, due_at, sent_at, updated_at)"
            " VALUES ('o1', ?, 'peer', 'sent', ?, 0, ?, ?, ?)",
            (G22, at, at, at, at),
        )
        conn.execute(
            "INSERT INTO statuses (message_id, organ_id, code, reported_at, received_at)"
            " VALUES ('o1', ?, '01', ?, ?)",
            (G22, at, at),
        )
        conn.execute(
            "INSERT INTO inbox (message_id, organ_id, acked_at) VALUES ('i1', ?, ?)", (H23, at)
        )
        conn.close()
        apply_migrations(path)
        conn = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(conn.close)
        result = both(conn, stats.StatsQuery(by=("agency", "direction")))
        by = {(r["agency"], r["direction"]): r for r in result["rows"]}  # type: ignore[union-attr, index]
        self.assertEqual((by[(H23, "out")]["documents"], by[(H23, "out")]["recalled"]), (2, 1))
        self.assertEqual(by[(H23, "out")]["on_time"], 1)
        self.assertEqual((by[(H23, "in")]["legal"], by[(H23, "in")]["broken"]), (1, 1))
        self.assertEqual(by[(H23, "in")]["on_time"], 1)
