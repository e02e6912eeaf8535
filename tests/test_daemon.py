"""One real node process from the sample configuration, driven only through the CLI.

`gateway init` then `gateway run` in a subprocess on free loopback ports; `gateway send` the local
sample (one hosted agency to the other), watch it and the automatic 01 go out, resend it (the
first answer comes back), recall it, then SIGTERM: the daemon drains and exits 0.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).parents[1]
LOCAL_SAMPLE = ROOT / "tests" / "fixtures" / "sample_local.edxml"
DOCUMENT_ID = "000.00.00.H23,2025/03/05,123/UBND-VP"
GATEWAY = [sys.executable, "-m", "gateway.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway(conf: Path, *args: str, check: bool = True) -> tuple[int, Any]:
    proc = subprocess.run(
        [*GATEWAY, *args, "-c", str(conf), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"gateway {args} exited {proc.returncode}: {proc.stderr}")
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None


def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class DaemonTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp()).resolve()
        self.dir.mkdir(parents=True)
        office, exchange = free_port(), free_port()
        text = (ROOT / "gateway.conf").read_text()
        text = re.sub(r"tcp:8440", f"tcp:{office}", text).replace(":8440/", f":{office}/")
        text = re.sub(r"tcp:8443", f"tcp:{exchange}", text).replace(":8443/", f":{exchange}/")
        self.conf = self.dir / "gateway.conf"
        self.conf.write_text(text)
        gateway(self.conf, "init")
        self.log = (self.dir / "node.log").open("wb")
        self.node = subprocess.Popen(
            [*GATEWAY, "run", "-c", str(self.conf)], stdout=self.log, stderr=self.log
        )
        self.addCleanup(self._stop)

        def office_up() -> bool:
            if self.node.poll() is not None:
                raise AssertionError((self.dir / "node.log").read_text())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", office)) == 0

        wait_until(office_up, "the office face")

    def _stop(self) -> None:
        if self.node.poll() is None:
            self.node.send_signal(signal.SIGKILL)
            self.node.wait(10)
        self.log.close()

    def test_send_deliver_resend_recall_and_clean_stop(self) -> None:
        _, sent = gateway(self.conf, "send", str(LOCAL_SAMPLE))
        self.assertTrue(sent["accepted"])
        self.assertEqual([d["organ_id"] for d in sent["deliveries"]], ["000.00.01.H23"])

        def delivered() -> list[dict[str, Any]]:
            _, rows = gateway(self.conf, "queue", "--state", "sent")
            kinds = sorted(r["kind"] for r in rows)
            return rows if kinds == ["envelope", "status"] else []

        rows = wait_until(delivered, "the envelope and its automatic 01")
        self.assertTrue(all(r["route"] == "local" for r in rows))
        _, again = gateway(self.conf, "send", str(LOCAL_SAMPLE))
        self.assertEqual(again["message_id"], sent["message_id"])

        _, shown = gateway(self.conf, "show", sent["message_id"])
        self.assertEqual(shown["direction"], "out")
        codes = wait_until(
            lambda: [
                s["code"] for s in gateway(self.conf, "show", sent["message_id"])[1]["statuses"]
            ],
            "status 01 recorded on the sent document",
        )
        self.assertEqual(codes[0], "01")

        code, recalled = gateway(self.conf, "recall", DOCUMENT_ID, "--reason", "Gửi nhầm")
        self.assertEqual(code, 0, recalled)
        self.assertTrue(recalled["accepted"])

        self.node.send_signal(signal.SIGTERM)
        self.assertEqual(self.node.wait(30), 0, (self.dir / "node.log").read_text())
        wal = self.dir / "data" / "gateway.db-wal"
        self.assertTrue(not wal.exists() or wal.stat().st_size == 0)
        _, audit = gateway(self.conf, "audit", "verify")
        self.assertTrue(audit["intact"])

    def test_refused_document_exits_65_with_both_languages(self) -> None:
        bad = self.dir / "bad.edxml"
        bad.write_bytes(LOCAL_SAMPLE.read_bytes().replace(b"000.00.01.H23", b"000.00.09.H99"))
        code, refused = gateway(self.conf, "send", str(bad), check=False)
        self.assertEqual(code, 65)
        self.assertEqual(refused["code"], "UnknownRecipient")
        self.assertTrue(refused["message_en"] and refused["message_vi"])
        self.assertNotIn("token", json.dumps(refused).lower())

    def test_logs_are_structured_and_never_carry_the_token(self) -> None:
        gateway(self.conf, "send", str(LOCAL_SAMPLE))
        token = (self.dir / "data" / "office.token").read_text().strip()
        self.node.send_signal(signal.SIGTERM)
        self.node.wait(30)
        lines = (self.dir / "node.log").read_text().splitlines()
        self.assertTrue(lines)
        for line in lines:
            json.loads(line)  # one JSON object per line when stderr is not a terminal
        self.assertNotIn(token, "\n".join(lines))
