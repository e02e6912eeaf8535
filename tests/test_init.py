"""`gateway init`: the files a configuration names, created once, private keys private."""

from __future__ import annotations

import datetime
import json
import shutil
import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from twisted.trial.unittest import SynchronousTestCase

from edxml.certificates import Chain, Trust, build_chain
from gateway import config as configuration
from gateway.cli import EX_CONFIG, main

SAMPLE_CONF = Path(__file__).parents[1] / "gateway.conf"


def init(conf: Path, *extra: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["init", "--json", "-c", str(conf), *extra])
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


class InitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "gateway.conf"
        shutil.copy(SAMPLE_CONF, self.conf)

    def test_sample_config_runs_after_init(self) -> None:
        self.assertRaises(configuration.ConfigError, configuration.load, self.conf)
        first = init(self.conf)
        conf = configuration.load(self.conf)  # every named file now exists
        self.assertGreaterEqual(len(first["created"]), 10)  # type: ignore[arg-type]
        token_path = self.dir / "data" / "office.token"
        token = token_path.read_text().strip()
        self.assertIsNotNone(conf.office_for_token(token))
        for key in self.dir.glob("data/pki/*.key"):
            self.assertEqual(stat.S_IMODE(key.stat().st_mode), 0o600, key)
        self.assertEqual(stat.S_IMODE(token_path.stat().st_mode), 0o600)

    def test_a_metrics_token_file_is_made_when_named(self) -> None:
        text = self.conf.read_text(encoding="utf-8")
        self.assertIn("# token_file = data/metrics.token", text)
        self.conf.write_text(
            text.replace("# token_file = data/metrics.token", "token_file = data/metrics.token"),
            encoding="utf-8",
        )
        init(self.conf)
        conf = configuration.load(self.conf)
        path = self.dir / "data" / "metrics.token"
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        assert conf.metrics_token is not None
        self.assertEqual(conf.metrics_token.reveal(), path.read_text().strip())
        self.assertEqual(conf.metrics_token_source, f"file:{path.resolve()}")
        office = (self.dir / "data" / "office.token").read_text()
        self.assertNotEqual(path.read_text(), office)

    def test_second_init_creates_nothing_and_keeps_keys(self) -> None:
        init(self.conf)
        key = self.dir / "data" / "pki" / "node.key"
        before = key.read_bytes()
        second = init(self.conf)
        self.assertEqual(second["created"], [])
        self.assertEqual(key.read_bytes(), before)

    def test_agency_seal_and_node_chain_to_the_written_root(self) -> None:
        init(self.conf)
        pki = self.dir / "data" / "pki"
        trust = Trust.from_pem((pki / "root.pem").read_bytes())
        for name in ("000.00.00.H23.pem", "node.pem"):
            chain = x509.load_pem_x509_certificates((pki / name).read_bytes())
            now = datetime.datetime.now(datetime.UTC)
            self.assertIsInstance(build_chain(chain[0], chain, trust, now), Chain, name)

    def test_nodes_sharing_a_ca_trust_each_other(self) -> None:
        first = init(self.conf)
        other_dir = Path(self.mktemp())
        other_dir.mkdir(parents=True)
        other = other_dir / "gateway.conf"
        shutil.copy(SAMPLE_CONF, other)
        init(other, "--ca-dir", str(first["ca_dir"]))
        trust = Trust.from_pem((self.dir / "data" / "pki" / "root.pem").read_bytes())
        chain = x509.load_pem_x509_certificates((other_dir / "data/pki/node.pem").read_bytes())
        now = datetime.datetime.now(datetime.UTC)
        self.assertIsInstance(build_chain(chain[0], chain, trust, now), Chain)

    def test_broken_config_is_refused_with_ex_config(self) -> None:
        self.conf.write_text(self.conf.read_text() + "\n[nonsense]\nkey = 1\n")
        result = CliRunner().invoke(main, ["init", "-c", str(self.conf)])
        self.assertEqual(result.exit_code, EX_CONFIG)
        self.assertIn("nonsense", result.stderr)
