"""Stdlib logging of libraries reaches twisted.logger as one event per record, without a
traceback; pyHanko's per-signature warnings (already findings of the verdict) do not."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from typing import Any

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from gateway.logs import bridge_stdlib, local_time, stderr_observer


class BridgeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        self.addCleanup(setattr, root, "handlers", handlers)
        self.addCleanup(root.setLevel, level)
        bridge_stdlib()

    def ours(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "library_message" in e]

    def test_a_library_warning_becomes_one_event(self) -> None:
        try:
            raise ValueError("inner detail")
        except ValueError:
            logging.getLogger("somelib.part").warning("disk %s nearly full", "/data", exc_info=True)
        [event] = self.ours()
        self.assertEqual(event["log_namespace"], "somelib.part")
        self.assertIs(event["log_level"], LogLevel.warn)
        self.assertEqual(event["library_message"], "disk /data nearly full")
        self.assertEqual(event["library_error"], "ValueError")
        self.assertNotIn("log_failure", event)

    def test_info_stays_out(self) -> None:
        logging.getLogger("somelib").info("chatter")
        self.assertEqual(self.ours(), [])

    def test_pyhanko_warnings_stay_out_errors_come_in(self) -> None:
        logging.getLogger("pyhanko.sign.validation").warning("path validation failed")
        logging.getLogger("pyhanko_certvalidator").warning("expired")
        self.assertEqual(self.ours(), [])
        logging.getLogger("pyhanko.sign").error("real trouble")
        [event] = self.ours()
        self.assertIs(event["log_level"], LogLevel.error)

    def test_idempotent(self) -> None:
        bridge_stdlib()
        logging.getLogger("somelib").error("once")
        self.assertEqual(len(self.ours()), 1)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class ObserverTests(SynchronousTestCase):
    # 2026-12-04 01:02:03.456 UTC is 08:02:03.456 in Vietnam.
    WHEN = dt.datetime(2026, 12, 4, 1, 2, 3, 456000, tzinfo=dt.UTC).timestamp()

    def event(self) -> dict[str, Any]:
        return {
            "log_time": self.WHEN,
            "log_format": "delivery {delivery_id} sent",
            "delivery_id": 7,
            "log_level": LogLevel.info,
            "log_namespace": "gateway.dispatch",
        }

    def test_json_lines_carry_vietnam_time_beside_the_epoch(self) -> None:
        out = io.StringIO()
        event = self.event()
        stderr_observer(out)(event)
        [line] = out.getvalue().splitlines()
        record = json.loads(line)
        self.assertEqual(record["time"], "2026-12-04T08:02:03.456+07:00")
        self.assertEqual(record["log_time"], self.WHEN)
        self.assertEqual(record["delivery_id"], 7)
        self.assertNotIn("time", event)  # the event other observers see is left as it was

    def test_terminal_text_starts_with_vietnam_time(self) -> None:
        out = _Terminal()
        stderr_observer(out)(self.event())
        self.assertTrue(
            out.getvalue().startswith("2026-12-04T08:02:03.456+07:00 [gateway.dispatch"),
            out.getvalue(),
        )
        self.assertIn("delivery 7 sent", out.getvalue())

    def test_an_event_without_a_time(self) -> None:
        self.assertEqual(local_time(None), "-")
