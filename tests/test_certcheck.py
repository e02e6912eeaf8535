"""`gateway certs check`: expiry, chain, CRL revocation and key match, on a real `gateway init`."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from ocspkit import Responder, aia

from twisted.trial.unittest import SynchronousTestCase

from gateway import certcheck, devpki
from gateway import config as configuration
from gateway.cli import EX_DATAERR, main

SAMPLE_CONF = Path(__file__).parents[1] / "gateway.conf"
DAY = datetime.timedelta(days=1)
SEAL = "000.00.00.H23"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


class _InitDir(SynchronousTestCase):
    """A fresh `gateway init` of the sample configuration, and its dev issuing CA."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "gateway.conf"
        shutil.copy(SAMPLE_CONF, self.conf)
        result = CliRunner().invoke(main, ["init", "--json", "-c", str(self.conf)])
        assert result.exit_code == 0, result.output
        self.pki = self.dir / "data" / "pki"
        ca = self.pki / "ca"
        issuing_key = serialization.load_pem_private_key(
            (ca / "issuing.key.pem").read_bytes(), None
        )
        issuing_cert = x509.load_pem_x509_certificate((ca / "issuing.crt.pem").read_bytes())
        self.issuing = devpki.Issued(
            name="issuing",
            key=issuing_key,  # type: ignore[arg-type]
            cert=issuing_cert,
            chain=(issuing_cert,),
        )

    def run_check(self, *extra: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(
            main, ["certs", "check", "--json", "-c", str(self.conf), *extra]
        )
        self.assertIsNone(
            result.exception if not isinstance(result.exception, SystemExit) else None
        )
        payload: dict[str, Any] = json.loads(result.stdout)
        return result.exit_code, payload

    def entry(self, payload: dict[str, Any], role: str, of: str | None = None) -> dict[str, Any]:
        found = [c for c in payload["certificates"] if c["role"] == role and c["of"] == of]
        self.assertEqual(len(found), 1, [c["role"] for c in payload["certificates"]])
        return found[0]

    def reissue(self, cert_path: Path, key_path: Path, not_after: datetime.datetime) -> None:
        """Re-issue the certificate at `cert_path` from the dev CA, same subject and key."""
        old = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        usage = old.extensions.get_extension_for_class(x509.KeyUsage).value
        issued = devpki.issue(
            "again",
            old.subject,
            issuer=self.issuing,
            not_before=not_after - 400 * DAY,
            not_after=not_after,
            usage=usage,
            key=key,  # type: ignore[arg-type]
        )
        cert_path.write_bytes(issued.chain_pem)


class CertsCheckTests(_InitDir):
    def add_crl(self, crl: x509.CertificateRevocationList) -> Path:
        path = self.dir / "crls" / "issuing.crl"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        text = self.conf.read_text().replace(
            "roots = data/pki/root.pem\n", "roots = data/pki/root.pem\ncrls = crls/*.crl\n"
        )
        self.conf.write_text(text)
        return path

    def crl(
        self,
        revoked: tuple[int, ...] = (),
        *,
        signer: Any = None,
        next_update: datetime.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.cert.subject)
            .last_update(now - DAY)
            .next_update(next_update or now + 7 * DAY)
            .add_extension(x509.CRLNumber(7), critical=False)
        )
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - DAY)
                .build()
            )
        return builder.sign(signer or self.issuing.key, hashes.SHA256())

    def node_serial(self) -> int:
        return x509.load_pem_x509_certificates((self.pki / "node.pem").read_bytes())[
            0
        ].serial_number

    # --- tests ----------------------------------------------------------------------------------

    def test_fresh_init_needs_nothing_and_lists_every_certificate(self) -> None:
        code, payload = self.run_check()
        self.assertEqual(code, 0)
        self.assertFalse(payload["needs_action"])
        roles = sorted((c["role"], c["of"]) for c in payload["certificates"])
        self.assertEqual(
            roles,
            [
                ("agency-seal", "000.00.00.H23"),
                ("agency-seal", "000.00.01.H23"),
                ("chain-ca", None),
                ("node-tls", None),
                ("trust-root", None),
            ],
        )
        for c in payload["certificates"]:
            self.assertEqual(c["state"], "ok", c)
            self.assertTrue(c["not_after"].endswith("+07:00"))
            self.assertGreater(c["days_left"], 700)
            self.assertTrue(Path(c["path"]).is_file())

    def test_json_shape_is_stable(self) -> None:
        _code, payload = self.run_check()
        self.assertEqual(
            sorted(payload),
            ["certificates", "checked_at", "counts", "needs_action", "severity", "warn_days"],
        )
        self.assertEqual(
            sorted(payload["certificates"][0]),
            [
                "days_left",
                "fingerprint_sha256",
                "issuer",
                "kind",
                "not_after",
                "not_before",
                "of",
                "path",
                "problems",
                "role",
                "serial",
                "state",
                "subject",
            ],
        )
        self.assertEqual(payload["counts"], {"ok": 5})
        self.assertEqual(payload["severity"], "ok")

    def test_node_certificate_expiring_in_ten_days_warns(self) -> None:
        self.reissue(self.pki / "node.pem", self.pki / "node.key", _now() + 10 * DAY)
        code, payload = self.run_check()
        self.assertEqual(code, 1)
        node = self.entry(payload, "node-tls")
        self.assertEqual(node["state"], "expiring")
        self.assertIn(node["days_left"], (9, 10))
        self.assertIn("hết hạn", node["problems"][0]["message_vi"])
        # --warn-days moves the threshold.
        code, payload = self.run_check("--warn-days", "5")
        self.assertEqual(code, 0)

    def test_expired_agency_seal_is_an_error(self) -> None:
        self.reissue(self.pki / f"{SEAL}.pem", self.pki / f"{SEAL}.key", _now() - 2 * DAY)
        code, payload = self.run_check()
        self.assertEqual(code, EX_DATAERR)
        seal = self.entry(payload, "agency-seal", SEAL)
        self.assertEqual(seal["state"], "expired")
        # Expired, not also untrusted: the chain is judged within the seal's own validity.
        self.assertEqual([p["state"] for p in seal["problems"]], ["expired"])

    def test_crl_revoking_the_node_certificate(self) -> None:
        self.add_crl(self.crl((self.node_serial(),)))
        code, payload = self.run_check()
        self.assertEqual(code, EX_DATAERR)
        self.assertEqual(self.entry(payload, "node-tls")["state"], "revoked")
        self.assertEqual(self.entry(payload, "crl")["state"], "ok")
        self.assertEqual(self.entry(payload, "agency-seal", SEAL)["state"], "ok")

    def test_crl_with_a_bad_signature_is_reported_and_not_believed(self) -> None:
        forged = self.crl((self.node_serial(),), signer=devpki.rsa_key())
        self.add_crl(forged)
        code, payload = self.run_check()
        self.assertEqual(code, EX_DATAERR)
        crl = self.entry(payload, "crl")
        self.assertEqual(crl["state"], "untrusted")
        self.assertIn("signature", crl["problems"][0]["message_en"])
        self.assertEqual(self.entry(payload, "node-tls")["state"], "ok")

    def test_stale_crl_warns(self) -> None:
        self.add_crl(self.crl(next_update=_now() - DAY))
        code, payload = self.run_check()
        self.assertEqual(code, 1)
        self.assertEqual(self.entry(payload, "crl")["state"], "stale")

    def test_key_not_matching_its_certificate(self) -> None:
        other = devpki.rsa_key()
        (self.pki / "node.key").write_bytes(
            other.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        code, payload = self.run_check()
        self.assertEqual(code, EX_DATAERR)
        self.assertEqual(self.entry(payload, "node-tls")["state"], "key-mismatch")

    def test_seal_from_an_unknown_ca_is_untrusted(self) -> None:
        stranger = devpki.generate(node_name="x", agencies={SEAL: "Lạ"})
        (self.pki / f"{SEAL}.pem").write_bytes(stranger.agencies[SEAL].chain_pem)
        (self.pki / f"{SEAL}.key").write_bytes(stranger.agencies[SEAL].key_pem)
        code, payload = self.run_check()
        self.assertEqual(code, EX_DATAERR)
        self.assertEqual(self.entry(payload, "agency-seal", SEAL)["state"], "untrusted")

    def test_weak_key_and_missing_organ_id_warn(self) -> None:
        conf = configuration.load(self.conf)
        weak = devpki.issue(
            "weak",
            devpki.name((x509.oid.NameOID.COMMON_NAME, "no organ id")),
            issuer=self.issuing,
            not_before=_now() - DAY,
            not_after=_now() + 365 * DAY,
            key=devpki.rsa_key(1024),
        )
        (self.pki / f"{SEAL}.pem").write_bytes(weak.chain_pem)
        (self.pki / f"{SEAL}.key").write_bytes(weak.key_pem)
        report = certcheck.check(conf, now=_now())
        self.assertEqual(report.severity, "warning")
        seal = next(s for s in report.statuses if s.subject_of == SEAL)
        self.assertEqual(sorted(i.state for i in seal.issues), ["organ-id", "weak"])
        self.assertEqual(seal.state, "weak")

    def test_needs_a_timezone_aware_now(self) -> None:
        conf = configuration.load(self.conf)
        self.assertRaises(ValueError, certcheck.check, conf, now=datetime.datetime.now())


class CertsCheckOcspTests(_InitDir):
    """The seal names a real responder (tests/ocspkit); the CLI asks it unless --offline. The
    command runs a reactor of its own, so it runs as a subprocess here."""

    def setUp(self) -> None:
        super().setUp()
        self.responder = Responder(self.issuing)
        self.responder.start()
        self.addCleanup(self.responder.stop)
        cert_path, key_path = self.pki / f"{SEAL}.pem", self.pki / f"{SEAL}.key"
        old = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        now = _now()
        issued = devpki.issue(
            "seal",
            old.subject,
            issuer=self.issuing,
            not_before=now - DAY,
            not_after=now + 365 * DAY,
            extended=devpki.SIGNER_EKU,
            key=serialization.load_pem_private_key(key_path.read_bytes(), None),  # type: ignore[arg-type]
            extensions=(aia(self.responder.url),),
        )
        cert_path.write_bytes(issued.chain_pem)
        self.seal = issued.cert
        self.responder.know(issued.cert)

    def cli(self, *extra: str) -> tuple[int, dict[str, Any]]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "certs",
                "check",
                "--json",
                "-c",
                str(self.conf),
                *extra,
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        return done.returncode, json.loads(done.stdout)

    def test_revoked_by_ocsp(self) -> None:
        self.responder.revoke(self.seal)
        code, payload = self.cli()
        self.assertEqual(code, EX_DATAERR)
        seal = self.entry(payload, "agency-seal", SEAL)
        self.assertEqual(seal["state"], "revoked")
        self.assertIn("(OCSP)", seal["problems"][0]["message_en"])
        self.assertEqual(self.responder.requests, [self.seal.serial_number])

    def test_good_answer(self) -> None:
        code, payload = self.cli()
        self.assertEqual(code, 0, payload)
        self.assertEqual(self.entry(payload, "agency-seal", SEAL)["state"], "ok")
        self.assertEqual(self.responder.requests, [self.seal.serial_number])

    def test_responder_down_is_a_warning(self) -> None:
        self.responder.mode = "http500"
        code, payload = self.cli()
        self.assertEqual(code, 1)
        seal = self.entry(payload, "agency-seal", SEAL)
        self.assertEqual(seal["state"], "ocsp-unavailable")
        self.assertIn("HTTP 500", seal["problems"][0]["message_en"])
        self.assertIn("lỗi HTTP 500", seal["problems"][0]["message_vi"])

    def test_offline_asks_nobody(self) -> None:
        self.responder.revoke(self.seal)
        code, _ = self.cli("--offline")
        self.assertEqual(code, 0)
        self.assertEqual(self.responder.requests, [])
