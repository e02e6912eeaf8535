"""Signers' certificates: who they name, reading them, picking the signer's, chains to trust."""

from __future__ import annotations

import base64
import datetime
import hashlib
import shutil
import tempfile
import unicodedata
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml.certificates import (
    Chain,
    Problem,
    SignerIdentity,
    Trust,
    build_chain,
    distinguished_name,
    load_certificate,
    organ_id_of,
    pick_leaf,
    weak_key,
)
from edxml.model import VN_TZ
from edxml.revocation import RevocationState, revocation
from gateway import devpki

try:
    from tests.pki import PKIEntry, TestPKI, make_pki
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from pki import PKIEntry, TestPKI, make_pki  # type: ignore[no-redef, import-not-found]

SIGNING = x509.KeyUsage(True, True, False, False, False, False, False, False, False)


def issue(
    name: str,
    key: rsa.RSAPrivateKey,
    issuer: PKIEntry,
    *,
    ca: bool,
    usage: x509.KeyUsage,
    now: datetime.datetime,
) -> x509.Certificate:
    """A one-off certificate for a profile the shared PKI does not carry."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.cert.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )


def name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def base64_of(cert: x509.Certificate) -> str:
    return base64.encodebytes(cert.public_bytes(Encoding.DER)).decode("ascii")


class IdentityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()

    def test_organ_id_places(self) -> None:
        identity = SignerIdentity.from_certificate
        self.assertEqual(identity(self.pki.agency_h23.cert).organ_id, "000.00.00.H23")  # UID
        g22 = identity(self.pki.agency_g22.cert)
        self.assertEqual(g22.organ_id, "000.00.00.G22")  # OU
        self.assertEqual(g22.organization, "Văn phòng Chính phủ")
        person = identity(self.pki.person.cert)
        self.assertEqual(person.organ_id, "000.00.00.H23")  # inside an OU text
        self.assertEqual(person.common_name, "Nguyễn Văn A")
        self.assertIn("title=Phó Chủ tịch", person.subject)
        self.assertIsNone(identity(self.pki.node.cert).organ_id)

    def test_decomposed_names_are_normalised(self) -> None:
        decomposed = unicodedata.normalize("NFD", "Nguyễn Văn A")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        cert = issue(decomposed, key, self.pki.intermediate, ca=False, usage=SIGNING, now=now)
        self.assertNotEqual(decomposed, "Nguyễn Văn A")
        identity = SignerIdentity.from_certificate(cert)
        self.assertEqual(identity.common_name, "Nguyễn Văn A")
        self.assertEqual(identity.subject, "CN=Nguyễn Văn A")

    def test_identity_fields(self) -> None:
        cert = self.pki.agency_g22.cert
        identity = SignerIdentity.from_certificate(cert)
        self.assertEqual(int(identity.serial, 16), cert.serial_number)
        self.assertEqual(identity.not_after, cert.not_valid_after_utc)
        self.assertEqual(
            identity.fingerprint_sha256,
            hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        )
        self.assertIn("Issuing CA", identity.issuer)
        self.assertEqual(identity.to_json()["organ_id"], "000.00.00.G22")
        self.assertEqual(identity.to_json()["not_after"], cert.not_valid_after_utc.isoformat())


class NameTests(SynchronousTestCase):
    def test_organ_id_most_specific_attribute_first(self) -> None:
        both = name(
            (NameOID.COMMON_NAME, "Văn phòng Chính phủ 000.00.00.G22"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "000.00.00.H20"),
            (NameOID.USER_ID, "000.00.00.H23"),
        )
        self.assertEqual(organ_id_of(both), "000.00.00.H23")
        self.assertEqual(
            organ_id_of(name((NameOID.COMMON_NAME, "Văn phòng Chính phủ 000.00.00.G22"))),
            "000.00.00.G22",
        )

    def test_organ_id_inside_longer_texts(self) -> None:
        for text, expected in (
            ("Sở Nội vụ (000.01.02.h23)", "000.01.02.H23"),  # lower-case letter, upper-cased
            ("MST:0101234567-001", None),
            ("1.000656.000.00.00.H29", None),  # part of a longer dotted code
            ("000.00.00.H234", None),
            (unicodedata.normalize("NFD", "Ủy ban 000.00.00.H23"), "000.00.00.H23"),
        ):
            found = organ_id_of(name((NameOID.ORGANIZATIONAL_UNIT_NAME, text)))
            self.assertEqual(found, expected, text)
        self.assertIsNone(organ_id_of(x509.Name([])))

    def test_distinguished_name_spells_title_and_serial_number(self) -> None:
        text = distinguished_name(
            name((NameOID.SERIAL_NUMBER, "CMND:012345678"), (NameOID.TITLE, "Giám đốc"))
        )
        self.assertEqual(text, "title=Giám đốc,serialNumber=CMND:012345678")


class ReadingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()

    def test_base64_with_line_breaks(self) -> None:
        text = base64_of(self.pki.agency_h23.cert)
        self.assertIn("\n", text.strip())
        self.assertEqual(load_certificate(text), self.pki.agency_h23.cert)
        self.assertEqual(load_certificate(f"  {text}\t"), self.pki.agency_h23.cert)

    def test_truncated(self) -> None:
        problem = load_certificate("MIIFqTCCBJG")
        assert isinstance(problem, Problem)
        self.assertIn("truncated", problem.en)
        self.assertIn("11 characters", problem.en)
        self.assertIn("cắt cụt", problem.vi)

    def test_base64_that_is_not_a_certificate(self) -> None:
        problem = load_certificate(base64.b64encode(b"not a certificate at all").decode())
        assert isinstance(problem, Problem)
        self.assertIn("not a DER X.509 certificate", problem.en)
        self.assertIn("X.509", problem.vi)

    @given(st.permutations(["leaf", "intermediate", "root"]))
    def test_leaf_whatever_the_order(self, order: list[str]) -> None:
        pki = make_pki()
        certs = {"leaf": pki.agency_h23.cert, "intermediate": pki.intermediate.cert}
        certs["root"] = pki.root.cert
        self.assertIs(pick_leaf([certs[k] for k in order]), pki.agency_h23.cert)

    def test_leaf_of_one_and_of_none(self) -> None:
        self.assertIs(pick_leaf([self.pki.root.cert]), self.pki.root.cert)
        self.assertRaises(ValueError, pick_leaf, [])

    def test_weak_key(self) -> None:
        self.assertIsNone(weak_key(self.pki.agency_h23.cert))
        self.assertIsNone(weak_key(self.pki.ec_agency.cert))
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        now = datetime.datetime.now(datetime.UTC)
        short = issue("Khóa ngắn", key, self.pki.intermediate, ca=False, usage=SIGNING, now=now)
        self.assertEqual(weak_key(short), "RSA-1024")


class ChainTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.trust = Trust(roots=[self.pki.root.cert])
        self.now = datetime.datetime.now(datetime.UTC)

    def chain(self, entry: PKIEntry, trust: Trust | None = None) -> Chain | Problem:
        return build_chain(entry.cert, entry.chain, trust or self.trust, self.now)

    def problem(self, entry: PKIEntry, trust: Trust | None = None) -> Problem:
        found = self.chain(entry, trust)
        assert isinstance(found, Problem), found
        return found

    def test_chain_to_the_root(self) -> None:
        chain = self.chain(self.pki.agency_h23)
        assert isinstance(chain, Chain), chain
        self.assertEqual(
            chain.certificates,
            (self.pki.agency_h23.cert, self.pki.intermediate.cert, self.pki.root.cert),
        )
        self.assertEqual(
            chain.subjects[0],
            "CN=UBND tỉnh Hà Nam,UID=000.00.00.H23,O=UBND tỉnh Hà Nam,ST=Hà Nam,C=VN",
        )
        self.assertEqual(chain.subjects[-1], distinguished_name(self.pki.root.cert.subject))

    def test_intermediate_from_trust(self) -> None:
        entry = self.pki.agency_h23
        alone = build_chain(entry.cert, [], self.trust, self.now)
        assert isinstance(alone, Problem)
        self.assertIn("no chain to a trusted root", alone.en)
        self.assertIn("chứng thư gốc tin cậy", alone.vi)
        trust = Trust(roots=[self.pki.root.cert], intermediates=[self.pki.intermediate.cert])
        self.assertIsInstance(build_chain(entry.cert, [], trust, self.now), Chain)

    def test_impostor_under_another_root(self) -> None:
        problem = self.problem(self.pki.untrusted_agency)
        self.assertIn("no chain to a trusted root", problem.en)

    def test_expired_and_not_yet_valid(self) -> None:
        expired = self.problem(self.pki.expired_agency)
        self.assertIn("expired at", expired.en)
        self.assertIn("hết hạn", expired.vi)
        entry = self.pki.agency_h23
        before = entry.cert.not_valid_before_utc - datetime.timedelta(days=1)
        early = build_chain(entry.cert, entry.chain, self.trust, before)
        assert isinstance(early, Problem)
        self.assertIn("not valid before", early.en)
        self.assertIn(before.isoformat(timespec="seconds"), early.en)

    def test_now_in_another_zone_is_the_same_moment(self) -> None:
        entry = self.pki.expired_agency
        in_vietnam = self.now.astimezone(VN_TZ)
        problem = build_chain(entry.cert, entry.chain, self.trust, in_vietnam)
        self.assertEqual(problem, self.problem(entry))
        naive = self.now.replace(tzinfo=None)
        self.assertRaises(ValueError, build_chain, entry.cert, entry.chain, self.trust, naive)

    def test_signer_needs_digital_signature_usage(self) -> None:
        problem = self.problem(self.pki.no_signing_usage)
        self.assertEqual(
            problem.en, "the signing certificate's KeyUsage does not allow digitalSignature"
        )

    def test_legacy_root_without_key_usage(self) -> None:
        trust = Trust(roots=[self.pki.legacy_root.cert])
        self.assertIsInstance(self.chain(self.pki.legacy_agency, trust), Chain)

    def test_end_entity_cannot_issue(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuer = self.pki.agency_h23
        cert = issue("Kẻ mạo danh", key, issuer, ca=False, usage=SIGNING, now=self.now)
        found = build_chain(cert, issuer.chain, self.trust, self.now)
        self.assertIsInstance(found, Problem)

    def test_no_roots(self) -> None:
        problem = self.problem(self.pki.agency_h23, Trust(roots=()))
        self.assertEqual(problem.en, "no trust anchors are configured")


class TrustTests(SynchronousTestCase):
    def test_only_loaded_certificates(self) -> None:
        pki = make_pki()
        self.assertRaises(TypeError, Trust, roots=[pki.root.cert_pem])
        self.assertRaises(TypeError, Trust, roots=[], intermediates=[pki.intermediate.cert_pem])
        self.assertEqual(Trust(roots=[pki.root.cert]).roots, (pki.root.cert,))


class PKITests(SynchronousTestCase):
    """The shared test PKI is what later tests (PDF, mutual TLS, CRLs) build on."""

    def test_cached_per_process(self) -> None:
        self.assertIs(make_pki(), make_pki())

    def test_written_to_a_directory(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="edxml-pki-"))
        self.addCleanup(shutil.rmtree, directory)
        pki = make_pki(directory)
        node = pki.node
        assert node.key_path is not None and node.cert_path is not None
        assert node.chain_path is not None
        self.assertEqual(node.key_path.stat().st_mode & 0o777, 0o600)
        self.assertEqual(x509.load_pem_x509_certificate(node.cert_path.read_bytes()), node.cert)
        chain = x509.load_pem_x509_certificates(node.chain_path.read_bytes())
        self.assertEqual(chain, [node.cert, pki.intermediate.cert])
        self.assertEqual(node.key_pem, make_pki().node.key_pem)  # the same PKI, on disk

    def test_profiles(self) -> None:
        pki = make_pki()
        san = pki.node.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(san.value.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertEqual(
            [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)], ["127.0.0.1"]
        )
        eku = pki.node.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, eku)
        self.assertIn(x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, eku)
        self.assertLess(pki.expired_agency.cert.not_valid_after_utc, pki.created)
        self.assertRaises(
            x509.ExtensionNotFound,
            pki.legacy_root.cert.extensions.get_extension_for_class,
            x509.KeyUsage,
        )
        self.assertEqual(pki.person.cert.subject.rfc4514_string().split(",")[0], "CN=Nguyễn Văn A")
        for entry in pki.entries():
            if entry is not pki.ec_agency:
                self.assertEqual(entry.cert.public_key().key_size, 2048)  # type: ignore[union-attr]


def make_crl(
    issuer: PKIEntry,
    revoked: tuple[x509.Certificate, ...] = (),
    *,
    signer: rsa.RSAPrivateKey | None = None,
    next_update: datetime.timedelta = datetime.timedelta(days=7),
    reason: x509.ReasonFlags | None = None,
) -> x509.CertificateRevocationList:
    """A CRL naming `issuer`, signed by its key (or by `signer`, to forge one)."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now - datetime.timedelta(days=8))
        .next_update(now + next_update)
    )
    for cert in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - datetime.timedelta(hours=2))
        )
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    key = signer if signer is not None else issuer.key
    return builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]


def fresh_seal(pki: TestPKI) -> PKIEntry:
    """A seal of UBND tỉnh Hà Nam issued now by the intermediate, serial unseen by other tests."""
    now = datetime.datetime.now(datetime.UTC)
    return devpki.issue(
        "fresh_seal",
        pki.agency_h23.cert.subject,
        issuer=pki.intermediate,
        not_before=now - datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=365),
        extended=devpki.SIGNER_EKU,
    )


class RevocationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = make_pki()
        self.now = datetime.datetime.now(datetime.UTC)
        self.seal = fresh_seal(self.pki)
        self.chain = (self.seal.cert, self.pki.intermediate.cert, self.pki.root.cert)
        self.root_crl = make_crl(self.pki.root)

    def test_revoked_leaf(self) -> None:
        crl = make_crl(
            self.pki.intermediate, (self.seal.cert,), reason=x509.ReasonFlags.key_compromise
        )
        result = revocation(self.chain, [self.root_crl, crl], self.now)
        self.assertIs(result.state, RevocationState.REVOKED)
        self.assertEqual(result.revoked_cert, self.seal.cert)
        self.assertIs(result.revoked_by, crl)
        self.assertEqual(result.reason, "keyCompromise")
        assert result.revoked_at is not None
        self.assertLess(result.revoked_at, self.now)
        self.assertEqual(result.problems, ())

    def test_good_needs_a_crl_of_every_issuer(self) -> None:
        empty = make_crl(self.pki.intermediate)
        good = revocation(self.chain, [empty, self.root_crl], self.now)
        self.assertIs(good.state, RevocationState.GOOD)
        self.assertEqual(good.missing, ())
        built = build_chain(
            self.seal.cert,
            (),
            Trust(roots=[self.pki.root.cert], intermediates=[self.pki.intermediate.cert]),
            self.now,
        )
        assert isinstance(built, Chain)
        self.assertIs(
            revocation(built, [empty, self.root_crl], self.now).state, RevocationState.GOOD
        )
        partial = revocation(self.chain, [empty], self.now)
        self.assertIs(partial.state, RevocationState.UNKNOWN)
        self.assertEqual(partial.missing, (distinguished_name(self.pki.root.cert.subject),))
        # The anchor (last) is never checked: the signer's status alone is (signer, issuer).
        alone = revocation(self.chain[:2], [empty], self.now)
        self.assertIs(alone.state, RevocationState.GOOD)

    def test_forged_crl_is_ignored_and_reported(self) -> None:
        forged = make_crl(self.pki.intermediate, (), signer=devpki.rsa_key())
        result = revocation(self.chain, [forged, self.root_crl], self.now)
        self.assertIs(result.state, RevocationState.UNKNOWN)
        self.assertEqual(result.missing, (distinguished_name(self.pki.intermediate.cert.subject),))
        self.assertEqual(len(result.problems), 1)
        self.assertIn("ignored", result.problems[0].en)
        self.assertIn("bỏ qua", result.problems[0].vi)
        # A forged "good" next to the real listing does not hide the revocation either.
        real = make_crl(self.pki.intermediate, (self.seal.cert,))
        both = revocation(self.chain, [forged, real, self.root_crl], self.now)
        self.assertIs(both.state, RevocationState.REVOKED)

    def test_stale_crl_counts_and_is_reported(self) -> None:
        stale = make_crl(
            self.pki.intermediate, (self.seal.cert,), next_update=-datetime.timedelta(days=1)
        )
        result = revocation(self.chain, [stale, self.root_crl], self.now)
        self.assertIs(result.state, RevocationState.REVOKED)
        self.assertEqual(len(result.problems), 1)
        self.assertIn("out of date", result.problems[0].en)
        self.assertIn("quá hạn", result.problems[0].vi)

    def test_revoked_intermediate(self) -> None:
        root_crl = make_crl(self.pki.root, (self.pki.intermediate.cert,))
        empty = make_crl(self.pki.intermediate)
        result = revocation(self.chain, [empty, root_crl], self.now)
        self.assertIs(result.state, RevocationState.REVOKED)
        self.assertEqual(result.revoked_cert, self.pki.intermediate.cert)

    def test_revocation_dated_later_does_not_count_yet(self) -> None:
        crl = make_crl(self.pki.intermediate, (self.seal.cert,))
        earlier = self.now - datetime.timedelta(days=1)
        result = revocation(self.chain, [crl, self.root_crl], earlier)
        self.assertIs(result.state, RevocationState.GOOD)

    def test_naive_now_is_a_caller_bug(self) -> None:
        with self.assertRaises(ValueError):
            revocation(self.chain, [], datetime.datetime(2025, 1, 1))
