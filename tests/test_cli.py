"""`gateway inspect`: the real-world fixtures, the bundled sample, hostile input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from twisted.trial.unittest import SynchronousTestCase

from gateway.cli import EX_DATAERR, EX_NOINPUT, main

FIXTURES = Path(__file__).parent / "fixtures"
REALWORLD = FIXTURES / "realworld"


def inspect_json(path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["inspect", "--json", str(path), *extra])
    return result.exit_code, json.loads(result.stdout)


def codes(report: dict[str, Any]) -> set[str]:
    return {f["code"] for f in report["findings"]}


class InspectRealWorldTests(SynchronousTestCase):
    def test_edoc_new(self) -> None:
        status, r = inspect_json(REALWORLD / "edoc_new.edxml")
        self.assertEqual(r["kind"], "envelope")
        self.assertEqual(r["document_id"], "000.00.11.H53,2020/10/30,2491/STC-BCTC")
        self.assertEqual(r["from"]["organ_id"], "000.00.11.H53")
        self.assertEqual([o["organ_id"] for o in r["to"]], ["000.00.01.A53"])
        self.assertEqual(r["code"], {"number": "2491", "notation": "STC-BCTC"})
        self.assertEqual(r["promulgation_date"], "2020-10-30")
        self.assertEqual(r["priority"]["code"], 0)
        self.assertEqual(r["business_type"]["code"], 0)
        (att,) = r["attachments"]
        self.assertEqual(att["name"], "1896_QD-TTg_m_294779.doc")
        self.assertEqual(att["declared_type"], "application/zip")
        found = codes(r)
        # The real defects, each a finding rather than a crash.
        self.assertIn("CertificateMalformed", found)  # truncated MIIFqTCCBJG
        self.assertIn("SignatureWeakAlgorithm", found)  # RSA-SHA1
        self.assertIn("DateFormatNonStandard", found)  # 30/10/2020
        self.assertIn("DocumentIdInvalid", found)  # 2014/02/30 in Bussiness/DocumentId
        self.assertIn("TimestampWithoutZone", found)
        self.assertEqual(r["signature"]["state"], "unverifiable")
        self.assertFalse(r["acceptable"])
        self.assertEqual(status, EX_DATAERR)

    def test_edoc_update(self) -> None:
        status, r = inspect_json(REALWORLD / "edoc_update.edxml")
        self.assertEqual(r["business_type"], {"code": 2, "name": "update"})
        self.assertEqual(
            [o["organ_id"] for o in r["to"]],
            ["000.00.00.H53", "000.00.12.H53", "000.00.00.G17"],
        )
        found = codes(r)
        self.assertIn("DocumentIdMismatch", found)  # 2015/09/30 vs PromulgationDate 2018/09/28
        self.assertIn("DocumentIdInvalid", found)  # the update's target: 2014/02/30
        self.assertIn("CertificateMalformed", found)
        self.assertEqual(status, EX_DATAERR)

    def test_status_packet(self) -> None:
        _status, r = inspect_json(REALWORLD / "status_processing_05.edxml")
        self.assertEqual(r["kind"], "status")
        self.assertEqual(r["status"]["code"], "05")
        self.assertEqual(r["from"]["organ_id"], "000.00.00.H41")
        self.assertEqual(r["document_id"], "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT")
        self.assertEqual(r["timestamp"], "2015-09-20T11:08:36+07:00")
        self.assertIn("TimestampWithoutZone", codes(r))


class InspectSampleTests(SynchronousTestCase):
    def test_sample_is_acceptable(self) -> None:
        status, r = inspect_json(FIXTURES / "sample_envelope.edxml")
        errors = [f for f in r["findings"] if f["severity"] == "error"]
        self.assertEqual(errors, [])
        self.assertTrue(r["acceptable"])
        self.assertEqual(status, 0)
        for att in r["attachments"]:
            self.assertTrue(att["allowed"])
            self.assertEqual(len(att["sha256"]), 64)

    def test_every_finding_has_both_languages(self) -> None:
        for path in [*REALWORLD.glob("*.edxml"), FIXTURES / "sample_envelope.edxml"]:
            _status, r = inspect_json(path)
            for f in r["findings"]:
                self.assertTrue(f["message_en"] and f["message_vi"], f)
                self.assertNotEqual(f["message_en"], f["message_vi"], f)

    def test_human_output(self) -> None:
        result = CliRunner().invoke(main, ["inspect", str(REALWORLD / "edoc_new.edxml")])
        self.assertEqual(result.exit_code, EX_DATAERR)
        self.assertIn("000.00.11.H53", result.stdout)
        self.assertIn("CertificateMalformed", result.stdout)


class InspectRefusalTests(SynchronousTestCase):
    def test_hostile_file_refused(self) -> None:
        path = Path(self.mktemp())
        path.write_bytes(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
        )
        status, r = inspect_json(path)
        self.assertEqual(status, EX_DATAERR)
        self.assertEqual(r["refusal"]["code"], "HostileXML")
        self.assertNotIn("root:", json.dumps(r))

    def test_not_edxml(self) -> None:
        path = Path(self.mktemp())
        path.write_bytes(b"<html><body>hello</body></html>")
        status, r = inspect_json(path)
        self.assertEqual(status, EX_DATAERR)
        self.assertEqual(r["refusal"]["code"], "NotEdxml")

    def test_missing_file(self) -> None:
        result = CliRunner().invoke(main, ["inspect", "/nonexistent/x.edxml"])
        self.assertEqual(result.exit_code, EX_NOINPUT)

    def test_console_script_runs(self) -> None:
        """The installed entry point, as an operator runs it."""
        exe = Path(sys.executable).with_name("gateway")
        env = dict(os.environ, NO_COLOR="1")
        proc = subprocess.run(
            [str(exe), "inspect", "--json", str(REALWORLD / "status_processing_05.edxml")],
            capture_output=True,
            env=env,
            check=False,
        )
        self.assertIn(proc.returncode, (0, EX_DATAERR), proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["kind"], "status")
