"""Stdlib logging of libraries reaches twisted.logger as one event per record, without a
traceback; pyHanko's per-signature warnings (already findings of the verdict) do not."""

from __future__ import annotations

import logging
from typing import Any

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from gateway.logs import bridge_stdlib


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
