"""The regulation's commands through click: directory import/list (R11), number issue (R12),
overdue (R16) and stats (R22), on a real `gateway init` of the sample configuration and its
store (created as the daemon creates it)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from twisted.trial.unittest import SynchronousTestCase

from gateway.blobs import BlobRef
from gateway.cli import EX_DATAERR, main
from gateway.migrations import apply_migrations
from gateway.store import NewDelivery, NewMessage, insert_outbound_message_with_deliveries

SAMPLE_CONF = Path(__file__).parents[1] / "gateway.conf"
H23 = "000.00.00.H23"

CSV = """organ_id,name,parent,level,kind,valid_from,valid_to,successor
000.00.00.H23,UBND tỉnh Hà Nam,,1,province,,2025-06-30,000.00.00.H37
000.00.01.H23,Văn phòng UBND tỉnh,000.00.00.H23,,department,,,
000.00.00.G22,Văn phòng Chính phủ,,1,ministry,,,
"""


class CliRulesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "gateway.conf"
        shutil.copy(SAMPLE_CONF, self.conf)
        self.invoke("init", "--json")
        self.db = self.dir / "data" / "gateway.db"
        apply_migrations(self.db)

    def invoke(self, *args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(main, [*args, "-c", str(self.conf)])
        self.assertEqual(result.exit_code, code, result.output)
        return json.loads(result.stdout) if "--json" in args and result.stdout.strip() else result

    def test_R11_directory_import_and_list(self) -> None:
        path = self.dir / "agencies.csv"
        path.write_text(CSV, encoding="utf-8")
        imported = self.invoke("directory", "import", str(path), "--json")
        self.assertEqual((imported["added"], imported["changed"]), (3, 0))
        listed = self.invoke("directory", "list", "--json")
        by = {a["organ_id"]: a for a in listed}
        self.assertEqual(by[H23]["successor"], "000.00.00.H37")
        self.assertEqual(by[H23]["valid_to"], "2025-06-30")
        self.assertEqual(by["000.00.01.H23"]["level"], 2)  # from the OrganId
        self.assertEqual(by["000.00.01.H23"]["parent"], H23)
        again = self.invoke("directory", "import", str(path), "--json")
        # The same file again changes nothing.
        self.assertEqual((again["added"], again["changed"]), (0, 0))
        under = self.invoke("directory", "list", "--parent", H23, "--json")
        self.assertEqual([a["organ_id"] for a in under], ["000.00.01.H23"])

    def test_R11_a_bad_file_imports_nothing_and_says_everything(self) -> None:
        path = self.dir / "bad.json"
        path.write_text(
            json.dumps(
                [
                    {"organ_id": "000.00.00.G22", "name": "Văn phòng Chính phủ"},
                    {"organ_id": "not-a-code!", "name": "x"},
                    {"organ_id": "000.00.00.G09", "name": "", "valid_from": "2025-13-01"},
                    {"organ_id": "000.00.00.G22", "name": "twice"},
                ]
            ),
            encoding="utf-8",
        )
        result = self.invoke("directory", "import", str(path), "--json", code=EX_DATAERR)
        self.assertFalse(result["imported"])
        problems = result["problems"]
        where = sorted((p["where"], p["field"]) for p in problems)
        self.assertEqual(
            where,
            [
                ("item 2", "organ_id"),
                ("item 3", "name"),
                ("item 3", "valid_from"),
                ("item 4", "organ_id"),
            ],
        )
        self.assertTrue(all(p["message_vi"] for p in problems))
        self.assertEqual(self.invoke("directory", "list", "--json"), [])

    def test_R12_number_issue(self) -> None:
        first = self.invoke(
            "number",
            "issue",
            "--agency",
            H23,
            "--notation",
            "UBND-VP",
            "--date",
            "2026-03-04",
            "--json",
        )
        second = self.invoke(
            "number",
            "issue",
            "--agency",
            H23,
            "--notation",
            "UBND-VP",
            "--date",
            "2026-03-04",
            "--json",
        )
        self.assertEqual((first["code_number"], second["code_number"]), ("01", "02"))
        self.assertEqual(second["document_id"], f"{H23},2026/03/04,02/UBND-VP")
        self.invoke(
            "number", "issue", "--agency", "000.00.00.G22", "--notation", "X", code=EX_DATAERR
        )
        self.invoke("number", "issue", "--agency", H23, "--notation", "A B", code=EX_DATAERR)
        conn = sqlite3.connect(self.db)
        self.addCleanup(conn.close)
        actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id")]
        self.assertEqual(actions.count("number-issued"), 2)

    def _sent(self, document: str, due: str | None) -> None:
        conn = sqlite3.connect(self.db, isolation_level=None)
        at = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
        msg = NewMessage(
            id=document,
            direction="out",
            kind="envelope",
            sender=H23,
            document_id=f"{H23},2026/03/02,{document}/UBND-VP",
            business_type="0",
            blob=BlobRef("ab" * 32, 1),
            arrived_at=at,
            recipients=("000.00.00.G22",),
            due_date=due,
            code_number=document,
            code_notation="UBND-VP",
        )
        insert_outbound_message_with_deliveries(
            conn, msg, [NewDelivery("000.00.00.G22", "peer")], receipt_json=None, now=at, actor="t"
        )
        conn.close()

    def test_R16_overdue(self) -> None:
        self._sent("11", "2026-03-10")
        self._sent("12", None)
        rows = self.invoke("overdue", "--as-of", "2026-03-12", "--json")
        self.assertEqual(
            [(r["direction"], r["days_late"], r["waiting_for"]) for r in rows],
            [("out", 2, ["000.00.00.G22"])],
        )
        self.assertEqual(self.invoke("overdue", "--as-of", "2026-03-10", "--json"), [])
        table = self.invoke("overdue", "--as-of", "2026-03-12")
        self.assertIn("000.00.00.G22", table.output)

    def test_R22_stats_json_csv_and_recount(self) -> None:
        self._sent("21", None)
        self._sent("22", None)
        result = self.invoke("stats", "--json", "--recount")
        [row] = result["rows"]
        self.assertEqual(
            (row["agency"], row["direction"], row["documents"], row["deliveries"]),
            (H23, "out", 2, 2),
        )
        csv = self.invoke("stats", "--csv", "--by", "period,direction", "--period", "year")
        self.assertEqual(csv.output.splitlines()[1].split(",")[:3], ["2026", "out", "2"])
        self.invoke("stats", "--by", "colour", code=78)
        # A counter that drifted from the rows is caught by --recount.
        conn = sqlite3.connect(self.db, isolation_level=None)
        conn.execute("UPDATE stat_days SET documents = documents + 1")
        conn.close()
        self.invoke("stats", "--json", "--recount", code=EX_DATAERR)
