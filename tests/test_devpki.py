"""The development PKI that `gateway init` writes: usable at once, private keys private."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from twisted.trial.unittest import SynchronousTestCase

from edxml import certificates, signature
from edxml.certificates import Chain, Trust
from gateway import devpki

SAMPLE = (Path(__file__).parent / "fixtures" / "sample_envelope.edxml").read_bytes()
AGENCIES = {"000.00.00.H23": "UBND tỉnh Hà Nam", "000.00.01.H23": "Văn phòng UBND tỉnh Hà Nam"}


class DevPKITests(SynchronousTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.pki = devpki.generate(node_name="Hà Nam node", agencies=AGENCIES, offices=["eoffice"])

    def test_agency_seals_chain_to_the_root_and_carry_their_organ_id(self) -> None:
        trust = Trust(roots=(self.pki.root.cert,))
        now = datetime.datetime.now(datetime.UTC)
        for organ_id, seal in self.pki.agencies.items():
            chain = certificates.build_chain(seal.cert, seal.chain, trust, now)
            self.assertIsInstance(chain, Chain)
            self.assertEqual(certificates.organ_id_of(seal.cert.subject), organ_id)

    def test_seal_signs_envelopes_that_verify(self) -> None:
        seal = self.pki.agencies["000.00.00.H23"]
        signed = signature.sign(SAMPLE, seal.key, seal.chain)
        verdict = signature.verify(signed, Trust(roots=(self.pki.root.cert,)))
        self.assertIs(verdict.state, signature.SignatureState.VALID)
        assert verdict.signer is not None
        self.assertEqual(verdict.signer.organ_id, "000.00.00.H23")

    def test_node_certificate_serves_and_authenticates_on_loopback(self) -> None:
        cert = self.pki.node.cert
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertIn("localhost", san.get_values_for_type(x509.DNSName))
        self.assertEqual([str(ip) for ip in san.get_values_for_type(x509.IPAddress)], ["127.0.0.1"])
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku)
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)

    def test_written_keys_are_private(self) -> None:
        written = self.pki.write(Path(self.mktemp()))
        for entry in (written.root, written.node, *written.agencies.values()):
            assert entry.key_path is not None and entry.cert_path is not None
            mode = stat.S_IMODE(entry.key_path.stat().st_mode)
            self.assertEqual(mode, 0o600, entry.key_path)
            loaded = x509.load_pem_x509_certificate(entry.cert_path.read_bytes())
            self.assertEqual(loaded, entry.cert)
        self.assertNotIn(b"PRIVATE KEY", written.node.chain_path.read_bytes())  # type: ignore[union-attr]

    def test_key_is_not_in_repr(self) -> None:
        self.assertNotIn("RSAPrivateKey", repr(self.pki.node))
