"""Upgrades (issue #7): the data directory each released version made opens with this code.

`tests/fixtures/released/vN.tar.gz` is what the release with schema version N left after the
README's own first run (`gateway init`, `gateway run`, `gateway send` of the bundled sample, then
stop): its sample gateway.conf, its database and its blobs (its dev keys and token are not kept:
`gateway init` of this version makes new ones, as an operator's real ones would stay). This
version's daemon must start on it, migrate it with a backup of the old database taken first,
serve the old documents, and pass `gateway verify` and `audit verify`.
"""

from __future__ import annotations

import re
import sqlite3
import tarfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gateway.migrations import CURRENT_VERSION

try:
    from tests.e2e_kit import H23, Node, cli_json, free_port, gateway
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from e2e_kit import H23, Node, cli_json, free_port, gateway  # type: ignore[no-redef, import-not-found]

RELEASED = Path(__file__).resolve().parent / "fixtures" / "released"
SAMPLE_DOCUMENT = "000.00.00.H23,2025/03/05,123/UBND-VP"


class ReleasedDataTests(SynchronousTestCase):
    def open_release(self, version: int) -> None:
        directory = Path(self.mktemp()).resolve()
        directory.mkdir()
        with tarfile.open(RELEASED / f"v{version}.tar.gz") as archive:
            archive.extractall(directory, filter="data")
        db = directory / "data" / "gateway.db"
        old = sqlite3.connect(db)
        try:
            self.assertEqual(old.execute("PRAGMA user_version").fetchone()[0], version)
            messages = old.execute("SELECT count(*) FROM messages").fetchone()[0]
            audit = old.execute("SELECT count(*) FROM audit").fetchone()[0]
            blobs = old.execute("SELECT count(DISTINCT blob_sha256) FROM messages").fetchone()[0]
        finally:
            old.close()
        node = Node(f"v{version}", directory, H23, "dev", free_port(), free_port())
        conf = node.conf.read_text(encoding="utf-8")
        # The sample's fixed ports would collide with anything else on this machine.
        conf = re.sub(r"tcp:8440", f"tcp:{node.office_port}", conf)
        conf = re.sub(r"127\.0\.0\.1:8440", f"127.0.0.1:{node.office_port}", conf)
        conf = re.sub(r"tcp:8443", f"tcp:{node.exchange_port}", conf)
        conf = re.sub(r"127\.0\.0\.1:8443", f"127.0.0.1:{node.exchange_port}", conf)
        node.conf.write_text(conf, encoding="utf-8")
        gateway(node, "init", "--json")
        self.addCleanup(node.stop)
        node.start()
        status = cli_json(node, "status")
        self.assertEqual(sum(m["n"] for m in status["messages"]), messages)
        shown = cli_json(node, "show", SAMPLE_DOCUMENT)
        self.assertEqual((shown["document_id"], shown["kind"]), (SAMPLE_DOCUMENT, "envelope"))
        self.assertEqual(node.stop(), 0)
        # Migrated, with the old database kept beside it first.
        new = sqlite3.connect(db)
        try:
            self.assertEqual(new.execute("PRAGMA user_version").fetchone()[0], CURRENT_VERSION)
            self.assertEqual(new.execute("SELECT count(*) FROM messages").fetchone()[0], messages)
            self.assertGreaterEqual(new.execute("SELECT count(*) FROM audit").fetchone()[0], audit)
        finally:
            new.close()
        backup = db.with_name(f"gateway.db.pre-v{version + 1}.bak")
        kept = sqlite3.connect(backup)
        try:
            self.assertEqual(kept.execute("PRAGMA user_version").fetchone()[0], version)
        finally:
            kept.close()
        report = cli_json(node, "verify")
        self.assertTrue(report["ok"], report)
        self.assertEqual(report["blobs"], blobs)
        self.assertTrue(cli_json(node, "audit", "verify")["intact"])

    def test_the_v4_release_data_opens(self) -> None:
        self.open_release(4)

    def test_the_v5_release_data_opens(self) -> None:
        self.open_release(5)

    def test_the_v7_release_data_opens(self) -> None:
        self.open_release(7)

    def test_the_v8_release_data_opens(self) -> None:
        self.open_release(8)

    def test_every_released_schema_has_its_fixture(self) -> None:
        # v6 landed and was superseded by v7 within stop 11: no release left a v6 store.
        found = sorted(int(p.name[1:].split(".")[0]) for p in RELEASED.glob("v*.tar.gz"))
        self.assertEqual(found, [4, 5, 7, 8])
        self.assertLess(max(found), CURRENT_VERSION)
